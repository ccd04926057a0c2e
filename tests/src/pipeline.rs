//! The whole pipeline as processes, for end-to-end tests: the real `ingest` and `evaluator`
//! binaries in standalone mode, on a private nats-server (so a test may restart it) and a
//! ClickHouse database of the test's own, with Sources, AlertRules, write keys and webhook
//! signing secrets written to a temporary directory exactly as a user would lay them out.

use crate::binaries::binaries;
use crate::dataset::rule_yaml;
use crate::nats_server::{NatsServer, free_port};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One tenant (namespace) with one Source, its write key, and one rule whose webhook goes to
/// the test's receiver at `/hooks/<tenant>`.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant: String,
    pub source: String,
    pub rule: String,
    pub threshold: u64,
    pub write_key: String,
    /// `whsec_…` signing secret of the rule's webhook.
    pub secret: String,
}

impl Tenant {
    pub fn new(tenant: &str, source: &str, rule: &str, threshold: u64) -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        let key = base64::engine::general_purpose::STANDARD.encode(random());
        Self {
            tenant: tenant.into(),
            source: source.into(),
            rule: rule.into(),
            threshold,
            write_key: format!("wk_{}", random()),
            secret: format!("whsec_{key}"),
        }
    }

    /// The receiver hook (path segment) of this tenant's rule.
    pub fn hook(&self) -> &str {
        &self.tenant
    }
}

/// A running binary whose output goes to a log file (shown when a test fails).
struct Process {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    port: u16,
}

impl Process {
    fn new(name: &'static str, dir: &Path) -> Self {
        Self {
            name,
            child: None,
            log: dir.join(format!("{name}.log")),
            port: 0,
        }
    }

    fn spawn(&mut self, binary: &Path, args: &[String]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(binary)
            .args(args)
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        self.child = Some(child);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait until the process is gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

pub struct Pipeline {
    pub nats: NatsServer,
    pub clickhouse: clickhouse::Client,
    pub clickhouse_url: String,
    pub database: String,
    pub tenants: Vec<Tenant>,
    dir: PathBuf,
    ingest: Process,
    evaluator: Process,
}

impl Pipeline {
    /// Writes the configuration and starts the evaluator and ingest; returns once both are
    /// ready. Webhooks go to `http://127.0.0.1:<receiver_port>/hooks/<tenant>`.
    pub async fn start(tenants: Vec<Tenant>, receiver_port: u16, clickhouse_url: String) -> Self {
        let dir = std::env::temp_dir().join(crate::unique("cs-e2e"));
        let mut sources = Vec::new();
        let mut rules = Vec::new();
        for t in &tenants {
            let keys = format!("{}-write-keys", t.source);
            write_secret(&dir, &t.tenant, &keys, "primary", &t.write_key);
            write_secret(&dir, &t.tenant, "hook-secret", "signing-secret", &t.secret);
            sources.push(format!(
                "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {{name: {}, namespace: {}}}
spec:
  writeKeys: [{{name: {keys}, key: primary}}]
  retentionDays: 3650
",
                t.source, t.tenant
            ));
            let url = format!("http://127.0.0.1:{receiver_port}/hooks/{}", t.hook());
            rules.push(rule_yaml(&t.tenant, &t.source, &t.rule, t.threshold, &url));
        }
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        std::fs::write(dir.join("config/sources.yaml"), sources.join("---\n")).expect("sources");
        std::fs::write(dir.join("config/rules.yaml"), rules.join("---\n")).expect("rules");
        let database = crate::unique("cs_e2e");
        let clickhouse = clickhouse::Client::default()
            .with_url(&clickhouse_url)
            .with_validation(false)
            .with_database(&database);
        let mut pipeline = Self {
            nats: NatsServer::start(),
            clickhouse,
            clickhouse_url,
            database,
            tenants,
            ingest: Process::new("ingest", &dir),
            evaluator: Process::new("evaluator", &dir),
            dir,
        };
        pipeline.start_evaluator().await;
        pipeline.start_ingest().await;
        pipeline
    }

    pub fn ingest_url(&self) -> String {
        self.ingest.url()
    }

    pub fn evaluator_url(&self) -> String {
        self.evaluator.url()
    }

    async fn start_ingest(&mut self) {
        self.ingest.port = free_port();
        let args = [
            "--listen",
            &format!("127.0.0.1:{}", self.ingest.port),
            "--nats-url",
            &self.nats.url(),
            "--sources",
            &self.dir.join("config/sources.yaml").display().to_string(),
            "--secrets-dir",
            &self.dir.join("secrets").display().to_string(),
            // The default (10 GiB) is refused by a nats-server whose JetStream store limit
            // (75 % of the free disk by default) is smaller, as on a nearly full test machine.
            "--stream-max-bytes",
            "1073741824",
        ]
        .map(String::from);
        self.ingest.spawn(&binaries().ingest, &args);
        self.wait_ready("ingest", &self.ingest.url()).await;
    }

    /// Starts the evaluator (again, after a kill) and waits until it is ready.
    pub async fn start_evaluator(&mut self) {
        self.evaluator.port = free_port();
        let args = [
            "run",
            "--listen",
            &format!("127.0.0.1:{}", self.evaluator.port),
            "--config",
            &self.dir.join("config").display().to_string(),
            "--secrets-dir",
            &self.dir.join("secrets").display().to_string(),
            "--nats-url",
            &self.nats.url(),
            "--clickhouse-url",
            &self.clickhouse_url,
            "--clickhouse-database",
            &self.database,
            "--batch-interval",
            "100ms",
            // Redelivery after a crash comes this soon; long enough that no batch outlives it.
            "--ack-wait",
            "5s",
        ]
        .map(String::from);
        self.evaluator.spawn(&binaries().evaluator, &args);
        self.wait_ready("evaluator", &self.evaluator.url()).await;
    }

    /// Events of a Source the evaluator has received and not acked.
    pub async fn unacked_events(&self, tenant: &str, source: &str) -> anyhow::Result<u64> {
        let js = async_nats::jetstream::new(async_nats::connect(self.nats.url()).await?);
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream("EVENTS")
            .await?
            .get_consumer(&format!("evaluator-{tenant}-{source}"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(consumer.info().await?.num_ack_pending as u64)
    }

    /// SIGKILLs the evaluator: no drain, no acks, no goodbye.
    pub fn kill_evaluator(&mut self) {
        self.evaluator.kill();
    }

    async fn wait_ready(&self, name: &str, url: &str) {
        let http = crate::http();
        let ready = crate::eventually(Duration::from_secs(60), || async {
            http.get(format!("{url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "{name} did not become ready:\n{}", self.logs());
    }

    /// The last lines of both services' logs, for failure messages.
    pub fn logs(&self) -> String {
        [&self.ingest, &self.evaluator]
            .iter()
            .map(|p| format!("--- {} ({})\n{}", p.name, p.log.display(), p.tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops both services with SIGTERM and drops the test's database and files.
    pub async fn finish(mut self) {
        for process in [&mut self.ingest, &mut self.evaluator] {
            if let Some(mut child) = process.child.take()
                && crate::terminate(&mut child).await.is_none()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = self
            .clickhouse
            .query(&format!("DROP DATABASE IF EXISTS {}", self.database))
            .execute()
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "pipeline files kept in {}; database {}\n{}",
                self.dir.display(),
                self.database,
                self.logs()
            );
        }
        self.ingest.kill();
        self.evaluator.kill();
    }
}

fn write_secret(dir: &Path, namespace: &str, name: &str, key: &str, value: &str) {
    let path = dir.join("secrets").join(namespace).join(name);
    std::fs::create_dir_all(&path).expect("secret dir");
    std::fs::write(path.join(key), value).expect("secret");
}
