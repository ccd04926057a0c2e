//! Proves the harness: each real server round-trips data, so later tests stand on solid
//! ground. Needs the NATS and ClickHouse that `scripts/test.sh` starts.

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use chrono::{TimeZone, Utc};
use clickhouse::Row;
use futures::StreamExt;
use model::event::{Event, EventKind, JsonObject, wire};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tests::{clickhouse_database, nats, unique};

fn event(n: u32) -> Event {
    Event {
        tenant: "acme".into(),
        source: "web".into(),
        message_id: format!("m-{n}"),
        kind: EventKind::Track,
        name: Some("checkout_completed".into()),
        user_id: Some(format!("u{n}")),
        anonymous_id: None,
        group_id: Some("g1".into()),
        session_id: None,
        previous_id: None,
        event_time: Utc
            .timestamp_millis_opt(1_760_000_000_000 + i64::from(n))
            .unwrap(),
        received_at: Utc.timestamp_millis_opt(1_760_000_001_000).unwrap(),
        properties: JsonObject::from_iter([("value".to_string(), n.into())]),
        traits: JsonObject::new(),
        context: JsonObject::new(),
    }
}

#[tokio::test]
async fn jetstream_publishes_deduplicates_and_redelivers_to_a_durable_consumer() {
    let client = nats().await.unwrap();
    let js = jetstream::new(client.clone());
    let name = unique("HARNESS");
    let subject = format!("harness.{name}");
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();

    // Publish a window of events, then await their acks together.
    let mut acks = Vec::new();
    for n in 0..20 {
        let publish = PublishMessage::build()
            .payload(wire::encode(&event(n)).into())
            .message_id(format!("acme/web/m-{n}"));
        acks.push(js.send_publish(subject.clone(), publish).await.unwrap());
    }
    for ack in acks {
        assert!(!ack.await.unwrap().duplicate);
    }
    // A retried message id is stored once.
    let retry = PublishMessage::build()
        .payload(wire::encode(&event(3)).into())
        .message_id("acme/web/m-3");
    assert!(
        js.send_publish(subject.clone(), retry)
            .await
            .unwrap()
            .await
            .unwrap()
            .duplicate
    );

    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("harness".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("message within 10 s")
            .unwrap()
            .unwrap();
        let decoded = wire::decode(&message.payload).unwrap();
        // Leave the first one unacked: it must come back after ack_wait.
        if seen.is_empty() {
            seen.push(decoded.message_id);
            continue;
        }
        message.ack().await.unwrap();
        seen.push(decoded.message_id);
    }
    let redelivered = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("redelivery within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        wire::decode(&redelivered.payload).unwrap().message_id,
        seen[0]
    );
    redelivered.ack().await.unwrap();
    assert_eq!(seen, (0..20).map(|n| format!("m-{n}")).collect::<Vec<_>>());
    assert_eq!(stream.clone().info().await.unwrap().state.messages, 20);
    client.flush().await.unwrap();
    js.delete_stream(&name).await.unwrap();
}

#[derive(Debug, PartialEq, Row, Serialize, Deserialize)]
struct HarnessRow {
    tenant: String,
    message_id: String,
    event_time_ms: u64,
    value: f64,
}

#[tokio::test]
async fn clickhouse_creates_inserts_and_selects() {
    let (client, database) = clickhouse_database("cs_harness").await.unwrap();
    client
        .query(
            "CREATE TABLE rows (tenant String, message_id String, event_time_ms UInt64, value Float64)
             ENGINE = MergeTree ORDER BY (tenant, event_time_ms)",
        )
        .execute()
        .await
        .unwrap();
    let rows: Vec<HarnessRow> = (0..100u32)
        .map(|n| {
            let e = event(n);
            HarnessRow {
                tenant: e.tenant,
                message_id: e.message_id,
                event_time_ms: e.event_time.timestamp_millis() as u64,
                value: f64::from(n),
            }
        })
        .collect();
    let mut insert = client.insert::<HarnessRow>("rows").await.unwrap();
    for row in &rows {
        insert.write(row).await.unwrap();
    }
    insert.end().await.unwrap();

    let back = client
        .query("SELECT ?fields FROM rows WHERE tenant = ? ORDER BY event_time_ms")
        .bind("acme")
        .fetch_all::<HarnessRow>()
        .await
        .unwrap();
    assert_eq!(back, rows);
    let sum = client
        .query("SELECT sum(value) FROM rows")
        .fetch_one::<f64>()
        .await
        .unwrap();
    assert_eq!(sum, 4950.0);
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await
        .unwrap();
}
