//! Rule evaluation end to end: events through JetStream and ClickHouse into the engine, alert
//! state in KV, transitions in `alert_events`, and signed webhooks to a real receiver.

mod support;

use model::event::{Event, EventKind};
use model::rule::Notification;
use serde_json::{Value, json};
use std::time::Duration;
use support::TestEvaluator;
use tests::nats_server::{NatsServer, free_port};
use tests::receiver::Receiver;
use tests::{eventually, publish_events, track_event};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The shared test receiver (tests::receiver), listening, for hook `growth`.
async fn receiver(port: u16) -> Receiver {
    let mut receiver = Receiver::new(port, &[("growth", SECRET)]);
    receiver.up().await;
    receiver
}

fn config(port: u16) -> String {
    format!(
        "apiVersion: customersignal.io/v1alpha1
kind: Source
metadata: {{name: web, namespace: acme}}
spec: {{retentionDays: 3650}}
---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: big-spenders, namespace: acme}}
spec:
  source: web
  events: {{names: [checkout_completed]}}
  conditions:
    - {{field: teamSize, operator: '>', value: 10}}
    - {{field: monthlyCost, operator: '>=', value: 1000}}
  aggregation: {{field: value, function: sum, timeWindow: 7d}}
  groupBy: account
  triggerValue: 5000
  summary: 'Account {{{{ group }}}} spent {{{{ value }}}}'
  webhook:
    url: http://127.0.0.1:{port}/hooks/growth
    secretRef: {{name: growth-webhook, key: signing-secret}}
"
    )
}

fn group_call(user: &str, account: &str, at_ms: i64, traits: Value) -> Event {
    let mut event = track_event(
        "acme",
        "web",
        &format!("grp-{user}"),
        user,
        "",
        at_ms,
        json!({}),
    );
    event.kind = EventKind::Group;
    event.name = None;
    event.group_id = Some(account.into());
    event.traits = traits.as_object().cloned().unwrap();
    event
}

#[tokio::test]
async fn the_example_rule_fires_once_per_qualifying_account_and_not_again_after_a_restart() {
    let port = free_port();
    let received = receiver(port).await;
    let secrets = std::env::temp_dir().join(tests::unique("cs-secrets"));
    std::fs::create_dir_all(secrets.join("acme/growth-webhook")).unwrap();
    std::fs::write(secrets.join("acme/growth-webhook/signing-secret"), SECRET).unwrap();
    let secrets_arg = secrets.display().to_string();
    let extra = [
        "--secrets-dir",
        secrets_arg.as_str(),
        "--reload-interval",
        "200ms",
    ];
    let database = tests::unique("cs_alerting");
    let evaluator = TestEvaluator::start_full(
        NatsServer::start(),
        tests::clickhouse_url(),
        &config(port),
        database.clone(),
        &extra,
    )
    .await;
    let js = evaluator.jetstream().await;

    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    let mut events = vec![
        group_call(
            "u-big",
            "g-big",
            now - 8 * day,
            json!({"teamSize": 12, "monthlyCost": 1000}),
        ),
        group_call(
            "u-small",
            "g-small",
            now - 8 * day,
            json!({"teamSize": 4, "monthlyCost": 5000}),
        ),
        group_call(
            "u-cheap",
            "g-cheap",
            now - 8 * day,
            json!({"teamSize": 40, "monthlyCost": 999}),
        ),
    ];
    for d in 0..6i64 {
        for user in ["u-big", "u-small", "u-cheap"] {
            events.push(track_event(
                "acme",
                "web",
                &format!("{user}-{d}"),
                user,
                "checkout_completed",
                now - (6 - d) * day,
                json!({"value": 1000}),
            ));
        }
    }
    publish_events(&js, &events).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            !received.deliveries().is_empty()
        })
        .await,
        "no webhook arrived"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let got = received.deliveries();
        assert_eq!(
            got.len(),
            1,
            "exactly one notification: {:?}",
            got.iter()
                .map(|d| d.body["group"].clone())
                .collect::<Vec<_>>()
        );
        let body = &got[0].body;
        assert_eq!(body["group"], json!("g-big"));
        assert_eq!(body["state"], json!("firing"));
        assert_eq!(body["value"], json!(6000.0));
        assert_eq!(body["summary"], json!("Account g-big spent 6000.0"));
        // Signed with the rule's secret (checked by the receiver), id stable per transition.
        assert_eq!(got[0].verified, Ok(()));
        assert!(got[0].webhook_id.starts_with("trn_"));
    }
    let firing: u64 = evaluator
        .clickhouse
        .query("SELECT count() FROM alert_events FINAL WHERE rule = 'big-spenders' AND group_key = 'g-big' AND state = 'firing'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(firing, 1);

    // Backtest over the same stored history agrees with the live evaluation.
    let catalog = model::standalone::Catalog::load(&evaluator.dir);
    let from = (now - 8 * day) as u64;
    let findings =
        evaluator::backtest::run(&evaluator.clickhouse, &catalog, from, now as u64 + 60_000)
            .await
            .unwrap();
    // Live saw the whole week at once; the backtest replays it over a simulated day, so it
    // also re-notifies every 4 h (repeatInterval) after firing. Compare the transitions.
    let found: Vec<(&str, &str, Notification, Option<f64>)> = findings
        .iter()
        .filter(|f| f.notification != Notification::Repeat)
        .map(|f| (f.rule.as_str(), f.group.as_str(), f.notification, f.value))
        .collect();
    assert_eq!(
        found,
        [("big-spenders", "g-big", Notification::Firing, Some(6000.0))]
    );
    assert!(evaluator::backtest::render(&findings).contains("g-big"));

    // Restart on the same NATS and database: state comes back, nothing fires twice.
    let (nats, database) = evaluator.stop_keep_nats().await;
    let evaluator = TestEvaluator::start_full(
        nats,
        tests::clickhouse_url(),
        &config(port),
        database,
        &extra,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received.deliveries().len(), 1, "no re-fire after restart");

    // Removing the rule from the configuration resolves its open alert, without a restart.
    let source_only = config(port)
        .split("---")
        .next()
        .unwrap_or_default()
        .to_string();
    std::fs::write(evaluator.dir.join("config.yaml"), source_only).unwrap();
    let resolved = eventually(Duration::from_secs(15), || async {
        received.deliveries().len() == 2
    })
    .await;
    assert!(
        resolved,
        "no resolved notification after the rule was removed"
    );
    {
        let got = received.deliveries();
        assert_eq!(got[1].body["notification"], json!("resolved"));
        assert_eq!(got[1].body["group"], json!("g-big"));
        assert!(got[1].body["endsAt"].is_string());
        assert_eq!(got[1].verified, Ok(()));
    }
    evaluator.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(secrets);
}

/// One rule per aggregation function and comparator, plus `for` and `repeatInterval`.
fn functions_config(port: u16) -> String {
    let rule = |name: &str, aggregation: &str, trigger: &str, extra: &str| {
        format!(
            "---
apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: {name}, namespace: acme}}
spec:
  source: web
  aggregation: {aggregation}
  groupBy: user
  {trigger}
  {extra}
  webhook: {{url: 'http://127.0.0.1:{port}/hooks/growth'}}
"
        )
    };
    [
        "apiVersion: customersignal.io/v1alpha1\nkind: Source\nmetadata: {name: web, namespace: acme}\nspec: {retentionDays: 3650}\n".to_string(),
        rule("r-count", "{function: count, timeWindow: 1h}", "triggerValue: 2", ""),
        rule("r-sum", "{function: sum, field: properties.v, timeWindow: 1h}", "triggerValue: 10\n  comparator: '>='", ""),
        rule("r-avg", "{function: avg, field: properties.v, timeWindow: 1h}", "triggerValue: 3\n  comparator: '<'", ""),
        rule("r-min", "{function: min, field: properties.v, timeWindow: 1h}", "triggerValue: 1\n  comparator: '<='", ""),
        rule("r-max", "{function: max, field: properties.v, timeWindow: 1h}", "triggerValue: 7\n  comparator: '=='", ""),
        rule("r-distinct", "{function: count_distinct, field: properties.sku, timeWindow: 1h}", "triggerValue: 0\n  comparator: '!='", ""),
        rule("r-for", "{function: count, timeWindow: 1h}", "triggerValue: 0", "for: 2s"),
        rule("r-repeat", "{function: count, timeWindow: 1h}", "triggerValue: 0", "repeatInterval: 1s"),
    ]
    .concat()
}

#[tokio::test]
async fn every_function_comparator_for_and_repeat_end_to_end() {
    let port = free_port();
    let received = receiver(port).await;
    let evaluator = TestEvaluator::start_full(
        NatsServer::start(),
        tests::clickhouse_url(),
        &functions_config(port),
        tests::unique("cs_functions"),
        &[],
    )
    .await;
    let js = evaluator.jetstream().await;
    let now = chrono::Utc::now().timestamp_millis();
    let events: Vec<Event> = [(1, "a"), (2, "b"), (7, "a")]
        .iter()
        .enumerate()
        .map(|(i, (v, sku))| {
            track_event(
                "acme",
                "web",
                &format!("f-{i}"),
                "u1",
                "x",
                now - 60_000 + i as i64,
                json!({"v": v, "sku": sku}),
            )
        })
        .collect();
    publish_events(&js, &events).await.unwrap();

    let notified = |rule: &'static str, kind: &'static str| {
        let received = &received;
        move || async move {
            received
                .deliveries()
                .iter()
                .any(|d| d.body["rule"] == json!(rule) && d.body["notification"] == json!(kind))
        }
    };
    for rule in ["r-count", "r-sum", "r-min", "r-max", "r-distinct", "r-for"] {
        assert!(
            eventually(Duration::from_secs(20), notified(rule, "firing")).await,
            "{rule} did not fire"
        );
    }
    assert!(
        eventually(Duration::from_secs(20), notified("r-repeat", "repeat")).await,
        "r-repeat never repeated"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got: Vec<Value> = received.deliveries().into_iter().map(|d| d.body).collect();
    // Evaluated per event: avg is 1 (< 3) after the first event, then 3.33: fired, resolved.
    let avg: Vec<&Value> = got
        .iter()
        .filter(|b| b["rule"] == json!("r-avg"))
        .map(|b| &b["notification"])
        .collect();
    assert_eq!(avg, [&json!("firing"), &json!("resolved")]);
    for rule in ["r-count", "r-sum", "r-min", "r-max", "r-distinct", "r-for"] {
        let firing = got
            .iter()
            .filter(|b| b["rule"] == json!(rule) && b["notification"] == json!("firing"))
            .count();
        assert_eq!(firing, 1, "{rule} fired {firing} times");
    }
    // `for: 2s` went through pending first.
    let states: Vec<String> = evaluator
        .clickhouse
        .query("SELECT state FROM alert_events WHERE rule = 'r-for' ORDER BY at_ms")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(states[..2], ["pending".to_string(), "firing".to_string()]);
    evaluator.stop().await.unwrap();
}
