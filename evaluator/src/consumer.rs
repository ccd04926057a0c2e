//! One durable JetStream consumer per Source, writing events to ClickHouse in batches.
//!
//! Delivery is at-least-once: messages are acked only after their batch committed. While
//! ClickHouse is down the batch is retried with backoff and its messages kept in progress
//! (so JetStream does not redeliver them meanwhile); no new messages are pulled, which bounds
//! memory to one batch. A message that cannot be stored (undecodable) is retried up to
//! `max_deliver` times, then moved to the dead-letter stream with its error, and never blocks
//! the Source. Redelivered duplicates collapse in ClickHouse (see `store::schema`).

use crate::alerting::Alerting;
use crate::store::catalog::CatalogBatch;
use crate::store::privacy::truncate_event_ip;
use crate::store::rows::BatchRows;
use crate::store::write_batch;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, Message, consumer::pull};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::StreamExt;
use model::event::{Event, wire};
use model::subject::events_subject;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Consumer settings shared by every Source.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub stream: String,
    pub batch_rows: usize,
    pub batch_interval: Duration,
    pub ack_wait: Duration,
    pub max_deliver: i64,
    pub truncate_ip: bool,
}

pub use model::subject::durable_name;

/// The dead-letter subject of a Source's poison messages.
pub fn dead_letter_subject(tenant: &str, source: &str) -> String {
    format!("deadletter.{}", events_subject(tenant, source))
}

#[derive(Clone)]
pub struct SourceConsumer {
    pub tenant: String,
    pub source: String,
    pub jetstream: jetstream::Context,
    pub clickhouse: clickhouse::Client,
    pub settings: ConsumerSettings,
    /// Cleared while ClickHouse writes fail, for `/readyz`.
    pub store_healthy: Arc<AtomicBool>,
    /// Rule evaluation for this Source, when it has rules.
    pub alerting: Option<Arc<Alerting>>,
}

impl SourceConsumer {
    /// Consumes until `shutdown` turns true, then flushes and acks what it holds.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut stream = self.jetstream.get_stream(&self.settings.stream).await?;
        let name = durable_name(&self.tenant, &self.source);
        let deliver_policy = resume_in_order(&mut stream, &name).await?;
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy,
                durable_name: Some(name.clone()),
                filter_subject: events_subject(&self.tenant, &self.source),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: self.settings.ack_wait,
                // Unlimited: an event that can be stored is retried until it is. Only messages
                // that cannot be stored are dead-lettered, after `max_deliver` tries (reject).
                max_deliver: -1,
                // Room for the three batches in flight (see `run`), so pulling never waits on acks.
                max_ack_pending: (self.settings.batch_rows * 4).max(1000) as i64,
                ..Default::default()
            })
            .await?;
        tracing::info!(tenant = %self.tenant, source = %self.source, consumer = %name, "consuming");
        let lag = tokio::spawn(report_lag(
            consumer.clone(),
            self.tenant.clone(),
            self.source.clone(),
        ));
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.settings.batch_rows.min(10_000))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        // Pulling and writing overlap: this task gathers the next batch while a writer task
        // stores the previous one. The channel holds one batch, so at most three batches
        // (gathering, queued, writing) are ever in memory.
        let (batches, mut to_write) = tokio::sync::mpsc::channel::<Vec<Message>>(1);
        let writer = {
            let this = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut evaluated = Evaluated::default();
                while let Some(mut batch) = to_write.recv().await {
                    this.commit(&mut batch, &mut evaluated, &mut shutdown).await;
                }
            })
        };
        let mut messages = messages.ready_chunks(1000);
        let mut batch: Vec<Message> = Vec::with_capacity(self.settings.batch_rows);
        let mut ticker = tokio::time::interval(self.settings.batch_interval);
        let result = loop {
            let flush = tokio::select! {
                biased;
                _ = shutdown.changed() => break Ok(()),
                _ = ticker.tick() => !batch.is_empty(),
                next = messages.next() => match next {
                    Some(chunk) => {
                        for message in chunk {
                            match message {
                                Ok(message) => batch.push(message),
                                Err(error) => tracing::warn!(%error, "pull from JetStream failed; retrying"),
                            }
                        }
                        batch.len() >= self.settings.batch_rows
                    }
                    None => break Err(anyhow::anyhow!("the message stream of consumer {name} ended")),
                },
            };
            if flush {
                let full =
                    std::mem::replace(&mut batch, Vec::with_capacity(self.settings.batch_rows));
                if batches.send(full).await.is_err() {
                    break Err(anyhow::anyhow!("the writer of consumer {name} stopped"));
                }
            }
        };
        // Drain: store and ack what was pulled, so a clean stop causes no redelivery.
        if !batch.is_empty() {
            let _ = batches.send(batch).await;
        }
        drop(batches);
        let _ = writer.await;
        lag.abort();
        result
    }

    /// Stores the batch (retrying until it succeeds or shutdown), evaluates the events not
    /// evaluated before, then acks it.
    async fn commit(
        &self,
        batch: &mut Vec<Message>,
        evaluated: &mut Evaluated,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut rows = BatchRows::default();
        let mut catalog = CatalogBatch::default();
        let mut stored = Vec::with_capacity(batch.len());
        let mut decoded = Vec::with_capacity(batch.len());
        for message in batch.drain(..) {
            match decode(&message) {
                Ok((mut event, seq))
                    if event.tenant == self.tenant && event.source == self.source =>
                {
                    if self.settings.truncate_ip {
                        truncate_event_ip(&mut event);
                    }
                    rows.add(&event, seq);
                    if let Some(row) = rows.events.last() {
                        catalog.add(&event, row);
                    }
                    // A redelivered copy (its ack was lost, or it outlived `ack_wait` while
                    // its batch was being recorded) is stored again, harmlessly, but must not
                    // count twice in the rules' windows.
                    if self.alerting.is_some() && evaluated.insert(seq) {
                        decoded.push((event, seq));
                    }
                    stored.push(message);
                }
                Ok((event, _)) => {
                    let error = format!(
                        "event of {}/{} on the subject of {}/{}",
                        event.tenant, event.source, self.tenant, self.source
                    );
                    self.reject(message, &error).await;
                }
                Err(error) => self.reject(message, &error).await,
            }
        }
        if stored.is_empty() {
            return;
        }
        let catalog = catalog.into_rows();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            match write_batch(&self.clickhouse, &rows, &catalog).await {
                Ok(()) => break,
                Err(error) => {
                    self.store_healthy.store(false, Ordering::Relaxed);
                    metrics::counter!("evaluator_store_errors_total", "tenant" => self.tenant.clone(), "source" => self.source.clone()).increment(1);
                    tracing::warn!(%error, rows = rows.events.len(), "ClickHouse write failed; retrying, nothing is acked");
                    // Keep the held messages from being redelivered while we wait.
                    for message in &stored {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    if *shutdown.borrow() {
                        // Leave them unacked: JetStream redelivers them to the next run.
                        tracing::warn!("stopping with an unstored batch; it will be redelivered");
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.store_healthy.store(true, Ordering::Relaxed);
        // Evaluate after the events are stored (a rebuild after a crash replays them) and
        // before they are acked.
        if let Some(alerting) = &self.alerting
            && let Err(error) = alerting.observe(&decoded).await
        {
            tracing::error!(%error, "recording alert transitions failed");
        }
        for message in &stored {
            if let Err(error) = message.ack().await {
                tracing::warn!(%error, "ack failed; the event will be redelivered and de-duplicated");
            }
        }
        metrics::counter!("evaluator_events_stored_total", "tenant" => self.tenant.clone(), "source" => self.source.clone())
            .increment(stored.len() as u64);
    }

    /// A message that cannot be stored: retried with a delay, dead-lettered on its last try.
    async fn reject(&self, message: Message, error: &str) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        if delivered < self.settings.max_deliver {
            tracing::warn!(error, delivered, "message not storable; will retry");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "CS-Error",
            error.chars().take(1000).collect::<String>().as_str(),
        );
        headers.insert("CS-Original-Subject", message.subject.as_str());
        if let Ok(info) = message.info() {
            headers.insert(
                "CS-Stream-Sequence",
                info.stream_sequence.to_string().as_str(),
            );
        }
        headers.insert("CS-Deliveries", delivered.to_string().as_str());
        let subject = dead_letter_subject(&self.tenant, &self.source);
        match self
            .jetstream
            .publish_with_headers(subject, headers, message.payload.clone())
            .await
        {
            Ok(ack) => match ack.await {
                Ok(_) => {
                    let _ = message.ack_with(AckKind::Term).await;
                    metrics::counter!("evaluator_dead_letters_total", "tenant" => self.tenant.clone(), "source" => self.source.clone()).increment(1);
                    tracing::error!(error, delivered, "message moved to the dead-letter stream");
                }
                Err(e) => {
                    tracing::error!(%e, "dead-letter publish not acked; the message will be redelivered")
                }
            },
            Err(e) => {
                tracing::error!(%e, "dead-letter publish failed; the message will be redelivered")
            }
        }
    }
}

/// Stream sequences this process has already evaluated, as disjoint inclusive ranges keyed
/// by their start. Sequences arrive almost in order, so this stays a handful of ranges: a gap
/// lasts only until the redelivery of a message lost in transit fills it.
#[derive(Debug, Default)]
struct Evaluated(std::collections::BTreeMap<u64, u64>);

impl Evaluated {
    /// Records `seq`; false if it was already recorded.
    fn insert(&mut self, seq: u64) -> bool {
        let before = self.0.range(..=seq).next_back().map(|(s, e)| (*s, *e));
        if before.is_some_and(|(_, end)| seq <= end) {
            return false;
        }
        let start = match before {
            Some((start, end)) if end + 1 == seq => start,
            _ => seq,
        };
        let end = match seq.checked_add(1).and_then(|next| self.0.remove(&next)) {
            Some(end) => end,
            None => seq,
        };
        self.0.insert(start, end);
        true
    }
}

fn decode(message: &Message) -> Result<(Event, u64), String> {
    let seq = message
        .info()
        .map_err(|e| format!("not a JetStream message: {e}"))?
        .stream_sequence;
    let event = wire::decode(&message.payload).map_err(|e| e.to_string())?;
    Ok((event, seq))
}

/// Consumer lag (messages not yet delivered) as a metric, every 10 s.
async fn report_lag(
    consumer: jetstream::consumer::Consumer<pull::Config>,
    tenant: String,
    source: String,
) {
    loop {
        if let Ok(info) = consumer.get_info().await {
            metrics::gauge!("evaluator_consumer_pending", "tenant" => tenant.clone(), "source" => source.clone())
                .set(info.num_pending as f64);
            metrics::gauge!("evaluator_consumer_ack_pending", "tenant" => tenant.clone(), "source" => source.clone())
                .set(info.num_ack_pending as f64);
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Messages a crashed evaluator held unacked would come back only after `ack_wait`, behind
/// newer ones: a `group` call could then count after the tracks it qualifies. So when the
/// durable consumer has messages pending at start (nobody else consumes a Source: one
/// evaluator per Source), it is recreated to deliver again from its ack floor, in stream
/// order. Events above the floor that were already acked are stored again, harmlessly
/// (collapsing copies), and not counted twice (the rebuild's cut-over).
async fn resume_in_order(
    stream: &mut jetstream::stream::Stream,
    name: &str,
) -> anyhow::Result<jetstream::consumer::DeliverPolicy> {
    let Ok(info) = stream.consumer_info(name).await else {
        return Ok(jetstream::consumer::DeliverPolicy::All);
    };
    if info.num_ack_pending == 0 {
        return Ok(info.config.deliver_policy);
    }
    let start_sequence = info.ack_floor.stream_sequence + 1;
    tracing::warn!(
        consumer = name,
        pending = info.num_ack_pending,
        start_sequence,
        "messages were pending at start (a crash): redelivering in stream order from the ack floor"
    );
    stream.delete_consumer(name).await?;
    Ok(jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence })
}

#[cfg(test)]
mod tests {
    use super::Evaluated;

    #[test]
    fn evaluated_sequences_are_recognised_once_and_kept_as_few_ranges() {
        let mut evaluated = Evaluated::default();
        assert!((1..=100).all(|seq| evaluated.insert(seq)));
        // 101..=110 lost in transit; later messages go on.
        assert!((111..=200).all(|seq| evaluated.insert(seq)));
        assert_eq!(evaluated.0.len(), 2);
        // Redeliveries: those evaluated are refused, the lost ones accepted once.
        assert!(!evaluated.insert(50));
        assert!(!evaluated.insert(111));
        assert!(!evaluated.insert(200));
        assert!((101..=110).rev().all(|seq| evaluated.insert(seq)));
        assert!(!evaluated.insert(105));
        assert_eq!(evaluated.0.iter().collect::<Vec<_>>(), [(&1, &200)]);
        assert!(evaluated.insert(u64::MAX) && !evaluated.insert(u64::MAX));
    }
}
