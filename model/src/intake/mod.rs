//! Turning request bodies (native batches and Segment messages) into [`Event`]s, with the
//! limits that keep hostile input from costing more than its size.
//!
//! Everything here is pure: ingest supplies the tenant, source and receive time from the
//! authenticated write key and its clock.

mod limits;
mod native;
mod segment;

pub use limits::{IntakeError, Limits};
pub use native::parse_native_batch;
pub use segment::{SegmentCall, event_time};

use chrono::{DateTime, Utc};

/// Who sent a request and when it arrived: known from the write key, never from the body.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub tenant: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
}

/// Parses one event's JSON. Valid events (the hot path) parse once; only a failure is parsed
/// again with path tracking, to name the field at fault.
fn parse_event_json<T: serde::de::DeserializeOwned>(
    index: usize,
    json: &str,
) -> Result<T, IntakeError> {
    serde_json::from_str(json).map_err(|_| {
        let mut de = serde_json::Deserializer::from_str(json);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => IntakeError::from_event_parse(index, e),
            Ok(_) => IntakeError::invalid(index, "event", "invalid event"),
        }
    })
}

/// A new message id for an event that came without one. Version 7 UUIDs sort by time, which
/// keeps generated ids readable in the event store.
fn generate_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
