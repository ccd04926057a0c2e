//! Runs the evaluator in-process against a private nats-server and a database of its own on
//! the real ClickHouse, and reads back what it stored.

#![allow(dead_code)]

use async_nats::jetstream;
use clap::Parser;
use evaluator::config::RunConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tests::nats_server::NatsServer;

pub const SOURCES: &str = "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {name: web, namespace: acme}
spec: {retentionDays: 3650}
---
apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {name: mobile, namespace: globex}
spec: {}
";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    run: RunConfig,
}

pub struct TestEvaluator {
    pub nats: NatsServer,
    pub clickhouse: clickhouse::Client,
    pub database: String,
    pub clickhouse_url: String,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    service: tests::Running,
}

pub fn config_dir() -> PathBuf {
    config_dir_with(SOURCES)
}

/// A config directory holding `yaml` (Sources and AlertRules).
pub fn config_dir_with(yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(tests::unique("cs-evaluator"));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.yaml"), yaml).expect("config");
    dir
}

/// The `evaluator run` arguments for these servers.
pub fn run_args(dir: &Path, nats: &str, clickhouse_url: &str, database: &str) -> Vec<String> {
    [
        "--config",
        &dir.display().to_string(),
        "--nats-url",
        nats,
        "--clickhouse-url",
        clickhouse_url,
        "--clickhouse-database",
        database,
        "--batch-interval",
        "100ms",
        "--ack-wait",
        "2s",
        "--max-deliver",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl TestEvaluator {
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with(NatsServer::start(), tests::clickhouse_url(), extra).await
    }

    pub async fn start_with(nats: NatsServer, clickhouse_url: String, extra: &[&str]) -> Self {
        Self::start_full(
            nats,
            clickhouse_url,
            SOURCES,
            tests::unique("cs_eval"),
            extra,
        )
        .await
    }

    /// Starts with this configuration YAML, on this database (reuse one to test restarts).
    pub async fn start_full(
        nats: NatsServer,
        clickhouse_url: String,
        yaml: &str,
        database: String,
        extra: &[&str],
    ) -> Self {
        model::service::init_tracing(
            false,
            &std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        let dir = config_dir_with(yaml);
        let mut args = vec!["evaluator".to_string()];
        args.extend(run_args(&dir, &nats.url(), &clickhouse_url, &database));
        args.extend(extra.iter().map(|s| s.to_string()));
        let config = Args::parse_from(args).run;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = tests::Running::spawn(|shutdown| evaluator::run(config, listener, shutdown));
        let clickhouse = clickhouse::Client::default()
            .with_url(&clickhouse_url)
            .with_validation(false)
            .with_database(&database);
        let evaluator = Self {
            nats,
            clickhouse,
            database,
            clickhouse_url,
            dir,
            addr,
            service,
        };
        let http = tests::http();
        let url = format!("http://{addr}/readyz");
        let ready = tests::eventually(Duration::from_secs(30), || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "evaluator did not become ready");
        evaluator
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(self.nats.url()).await.expect("nats"))
    }

    /// Events stored for a tenant, counting each once (FINAL collapses redelivered copies).
    pub async fn stored(&self, tenant: &str) -> u64 {
        self.clickhouse
            .query("SELECT count() FROM events FINAL WHERE tenant = ?")
            .bind(tenant)
            .fetch_one()
            .await
            .unwrap_or(0)
    }

    pub async fn wait_stored(&self, tenant: &str, expected: u64) -> bool {
        tests::eventually(Duration::from_secs(60), || async {
            self.stored(tenant).await == expected
        })
        .await
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.service.stop().await
    }

    /// Stops, handing back the NATS server (and its data) for a restart.
    pub async fn stop_keep_nats(mut self) -> (NatsServer, String) {
        let _ = self.service.stop().await;
        let nats = std::mem::replace(&mut self.nats, NatsServer::placeholder());
        (nats, self.database.clone())
    }
}

impl Drop for TestEvaluator {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
