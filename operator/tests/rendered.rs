//! What the operator applies for the repository's examples, validated offline against the
//! Kubernetes schemas (strict: unknown fields are errors) and the chart's pod-hardening rules,
//! with the same validator `scripts/check-chart.sh` installs (`kubernetes-validate`).

use model::secrets::StandaloneSecrets;
use model::standalone::Catalog;
use operator::config::EvaluatorSettings;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn settings() -> EvaluatorSettings {
    EvaluatorSettings {
        evaluator_image: "customersignal/evaluator:0.1.0".into(),
        evaluator_image_pull_policy: "IfNotPresent".into(),
        nats_url: "nats://nats.nats:4222".into(),
        stream: "EVENTS".into(),
        clickhouse: model::clickhouse_args::ClickHouseArgs {
            clickhouse_url: "http://clickhouse.clickhouse:8123".into(),
            clickhouse_database: "customersignal".into(),
            clickhouse_user: "default".into(),
            clickhouse_password: "pw".into(),
            clickhouse_validation: model::clickhouse_args::Validation::Auto,
        },
    }
}

fn validator() -> PathBuf {
    let tools = std::env::var("CS_TOOLS_DIR").map_or_else(|_| root().join(".tools"), PathBuf::from);
    let python = tools.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run through scripts/test.sh, which installs kubernetes-validate",
        python.display()
    );
    python
}

fn validate(text: &str) -> std::process::Output {
    let file = std::env::temp_dir().join(format!("cs-rendered-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, text).unwrap();
    let output = Command::new(validator())
        .arg(root().join("scripts/chart/check_manifests.py"))
        .args(["-k", "1.29", "-k", "1.37", "--expect-kind", "Deployment"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    output
}

#[test]
fn the_objects_rendered_for_the_examples_are_valid_kubernetes_objects() {
    let catalog = Catalog::load(&root().join("examples"));
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let secrets = StandaloneSecrets::new(None);
    let (text, _) = operator::render::render(
        &catalog,
        &settings(),
        &secrets,
        "customersignal",
        "customersignal-write-keys",
    )
    .unwrap();
    assert_eq!(
        text.matches("\nkind: Deployment\n").count(),
        catalog.sources.len()
    );
    let output = validate(&text);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The validator bites: an unknown field in the pod spec is refused.
    let broken = text.replacen("serviceAccountName:", "serviceAcountName:", 1);
    assert!(!validate(&broken).status.success());
}
