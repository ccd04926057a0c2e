//! Source → evaluator. Applies the rendered objects, the write-key entry and the Source's
//! status; on deletion a finalizer removes what owner references can't: the write-key entry
//! (in another namespace) and the Source's durable JetStream consumer (outside Kubernetes).

use super::{Context, Error, apply, patch_conditions, publish_event, read_secrets, write_keys};
use crate::conditions::Outcome;
use crate::desired;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, ResourceExt};
use model::resources::{AlertRule, CONDITION_ACCEPTED, CONDITION_READY, Source};
use std::sync::Arc;
use std::time::Duration;

pub const FINALIZER: &str = "customersignal.io/evaluator-cleanup";

pub async fn reconcile(source: Arc<Source>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = source
        .namespace()
        .ok_or_else(|| Error::NoNamespace(source.name_any()))?;
    let api: Api<Source> = Api::namespaced(ctx.client.clone(), &namespace);
    let work = finalizer(&api, FINALIZER, source, |event| async {
        match event {
            Finalizer::Apply(source) => apply_source(&source, &ctx).await,
            Finalizer::Cleanup(source) => cleanup(&source, &ctx).await,
        }
    });
    super::measured("Source", namespace.clone(), async {
        work.await.map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(Box::new(other)),
        })
    })
    .await
}

async fn apply_source(source: &Source, ctx: &Context) -> Result<Action, Error> {
    let namespace = source.namespace().unwrap_or_default();
    let name = source.name_any();
    let rules = Api::<AlertRule>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let selected = desired::select_rules(source, &rules);
    let references = desired::referenced_secrets(source, &selected.valid);
    let secrets = read_secrets(&ctx.client, &namespace, &references).await?;
    let objects = match desired::evaluator_objects(&ctx.settings, source, &selected.valid, &secrets)
    {
        Ok(objects) => objects,
        Err(message) => {
            let outcome = Outcome::failed(CONDITION_ACCEPTED, "RenderFailed", message.clone());
            patch_status(ctx, source, vec![outcome]).await?;
            return Err(Error::Render(message));
        }
    };
    apply(&ctx.client, &objects.service_account).await?;
    apply(&ctx.client, &objects.role).await?;
    apply(&ctx.client, &objects.role_binding).await?;
    apply(&ctx.client, &objects.secret).await?;
    apply(&ctx.client, &objects.config_map).await?;
    let deployment = apply(&ctx.client, &objects.deployment).await?;

    let (key_file, missing_keys) = desired::key_file(source, &secrets);
    write_keys::put(ctx, &namespace, &name, &key_file).await?;
    if !missing_keys.is_empty() {
        publish_event(
            ctx,
            source,
            EventType::Warning,
            "WriteKeyMissing",
            missing_keys.join("; "),
        )
        .await;
    }

    let accepted = Outcome::ok(
        CONDITION_ACCEPTED,
        "Valid",
        format!(
            "{} rule(s) rendered, {} invalid",
            selected.valid.len(),
            selected.invalid.len()
        ),
    );
    let ready = readiness(&deployment, &missing_keys);
    let settled = ready.ok;
    patch_status(ctx, source, vec![accepted, ready]).await?;
    // Owned Deployments wake the controller on change; the periodic pass picks up rotated
    // Secrets, which are not watched.
    Ok(Action::requeue(Duration::from_secs(if settled {
        300
    } else {
        15
    })))
}

/// Ready once every replica of the current generation is available and ingest can accept the
/// Source's write keys.
pub fn readiness(deployment: &Deployment, missing_keys: &[String]) -> Outcome {
    if !missing_keys.is_empty() {
        return Outcome::failed(CONDITION_READY, "WriteKeyMissing", missing_keys.join("; "));
    }
    let wanted = deployment.spec.replicas.unwrap_or(1);
    if wanted == 0 {
        return Outcome::ok(
            CONDITION_READY,
            "Paused",
            "spec.evaluator.replicas is 0: events wait in the stream until it is 1",
        );
    }
    let status = deployment.status.clone().unwrap_or_default();
    let current = status.observed_generation >= deployment.metadata.generation;
    let available = status.available_replicas.unwrap_or(0);
    if current && available >= wanted {
        Outcome::ok(
            CONDITION_READY,
            "Available",
            format!("{available}/{wanted} evaluator replica(s) available"),
        )
    } else {
        Outcome::failed(
            CONDITION_READY,
            "Progressing",
            format!("{available}/{wanted} evaluator replica(s) available"),
        )
    }
}

async fn patch_status(ctx: &Context, source: &Source, outcomes: Vec<Outcome>) -> Result<(), Error> {
    let previous = source
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    patch_conditions(&ctx.client, source, &previous, &outcomes).await
}

async fn cleanup(source: &Source, ctx: &Context) -> Result<Action, Error> {
    let namespace = source.namespace().unwrap_or_default();
    let name = source.name_any();
    delete_consumer(ctx, &namespace, &name).await?;
    write_keys::remove(ctx, &namespace, &name).await?;
    tracing::info!(%namespace, source = %name, "Source deleted: consumer and write keys removed");
    Ok(Action::await_change())
}

/// Deletes the Source's durable consumer so the stream stops retaining events for it. A
/// missing stream or consumer counts as done; an unreachable NATS is retried.
async fn delete_consumer(ctx: &Context, tenant: &str, source: &str) -> Result<(), Error> {
    let consumer = model::subject::durable_name(tenant, source);
    let failed = |message: String| Error::Consumer {
        consumer: consumer.clone(),
        message,
    };
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&ctx.settings.nats_url)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let jetstream = async_nats::jetstream::new(client);
    let stream = match jetstream.get_stream(&ctx.settings.stream).await {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(());
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    match stream.delete_consumer(&consumer).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ConsumerErrorKind::JetStream(j) if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) => {
            Ok(())
        }
        Err(e) => Err(failed(e.to_string())),
    }
}
