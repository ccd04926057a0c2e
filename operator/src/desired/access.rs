//! The evaluator's identity and credentials: a ServiceAccount allowed only to report alert
//! state on its namespace's AlertRules, and a Secret with the ClickHouse password and the
//! signing secrets its rules reference (copied, so a new rule never needs a new volume).

use super::{SecretValues, evaluator_name, owned_metadata};
use crate::config::EvaluatorSettings;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use model::resources::{AlertRule, Source};
use model::secrets::flat_file_name;
use std::collections::BTreeMap;

/// Key of the ClickHouse password in the evaluator's Secret (no `_`, so it can't collide with a
/// copied `<name>_<key>` entry).
pub const CLICKHOUSE_PASSWORD_KEY: &str = "clickhouse-password";

pub fn service_account(source: &Source) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_metadata(source),
        ..ServiceAccount::default()
    }
}

pub fn role(source: &Source) -> Role {
    Role {
        metadata: owned_metadata(source),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["customersignal.io".into()]),
            resources: Some(vec!["alertrules/status".into()]),
            verbs: vec!["get".into(), "patch".into()],
            ..PolicyRule::default()
        }]),
    }
}

pub fn role_binding(source: &Source) -> RoleBinding {
    let name = evaluator_name(&source.name_any());
    RoleBinding {
        metadata: owned_metadata(source),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name,
            namespace: source.namespace(),
            ..Subject::default()
        }]),
    }
}

pub fn secret(
    settings: &EvaluatorSettings,
    source: &Source,
    rules: &[&AlertRule],
    secrets: &SecretValues,
) -> Secret {
    let mut data = BTreeMap::from([(
        CLICKHOUSE_PASSWORD_KEY.to_string(),
        ByteString(settings.clickhouse.clickhouse_password.clone().into_bytes()),
    )]);
    for reference in rules
        .iter()
        .filter_map(|r| r.spec.webhook.as_ref()?.secret_ref.as_ref())
    {
        if let Some(value) = secrets.get(&(reference.name.clone(), reference.key.clone())) {
            data.insert(
                flat_file_name(reference),
                ByteString(value.clone().into_bytes()),
            );
        }
    }
    Secret {
        metadata: owned_metadata(source),
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}
