//! References to secret values (write keys, webhook signing secrets) and how standalone mode
//! resolves them without a cluster.
//!
//! In a cluster a reference names a key of a Kubernetes Secret in the resource's namespace.
//! Standalone, the same reference resolves, in order, to:
//! 1. the file `<secrets dir>/<namespace>/<name>/<key>` (the layout of Secrets mounted as
//!    volumes, one directory per namespace), trailing newline trimmed;
//! 2. the file `<secrets dir>/<namespace>/<name>_<key>`: the layout of the one Secret the
//!    operator renders per evaluator, mounted at `<secrets dir>/<namespace>` (`_` never occurs
//!    in a Secret name, so the split is unambiguous, and no rule change needs a new volume);
//! 3. the environment variable `CS_SECRET_<NAMESPACE>_<NAME>_<KEY>`, upper-cased, with every
//!    character other than A–Z and 0–9 turned into `_`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A key of a Secret in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "secret {namespace}/{name} key {key:?} not found: looked for file {file} and environment variable {env}",
    name = reference.name, key = reference.key, file = file.display()
)]
pub struct SecretNotFound {
    pub namespace: String,
    pub reference: SecretKeyRef,
    pub file: PathBuf,
    pub env: String,
}

/// Resolves secret references for standalone mode.
#[derive(Debug, Clone, Default)]
pub struct StandaloneSecrets {
    /// Root of the per-namespace secret directories; none means environment variables only.
    pub dir: Option<PathBuf>,
}

impl StandaloneSecrets {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    pub fn resolve(
        &self,
        namespace: &str,
        reference: &SecretKeyRef,
    ) -> Result<String, SecretNotFound> {
        let namespace_dir = self
            .dir
            .as_deref()
            .unwrap_or(Path::new("(no secrets dir)"))
            .join(namespace);
        let file = namespace_dir.join(&reference.name).join(&reference.key);
        let flat = namespace_dir.join(flat_file_name(reference));
        if self.dir.is_some() {
            for path in [&file, &flat] {
                if let Ok(text) = std::fs::read_to_string(path) {
                    return Ok(text.trim_end_matches(['\n', '\r']).to_string());
                }
            }
        }
        let env = env_name(namespace, reference);
        if let Ok(value) = std::env::var(&env) {
            return Ok(value);
        }
        Err(SecretNotFound {
            namespace: namespace.to_string(),
            reference: reference.clone(),
            file,
            env,
        })
    }
}

/// `<name>_<key>`: the key under which the operator copies a referenced secret value into an
/// evaluator's Secret.
pub fn flat_file_name(reference: &SecretKeyRef) -> String {
    format!("{}_{}", reference.name, reference.key)
}

/// `CS_SECRET_<NAMESPACE>_<NAME>_<KEY>` with non-alphanumerics as `_`.
pub fn env_name(namespace: &str, reference: &SecretKeyRef) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "CS_SECRET_{}_{}_{}",
        clean(namespace),
        clean(&reference.name),
        clean(&reference.key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> SecretKeyRef {
        SecretKeyRef {
            name: "web-keys".into(),
            key: "write.key".into(),
        }
    }

    #[test]
    fn env_names_are_shell_safe() {
        assert_eq!(
            env_name("acme-prod", &reference()),
            "CS_SECRET_ACME_PROD_WEB_KEYS_WRITE_KEY"
        );
    }

    #[test]
    fn files_win_over_environment_and_misses_say_where_they_looked() {
        let dir = std::env::temp_dir().join(format!("cs-secrets-{}", std::process::id()));
        let path = dir.join("acme/web-keys");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("write.key"), "wk_file\n").unwrap();
        let secrets = StandaloneSecrets::new(Some(dir.clone()));
        assert_eq!(secrets.resolve("acme", &reference()).unwrap(), "wk_file");
        let err = secrets
            .resolve("other", &reference())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CS_SECRET_OTHER_WEB_KEYS_WRITE_KEY"), "{err}");
        assert!(err.contains("other/web-keys/write.key"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_operator_flat_layout_resolves() {
        let dir = std::env::temp_dir().join(format!("cs-secrets-flat-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("acme")).unwrap();
        std::fs::write(dir.join("acme/web-keys_write.key"), "wk_flat").unwrap();
        let secrets = StandaloneSecrets::new(Some(dir.clone()));
        assert_eq!(secrets.resolve("acme", &reference()).unwrap(), "wk_flat");
        assert!(secrets.resolve("globex", &reference()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
