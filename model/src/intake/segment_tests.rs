use super::*;
use chrono::TimeZone;
use serde_json::json;

fn receipt() -> Receipt {
    Receipt {
        tenant: "acme".into(),
        source: "web".into(),
        received_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    }
}

fn call(kind: EventKind, body: Value) -> Result<Vec<Event>, IntakeError> {
    let bytes = serde_json::to_vec(&body).unwrap();
    SegmentCall::parse(kind, &bytes, &Limits::default()).map(|c| c.into_events(&receipt()))
}

fn batch(body: Value) -> Result<SegmentCall, IntakeError> {
    SegmentCall::parse_batch(&serde_json::to_vec(&body).unwrap(), &Limits::default())
}

#[test]
fn track_normalizes_name_ids_and_skew_corrected_time() {
    let events = call(
        EventKind::Track,
        json!({
            "userId": "u1", "event": "Order Completed", "messageId": "m1",
            "properties": {"revenue": 9.5}, "context": {"groupId": "g7", "sessionId": "s1"},
            "timestamp": "2026-03-01T11:00:00Z", "sentAt": "2026-03-01T11:59:50Z",
            "integrations": {"All": true}, "_metadata": {"bundled": []}
        }),
    )
    .unwrap();
    let e = &events[0];
    assert_eq!(e.kind, EventKind::Track);
    assert_eq!(e.name.as_deref(), Some("Order Completed"));
    assert_eq!(e.group_id.as_deref(), Some("g7"));
    assert_eq!(e.session_id.as_deref(), Some("s1"));
    // The device clock ran 10 s slow: the event happened at 11:00:10 server time.
    assert_eq!(
        e.event_time,
        Utc.with_ymd_and_hms(2026, 3, 1, 11, 0, 10).unwrap()
    );
    assert_eq!(e.properties["revenue"], json!(9.5));
}

#[test]
fn identify_group_page_screen_alias_normalize() {
    let identify = call(
        EventKind::Identify,
        json!({"userId": 42, "traits": {"plan": "pro"}}),
    )
    .unwrap();
    assert_eq!(identify[0].user_id.as_deref(), Some("42"));
    assert_eq!(identify[0].traits["plan"], json!("pro"));

    let group = call(
        EventKind::Group,
        json!({"anonymousId": "a", "groupId": "g1", "traits": {"teamSize": 12}}),
    )
    .unwrap();
    assert_eq!(
        (group[0].kind, group[0].group_id.as_deref()),
        (EventKind::Group, Some("g1"))
    );

    let page = call(
        EventKind::Page,
        json!({"userId": "u", "properties": {"name": "Pricing"}}),
    )
    .unwrap();
    assert_eq!(page[0].name.as_deref(), Some("Pricing"));
    let screen = call(EventKind::Screen, json!({"userId": "u", "name": "Home"})).unwrap();
    assert_eq!(screen[0].name.as_deref(), Some("Home"));

    let alias = call(
        EventKind::Alias,
        json!({"userId": "u", "previousId": "anon-1"}),
    )
    .unwrap();
    assert_eq!(alias[0].previous_id.as_deref(), Some("anon-1"));
}

#[test]
fn required_fields_per_type() {
    let field = |kind, body| match call(kind, body).unwrap_err() {
        IntakeError::InvalidEvent { field, .. } => field,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(field(EventKind::Track, json!({"event": "x"})), "userId");
    assert_eq!(field(EventKind::Track, json!({"userId": "u"})), "event");
    assert_eq!(field(EventKind::Group, json!({"userId": "u"})), "groupId");
    assert_eq!(
        field(EventKind::Alias, json!({"userId": "u"})),
        "previousId"
    );
    assert_eq!(
        field(
            EventKind::Alias,
            json!({"anonymousId": "a", "previousId": "p"})
        ),
        "userId"
    );
    assert_eq!(
        field(EventKind::Identify, json!({"userId": "u", "traits": [1]})),
        "traits"
    );
    assert_eq!(
        field(EventKind::Identify, json!({"userId": {"id": 1}})),
        "userId"
    );
}

#[test]
fn single_call_distinguishes_malformed_json_from_wrong_shape() {
    let err =
        SegmentCall::parse(EventKind::Track, b"{\"userId\": ", &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "malformed_json");
    let err = SegmentCall::parse(EventKind::Track, b"[1,2]", &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_event");
    let err = SegmentCall::parse(EventKind::Track, b"\xff\xfe", &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "malformed_json");
}

#[test]
fn batch_merges_shared_context_sent_at_and_write_key() {
    let parsed = batch(json!({
        "writeKey": "wk_1", "sentAt": "2026-03-01T12:00:05Z",
        "context": {"library": {"name": "analytics-node"}, "ip": "1.2.3.4"},
        "batch": [
            {"type": "track", "event": "a", "userId": "u", "timestamp": "2026-03-01T11:00:00Z",
             "context": {"ip": "5.6.7.8"}},
            {"type": "identify", "anonymousId": "x", "traits": {"email": "x@example.com"}}
        ]
    }))
    .unwrap();
    assert_eq!(parsed.write_key.as_deref(), Some("wk_1"));
    let events = parsed.into_events(&receipt());
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].context["ip"],
        json!("5.6.7.8"),
        "a message's own context wins"
    );
    assert_eq!(
        events[0].context["library"]["name"],
        json!("analytics-node")
    );
    assert_eq!(
        events[0].event_time,
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 59, 55).unwrap()
    );
    assert_eq!(events[1].kind, EventKind::Identify);
}

#[test]
fn batch_errors_name_the_offending_message() {
    let err = batch(json!({"batch": [
        {"type": "track", "event": "a", "userId": "u"},
        {"type": "purchase", "userId": "u"}
    ]}))
    .unwrap_err();
    assert_eq!(err.index(), Some(1));
    assert!(err.to_string().contains("purchase"), "{err}");
    let err = batch(json!({"batch": [{"event": "a", "userId": "u"}]})).unwrap_err();
    assert!(matches!(err, IntakeError::InvalidEvent { ref field, .. } if field == "type"));
    assert_eq!(
        batch(json!({"batch": []})).unwrap_err().code(),
        "empty_batch"
    );
    assert_eq!(
        batch(json!({"events": []})).unwrap_err().code(),
        "invalid_body"
    );
}

#[test]
fn oversize_event_in_batch_is_its_own_error() {
    let big = "x".repeat(33 * 1024);
    let err = batch(json!({"batch": [
        {"type": "track", "event": "a", "userId": "u"},
        {"type": "track", "event": "a", "userId": "u", "properties": {"blob": big}}
    ]}))
    .unwrap_err();
    assert!(
        matches!(err, IntakeError::EventTooLarge { index: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn event_time_without_sent_at_or_timestamp() {
    let received = receipt().received_at;
    let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(event_time(Some(ts), None, received), ts);
    assert_eq!(event_time(None, Some(ts), received), received);
}
