//! Issue #6: the evaluator SIGKILLed between deciding a notification and delivering it must
//! still end in exactly one delivery with one webhook-id. Real binaries as processes, a
//! private nats-server, the shared ClickHouse, a real receiver that verifies signatures.
//!
//! A decision is recorded, in this order, as the alert state in KV `ALERT_STATE`, a message
//! in the outbox stream `OUTBOX` (message id = transition id = the `webhook-id`), and a row in
//! `alert_events`; then a delivery worker posts it and acks it after a 2xx. Two crash points:
//!
//! 1. Killed while the delivery is in flight (the receiver holds the request open, so the kill
//!    provably lands after the decision was stored and before the evaluator saw a success).
//!    After the restart the outbox redelivers the same message: the receiver sees the same
//!    webhook-id again and accepts it. Asserted: every request carries that one webhook-id,
//!    exactly one was answered 2xx, the outbox holds exactly one message, `alert_events` one
//!    firing transition with that id: one decision, one delivery. (Had the kill come after
//!    the receiver's 2xx but before the ack, the receiver would accept the id twice; Standard
//!    Webhooks receivers de-duplicate by webhook-id, which is why it must be stable.)
//! 2. Killed after the decision but before it reached the outbox: publishing to the outbox is
//!    made to fail (its stream's subjects moved away) so the evaluator is held exactly there,
//!    retrying; then it is killed, the outbox restored, and the evaluator restarted.

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tests::pipeline::{Pipeline, Tenant};
use tests::receiver::{Delivery, Mode, Receiver};

fn messages() -> Vec<Value> {
    let (group, tracks) = tests::dataset::single_alert(chrono::Utc::now().timestamp_millis());
    [vec![group], tracks].concat()
}

struct Setup {
    pipeline: Pipeline,
    receiver: Receiver,
    js: jetstream::Context,
}

async fn setup(mode: Mode) -> Setup {
    let tenant = Tenant::new("acme", "web", "big-spenders", 5000);
    let port = tests::nats_server::free_port();
    let mut receiver = Receiver::new(port, &[(tenant.hook(), tenant.secret.as_str())]);
    receiver.set_mode(mode);
    receiver.up().await;
    let pipeline = Pipeline::start(vec![tenant], port, tests::clickhouse_url()).await;
    let js = jetstream::new(async_nats::connect(pipeline.nats.url()).await.unwrap());
    Setup {
        pipeline,
        receiver,
        js,
    }
}

async fn send(setup: &Setup) {
    let key = &setup.pipeline.tenants[0].write_key;
    let sent = tests::segment::send(
        &tests::http(),
        &setup.pipeline.ingest_url(),
        key,
        &messages(),
        100,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(sent.accepted, 4);
}

async fn outbox_messages(js: &jetstream::Context) -> u64 {
    let mut stream = js.get_stream("OUTBOX").await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// The alert state of `acct-crash`, from KV: its phase.
async fn alert_phase(js: &jetstream::Context) -> Option<String> {
    let kv = js.get_key_value("ALERT_STATE").await.ok()?;
    let mut keys = kv.keys().await.ok()?;
    while let Some(Ok(key)) = keys.next().await {
        let value = kv.get(&key).await.ok()??;
        let state: Value = serde_json::from_slice(&value).ok()?;
        if state["group"] == "acct-crash" {
            return state["state"]["phase"].as_str().map(String::from);
        }
    }
    None
}

/// Waits for a 2xx delivery, lets the evaluator run a few more ticks, and checks the outcome:
/// one webhook-id over every request, accepted once, one outbox message, one transition.
async fn assert_one_delivery(setup: &Setup) -> Vec<Delivery> {
    let delivered = tests::eventually(Duration::from_secs(90), || async {
        setup.receiver.deliveries().iter().any(Delivery::accepted)
    })
    .await;
    assert!(delivered, "never delivered\n{}", setup.pipeline.logs());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = setup.receiver.deliveries();
    let id = got[0].webhook_id.clone();
    for d in &got {
        assert_eq!(d.webhook_id, id, "one webhook-id over every request");
        assert_eq!(d.verified, Ok(()));
        assert_eq!(d.body["group"], "acct-crash");
        assert_eq!(d.body["notification"], "firing");
        assert_eq!(d.body["value"], 6000.0);
    }
    assert_eq!(got.iter().filter(|d| d.accepted()).count(), 1, "{got:?}");
    assert_eq!(
        outbox_messages(&setup.js).await,
        1,
        "one decision in the outbox"
    );
    let transitions: Vec<(String, String)> = setup
        .pipeline
        .clickhouse
        .query("SELECT DISTINCT transition_id, state FROM alert_events")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(transitions, [(id, "firing".to_string())], "one transition");
    assert_eq!(alert_phase(&setup.js).await.as_deref(), Some("firing"));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluator_killed_while_delivering_then_restarted_delivers_one_webhook_id() {
    let mut setup = setup(Mode::Hold).await;
    send(&setup).await;
    let held = tests::eventually(Duration::from_secs(60), || async {
        !setup.receiver.deliveries().is_empty()
    })
    .await;
    assert!(held, "no delivery attempt\n{}", setup.pipeline.logs());
    // The decision is durable before the first attempt: state, outbox message, transition.
    assert_eq!(alert_phase(&setup.js).await.as_deref(), Some("firing"));
    assert_eq!(outbox_messages(&setup.js).await, 1);
    setup.pipeline.kill_evaluator();
    // The held request is answered (503) only now, to a sender that is gone.
    setup.receiver.set_mode(Mode::Accept);
    setup.pipeline.start_evaluator().await;
    let got = assert_one_delivery(&setup).await;
    assert_eq!(got.len(), 2, "the held attempt, then one after the restart");
    // The held request was never answered 2xx (its connection died with the evaluator).
    assert!(!got[0].accepted() && got[1].accepted());
    setup.receiver.down().await;
    setup.pipeline.finish().await;
}

/// Moves the outbox stream's subjects away (publishing fails) or back.
async fn block_outbox(js: &jetstream::Context, blocked: bool) {
    let mut stream = js.get_stream("OUTBOX").await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.subjects = vec![
        if blocked {
            "blocked.outbox.>"
        } else {
            "outbox.>"
        }
        .into(),
    ];
    js.update_stream(config).await.unwrap();
}

/// The decision is durable in the KV state (with its unfinished notification) before the
/// outbox is written; the restarted evaluator finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluator_killed_after_deciding_before_the_outbox_has_it_delivers_once() {
    let mut setup = setup(Mode::Accept).await;
    block_outbox(&setup.js, true).await;
    send(&setup).await;
    // The evaluator evaluates a batch after storing it and acks it after recording what it
    // decided: stored but unacked, with an empty outbox, it is stuck recording the decision.
    let stored = tests::eventually(Duration::from_secs(60), || async {
        setup
            .pipeline
            .clickhouse
            .query("SELECT count() FROM events FINAL")
            .fetch_one::<u64>()
            .await
            .is_ok_and(|n| n == 4)
    })
    .await;
    assert!(stored, "events not stored\n{}", setup.pipeline.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unacked = setup.pipeline.unacked_events("acme", "web").await.unwrap();
    assert_eq!(unacked, 4, "the batch is held in recording");
    assert_eq!(
        outbox_messages(&setup.js).await,
        0,
        "the outbox could not take it"
    );
    // Stuck recording is not ready, although its events were stored.
    let readyz = format!("{}/readyz", setup.pipeline.evaluator_url());
    let status = tests::http().get(&readyz).send().await.unwrap().status();
    assert_eq!(
        status, 503,
        "ready while alert transitions cannot be recorded"
    );
    setup.pipeline.kill_evaluator();
    block_outbox(&setup.js, false).await;
    setup.pipeline.start_evaluator().await;
    let got = assert_one_delivery(&setup).await;
    assert_eq!(got.len(), 1);
    setup.receiver.down().await;
    setup.pipeline.finish().await;
}
