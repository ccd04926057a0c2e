//! Wires the reconcilers into kube-rs Controllers: Sources (owning their Deployments and
//! ConfigMaps, woken by their AlertRules) and AlertRules (woken by their Sources).

use crate::reconcile::{Context, retry_after_error, rule, source};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use model::resources::{AlertRule, Source};
use std::future::Future;
use std::sync::Arc;

/// Where to watch: every namespace, or one.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs both controllers for one scope until `shutdown` resolves (then drains in-flight
/// reconciles).
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let config = watcher::Config::default();
    let owned =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=customersignal-operator");

    let sources = Controller::new(api::<Source>(&client, ns), config.clone());
    let source_store = sources.store();
    let sources = sources
        .owns(api::<Deployment>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned)
        .watches(api::<AlertRule>(&client, ns), config.clone(), move |rule| {
            // A rule (also a deleted one) re-renders the config of every Source it reads.
            source_store
                .state()
                .into_iter()
                .filter(|s| s.namespace() == rule.namespace())
                .filter(|s| {
                    rule.spec
                        .source
                        .as_deref()
                        .is_none_or(|n| n == s.name_any())
                })
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(source::reconcile, retry_after_error, ctx.clone())
        .for_each(|_| async {});

    let rules = Controller::new(api::<AlertRule>(&client, ns), config.clone());
    let rule_store = rules.store();
    let rules = rules
        .watches(api::<Source>(&client, ns), config, move |source| {
            // A Source's readiness is part of each of its rules' `Ready`.
            rule_store
                .state()
                .into_iter()
                .filter(|r| r.namespace() == source.namespace())
                .filter(|r| {
                    r.spec
                        .source
                        .as_deref()
                        .is_none_or(|n| n == source.name_any())
                })
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(rule::reconcile, retry_after_error, ctx)
        .for_each(|_| async {});

    futures::join!(sources, rules);
}
