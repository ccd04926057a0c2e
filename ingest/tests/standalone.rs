//! Ingest as a process in standalone mode: write keys from Source YAML and a secrets
//! directory, SIGTERM handling, and arbitrary request bodies. Real nats-server.

mod support;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tests::eventually;
use tests::nats_server::{NatsServer, free_port};

const SOURCES: &str = "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {name: web, namespace: acme}
spec:
  writeKeys: [{name: web-keys, key: primary}]
  trackingPlan:
    mode: enforced
    allowUnplannedEvents: true
    events: [{name: checkout_completed, properties: {value: number}}]
";

struct Process {
    child: Child,
    port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real `ingest` binary with keys from Source YAML and a secrets directory.
fn spawn_ingest(nats: &NatsServer, dir: &Path) -> Process {
    std::fs::create_dir_all(dir.join("secrets/acme/web-keys")).unwrap();
    std::fs::write(dir.join("secrets/acme/web-keys/primary"), "wk_from_file\n").unwrap();
    std::fs::write(dir.join("sources.yaml"), SOURCES).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nats-url",
            &nats.url(),
        ])
        .arg("--sources")
        .arg(dir.join("sources.yaml"))
        .arg("--secrets-dir")
        .arg(dir.join("secrets"))
        .args(["--log-json", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ingest binary");
    Process { child, port }
}

#[tokio::test]
async fn standalone_keys_plans_and_sigterm() {
    let nats = NatsServer::start();
    let dir = std::env::temp_dir().join(tests::unique("cs-ingest-standalone"));
    let mut process = spawn_ingest(&nats, &dir);
    let http = tests::http();
    let base = format!("http://127.0.0.1:{}", process.port);
    let ready = eventually(Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "ingest did not become ready");

    let send = |body: serde_json::Value| {
        http.post(format!("{base}/v1/events"))
            .bearer_auth("wk_from_file")
            .json(&body)
            .send()
    };
    let ok = send(
        json!({"events": [{"event_type": "checkout_completed", "user_id": "u", "properties": {"value": 5}}]}),
    );
    assert_eq!(ok.await.unwrap().status(), StatusCode::OK);
    let violation = send(
        json!({"events": [{"event_type": "checkout_completed", "user_id": "u", "properties": {"value": "5"}}]}),
    );
    assert_eq!(violation.await.unwrap().status(), StatusCode::BAD_REQUEST);

    let exited = tests::terminate(&mut process.child).await;
    let status = exited.expect("ingest exits after SIGTERM");
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "[\\[\\]{}\",:a-z0-9 ]{0,200}".prop_map(String::into_bytes),
        Just(
            br#"{"events":[{"event_type":"x","user_id":"u","properties":{"a":[[[[[]]]]]}}]}"#
                .to_vec()
        ),
    ]
}

/// Arbitrary bodies on every endpoint get a 2xx or a 4xx with a JSON error, never a 5xx or
/// a dropped connection. A bounded property test (48 cases) against one running ingest.
#[tokio::test(flavor = "multi_thread")]
async fn arbitrary_bodies_get_a_clear_answer() {
    let ingest = support::TestIngest::start(&[]).await;
    let paths = prop::sample::select(vec![
        "/v1/events",
        "/v1/track",
        "/v1/identify",
        "/v1/group",
        "/v1/page",
        "/v1/screen",
        "/v1/alias",
        "/v1/batch",
    ]);
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&(body_strategy(), paths), |(body, path)| {
            runtime.block_on(async {
                let response = ingest
                    .http
                    .post(ingest.url(path))
                    .header("Authorization", support::basic(support::ACME_KEY))
                    .body(body)
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status();
                prop_assert!(status.is_success() || status.is_client_error(), "{status}");
                if status.is_client_error() {
                    let error: serde_json::Value =
                        response.json().await.expect("a JSON error body");
                    prop_assert!(error["error"]["code"].is_string());
                }
                Ok(())
            })
        })
    });
    result.unwrap();
}
