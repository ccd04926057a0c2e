//! Standalone mode: load `AlertRule` and `Source` resources from YAML files, the same files
//! `kubectl apply` takes, with no cluster. `metadata.namespace` is the tenant (default
//! `default`).
//!
//! Loading never stops at the first problem: each invalid document yields a [`LoadError`]
//! naming the file, the document (1-based, and the line it starts on) and the field path, and
//! every valid document still loads. Documents of other API groups (a Secret, a Deployment
//! in the same GitOps folder) are skipped.

use crate::resources::{
    API_VERSION, AlertRule, AlertRuleSpec, GROUP, Source, SourceSpec, check_dns_label,
};
use crate::rule::CompiledRule;
use crate::validation::FieldErrors;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based position among the file's non-empty documents.
    pub document: usize,
    /// 1-based line the document starts on.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {} (line {})",
            self.file.display(),
            self.document,
            self.line
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The file, and the document when the problem is inside one.
    pub file: PathBuf,
    pub origin: Option<Origin>,
    /// Field path within the document (`spec.aggregation.timeWindow`); empty for the whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}")?,
            None => write!(f, "{}", self.file.display())?,
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, Clone)]
pub struct LoadedSource {
    pub tenant: String,
    pub name: String,
    pub spec: SourceSpec,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct LoadedRule {
    pub spec: AlertRuleSpec,
    pub compiled: CompiledRule,
    pub origin: Origin,
}

/// Everything found under the loaded paths.
#[derive(Debug, Default)]
pub struct Catalog {
    pub sources: Vec<LoadedSource>,
    pub rules: Vec<LoadedRule>,
    pub errors: Vec<LoadError>,
    /// Documents of other API groups, left alone.
    pub skipped: Vec<(Origin, String)>,
}

impl Catalog {
    /// Loads a file, or every `*.yaml` / `*.yml` under a directory (recursively, sorted).
    pub fn load(path: &Path) -> Self {
        let mut catalog = Self::default();
        match yaml_files(path) {
            Ok(files) => {
                for file in files {
                    match std::fs::read_to_string(&file) {
                        Ok(text) => catalog.add_text(&file, &text),
                        Err(e) => catalog.file_error(&file, format!("cannot read: {e}")),
                    }
                }
            }
            Err(e) => catalog.file_error(path, e),
        }
        catalog.check_references();
        catalog
    }

    /// Loads the documents of one file's text.
    pub fn add_text(&mut self, file: &Path, text: &str) {
        for (index, (line, body)) in split_documents(text).into_iter().enumerate() {
            let origin = Origin {
                file: file.to_path_buf(),
                document: index + 1,
                line,
            };
            if let Err((path, message)) = self.add_document(&origin, body) {
                self.errors.push(LoadError {
                    file: file.to_path_buf(),
                    origin: Some(origin),
                    path,
                    message,
                });
            }
        }
    }

    fn add_document(&mut self, origin: &Origin, body: &str) -> Result<(), (String, String)> {
        let whole = |message: String| (String::new(), message);
        let value: Value =
            serde_saphyr::from_str(body).map_err(|e| whole(format!("invalid YAML: {e}")))?;
        let Value::Object(object) = &value else {
            return Err(whole(
                "a resource must be a YAML mapping with apiVersion and kind".into(),
            ));
        };
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        if api_version.is_empty() || kind.is_empty() {
            return Err(whole("apiVersion and kind are required".into()));
        }
        if api_version.split('/').next() != Some(GROUP) {
            self.skipped
                .push((origin.clone(), format!("{api_version} {kind}")));
            return Ok(());
        }
        if api_version != API_VERSION {
            return Err((
                "apiVersion".into(),
                format!("{api_version:?} is not served; use {API_VERSION:?}"),
            ));
        }
        match kind.as_str() {
            "AlertRule" => {
                let rule: AlertRule = typed(value)?;
                let (tenant, name) = identity(&rule.metadata)?;
                self.check_duplicate(&kind, &tenant, &name)?;
                let compiled =
                    CompiledRule::compile(&tenant, &name, &rule.spec).map_err(first_and_rest)?;
                self.rules.push(LoadedRule {
                    spec: rule.spec,
                    compiled,
                    origin: origin.clone(),
                });
            }
            "Source" => {
                let source: Source = typed(value)?;
                let (tenant, name) = identity(&source.metadata)?;
                check_dns_label(&name).map_err(|e| ("metadata.name".to_string(), e))?;
                self.check_duplicate(&kind, &tenant, &name)?;
                self.sources.push(LoadedSource {
                    tenant,
                    name,
                    spec: source.spec,
                    origin: origin.clone(),
                });
            }
            other => {
                return Err((
                    "kind".into(),
                    format!("{other:?} is not a kind of {GROUP}: use AlertRule or Source"),
                ));
            }
        }
        Ok(())
    }

    fn check_duplicate(
        &self,
        kind: &str,
        tenant: &str,
        name: &str,
    ) -> Result<(), (String, String)> {
        let earlier = match kind {
            "AlertRule" => self
                .rules
                .iter()
                .find(|r| r.compiled.tenant == tenant && r.compiled.name == name)
                .map(|r| &r.origin),
            _ => self
                .sources
                .iter()
                .find(|s| s.tenant == tenant && s.name == name)
                .map(|s| &s.origin),
        };
        match earlier {
            Some(earlier) => Err((
                "metadata.name".into(),
                format!("{kind} {tenant}/{name} is already defined at {earlier}"),
            )),
            None => Ok(()),
        }
    }

    /// A rule naming a Source that is not loaded cannot run: report it and drop the rule.
    fn check_references(&mut self) {
        let known: HashMap<(&str, &str), ()> = self
            .sources
            .iter()
            .map(|s| ((s.tenant.as_str(), s.name.as_str()), ()))
            .collect();
        let (keep, orphans): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.rules).into_iter().partition(|r| {
                r.compiled
                    .source
                    .as_deref()
                    .is_none_or(|s| known.contains_key(&(r.compiled.tenant.as_str(), s)))
            });
        self.rules = keep;
        for rule in orphans {
            self.errors.push(LoadError {
                file: rule.origin.file.clone(),
                path: "spec.source".into(),
                message: format!(
                    "no Source {:?} in namespace {:?} was loaded",
                    rule.compiled.source.unwrap_or_default(),
                    rule.compiled.tenant
                ),
                origin: Some(rule.origin),
            });
        }
    }

    fn file_error(&mut self, file: &Path, message: String) {
        self.errors.push(LoadError {
            file: file.to_path_buf(),
            origin: None,
            path: String::new(),
            message,
        });
    }

    /// The rules that read a given Source: those naming it, and those naming none.
    pub fn rules_for<'a>(
        &'a self,
        tenant: &'a str,
        source: &'a str,
    ) -> impl Iterator<Item = &'a LoadedRule> {
        self.rules.iter().filter(move |r| {
            r.compiled.tenant == tenant && r.compiled.source.as_deref().is_none_or(|s| s == source)
        })
    }
}

/// Deserializes a resource, turning both type errors and unknown keys into path errors:
/// a typo'd key silently ignored would be a rule that silently does something else.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path| unknown.push(path.to_string());
    let ignored = serde_ignored::Deserializer::new(value, &mut record);
    let resource: T = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let path = e.path().to_string();
        (
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    // apiVersion and kind were checked by the caller; status is written by controllers and
    // metadata carries cluster fields: accept whatever a `kubectl get -o yaml` export holds.
    unknown.retain(|p| {
        !["apiVersion", "kind"].contains(&p.as_str())
            && !p.starts_with("status")
            && !p.starts_with("metadata")
    });
    match unknown.first() {
        Some(path) => Err((path.clone(), "unknown field".into())),
        None => Ok(resource),
    }
}

fn identity(metadata: &kube::core::ObjectMeta) -> Result<(String, String), (String, String)> {
    let name = metadata
        .name
        .clone()
        .ok_or_else(|| ("metadata.name".to_string(), "is required".to_string()))?;
    let tenant = metadata
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
    check_dns_label(&tenant).map_err(|e| ("metadata.namespace".to_string(), e))?;
    Ok((tenant, name))
}

/// Reports the first validation error as the document's error, the rest in its message.
fn first_and_rest(errors: FieldErrors) -> (String, String) {
    let mut iter = errors.iter();
    let first = iter
        .next()
        .map(|e| (e.path.clone(), e.message.clone()))
        .unwrap_or_default();
    let rest: Vec<String> = iter.map(ToString::to_string).collect();
    if rest.is_empty() {
        first
    } else {
        (first.0, format!("{} (also: {})", first.1, rest.join("; ")))
    }
}

/// Splits YAML text at `---` document markers, returning each non-empty document with the
/// 1-based line it starts on. (A marker is `---` at the start of a line, alone or followed by
/// a space, which YAML never allows inside a document's content.)
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare.starts_with("--- ") {
            documents.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    documents.push((start_line, &text[start..]));
    documents.retain(|(_, body)| {
        body.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "..."
        })
    });
    documents
}

fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open: {e}"))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Mounted ConfigMaps hold `..data` and `..<timestamp>` links beside the files.
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
#[path = "standalone_tests.rs"]
mod tests;
