//! The reconcilers against an in-process FAKE of the Kubernetes API server (no real one can
//! run on these machines: see fake_api/mod.rs). Cleanup of the JetStream consumer talks to the
//! real NATS that `scripts/test.sh` starts.

mod fake_api;

use fake_api::FakeApi;
use k8s_openapi::ByteString;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use model::keyring::{KeyFile, key_digest_hex};
use model::resources::{AlertRule, Source};
use model::standalone::Catalog;
use operator::config::EvaluatorSettings;
use operator::reconcile::{Context, rule, source};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const CRS: &str = "/apis/customersignal.io/v1alpha1/namespaces";
const OPERATOR_NS: &str = "customersignal";

/// A fresh tenant per test: the consumer names on the shared NATS never collide.
fn tenant() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn settings(stream: &str) -> EvaluatorSettings {
    EvaluatorSettings {
        evaluator_image: "customersignal/evaluator:test".into(),
        evaluator_image_pull_policy: "IfNotPresent".into(),
        nats_url: std::env::var("CS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        stream: stream.into(),
        clickhouse: model::clickhouse_args::ClickHouseArgs {
            clickhouse_url: "http://clickhouse:8123".into(),
            clickhouse_database: "customersignal".into(),
            clickhouse_user: "default".into(),
            clickhouse_password: "pw".into(),
            clickhouse_validation: model::clickhouse_args::Validation::Auto,
        },
    }
}

fn context(fake: &FakeApi, stream: &str) -> Arc<Context> {
    let client = fake.client();
    Arc::new(Context {
        client: client.clone(),
        settings: settings(stream),
        namespace: OPERATOR_NS.into(),
        write_keys_secret: "customersignal-write-keys".into(),
        recorder: Recorder::new(client, Reporter::from("customersignal-operator")),
    })
}

fn secret(fake: &FakeApi, ns: &str, name: &str, key: &str, value: &str) {
    fake.put(
        &format!("/api/v1/namespaces/{ns}/secrets/{name}"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": ns},
               "data": {key: ByteString(value.as_bytes().to_vec())}}),
    );
}

fn put_source(fake: &FakeApi, ns: &str) {
    fake.put(
        &format!("{CRS}/{ns}/sources/web"),
        json!({"apiVersion": "customersignal.io/v1alpha1", "kind": "Source",
               "metadata": {"name": "web", "namespace": ns},
               "spec": {"writeKeys": [{"name": "web-keys", "key": "primary"}], "retentionDays": 30}}),
    );
}

fn put_rule(fake: &FakeApi, ns: &str, name: &str, window: &str) {
    fake.put(
        &format!("{CRS}/{ns}/alertrules/{name}"),
        json!({"apiVersion": "customersignal.io/v1alpha1", "kind": "AlertRule",
               "metadata": {"name": name, "namespace": ns},
               "spec": {"source": "web",
                        "aggregation": {"field": "value", "function": "sum", "timeWindow": window},
                        "triggerValue": 100,
                        "webhook": {"url": "https://hooks.example/x",
                                    "secretRef": {"name": "hook", "key": "signing"}}}}),
    );
}

fn read_source(fake: &FakeApi, ns: &str) -> Arc<Source> {
    let value = fake.get(&format!("{CRS}/{ns}/sources/web")).unwrap();
    Arc::new(serde_json::from_value(value).unwrap())
}

fn read_rule(fake: &FakeApi, ns: &str, name: &str) -> Arc<AlertRule> {
    let value = fake.get(&format!("{CRS}/{ns}/alertrules/{name}")).unwrap();
    Arc::new(serde_json::from_value(value).unwrap())
}

fn condition(object: &Value, type_: &str) -> (String, String, String) {
    let c = object["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {object}"));
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

/// First pass adds the finalizer (and nothing else); the second renders everything.
async fn reconcile_twice(fake: &FakeApi, ctx: &Arc<Context>, ns: &str) -> Action {
    let first = source::reconcile(read_source(fake, ns), ctx.clone())
        .await
        .unwrap();
    assert_eq!(first, Action::await_change());
    let stored = fake.get(&format!("{CRS}/{ns}/sources/web")).unwrap();
    assert_eq!(stored["metadata"]["finalizers"], json!([source::FINALIZER]));
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|(method, _)| method != http::Method::GET)
        .collect();
    assert_eq!(
        writes.len(),
        1,
        "only the finalizer before it is in place: {writes:?}"
    );
    source::reconcile(read_source(fake, ns), ctx.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_source_becomes_an_evaluator_config_and_write_keys() {
    let (fake, ns) = (FakeApi::default(), tenant());
    put_source(&fake, &ns);
    put_rule(&fake, &ns, "spend", "7d");
    secret(&fake, &ns, "web-keys", "primary", "wk_live_1");
    secret(&fake, &ns, "hook", "signing", "whsec_c2lnbmluZw==");
    let ctx = context(&fake, "EVENTS");
    reconcile_twice(&fake, &ctx, &ns).await;

    let core = format!("/api/v1/namespaces/{ns}");
    for path in [
        format!("{core}/serviceaccounts/cs-evaluator-web"),
        format!("{core}/secrets/cs-evaluator-web"),
        format!("{core}/configmaps/cs-evaluator-web"),
        format!("/apis/apps/v1/namespaces/{ns}/deployments/cs-evaluator-web"),
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/cs-evaluator-web"),
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/cs-evaluator-web"),
    ] {
        let object = fake
            .get(&path)
            .unwrap_or_else(|| panic!("{path} not applied"));
        assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "Source");
    }
    // The ConfigMap is what standalone mode loads.
    let cm = fake
        .get(&format!("{core}/configmaps/cs-evaluator-web"))
        .unwrap();
    let mut catalog = Catalog::default();
    catalog.add_text(
        Path::new("config.yaml"),
        cm["data"]["config.yaml"].as_str().unwrap(),
    );
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    assert_eq!(catalog.rules.len(), 1);
    assert_eq!(catalog.sources[0].tenant, ns);

    // Ingest's Secret holds the key's digest under the Source's entry.
    let keys = fake
        .get(&format!(
            "/api/v1/namespaces/{OPERATOR_NS}/secrets/customersignal-write-keys"
        ))
        .unwrap();
    let entry: ByteString =
        serde_json::from_value(keys["data"][format!("{ns}.web.json")].clone()).unwrap();
    let file: KeyFile = serde_json::from_slice(&entry.0).unwrap();
    assert_eq!(file.keys[0].sha256, key_digest_hex("wk_live_1"));
    assert_eq!(file.keys[0].tenant, ns);

    // No pod is available yet: accepted, not ready.
    let stored = fake.get(&format!("{CRS}/{ns}/sources/web")).unwrap();
    assert_eq!(condition(&stored, "Accepted").0, "True");
    assert_eq!(condition(&stored, "Ready").1, "Progressing");
    assert_eq!(stored["status"]["observedGeneration"], 1);

    // The Deployment reports an available replica: the Source is Ready.
    let deployment = format!("/apis/apps/v1/namespaces/{ns}/deployments/cs-evaluator-web");
    let mut d = fake.get(&deployment).unwrap();
    d["status"] = json!({"availableReplicas": 1, "observedGeneration": 1});
    fake.put(&deployment, d);
    let action = source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap();
    let stored = fake.get(&format!("{CRS}/{ns}/sources/web")).unwrap();
    assert_eq!(condition(&stored, "Ready").0, "True", "{stored}");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(300)));
}

#[tokio::test]
async fn an_invalid_rule_is_rejected_with_its_message_and_breaks_nothing_else() {
    let (fake, ns) = (FakeApi::default(), tenant());
    put_source(&fake, &ns);
    put_rule(&fake, &ns, "good", "1h");
    put_rule(&fake, &ns, "bad", "45d");
    secret(&fake, &ns, "web-keys", "primary", "wk");
    let ctx = context(&fake, "EVENTS");
    reconcile_twice(&fake, &ctx, &ns).await;

    rule::reconcile(read_rule(&fake, &ns, "bad"), ctx.clone())
        .await
        .unwrap();
    let bad = fake.get(&format!("{CRS}/{ns}/alertrules/bad")).unwrap();
    let (status, reason, message) = condition(&bad, "Accepted");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(message.contains("timeWindow"), "{message}");
    // A Warning Event explains it in `kubectl describe`.
    let events = fake.under(&format!("/apis/events.k8s.io/v1/namespaces/{ns}/events/"));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "InvalidSpec" && e["type"] == "Warning"),
        "{events:?}"
    );
    // The good rule is still rendered and accepted.
    let cm = fake
        .get(&format!(
            "/api/v1/namespaces/{ns}/configmaps/cs-evaluator-web"
        ))
        .unwrap();
    let config = cm["data"]["config.yaml"].as_str().unwrap();
    assert!(
        config.contains("name: good") && !config.contains("name: bad"),
        "{config}"
    );
    rule::reconcile(read_rule(&fake, &ns, "good"), ctx.clone())
        .await
        .unwrap();
    let good = fake.get(&format!("{CRS}/{ns}/alertrules/good")).unwrap();
    assert_eq!(condition(&good, "Accepted").0, "True");
}

#[tokio::test]
async fn a_rule_is_ready_once_its_source_and_signing_secret_are() {
    let (fake, ns) = (FakeApi::default(), tenant());
    put_rule(&fake, &ns, "spend", "1h");
    let ctx = context(&fake, "EVENTS");
    let ready = |fake: &FakeApi| {
        let r = fake.get(&format!("{CRS}/{ns}/alertrules/spend")).unwrap();
        condition(&r, "Ready")
    };
    rule::reconcile(read_rule(&fake, &ns, "spend"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(ready(&fake).1, "SourceNotFound");

    put_source(&fake, &ns);
    rule::reconcile(read_rule(&fake, &ns, "spend"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(ready(&fake).1, "SourceNotReady");

    let path = format!("{CRS}/{ns}/sources/web");
    let mut s = fake.get(&path).unwrap();
    s["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Available",
        "message": "", "lastTransitionTime": "2026-11-25T00:00:00Z"}]});
    fake.put(&path, s);
    rule::reconcile(read_rule(&fake, &ns, "spend"), ctx.clone())
        .await
        .unwrap();
    let (_, reason, message) = ready(&fake);
    assert_eq!(reason, "SecretNotFound");
    assert!(message.contains("hook"), "{message}");

    secret(&fake, &ns, "hook", "signing", "whsec_c2lnbmluZw==");
    rule::reconcile(read_rule(&fake, &ns, "spend"), ctx.clone())
        .await
        .unwrap();
    assert_eq!(ready(&fake).0, "True");
    // The conditions patch leaves the evaluator's live fields alone.
    let r = fake.get(&format!("{CRS}/{ns}/alertrules/spend")).unwrap();
    assert!(r["status"].get("state").is_none());
}

#[tokio::test]
async fn deleting_a_source_removes_its_consumer_and_write_keys() {
    let (fake, ns) = (FakeApi::default(), tenant());
    let stream_name = format!("OPTEST_{}", ns.to_uppercase());
    let nats = async_nats::connect(settings("").nats_url)
        .await
        .expect("NATS must run (scripts/test.sh starts it)");
    let js = async_nats::jetstream::new(nats);
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("optest.{ns}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let consumer = model::subject::durable_name(&ns, "web");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(consumer.clone()),
            ..Default::default()
        })
        .await
        .unwrap();

    put_source(&fake, &ns);
    secret(&fake, &ns, "web-keys", "primary", "wk");
    let ctx = context(&fake, &stream_name);
    reconcile_twice(&fake, &ctx, &ns).await;
    let keys_path = format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/customersignal-write-keys");
    assert!(
        fake.get(&keys_path).unwrap()["data"]
            .get(format!("{ns}.web.json"))
            .is_some()
    );

    // `kubectl delete source web`: the API server sets deletionTimestamp and waits for us.
    let path = format!("{CRS}/{ns}/sources/web");
    let mut s = fake.get(&path).unwrap();
    s["metadata"]["deletionTimestamp"] = json!("2026-11-25T00:00:00Z");
    fake.put(&path, s);
    source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap();

    assert!(
        stream.consumer_info(&consumer).await.is_err(),
        "consumer still exists"
    );
    assert!(
        fake.get(&keys_path).unwrap()["data"]
            .get(format!("{ns}.web.json"))
            .is_none()
    );
    assert_eq!(
        fake.get(&path).unwrap()["metadata"]["finalizers"],
        json!([])
    );
    // Cleanup is idempotent: a second pass (consumer and entry gone) still succeeds.
    let mut s = fake.get(&path).unwrap();
    s["metadata"]["finalizers"] = json!([source::FINALIZER]);
    fake.put(&path, s);
    source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap();
    js.delete_stream(&stream_name).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_nats_keeps_the_finalizer_until_cleanup_succeeds() {
    let (fake, ns) = (FakeApi::default(), tenant());
    put_source(&fake, &ns);
    let mut ctx = context(&fake, "EVENTS");
    Arc::get_mut(&mut ctx).unwrap().settings.nats_url = "nats://127.0.0.1:1".into();
    reconcile_twice(&fake, &ctx, &ns).await;
    let path = format!("{CRS}/{ns}/sources/web");
    let mut s = fake.get(&path).unwrap();
    s["metadata"]["deletionTimestamp"] = json!("2026-11-25T00:00:00Z");
    fake.put(&path, s);
    let error = source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&model::subject::durable_name(&ns, "web")),
        "{error}"
    );
    assert_eq!(
        fake.get(&path).unwrap()["metadata"]["finalizers"],
        json!([source::FINALIZER])
    );
}

#[tokio::test]
async fn an_api_failure_is_an_error_and_the_source_is_not_marked_ready() {
    let (fake, ns) = (FakeApi::default(), tenant());
    put_source(&fake, &ns);
    secret(&fake, &ns, "web-keys", "primary", "wk");
    let ctx = context(&fake, "EVENTS");
    source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap();
    fake.fail("/deployments/");
    let error = source::reconcile(read_source(&fake, &ns), ctx.clone())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    let stored = fake.get(&format!("{CRS}/{ns}/sources/web")).unwrap();
    assert!(
        stored["status"].is_null(),
        "status written after a failed apply: {stored}"
    );
    // The controller retries it.
    let action = operator::reconcile::retry_after_error(read_source(&fake, &ns), &error, ctx);
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(15)));
}
