//! Builders shared by the rule tests.

use crate::event::{Event, EventKind, JsonObject};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

pub fn object(v: Value) -> JsonObject {
    v.as_object().cloned().expect("test object")
}

/// A `checkout` track event of user `u1` in account `g1` with these properties.
pub fn event(properties: Value) -> Event {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Event {
        tenant: "t".into(),
        source: "web".into(),
        message_id: "m".into(),
        kind: EventKind::Track,
        name: Some("checkout".into()),
        user_id: Some("u1".into()),
        anonymous_id: None,
        group_id: Some("g1".into()),
        session_id: None,
        previous_id: None,
        event_time: at,
        received_at: at,
        properties: object(properties),
        traits: JsonObject::new(),
        context: object(json!({"ip": "1.2.3.4"})),
    }
}
