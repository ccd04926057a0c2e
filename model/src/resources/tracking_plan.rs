//! A Source's tracking plan: which events may be sent and the types of their properties.
//! `enforced` plans make ingest reject violations (400 naming event and property);
//! `reportOnly` plans only count them.

use crate::event::{Event, EventKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingPlan {
    #[serde(default)]
    pub mode: PlanMode,
    /// Whether `track` events not listed in `events` are allowed.
    #[serde(default)]
    pub allow_unplanned_events: bool,
    #[serde(default)]
    pub events: Vec<PlannedEvent>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlanMode {
    Enforced,
    #[default]
    ReportOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedEvent {
    /// The `track` event name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Property name to its JSON type.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyType>,
    /// Properties that must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Whether properties not listed are allowed.
    #[serde(default)]
    pub allow_unplanned_properties: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Number => value.is_number(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Boolean => value.is_boolean(),
            Self::Object => value.is_object(),
            Self::Array => value.is_array(),
        }
    }
}

/// One way an event breaks the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanViolation {
    #[error("event {event:?} is not in the tracking plan")]
    UnplannedEvent { event: String },
    #[error("event {event:?}: property {property:?} is not in the tracking plan")]
    UnplannedProperty { event: String, property: String },
    #[error("event {event:?}: property {property:?} is required")]
    MissingProperty { event: String, property: String },
    #[error("event {event:?}: property {property:?} must be {}", expected.as_str())]
    WrongType {
        event: String,
        property: String,
        expected: PropertyType,
    },
}

impl TrackingPlan {
    /// Violations of a `track` event; other kinds are not planned. `null` values count as
    /// absent.
    pub fn check(&self, event: &Event) -> Vec<PlanViolation> {
        let (EventKind::Track, Some(name)) = (event.kind, event.name.as_deref()) else {
            return Vec::new();
        };
        let Some(planned) = self.events.iter().find(|p| p.name == name) else {
            return if self.allow_unplanned_events {
                Vec::new()
            } else {
                vec![PlanViolation::UnplannedEvent { event: name.into() }]
            };
        };
        let mut violations = Vec::new();
        for property in &planned.required {
            if event.properties.get(property).is_none_or(Value::is_null) {
                violations.push(PlanViolation::MissingProperty {
                    event: name.into(),
                    property: property.clone(),
                });
            }
        }
        for (property, value) in event.properties.iter().filter(|(_, v)| !v.is_null()) {
            match planned.properties.get(property) {
                Some(expected) if !expected.admits(value) => {
                    violations.push(PlanViolation::WrongType {
                        event: name.into(),
                        property: property.clone(),
                        expected: *expected,
                    })
                }
                None if !planned.allow_unplanned_properties => {
                    violations.push(PlanViolation::UnplannedProperty {
                        event: name.into(),
                        property: property.clone(),
                    })
                }
                _ => {}
            }
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::test_support::event;
    use serde_json::json;

    fn plan() -> TrackingPlan {
        TrackingPlan {
            mode: PlanMode::Enforced,
            allow_unplanned_events: false,
            events: vec![PlannedEvent {
                name: "checkout".into(),
                properties: [
                    ("value".to_string(), PropertyType::Number),
                    ("qty".to_string(), PropertyType::Integer),
                ]
                .into(),
                required: vec!["value".into()],
                allow_unplanned_properties: false,
            }],
        }
    }

    #[test]
    fn conforming_event_passes() {
        assert_eq!(
            plan().check(&event(json!({"value": 9.5, "qty": 2, "note": null}))),
            vec![]
        );
    }

    #[test]
    fn each_violation_names_event_and_property() {
        let violations = plan().check(&event(json!({"value": "9.5", "qty": 2.5, "coupon": "x"})));
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                r#"event "checkout": property "coupon" is not in the tracking plan"#,
                r#"event "checkout": property "qty" must be integer"#,
                r#"event "checkout": property "value" must be number"#,
            ]
        );
        let missing = plan().check(&event(json!({"qty": 1})));
        assert!(
            matches!(&missing[..], [PlanViolation::MissingProperty { property, .. }] if property == "value")
        );
    }

    #[test]
    fn unplanned_events_and_other_kinds() {
        let mut e = event(json!({}));
        e.name = Some("signup".into());
        assert_eq!(
            plan().check(&e),
            vec![PlanViolation::UnplannedEvent {
                event: "signup".into()
            }]
        );
        let open = TrackingPlan {
            allow_unplanned_events: true,
            ..plan()
        };
        assert!(open.check(&e).is_empty());
        e.kind = EventKind::Identify;
        assert!(plan().check(&e).is_empty());
    }
}
