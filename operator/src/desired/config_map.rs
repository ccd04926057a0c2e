//! The evaluator's ConfigMap: the Source and its valid AlertRules in exactly the multi-document
//! YAML that standalone mode reads, so a cluster and `evaluator run --config` behave the same.

use super::owned_metadata;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Resource, ResourceExt};
use model::resources::{AlertRule, Source};
use serde::Serialize;
use std::collections::BTreeMap;

/// The file the ConfigMap holds; the evaluator is pointed at it (not at the directory, whose
/// mount also holds the kubelet's `..data` links).
pub const CONFIG_FILE: &str = "config.yaml";

/// A resource as `kubectl apply` takes it: only the fields standalone mode reads.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a, S: Serialize> {
    api_version: &'a str,
    kind: &'a str,
    metadata: Metadata,
    spec: &'a S,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    namespace: String,
}

fn document<K: Resource<DynamicType = ()>, S: Serialize>(
    object: &K,
    spec: &S,
) -> Result<String, String> {
    let document = Document {
        api_version: &K::api_version(&()),
        kind: &K::kind(&()),
        metadata: Metadata {
            name: object.name_any(),
            namespace: object.namespace().unwrap_or_default(),
        },
        spec,
    };
    serde_saphyr::to_string(&document).map_err(|e| {
        format!(
            "cannot render {} {} as YAML: {e}",
            K::kind(&()),
            object.name_any()
        )
    })
}

/// The Source first, then its rules sorted by name, so the text only changes when they do.
pub fn standalone_yaml(source: &Source, rules: &[&AlertRule]) -> Result<String, String> {
    let mut text = String::new();
    text += &format!("---\n{}\n", document(source, &source.spec)?.trim_end());
    for rule in rules {
        text += &format!("---\n{}\n", document(*rule, &rule.spec)?.trim_end());
    }
    Ok(text)
}

pub fn config_map(source: &Source, rules: &[&AlertRule]) -> Result<ConfigMap, String> {
    Ok(ConfigMap {
        metadata: owned_metadata(source),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            standalone_yaml(source, rules)?,
        )])),
        ..ConfigMap::default()
    })
}
