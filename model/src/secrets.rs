//! References to secret values (write keys, webhook signing secrets) and how standalone mode
//! resolves them without a cluster.
//!
//! In a cluster a reference names a key of a Kubernetes Secret in the resource's namespace.
//! Standalone, the same reference resolves, in order, to:
//! 1. the file `<secrets dir>/<namespace>/<name>/<key>` (the layout of Secrets mounted as
//!    volumes, one directory per namespace), trailing newline trimmed;
//! 2. the environment variable `CS_SECRET_<NAMESPACE>_<NAME>_<KEY>`, upper-cased, with every
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
        let file = self
            .dir
            .as_deref()
            .unwrap_or(Path::new("(no secrets dir)"))
            .join(namespace)
            .join(&reference.name)
            .join(&reference.key);
        if self.dir.is_some()
            && let Ok(text) = std::fs::read_to_string(&file)
        {
            return Ok(text.trim_end_matches(['\n', '\r']).to_string());
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
}
