//! `operator render`: what the operator would apply for the Sources and AlertRules of a YAML
//! file or directory, without a cluster. For GitOps reviews and `kubectl diff`, and so tests
//! can validate the rendered objects against the Kubernetes schemas offline.

use crate::config::EvaluatorSettings;
use crate::desired::{self, SecretValues};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use model::resources::{AlertRule, Source};
use model::secrets::StandaloneSecrets;
use model::standalone::Catalog;
use serde::Serialize;
use std::collections::BTreeMap;

fn yaml<T: Serialize>(object: &T) -> Result<String, String> {
    serde_saphyr::to_string(object).map_err(|e| e.to_string())
}

/// Every object of every Source in the catalog, then the write-keys Secret, as multi-document
/// YAML. Secrets resolve as in standalone mode; unresolved ones are left out (and listed).
pub fn render(
    catalog: &Catalog,
    settings: &EvaluatorSettings,
    secrets: &StandaloneSecrets,
    operator_namespace: &str,
    write_keys_secret: &str,
) -> Result<(String, Vec<String>), String> {
    let rules: Vec<AlertRule> = catalog
        .rules
        .iter()
        .map(|r| {
            let mut rule = AlertRule::new(&r.compiled.name, r.spec.clone());
            rule.metadata.namespace = Some(r.compiled.tenant.clone());
            rule
        })
        .collect();
    let mut documents = Vec::new();
    let mut missing = Vec::new();
    let mut write_keys = BTreeMap::new();
    for loaded in &catalog.sources {
        let mut source = Source::new(&loaded.name, loaded.spec.clone());
        source.metadata.namespace = Some(loaded.tenant.clone());
        let selected = desired::select_rules(&source, &rules);
        let mut values = SecretValues::new();
        for reference in desired::referenced_secrets(&source, &selected.valid) {
            match secrets.resolve(&loaded.tenant, &reference) {
                Ok(value) => {
                    values.insert((reference.name, reference.key), value);
                }
                Err(e) => missing.push(e.to_string()),
            }
        }
        let o = desired::evaluator_objects(settings, &source, &selected.valid, &values)?;
        documents.push(yaml(&o.service_account)?);
        documents.push(yaml(&o.role)?);
        documents.push(yaml(&o.role_binding)?);
        documents.push(yaml(&o.secret)?);
        documents.push(yaml(&o.config_map)?);
        documents.push(yaml(&o.deployment)?);
        let (file, _) = desired::key_file(&source, &values);
        let json = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        write_keys.insert(
            desired::write_keys_entry_name(&loaded.tenant, &loaded.name),
            ByteString(json),
        );
    }
    let keys = Secret {
        metadata: ObjectMeta {
            name: Some(write_keys_secret.into()),
            namespace: Some(operator_namespace.into()),
            ..ObjectMeta::default()
        },
        data: Some(write_keys),
        type_: Some("Opaque".into()),
        ..Secret::default()
    };
    documents.push(yaml(&keys)?);
    let text = documents
        .iter()
        .map(|d| format!("---\n{}\n", d.trim_end()))
        .collect();
    Ok((text, missing))
}
