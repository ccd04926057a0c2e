//! Shared helpers for the end-to-end tests. They talk to the real servers that
//! `scripts/test.sh` starts; `CS_NATS_URL` and `CS_CLICKHOUSE_URL` point elsewhere.

pub mod binaries;
pub mod clickhouse_server;
pub mod dataset;
pub mod nats_server;
pub mod pipeline;
pub mod receiver;
pub mod scenario;
pub mod segment;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns true or `timeout` passes; returns whether it
/// became true. For waiting on effects, never for asserting speed.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn nats_url() -> String {
    std::env::var("CS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn clickhouse_url() -> String {
    std::env::var("CS_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A short unique suffix, so tests sharing one server never see each other's streams,
/// consumers or databases.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Connects to NATS, failing with a hint when nothing listens (the servers are started by
/// `scripts/test.sh`, not by `cargo test`).
pub async fn nats() -> anyhow::Result<async_nats::Client> {
    let url = nats_url();
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&url);
    connect.await.map_err(|e| {
        anyhow::anyhow!("cannot reach NATS at {url} ({e}); run the tests through scripts/test.sh")
    })
}

/// A ClickHouse client in a fresh database of its own. ClickHouse 18.16 lacks what the
/// crate's schema validation needs, so validation is off and row types must match exactly.
pub async fn clickhouse_database(prefix: &str) -> anyhow::Result<(clickhouse::Client, String)> {
    let url = clickhouse_url();
    let database = unique(prefix);
    let client = clickhouse::Client::default()
        .with_url(&url)
        .with_validation(false);
    client
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach ClickHouse at {url} ({e}); run the tests through scripts/test.sh"
            )
        })?;
    Ok((client.with_database(&database), database))
}

/// Publishes events to JetStream exactly as ingest does (wire encoding, subject, and
/// `Nats-Msg-Id`), awaiting every ack.
pub async fn publish_events(
    js: &async_nats::jetstream::Context,
    events: &[model::event::Event],
) -> anyhow::Result<()> {
    use async_nats::jetstream::message::PublishMessage;
    // Windows of 1000: the JetStream context stops sending at 5000 unacked publishes.
    for window in events.chunks(1000) {
        let mut acks = Vec::with_capacity(window.len());
        for event in window {
            let message = PublishMessage::build()
                .payload(model::event::wire::encode(event).into())
                .message_id(model::subject::message_dedup_id(
                    &event.tenant,
                    &event.source,
                    &event.message_id,
                ));
            let subject = model::subject::events_subject(&event.tenant, &event.source);
            acks.push(js.send_publish(subject, message).await?.into_future());
        }
        for ack in futures::future::join_all(acks).await {
            ack?;
        }
    }
    Ok(())
}

/// A `track` event of `tenant/source` with these properties, at `at_ms`.
pub fn track_event(
    tenant: &str,
    source: &str,
    message_id: &str,
    user: &str,
    name: &str,
    at_ms: i64,
    properties: serde_json::Value,
) -> model::event::Event {
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
    model::event::Event {
        tenant: tenant.into(),
        source: source.into(),
        message_id: message_id.into(),
        kind: model::event::EventKind::Track,
        name: Some(name.into()),
        user_id: Some(user.into()),
        anonymous_id: None,
        group_id: None,
        session_id: None,
        previous_id: None,
        event_time: at,
        received_at: at,
        properties: properties.as_object().cloned().unwrap_or_default(),
        traits: Default::default(),
        context: Default::default(),
    }
}

/// A service running in-process on a tokio task until [`stop`](Self::stop) resolves its
/// shutdown future (then it drains, as on SIGTERM); dropped without stopping, it is aborted.
pub struct Running {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Running {
    pub fn spawn<Fut>(start: impl FnOnce(Shutdown) -> Fut) -> Self
    where
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(start(Box::pin(async {
            let _ = signal.await;
        })));
        Self {
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An HTTP client for tests. The workspace builds reqwest with rustls and no default crypto
/// provider (the evaluator installs ring for its webhooks), so install ring here as well.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Sends SIGTERM to a child process and waits (up to 10 s) for it to exit.
pub async fn terminate(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    if !sent.is_ok_and(|s| s.success()) {
        return None;
    }
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
