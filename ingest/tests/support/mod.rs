//! Runs ingest in-process against a private, real nats-server, and reads back what it
//! published.

#![allow(dead_code)]

use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use ingest::config::Config;
use model::event::{Event, wire};
use model::keyring::{KeyEntry, KeyFile, key_digest_hex};
use model::resources::TrackingPlan;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tests::eventually;
use tests::nats_server::NatsServer;

pub const ACME_KEY: &str = "wk_acme_web";
pub const GLOBEX_KEY: &str = "wk_globex_mobile";
pub const STRICT_KEY: &str = "wk_acme_strict";
pub const REPORTING_KEY: &str = "wk_acme_reporting";

pub struct TestIngest {
    pub nats: NatsServer,
    pub addr: SocketAddr,
    pub keys_file: PathBuf,
    pub http: reqwest::Client,
    service: tests::Running,
}

pub fn key_entry(tenant: &str, source: &str, key: &str, plan: Option<TrackingPlan>) -> KeyEntry {
    KeyEntry {
        tenant: tenant.into(),
        source: source.into(),
        sha256: key_digest_hex(key),
        tracking_plan: plan,
    }
}

fn plan(mode: &str) -> TrackingPlan {
    serde_json::from_value(serde_json::json!({
        "mode": mode,
        "events": [{"name": "checkout_completed", "properties": {"value": "number"}, "required": ["value"]}]
    }))
    .expect("plan")
}

pub fn default_keys() -> KeyFile {
    KeyFile {
        keys: vec![
            key_entry("acme", "web", ACME_KEY, None),
            key_entry("globex", "mobile", GLOBEX_KEY, None),
            key_entry("acme", "strict", STRICT_KEY, Some(plan("enforced"))),
            key_entry("acme", "reporting", REPORTING_KEY, Some(plan("reportOnly"))),
        ],
    }
}

impl TestIngest {
    pub async fn start(extra_args: &[&str]) -> Self {
        let nats = NatsServer::start();
        let keys_file = std::env::temp_dir().join(format!("{}.json", tests::unique("cs-keys")));
        write_keys(&keys_file, &default_keys());
        let mut args = vec![
            "ingest".to_string(),
            "--nats-url".into(),
            nats.url(),
            "--keys-file".into(),
            keys_file.display().to_string(),
            "--reload-interval".into(),
            "100ms".into(),
        ];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let config = Config::parse_from(args);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = tests::Running::spawn(|shutdown| ingest::serve(config, listener, shutdown));
        let ingest = Self {
            nats,
            addr,
            keys_file,
            http: tests::http(),
            service,
        };
        assert!(ingest.wait_ready(true).await, "ingest did not become ready");
        ingest
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn wait_ready(&self, ready: bool) -> bool {
        eventually(Duration::from_secs(20), || async {
            let status = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            (status.ok() == Some(200)) == ready
        })
        .await
    }

    /// Every event in the stream, with its subject and `Nats-Msg-Id`.
    pub async fn published(&self) -> Vec<(String, String, Event)> {
        let client = async_nats::connect(self.nats.url()).await.expect("nats");
        let js = jetstream::new(client);
        let mut stream = js.get_stream("EVENTS").await.expect("stream");
        let count = stream.info().await.expect("info").state.messages as usize;
        if count == 0 {
            return Vec::new();
        }
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut batch = consumer
            .batch()
            .max_messages(count)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("batch");
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.expect("message");
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((
                message.subject.to_string(),
                id,
                wire::decode(&message.payload).expect("wire"),
            ));
        }
        out
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.service.stop().await
    }
}

impl Drop for TestIngest {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.keys_file);
    }
}

/// Writes a key file atomically (as a Secret volume update is: a rename), so the reloader
/// never reads half a file.
pub fn write_keys(path: &PathBuf, keys: &KeyFile) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, serde_json::to_vec(keys).expect("json")).expect("write keys");
    std::fs::rename(&temp, path).expect("rename keys");
}

pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}
