//! Leader election over a Lease, so two operator replicas never reconcile at once: a standby
//! waits; a leader that loses the Lease stops at once (its pod restarts as a standby).

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::future::Future;
use tokio::sync::watch;

pub struct Leadership {
    pub leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

pub async fn campaign(
    client: Client,
    namespace: &str,
    lease: &str,
    identity: &str,
) -> anyhow::Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, lease)
        .with_namespace(namespace)
        .with_identity(identity)
        .build()
        .await?;
    let (leading, task) = manager.watch().await;
    Ok(Leadership { leading, task })
}

impl Leadership {
    /// Resolves true once this replica leads, false if `stop` comes first.
    pub async fn acquired(&mut self, stop: impl Future<Output = ()>) -> bool {
        tokio::select! {
            led = self.leading.wait_for(|leading| *leading) => led.is_ok(),
            () = stop => false,
        }
    }

    /// Resolves when the Lease is lost.
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }

    /// Hands the Lease back so a standby takes over without waiting for it to expire.
    pub async fn release(self) {
        drop(self.leading);
        match self.task.await {
            Ok(Ok(manager)) => {
                if let Err(error) = manager.release().await {
                    tracing::warn!(%error, "cannot release the Lease; it expires by itself");
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "lease manager stopped with an error"),
            Err(error) => tracing::warn!(%error, "lease manager task failed"),
        }
    }
}
