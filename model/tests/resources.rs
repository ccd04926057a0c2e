//! The generated CRDs under `crds/` and the examples under `examples/` stay true to the code.

use model::resources::{crd_yaml, crds};
use model::rule::AggregateFunction;
use model::standalone::Catalog;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn crds_directory_is_up_to_date() {
    for (file, crd) in crds() {
        let path = repo().join("crds").join(file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == crd_yaml(&crd),
            "{} is stale: regenerate with `cargo run -p operator -- crds --out crds`",
            path.display()
        );
    }
}

#[test]
fn examples_load_without_errors_and_cover_every_function() {
    let catalog = Catalog::load(&repo().join("examples"));
    let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let functions: BTreeSet<&str> = catalog
        .rules
        .iter()
        .map(|r| r.compiled.function.as_str())
        .collect();
    let all = [
        AggregateFunction::Count,
        AggregateFunction::Sum,
        AggregateFunction::Avg,
        AggregateFunction::Min,
        AggregateFunction::Max,
        AggregateFunction::CountDistinct,
    ];
    assert_eq!(functions, all.iter().map(|f| f.as_str()).collect());
    let tenants: BTreeSet<&str> = catalog.sources.iter().map(|s| s.tenant.as_str()).collect();
    assert_eq!(tenants, ["acme", "globex"].into());
}

#[test]
fn the_original_threshold_rule_is_among_the_examples() {
    let catalog = Catalog::load(&repo().join("examples"));
    let rule = catalog
        .rules
        .iter()
        .find(|r| r.compiled.name == "big-spenders")
        .expect("big-spenders");
    assert_eq!(rule.spec.conditions.len(), 2);
    assert_eq!(rule.spec.trigger_value, 5000.0);
    assert_eq!(rule.compiled.window.as_secs(), 7 * 86400);
}

/// The openAPIV3Schema of the CRD serving `kind`.
fn schema_for(kind: &str) -> Value {
    let (_, crd) = crds()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .expect("crd");
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("schema")).expect("json")
}

fn schema_errors(kind: &str, document: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema_for(kind)).expect("valid JSON schema");
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn example_documents() -> Vec<(String, Value)> {
    let mut documents = Vec::new();
    let mut dirs = vec![repo().join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("examples dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).expect("read");
                let values: Vec<Value> = serde_saphyr::from_multiple(&text).expect("yaml");
                documents.extend(values.into_iter().map(|v| (path.display().to_string(), v)));
            }
        }
    }
    documents
}

#[test]
fn examples_validate_against_the_generated_crd_schemas() {
    let documents = example_documents();
    assert!(
        documents.len() >= 9,
        "found {} example documents",
        documents.len()
    );
    for (file, document) in documents {
        let kind = document["kind"].as_str().unwrap_or_default().to_string();
        let errors = schema_errors(&kind, &document);
        assert!(
            errors.is_empty(),
            "{file} {kind} {}: {errors:#?}",
            document["metadata"]["name"]
        );
    }
}

#[test]
fn the_schema_rejects_what_the_api_server_would() {
    let rule = |spec: Value| serde_json::json!({"apiVersion": "customersignal.io/v1alpha1", "kind": "AlertRule", "spec": spec});
    let ok = serde_json::json!({"aggregation": {"function": "sum", "field": "value", "timeWindow": "7d"}, "triggerValue": 1});
    assert_eq!(
        schema_errors("AlertRule", &rule(ok.clone())),
        Vec::<String>::new()
    );
    let mut bad = ok.clone();
    bad["aggregation"]["function"] = "median".into();
    bad["aggregation"]["timeWindow"] = "a week".into();
    bad["comparator"] = "=>".into();
    bad["source"] = "Web_App".into();
    let errors = schema_errors("AlertRule", &rule(bad));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let mut missing = ok;
    missing
        .as_object_mut()
        .expect("object")
        .remove("triggerValue");
    assert_eq!(schema_errors("AlertRule", &rule(missing)).len(), 1);
}
