//! Bad input gets an error, never a panic: bounded property tests over arbitrary bytes and
//! JSON for every parser in the domain crate.

use chrono::Utc;
use model::event::EventKind;
use model::intake::{Limits, Receipt, SegmentCall, parse_native_batch};
use model::standalone::Catalog;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

fn receipt() -> Receipt {
    Receipt {
        tenant: "acme".into(),
        source: "web".into(),
        received_at: Utc::now(),
    }
}

fn parse_everything(body: &[u8]) {
    let limits = Limits::default();
    let _ = parse_native_batch(body, &receipt(), &limits);
    let _ = SegmentCall::parse_batch(body, &limits).map(|c| c.into_events(&receipt()));
    for kind in EventKind::ALL {
        let _ = SegmentCall::parse(kind, body, &limits).map(|c| c.into_events(&receipt()));
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9 _@.:-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("2026-01-01T00:00:00Z"),
            Just("not a date"),
            Just("track"),
            Just("identify"),
            Just("group")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("type"),
            Just("event"),
            Just("event_type"),
            Just("userId"),
            Just("user_id"),
            Just("anonymousId"),
            Just("groupId"),
            Just("previousId"),
            Just("properties"),
            Just("traits"),
            Just("context"),
            Just("timestamp"),
            Just("sentAt"),
            Just("messageId"),
            Just("x"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.prop_map(String::from), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&body);
    }

    #[test]
    fn arbitrary_json_messages_never_panic(message in json_value()) {
        parse_everything(&serde_json::to_vec(&message).unwrap());
        parse_everything(&serde_json::to_vec(&json!({"events": [message.clone()]})).unwrap());
        parse_everything(&serde_json::to_vec(&json!({"batch": [message]})).unwrap());
    }

    #[test]
    fn arbitrary_yaml_never_panics(text in "[a-zA-Z0-9:{}\\[\\], \n\\-'\"&*!|>#%@]{0,300}") {
        let mut catalog = Catalog::default();
        catalog.add_text(Path::new("fuzz.yaml"), &text);
    }
}

#[test]
fn pathological_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    parse_everything(deep.as_bytes());
    let nested_properties = format!(
        r#"{{"events":[{{"event_type":"x","user_id":"u","properties":{{"a":{}1{}}}}}]}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let err = parse_native_batch(nested_properties.as_bytes(), &receipt(), &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err.code(), "too_deep" | "malformed_json"),
        "{err:?}"
    );
    // A "billion laughs" alias bomb: 9^9 nodes if expanded.
    let mut yaml_bomb = String::from(
        "apiVersion: customersignal.io/v1alpha1\nkind: AlertRule\nl0: &l0 [x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..9 {
        let refs = vec![format!("*l{}", level - 1); 9].join(", ");
        yaml_bomb.push_str(&format!("l{level}: &l{level} [{refs}]\n"));
    }
    let mut catalog = Catalog::default();
    catalog.add_text(Path::new("bomb.yaml"), &yaml_bomb);
    assert_eq!(catalog.errors.len(), 1);
    assert!(
        catalog.errors[0].message.contains("invalid YAML"),
        "{}",
        catalog.errors[0]
    );
}
