//! Rule matching + window update throughput, in process: 100 rules over 10 000 account
//! groups, one core. Run: `cargo bench -p evaluator --bench engine`. Prints a table.

use evaluator::engine::Engine;
use model::rule::CompiledRule;
use model::standalone::Catalog;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

const RULES: usize = 100;
const GROUPS: usize = 10_000;
const EVENTS: usize = 1_000_000;

fn rules() -> Vec<CompiledRule> {
    let functions = ["count", "sum", "avg", "min", "max", "count_distinct"];
    let mut yaml = String::from(
        "apiVersion: customersignal.io/v1alpha1\nkind: Source\nmetadata: {name: web, namespace: bench}\nspec: {}\n",
    );
    for i in 0..RULES {
        let function = functions[i % functions.len()];
        let field = if function == "count_distinct" {
            "event.userId"
        } else {
            "properties.value"
        };
        yaml.push_str(&format!(
            "---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: rule-{i}, namespace: bench}}
spec:
  source: web
  events: {{names: [event-{}]}}
  conditions: [{{field: account.traits.teamSize, operator: '>', value: {}}}]
  aggregation: {{function: {function}, field: {field}, timeWindow: 7d}}
  groupBy: account
  triggerValue: 1000000000
",
            i % 20,
            i % 5
        ));
    }
    let dir = std::env::temp_dir().join(format!("cs-bench-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yaml"), yaml).unwrap();
    let catalog = Catalog::load(Path::new(&dir));
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let _ = std::fs::remove_dir_all(dir);
    catalog.rules.into_iter().map(|r| r.compiled).collect()
}

fn main() {
    let now = chrono::Utc::now().timestamp_millis();
    let mut engine = Engine::new(rules());
    for g in 0..GROUPS {
        let mut group = tests::track_event(
            "bench",
            "web",
            &format!("g-{g}"),
            &format!("u-{g}"),
            "",
            now - 86_400_000,
            json!({}),
        );
        group.kind = model::event::EventKind::Group;
        group.name = None;
        group.group_id = Some(format!("acct-{g}"));
        group.traits = json!({"teamSize": g % 10}).as_object().cloned().unwrap();
        engine.observe(&group, now as u64, false);
    }
    let events: Vec<_> = (0..EVENTS)
        .map(|i| {
            let g = (i * 7919) % GROUPS;
            let at = now - 3_600_000 + (i as i64 % 3_600_000);
            tests::track_event(
                "bench",
                "web",
                &format!("e-{i}"),
                &format!("u-{g}"),
                &format!("event-{}", i % 20),
                at,
                json!({"value": (i % 100) as f64}),
            )
        })
        .collect();
    let started = Instant::now();
    let mut transitions = 0;
    for event in &events {
        transitions += engine.observe(event, now as u64, true).len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!();
    println!("| measurement ({RULES} rules, {GROUPS} groups, {EVENTS} events, 1 core) | result |");
    println!("|---|---|");
    println!(
        "| matching + window update + trigger check | {:.0} events/s (target ≥ 250 000) |",
        EVENTS as f64 / elapsed
    );
    println!("| per event | {:.2} µs |", elapsed * 1e6 / EVENTS as f64);
    println!("| transitions (threshold set out of reach) | {transitions} |");
}
