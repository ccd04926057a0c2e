//! Reading stored events back as [`Event`]s, in event-time order: for rebuilding rule state
//! on start and for backtests.

use chrono::{DateTime, Utc};
use clickhouse::Row;
use clickhouse::query::RowCursor;
use model::event::{Event, EventKind, JsonObject};
use serde::Deserialize;

#[derive(Debug, Row, Deserialize)]
pub struct HistoryRow {
    kind: String,
    name: String,
    user_id: String,
    anonymous_id: String,
    group_id: String,
    message_id: String,
    event_time_ms: u64,
    properties: String,
    traits: String,
    context: String,
    stream_seq: u64,
}

/// A Source's events with `from_ms <= event time <= to_ms`, plus every earlier identify and
/// group call (traits and memberships outlive any window), oldest first.
pub fn events(
    client: &clickhouse::Client,
    tenant: &str,
    source: &str,
    from_ms: u64,
    to_ms: u64,
) -> clickhouse::error::Result<RowCursor<HistoryRow>> {
    client
        .query(
            "SELECT kind, name, user_id, anonymous_id, group_id, message_id, event_time_ms, properties, traits, context, stream_seq
             FROM events FINAL
             WHERE tenant = ? AND source = ? AND event_time_ms <= ?
               AND (event_time_ms >= ? OR kind IN ('identify', 'group'))
             ORDER BY event_time_ms",
        )
        .bind(tenant)
        .bind(source)
        .bind(to_ms)
        .bind(from_ms)
        .fetch::<HistoryRow>()
}

impl HistoryRow {
    pub fn event_time_ms(&self) -> u64 {
        self.event_time_ms
    }

    /// The event and its stream sequence.
    pub fn into_event(self, tenant: &str, source: &str) -> (Event, u64) {
        let object = |text: &str| serde_json::from_str::<JsonObject>(text).unwrap_or_default();
        let some = |text: String| (!text.is_empty()).then_some(text);
        let at =
            DateTime::<Utc>::from_timestamp_millis(self.event_time_ms as i64).unwrap_or_default();
        let event = Event {
            tenant: tenant.into(),
            source: source.into(),
            message_id: self.message_id,
            kind: EventKind::ALL
                .into_iter()
                .find(|k| k.as_str() == self.kind)
                .unwrap_or(EventKind::Track),
            name: some(self.name),
            user_id: some(self.user_id),
            anonymous_id: some(self.anonymous_id),
            group_id: some(self.group_id),
            session_id: None,
            previous_id: None,
            event_time: at,
            received_at: at,
            properties: object(&self.properties),
            traits: object(&self.traits),
            context: object(&self.context),
        };
        (event, self.stream_seq)
    }
}
