//! After a crash, the messages the dead evaluator held unacked must still be evaluated in
//! stream order: otherwise a `group` call in flight at the crash would count after the tracks
//! sent behind it, which would find no account for their user and never count (the alert
//! missed although every event is stored). The evaluator recreates its durable consumer from
//! the ack floor when messages are pending at start (evaluator/src/consumer.rs).
//!
//! Made deterministic with a private ClickHouse: while it is down the evaluator holds the
//! group call unacked; it is killed, ClickHouse returns, the tracks are sent, and a new
//! evaluator starts with the group call pending and the tracks newer.

use std::time::Duration;
use tests::clickhouse_server::ClickHouseServer;
use tests::pipeline::{Pipeline, Tenant};
use tests::receiver::{Delivery, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_in_flight_at_a_crash_still_qualifies_the_tracks_sent_after_it() {
    let mut clickhouse = ClickHouseServer::start();
    let tenant = Tenant::new("acme", "web", "big-spenders", 5000);
    let port = tests::nats_server::free_port();
    let mut receiver = Receiver::new(port, &[(tenant.hook(), tenant.secret.as_str())]);
    receiver.up().await;
    let key = tenant.write_key.clone();
    let mut pipeline = Pipeline::start(vec![tenant], port, clickhouse.url()).await;
    let (group, tracks) = tests::dataset::single_alert(chrono::Utc::now().timestamp_millis());
    let (http, ingest) = (tests::http(), pipeline.ingest_url());
    let send = |messages: Vec<serde_json::Value>| {
        let (http, ingest, key) = (http.clone(), ingest.clone(), key.clone());
        async move {
            let sent = tests::segment::send(
                &http,
                &ingest,
                &key,
                &messages,
                100,
                Duration::from_secs(60),
            )
            .await
            .unwrap();
            assert_eq!(sent.accepted, messages.len() as u64);
        }
    };

    clickhouse.stop();
    send(vec![group]).await;
    let held = tests::eventually(Duration::from_secs(30), || async {
        pipeline
            .unacked_events("acme", "web")
            .await
            .is_ok_and(|n| n == 1)
    })
    .await;
    assert!(held, "the evaluator did not receive the group call");
    pipeline.kill_evaluator();
    clickhouse.restart();
    send(tracks).await;
    pipeline.start_evaluator().await;

    let delivered = tests::eventually(Duration::from_secs(60), || async {
        receiver.deliveries().iter().any(Delivery::accepted)
    })
    .await;
    assert!(delivered, "the alert for acct-crash was missed");
    let got = receiver.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["group"], "acct-crash");
    receiver.down().await;
    pipeline.finish().await;
}
