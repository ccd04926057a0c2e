//! Status subresources: conditions as every Kubernetes controller reports them, plus the live
//! alert state the evaluator reports for `kubectl get alertrules`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec was validated: `True`, or `False` with the validation message.
pub const CONDITION_ACCEPTED: &str = "Accepted";
/// What the spec asks for runs: evaluator deployed and consuming.
pub const CONDITION_READY: &str = "Ready";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The most severe state over all groups: Firing if any group fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlertState>,
    /// Groups (accounts, users…) currently firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_groups: Option<u32>,
    /// Groups whose condition holds but whose `for` has not yet elapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_groups: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
