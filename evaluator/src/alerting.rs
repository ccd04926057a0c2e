//! Alerting for one Source: feeds stored events to the rule engine, and records what it
//! decides: every transition in ClickHouse `alert_events`, each group's lifecycle state in the
//! JetStream KV bucket `ALERT_STATE` (updated with revision checks), and each notification in
//! the durable webhook outbox.
//!
//! On start the state is rebuilt: lifecycles from the KV bucket, windows by replaying the
//! Source's stored events of the longest window through the same engine (no notifications).
//! The highest stream sequence replayed is the cut-over: consumed events at or below it were
//! already counted and are not counted again.

use crate::engine::{Engine, Transition};
use crate::store::{history, insert_all};
use crate::webhook::outbox::{self, Entry};
use anyhow::Context;
use async_nats::jetstream::{self, kv};
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use clickhouse::Row;
use futures::StreamExt;
use model::event::Event;
use model::rule::{AlertState, CompiledRule, Notification, Phase};
use model::secrets::SecretKeyRef;
use model::subject::token;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

pub const STATE_BUCKET: &str = "ALERT_STATE";

/// Stored events replayed per profile lookup on a rebuild.
const REPLAY_CHUNK: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct AlertEventRow {
    pub tenant: String,
    /// Absent in states saved before migration 2.
    #[serde(default)]
    pub source: String,
    pub rule: String,
    pub group_key: String,
    pub transition_id: String,
    pub state: String,
    pub previous_state: String,
    pub value: f64,
    pub threshold: f64,
    pub comparator: String,
    #[serde(with = "clickhouse::serde::chrono::datetime")]
    pub at: DateTime<Utc>,
    pub at_ms: u64,
    pub payload: String,
}

#[derive(Serialize, Deserialize)]
struct StoredState {
    rule: String,
    group: String,
    state: AlertState,
    /// A decided transition not yet known to be in the outbox and `alert_events`: written
    /// with the state before either, cleared after both, finished on the next rebuild if the
    /// evaluator died in between. So a crash between deciding and delivering loses nothing,
    /// and the outbox's de-duplication by transition id sends nothing twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unfinished: Option<Unfinished>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unfinished {
    /// `row.value` is 0 here: JSON has no NaN, which the row stores for "no value".
    row: AlertEventRow,
    value: Option<f64>,
    /// Where the notification goes (none: recorded only).
    webhook: Option<(String, Option<SecretKeyRef>)>,
}

impl Unfinished {
    fn entry(&self) -> Option<Entry> {
        let (url, secret) = self.webhook.clone()?;
        Some(Entry {
            id: self.row.transition_id.clone(),
            tenant: self.row.tenant.clone(),
            rule: self.row.rule.clone(),
            url,
            secret,
            body: self.row.payload.clone().into_bytes(),
        })
    }
}

pub struct Alerting {
    tenant: String,
    source: String,
    /// The engine and its cut-over change together (on reload), under one lock.
    inner: tokio::sync::Mutex<Inner>,
    states: kv::Store,
    revisions: tokio::sync::Mutex<HashMap<String, u64>>,
    jetstream: jetstream::Context,
    clickhouse: clickhouse::Client,
    /// Profiles the engine keeps in memory, per kind (`crate::traits`).
    trait_capacity: usize,
    /// Cleared while recording transitions fails (ClickHouse or NATS down), for `/readyz`.
    healthy: Arc<AtomicBool>,
}

struct Inner {
    engine: Engine,
    /// Events at or below this stream sequence are already counted (replayed).
    cutover: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Inactive => "inactive",
        Phase::Pending => "pending",
        Phase::Firing => "firing",
    }
}

impl Alerting {
    pub async fn start(
        jetstream: jetstream::Context,
        clickhouse: clickhouse::Client,
        tenant: &str,
        source: &str,
        rules: Vec<CompiledRule>,
        trait_capacity: usize,
    ) -> anyhow::Result<Self> {
        let states = match jetstream.get_key_value(STATE_BUCKET).await {
            Ok(store) => store,
            Err(_) => jetstream
                .create_key_value(kv::Config {
                    bucket: STATE_BUCKET.into(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .context("creating the alert state bucket")?,
        };
        let this = Self {
            tenant: tenant.into(),
            source: source.into(),
            inner: tokio::sync::Mutex::new(Inner {
                engine: Engine::new(Vec::new()),
                cutover: 0,
            }),
            states,
            revisions: tokio::sync::Mutex::default(),
            jetstream,
            clickhouse,
            trait_capacity,
            healthy: Arc::new(AtomicBool::new(true)),
        };
        let rebuilt = this.rebuild(rules).await?;
        *this.inner.lock().await = rebuilt;
        Ok(this)
    }

    /// A fresh engine for `rules`: lifecycles from the KV bucket, windows by replay.
    async fn rebuild(&self, rules: Vec<CompiledRule>) -> anyhow::Result<Inner> {
        let mut engine = Engine::with_trait_capacity(rules.clone(), self.trait_capacity);
        let prefix = format!("{}.", token(&self.tenant));
        let mut keys = self.states.keys().await?;
        let mut interrupted = Vec::new();
        let mut revisions = self.revisions.lock().await;
        while let Some(key) = keys.next().await {
            let key = key?;
            if !key.starts_with(&prefix) {
                continue;
            }
            if let Some(entry) = self.states.entry(&key).await?
                && let Ok(stored) = serde_json::from_slice::<StoredState>(&entry.value)
            {
                engine.restore(&stored.rule, &stored.group, stored.state);
                revisions.insert(key, entry.revision);
                if let Some(unfinished) = stored.unfinished {
                    interrupted.push((stored.rule, stored.group, stored.state, unfinished));
                }
            }
        }
        drop(revisions);
        if !interrupted.is_empty() {
            tracing::info!(
                count = interrupted.len(),
                "finishing transitions interrupted by a crash"
            );
            self.finish(&interrupted).await?;
        }
        let cutover = replay(
            &self.clickhouse,
            &self.tenant,
            &self.source,
            &rules,
            &mut engine,
        )
        .await?;
        tracing::info!(tenant = %self.tenant, source = %self.source, rules = rules.len(), cutover, "alerting state rebuilt");
        Ok(Inner { engine, cutover })
    }

    /// Applies a changed rule set without a restart: rules removed or changed first resolve
    /// what fires under their old definition, then the state is rebuilt for the new set.
    /// Returns whether anything changed.
    pub async fn reload(&self, rules: Vec<CompiledRule>) -> anyhow::Result<bool> {
        let mut inner = self.inner.lock().await;
        if inner.engine.rules() == rules.as_slice() {
            return Ok(false);
        }
        let old = inner.engine.rules().to_vec();
        let now = now_ms();
        let retired: Vec<Transition> = old
            .iter()
            .filter(|r| !rules.contains(r))
            .flat_map(|r| inner.engine.retire(&r.name, now))
            .collect();
        self.record(&old, retired).await?;
        *inner = self.rebuild(rules).await?;
        Ok(true)
    }

    /// Counts stored events (those past the cut-over) and records the transitions.
    pub async fn observe(&self, events: &[(Event, u64)]) -> anyhow::Result<()> {
        let mut inner = self.inner.lock().await;
        let cutover = inner.cutover;
        let fresh: Vec<&Event> = events
            .iter()
            .filter(|(_, seq)| *seq > cutover)
            .map(|(event, _)| event)
            .collect();
        inner
            .engine
            .load_profiles(&self.clickhouse, &self.tenant, &fresh)
            .await;
        let now = now_ms();
        let transitions: Vec<Transition> = fresh
            .iter()
            .flat_map(|event| inner.engine.observe(event, now, true))
            .collect();
        self.record(inner.engine.rules(), transitions).await
    }

    /// Reports recording failures into a shared readiness flag (the evaluator's `/readyz`).
    pub fn report_health_to(&mut self, flag: Arc<AtomicBool>) {
        self.healthy = flag;
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Per rule: (name, firing groups, pending groups), for the AlertRule status.
    pub async fn phase_counts(&self) -> Vec<(String, u32, u32)> {
        self.inner.lock().await.engine.phase_counts()
    }

    /// Re-evaluates every group (windows slide even without events).
    pub async fn tick(&self) -> anyhow::Result<()> {
        let mut inner = self.inner.lock().await;
        let transitions = inner.engine.tick(now_ms());
        self.record(inner.engine.rules(), transitions).await
    }

    /// Records transitions, retrying with backoff: every part is idempotent (outbox
    /// de-duplication by transition id, `alert_events` collapsing on it, KV revisions), so a
    /// retry after a partial failure neither loses nor doubles a notification. Gives up after
    /// about two minutes so a long outage cannot block shutdown forever.
    async fn record(
        &self,
        rules: &[CompiledRule],
        transitions: Vec<Transition>,
    ) -> anyhow::Result<()> {
        if transitions.is_empty() {
            return Ok(());
        }
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(30)
            .build();
        loop {
            match self.record_once(rules, &transitions).await {
                Ok(()) => {
                    self.healthy.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => match backoff.next() {
                    Some(delay) => {
                        self.healthy.store(false, Ordering::Relaxed);
                        tracing::warn!(%error, retry_in = ?delay, "recording alert transitions failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error.context("recording alert transitions: gave up")),
                },
            }
        }
    }

    /// Three idempotent steps: the new states with their unfinished notifications (the
    /// decision, durable first), then the outbox and `alert_events`, then the states alone.
    async fn record_once(
        &self,
        rules: &[CompiledRule],
        transitions: &[Transition],
    ) -> anyhow::Result<()> {
        let mut decided = Vec::with_capacity(transitions.len());
        for t in transitions {
            let Some(rule) = rules.iter().find(|r| r.name == t.rule) else {
                continue;
            };
            let id = transition_id(&self.tenant, t);
            let payload = payload(&self.tenant, &self.source, rule, t, &id);
            let body = serde_json::to_vec(&payload)?;
            let webhook = match (&rule.webhook, t.change.notification) {
                (Some(webhook), Some(_)) => Some((webhook.url.clone(), webhook.secret_ref.clone())),
                _ => None,
            };
            let row = AlertEventRow {
                tenant: self.tenant.clone(),
                source: self.source.clone(),
                rule: rule.name.clone(),
                group_key: t.group.clone(),
                transition_id: id,
                state: t
                    .change
                    .notification
                    .map_or(phase_name(t.change.phase), notification_name)
                    .into(),
                previous_state: phase_name(t.change.previous).into(),
                value: t.value.unwrap_or(0.0),
                threshold: rule.threshold,
                comparator: rule.comparator.symbol().into(),
                at: DateTime::from_timestamp_millis(t.at_ms as i64).unwrap_or_default(),
                at_ms: t.at_ms,
                payload: String::from_utf8_lossy(&body).into_owned(),
            };
            let unfinished = Unfinished {
                row,
                value: t.value,
                webhook,
            };
            self.save_state(&t.rule, &t.group, t.state, Some(&unfinished))
                .await?;
            decided.push((t.rule.clone(), t.group.clone(), t.state, unfinished));
        }
        self.finish(&decided).await?;
        for (rule, _, _, unfinished) in &decided {
            metrics::counter!("evaluator_alert_transitions_total", "tenant" => self.tenant.clone(), "rule" => rule.clone(), "state" => unfinished.row.state.clone()).increment(1);
        }
        Ok(())
    }

    /// Puts decided notifications into the outbox and their rows into `alert_events`, then
    /// clears them from the stored states.
    async fn finish(
        &self,
        decided: &[(String, String, AlertState, Unfinished)],
    ) -> anyhow::Result<()> {
        for (_, _, _, unfinished) in decided {
            if let Some(entry) = unfinished.entry() {
                outbox::enqueue(&self.jetstream, &entry).await?;
            }
        }
        let rows: Vec<AlertEventRow> = decided
            .iter()
            .map(|(_, _, _, unfinished)| AlertEventRow {
                value: unfinished.value.unwrap_or(f64::NAN),
                ..unfinished.row.clone()
            })
            .collect();
        insert_all(&self.clickhouse, "alert_events", &rows).await?;
        for (rule, group, state, _) in decided {
            self.save_state(rule, group, *state, None).await?;
        }
        Ok(())
    }

    /// Writes a group's state with a revision check against the last write this process
    /// made. A mismatch after a write whose answer was lost is resolved by re-reading the
    /// revision: one evaluator owns a Source's keys.
    async fn save_state(
        &self,
        rule: &str,
        group: &str,
        state: AlertState,
        unfinished: Option<&Unfinished>,
    ) -> anyhow::Result<()> {
        let key = format!("{}.{}.{}", token(&self.tenant), token(rule), hex(group));
        let value = serde_json::to_vec(&StoredState {
            rule: rule.to_string(),
            group: group.to_string(),
            state,
            unfinished: unfinished.cloned(),
        })?;
        let mut revisions = self.revisions.lock().await;
        let write = |revision: Option<u64>| {
            let value = value.clone();
            let key = key.clone();
            async move {
                match revision {
                    Some(revision) => self
                        .states
                        .update(&key, value.into(), revision)
                        .await
                        .map_err(|e| e.to_string()),
                    None => self
                        .states
                        .create(&key, value.into())
                        .await
                        .map_err(|e| e.to_string()),
                }
            }
        };
        let revision = match write(revisions.get(&key).copied()).await {
            Ok(revision) => revision,
            Err(error) => {
                tracing::warn!(%error, key, "alert state revision moved; re-reading it");
                let current = self.states.entry(&key).await?.map(|e| e.revision);
                write(current)
                    .await
                    .map_err(|e| anyhow::anyhow!("saving alert state {key}: {e}"))?
            }
        };
        revisions.insert(key, revision);
        Ok(())
    }
}

fn notification_name(notification: Notification) -> &'static str {
    match notification {
        Notification::Firing => "firing",
        Notification::Repeat => "repeat",
        Notification::Resolved => "resolved",
    }
}

fn hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stable id of a transition: the same decision made twice (a crash before its ack) gets the
/// same id, which the outbox de-duplicates and receivers see as `webhook-id`.
fn transition_id(tenant: &str, t: &Transition) -> String {
    let moment = match t.change.notification {
        Some(Notification::Repeat) => t.state.last_notified_ms.unwrap_or(t.at_ms),
        _ => t.state.since_ms,
    };
    let kind = t
        .change
        .notification
        .map_or(phase_name(t.change.phase), notification_name);
    format!(
        "trn_{}",
        hex(&format!(
            "{tenant}\0{}\0{}\0{kind}\0{moment}",
            t.rule, t.group
        ))
    )
}

/// The webhook payload (documented in README, "Webhook payload").
fn payload(
    tenant: &str,
    source: &str,
    rule: &CompiledRule,
    t: &Transition,
    id: &str,
) -> serde_json::Value {
    let rfc3339 =
        |ms: u64| DateTime::<Utc>::from_timestamp_millis(ms as i64).map(|d| d.to_rfc3339());
    let window = humantime::format_duration(rule.window).to_string();
    let summary = rule.summary.as_ref().and_then(|template| {
        minijinja::Environment::new()
            .render_str(template, minijinja::context! { rule => rule.name.clone(), group => t.group.clone(), value => t.value, threshold => rule.threshold, labels => rule.labels.clone() })
            .ok()
    });
    let since = now_ms().saturating_sub(rule.window.as_millis() as u64) / 1000;
    serde_json::json!({
        "id": id,
        "tenant": tenant,
        "source": source,
        "rule": rule.name,
        "group": t.group,
        "state": phase_name(t.change.phase),
        "notification": t.change.notification.map(notification_name),
        "value": t.value,
        "threshold": rule.threshold,
        "comparator": rule.comparator.symbol(),
        "function": rule.function.as_str(),
        "window": window,
        "startsAt": if t.change.phase == Phase::Firing { rfc3339(t.state.since_ms) } else { None },
        "endsAt": if t.change.notification == Some(Notification::Resolved) { rfc3339(t.at_ms) } else { None },
        "severity": rule.severity.as_str(),
        "labels": rule.labels,
        "summary": summary,
        "query": format!(
            "SELECT * FROM events FINAL WHERE tenant = '{tenant}' AND source = '{source}' AND event_time >= toDateTime({since}) ORDER BY event_time"
        ),
    })
}

/// Replays the stored events of the longest window (and every identify/group call, for
/// traits) into the engine without notifying. Returns the highest stream sequence seen.
async fn replay(
    clickhouse: &clickhouse::Client,
    tenant: &str,
    source: &str,
    rules: &[CompiledRule],
    engine: &mut Engine,
) -> anyhow::Result<u64> {
    let Some(longest) = rules.iter().map(|r| r.window).max() else {
        return Ok(0);
    };
    let now = now_ms();
    let mut cursor = history::events(
        clickhouse,
        tenant,
        source,
        now.saturating_sub(longest.as_millis() as u64),
        u64::MAX,
    )?;
    let mut cutover = 0;
    let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
    loop {
        let row = cursor.next().await?;
        let done = row.is_none();
        if let Some(row) = row {
            let (event, seq) = row.into_event(tenant, source);
            cutover = cutover.max(seq);
            chunk.push(event);
        }
        if chunk.len() == REPLAY_CHUNK || (done && !chunk.is_empty()) {
            let events: Vec<&Event> = chunk.iter().collect();
            engine.load_profiles(clickhouse, tenant, &events).await;
            for event in events {
                engine.observe(event, now, false);
            }
            chunk.clear();
        }
        if done {
            return Ok(cutover);
        }
    }
}
