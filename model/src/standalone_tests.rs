use super::*;
use crate::rule::AggregateFunction;

const SOURCE: &str = "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {name: web, namespace: acme}
spec: {writeKeys: [{name: web-keys, key: primary}]}
";

fn load(text: &str) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add_text(Path::new("rules.yaml"), text);
    catalog.check_references();
    catalog
}

fn messages(catalog: &Catalog) -> Vec<String> {
    catalog.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn loads_sources_and_rules_with_namespace_as_tenant() {
    let catalog = load(&format!(
        "{SOURCE}---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: busy}}
spec:
  aggregation: {{function: count, timeWindow: 5m}}
  triggerValue: 100
"
    ));
    assert_eq!(messages(&catalog), Vec::<String>::new());
    assert_eq!(catalog.sources[0].tenant, "acme");
    assert_eq!(catalog.rules[0].compiled.tenant, DEFAULT_NAMESPACE);
    assert_eq!(catalog.rules[0].compiled.function, AggregateFunction::Count);
    assert_eq!(catalog.rules[0].origin.document, 2);
}

#[test]
fn bad_documents_name_file_document_and_field_and_never_stop_the_others() {
    let text = format!(
        "# leading comment
{SOURCE}---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: wrong-type, namespace: acme}}
spec:
  aggregation: {{function: count, timeWindow: 5m}}
  triggerValue: lots
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: good, namespace: acme}}
spec:
  source: web
  aggregation: {{function: sum, field: properties.value, timeWindow: 7d}}
  triggerValue: 5000
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: typo, namespace: acme}}
spec:
  aggregation: {{function: count, timeWindow: 5m, timewindow: 6m}}
  triggerValue: 1
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: semantic, namespace: acme}}
spec:
  conditions: [{{field: plan, operator: in, value: pro}}]
  aggregation: {{function: avg, timeWindow: 5m}}
  triggerValue: 1
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: orphan, namespace: acme}}
spec:
  source: mobile
  aggregation: {{function: count, timeWindow: 5m}}
  triggerValue: 1
---
apiVersion: v1
kind: Secret
metadata: {{name: web-keys}}
---
apiVersion: customersignal.io/v1alpha1
kind: Alert
---
key: [unclosed
"
    );
    let catalog = load(&text);
    let names: Vec<_> = catalog
        .rules
        .iter()
        .map(|r| r.compiled.name.as_str())
        .collect();
    assert_eq!(names, ["good"]);
    assert_eq!(catalog.skipped.len(), 1);
    let errors = messages(&catalog);
    let expect = [
        (
            "rules.yaml: document 2 (line 7): spec.triggerValue: invalid type",
            2,
        ),
        (
            "rules.yaml: document 4 (line 22): spec.aggregation.timewindow: unknown field",
            4,
        ),
        (
            "rules.yaml: document 5 (line 29): spec.conditions[0].value: operator in needs a non-empty list",
            5,
        ),
        (
            "rules.yaml: document 8 (line 49): kind: \"Alert\" is not a kind",
            8,
        ),
        ("rules.yaml: document 9 (line 52): invalid YAML", 9),
        (
            "rules.yaml: document 6 (line 37): spec.source: no Source \"mobile\" in namespace \"acme\"",
            6,
        ),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for ((prefix, document), (error, got)) in expect.iter().zip(errors.iter().zip(&catalog.errors))
    {
        assert!(
            error.starts_with(prefix),
            "{error:?} should start with {prefix:?}"
        );
        assert_eq!(got.origin.as_ref().map(|o| o.document), Some(*document));
    }
    assert!(
        errors[2].contains("also: spec.aggregation.field"),
        "{}",
        errors[2]
    );
}

#[test]
fn duplicates_and_missing_names_are_errors() {
    let catalog = load(&format!(
        "{SOURCE}---\n{SOURCE}---\napiVersion: customersignal.io/v1alpha1\nkind: Source\nmetadata: {{namespace: acme}}\nspec: {{}}\n"
    ));
    let errors = messages(&catalog);
    assert!(
        errors[0].contains(
            "metadata.name: Source acme/web is already defined at rules.yaml: document 1"
        ),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("metadata.name: is required"),
        "{errors:?}"
    );
    assert_eq!(catalog.sources.len(), 1);
}

#[test]
fn wrong_api_version_and_non_mapping_documents() {
    let catalog = load("apiVersion: customersignal.io/v2\nkind: Source\n---\n- a list\n");
    let errors = messages(&catalog);
    assert!(
        errors[0].contains("apiVersion: \"customersignal.io/v2\" is not served"),
        "{errors:?}"
    );
    assert!(errors[1].contains("must be a YAML mapping"), "{errors:?}");
}

#[test]
fn missing_path_is_a_file_error() {
    let catalog = Catalog::load(Path::new("/nonexistent/rules"));
    assert!(messages(&catalog)[0].starts_with("/nonexistent/rules: cannot open"));
}

#[test]
fn splits_documents_on_markers_only() {
    let docs = split_documents(
        "---\na: 1\n--- # c\nb: '---'\n---\n# only a comment\n...\n---\nc: |\n  x\n",
    );
    let starts: Vec<usize> = docs.iter().map(|(line, _)| *line).collect();
    assert_eq!(starts, [2, 4, 9]);
}

#[test]
fn rules_for_a_source_include_rules_without_one() {
    let catalog = load(&format!(
        "{SOURCE}---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: any-source, namespace: acme}}
spec: {{aggregation: {{function: count, timeWindow: 5m}}, triggerValue: 1}}
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: other-tenant, namespace: beta}}
spec: {{aggregation: {{function: count, timeWindow: 5m}}, triggerValue: 1}}
"
    ));
    let names: Vec<_> = catalog
        .rules_for("acme", "web")
        .map(|r| r.compiled.name.as_str())
        .collect();
    assert_eq!(names, ["any-source"]);
}
