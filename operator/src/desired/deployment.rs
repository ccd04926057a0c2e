//! The evaluator Deployment of a Source: hardened pod, probes, config and secrets mounted so
//! that rule changes reach the running evaluator without a restart.

use super::access::CLICKHOUSE_PASSWORD_KEY;
use super::config_map::CONFIG_FILE;
use super::{evaluator_name, owned_metadata, selector_labels};
use crate::config::EvaluatorSettings;
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use model::resources::Source;
use serde_json::json;

const CONFIG_DIR: &str = "/etc/customersignal/config";
const SECRETS_DIR: &str = "/var/run/customersignal/secrets";
pub const METRICS_PORT: u16 = 9090;

/// Resources when the Source sets none: enough for the bounded windows of a few hundred rules.
fn default_resources() -> serde_json::Value {
    json!({
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "1Gi"}
    })
}

pub fn deployment(settings: &EvaluatorSettings, source: &Source) -> Result<Deployment, String> {
    let name = evaluator_name(&source.name_any());
    let namespace = source.namespace().unwrap_or_default();
    let labels = selector_labels(&source.name_any());
    let resources = source
        .spec
        .evaluator
        .resources
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(default_resources);
    let probe = |path: &str| {
        json!({
            "httpGet": {"path": path, "port": "metrics"},
            "periodSeconds": 10,
            "failureThreshold": 3
        })
    };
    let env = |key: &str, value: &str| json!({"name": key, "value": value});
    // Written as JSON for readability; the unit tests round-trip it through the typed object
    // so a misspelled field fails a test instead of vanishing.
    let spec = json!({
        "replicas": source.spec.evaluator.replicas,
        // The Source's windows live in one process: never run old and new side by side.
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": METRICS_PORT.to_string()}
            },
            "spec": {
                "serviceAccountName": name,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "terminationGracePeriodSeconds": 60,
                "containers": [{
                    "name": "evaluator",
                    "image": settings.evaluator_image,
                    "imagePullPolicy": settings.evaluator_image_pull_policy,
                    "args": [
                        "run",
                        "--config", format!("{CONFIG_DIR}/{CONFIG_FILE}"),
                        "--secrets-dir", SECRETS_DIR,
                        "--listen", format!("0.0.0.0:{METRICS_PORT}"),
                        "--report-status",
                        "--log-json"
                    ],
                    "env": [
                        env("CS_NATS_URL", &settings.nats_url),
                        env("CS_STREAM", &settings.stream),
                        env("CS_CLICKHOUSE_URL", &settings.clickhouse.clickhouse_url),
                        env("CS_CLICKHOUSE_DATABASE", &settings.clickhouse.clickhouse_database),
                        env("CS_CLICKHOUSE_USER", &settings.clickhouse.clickhouse_user),
                        env("CS_CLICKHOUSE_VALIDATION", settings.clickhouse.clickhouse_validation.as_str()),
                        {"name": "CS_CLICKHOUSE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": name, "key": CLICKHOUSE_PASSWORD_KEY}}}
                    ],
                    "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
                    "livenessProbe": probe("/healthz"),
                    "readinessProbe": probe("/readyz"),
                    "resources": resources,
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": true},
                        {"name": "secrets", "mountPath": format!("{SECRETS_DIR}/{namespace}"), "readOnly": true}
                    ]
                }],
                "volumes": [
                    {"name": "config", "configMap": {"name": name}},
                    {"name": "secrets", "secret": {"secretName": name}}
                ]
            }
        }
    });
    Ok(Deployment {
        metadata: owned_metadata(source),
        spec: serde_json::from_value(spec).map_err(|e| format!("evaluator Deployment: {e}"))?,
        status: None,
    })
}
