//! CustomerSignal evaluator: consumes each Source's events from JetStream into ClickHouse
//! (with the event catalog, traits, retention and erasure), and validates rule YAML.

pub mod admin;
pub mod alerting;
pub mod backtest;
pub mod check;
pub mod config;
pub mod consumer;
pub mod engine;
pub mod status_report;
pub mod store;
pub mod traits;
pub mod webhook;

use alerting::Alerting;
use anyhow::Context;
use async_nats::jetstream::{self, stream};
use backon::{BackoffBuilder, ExponentialBuilder};
use config::RunConfig;
use consumer::{ConsumerSettings, SourceConsumer};
use model::secrets::StandaloneSecrets;
use store::Connect;
use webhook::delivery::RetryPolicy;
use webhook::outbox;

/// Stream of decided notifications awaiting delivery.
pub const OUTBOX_STREAM: &str = "OUTBOX";
use model::standalone::{Catalog, LoadedSource};
use model::subject::EVENTS_PREFIX;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Runs the evaluator until `shutdown` resolves; then every consumer stores and acks what it
/// holds before this returns.
pub async fn run(
    config: RunConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let catalog = Catalog::load(&config.config);
    for error in &catalog.errors {
        tracing::error!(%error, "invalid document skipped");
    }
    anyhow::ensure!(
        !catalog.sources.is_empty(),
        "no valid Source in {}",
        config.config.display()
    );

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });

    // Health and admin answer from the start; readiness waits for NATS and ClickHouse.
    let nats = async_nats::ConnectOptions::new()
        .name("customersignal-evaluator")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| Duration::from_millis(100 * attempts.min(20) as u64))
        .connect(&config.nats_url)
        .await?;
    let store_healthy = Arc::new(AtomicBool::new(false));
    let ready = {
        let (nats, store_healthy) = (nats.clone(), store_healthy.clone());
        Arc::new(move || {
            nats.connection_state() == async_nats::connection::State::Connected
                && store_healthy.load(Ordering::Relaxed)
        })
    };
    let server = {
        let app = admin::router(
            config.clickhouse.query_client(),
            config.admin_token.clone(),
            ready,
        );
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        })
    };

    let clickhouse = connect_store(&config, stopped.clone()).await?;
    let js = jetstream::new(nats.clone());
    ensure_streams(&js, &config).await?;
    store_healthy.store(true, Ordering::Relaxed);

    let settings = ConsumerSettings {
        stream: config.stream.clone(),
        batch_rows: config.batch_rows.max(1),
        batch_interval: config.batch_interval,
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver.max(1),
        truncate_ip: config.truncate_ip,
    };
    outbox::ensure_stream(&js, OUTBOX_STREAM).await?;
    let delivery = outbox::Worker::new(
        js.clone(),
        OUTBOX_STREAM.into(),
        webhook::delivery::client()?,
        StandaloneSecrets::new(config.secrets_dir.clone()),
        RetryPolicy::default(),
        4,
    );
    let delivery = tokio::spawn(delivery.run(stopped.clone()));

    let mut consumers = Vec::new();
    let mut tickers = Vec::new();
    let mut alertings = Vec::new();
    for source in &catalog.sources {
        let rules: Vec<_> = catalog
            .rules_for(&source.tenant, &source.name)
            .map(|r| r.compiled.clone())
            .collect();
        let mut alerting = Alerting::start(
            js.clone(),
            clickhouse.clone(),
            &source.tenant,
            &source.name,
            rules,
            config.trait_cache_capacity,
        )
        .await?;
        alerting.report_health_to(store_healthy.clone());
        let alerting = Arc::new(alerting);
        tickers.push(tokio::spawn(tick_loop(alerting.clone(), stopped.clone())));
        alertings.push((
            (source.tenant.clone(), source.name.clone()),
            alerting.clone(),
        ));
        let alerting = Some(alerting);
        let consumer = SourceConsumer {
            alerting,
            tenant: source.tenant.clone(),
            source: source.name.clone(),
            jetstream: js.clone(),
            clickhouse: clickhouse.clone(),
            settings: settings.clone(),
            store_healthy: store_healthy.clone(),
        };
        consumers.push(tokio::spawn(supervise(consumer, stopped.clone())));
    }
    if config.report_status {
        match kube::Client::try_default().await {
            Ok(client) => tickers.push(tokio::spawn(status_report::report_loop(
                client,
                alertings.iter().map(|(_, a)| a.clone()).collect(),
                config.report_interval,
                stopped.clone(),
            ))),
            // Alerts still fire; only `kubectl get alertrules` misses the live state.
            Err(error) => {
                tracing::error!(%error, "cannot reach the Kubernetes API; alert state is not reported")
            }
        }
    }
    tickers.push(tokio::spawn(reload_loop(
        config.config.clone(),
        alertings,
        config.reload_interval,
    )));
    let retention = tokio::spawn(retention_loop(
        clickhouse.clone(),
        catalog.sources.clone(),
        config.retention_interval,
    ));

    for consumer in consumers {
        consumer.await?;
    }
    for ticker in tickers {
        ticker.abort();
    }
    if let Err(error) = delivery.await? {
        tracing::warn!(%error, "webhook delivery stopped with an error");
    }
    retention.abort();
    nats.flush().await.context("flushing acks to NATS")?;
    server.await??;
    tracing::info!("evaluator stopped");
    Ok(())
}

/// Connects to ClickHouse and migrates the schema, retrying until it works or shutdown.
async fn connect_store(
    config: &RunConfig,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<clickhouse::Client> {
    let mut backoff = ExponentialBuilder::default()
        .with_max_delay(Duration::from_secs(10))
        .without_max_times()
        .build();
    loop {
        let attempt = async {
            let client = config.clickhouse.connect().await?;
            store::schema::migrate(&client).await?;
            anyhow::Ok(client)
        };
        match attempt.await {
            Ok(client) => return Ok(client),
            Err(error) => {
                tracing::warn!(%error, url = %config.clickhouse.clickhouse_url, "ClickHouse not usable yet; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(10))) => {}
            _ = stopped.wait_for(|s| *s) => anyhow::bail!("stopped before ClickHouse was reachable"),
        }
    }
}

/// The events stream normally exists (ingest creates it); create it with defaults if the
/// evaluator starts first, and the dead-letter stream.
async fn ensure_streams(js: &jetstream::Context, config: &RunConfig) -> anyhow::Result<()> {
    let events = stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{EVENTS_PREFIX}.>")],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let dead_letters = stream::Config {
        name: config.dead_letter_stream.clone(),
        subjects: vec!["deadletter.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    for config in [events, dead_letters] {
        let name = config.name.clone();
        let mut attempts = 0;
        loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(_) => break,
                Err(error) if attempts < 120 => {
                    attempts += 1;
                    tracing::warn!(%error, stream = %name, "stream not available yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error).with_context(|| format!("stream {name}")),
            }
        }
    }
    Ok(())
}

/// Restarts a Source's consumer after an error, until shutdown.
async fn supervise(consumer: SourceConsumer, stopped: watch::Receiver<bool>) {
    loop {
        match consumer.run(stopped.clone()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, tenant = %consumer.tenant, source = %consumer.source, "consumer failed; restarting");
                if *stopped.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Re-reads the rule configuration every `interval` and applies changed rules without a
/// restart. (New or removed Sources need one: they change the consumers.)
async fn reload_loop(
    path: std::path::PathBuf,
    alertings: Vec<((String, String), Arc<Alerting>)>,
    interval: Duration,
) {
    let mut last_errors = Vec::new();
    loop {
        tokio::time::sleep(interval).await;
        let load = path.clone();
        let Ok(catalog) = tokio::task::spawn_blocking(move || Catalog::load(&load)).await else {
            continue;
        };
        let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
        if errors != last_errors {
            for error in &errors {
                tracing::error!(%error, "invalid document in the rule configuration; it is skipped");
            }
            last_errors = errors;
        }
        for ((tenant, source), alerting) in &alertings {
            let rules = catalog
                .rules_for(tenant, source)
                .map(|r| r.compiled.clone())
                .collect();
            match alerting.reload(rules).await {
                Ok(true) => tracing::info!(tenant, source, "rules reloaded"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, tenant, source, "rule reload failed"),
            }
        }
    }
}

/// Evaluates every group once a second, so windows that slide down resolve.
async fn tick_loop(alerting: Arc<Alerting>, stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    while !*stopped.borrow() {
        ticker.tick().await;
        if let Err(error) = alerting.tick().await {
            tracing::warn!(%error, "alert evaluation tick failed");
        }
    }
}

async fn retention_loop(
    clickhouse: clickhouse::Client,
    sources: Vec<LoadedSource>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        for source in &sources {
            let now = chrono::Utc::now();
            if let Err(error) = store::retention::apply(
                &clickhouse,
                &source.tenant,
                &source.name,
                source.spec.retention_days,
                now,
            )
            .await
            {
                tracing::warn!(%error, tenant = %source.tenant, source = %source.name, "retention run failed");
            }
        }
    }
}
