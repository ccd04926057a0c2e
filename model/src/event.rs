//! The one internal event record every intake format normalizes into, and its versioned wire
//! encoding on the JetStream stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object: event properties, traits and context.
pub type JsonObject = Map<String, Value>;

/// The JSON type of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Segment Spec call types. Native `POST /v1/events` events are `track` events.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Track,
    Identify,
    Group,
    Page,
    Screen,
    Alias,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        Self::Track,
        Self::Identify,
        Self::Group,
        Self::Page,
        Self::Screen,
        Self::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Group => "group",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Alias => "alias",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One customer event, normalized. Tenant and source always come from the write key that
/// sent it, never from the request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The tenant: the Kubernetes namespace of the Source the write key belongs to.
    pub tenant: String,
    /// The Source's name within the tenant.
    pub source: String,
    /// The client's de-duplication key (`messageId`), or one generated at intake.
    pub message_id: String,
    pub kind: EventKind,
    /// Event name for `track`, page or screen name for `page` / `screen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// The account (Segment `groupId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// For `alias`: the previous id being merged into `user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// When the event happened, corrected for client clock skew.
    pub event_time: DateTime<Utc>,
    /// When ingest received it.
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: JsonObject,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: JsonObject,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: JsonObject,
}

impl Event {
    /// The id rules group "per user" by: the user id, else the anonymous id.
    pub fn user_key(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.anonymous_id.as_deref())
    }
}

/// Versioned encoding of [`Event`] on the stream.
///
/// Schema version 1 is a JSON envelope `{"v":1,"event":{…}}` whose event object has the
/// fields of [`Event`] in snake_case, times as RFC 3339 strings, and empty optional fields
/// omitted. A consumer rejects versions it does not know instead of guessing.
pub mod wire {
    use super::Event;
    use serde::{Deserialize, Serialize};

    pub const SCHEMA_VERSION: u32 = 1;

    #[derive(Serialize)]
    struct EnvelopeOut<'a> {
        v: u32,
        event: &'a Event,
    }

    #[derive(Deserialize)]
    struct EnvelopeIn {
        v: u32,
        event: Event,
    }

    #[derive(Deserialize)]
    struct VersionOnly {
        v: u32,
    }

    #[derive(Debug, thiserror::Error)]
    pub enum WireError {
        #[error(
            "unsupported event schema version {found} (this build reads version {SCHEMA_VERSION})"
        )]
        UnsupportedVersion { found: u32 },
        #[error("malformed event payload: {0}")]
        Malformed(#[from] serde_json::Error),
    }

    pub fn encode(event: &Event) -> Vec<u8> {
        let envelope = EnvelopeOut {
            v: SCHEMA_VERSION,
            event,
        };
        // Serializing owned strings, JSON values and timestamps into a Vec cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Event, WireError> {
        match serde_json::from_slice::<EnvelopeIn>(bytes) {
            Ok(envelope) if envelope.v == SCHEMA_VERSION => Ok(envelope.event),
            Ok(envelope) => Err(WireError::UnsupportedVersion { found: envelope.v }),
            Err(err) => match serde_json::from_slice::<VersionOnly>(bytes) {
                Ok(VersionOnly { v }) if v != SCHEMA_VERSION => {
                    Err(WireError::UnsupportedVersion { found: v })
                }
                _ => Err(WireError::Malformed(err)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn sample() -> Event {
        Event {
            tenant: "acme".into(),
            source: "web".into(),
            message_id: "m-1".into(),
            kind: EventKind::Track,
            name: Some("checkout_completed".into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            group_id: Some("g1".into()),
            session_id: Some("s1".into()),
            previous_id: None,
            event_time: Utc.timestamp_millis_opt(1_700_000_000_123).unwrap(),
            received_at: Utc.timestamp_millis_opt(1_700_000_001_000).unwrap(),
            properties: json!({"value": 12.5, "items": [1, 2], "nested": {"a": null}})
                .as_object()
                .unwrap()
                .clone(),
            traits: Map::new(),
            context: json!({"ip": "10.1.2.3"}).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn wire_round_trip_keeps_every_field() {
        let event = sample();
        let bytes = wire::encode(&event);
        assert_eq!(wire::decode(&bytes).unwrap(), event);
    }

    #[test]
    fn wire_states_its_schema_version_and_omits_empty_fields() {
        let value: Value = serde_json::from_slice(&wire::encode(&sample())).unwrap();
        assert_eq!(value["v"], json!(wire::SCHEMA_VERSION));
        assert_eq!(
            value["event"]["event_time"],
            json!("2023-11-14T22:13:20.123Z")
        );
        assert!(value["event"].get("traits").is_none());
        assert!(value["event"].get("anonymous_id").is_none());
    }

    #[test]
    fn wire_rejects_unknown_versions_and_garbage() {
        let mut value: Value = serde_json::from_slice(&wire::encode(&sample())).unwrap();
        value["v"] = json!(2);
        let err = wire::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(matches!(
            err,
            wire::WireError::UnsupportedVersion { found: 2 }
        ));
        let err = wire::decode(br#"{"v":2,"event":"future format"}"#).unwrap_err();
        assert!(matches!(
            err,
            wire::WireError::UnsupportedVersion { found: 2 }
        ));
        assert!(matches!(
            wire::decode(b"not json").unwrap_err(),
            wire::WireError::Malformed(_)
        ));
    }

    #[test]
    fn user_key_falls_back_to_anonymous_id() {
        let mut event = sample();
        assert_eq!(event.user_key(), Some("u1"));
        event.user_id = None;
        event.anonymous_id = Some("anon".into());
        assert_eq!(event.user_key(), Some("anon"));
    }
}
