//! Write keys → (tenant, source): the key ring, where it is loaded from, and its reloading.
//!
//! Only SHA-256 digests are kept. A presented key is hashed and looked up by digest; the
//! stored digest is then compared in constant time, so timing reveals nothing about the keys.

use model::keyring::{KeyFile, key_digest, parse_digest_hex};
use model::resources::TrackingPlan;
use model::secrets::StandaloneSecrets;
use model::standalone::Catalog;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Who a valid key writes as.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    pub tenant: String,
    pub source: String,
    pub tracking_plan: Option<TrackingPlan>,
}

#[derive(Debug, Default, PartialEq)]
pub struct KeyRing {
    by_digest: HashMap<[u8; 32], Arc<Writer>>,
}

impl KeyRing {
    pub fn from_file(file: KeyFile) -> Result<Self, String> {
        let mut by_digest = HashMap::new();
        for (i, entry) in file.keys.into_iter().enumerate() {
            let digest = parse_digest_hex(&entry.sha256)
                .ok_or_else(|| format!("keys[{i}].sha256: not a hex SHA-256 digest"))?;
            match by_digest.entry(digest) {
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(Writer {
                        tenant: entry.tenant,
                        source: entry.source,
                        tracking_plan: entry.tracking_plan,
                    }));
                }
                Entry::Occupied(existing) => {
                    let existing: &Writer = existing.get();
                    if existing.tenant != entry.tenant || existing.source != entry.source {
                        return Err(format!(
                            "keys[{i}]: the same key is listed for {}/{} and {}/{}",
                            existing.tenant, existing.source, entry.tenant, entry.source
                        ));
                    }
                }
            }
        }
        Ok(Self { by_digest })
    }

    /// The writer of `key`, if it is a known key.
    pub fn lookup(&self, key: &str) -> Option<Arc<Writer>> {
        self.lookup_digest(&key_digest(key))
    }

    /// The writer of the key with this SHA-256 digest.
    pub fn lookup_digest(&self, digest: &[u8; 32]) -> Option<Arc<Writer>> {
        let (stored, writer) = self.by_digest.get_key_value(digest)?;
        bool::from(stored.ct_eq(digest)).then(|| writer.clone())
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The operator-rendered key file (a mounted Secret).
    File(PathBuf),
    /// Standalone: Source YAML plus the secrets its write keys reference.
    Sources {
        path: PathBuf,
        secrets: StandaloneSecrets,
    },
}

impl KeySource {
    pub fn load(&self) -> Result<KeyRing, String> {
        match self {
            Self::File(path) => {
                let mut file = KeyFile::default();
                for part in key_files(path)? {
                    let text = std::fs::read_to_string(&part)
                        .map_err(|e| format!("{}: {e}", part.display()))?;
                    let keys: KeyFile = serde_json::from_str(&text)
                        .map_err(|e| format!("{}: {e}", part.display()))?;
                    file.keys.extend(keys.keys);
                }
                KeyRing::from_file(file).map_err(|e| format!("{}: {e}", path.display()))
            }
            Self::Sources { path, secrets } => {
                let catalog = Catalog::load(path);
                for error in &catalog.errors {
                    tracing::warn!(%error, "invalid document skipped");
                }
                let (file, errors) = KeyFile::from_catalog(&catalog, secrets);
                for error in &errors {
                    tracing::warn!(%error, "write key unavailable");
                }
                KeyRing::from_file(file)
            }
        }
    }
}

/// The key file, or every `*.json` file of a directory: the operator's write-keys Secret
/// mounted as a volume holds one file per Source (and the kubelet's `..data` links, skipped).
fn key_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The current key ring, swapped whole on reload so a request sees one consistent ring.
#[derive(Debug, Clone, Default)]
pub struct Keys(Arc<RwLock<Arc<KeyRing>>>);

impl Keys {
    pub fn new(ring: KeyRing) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(ring))))
    }

    pub fn current(&self) -> Arc<KeyRing> {
        self.0.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |ring| ring.clone(),
        )
    }

    fn replace(&self, ring: KeyRing) {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::new(ring);
    }

    /// Re-reads the keys every `interval`. A failed reload keeps the previous keys: a broken
    /// file must not lock every client out.
    pub fn spawn_reloader(
        &self,
        source: KeySource,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let source = source.clone();
                match tokio::task::spawn_blocking(move || source.load()).await {
                    Ok(Ok(ring)) if ring != *keys.current() => {
                        tracing::info!(keys = ring.len(), "write keys reloaded");
                        keys.replace(ring);
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%error, "write keys not reloaded; keeping the previous ones")
                    }
                    Err(error) => tracing::error!(%error, "write key reload task failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::keyring::{KeyEntry, key_digest_hex};

    fn entry(tenant: &str, key: &str) -> KeyEntry {
        KeyEntry {
            tenant: tenant.into(),
            source: "web".into(),
            sha256: key_digest_hex(key),
            tracking_plan: None,
        }
    }

    #[test]
    fn looks_up_by_key_and_rejects_others() {
        let ring = KeyRing::from_file(KeyFile {
            keys: vec![entry("a", "ka"), entry("b", "kb")],
        })
        .unwrap();
        assert_eq!(ring.lookup("ka").unwrap().tenant, "a");
        assert_eq!(ring.lookup("kb").unwrap().tenant, "b");
        assert!(ring.lookup("kc").is_none());
        assert!(ring.lookup("").is_none());
    }

    #[test]
    fn one_key_cannot_belong_to_two_tenants() {
        let err = KeyRing::from_file(KeyFile {
            keys: vec![entry("a", "k"), entry("b", "k")],
        })
        .unwrap_err();
        assert!(err.contains("a/web and b/web"), "{err}");
    }

    #[test]
    fn a_directory_of_key_files_is_one_ring() {
        let dir = std::env::temp_dir().join(format!("cs-keys-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("..2026_11_25")).unwrap();
        let write = |name: &str, entries: Vec<KeyEntry>| {
            let text = serde_json::to_string(&KeyFile { keys: entries }).unwrap();
            std::fs::write(dir.join(name), text).unwrap();
        };
        write("acme.web.json", vec![entry("acme", "ka")]);
        write("globex.web.json", vec![entry("globex", "kg")]);
        write("..2026_11_25/stale.json", vec![entry("stale", "ks")]);
        let ring = KeySource::File(dir.clone()).load().unwrap();
        assert_eq!(ring.lookup("ka").unwrap().tenant, "acme");
        assert_eq!(ring.lookup("kg").unwrap().tenant, "globex");
        assert!(ring.lookup("ks").is_none());
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        let err = KeySource::File(dir.clone()).load().unwrap_err();
        assert!(err.contains("broken.json"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_digests_are_errors() {
        let mut bad = entry("a", "k");
        bad.sha256 = "nope".into();
        assert!(
            KeyRing::from_file(KeyFile { keys: vec![bad] })
                .unwrap_err()
                .contains("keys[0].sha256")
        );
    }
}
