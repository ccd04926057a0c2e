//! Publishing events to JetStream: the stream's setup, de-duplication ids, and the rule that
//! a request is answered only after JetStream acked all of its events.

use crate::config::Config;
use async_nats::connection::State;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures::future::join_all;
use model::event::{Event, wire};
use model::subject::{EVENTS_PREFIX, events_subject, message_dedup_id};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event stream is unavailable: {0}")]
    Unavailable(String),
    #[error("too many events are waiting for acknowledgement; retry shortly")]
    Overloaded,
}

#[derive(Clone)]
pub struct Publisher {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: stream::Config,
    stream_ready: Arc<AtomicBool>,
    inflight: Arc<Semaphore>,
    max_inflight: usize,
}

impl Publisher {
    /// Connects without waiting for NATS: ingest starts (not ready) while NATS is down and
    /// becomes ready once it is reachable and the stream exists.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name("customersignal-ingest")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts.min(10) as u64)
            })
            .connect(&config.nats_url)
            .await?;
        // The context pauses sending at `max_ack_inflight` unacked publishes; one request must
        // always fit, or a batch larger than that would wait on its own acks forever.
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .max_ack_inflight(config.max_inflight_events.max(config.max_batch_len).max(1))
            .build(client.clone());
        let max_bytes = if config.stream_max_bytes < 0 {
            -1
        } else {
            config.stream_max_bytes
        };
        let stream = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{EVENTS_PREFIX}.>")],
            storage: stream::StorageType::File,
            max_age: config.stream_max_age,
            max_bytes,
            // A full stream refuses new events (clients get 503 and retry) instead of
            // dropping old ones the evaluator has not stored yet.
            discard: stream::DiscardPolicy::New,
            duplicate_window: config.duplicate_window,
            num_replicas: config.stream_replicas,
            ..Default::default()
        };
        let max_inflight = config.max_inflight_events.max(1);
        Ok(Self {
            client,
            jetstream,
            stream,
            stream_ready: Arc::new(AtomicBool::new(false)),
            inflight: Arc::new(Semaphore::new(max_inflight)),
            max_inflight,
        })
    }

    /// Keeps the stream created (or updated to this config) whenever NATS is reachable:
    /// at start, and again after a failed publish suggests it went missing.
    pub fn spawn_stream_keeper(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if !this.stream_ready.load(Ordering::Relaxed) && this.connected() {
                    match this
                        .jetstream
                        .create_or_update_stream(this.stream.clone())
                        .await
                    {
                        Ok(info) => {
                            tracing::info!(stream = %info.config.name, messages = info.state.messages, "event stream ready");
                            this.stream_ready.store(true, Ordering::Relaxed);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot create or update the event stream yet")
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Ready to accept events: connected and the stream exists.
    pub fn ready(&self) -> bool {
        self.connected() && self.stream_ready.load(Ordering::Relaxed)
    }

    /// Events published and not yet acknowledged.
    pub fn inflight(&self) -> usize {
        self.max_inflight - self.inflight.available_permits()
    }

    /// Publishes every event, then awaits all acks together. `Ok` means JetStream has stored
    /// each event (or already had it: a duplicate message id is success).
    pub async fn publish(&self, tenant: &str, events: &[Event]) -> Result<(), PublishError> {
        if !self.ready() {
            return Err(PublishError::Unavailable("not connected to NATS".into()));
        }
        let permits = u32::try_from(events.len()).map_err(|_| PublishError::Overloaded)?;
        let _permits = self
            .inflight
            .try_acquire_many(permits)
            .map_err(|_| PublishError::Overloaded)?;
        metrics::gauge!("ingest_inflight_events").set(self.inflight() as f64);
        let started = Instant::now();
        let result = self.publish_all(events).await;
        metrics::histogram!("ingest_publish_duration_seconds", "tenant" => tenant.to_string())
            .record(started.elapsed().as_secs_f64());
        drop(_permits);
        metrics::gauge!("ingest_inflight_events").set(self.inflight() as f64);
        if result.is_err() {
            // The stream may be gone (a new NATS server): re-check it.
            self.stream_ready.store(false, Ordering::Relaxed);
        }
        result
    }

    async fn publish_all(&self, events: &[Event]) -> Result<(), PublishError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let message = PublishMessage::build()
                .payload(wire::encode(event).into())
                .message_id(message_dedup_id(
                    &event.tenant,
                    &event.source,
                    &event.message_id,
                ));
            let ack = self
                .jetstream
                .send_publish(events_subject(&event.tenant, &event.source), message)
                .await
                .map_err(|e| PublishError::Unavailable(e.to_string()))?;
            acks.push(ack.into_future());
        }
        for ack in join_all(acks).await {
            ack.map_err(|e| PublishError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// Sends what the client buffered (used on shutdown).
    pub async fn flush(&self) {
        if let Err(error) = self.client.flush().await {
            tracing::warn!(%error, "flushing NATS on shutdown failed");
        }
    }
}
