//! The write-key file ingest reads: which key digest writes as which (tenant, source), with
//! that Source's tracking plan. In a cluster the operator renders it into a Secret that ingest
//! mounts; standalone, it is built from Source YAML and the secrets the Sources reference.
//!
//! Only SHA-256 digests of keys are stored, so neither the file nor ingest's memory holds a
//! usable key.
//!
//! ```json
//! {"keys": [{"tenant": "acme", "source": "web", "sha256": "9f86d0…", "trackingPlan": {…}}]}
//! ```

use crate::resources::TrackingPlan;
use crate::secrets::StandaloneSecrets;
use crate::standalone::Catalog;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<KeyEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyEntry {
    pub tenant: String,
    pub source: String,
    /// Lower-case hex SHA-256 of the write key.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_plan: Option<TrackingPlan>,
}

/// SHA-256 of a write key.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub fn key_digest_hex(key: &str) -> String {
    key_digest(key).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a lower- or upper-case hex digest.
pub fn parse_digest_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

impl KeyFile {
    /// The keys of every Source in a standalone catalog. Keys that cannot be resolved are
    /// reported and left out: that Source cannot be written to, the others can.
    pub fn from_catalog(catalog: &Catalog, secrets: &StandaloneSecrets) -> (Self, Vec<String>) {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for source in &catalog.sources {
            for reference in &source.spec.write_keys {
                match secrets.resolve(&source.tenant, reference) {
                    Ok(key) if key.is_empty() => errors.push(format!(
                        "Source {}/{}: write key {}/{} is empty",
                        source.tenant, source.name, reference.name, reference.key
                    )),
                    Ok(key) => keys.push(KeyEntry {
                        tenant: source.tenant.clone(),
                        source: source.name.clone(),
                        sha256: key_digest_hex(&key),
                        tracking_plan: source.spec.tracking_plan.clone(),
                    }),
                    Err(e) => errors.push(format!("Source {}/{}: {e}", source.tenant, source.name)),
                }
            }
        }
        (Self { keys }, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn digests_round_trip_through_hex() {
        let hex = key_digest_hex("test");
        assert_eq!(
            hex,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(parse_digest_hex(&hex), Some(key_digest("test")));
        assert_eq!(
            parse_digest_hex(&hex.to_uppercase()),
            Some(key_digest("test"))
        );
        assert_eq!(parse_digest_hex("abc"), None);
        assert_eq!(parse_digest_hex(&"zz".repeat(32)), None);
        assert_eq!(parse_digest_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn standalone_keys_come_from_secrets_and_misses_are_reported() {
        let mut catalog = Catalog::default();
        catalog.add_text(
            Path::new("s.yaml"),
            "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {name: web, namespace: keyring-test}
spec:
  writeKeys: [{name: keys, key: primary}, {name: keys, key: missing}]
  trackingPlan: {mode: enforced, events: []}
",
        );
        let dir = std::env::temp_dir().join(format!("cs-keyring-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("keyring-test/keys")).unwrap();
        std::fs::write(dir.join("keyring-test/keys/primary"), "wk_live_1\n").unwrap();
        let (file, errors) =
            KeyFile::from_catalog(&catalog, &StandaloneSecrets::new(Some(dir.clone())));
        assert_eq!(file.keys.len(), 1);
        assert_eq!(file.keys[0].sha256, key_digest_hex("wk_live_1"));
        assert!(file.keys[0].tracking_plan.is_some());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("Source keyring-test/web"), "{errors:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
