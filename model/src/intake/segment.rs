//! Segment Spec messages (`track`, `identify`, `group`, `page`, `screen`, `alias`, `batch`),
//! as the Segment SDKs send them to the HTTP Tracking API.
//!
//! Parsing happens in two steps because the write key may sit in the body (`writeKey`):
//! [`SegmentCall::parse`] validates the request and exposes the key; once ingest has
//! resolved the key to a tenant and source, [`SegmentCall::into_events`] normalizes.
//! Unknown keys are ignored, as Segment does: SDKs send `_metadata`, `channel` and others.

use super::native::non_empty;
use super::{IntakeError, Limits, Receipt, generate_message_id, parse_event_json};
use crate::event::{Event, EventKind, JsonObject, json_type_name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One validated Segment request: a single call or a batch.
#[derive(Debug)]
pub struct SegmentCall {
    messages: Vec<Message>,
    /// The `writeKey` body member, for SDKs that send the key there instead of basic auth.
    pub write_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    message_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    anonymous_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    group_id: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    previous_id: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    properties: Option<JsonObject>,
    #[serde(default)]
    traits: Option<JsonObject>,
    #[serde(default)]
    context: Option<JsonObject>,
    /// Accepted for compatibility; CustomerSignal forwards to no destinations.
    #[serde(default)]
    #[allow(dead_code)]
    integrations: Option<Value>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    original_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    write_key: Option<String>,
    /// Resolved during validation.
    #[serde(skip)]
    resolved_kind: Option<EventKind>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Batch<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(default)]
    sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    context: Option<JsonObject>,
    #[serde(default)]
    write_key: Option<String>,
}

impl SegmentCall {
    /// A single `POST /v1/<kind>` call: the path decides the kind.
    pub fn parse(kind: EventKind, body: &[u8], limits: &Limits) -> Result<Self, IntakeError> {
        limits.check_body(body)?;
        let text = std::str::from_utf8(body).map_err(|e| IntakeError::MalformedJson {
            line: 1,
            column: e.valid_up_to() + 1,
            message: "body is not UTF-8".into(),
        })?;
        // Distinguish "not JSON at all" (malformed) from "JSON of the wrong shape" (invalid).
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| IntakeError::from_body_parse(&e))?;
        let mut message = parse_message(0, text, limits)?;
        message.resolved_kind = Some(kind);
        validate(0, &mut message, limits)?;
        let write_key = message.write_key.take();
        Ok(Self {
            messages: vec![message],
            write_key,
        })
    }

    /// A `POST /v1/batch` (or `/v1/b`) request. Each message needs its `type`.
    pub fn parse_batch(body: &[u8], limits: &Limits) -> Result<Self, IntakeError> {
        limits.check_body(body)?;
        let batch: Batch =
            serde_json::from_slice(body).map_err(|e| IntakeError::from_body_parse(&e))?;
        limits.check_batch_len(batch.batch.len())?;
        let mut write_key = batch.write_key;
        let mut messages = Vec::with_capacity(batch.batch.len());
        for (index, raw) in batch.batch.iter().enumerate() {
            let mut message = parse_message(index, raw.get(), limits)?;
            message.resolved_kind = Some(batch_kind(index, message.kind.as_deref())?);
            message.sent_at = message.sent_at.or(batch.sent_at);
            if let Some(shared) = &batch.context {
                let own = message.context.get_or_insert_with(JsonObject::new);
                for (key, value) in shared {
                    own.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            validate(index, &mut message, limits)?;
            write_key = write_key.or(message.write_key.take());
            messages.push(message);
        }
        Ok(Self {
            messages,
            write_key,
        })
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Normalizes every message, now that the write key told us tenant and source.
    pub fn into_events(self, receipt: &Receipt) -> Vec<Event> {
        self.messages
            .into_iter()
            .map(|m| normalize(m, receipt))
            .collect()
    }
}

fn parse_message(index: usize, json: &str, limits: &Limits) -> Result<Message, IntakeError> {
    limits.check_event_size(index, json)?;
    parse_event_json(index, json)
}

fn batch_kind(index: usize, kind: Option<&str>) -> Result<EventKind, IntakeError> {
    let kind = kind.ok_or_else(|| IntakeError::invalid(index, "type", "is required in a batch"))?;
    EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| {
            IntakeError::invalid(
                index,
                "type",
                format!(
                    "unknown type {kind:?}; expected track, identify, group, page, screen or alias"
                ),
            )
        })
}

/// Required fields per call type, as the Segment Spec defines them, and shape limits.
fn validate(index: usize, m: &mut Message, limits: &Limits) -> Result<(), IntakeError> {
    let kind = m.resolved_kind.unwrap_or(EventKind::Track);
    m.user_id = non_empty(m.user_id.take());
    m.anonymous_id = non_empty(m.anonymous_id.take());
    if m.user_id.is_none() && m.anonymous_id.is_none() {
        return Err(IntakeError::invalid(
            index,
            "userId",
            "userId or anonymousId is required",
        ));
    }
    match kind {
        EventKind::Track if m.event.as_deref().is_none_or(|e| e.trim().is_empty()) => {
            return Err(IntakeError::invalid(
                index,
                "event",
                "is required for track",
            ));
        }
        EventKind::Group if non_empty(m.group_id.clone()).is_none() => {
            return Err(IntakeError::invalid(
                index,
                "groupId",
                "is required for group",
            ));
        }
        EventKind::Alias if non_empty(m.previous_id.clone()).is_none() => {
            return Err(IntakeError::invalid(
                index,
                "previousId",
                "is required for alias",
            ));
        }
        EventKind::Alias if m.user_id.is_none() => {
            return Err(IntakeError::invalid(
                index,
                "userId",
                "is required for alias",
            ));
        }
        _ => {}
    }
    for (field, object) in [
        ("properties", &m.properties),
        ("traits", &m.traits),
        ("context", &m.context),
    ] {
        if let Some(object) = object {
            limits.check_object(index, field, object)?;
        }
    }
    Ok(())
}

fn normalize(m: Message, receipt: &Receipt) -> Event {
    let kind = m.resolved_kind.unwrap_or(EventKind::Track);
    let properties = m.properties.unwrap_or_default();
    let context = m.context.unwrap_or_default();
    let name = match kind {
        EventKind::Track => m.event,
        EventKind::Page | EventKind::Screen => m.name.or_else(|| {
            properties
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        _ => None,
    };
    let from_context = |key: &str| context.get(key).and_then(Value::as_str).map(str::to_owned);
    Event {
        tenant: receipt.tenant.clone(),
        source: receipt.source.clone(),
        message_id: non_empty(m.message_id).unwrap_or_else(generate_message_id),
        kind,
        name: non_empty(name),
        user_id: m.user_id,
        anonymous_id: m.anonymous_id,
        group_id: non_empty(m.group_id).or_else(|| non_empty(from_context("groupId"))),
        session_id: non_empty(from_context("sessionId")),
        previous_id: non_empty(m.previous_id),
        event_time: event_time(
            m.timestamp.or(m.original_timestamp),
            m.sent_at,
            receipt.received_at,
        ),
        received_at: receipt.received_at,
        properties,
        traits: m.traits.unwrap_or_default(),
        context,
    }
}

/// Corrects client clock skew as Segment does: the device's clock was off by
/// `sentAt − receivedAt`, so `event time = timestamp + (receivedAt − sentAt)`. Without a
/// client timestamp the event happened when it arrived.
pub fn event_time(
    timestamp: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match (timestamp, sent_at) {
        (Some(ts), Some(sent)) => ts
            .checked_add_signed(received_at - sent)
            .unwrap_or(received_at),
        (Some(ts), None) => ts,
        (None, _) => received_at,
    }
}

/// Segment ids are strings, but some SDKs and hand-written clients send numbers.
fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or number, found {}",
            json_type_name(&other)
        ))),
    }
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
