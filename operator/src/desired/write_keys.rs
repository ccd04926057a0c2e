//! A Source's entry in the write-keys Secret ingest mounts: one `<namespace>.<source>.json`
//! key per Source holding its key digests (never the keys) and tracking plan.

use super::SecretValues;
use kube::ResourceExt;
use model::keyring::{KeyEntry, KeyFile, key_digest_hex};
use model::resources::Source;

/// Data key of a Source in the write-keys Secret. Namespaces and Source names are DNS labels
/// (no dots), so the name is unique and a valid Secret key.
pub fn write_keys_entry_name(namespace: &str, source: &str) -> String {
    format!("{namespace}.{source}.json")
}

/// The Source's key file, and the references that had no (or an empty) value.
pub fn key_file(source: &Source, secrets: &SecretValues) -> (KeyFile, Vec<String>) {
    let tenant = source.namespace().unwrap_or_default();
    let mut file = KeyFile::default();
    let mut missing = Vec::new();
    for reference in &source.spec.write_keys {
        match secrets.get(&(reference.name.clone(), reference.key.clone())) {
            Some(key) if !key.is_empty() => file.keys.push(KeyEntry {
                tenant: tenant.clone(),
                source: source.name_any(),
                sha256: key_digest_hex(key),
                tracking_plan: source.spec.tracking_plan.clone(),
            }),
            _ => missing.push(format!(
                "write key Secret {}/{} key {} is missing or empty",
                tenant, reference.name, reference.key
            )),
        }
    }
    (file, missing)
}
