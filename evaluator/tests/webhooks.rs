//! Webhook delivery against a real HTTP receiver on 127.0.0.1, and signatures checked by the
//! independent reference verifier (the PyPI package `standardwebhooks`, installed by
//! scripts/test.sh).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use evaluator::webhook::delivery::{Outcome, RetryPolicy, Target, attempt, client};
use evaluator::webhook::signing::SigningSecret;
use std::collections::VecDeque;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A scripted answer: status and optional `Retry-After`.
type Answer = (u16, Option<&'static str>);

#[derive(Clone, Default)]
struct Receiver {
    /// Scripted answers; 200 once exhausted.
    script: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    receiver.received.lock().unwrap().push((headers, body));
    let (status, retry_after) = receiver
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, None));
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(value) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    response
}

async fn start_receiver(script: Vec<Answer>) -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().extend(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_secs(2),
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(30),
        ..RetryPolicy::default()
    }
}

/// Verifies with the reference implementation, in a separate Python process.
fn verify_with_reference(headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let python = std::env::var("CS_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.into()
        } else {
            "python3".into()
        }
    });
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let script = "import sys, standardwebhooks\n\
        wh = standardwebhooks.Webhook(sys.argv[1])\n\
        wh.verify(sys.stdin.buffer.read(), {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]})\n";
    let mut child = Command::new(python)
        .args([
            "-c",
            script,
            SECRET,
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body)
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test]
async fn retries_honour_retry_after_and_keep_one_webhook_id_then_deliver_a_verifiable_signature() {
    let (receiver, url) =
        start_receiver(vec![(503, Some("2")), (500, None), (429, Some("1"))]).await;
    let target = Target {
        url,
        secret: Some(SigningSecret::parse(SECRET).unwrap()),
    };
    let http = client().unwrap();
    let body = br#"{"rule":"big-spenders","state":"firing","value":5600}"#;
    let first = SystemTime::now();
    let mut outcomes = Vec::new();
    for n in 1..=4 {
        let outcome = attempt(&http, &target, "trn_01", body, n, first, &policy()).await;
        let done = matches!(outcome, Outcome::Delivered { .. });
        outcomes.push(outcome);
        if done {
            break;
        }
    }
    assert_eq!(
        outcomes[0],
        Outcome::Retry {
            after: Duration::from_secs(2),
            error: "receiver answered 503 Service Unavailable".into()
        }
    );
    assert!(
        matches!(&outcomes[1], Outcome::Retry { after, .. } if *after >= Duration::from_millis(10) && *after < Duration::from_secs(30))
    );
    assert_eq!(
        outcomes[2],
        Outcome::Retry {
            after: Duration::from_secs(1),
            error: "receiver answered 429 Too Many Requests".into()
        }
    );
    assert_eq!(outcomes[3], Outcome::Delivered { status: 200 });

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    for (headers, got) in &received {
        assert_eq!(
            headers["webhook-id"], "trn_01",
            "one id across retries, so receivers can de-duplicate"
        );
        assert_eq!(&got[..], body);
    }
    let (headers, got) = &received[3];
    verify_with_reference(headers, got).expect("the reference verifier accepts the signature");
    // And it rejects a tampered body, so the check above could fail.
    assert!(verify_with_reference(headers, br#"{"rule":"big-spenders","value":1}"#).is_err());
}

#[tokio::test]
async fn client_errors_are_final_and_retries_end_at_the_attempt_limit() {
    let (_, url) = start_receiver(vec![(400, None)]).await;
    let target = Target { url, secret: None };
    let http = client().unwrap();
    let outcome = attempt(
        &http,
        &target,
        "trn_02",
        b"{}",
        1,
        SystemTime::now(),
        &policy(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::GiveUp {
            error: "receiver answered 400 Bad Request".into()
        }
    );

    let (_, url) = start_receiver(vec![(502, None); 10]).await;
    let target = Target { url, secret: None };
    let last = attempt(
        &http,
        &target,
        "trn_03",
        b"{}",
        policy().max_attempts,
        SystemTime::now(),
        &policy(),
    )
    .await;
    assert!(
        matches!(&last, Outcome::GiveUp { error } if error.contains("502") && error.contains("after 4 attempts")),
        "{last:?}"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_then_given_up_after_max_age() {
    let port = tests::nats_server::free_port(); // nothing listens there
    let target = Target {
        url: format!("http://127.0.0.1:{port}/hook"),
        secret: None,
    };
    let http = client().unwrap();
    let outcome = attempt(
        &http,
        &target,
        "trn_04",
        b"{}",
        1,
        SystemTime::now(),
        &policy(),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Retry { error, .. } if error.starts_with("request failed")),
        "{outcome:?}"
    );
    let long_ago = SystemTime::now() - Duration::from_secs(25 * 3600);
    let outcome = attempt(&http, &target, "trn_04", b"{}", 2, long_ago, &policy()).await;
    assert!(
        matches!(&outcome, Outcome::GiveUp { error } if error.contains("gave up after 1day")),
        "{outcome:?}"
    );
}
