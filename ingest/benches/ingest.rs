//! Ingest throughput against a real nats-server, in one run on one machine:
//! raw JetStream publishing (acks awaited in windows) vs ingest's HTTP path for batches of
//! 100 events and for single events, plus the in-process parse + validate + normalize cost.
//!
//! Run: `cargo bench -p ingest` (needs `nats-server` from scripts/test.sh). Prints a table.

use async_nats::jetstream::{self, message::PublishMessage, stream};
use chrono::Utc;
use clap::Parser;
use futures::future::join_all;
use futures::stream::{self as fstream, StreamExt};
use model::event::wire;
use model::intake::{Limits, Receipt, parse_native_batch};
use model::keyring::{KeyEntry, KeyFile, key_digest_hex};
use std::time::{Duration, Instant};
use tests::nats_server::NatsServer;

const EVENTS: usize = 60_000;
const KEY: &str = "wk_bench";

fn event_json(n: usize) -> serde_json::Value {
    serde_json::json!({
        "event_type": "checkout_completed", "user_id": format!("user-{}", n % 5000),
        "group_id": format!("account-{}", n % 300), "message_id": format!("bench-{n}"),
        "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"value": (n % 97) as f64 * 1.5, "currency": "USD", "plan": "team"}
    })
}

fn receipt() -> Receipt {
    Receipt {
        tenant: "bench".into(),
        source: "web".into(),
        received_at: Utc::now(),
    }
}

async fn raw_publish_rate(nats: &NatsServer, run: usize) -> f64 {
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let js = jetstream::new(client);
    js.create_or_update_stream(stream::Config {
        name: "RAW".into(),
        subjects: vec!["raw.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("stream");
    // The same payloads ingest publishes: wire-encoded normalized events, with message ids.
    let offset = run * EVENTS;
    let body = serde_json::to_vec(&serde_json::json!({"events": (offset..offset + EVENTS).map(event_json).collect::<Vec<_>>()})).unwrap();
    let limits = Limits {
        max_body_bytes: usize::MAX,
        max_batch_len: usize::MAX,
        ..Limits::default()
    };
    let events = parse_native_batch(&body, &receipt(), &limits).expect("events");
    let started = Instant::now();
    for window in events.chunks(1000) {
        let mut acks = Vec::with_capacity(window.len());
        for event in window {
            let message = PublishMessage::build()
                .payload(wire::encode(event).into())
                .message_id(&event.message_id);
            acks.push(
                js.send_publish("raw.bench.web", message)
                    .await
                    .expect("publish")
                    .into_future(),
            );
        }
        for ack in join_all(acks).await {
            ack.expect("ack");
        }
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

/// Events per second through ingest's HTTP API with `per_request` events a request and
/// `concurrency` requests in flight.
async fn http_rate(
    base: &str,
    per_request: usize,
    requests: usize,
    concurrency: usize,
    offset: usize,
) -> f64 {
    let http = tests::http();
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|r| {
            let events: Vec<_> = (0..per_request)
                .map(|i| event_json(offset + r * per_request + i))
                .collect();
            serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
        })
        .collect();
    let started = Instant::now();
    let statuses: Vec<u16> = fstream::iter(bodies)
        .map(|body| {
            let http = http.clone();
            async move {
                http.post(format!("{base}/v1/events"))
                    .bearer_auth(KEY)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "some requests failed: {:?}",
        statuses.iter().find(|s| **s != 200)
    );
    (requests * per_request) as f64 / elapsed
}

fn parse_cost_micros() -> (f64, f64) {
    let bodies: Vec<Vec<u8>> = (0..20_000)
        .map(|n| serde_json::to_vec(&serde_json::json!({"events": [event_json(n)]})).unwrap())
        .collect();
    let limits = Limits::default();
    let receipt = receipt();
    let mut samples: Vec<f64> = bodies
        .iter()
        .map(|body| {
            let started = Instant::now();
            let events = parse_native_batch(body, &receipt, &limits).expect("valid");
            std::hint::black_box(events);
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

#[tokio::main]
async fn main() {
    let nats = NatsServer::start();
    let keys = std::env::temp_dir().join(format!("{}.json", tests::unique("cs-bench-keys")));
    let file = KeyFile {
        keys: vec![KeyEntry {
            tenant: "bench".into(),
            source: "web".into(),
            sha256: key_digest_hex(KEY),
            tracking_plan: None,
        }],
    };
    std::fs::write(&keys, serde_json::to_vec(&file).unwrap()).unwrap();
    let config = ingest::config::Config::parse_from([
        "ingest",
        "--nats-url",
        &nats.url(),
        "--keys-file",
        &keys.display().to_string(),
        "--rate-limit-rps",
        "1000000",
        "--rate-limit-burst",
        "1000000",
        "--log-level",
        "error",
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ingest::serve(config, listener, std::future::pending()));
    let http = tests::http();
    let ready = tests::eventually(Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "ingest not ready");

    // Best of three runs each, interleaved, so a noisy moment on a shared machine skews neither.
    let (mut raw, mut batched, mut single) = (0f64, 0f64, 0f64);
    for run in 0..3 {
        raw = raw.max(raw_publish_rate(&nats, run).await);
        batched = batched.max(http_rate(&base, 100, EVENTS / 100, 8, run * EVENTS).await);
        single = single.max(http_rate(&base, 1, 5_000, 32, 10 * EVENTS + run * 5_000).await);
    }
    let (p50, p99) = parse_cost_micros();

    println!();
    println!("| measurement (best of 3, same nats-server) | result | vs raw publish |");
    println!("|---|---|---|");
    println!(
        "| raw async-nats JetStream publish, acks awaited per 1000 | {raw:.0} events/s | 100 % |"
    );
    println!(
        "| ingest HTTP, batches of 100 events, 8 in flight | {batched:.0} events/s | {:.0} % |",
        100.0 * batched / raw
    );
    println!(
        "| ingest HTTP, single-event requests, 32 in flight | {single:.0} events/s | {:.0} % |",
        100.0 * single / raw
    );
    println!("| parse + validate + normalize, one event, p50 | {p50:.1} µs | |");
    println!("| parse + validate + normalize, one event, p99 | {p99:.1} µs | |");
    let _ = std::fs::remove_file(keys);
}
