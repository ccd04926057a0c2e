//! The consumer and store end to end: real nats-server (private), real ClickHouse.

mod support;

use async_nats::jetstream;
use clickhouse::Row;
use futures::StreamExt;
use model::event::{Event, EventKind};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use support::TestEvaluator;
use tests::{publish_events, track_event};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

#[derive(Debug, Row, Deserialize)]
struct Stored {
    tenant: String,
    source: String,
    stream_seq: u64,
    message_id: String,
    kind: String,
    name: String,
    user_id: String,
    group_id: String,
    event_time_ms: u64,
    properties: String,
    context: String,
}

fn call(kind: EventKind, id: &str, user: &str, at_ms: i64, traits: serde_json::Value) -> Event {
    let mut event = track_event("acme", "web", id, user, "", at_ms, json!({}));
    event.kind = kind;
    event.name = None;
    event.traits = traits.as_object().cloned().unwrap_or_default();
    if kind == EventKind::Group {
        event.group_id = Some("g1".into());
    }
    event
}

#[tokio::test]
async fn events_become_rows_with_catalog_and_latest_traits() {
    let evaluator = TestEvaluator::start(&["--truncate-ip"]).await;
    let js = evaluator.jetstream().await;
    let mut checkout = track_event(
        "acme",
        "web",
        "m1",
        "u1",
        "checkout_completed",
        T0,
        json!({"value": 12.5, "plan": "pro"}),
    );
    checkout.group_id = Some("g1".into());
    checkout.context = json!({"ip": "203.0.113.77"}).as_object().cloned().unwrap();
    let events = vec![
        checkout,
        // The same property with another type: the catalog shows both.
        track_event(
            "acme",
            "web",
            "m2",
            "u2",
            "checkout_completed",
            T0 + 1000,
            json!({"value": "13"}),
        ),
        call(
            EventKind::Identify,
            "i1",
            "u1",
            T0,
            json!({"plan": "free", "email": "u1@example.com"}),
        ),
        call(
            EventKind::Identify,
            "i2",
            "u1",
            T0 + 5000,
            json!({"plan": "pro"}),
        ),
        call(
            EventKind::Group,
            "g-1",
            "u1",
            T0,
            json!({"teamSize": 12, "monthlyCost": 900}),
        ),
        call(
            EventKind::Group,
            "g-2",
            "u1",
            T0 + 5000,
            json!({"monthlyCost": 1200}),
        ),
        track_event("globex", "mobile", "x1", "z1", "app_opened", T0, json!({})),
    ];
    publish_events(&js, &events).await.unwrap();
    assert!(
        evaluator.wait_stored("acme", 6).await,
        "acme rows: {}",
        evaluator.stored("acme").await
    );
    assert!(evaluator.wait_stored("globex", 1).await);

    let rows: Vec<Stored> = evaluator
        .clickhouse
        .query("SELECT tenant, source, stream_seq, message_id, kind, name, user_id, group_id, event_time_ms, properties, context
                FROM events FINAL WHERE message_id = 'm1'")
        .fetch_all()
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(
        (row.tenant.as_str(), row.source.as_str(), row.kind.as_str()),
        ("acme", "web", "track")
    );
    assert_eq!(
        (
            row.name.as_str(),
            row.user_id.as_str(),
            row.group_id.as_str()
        ),
        ("checkout_completed", "u1", "g1")
    );
    assert_eq!(row.event_time_ms, T0 as u64);
    assert_eq!(row.stream_seq, 1);
    assert_eq!(row.message_id, "m1");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.properties).unwrap(),
        json!({"value": 12.5, "plan": "pro"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&row.context).unwrap(),
        json!({"ip": "203.0.113.0"})
    );
    let value: f64 = evaluator
        .clickhouse
        .query("SELECT visitParamExtractFloat(properties, 'value') FROM events FINAL WHERE message_id = 'm1'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(value, 12.5);

    // Events are inserted first in a batch and the catalog last: wait for the catalog (and
    // with it the traits and memberships of the same batches) before reading them.
    let catalog_complete = tests::eventually(Duration::from_secs(10), || async {
        evaluator
            .clickhouse
            .query("SELECT sum(events) FROM event_catalog_view WHERE tenant = 'acme' AND property = ''")
            .fetch_one::<u64>()
            .await
            .is_ok_and(|n| n == 6)
    })
    .await;
    assert!(
        catalog_complete,
        "the catalog never counted all six acme events"
    );
    let catalog: Vec<(String, String, String, u64)> = evaluator
        .clickhouse
        .query("SELECT event, property, json_type, events FROM event_catalog_view
                WHERE tenant = 'acme' AND event = 'checkout_completed' ORDER BY property, json_type")
        .fetch_all()
        .await
        .unwrap();
    let expected = [
        ("", "track", 2),
        ("plan", "string", 1),
        ("value", "number", 1),
        ("value", "string", 1),
    ];
    let catalog: Vec<(&str, &str, u64)> = catalog
        .iter()
        .map(|(_, p, t, n)| (p.as_str(), t.as_str(), *n))
        .collect();
    assert_eq!(catalog, expected);

    let user: Vec<(String, String)> = evaluator
        .clickhouse
        .query("SELECT key, argMax(value, updated_ms) FROM user_traits WHERE tenant = 'acme' AND user_id = 'u1' GROUP BY key ORDER BY key")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        user,
        [
            ("email".to_string(), "\"u1@example.com\"".to_string()),
            ("plan".into(), "\"pro\"".into())
        ]
    );
    let account: Vec<(String, String)> = evaluator
        .clickhouse
        .query("SELECT key, argMax(value, updated_ms) FROM account_traits WHERE tenant = 'acme' AND group_id = 'g1' GROUP BY key ORDER BY key")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        account,
        [
            ("monthlyCost".to_string(), "1200".to_string()),
            ("teamSize".into(), "12".into())
        ]
    );
    let member: String = evaluator
        .clickhouse
        .query("SELECT argMax(group_id, updated_ms) FROM account_members WHERE tenant = 'acme' AND user_id = 'u1'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(member, "g1");
    evaluator.stop().await.unwrap();
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_never_blocks_the_source() {
    let evaluator = TestEvaluator::start(&[]).await;
    let js = evaluator.jetstream().await;
    publish_events(
        &js,
        &[track_event(
            "acme",
            "web",
            "before",
            "u",
            "x",
            T0,
            json!({}),
        )],
    )
    .await
    .unwrap();
    js.publish("events.acme.web", "this is not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let after: Vec<Event> = (0..50)
        .map(|i| {
            track_event(
                "acme",
                "web",
                &format!("after-{i}"),
                "u",
                "x",
                T0,
                json!({}),
            )
        })
        .collect();
    publish_events(&js, &after).await.unwrap();
    assert!(
        evaluator.wait_stored("acme", 51).await,
        "stored {}",
        evaluator.stored("acme").await
    );

    let dead = js.get_stream("DEADLETTER").await.unwrap();
    let consumer = dead
        .create_consumer(jetstream::consumer::pull::Config {
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .expect("a dead letter within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(message.subject.as_str(), "deadletter.events.acme.web");
    assert_eq!(&message.payload[..], b"this is not an event");
    let headers = message.headers.clone().unwrap();
    assert!(
        headers
            .get("CS-Error")
            .unwrap()
            .as_str()
            .contains("malformed"),
        "{headers:?}"
    );
    assert_eq!(headers.get("CS-Deliveries").unwrap().as_str(), "3");
    evaluator.stop().await.unwrap();
}

#[tokio::test]
async fn gdpr_erasure_removes_only_that_users_rows_in_that_tenant() {
    let evaluator = TestEvaluator::start(&["--admin-token", "s3cret"]).await;
    let js = evaluator.jetstream().await;
    let mut events = vec![
        track_event("acme", "web", "a1", "gone", "x", T0, json!({})),
        track_event("acme", "web", "a2", "stays", "x", T0, json!({})),
        track_event("globex", "mobile", "b1", "gone", "x", T0, json!({})),
        call(
            EventKind::Identify,
            "a3",
            "gone",
            T0,
            json!({"email": "gone@example.com"}),
        ),
    ];
    let mut anonymous = track_event("acme", "web", "a4", "ignored", "x", T0, json!({}));
    anonymous.user_id = None;
    anonymous.anonymous_id = Some("gone".into());
    events.push(anonymous);
    publish_events(&js, &events).await.unwrap();
    assert!(evaluator.wait_stored("acme", 4).await);
    assert!(evaluator.wait_stored("globex", 1).await);
    // Traits are written right after their batch's events: wait for them too.
    let traits_stored = tests::eventually(Duration::from_secs(10), || async {
        evaluator
            .clickhouse
            .query("SELECT count() FROM user_traits")
            .fetch_one::<u64>()
            .await
            .is_ok_and(|n| n == 1)
    })
    .await;
    assert!(traits_stored);

    let http = tests::http();
    let url = format!("http://{}/admin/v1/tenants/acme/users/gone", evaluator.addr);
    assert_eq!(http.delete(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.delete(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let response = http
        .delete(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["deleted"],
        json!({"events": 3, "user_traits": 1, "account_members": 0})
    );

    let remaining: Vec<(String, String)> = evaluator
        .clickhouse
        .query("SELECT tenant, message_id FROM events FINAL ORDER BY tenant, message_id")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        remaining,
        [
            ("acme".to_string(), "a2".to_string()),
            ("globex".into(), "b1".into())
        ]
    );
    let traits: u64 = evaluator
        .clickhouse
        .query("SELECT count() FROM user_traits")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(traits, 0);
    evaluator.stop().await.unwrap();
}

#[tokio::test]
async fn retention_deletes_only_expired_events_of_that_source() {
    let evaluator = TestEvaluator::start(&[]).await;
    let js = evaluator.jetstream().await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    publish_events(
        &js,
        &[
            track_event("acme", "web", "old", "u", "x", now - 40 * day, json!({})),
            track_event("acme", "web", "new", "u", "x", now - 2 * day, json!({})),
            track_event(
                "globex",
                "mobile",
                "old-other",
                "u",
                "x",
                now - 40 * day,
                json!({}),
            ),
        ],
    )
    .await
    .unwrap();
    assert!(evaluator.wait_stored("acme", 2).await);
    assert!(evaluator.wait_stored("globex", 1).await);
    let deleted = evaluator::store::retention::apply(
        &evaluator.clickhouse,
        "acme",
        "web",
        30,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(evaluator.stored("acme").await, 1);
    assert_eq!(evaluator.stored("globex").await, 1);
    evaluator.stop().await.unwrap();
}
