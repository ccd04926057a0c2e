//! Sink throughput: events from the JetStream stream into ClickHouse through the evaluator,
//! vs the clickhouse crate's own bulk insert of the same rows, in one run against the same
//! servers. Run: `cargo bench -p evaluator` (servers from scripts/test.sh). Prints a table.

use clap::Parser;
use evaluator::config::RunConfig;
use evaluator::store::rows::BatchRows;
use evaluator::store::{insert_all, schema};
use serde_json::json;
use std::time::{Duration, Instant};
use tests::nats_server::NatsServer;

const EVENTS: u64 = 200_000;
const BATCH: usize = 10_000;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    run: RunConfig,
}

fn events(offset: u64) -> Vec<model::event::Event> {
    (offset..offset + EVENTS)
        .map(|i| {
            let mut event = tests::track_event(
                "bench",
                "web",
                &format!("sink-{i}"),
                &format!("user-{}", i % 5000),
                "checkout_completed",
                1_767_225_600_000 + i as i64,
                json!({"value": (i % 97) as f64 * 1.5, "currency": "USD", "plan": "team"}),
            );
            event.group_id = Some(format!("account-{}", i % 300));
            event
        })
        .collect()
}

async fn raw_insert_rate(clickhouse: &clickhouse::Client) -> f64 {
    let mut rows = BatchRows::default();
    for (seq, event) in events(10 * EVENTS).iter().enumerate() {
        rows.add(event, seq as u64);
    }
    let started = Instant::now();
    for chunk in rows.events.chunks(BATCH) {
        insert_all(clickhouse, "events", chunk)
            .await
            .expect("insert");
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

async fn count(clickhouse: &clickhouse::Client) -> u64 {
    clickhouse
        .query("SELECT count() FROM events WHERE tenant = 'bench' AND source = 'web'")
        .fetch_one()
        .await
        .unwrap_or(0)
}

async fn sink_rate(
    nats: &NatsServer,
    clickhouse_url: &str,
    database: &str,
    clickhouse: &clickhouse::Client,
) -> f64 {
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["events.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    tests::publish_events(&js, &events(0))
        .await
        .expect("publish");

    let dir = std::env::temp_dir().join(tests::unique("cs-bench-sink"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("source.yaml"),
        "apiVersion: customersignal.io/v1alpha1\nkind: Source\nmetadata: {name: web, namespace: bench}\nspec: {retentionDays: 3650}\n",
    )
    .unwrap();
    let config = Args::parse_from([
        "evaluator",
        "--config",
        &dir.display().to_string(),
        "--nats-url",
        &nats.url(),
        "--clickhouse-url",
        clickhouse_url,
        "--clickhouse-database",
        database,
        "--batch-rows",
        &BATCH.to_string(),
        "--log-level",
        "error",
    ])
    .run;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The clock starts before the evaluator does: startup, consumer creation and every
    // batch until the last row is stored count against the sink.
    let started = Instant::now();
    tokio::spawn(evaluator::run(config, listener, std::future::pending()));
    while count(clickhouse).await < EVENTS {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "sink did not finish"
        );
    }
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// The ceiling the stream sets: pull every event with a durable consumer and ack it, storing
/// nothing.
async fn consume_only_rate(nats: &NatsServer) -> f64 {
    use futures::StreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("nats"));
    let stream = js.get_stream("EVENTS").await.expect("stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("bench-consume-only".into()),
            max_ack_pending: 40_000,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .expect("messages");
    let started = Instant::now();
    for _ in 0..EVENTS {
        let message = messages.next().await.expect("message").expect("ok");
        message.ack().await.expect("ack");
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let nats = NatsServer::start();
    let url = tests::clickhouse_url();
    let (raw_client, raw_db) = tests::clickhouse_database("cs_bench_raw")
        .await
        .expect("clickhouse");
    schema::migrate(&raw_client).await.expect("schema");
    let sink_db = tests::unique("cs_bench_sink");
    let sink_client = clickhouse::Client::default()
        .with_url(&url)
        .with_database(&sink_db)
        .with_validation(false);

    let raw = raw_insert_rate(&raw_client).await;
    let sink = sink_rate(&nats, &url, &sink_db, &sink_client).await;
    let consume_only = consume_only_rate(&nats).await;

    println!();
    println!("| measurement ({EVENTS} events, batches of {BATCH}) | rows/s | vs raw insert |");
    println!("|---|---|---|");
    println!("| clickhouse crate bulk insert of the same rows | {raw:.0} | 100 % |");
    println!(
        "| JetStream pull + ack only, storing nothing (the stream's ceiling) | {consume_only:.0} | {:.0} % |",
        100.0 * consume_only / raw
    );
    println!(
        "| evaluator: JetStream → decode → rows → ClickHouse → ack | {sink:.0} | {:.0} % |",
        100.0 * sink / raw
    );
    for db in [raw_db, sink_db] {
        let _ = raw_client
            .query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute()
            .await;
    }
}
