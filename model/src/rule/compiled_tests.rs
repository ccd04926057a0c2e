use super::*;
use crate::rule::test_support::{event, object};
use serde_json::json;

/// The threshold config users already wrote, verbatim.
const ORIGINAL: &str = r#"{
  "conditions": [ { "field": "teamSize", "operator": ">", "value": 10 },
                  { "field": "monthlyCost", "operator": ">=", "value": 1000 } ],
  "aggregation": { "field": "value", "function": "sum", "timeWindow": "7d" },
  "triggerValue": 5000
}"#;

fn spec(json: Value) -> AlertRuleSpec {
    serde_json::from_value(json).unwrap()
}

fn compile(json: Value) -> Result<CompiledRule, FieldErrors> {
    CompiledRule::compile("acme", "rule", &spec(json))
}

fn error_paths(json: Value) -> Vec<String> {
    compile(json)
        .unwrap_err()
        .iter()
        .map(|e| e.path.clone())
        .collect()
}

#[test]
fn original_config_is_accepted_as_is_with_defaults() {
    let spec: AlertRuleSpec = serde_json::from_str(ORIGINAL).unwrap();
    let rule = CompiledRule::compile("acme", "big-spenders", &spec).unwrap();
    assert_eq!(rule.function, AggregateFunction::Sum);
    assert_eq!(rule.window, Duration::from_secs(7 * 86400));
    assert_eq!(rule.comparator, Comparator::Gt);
    assert_eq!(rule.threshold, 5000.0);
    assert_eq!(rule.group_by, GroupBy::Rule);
    assert_eq!(rule.for_duration, Duration::ZERO);
    assert_eq!(rule.repeat_interval, DEFAULT_REPEAT_INTERVAL);
    assert_eq!(rule.severity, Severity::Warning);
}

#[test]
fn account_traits_filter_track_events() {
    let spec: AlertRuleSpec = serde_json::from_str(ORIGINAL).unwrap();
    let rule = CompiledRule::compile("t", "r", &spec).unwrap();
    let e = event(json!({"value": 700}));
    let big = object(json!({"teamSize": 12, "monthlyCost": 1000}));
    let small = object(json!({"teamSize": 4, "monthlyCost": 5000}));
    let with = |traits| EventContext {
        event: &e,
        account_id: Some("g1"),
        user_traits: None,
        account_traits: traits,
    };
    assert!(rule.matches(&with(Some(&big))));
    assert!(!rule.matches(&with(Some(&small))));
    assert!(
        !rule.matches(&with(None)),
        "unknown account traits never match"
    );

    let mut acc = rule.new_accumulator();
    for _ in 0..8 {
        assert!(rule.observe(&with(Some(&big)), &mut acc));
    }
    assert_eq!(acc.value(), Some(5600.0));
    assert!(rule.fires(acc.value()));
}

#[test]
fn tenant_source_and_event_filters() {
    let rule = compile(json!({
        "source": "web", "events": {"names": ["checkout"], "kinds": ["track"]},
        "aggregation": {"function": "count", "timeWindow": "1h"}, "triggerValue": 1
    }))
    .unwrap();
    let mut e = event(json!({}));
    e.tenant = "acme".into();
    assert!(rule.matches(&EventContext::of(&e)));
    for change in [
        |e: &mut Event| e.tenant = "other".into(),
        |e: &mut Event| e.source = "mobile".into(),
        |e: &mut Event| e.name = Some("signup".into()),
        |e: &mut Event| e.kind = EventKind::Page,
        |e: &mut Event| e.name = None,
    ] {
        let mut changed = e.clone();
        change(&mut changed);
        assert!(!rule.matches(&EventContext::of(&changed)), "{changed:?}");
    }
}

#[test]
fn group_keys() {
    let base = json!({"aggregation": {"function": "count", "timeWindow": "1h"}, "triggerValue": 1});
    let rule_with = |group_by: &str| {
        let mut s = base.clone();
        s["groupBy"] = json!(group_by);
        compile(s).unwrap()
    };
    let mut e = event(json!({"plan": "pro", "seats": 3, "obj": {}}));
    let ctx = EventContext::of(&e);
    assert_eq!(
        compile(base.clone()).unwrap().group_key(&ctx),
        Some(String::new())
    );
    assert_eq!(rule_with("user").group_key(&ctx), Some("u1".into()));
    assert_eq!(rule_with("account").group_key(&ctx), Some("g1".into()));
    assert_eq!(
        rule_with("properties.plan").group_key(&ctx),
        Some("pro".into())
    );
    assert_eq!(
        rule_with("properties.seats").group_key(&ctx),
        Some("3".into())
    );
    assert_eq!(rule_with("properties.obj").group_key(&ctx), None);
    e.user_id = None;
    e.anonymous_id = Some("anon".into());
    e.group_id = None;
    let ctx = EventContext::of(&e);
    assert_eq!(rule_with("user").group_key(&ctx), Some("anon".into()));
    assert_eq!(rule_with("account").group_key(&ctx), None);
}

#[test]
fn count_with_field_counts_events_that_have_it() {
    let rule = compile(json!({
        "aggregation": {"function": "count", "field": "properties.coupon", "timeWindow": "1h"}, "triggerValue": 1
    }))
    .unwrap();
    let mut acc = rule.new_accumulator();
    rule.observe(&EventContext::of(&event(json!({"coupon": "X"}))), &mut acc);
    rule.observe(&EventContext::of(&event(json!({}))), &mut acc);
    assert_eq!(acc.value(), Some(1.0));
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let paths = error_paths(json!({
        "source": "Web_App",
        "events": {"names": [""]},
        "conditions": [
            {"field": "teamSize", "operator": ">", "value": "ten"},
            {"field": "user.plan", "operator": "==", "value": "pro"}
        ],
        "aggregation": {"function": "sum", "timeWindow": "90d"},
        "groupBy": "event.nope",
        "triggerValue": 1,
        "for": "a while",
        "repeatInterval": "0s",
        "summary": "{{ value ",
        "webhook": {"url": "ftp://x"}
    }));
    assert_eq!(
        paths,
        [
            "spec.source",
            "spec.events.names[0]",
            "spec.conditions[0].value",
            "spec.conditions[1].field",
            "spec.aggregation.field",
            "spec.aggregation.timeWindow",
            "spec.groupBy",
            "spec.for",
            "spec.repeatInterval",
            "spec.summary",
            "spec.webhook.url",
        ]
    );
}

#[test]
fn names_must_be_kubernetes_names() {
    let spec =
        spec(json!({"aggregation": {"function": "count", "timeWindow": "1h"}, "triggerValue": 1}));
    let err = CompiledRule::compile("Acme Corp", "Rule!", &spec).unwrap_err();
    let paths: Vec<_> = err.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["metadata.namespace", "metadata.name"]);
}

#[test]
fn window_bounds() {
    let with_window = |w: &str| {
        compile(json!({"aggregation": {"function": "count", "timeWindow": w}, "triggerValue": 1}))
    };
    assert_eq!(with_window("30s").unwrap().window, Duration::from_secs(30));
    assert_eq!(
        with_window("30d").unwrap().window,
        Duration::from_secs(30 * 86400)
    );
    assert!(with_window("31d").is_err());
    assert!(with_window("0s").is_err());
}
