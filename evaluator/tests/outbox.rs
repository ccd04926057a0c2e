//! The durable webhook outbox against a private nats-server and real HTTP receivers.

use async_nats::jetstream;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use evaluator::webhook::delivery::{RetryPolicy, client};
use evaluator::webhook::outbox::{Entry, Worker, enqueue, ensure_stream};
use futures::StreamExt;
use model::secrets::StandaloneSecrets;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::eventually;
use tests::nats_server::{NatsServer, free_port};
use tokio::sync::{Notify, watch};

#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<String>>>,
    status: u16,
    /// When set, each request waits for it before answering.
    gate: Option<Arc<Notify>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    _body: Bytes,
) -> axum::http::StatusCode {
    r.received
        .lock()
        .unwrap()
        .push(headers["webhook-id"].to_str().unwrap().to_string());
    if let Some(gate) = &r.gate {
        gate.notified().await;
    }
    axum::http::StatusCode::from_u16(r.status).unwrap()
}

async fn serve(port: u16, status: u16, gate: Option<Arc<Notify>>) -> Arc<Mutex<Vec<String>>> {
    let receiver = Receiver {
        received: Arc::default(),
        status,
        gate,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    receiver.received
}

struct Setup {
    _nats: NatsServer,
    js: jetstream::Context,
    stop: watch::Sender<bool>,
}

async fn setup(max_attempts: u32) -> Setup {
    let nats = NatsServer::start();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    ensure_stream(&js, "OUTBOX").await.unwrap();
    js.get_or_create_stream(jetstream::stream::Config {
        name: "DEADLETTER".into(),
        subjects: vec!["deadletter.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let policy = RetryPolicy {
        timeout: Duration::from_secs(5),
        max_attempts,
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        ..RetryPolicy::default()
    };
    let worker = Worker::new(
        js.clone(),
        "OUTBOX".into(),
        client().unwrap(),
        StandaloneSecrets::default(),
        policy,
        2,
    );
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(worker.run(stopped));
    Setup {
        _nats: nats,
        js,
        stop,
    }
}

fn entry(id: &str, port: u16) -> Entry {
    Entry {
        id: id.into(),
        tenant: "acme".into(),
        rule: "big-spenders".into(),
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: None,
        body: br#"{"state":"firing"}"#.to_vec(),
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_notification_exactly_once_when_it_returns() {
    let setup = setup(100).await;
    let port = free_port();
    enqueue(&setup.js, &entry("trn-down", port)).await.unwrap();
    // Deciding the same transition again (a crash before the ack) stores it once.
    enqueue(&setup.js, &entry("trn-down", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await; // several failed attempts
    let received = serve(port, 200, None).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !received.lock().unwrap().is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*received.lock().unwrap(), ["trn-down"]);
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn a_receiver_that_never_recovers_sends_the_notification_to_the_dead_letter_stream() {
    let setup = setup(3).await;
    let port = free_port();
    let received = serve(port, 500, None).await;
    enqueue(&setup.js, &entry("trn-dead", port)).await.unwrap();
    let dead = setup.js.get_stream("DEADLETTER").await.unwrap();
    let consumer = dead
        .create_consumer(jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
        .await
        .expect("dead letter")
        .unwrap()
        .unwrap();
    assert_eq!(
        message.subject.as_str(),
        "deadletter.outbox.acme.big-spenders"
    );
    let headers = message.headers.clone().unwrap();
    let error = headers.get("CS-Error").unwrap().to_string();
    assert!(
        error.contains("500") && error.contains("after 3 attempts"),
        "{error}"
    );
    assert_eq!(received.lock().unwrap().len(), 3);
    let _ = setup.stop.send(true);
}

#[tokio::test]
async fn a_slow_receiver_does_not_stall_the_others() {
    let setup = setup(100).await;
    let (slow_port, fast_port) = (free_port(), free_port());
    let gate = Arc::new(Notify::new());
    let slow = serve(slow_port, 200, Some(gate.clone())).await;
    let fast = serve(fast_port, 200, None).await;
    for i in 0..10 {
        enqueue(&setup.js, &entry(&format!("trn-slow-{i}"), slow_port))
            .await
            .unwrap();
    }
    enqueue(&setup.js, &entry("trn-fast", fast_port))
        .await
        .unwrap();
    // Every slow request hangs until the gate opens; the fast one must get through meanwhile.
    assert!(
        eventually(Duration::from_secs(10), || async {
            fast.lock().unwrap().len() == 1
        })
        .await
    );
    assert!(
        slow.lock().unwrap().len() <= 2,
        "at most per_target attempts at the slow receiver at once"
    );
    // Release the slow receiver: everything is delivered in the end.
    let released = eventually(Duration::from_secs(30), || async {
        gate.notify_waiters();
        let mut ids = slow.lock().unwrap().clone();
        ids.sort();
        ids.dedup();
        ids.len() == 10
    })
    .await;
    assert!(released);
    let _ = setup.stop.send(true);
}
