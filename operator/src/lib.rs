//! The CustomerSignal operator: reconciles `Source` and `AlertRule` resources into evaluator
//! Deployments, their config and credentials, and ingest's write keys.

pub mod conditions;
pub mod config;
pub mod controller;
pub mod desired;
pub mod leader;
pub mod reconcile;
pub mod render;

use anyhow::Context as _;
use config::RunConfig;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use reconcile::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// A shutdown signal every task can hold a copy of.
pub type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Serves health and metrics, wins the Lease, then reconciles until `shutdown` (draining
/// in-flight reconciles) or until the Lease is lost (an error: the pod restarts as standby).
pub async fn run(
    config: RunConfig,
    client: Client,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let ready = Arc::new(AtomicBool::new(false));
    let app = model::service::health_routes::<()>(Arc::new({
        let ready = ready.clone();
        move || ready.load(Ordering::Relaxed)
    }));
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.clone())
            .into_future(),
    );

    let identity = config
        .pod_name
        .clone()
        .or_else(|| hostname().ok())
        .unwrap_or_else(|| "customersignal-operator".into());
    let mut leadership = leader::campaign(
        client.clone(),
        &config.namespace,
        &config.lease_name,
        &identity,
    )
    .await
    .context("cannot take part in leader election")?;
    // A standby is healthy and ready: it reached the API and waits its turn.
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%identity, lease = %config.lease_name, "waiting to lead");
    if !leadership.acquired(shutdown.clone()).await {
        leadership.release().await;
        let _ = server.await;
        return Ok(());
    }
    tracing::info!(%identity, "leading: reconciling Sources and AlertRules");
    metrics::gauge!("customersignal_operator_leader").set(1.0);

    let reporter = Reporter {
        controller: "customersignal-operator".into(),
        instance: Some(identity),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: config.evaluator.clone(),
        namespace: config.namespace.clone(),
        write_keys_secret: config.write_keys_secret.clone(),
        recorder: Recorder::new(client, reporter),
    });
    let scopes: Vec<Option<String>> = if config.watch_namespaces.is_empty() {
        vec![None]
    } else {
        config.watch_namespaces.iter().cloned().map(Some).collect()
    };
    let controllers = futures::future::join_all(
        scopes
            .into_iter()
            .map(|ns| controller::run(ctx.clone(), ns, shutdown.clone())),
    );
    let outcome = tokio::select! {
        _ = controllers => Ok(()),
        () = leadership.lost() => Err(anyhow::anyhow!("lost the Lease {}; stopping", config.lease_name)),
    };
    metrics::gauge!("customersignal_operator_leader").set(0.0);
    leadership.release().await;
    let _ = server.await;
    outcome
}

fn hostname() -> std::io::Result<String> {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string())
}

/// SIGTERM or Ctrl-C, shareable.
pub fn shutdown_signal() -> Shutdown {
    model::service::shutdown_signal().boxed().shared()
}
