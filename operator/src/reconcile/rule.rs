//! AlertRule → status. `Accepted` says whether the rule compiles (with the validation message
//! when it doesn't); `Ready` whether it is being evaluated: its Source exists and is ready, and
//! its webhook's signing secret exists. The evaluator writes the live alert state (`state`,
//! `firingGroups`, …) into the same status; this reconciler only writes its conditions.

use super::{Context, Error, patch_conditions, publish_event, read_secrets};
use crate::conditions::Outcome;
use crate::desired::validate_rule;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use model::resources::{AlertRule, CONDITION_ACCEPTED, CONDITION_READY, Source};
use std::sync::Arc;
use std::time::Duration;

pub async fn reconcile(rule: Arc<AlertRule>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = rule
        .namespace()
        .ok_or_else(|| Error::NoNamespace(rule.name_any()))?;
    super::measured("AlertRule", namespace.clone(), async {
        let outcomes = outcomes(&rule, &namespace, &ctx).await?;
        if let Some(rejected) = outcomes
            .iter()
            .find(|o| o.type_ == CONDITION_ACCEPTED && !o.ok)
        {
            publish_event(
                &ctx,
                rule.as_ref(),
                EventType::Warning,
                "InvalidSpec",
                rejected.message.clone(),
            )
            .await;
        }
        let previous = rule
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        patch_conditions(&ctx.client, rule.as_ref(), &previous, &outcomes).await?;
        // Sources wake their rules on change; the periodic pass notices a late signing secret.
        Ok(Action::requeue(Duration::from_secs(300)))
    })
    .await
}

async fn outcomes(rule: &AlertRule, namespace: &str, ctx: &Context) -> Result<Vec<Outcome>, Error> {
    if let Err(message) = validate_rule(rule) {
        return Ok(vec![
            Outcome::failed(CONDITION_ACCEPTED, "InvalidSpec", message),
            Outcome::failed(
                CONDITION_READY,
                "InvalidSpec",
                "the rule is not evaluated until it is valid",
            ),
        ]);
    }
    let accepted = Outcome::ok(CONDITION_ACCEPTED, "Valid", "the rule compiles");
    let sources: Vec<Source> = Api::<Source>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|s| {
            rule.spec
                .source
                .as_deref()
                .is_none_or(|name| s.name_any() == name)
        })
        .collect();
    Ok(vec![
        accepted,
        readiness(rule, &sources, ctx, namespace).await?,
    ])
}

async fn readiness(
    rule: &AlertRule,
    sources: &[Source],
    ctx: &Context,
    namespace: &str,
) -> Result<Outcome, Error> {
    if sources.is_empty() {
        let which = rule
            .spec
            .source
            .as_deref()
            .map(|s| format!("Source {namespace}/{s} does not exist"))
            .unwrap_or_else(|| format!("namespace {namespace} has no Source"));
        return Ok(Outcome::failed(CONDITION_READY, "SourceNotFound", which));
    }
    let unready: Vec<String> = sources
        .iter()
        .filter(|s| !source_ready(s))
        .map(|s| s.name_any())
        .collect();
    if !unready.is_empty() {
        return Ok(Outcome::failed(
            CONDITION_READY,
            "SourceNotReady",
            format!("Source(s) not ready: {}", unready.join(", ")),
        ));
    }
    if let Some(reference) = rule
        .spec
        .webhook
        .as_ref()
        .and_then(|w| w.secret_ref.as_ref())
    {
        let found = read_secrets(&ctx.client, namespace, std::slice::from_ref(reference)).await?;
        if found.is_empty() {
            return Ok(Outcome::failed(
                CONDITION_READY,
                "SecretNotFound",
                format!(
                    "signing secret {namespace}/{} key {} not found; notifications wait for it",
                    reference.name, reference.key
                ),
            ));
        }
    }
    Ok(Outcome::ok(
        CONDITION_READY,
        "Evaluating",
        "the rule is evaluated by its Source's evaluator",
    ))
}

fn source_ready(source: &Source) -> bool {
    source.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONDITION_READY && c.status == "True")
    })
}
