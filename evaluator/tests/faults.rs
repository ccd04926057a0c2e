//! Crashes and outages: the evaluator binary SIGKILLed mid-stream, and ClickHouse stopped for
//! 30 s while events flow. Real nats-server and ClickHouse; nothing may be lost or doubled.

mod support;

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{TestEvaluator, config_dir, run_args};
use tests::clickhouse_server::ClickHouseServer;
use tests::nats_server::{NatsServer, free_port};
use tests::{eventually, publish_events, track_event};

const T0: i64 = 1_767_225_600_000;

struct Evaluator(Child);

impl Evaluator {
    fn spawn(args: &[String]) -> Self {
        let port = free_port().to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_evaluator"))
            .arg("run")
            .args(args)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--batch-rows",
                "500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("evaluator binary");
        Self(child)
    }
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn counts(client: &clickhouse::Client) -> (u64, u64, u64) {
    client
        .query("SELECT (SELECT count() FROM events FINAL), (SELECT uniqExact(message_id) FROM events), (SELECT count() FROM events)")
        .fetch_one()
        .await
        .unwrap_or((0, 0, 0))
}

#[tokio::test]
async fn sigkill_mid_batch_then_restart_stores_every_event_exactly_once() {
    let nats = NatsServer::start();
    let database = tests::unique("cs_crash");
    let dir = config_dir();
    let args = run_args(&dir, &nats.url(), &tests::clickhouse_url(), &database);
    let client = clickhouse::Client::default()
        .with_url(tests::clickhouse_url())
        .with_validation(false)
        .with_database(&database);

    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let first = Evaluator::spawn(&args);
    // Wait until the evaluator created its consumer, then publish a long stream.
    let consuming = eventually(Duration::from_secs(30), || async {
        js.get_stream("EVENTS").await.is_ok()
            && client
                .query("SELECT count() FROM events")
                .fetch_one::<u64>()
                .await
                .is_ok()
    })
    .await;
    assert!(consuming, "evaluator never set up its store");
    const N: u64 = 20_000;
    let events: Vec<_> = (0..N)
        .map(|i| {
            track_event(
                "acme",
                "web",
                &format!("crash-{i}"),
                &format!("u{}", i % 50),
                "x",
                T0 + i as i64,
                json!({"i": i}),
            )
        })
        .collect();
    let publisher = tokio::spawn({
        let js = js.clone();
        async move { publish_events(&js, &events).await }
    });
    // Kill it while it is part way through.
    let partway = eventually(Duration::from_secs(60), || async {
        counts(&client).await.2 >= 1_000
    })
    .await;
    assert!(partway, "nothing was stored before the kill");
    let mut first = first;
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    publisher.await.unwrap().unwrap();
    let at_kill = counts(&client).await;
    assert!(
        at_kill.0 < N,
        "the kill should land mid-stream: {at_kill:?}"
    );

    let mut second = Evaluator::spawn(&args);
    let complete = eventually(Duration::from_secs(120), || async {
        counts(&client).await.0 == N
    })
    .await;
    let (exact, distinct, raw) = counts(&client).await;
    if !complete {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream("EVENTS")
            .await
            .unwrap()
            .get_consumer("evaluator-acme-web")
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        eprintln!(
            "consumer: pending {} ack_pending {} redelivered {} delivered {:?} ack_floor {:?}",
            info.num_pending,
            info.num_ack_pending,
            info.num_redelivered,
            info.delivered,
            info.ack_floor
        );
    }
    assert!(
        complete,
        "after restart: {exact} of {N} events stored ({distinct} distinct, {raw} raw)"
    );
    assert_eq!(distinct, N, "every message id present");
    assert!(
        raw >= N,
        "raw rows {raw} include any redelivered copies, which FINAL collapses"
    );

    // SIGTERM: the evaluator drains and exits cleanly.
    let exit = tests::terminate(&mut second.0).await;
    assert!(exit.expect("evaluator exits after SIGTERM").success());
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn clickhouse_stopped_for_30_seconds_loses_nothing() {
    let mut clickhouse = ClickHouseServer::start();
    let evaluator = TestEvaluator::start_with(NatsServer::start(), clickhouse.url(), &[]).await;
    let js = evaluator.jetstream().await;
    let batch = |from: u64, to: u64| -> Vec<_> {
        (from..to)
            .map(|i| {
                track_event(
                    "acme",
                    "web",
                    &format!("out-{i}"),
                    "u",
                    "x",
                    T0 + i as i64,
                    json!({}),
                )
            })
            .collect()
    };
    publish_events(&js, &batch(0, 100)).await.unwrap();
    assert!(evaluator.wait_stored("acme", 100).await);

    clickhouse.stop();
    let http = tests::http();
    let readyz = format!("http://{}/readyz", evaluator.addr);
    // Events keep flowing while ClickHouse is down.
    for second in 0..30u64 {
        publish_events(&js, &batch(100 + second * 10, 110 + second * 10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = http.get(&readyz).send().await.unwrap().status();
    assert_eq!(status, 503, "readiness reflects the store outage");

    clickhouse.restart();
    assert!(
        evaluator.wait_stored("acme", 400).await,
        "stored {}",
        evaluator.stored("acme").await
    );
    let ready = eventually(Duration::from_secs(10), || async {
        http.get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "ready again after ClickHouse returned");
    evaluator.stop().await.unwrap();
}
