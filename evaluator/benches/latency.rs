//! Alert latency: from the HTTP 200 that ingest answers for the event that tips a rule, to
//! the signed webhook's arrival at a real HTTP receiver, at steady background load. Ingest
//! and the evaluator run for real, in process, with their default batching, against a
//! private nats-server (the pinned one `scripts/test.sh` installs) and the running
//! ClickHouse. Run: `cargo bench -p evaluator --bench latency`. Prints a table.
//!
//! Each probe is a `track` call of a fresh user; a rule counting `probe` events per user
//! with trigger `> 0` fires on it at once. Meanwhile a background sender posts Segment
//! batches of `page_view` events (10 requests a second) that another rule aggregates over
//! 10 000 users without ever firing, so the engine and the ClickHouse writer do real work.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use evaluator::config::RunConfig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::nats_server::NatsServer;

/// Background events per second for each row of the table.
const LOADS: [u64; 4] = [0, 1_000, 5_000, 20_000];
const SAMPLES: usize = 100;
const PROBE_GAP: Duration = Duration::from_millis(100);
const WRITE_KEY: &str = "wk_latency_bench";

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

#[derive(Parser)]
struct EvaluatorArgs {
    #[command(flatten)]
    run: RunConfig,
}

fn config(hook_port: u16) -> String {
    format!(
        "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {{name: web, namespace: bench}}
spec:
  retentionDays: 3650
  writeKeys: [{{name: keys, key: primary}}]
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: first-probe, namespace: bench}}
spec:
  source: web
  events: {{names: [probe]}}
  aggregation: {{function: count, timeWindow: 1h}}
  groupBy: user
  triggerValue: 0
  webhook: {{url: 'http://127.0.0.1:{hook_port}/hook', secretRef: {{name: hook, key: secret}}}}
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: background, namespace: bench}}
spec:
  source: web
  events: {{names: [page_view]}}
  aggregation: {{function: sum, field: value, timeWindow: 1h}}
  groupBy: user
  triggerValue: 1000000000
  webhook: {{url: 'http://127.0.0.1:{hook_port}/hook', secretRef: {{name: hook, key: secret}}}}
"
    )
}

/// Records when each group's `firing` webhook arrives.
async fn hook(State(arrivals): State<Arrivals>, Json(body): Json<Value>) -> &'static str {
    let at = Instant::now();
    if body["notification"] == "firing"
        && let Some(group) = body["group"].as_str()
    {
        arrivals.lock().unwrap().entry(group.into()).or_insert(at);
    }
    "ok"
}

async fn wait_ready(http: &reqwest::Client, url: String) {
    let ready = tests::eventually(Duration::from_secs(60), || async {
        http.get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "{url} did not become ready");
}

/// Posts `per_second` page_view events as 10 Segment batches a second until stopped.
async fn background(
    http: reqwest::Client,
    url: String,
    per_second: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut sent = 0;
    if per_second == 0 {
        return sent;
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let per_batch = per_second / 10;
    while !*stop.borrow() {
        ticker.tick().await;
        let batch: Vec<Value> = (0..per_batch)
            .map(|i| {
                let user = (sent + i) * 7919 % 10_000;
                json!({"type": "track", "userId": format!("user-{user}"), "event": "page_view",
                       "properties": {"value": 1}})
            })
            .collect();
        let answer = http
            .post(&url)
            .basic_auth(WRITE_KEY, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            sent += per_batch;
        }
    }
    sent
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into());
    model::service::init_tracing(false, &filter);
    let nats = NatsServer::start();
    let dir = std::env::temp_dir().join(tests::unique("cs-latency"));
    let secrets = dir.join("secrets");
    for (path, value) in [
        ("bench/keys/primary", WRITE_KEY),
        (
            "bench/hook/secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ] {
        let file = secrets.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(Path::new("."))).expect("dir");
        std::fs::write(file, value).expect("secret");
    }

    let arrivals = Arrivals::default();
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_port = hook_listener.local_addr().expect("addr").port();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(hook_listener, app).await });
    std::fs::write(dir.join("config.yaml"), config(hook_port)).expect("config");

    let database = tests::unique("cs_latency");
    let clickhouse_url = tests::clickhouse_url();
    let dir_arg = dir.display().to_string();
    let secrets_arg = secrets.display().to_string();
    let run = EvaluatorArgs::parse_from([
        "evaluator",
        "--config",
        &dir_arg,
        "--nats-url",
        &nats.url(),
        "--clickhouse-url",
        &clickhouse_url,
        "--clickhouse-database",
        &database,
        "--secrets-dir",
        &secrets_arg,
    ])
    .run;
    let evaluator_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let evaluator_addr = evaluator_listener.local_addr().expect("addr");
    let mut evaluator =
        tests::Running::spawn(|shutdown| evaluator::run(run, evaluator_listener, shutdown));

    let sources = dir.join("config.yaml").display().to_string();
    let ingest_config = ingest::config::Config::parse_from([
        "ingest",
        "--nats-url",
        &nats.url(),
        "--sources",
        &sources,
        "--secrets-dir",
        &secrets_arg,
        // JetStream reserves a stream's maximum on disk: keep it small on a test machine.
        "--stream-max-bytes",
        "1073741824",
    ]);
    let ingest_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ingest_addr = ingest_listener.local_addr().expect("addr");
    let mut ingest =
        tests::Running::spawn(|shutdown| ingest::serve(ingest_config, ingest_listener, shutdown));

    let http = tests::http();
    wait_ready(&http, format!("http://{evaluator_addr}/readyz")).await;
    wait_ready(&http, format!("http://{ingest_addr}/readyz")).await;

    let mut rows = Vec::new();
    for load in LOADS {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let sender = tokio::spawn(background(
            http.clone(),
            format!("http://{ingest_addr}/v1/batch"),
            load,
            stopped,
        ));
        tokio::time::sleep(Duration::from_secs(2)).await; // reach steady load
        let started = Instant::now();
        let mut sent = HashMap::new();
        for i in 0..SAMPLES {
            let user = format!("probe-{load}-{i}");
            let answer = http
                .post(format!("http://{ingest_addr}/v1/track"))
                .basic_auth(WRITE_KEY, Some(""))
                .json(&json!({"userId": user, "event": "probe", "properties": {}}))
                .send()
                .await
                .expect("probe");
            assert!(answer.status().is_success(), "probe: {}", answer.status());
            sent.insert(user, Instant::now());
            tokio::time::sleep(PROBE_GAP).await;
        }
        let all_arrived = tests::eventually(Duration::from_secs(30), || async {
            let arrivals = arrivals.lock().unwrap();
            sent.keys().all(|user| arrivals.contains_key(user))
        })
        .await;
        let _ = stop.send(true);
        let background_sent = sender.await.unwrap_or(0);
        let seconds = started.elapsed().as_secs_f64() + 2.0;
        let arrivals = arrivals.lock().unwrap().clone();
        let mut latencies: Vec<Duration> = sent
            .iter()
            .filter_map(|(user, at)| Some(arrivals.get(user)?.saturating_duration_since(*at)))
            .collect();
        latencies.sort();
        if !all_arrived || latencies.is_empty() {
            eprintln!(
                "load {load}/s: {} of {SAMPLES} webhooks arrived",
                latencies.len()
            );
        }
        if latencies.is_empty() {
            continue;
        }
        rows.push(format!(
            "| {load} events/s (sent {:.0}/s) | {} | {} | {} | {} |",
            background_sent as f64 / seconds,
            latencies.len(),
            millis(percentile(&latencies, 0.5)),
            millis(percentile(&latencies, 0.99)),
            millis(*latencies.last().unwrap_or(&Duration::ZERO)),
        ));
    }

    let _ = ingest.stop().await;
    let _ = evaluator.stop().await;
    let _ = clickhouse::Client::default()
        .with_url(&clickhouse_url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!("HTTP 200 of the tipping event → its webhook received (default 200 ms batching):");
    println!();
    println!("| background load | samples | p50 | p99 (target < 1 s) | max |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
