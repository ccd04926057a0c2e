//! CustomerSignal ingest: the HTTP front door. Authenticates write keys, validates and
//! normalizes events (model::intake), and publishes them to JetStream, answering 2xx only
//! after JetStream acknowledged every event of the request.

pub mod api;
pub mod config;
pub mod error;
pub mod keys;
pub mod publisher;

use anyhow::Context;
use config::Config;
use keys::{KeySource, Keys};
use model::secrets::StandaloneSecrets;
use std::future::Future;
use tokio::net::TcpListener;

/// Runs ingest on `listener` until `shutdown` resolves, then drains in-flight requests and
/// flushes NATS.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let key_source = match (&config.keys_file, &config.sources) {
        (Some(file), _) => KeySource::File(file.clone()),
        (None, Some(path)) => KeySource::Sources {
            path: path.clone(),
            secrets: StandaloneSecrets::new(config.secrets_dir.clone()),
        },
        (None, None) => anyhow::bail!(
            "no write keys configured: pass --keys-file (cluster) or --sources (standalone)"
        ),
    };
    let ring = key_source
        .load()
        .map_err(anyhow::Error::msg)
        .context("loading write keys")?;
    tracing::info!(keys = ring.len(), "write keys loaded");
    let keys = Keys::new(ring);
    let reloader = keys.spawn_reloader(key_source, config.reload_interval);

    let publisher = publisher::Publisher::connect(&config)
        .await
        .context("configuring the NATS client")?;
    let stream_keeper = publisher.spawn_stream_keeper();

    let state = api::AppState::new(
        keys,
        publisher.clone(),
        config.limits(),
        config.rate_limit_rps,
        config.rate_limit_burst,
    );
    tracing::info!(listen = %listener.local_addr()?, nats = %config.nats_url, "ingest listening");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    publisher.flush().await;
    reloader.abort();
    stream_keeper.abort();
    tracing::info!("ingest stopped");
    Ok(())
}
