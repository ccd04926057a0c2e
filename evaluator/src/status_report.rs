//! In a cluster: writes each rule's live alert state into its AlertRule's status, so
//! `kubectl get alertrules` shows FIRING. Server-side apply under its own field manager owns
//! only `state`, `firingGroups` and `pendingGroups`; the operator's conditions stay its own.
//! The evaluator's ServiceAccount may only `get`/`patch` `alertrules/status` in its namespace.

use crate::alerting::Alerting;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use model::resources::{AlertRule, AlertState};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FIELD_MANAGER: &str = "customersignal-evaluator";

/// The status fields of one rule.
pub fn rule_status(firing: u32, pending: u32) -> Value {
    let state = if firing > 0 {
        AlertState::Firing
    } else if pending > 0 {
        AlertState::Pending
    } else {
        AlertState::Inactive
    };
    json!({"state": state, "firingGroups": firing, "pendingGroups": pending})
}

/// What was last reported successfully, per (tenant, rule).
pub type Reported = HashMap<(String, String), Value>;

/// Patches the status of every rule whose counts changed since the last successful report.
/// A failed patch (rule deleted, API unreachable) is logged and retried on the next pass.
pub async fn report_once(
    client: &Client,
    tenant: &str,
    counts: Vec<(String, u32, u32)>,
    reported: &mut Reported,
) {
    let api: Api<AlertRule> = Api::namespaced(client.clone(), tenant);
    for (rule, firing, pending) in counts {
        let status = rule_status(firing, pending);
        let key = (tenant.to_string(), rule.clone());
        if reported.get(&key) == Some(&status) {
            continue;
        }
        let patch = json!({
            "apiVersion": "customersignal.io/v1alpha1",
            "kind": "AlertRule",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api
            .patch_status(&rule, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => {
                reported.insert(key, status);
            }
            Err(error) => {
                tracing::warn!(%error, %tenant, %rule, "cannot report alert state to the AlertRule status")
            }
        }
    }
}

pub async fn report_loop(
    client: Client,
    alertings: Vec<Arc<Alerting>>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut reported = Reported::new();
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        for alerting in &alertings {
            let counts = alerting.phase_counts().await;
            report_once(&client, alerting.tenant(), counts, &mut reported).await;
        }
    }
}

/// Against a FAKE API server (a closure behind `kube::Client`): no Kubernetes API server can run
/// on the machines these tests run on (see ../shared/NOTES.md). It records requests and fails
/// those for rule `gone` with 404, like a deleted AlertRule.
#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    fn fake() -> (Client, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let record = record.clone();
            async move {
                let path = request.uri().path().to_string();
                let content_type = request.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let body = request.into_body().collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap();
                record
                    .lock()
                    .unwrap()
                    .push((path.clone(), content_type, body.clone()));
                let (code, reply) = if path.contains("/alertrules/gone/") {
                    (
                        404,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                    )
                } else {
                    // The stored rule, as the API server answers a status patch.
                    let rule = json!({
                        "apiVersion": "customersignal.io/v1alpha1", "kind": "AlertRule",
                        "metadata": {"name": "r", "namespace": "acme"},
                        "spec": {"aggregation": {"function": "count", "timeWindow": "1h"}, "triggerValue": 1},
                        "status": body["status"],
                    });
                    (200, rule)
                };
                let response = Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        (Client::new(service, "default"), seen)
    }

    #[tokio::test]
    async fn reports_changes_only_and_retries_failures() {
        let (client, seen) = fake();
        let mut reported = Reported::new();
        let counts = vec![
            ("big-spenders".to_string(), 2, 1),
            ("quiet".to_string(), 0, 3),
            ("gone".to_string(), 1, 0),
        ];
        report_once(&client, "acme", counts.clone(), &mut reported).await;
        let first = seen.lock().unwrap().clone();
        assert_eq!(first.len(), 3);
        let (path, content_type, body) = &first[0];
        assert_eq!(
            path,
            "/apis/customersignal.io/v1alpha1/namespaces/acme/alertrules/big-spenders/status"
        );
        assert_eq!(content_type, "application/apply-patch+yaml");
        assert_eq!(
            body["status"],
            json!({"state": "Firing", "firingGroups": 2, "pendingGroups": 1})
        );
        assert_eq!(first[1].2["status"]["state"], "Pending");

        // Nothing changed: only the failed one is tried again.
        report_once(&client, "acme", counts, &mut reported).await;
        let second: Vec<String> = seen.lock().unwrap()[3..]
            .iter()
            .map(|s| s.0.clone())
            .collect();
        assert_eq!(second.len(), 1);
        assert!(second[0].contains("/alertrules/gone/"));

        // The alert resolved: reported as Inactive.
        report_once(
            &client,
            "acme",
            vec![("big-spenders".into(), 0, 0)],
            &mut reported,
        )
        .await;
        let last = seen.lock().unwrap().last().unwrap().2.clone();
        assert_eq!(
            last["status"],
            json!({"state": "Inactive", "firingGroups": 0, "pendingGroups": 0})
        );
    }
}
