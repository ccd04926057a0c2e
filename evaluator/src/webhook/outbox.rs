//! The durable outbox: a decided notification is published to stream `OUTBOX` (message id =
//! its transition id, so deciding twice after a crash stores it once), and a delivery worker
//! posts it. Retries wait in JetStream (a `nak` with the retry delay), so a crash between
//! attempts neither loses nor repeats a delivery's schedule; give-ups go to the dead-letter
//! stream with the last error.
//!
//! Each target (scheme, host, port) gets at most `per_target` attempts at once; a message for
//! a busy target goes back to the stream for a second instead of occupying a worker slot, so
//! one slow receiver cannot stall the others.

use super::delivery::{Outcome, RetryPolicy, Target, attempt};
use super::signing::SigningSecret;
use async_nats::HeaderMap;
use async_nats::jetstream::{
    self, AckKind, Message, consumer::pull, message::PublishMessage, stream,
};
use futures::StreamExt;
use model::secrets::{SecretKeyRef, StandaloneSecrets};
use model::subject::token;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};

const URL: &str = "CS-Webhook-Url";
const SECRET_NAMESPACE: &str = "CS-Secret-Namespace";
const SECRET_NAME: &str = "CS-Secret-Name";
const SECRET_KEY: &str = "CS-Secret-Key";

/// A notification ready to deliver.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Transition id: the `Nats-Msg-Id` and the `webhook-id` receivers see.
    pub id: String,
    pub tenant: String,
    pub rule: String,
    pub url: String,
    pub secret: Option<SecretKeyRef>,
    /// The JSON payload, exactly as it will be posted.
    pub body: Vec<u8>,
}

pub fn outbox_subject(tenant: &str, rule: &str) -> String {
    format!("outbox.{}.{}", token(tenant), token(rule))
}

/// Creates the outbox stream if missing.
pub async fn ensure_stream(js: &jetstream::Context, name: &str) -> anyhow::Result<()> {
    js.get_or_create_stream(stream::Config {
        name: name.into(),
        subjects: vec!["outbox.>".into()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(3600),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Stores a notification durably; returns once JetStream acked it.
pub async fn enqueue(js: &jetstream::Context, entry: &Entry) -> anyhow::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert(URL, entry.url.as_str());
    if let Some(secret) = &entry.secret {
        headers.insert(SECRET_NAMESPACE, entry.tenant.as_str());
        headers.insert(SECRET_NAME, secret.name.as_str());
        headers.insert(SECRET_KEY, secret.key.as_str());
    }
    let message = PublishMessage::build()
        .payload(entry.body.clone().into())
        .headers(headers)
        .message_id(&entry.id);
    js.send_publish(outbox_subject(&entry.tenant, &entry.rule), message)
        .await?
        .await?;
    Ok(())
}

#[derive(Clone)]
pub struct Worker {
    pub jetstream: jetstream::Context,
    pub stream: String,
    pub http: reqwest::Client,
    pub secrets: StandaloneSecrets,
    pub policy: RetryPolicy,
    pub per_target: usize,
    slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Worker {
    pub fn new(
        jetstream: jetstream::Context,
        stream: String,
        http: reqwest::Client,
        secrets: StandaloneSecrets,
        policy: RetryPolicy,
        per_target: usize,
    ) -> Self {
        Self {
            jetstream,
            stream,
            http,
            secrets,
            policy,
            per_target: per_target.max(1),
            slots: Arc::default(),
        }
    }

    /// Delivers until `shutdown` turns true; attempts under way finish first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let stream = self.jetstream.get_stream(&self.stream).await?;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("webhook-delivery".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: self.policy.timeout + Duration::from_secs(10),
                max_deliver: -1,
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let mut running = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        let this = self.clone();
                        running.spawn(async move { this.handle(message).await });
                    }
                    Some(Err(error)) => tracing::warn!(%error, "pull from the outbox failed; retrying"),
                    None => anyhow::bail!("the outbox message stream ended"),
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }

    fn slot(&self, url: &str) -> Arc<Semaphore> {
        let target = reqwest::Url::parse(url)
            .map(|u| {
                format!(
                    "{}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_else(|_| url.to_string());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(target)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_target)))
            .clone()
    }

    async fn handle(&self, message: Message) {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.to_string())
        };
        let (id, delivered, published) = match message.info() {
            Ok(info) => {
                let published =
                    UNIX_EPOCH + Duration::from_secs(info.published.unix_timestamp().max(0) as u64);
                (
                    header("Nats-Msg-Id")
                        .unwrap_or_else(|| format!("seq-{}", info.stream_sequence)),
                    info.delivered.max(1) as u32,
                    published,
                )
            }
            Err(error) => {
                // Not a JetStream delivery: nothing to schedule retries with.
                tracing::error!(%error, "outbox message without delivery info; dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let Some(url) = header(URL) else {
            return self
                .give_up(&message, "outbox message without a webhook URL")
                .await;
        };
        let secret = match (
            header(SECRET_NAMESPACE),
            header(SECRET_NAME),
            header(SECRET_KEY),
        ) {
            (Some(namespace), Some(name), Some(key)) => {
                let reference = SecretKeyRef { name, key };
                match self
                    .secrets
                    .resolve(&namespace, &reference)
                    .map_err(|e| e.to_string())
                    .and_then(|s| SigningSecret::parse(&s).map_err(|e| e.to_string()))
                {
                    Ok(secret) => Some(secret),
                    Err(error) => {
                        // A missing secret may appear (a Secret created late): retry, don't sign unsigned.
                        tracing::warn!(%error, id, "webhook signing secret unavailable; retrying");
                        let _ = message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                            .await;
                        return;
                    }
                }
            }
            _ => None,
        };
        let slot = self.slot(&url);
        let Ok(_permit) = slot.try_acquire() else {
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        };
        let target = Target { url, secret };
        match attempt(
            &self.http,
            &target,
            &id,
            &message.payload,
            delivered,
            published,
            &self.policy,
        )
        .await
        {
            Outcome::Delivered { status } => {
                let _ = message.ack().await;
                metrics::counter!("evaluator_webhooks_delivered_total").increment(1);
                tracing::info!(id, status, attempt = delivered, "webhook delivered");
            }
            Outcome::Retry { after, error } => {
                metrics::counter!("evaluator_webhook_retries_total").increment(1);
                tracing::warn!(id, error, attempt = delivered, retry_in = ?after, "webhook delivery failed; will retry");
                let _ = message.ack_with(AckKind::Nak(Some(after))).await;
            }
            Outcome::GiveUp { error } => self.give_up(&message, &error).await,
        }
    }

    /// Moves a notification to the dead-letter stream with the last error.
    async fn give_up(&self, message: &Message, error: &str) {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert(
            "CS-Error",
            error.chars().take(1000).collect::<String>().as_str(),
        );
        headers.insert("CS-Original-Subject", message.subject.as_str());
        let subject = format!("deadletter.{}", message.subject);
        let stored = match self
            .jetstream
            .publish_with_headers(subject, headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if stored {
            let _ = message.ack_with(AckKind::Term).await;
            metrics::counter!("evaluator_webhook_dead_letters_total").increment(1);
            tracing::error!(error, "webhook given up; moved to the dead-letter stream");
        } else {
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}
