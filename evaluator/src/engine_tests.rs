use super::*;
use model::event::{EventKind, JsonObject};
use model::rule::{Notification, Phase};
use model::standalone::Catalog;
use serde_json::json;
use std::path::Path;

const DAY: u64 = 86_400_000;
const NOW: u64 = 1_800_000_000_000;

/// The example rule: accounts with teamSize > 10 and monthlyCost >= 1000 whose 7-day sum of
/// `value` exceeds 5000.
pub(crate) fn big_spenders_rule() -> CompiledRule {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let catalog = Catalog::load(&examples);
    catalog
        .rules
        .iter()
        .find(|r| r.compiled.name == "big-spenders")
        .expect("rule")
        .compiled
        .clone()
}

fn big_spenders() -> Engine {
    Engine::new(vec![big_spenders_rule()])
}

pub(crate) fn event(
    kind: EventKind,
    user: &str,
    account: Option<&str>,
    at_ms: u64,
    value: serde_json::Value,
) -> Event {
    let mut e = ::tests::track_event(
        "acme",
        "web",
        &format!("m-{at_ms}-{user}"),
        user,
        "checkout_completed",
        at_ms as i64,
        value.clone(),
    );
    e.kind = kind;
    e.group_id = account.map(str::to_owned);
    if kind != EventKind::Track {
        e.name = None;
        e.traits = value.as_object().cloned().unwrap_or_default();
        e.properties = JsonObject::new();
    }
    e
}

fn notifications(transitions: &[Transition]) -> Vec<(String, Option<Notification>)> {
    transitions
        .iter()
        .map(|t| (t.group.clone(), t.change.notification))
        .collect()
}

#[test]
fn the_example_rule_fires_once_per_qualifying_account_and_resolves_when_events_slide_out() {
    let mut engine = big_spenders();
    // g-big qualifies; g-small has a small team; g-cheap pays too little.
    engine.observe(
        &event(
            EventKind::Group,
            "u1",
            Some("g-big"),
            NOW - 8 * DAY,
            json!({"teamSize": 12, "monthlyCost": 1000}),
        ),
        NOW,
        true,
    );
    engine.observe(
        &event(
            EventKind::Group,
            "u2",
            Some("g-small"),
            NOW - 8 * DAY,
            json!({"teamSize": 4, "monthlyCost": 5000}),
        ),
        NOW,
        true,
    );
    engine.observe(
        &event(
            EventKind::Group,
            "u3",
            Some("g-cheap"),
            NOW - 8 * DAY,
            json!({"teamSize": 40, "monthlyCost": 999}),
        ),
        NOW,
        true,
    );
    let mut fired = Vec::new();
    for day in 0..6u64 {
        for user in ["u1", "u2", "u3"] {
            // Track events carry no groupId: the account comes from the user's group call.
            let at = NOW - (6 - day) * DAY;
            fired.extend(engine.observe(
                &event(EventKind::Track, user, None, at, json!({"value": 1000})),
                NOW,
                true,
            ));
        }
    }
    assert_eq!(
        notifications(&fired),
        [("g-big".to_string(), Some(Notification::Firing))]
    );
    assert_eq!(fired[0].value, Some(6000.0));
    assert_eq!(fired[0].state.phase, Phase::Firing);

    // Nothing more while it keeps firing (repeat interval 4h not reached).
    assert!(engine.tick(NOW + 60_000).is_empty());
    // Two days (and more than one 84-minute bucket) later the two oldest days slid out:
    // 4000 <= 5000 resolves.
    let resolved = engine.tick(NOW + 2 * DAY + 3 * 3_600_000);
    assert_eq!(
        notifications(&resolved),
        [("g-big".to_string(), Some(Notification::Resolved))]
    );
    assert_eq!(resolved[0].value, Some(4000.0));
}

#[test]
fn replay_fills_windows_without_notifying_and_restored_state_does_not_refire() {
    // As on start: the lifecycle comes back from the state store, then history is replayed.
    let mut engine = big_spenders();
    let mut firing = AlertState::default();
    firing.step(true, Some(6000.0), NOW - 1000, 0, 4 * 3600 * 1000);
    engine.restore("big-spenders", "g1", firing);
    let traits = json!({"teamSize": 12, "monthlyCost": 2000});
    let mut history = vec![event(EventKind::Group, "u1", Some("g1"), NOW - DAY, traits)];
    history.extend((0..6).map(|i| {
        event(
            EventKind::Track,
            "u1",
            Some("g1"),
            NOW - DAY + i,
            json!({"value": 1000}),
        )
    }));
    for e in &history {
        assert!(
            engine.observe(e, NOW, false).is_empty(),
            "replay never notifies"
        );
    }
    assert!(
        engine.tick(NOW).is_empty(),
        "already firing: no second Firing notification"
    );
    // Without the restored state the same history would fire: the check above can fail.
    let mut fresh = big_spenders();
    for e in &history {
        fresh.observe(e, NOW, false);
    }
    assert_eq!(
        notifications(&fresh.tick(NOW)),
        [("g1".to_string(), Some(Notification::Firing))]
    );
}

#[test]
fn inactive_groups_with_empty_windows_are_forgotten() {
    let mut engine = big_spenders();
    engine.observe(
        &event(
            EventKind::Group,
            "u1",
            Some("g1"),
            NOW,
            json!({"teamSize": 12, "monthlyCost": 2000}),
        ),
        NOW,
        true,
    );
    engine.observe(
        &event(
            EventKind::Track,
            "u1",
            Some("g1"),
            NOW,
            json!({"value": 10}),
        ),
        NOW,
        true,
    );
    assert_eq!(engine.group_count(), 1);
    engine.tick(NOW + 8 * DAY);
    assert_eq!(engine.group_count(), 0);
}

#[test]
fn each_event_meets_the_rules_that_may_admit_its_name_in_rule_order() {
    use model::rule::{AggregateFunction, EventFilter, GroupBy};
    let counting = |name: &str, names: &[&str]| {
        let mut rule = big_spenders_rule();
        rule.name = name.into();
        rule.filter = EventFilter {
            names: names.iter().map(|n| n.to_string()).collect(),
            kinds: Vec::new(),
        };
        rule.conditions.clear();
        rule.function = AggregateFunction::Count;
        rule.field = None;
        rule.group_by = GroupBy::Rule;
        rule.threshold = 0.0;
        rule
    };
    let mut engine = Engine::new(vec![
        counting("every-event", &[]),
        big_spenders_rule(),
        counting("signups", &["signup"]),
        counting("any-checkout", &["checkout_completed"]),
    ]);
    let fired = |transitions: Vec<Transition>| -> Vec<String> {
        transitions.into_iter().map(|t| t.rule).collect()
    };
    let traits = json!({"teamSize": 12, "monthlyCost": 2000});
    let join = event(EventKind::Group, "u1", Some("g1"), NOW, traits);
    assert_eq!(fired(engine.observe(&join, NOW, true)), ["every-event"]);
    let checkout = event(EventKind::Track, "u1", None, NOW, json!({"value": 6000}));
    assert_eq!(
        fired(engine.observe(&checkout, NOW, true)),
        ["big-spenders", "any-checkout"]
    );
    let mut signup = event(EventKind::Track, "u2", None, NOW, json!({}));
    signup.name = Some("signup".into());
    assert_eq!(fired(engine.observe(&signup, NOW, true)), ["signups"]);
    assert_eq!(engine.group_count(), 4);
}
