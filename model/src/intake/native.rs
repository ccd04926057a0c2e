//! The native batch format of `POST /v1/events`:
//! `{"events":[{"event_type":"…","timestamp":"…","user_id":"…","properties":{…}}, …]}`.
//!
//! Native events are `track` events. The format is strict (unknown keys are errors) because,
//! unlike Segment traffic, it is written against this API's own documentation.

use super::{IntakeError, Limits, Receipt, generate_message_id, parse_event_json};
use crate::event::{Event, EventKind, JsonObject};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeBatch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeEvent {
    event_type: String,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    anonymous_id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    properties: JsonObject,
}

/// Parses and validates a whole native batch. Either every event is valid and returned, or
/// the first problem is: a bad event rejects the request, so nothing of it is published.
pub fn parse_native_batch(
    body: &[u8],
    receipt: &Receipt,
    limits: &Limits,
) -> Result<Vec<Event>, IntakeError> {
    limits.check_body(body)?;
    let batch: NativeBatch =
        serde_json::from_slice(body).map_err(|e| IntakeError::from_body_parse(&e))?;
    limits.check_batch_len(batch.events.len())?;
    batch
        .events
        .iter()
        .enumerate()
        .map(|(index, raw)| parse_event(index, raw, receipt, limits))
        .collect()
}

fn parse_event(
    index: usize,
    raw: &RawValue,
    receipt: &Receipt,
    limits: &Limits,
) -> Result<Event, IntakeError> {
    limits.check_event_size(index, raw.get())?;
    let event: NativeEvent = parse_event_json(index, raw.get())?;
    if event.event_type.trim().is_empty() {
        return Err(IntakeError::invalid(
            index,
            "event_type",
            "must not be empty",
        ));
    }
    let user_id = non_empty(event.user_id);
    let anonymous_id = non_empty(event.anonymous_id);
    let group_id = non_empty(event.group_id);
    if user_id.is_none() && anonymous_id.is_none() && group_id.is_none() {
        return Err(IntakeError::invalid(
            index,
            "user_id",
            "one of user_id, anonymous_id or group_id is required",
        ));
    }
    limits.check_object(index, "properties", &event.properties)?;
    Ok(Event {
        tenant: receipt.tenant.clone(),
        source: receipt.source.clone(),
        message_id: non_empty(event.message_id).unwrap_or_else(generate_message_id),
        kind: EventKind::Track,
        name: Some(event.event_type),
        user_id,
        anonymous_id,
        group_id,
        session_id: non_empty(event.session_id),
        previous_id: None,
        event_time: event.timestamp.unwrap_or(receipt.received_at),
        received_at: receipt.received_at,
        properties: event.properties,
        traits: JsonObject::new(),
        context: JsonObject::new(),
    })
}

pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn receipt() -> Receipt {
        Receipt {
            tenant: "acme".into(),
            source: "web".into(),
            received_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }
    }

    fn parse(body: serde_json::Value) -> Result<Vec<Event>, IntakeError> {
        parse_native_batch(
            &serde_json::to_vec(&body).unwrap(),
            &receipt(),
            &Limits::default(),
        )
    }

    #[test]
    fn normalizes_every_field() {
        let events = parse(json!({"events": [{
            "event_type": "checkout_completed", "timestamp": "2026-01-01T00:00:00+01:00",
            "user_id": "u1", "anonymous_id": "a1", "session_id": "s1", "group_id": "g1",
            "message_id": "m1", "properties": {"value": 42}
        }]}))
        .unwrap();
        let e = &events[0];
        assert_eq!((e.tenant.as_str(), e.source.as_str()), ("acme", "web"));
        assert_eq!(e.kind, EventKind::Track);
        assert_eq!(e.name.as_deref(), Some("checkout_completed"));
        assert_eq!(e.message_id, "m1");
        assert_eq!(
            e.event_time,
            Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()
        );
        assert_eq!(e.received_at, receipt().received_at);
        assert_eq!(e.properties["value"], json!(42));
        assert_eq!(e.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn fills_defaults_for_optional_fields() {
        let events = parse(json!({"events": [{"event_type": "x", "anonymous_id": "a"}]})).unwrap();
        assert_eq!(events[0].event_time, receipt().received_at);
        assert!(uuid::Uuid::parse_str(&events[0].message_id).is_ok());
    }

    #[test]
    fn rejects_unknown_keys_naming_the_event_and_field() {
        let err = parse(json!({"events": [
            {"event_type": "ok", "user_id": "u"},
            {"event_type": "x", "user_id": "u", "tenant": "other"}
        ]}))
        .unwrap_err();
        assert_eq!(err.code(), "invalid_event");
        assert_eq!(err.index(), Some(1));
        assert!(err.to_string().contains("tenant"), "{err}");
    }

    #[test]
    fn rejects_wrong_types_and_missing_ids() {
        let err = parse(json!({"events": [{"event_type": "x", "user_id": "u", "timestamp": 12}]}))
            .unwrap_err();
        assert!(
            matches!(&err, IntakeError::InvalidEvent { field, .. } if field == "timestamp"),
            "{err}"
        );
        let err = parse(json!({"events": [{"event_type": "x"}]})).unwrap_err();
        assert!(err.to_string().contains("user_id"), "{err}");
        let err = parse(json!({"events": [{"event_type": "", "user_id": "u"}]})).unwrap_err();
        assert!(err.to_string().contains("event_type"), "{err}");
    }

    #[test]
    fn each_limit_is_a_distinct_error() {
        let limits = Limits {
            max_batch_len: 2,
            max_event_bytes: 100,
            max_body_bytes: 400,
            ..Limits::default()
        };
        let body = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
        let one = json!({"event_type": "x", "user_id": "u"});
        let code = |b: Vec<u8>| {
            parse_native_batch(&b, &receipt(), &limits)
                .unwrap_err()
                .code()
        };
        assert_eq!(
            code(body(json!({"events": [one, one, one]}))),
            "batch_too_long"
        );
        assert_eq!(code(body(json!({"events": []}))), "empty_batch");
        let big = json!({"event_type": "x", "user_id": "u", "properties": {"p": "y".repeat(100)}});
        assert_eq!(code(body(json!({"events": [big]}))), "event_too_large");
        assert_eq!(code(vec![b' '; 401]), "body_too_large");
        assert_eq!(code(b"{\"events\": [".to_vec()), "malformed_json");
        assert_eq!(code(b"{\"batch\": []}".to_vec()), "invalid_body");
    }

    #[test]
    fn malformed_json_reports_its_position() {
        let err =
            parse_native_batch(b"{\n  \"events\": [}", &receipt(), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, IntakeError::MalformedJson { line: 2, .. }),
            "{err:?}"
        );
    }
}
