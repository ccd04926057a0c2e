//! The desired objects as a pure function of the specs: no API server involved.

use super::*;
use model::standalone::Catalog;
use proptest::prelude::*;
use std::path::Path;

fn settings() -> EvaluatorSettings {
    EvaluatorSettings {
        evaluator_image: "registry.example/cs/evaluator:1.2.3".into(),
        evaluator_image_pull_policy: "Always".into(),
        nats_url: "nats://nats.nats:4222".into(),
        stream: "EVENTS".into(),
        clickhouse: model::clickhouse_args::ClickHouseArgs {
            clickhouse_url: "http://clickhouse.db:8123".into(),
            clickhouse_database: "signals".into(),
            clickhouse_user: "writer".into(),
            clickhouse_password: "s3cret".into(),
            clickhouse_validation: model::clickhouse_args::Validation::On,
        },
    }
}

/// The repository's examples, parsed as the API server would hand them to the operator.
fn examples() -> (Vec<Source>, Vec<AlertRule>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let sources: Vec<Source> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(root.join("sources.yaml")).unwrap())
            .unwrap();
    let mut rules = Vec::new();
    for file in ["rules/big-spenders.yaml", "rules/aggregations.yaml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        rules.extend(serde_saphyr::from_multiple::<AlertRule>(&text).unwrap());
    }
    (sources, rules)
}

fn with_uid(mut source: Source) -> Source {
    source.metadata.uid = Some("6f1d-uid".into());
    source
}

fn rule(namespace: &str, name: &str, source: Option<&str>, function: &str) -> AlertRule {
    let source = source
        .map(|s| format!("source: {s}\n  "))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: customersignal.io/v1alpha1\nkind: AlertRule\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  {source}aggregation: {{ field: value, function: {function}, timeWindow: 1h }}\n  triggerValue: 10\n"
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

fn source_named(namespace: &str, name: &str) -> Source {
    let yaml = format!(
        "apiVersion: customersignal.io/v1alpha1\nkind: Source\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec: {{}}\n"
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

fn config_text(objects: &EvaluatorObjects) -> &str {
    &objects.config_map.data.as_ref().unwrap()[CONFIG_FILE]
}

/// Loads rendered config exactly as `evaluator run --config` does.
fn load(text: &str) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add_text(Path::new("config.yaml"), text);
    catalog
}

#[test]
fn the_config_map_is_what_standalone_mode_loads() {
    let (sources, rules) = examples();
    for source in &sources {
        let selected = select_rules(source, &rules);
        assert!(selected.invalid.is_empty());
        let objects =
            evaluator_objects(&settings(), source, &selected.valid, &SecretValues::new()).unwrap();
        let catalog = load(config_text(&objects));
        assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
        assert_eq!(catalog.sources.len(), 1);
        assert_eq!(catalog.sources[0].spec, source.spec);
        assert_eq!(catalog.sources[0].tenant, source.namespace().unwrap());
        let loaded: Vec<_> = catalog.rules.iter().map(|r| &r.spec).collect();
        let expected: Vec<_> = selected.valid.iter().map(|r| &r.spec).collect();
        assert_eq!(loaded, expected, "rules of {}", source.name_any());
    }
    // acme/web has rules; globex/mobile has none of acme's.
    let acme = select_rules(&sources[0], &rules);
    assert!(!acme.valid.is_empty());
    assert!(
        select_rules(&sources[1], &rules)
            .valid
            .iter()
            .all(|r| r.namespace().as_deref() == Some("globex"))
    );
}

#[test]
fn rules_are_selected_by_namespace_and_source_and_sorted() {
    let web = source_named("acme", "web");
    let rules = vec![
        rule("acme", "zeta", Some("web"), "sum"),
        rule("acme", "alpha", None, "count"),
        rule("acme", "other-source", Some("mobile"), "sum"),
        rule("globex", "foreign", Some("web"), "sum"),
    ];
    let names: Vec<_> = select_rules(&web, &rules)
        .valid
        .iter()
        .map(|r| r.name_any())
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
}

#[test]
fn an_invalid_rule_is_reported_and_breaks_nothing_else() {
    let web = source_named("acme", "web");
    let mut broken = rule("acme", "broken", Some("web"), "sum");
    broken.spec.aggregation.time_window = "45d".into();
    let mut no_field = rule("acme", "no-field", Some("web"), "avg");
    no_field.spec.aggregation.field = None;
    let rules = vec![broken, rule("acme", "fine", Some("web"), "sum"), no_field];
    let selected = select_rules(&web, &rules);
    assert_eq!(selected.valid.len(), 1);
    assert_eq!(selected.valid[0].name_any(), "fine");
    let messages: Vec<_> = selected
        .invalid
        .iter()
        .map(|(r, m)| (r.name_any(), m.clone()))
        .collect();
    assert_eq!(messages.len(), 2);
    assert!(messages[0].1.contains("timeWindow"), "{messages:?}");
    assert!(messages[1].1.contains("field"), "{messages:?}");
    let objects =
        evaluator_objects(&settings(), &web, &selected.valid, &SecretValues::new()).unwrap();
    let catalog = load(config_text(&objects));
    assert!(catalog.errors.is_empty());
    assert_eq!(catalog.rules.len(), 1);
}

#[test]
fn deleted_rules_leave_the_config() {
    let web = source_named("acme", "web");
    let mut leaving = rule("acme", "leaving", Some("web"), "sum");
    leaving.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    assert!(select_rules(&web, &[leaving]).valid.is_empty());
}

#[test]
fn every_object_is_owned_by_the_source_and_named_after_it() {
    let (sources, rules) = examples();
    let source = with_uid(sources[0].clone());
    let selected = select_rules(&source, &rules);
    let o = evaluator_objects(&settings(), &source, &selected.valid, &SecretValues::new()).unwrap();
    let metas = [
        &o.service_account.metadata,
        &o.role.metadata,
        &o.role_binding.metadata,
        &o.secret.metadata,
        &o.config_map.metadata,
        &o.deployment.metadata,
    ];
    for meta in metas {
        assert_eq!(meta.name.as_deref(), Some("cs-evaluator-web"));
        assert_eq!(meta.namespace.as_deref(), Some("acme"));
        let owners = meta.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "Source");
        assert_eq!(owners[0].uid, "6f1d-uid");
        assert_eq!(owners[0].controller, Some(true));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["customersignal.io/source"], "web");
    }
}

#[test]
fn the_deployment_follows_the_source_and_is_hardened() {
    let (sources, _) = examples();
    let mut source = sources[0].clone();
    source.spec.evaluator.replicas = 0;
    let d = deployment::deployment(&settings(), &source).unwrap();
    let spec = serde_json::to_value(&d.spec).unwrap();
    assert_eq!(spec["replicas"], 0);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "cs-evaluator-web");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/cs/evaluator:1.2.3");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &args[..3],
        ["run", "--config", "/etc/customersignal/config/config.yaml"]
    );
    assert!(args.contains(&"--report-status"));
    let env: BTreeMap<&str, &serde_json::Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["CS_NATS_URL"]["value"], "nats://nats.nats:4222");
    assert_eq!(env["CS_CLICKHOUSE_DATABASE"]["value"], "signals");
    assert_eq!(env["CS_CLICKHOUSE_VALIDATION"]["value"], "on");
    // The password never appears in the pod spec, only a reference to the Secret.
    assert_eq!(
        env["CS_CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"],
        "cs-evaluator-web"
    );
    assert!(!spec.to_string().contains("s3cret"));
    // Secrets are mounted per namespace, the layout `--secrets-dir` reads.
    assert_eq!(
        c["volumeMounts"][1]["mountPath"],
        "/var/run/customersignal/secrets/acme"
    );
    // Without resources on the Source, defaults apply.
    let d = deployment::deployment(&settings(), &source_named("acme", "bare")).unwrap();
    let spec = serde_json::to_value(d.spec).unwrap();
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "128Mi"
    );
}

#[test]
fn a_rule_change_changes_only_the_config_map() {
    let web = source_named("acme", "web");
    let before = vec![rule("acme", "a", Some("web"), "sum")];
    let mut after = before.clone();
    after[0].spec.trigger_value = 99.0;
    after.push(rule("acme", "b", None, "count"));
    let render = |rules: &[AlertRule]| {
        let selected = select_rules(&web, rules);
        evaluator_objects(&settings(), &web, &selected.valid, &SecretValues::new()).unwrap()
    };
    let (old, new) = (render(&before), render(&after));
    assert_ne!(old.config_map, new.config_map);
    assert_eq!(
        old.deployment, new.deployment,
        "no pod restart for a rule change"
    );
    assert_eq!(old.secret, new.secret);
}

#[test]
fn signing_secrets_are_copied_under_flat_names() {
    let (sources, rules) = examples();
    let selected = select_rules(&sources[0], &rules);
    let refs = referenced_secrets(&sources[0], &selected.valid);
    assert_eq!(refs[0].name, "web-write-keys");
    assert!(refs.iter().any(|r| r.name == "growth-webhook"));
    let values = SecretValues::from([
        (
            ("growth-webhook".into(), "signing-secret".into()),
            "whsec_abc".into(),
        ),
        (
            ("web-write-keys".into(), "primary".into()),
            "wk_live".into(),
        ),
    ]);
    let o = evaluator_objects(&settings(), &sources[0], &selected.valid, &values).unwrap();
    let data = o.secret.data.unwrap();
    assert_eq!(data["growth-webhook_signing-secret"].0, b"whsec_abc");
    assert_eq!(data["clickhouse-password"].0, b"s3cret");
    // Write keys are for ingest only: the evaluator never holds them.
    assert!(data.values().all(|v| v.0 != b"wk_live"));
}

#[test]
fn the_key_file_holds_digests_and_reports_missing_keys() {
    let (sources, _) = examples();
    let values = SecretValues::from([(
        ("web-write-keys".into(), "primary".into()),
        "wk_live".into(),
    )]);
    let (file, missing) = key_file(&sources[0], &values);
    assert!(missing.is_empty());
    assert_eq!(file.keys.len(), 1);
    assert_eq!(file.keys[0].tenant, "acme");
    assert_eq!(
        file.keys[0].sha256,
        model::keyring::key_digest_hex("wk_live")
    );
    assert_eq!(file.keys[0].tracking_plan, sources[0].spec.tracking_plan);
    assert!(!serde_json::to_string(&file).unwrap().contains("wk_live"));
    let (file, missing) = key_file(&sources[1], &values);
    assert!(file.keys.is_empty());
    assert_eq!(missing.len(), 1);
    assert!(missing[0].contains("mobile-write-keys"), "{missing:?}");
    assert_eq!(write_keys_entry_name("acme", "web"), "acme.web.json");
}

proptest! {
    /// Whatever mix of rules a namespace holds, the ConfigMap loads cleanly in standalone mode
    /// and holds exactly the valid rules of this Source, in name order.
    #[test]
    fn any_rule_mix_renders_loadable_config(
        picks in proptest::collection::vec((0usize..3, 0usize..3, 0usize..5, any::<bool>()), 0..12)
    ) {
        let web = source_named("acme", "web");
        let namespaces = ["acme", "globex", "initech"];
        let sources = [Some("web"), Some("mobile"), None];
        let functions = ["sum", "count", "avg", "max", "count_distinct"];
        let rules: Vec<AlertRule> = picks
            .iter()
            .enumerate()
            .map(|(i, (ns, src, f, valid))| {
                let mut r = rule(namespaces[*ns], &format!("r{i:02}"), sources[*src], functions[*f]);
                if !valid {
                    r.spec.aggregation.time_window = "forever".into();
                }
                r
            })
            .collect();
        let selected = select_rules(&web, &rules);
        let expected: Vec<String> = picks
            .iter()
            .enumerate()
            .filter(|(_, (ns, src, _, valid))| *ns == 0 && *src != 1 && *valid)
            .map(|(i, _)| format!("r{i:02}"))
            .collect();
        let names: Vec<String> = selected.valid.iter().map(|r| r.name_any()).collect();
        prop_assert_eq!(&names, &expected);
        let objects = evaluator_objects(&settings(), &web, &selected.valid, &SecretValues::new()).unwrap();
        let catalog = load(config_text(&objects));
        prop_assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
        let loaded: Vec<String> = catalog.rules.iter().map(|r| r.compiled.name.clone()).collect();
        prop_assert_eq!(loaded, expected);
    }
}
