//! The `Source` resource: one stream of customer events, its write keys, retention and
//! tracking plan, and the evaluator that processes it.

use super::status::SourceStatus;
use super::tracking_plan::TrackingPlan;
use crate::secrets::SecretKeyRef;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const DEFAULT_RETENTION_DAYS: u32 = 90;

// Each printcolumn repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "customersignal.io",
    version = "v1alpha1",
    kind = "Source",
    namespaced,
    doc = "A stream of customer events: its write keys, retention, tracking plan and evaluator.",
    status = "SourceStatus",
    shortname = "src",
    category = "customersignal",
    printcolumn(
        name = "Retention",
        type_ = "integer",
        json_path = ".spec.retentionDays"
    ),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.trackingPlan.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// Secret keys holding the write keys clients send. Several allow rotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_keys: Vec<SecretKeyRef>,
    /// Days events are kept in ClickHouse (default 90).
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_plan: Option<TrackingPlan>,
    #[serde(default)]
    pub evaluator: EvaluatorSpec,
}

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// The evaluator Deployment the operator runs for this Source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatorSpec {
    /// 1 (default), or 0 to pause the Source's evaluation. A Source's windows live in one
    /// process, so it never runs twice.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_replicas() -> i32 {
    1
}

impl Default for EvaluatorSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            resources: None,
        }
    }
}
