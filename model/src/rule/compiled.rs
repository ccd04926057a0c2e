//! A validated rule, ready to evaluate: parsed paths, durations and operands.

use super::aggregate::{Accumulator, AggregateFunction};
use super::condition::CompiledCondition;
use super::field::{EventContext, FieldPath};
use super::trigger::Comparator;
use super::window::Window;
use crate::duration::{self, MAX_WINDOW, MIN_WINDOW};
use crate::event::{Event, EventKind};
use crate::resources::{
    AlertRuleSpec, Severity, WebhookSpec, check_dns_label, check_dns_subdomain,
};
use crate::validation::FieldErrors;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Default `repeatInterval`, as Alertmanager's.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Which events a rule reads. Both lists empty: every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventFilter {
    /// Event names (`track` event, page or screen name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Event kinds: track, identify, group, page, screen, alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.kinds.is_empty()
    }

    pub fn admits(&self, event: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && (self.names.is_empty()
                || event.name.as_ref().is_some_and(|n| self.names.contains(n)))
    }
}

/// What one alert is per: the whole rule, each user, each account, or each value of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Rule,
    User,
    Account,
    Field(FieldPath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRule {
    pub tenant: String,
    pub name: String,
    pub source: Option<String>,
    pub filter: EventFilter,
    pub conditions: Vec<CompiledCondition>,
    pub function: AggregateFunction,
    pub field: Option<FieldPath>,
    pub window: Duration,
    pub group_by: GroupBy,
    pub comparator: Comparator,
    pub threshold: f64,
    pub for_duration: Duration,
    pub repeat_interval: Duration,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub summary: Option<String>,
    pub webhook: Option<WebhookSpec>,
}

impl CompiledRule {
    /// Validates `spec` of rule `tenant/name`, reporting every problem with its path.
    pub fn compile(tenant: &str, name: &str, spec: &AlertRuleSpec) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if let Err(e) = check_dns_label(tenant) {
            errors.push("metadata.namespace", e);
        }
        if let Err(e) = check_dns_subdomain(name) {
            errors.push("metadata.name", e);
        }
        if let Some(source) = &spec.source
            && let Err(e) = check_dns_label(source)
        {
            errors.push("spec.source", e);
        }
        for (i, name) in spec.events.names.iter().enumerate() {
            if name.is_empty() {
                errors.push(format!("spec.events.names[{i}]"), "must not be empty");
            }
        }
        let mut conditions = Vec::with_capacity(spec.conditions.len());
        for (i, condition) in spec.conditions.iter().enumerate() {
            let path = format!("spec.conditions[{i}]");
            match FieldPath::parse(&condition.field) {
                Ok(field) => match CompiledCondition::new(
                    field,
                    condition.operator,
                    condition.value.as_ref(),
                ) {
                    Ok(c) => conditions.push(c),
                    Err(e) => errors.push(format!("{path}.value"), e),
                },
                Err(e) => errors.push(format!("{path}.field"), e),
            }
        }
        let aggregation = &spec.aggregation;
        let function = aggregation.function;
        let field = match (&aggregation.field, function.needs_field()) {
            (Some(text), _) => FieldPath::parse(text)
                .map_err(|e| errors.push("spec.aggregation.field", e))
                .ok(),
            (None, true) => {
                errors.push(
                    "spec.aggregation.field",
                    format!(
                        "{} needs a field to aggregate, e.g. properties.value",
                        function.as_str()
                    ),
                );
                None
            }
            (None, false) => None,
        };
        let window = duration::parse_bounded(&aggregation.time_window, MIN_WINDOW, MAX_WINDOW)
            .map_err(|e| errors.push("spec.aggregation.timeWindow", e))
            .unwrap_or(MIN_WINDOW);
        let group_by = match spec.group_by.as_deref().map(str::trim) {
            None | Some("") => GroupBy::Rule,
            Some("user") => GroupBy::User,
            Some("account") => GroupBy::Account,
            Some(path) => match FieldPath::parse(path) {
                Ok(field) => GroupBy::Field(field),
                Err(e) => {
                    errors.push(
                        "spec.groupBy",
                        format!("use user, account or a field path: {e}"),
                    );
                    GroupBy::Rule
                }
            },
        };
        if !spec.trigger_value.is_finite() {
            errors.push("spec.triggerValue", "must be a finite number");
        }
        let optional_duration =
            |text: &Option<String>, path: &str, default: Duration, errors: &mut FieldErrors| {
                text.as_deref()
                    .map_or(Ok(default), duration::parse)
                    .unwrap_or_else(|e| {
                        errors.push(path, e);
                        default
                    })
            };
        let for_duration =
            optional_duration(&spec.for_duration, "spec.for", Duration::ZERO, &mut errors);
        let repeat_interval = optional_duration(
            &spec.repeat_interval,
            "spec.repeatInterval",
            DEFAULT_REPEAT_INTERVAL,
            &mut errors,
        );
        if repeat_interval < Duration::from_secs(1) {
            errors.push("spec.repeatInterval", "must be at least 1s");
        }
        if let Some(summary) = &spec.summary
            && let Err(e) = minijinja::Environment::new().template_from_str(summary)
        {
            errors.push("spec.summary", format!("invalid template: {e}"));
        }
        if let Some(webhook) = &spec.webhook
            && !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://"))
        {
            errors.push(
                "spec.webhook.url",
                format!("{:?} must start with http:// or https://", webhook.url),
            );
        }
        errors.into_result(Self {
            tenant: tenant.to_string(),
            name: name.to_string(),
            source: spec.source.clone(),
            filter: spec.events.clone(),
            conditions,
            function,
            field,
            window,
            group_by,
            comparator: spec.comparator,
            threshold: spec.trigger_value,
            for_duration,
            repeat_interval,
            severity: spec.severity,
            labels: spec.labels.clone(),
            summary: spec.summary.clone(),
            webhook: spec.webhook.clone(),
        })
    }

    /// Whether the event counts for this rule: its Source, filter and every condition.
    pub fn matches(&self, ctx: &EventContext<'_>) -> bool {
        let event = ctx.event;
        event.tenant == self.tenant
            && self.source.as_ref().is_none_or(|s| *s == event.source)
            && self.filter.admits(event)
            && self.conditions.iter().all(|c| c.matches(ctx))
    }

    /// The group the event's value counts toward; `None` when the event has no such group
    /// (e.g. no account), in which case it does not count.
    pub fn group_key(&self, ctx: &EventContext<'_>) -> Option<String> {
        match &self.group_by {
            GroupBy::Rule => Some(String::new()),
            GroupBy::User => ctx.event.user_key().map(str::to_owned),
            GroupBy::Account => ctx.account_id.map(str::to_owned),
            GroupBy::Field(path) => match path.resolve(ctx)?.as_ref() {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            },
        }
    }

    /// Feeds the event's aggregated value into an accumulator of this rule's function.
    pub fn observe(&self, ctx: &EventContext<'_>, accumulator: &mut Accumulator) -> bool {
        match &self.field {
            Some(path) => match path.resolve(ctx) {
                Some(value) => accumulator.observe(Some(value.as_ref())),
                None => false,
            },
            None => accumulator.observe(None),
        }
    }

    pub fn new_accumulator(&self) -> Accumulator {
        Accumulator::new(self.function)
    }

    /// An empty sliding window of this rule's function and length, for one group.
    pub fn new_window(&self) -> Window {
        Window::new(self.function, self.window)
    }

    /// Whether an aggregate value trips the trigger.
    pub fn fires(&self, value: Option<f64>) -> bool {
        self.comparator.fires(value, self.threshold)
    }
}

#[cfg(test)]
#[path = "compiled_tests.rs"]
mod tests;
