//! The whole pipeline end to end, with the real binaries as processes: two tenants send a
//! generated week of Segment data through ingest's HTTP API at the same time; the evaluator
//! stores it in ClickHouse and posts signed webhooks to a real receiver. Every test checks
//! (see `tests::scenario`): each event stored exactly once (count FINAL and distinct message
//! ids), exactly the alerts the test computed from its own data, each with one webhook-id and
//! a valid signature, and nothing of one tenant in the other's rows or webhooks. The fault
//! tests inject their fault part way through and must end in the same state.
//!
//! Each test has its own nats-server and ClickHouse database (and the outage test its own
//! clickhouse-server), so tests run in parallel with each other and the rest of the suite.
//! The binaries are built by `tests::binaries` (see there why not `CARGO_BIN_EXE_*`).

use std::time::Duration;
use tests::clickhouse_server::ClickHouseServer;
use tests::receiver::Mode;
use tests::scenario::{Deliveries, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_every_event_once_every_expected_alert_once_and_nothing_leaks() {
    let run = Scenario::start(11, tests::clickhouse_url()).await;
    run.send(0..usize::MAX).await.unwrap();
    run.verify(Deliveries::Once, true).await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluator_sigkilled_mid_run_and_restarted() {
    let mut run = Scenario::start(21, tests::clickhouse_url()).await;
    let half = run.half();
    run.send(0..half).await.unwrap();
    // Kill while the first half is being stored and alerted on, once the profiles (sent
    // first) are stored: a crash while they are in flight is a known gap, see crash_reorder.rs.
    let profiles = tests::eventually(Duration::from_secs(60), || run.profiles_stored()).await;
    assert!(profiles, "profiles not stored before the kill");
    run.pipeline.kill_evaluator();
    // Ingest keeps accepting while the evaluator is down.
    run.send(half..usize::MAX).await.unwrap();
    run.pipeline.start_evaluator().await;
    run.verify(Deliveries::SameIdMaybeTwice, false).await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_restarted_mid_run() {
    let mut run = Scenario::start(31, tests::clickhouse_url()).await;
    let half = run.half();
    run.send(0..half).await.unwrap();
    // The second half is sent while NATS is down for 3 s: ingest answers 503 and the sender
    // retries the same batches, as SDKs do; both services reconnect without a restart.
    let sending = run.send(half..usize::MAX);
    run.pipeline.nats.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.pipeline.nats.restart();
    let retried = sending.await.unwrap();
    assert!(retried > 0, "ingest refused requests while NATS was down");
    run.verify(Deliveries::SameIdMaybeTwice, false).await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_stopped_for_30_seconds_mid_run() {
    let mut clickhouse = ClickHouseServer::start();
    let run = Scenario::start(41, clickhouse.url()).await;
    let half = run.half();
    run.send(0..half).await.unwrap();
    clickhouse.stop();
    // The second half arrives while ClickHouse is down; ingest does not depend on it.
    run.send(half..usize::MAX).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Whether it was writing events or recording transitions when ClickHouse went away, the
    // evaluator says it is not ready.
    let readyz = format!("{}/readyz", run.pipeline.evaluator_url());
    let status = tests::http().get(&readyz).send().await.unwrap().status();
    assert_eq!(status, 503, "evaluator ready while ClickHouse is down");
    clickhouse.restart();
    run.verify(Deliveries::Once, true).await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_unavailable_then_back() {
    let mut run = Scenario::start(51, tests::clickhouse_url()).await;
    // Connections refused while every event is sent and every alert decided.
    run.receiver.down().await;
    run.send(0..usize::MAX).await.unwrap();
    let decided = tests::eventually(Duration::from_secs(60), || async {
        let expected: usize = run.sent.iter().map(|(_, d)| d.expected.len()).sum();
        run.pipeline
            .clickhouse
            .query("SELECT count() FROM alert_events FINAL WHERE state = 'firing'")
            .fetch_one::<u64>()
            .await
            .is_ok_and(|n| n as usize == expected)
    })
    .await;
    assert!(
        decided,
        "alerts were not decided while the receiver was down"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(run.receiver.deliveries().is_empty());
    // Then it answers 503 + Retry-After for a while, then 200.
    run.receiver.set_mode(Mode::Unavailable);
    run.receiver.up().await;
    let refused = tests::eventually(Duration::from_secs(60), || async {
        !run.receiver.deliveries().is_empty()
    })
    .await;
    assert!(refused, "no retry reached the receiver once it listened");
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.receiver.set_mode(Mode::Accept);
    run.verify(Deliveries::RetriedUntilAccepted, true).await;
    assert!(
        run.receiver
            .deliveries()
            .iter()
            .any(|d| d.status == Some(503)),
        "some attempts were answered 503"
    );
    run.finish().await;
}
