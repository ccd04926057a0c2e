//! The reconcilers: Sources into evaluators (with a finalizer), AlertRules into status. Both are
//! thin: they read what the desired objects need, apply what [`crate::desired`] renders, and
//! report the outcome as conditions and Events.

pub mod rule;
pub mod source;
mod write_keys;

use crate::conditions::{Outcome, stamp};
use crate::config::EvaluatorSettings;
use crate::desired::{FIELD_MANAGER, SecretValues};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use model::secrets::SecretKeyRef;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub settings: EvaluatorSettings,
    /// The operator's namespace, home of the write-keys Secret.
    pub namespace: String,
    pub write_keys_secret: String,
    pub recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Render(String),
    #[error("deleting the JetStream consumer {consumer}: {message}")]
    Consumer { consumer: String, message: String },
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

/// Server-side apply with the operator's field manager; returns the object as stored.
async fn apply<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object
        .namespace()
        .ok_or_else(|| Error::NoNamespace(object.name_any()))?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api
        .patch(&object.name_any(), &params, &Patch::Apply(object))
        .await?)
}

/// Reads the referenced keys of Secrets in a namespace; a missing Secret or key is just absent.
async fn read_secrets(
    client: &Client,
    namespace: &str,
    references: &[SecretKeyRef],
) -> Result<SecretValues, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets: BTreeMap<&str, Option<Secret>> = BTreeMap::new();
    let mut values = SecretValues::new();
    for reference in references {
        // Each Secret is read once, however many of its keys are referenced.
        if !secrets.contains_key(reference.name.as_str()) {
            let secret = api.get_opt(&reference.name).await?;
            secrets.insert(&reference.name, secret);
        }
        let value = secrets[reference.name.as_str()]
            .as_ref()
            .and_then(|s| s.data.as_ref()?.get(&reference.key))
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok());
        if let Some(value) = value {
            values.insert((reference.name.clone(), reference.key.clone()), value);
        }
    }
    Ok(values)
}

/// Writes an object's conditions and `observedGeneration` (a merge patch of the status: the
/// evaluator's live fields in an AlertRule status are left alone).
async fn patch_conditions<K>(
    client: &Client,
    object: &K,
    previous: &[Condition],
    outcomes: &[Outcome],
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let generation = object.meta().generation;
    let conditions = stamp(outcomes, previous, generation, Time(Timestamp::now()));
    let patch = json!({"status": {"observedGeneration": generation, "conditions": conditions}});
    let namespace = object.namespace().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), &namespace)
        .patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Publishes a Kubernetes Event about an object; failing to publish is logged, never fatal.
async fn publish_event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, reason, "cannot publish a Kubernetes Event");
    }
}

/// Counts and times a reconcile per kind and tenant, and logs its outcome.
pub async fn measured<F>(kind: &'static str, tenant: String, work: F) -> Result<Action, Error>
where
    F: Future<Output = Result<Action, Error>>,
{
    let started = Instant::now();
    let result = work.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("customersignal_operator_reconciliations_total",
        "kind" => kind, "tenant" => tenant.clone(), "result" => outcome)
    .increment(1);
    metrics::histogram!("customersignal_operator_reconcile_duration_seconds",
        "kind" => kind, "tenant" => tenant)
    .record(started.elapsed().as_secs_f64());
    result
}

/// After an error: log it and retry with a short delay (the controller also backs off).
pub fn retry_after_error<K: Resource>(object: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        name = %object.meta().name.as_deref().unwrap_or_default(),
        namespace = %object.meta().namespace.as_deref().unwrap_or_default(),
        %error,
        "reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(15))
}
