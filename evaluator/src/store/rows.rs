//! Row types, field for field in column order (ClickHouse 18.16 needs an exact match: the
//! round-trip tests in `tests/store.rs` guard each one), and how events become rows.

use chrono::{DateTime, Utc};
use clickhouse::Row;
use model::event::{Event, EventKind, JsonObject};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub tenant: String,
    pub source: String,
    pub stream_seq: u64,
    pub message_id: String,
    pub kind: String,
    pub name: String,
    pub user_id: String,
    pub anonymous_id: String,
    pub group_id: String,
    pub session_id: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub event_time: DateTime<Utc>,
    pub event_time_ms: u64,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub received_at: DateTime<Utc>,
    pub properties: String,
    pub traits: String,
    pub context: String,
}

/// One identify trait's value of a user, as of `updated_ms` (`user_traits`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct UserTraitRow {
    pub tenant: String,
    pub user_id: String,
    pub key: String,
    /// The value as JSON text.
    pub value: String,
    pub updated_ms: u64,
}

/// One group trait's value of an account (`account_traits`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct AccountTraitRow {
    pub tenant: String,
    pub group_id: String,
    pub key: String,
    pub value: String,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct MemberRow {
    pub tenant: String,
    pub user_id: String,
    pub group_id: String,
    pub updated_ms: u64,
}

/// Everything one batch of events writes.
#[derive(Debug, Default)]
pub struct BatchRows {
    pub events: Vec<EventRow>,
    pub user_traits: Vec<UserTraitRow>,
    pub account_traits: Vec<AccountTraitRow>,
    pub members: Vec<MemberRow>,
}

fn json_text(object: &JsonObject) -> String {
    if object.is_empty() {
        return "{}".into();
    }
    serde_json::to_string(object).unwrap_or_else(|_| "{}".into())
}

/// Milliseconds since the epoch, clamped to what `UInt64`/`DateTime` hold.
fn millis(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

/// `DateTime` holds 1970..2106: clamp so a wild client timestamp cannot fail a batch.
fn clamp_datetime(at: DateTime<Utc>) -> DateTime<Utc> {
    let max = DateTime::<Utc>::from_timestamp(i64::from(u32::MAX), 0).unwrap_or_default();
    at.clamp(DateTime::<Utc>::UNIX_EPOCH, max)
}

impl BatchRows {
    pub fn add(&mut self, event: &Event, stream_seq: u64) {
        let event_time = clamp_datetime(event.event_time);
        let updated_ms = millis(event_time);
        self.events.push(EventRow {
            tenant: event.tenant.clone(),
            source: event.source.clone(),
            stream_seq,
            message_id: event.message_id.clone(),
            kind: event.kind.as_str().into(),
            name: event.name.clone().unwrap_or_default(),
            user_id: event.user_id.clone().unwrap_or_default(),
            anonymous_id: event.anonymous_id.clone().unwrap_or_default(),
            group_id: event.group_id.clone().unwrap_or_default(),
            session_id: event.session_id.clone().unwrap_or_default(),
            event_time,
            event_time_ms: updated_ms,
            received_at: clamp_datetime(event.received_at),
            properties: json_text(&event.properties),
            traits: json_text(&event.traits),
            context: json_text(&event.context),
        });
        match (event.kind, event.user_key(), event.group_id.as_deref()) {
            (EventKind::Identify, Some(user), _) => {
                self.user_traits
                    .extend(event.traits.iter().map(|(key, value)| UserTraitRow {
                        tenant: event.tenant.clone(),
                        user_id: user.to_string(),
                        key: key.clone(),
                        value: value.to_string(),
                        updated_ms,
                    }));
            }
            (EventKind::Group, user, Some(group)) => {
                self.account_traits
                    .extend(event.traits.iter().map(|(key, value)| AccountTraitRow {
                        tenant: event.tenant.clone(),
                        group_id: group.to_string(),
                        key: key.clone(),
                        value: value.to_string(),
                        updated_ms,
                    }));
                if let Some(user) = user {
                    self.members.push(MemberRow {
                        tenant: event.tenant.clone(),
                        user_id: user.to_string(),
                        group_id: group.to_string(),
                        updated_ms,
                    });
                }
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: EventKind, traits: serde_json::Value) -> Event {
        let mut event =
            ::tests::track_event("acme", "web", "m", "u1", "", 1_767_225_600_123, json!({}));
        event.kind = kind;
        event.name = None;
        event.group_id = Some("g1".into());
        event.traits = traits.as_object().cloned().unwrap();
        event
    }

    #[test]
    fn identify_writes_user_traits_and_group_writes_account_traits_and_membership() {
        let mut rows = BatchRows::default();
        rows.add(
            &event(EventKind::Identify, json!({"plan": "pro", "seats": 3})),
            7,
        );
        rows.add(&event(EventKind::Group, json!({"teamSize": 12})), 8);
        rows.add(&event(EventKind::Track, json!({})), 9);
        assert_eq!(rows.events.len(), 3);
        assert_eq!(rows.events[0].stream_seq, 7);
        assert_eq!(rows.events[0].event_time_ms, 1_767_225_600_123);
        let user: Vec<_> = rows
            .user_traits
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(user, [("plan", "\"pro\""), ("seats", "3")]);
        assert_eq!(rows.account_traits[0].group_id, "g1");
        assert_eq!(rows.members[0].user_id, "u1");
        assert_eq!(rows.events[2].properties, "{}");
    }

    #[test]
    fn out_of_range_times_are_clamped() {
        let mut e = event(EventKind::Track, json!({}));
        e.event_time = DateTime::<Utc>::from_timestamp(-5, 0).unwrap();
        let mut rows = BatchRows::default();
        rows.add(&e, 1);
        assert_eq!(rows.events[0].event_time, DateTime::<Utc>::UNIX_EPOCH);
    }
}
