//! What the cluster should hold for one Source: a pure function of the Source, its AlertRules,
//! the secret values they reference and the operator's settings. Everything the reconciler
//! applies comes from here, so almost all of the operator is tested without any API server.

mod access;
mod config_map;
mod deployment;
mod write_keys;

pub use config_map::{CONFIG_FILE, standalone_yaml};
pub use write_keys::{key_file, write_keys_entry_name};

use crate::config::EvaluatorSettings;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use model::resources::{AlertRule, Source};
use model::rule::CompiledRule;
use model::secrets::SecretKeyRef;
use std::collections::BTreeMap;

/// Secret values the reconciler read for a Source, by (Secret name, key).
pub type SecretValues = BTreeMap<(String, String), String>;

/// The field manager of every server-side apply, so ownership of fields is visible.
pub const FIELD_MANAGER: &str = "customersignal-operator";

/// Name shared by every object rendered for a Source's evaluator.
pub fn evaluator_name(source: &str) -> String {
    format!("cs-evaluator-{source}")
}

/// Labels that select one Source's evaluator pods (also on every object rendered for it).
pub fn selector_labels(source: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "customersignal".into()),
        ("app.kubernetes.io/component".into(), "evaluator".into()),
        ("customersignal.io/source".into(), source.into()),
    ])
}

fn labels(source: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(source);
    labels.insert(
        "app.kubernetes.io/managed-by".into(),
        "customersignal-operator".into(),
    );
    labels
}

/// Metadata of an object owned by the Source: same namespace, garbage-collected with it.
fn owned_metadata(source: &Source) -> ObjectMeta {
    ObjectMeta {
        name: Some(evaluator_name(&source.name_any())),
        namespace: source.namespace(),
        labels: Some(labels(&source.name_any())),
        owner_references: owner_reference(source).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(source: &Source) -> Option<OwnerReference> {
    // A Source read from the API always has a uid; one built in memory has none.
    let mut owner = source.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

/// The AlertRules of a namespace that read a Source's events, split into those that compile
/// (rendered into the evaluator's config) and those that don't (with the validation message).
pub struct SelectedRules<'a> {
    pub valid: Vec<&'a AlertRule>,
    pub invalid: Vec<(&'a AlertRule, String)>,
}

pub fn select_rules<'a>(source: &Source, rules: &'a [AlertRule]) -> SelectedRules<'a> {
    let name = source.name_any();
    let mut selected = SelectedRules {
        valid: Vec::new(),
        invalid: Vec::new(),
    };
    let mut matching: Vec<&AlertRule> = rules
        .iter()
        .filter(|r| r.namespace() == source.namespace())
        .filter(|r| r.spec.source.as_deref().is_none_or(|s| s == name))
        .filter(|r| r.meta().deletion_timestamp.is_none())
        .collect();
    matching.sort_by_key(|r| r.name_any());
    for rule in matching {
        match validate_rule(rule) {
            Ok(()) => selected.valid.push(rule),
            Err(message) => selected.invalid.push((rule, message)),
        }
    }
    selected
}

/// Compiles a rule exactly as the evaluator will; the error is the `Accepted=False` message.
pub fn validate_rule(rule: &AlertRule) -> Result<(), String> {
    let tenant = rule.namespace().unwrap_or_default();
    CompiledRule::compile(&tenant, &rule.name_any(), &rule.spec)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Every secret a Source's evaluator and write keys need: write keys first, then the rules'
/// signing secrets, without duplicates.
pub fn referenced_secrets(source: &Source, rules: &[&AlertRule]) -> Vec<SecretKeyRef> {
    let mut refs: Vec<SecretKeyRef> = source.spec.write_keys.clone();
    for rule in rules {
        if let Some(reference) = rule
            .spec
            .webhook
            .as_ref()
            .and_then(|w| w.secret_ref.clone())
            && !refs.contains(&reference)
        {
            refs.push(reference);
        }
    }
    refs
}

/// The objects applied into the Source's namespace, all named [`evaluator_name`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorObjects {
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub secret: Secret,
    pub config_map: ConfigMap,
    pub deployment: Deployment,
}

/// Renders a Source's evaluator from the rules that compile. Secret values that were not found
/// are simply absent: the evaluator retries a missing signing secret rather than sending
/// unsigned, and the reconciler reports it on the rule's status.
pub fn evaluator_objects(
    settings: &EvaluatorSettings,
    source: &Source,
    rules: &[&AlertRule],
    secrets: &SecretValues,
) -> Result<EvaluatorObjects, String> {
    Ok(EvaluatorObjects {
        service_account: access::service_account(source),
        role: access::role(source),
        role_binding: access::role_binding(source),
        secret: access::secret(settings, source, rules, secrets),
        config_map: config_map::config_map(source, rules)?,
        deployment: deployment::deployment(settings, source)?,
    })
}

#[cfg(test)]
mod tests;
