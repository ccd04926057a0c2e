//! The `AlertRule` resource: one threshold rule over a Source's events.

use super::DNS_LABEL_PATTERN;
use super::schema::any_json;
use super::status::AlertRuleStatus;
use crate::duration::DURATION_PATTERN;
use crate::rule::{AggregateFunction, Comparator, EventFilter, Operator};
use crate::secrets::SecretKeyRef;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// "For accounts with teamSize > 10 and monthlyCost >= 1000, fire when sum(value) over 7 days
/// exceeds 5000." The original threshold config (`conditions`, `aggregation`, `triggerValue`)
/// is a valid spec as-is; every other field is optional.
// Each printcolumn repeats `type_`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "customersignal.io",
    version = "v1alpha1",
    kind = "AlertRule",
    namespaced,
    doc = "A threshold rule over a Source's events: conditions, a windowed aggregate per group, a trigger and a webhook.",
    status = "AlertRuleStatus",
    shortname = "ar",
    category = "customersignal",
    printcolumn(name = "Source", type_ = "string", json_path = ".spec.source"),
    printcolumn(
        name = "Function",
        type_ = "string",
        json_path = ".spec.aggregation.function"
    ),
    printcolumn(
        name = "Window",
        type_ = "string",
        json_path = ".spec.aggregation.timeWindow"
    ),
    printcolumn(name = "Threshold", type_ = "number", json_path = ".spec.triggerValue"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleSpec {
    /// Name of the Source (in this namespace) whose events the rule reads. Empty: every Source
    /// of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_LABEL_PATTERN))]
    pub source: Option<String>,
    /// Which events count, by name and kind. Empty: every event.
    #[serde(default, skip_serializing_if = "EventFilter::is_empty")]
    pub events: EventFilter,
    /// All must hold for an event to count (logical AND).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSpec>,
    pub aggregation: AggregationSpec,
    /// `user`, `account`, or a field path (e.g. `properties.plan`): one alert per group.
    /// Empty: one alert for the whole rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// The threshold the aggregate is compared with.
    pub trigger_value: f64,
    /// How the aggregate is compared with `triggerValue`.
    #[serde(default)]
    pub comparator: Comparator,
    /// How long the trigger must hold before the alert fires (default 0s).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_duration: Option<String>,
    /// How often a firing alert is notified again (default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub repeat_interval: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    /// Copied into every notification.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Template for the notification's summary (minijinja): `{{ rule }}`, `{{ group }}`,
    /// `{{ value }}`, `{{ threshold }}`, `{{ labels.<name> }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub summary: Option<String>,
    /// Where notifications go. Without one, alerts are recorded but not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConditionSpec {
    /// Field path: `properties.x`, `traits.x`, `context.x`, `user.traits.x`,
    /// `account.traits.x`, `event.<attribute>`, or a bare name.
    #[schemars(length(min = 1, max = 512))]
    pub field: String,
    pub operator: Operator,
    /// Operand: a number for `> >= < <=`, a list for `in`/`not_in`, a boolean for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregationSpec {
    /// The field aggregated; not needed for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub function: AggregateFunction,
    /// Sliding window, from 1s to 30d: `30s`, `5m`, `7d`.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub time_window: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// `http://` or `https://` URL that receives the notifications.
    #[schemars(regex(pattern = r"^https?://"), length(max = 2048))]
    pub url: String,
    /// Secret key holding the Standard Webhooks signing secret (`whsec_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}
