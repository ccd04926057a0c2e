//! The dashboards test's data, written through the evaluator's store, and what the key panels
//! must show of it.

use crate::grafana::TimeRange;
use crate::{Results, Row, number, server_time, text};
use chrono::DateTime;
use evaluator::alerting::AlertEventRow;
use evaluator::store::catalog::CatalogBatch;
use evaluator::store::rows::BatchRows;
use evaluator::store::{insert_all, write_batch};
use model::event::EventKind;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const DAY: i64 = 86_400;
/// 2026-01-05 00:00:00 UTC: day 0 of the test data; the dashboards look at days 0 to 6.
pub const DAY0: i64 = 1_767_571_200;
pub const RANGE: TimeRange = TimeRange {
    from: DAY0,
    to: DAY0 + 7 * DAY - 1,
    interval_s: 3600,
};

pub fn at(day: i64, hour: i64, minute: i64) -> i64 {
    DAY0 + day * DAY + hour * 3600 + minute * 60
}

/// Events as the consumer writes them: rows, traits, memberships and the catalog.
#[derive(Default)]
struct Events {
    rows: BatchRows,
    catalog: CatalogBatch,
}

impl Events {
    /// An event of `stream` (`tenant/source`) with `account` as its own groupId (empty: none);
    /// `members` are its properties, or for identify and group calls its traits.
    fn add(
        &mut self,
        kind: EventKind,
        stream: &str,
        user: &str,
        account: &str,
        secs: i64,
        members: Value,
    ) {
        let seq = self.rows.events.len() as u64 + 1;
        let (tenant, source) = stream.split_once('/').expect("tenant/source");
        let name = match kind {
            EventKind::Track => "checkout_completed",
            _ => "Pricing",
        };
        let mut event = tests::track_event(
            tenant,
            source,
            &format!("m{seq}"),
            user,
            name,
            secs * 1000,
            json!({}),
        );
        event.kind = kind;
        if !matches!(kind, EventKind::Track | EventKind::Page) {
            event.name = None;
        }
        event.group_id = (!account.is_empty()).then(|| account.to_string());
        let members = members.as_object().cloned().unwrap_or_default();
        match kind {
            EventKind::Identify | EventKind::Group => event.traits = members,
            _ => event.properties = members,
        }
        self.rows.add(&event, seq);
        let row = self.rows.events.last().cloned().expect("row");
        self.catalog.add(&event, &row);
    }
}

/// acme/web: `checkout_completed` of three accounts each day. g-steady (own groupId) spends
/// 2 × 50; g-jump (its user joined by a group call) 1 × 10, then 5 × 200 on day 6; g-drop 3 ×
/// 100, then 1 × 100 on day 6. acme/mobile: a `Pricing` page a day. globex/web: g-huge
/// jumps from 1 to 3,000,000. One acme checkout before the range; one redelivered copy.
pub async fn seed_events(client: &clickhouse::Client) {
    use EventKind::{Group, Identify, Page, Track};
    let mut e = Events::default();
    let steady = json!({"value": 50, "currency": "EUR"});
    e.add(
        Identify,
        "acme/web",
        "u1",
        "",
        at(0, 7, 0),
        json!({"email": "a@acme.test", "seats": 3}),
    );
    e.add(
        Group,
        "acme/web",
        "u2",
        "g-jump",
        at(0, 8, 0),
        json!({"plan": "pro"}),
    );
    e.add(
        Group,
        "acme/web",
        "u3",
        "g-drop",
        at(0, 8, 1),
        json!({"plan": "team"}),
    );
    e.add(
        Track,
        "acme/web",
        "u1",
        "g-steady",
        at(-3, 10, 0),
        steady.clone(),
    );
    for day in 0..7 {
        e.add(Page, "acme/mobile", "u1", "", at(day, 9, 0), json!({}));
        for minute in [0, 30] {
            e.add(
                Track,
                "acme/web",
                "u1",
                "g-steady",
                at(day, 10, minute),
                steady.clone(),
            );
        }
        let (jumps, jump) = if day == 6 { (5, 200) } else { (1, 10) };
        for minute in 0..jumps {
            e.add(
                Track,
                "acme/web",
                "u2",
                "",
                at(day, 11, minute),
                json!({"value": jump}),
            );
        }
        for minute in 0..if day == 6 { 1 } else { 3 } {
            e.add(
                Track,
                "acme/web",
                "u3",
                "",
                at(day, 12, minute),
                json!({"value": 100}),
            );
        }
    }
    e.add(
        Track,
        "globex/web",
        "u9",
        "g-huge",
        at(5, 11, 0),
        json!({"value": 1}),
    );
    for minute in 0..3 {
        e.add(
            Track,
            "globex/web",
            "u9",
            "g-huge",
            at(6, 11, minute),
            json!({"value": 1e6}),
        );
    }
    write_batch(client, &e.rows, &e.catalog.into_rows())
        .await
        .expect("write batch");
    // A crash between insert and ack stores an event again with a later stream sequence.
    let mut copy = e
        .rows
        .events
        .iter()
        .find(|r| r.tenant == "acme" && r.event_time_ms == at(6, 11, 0) as u64 * 1000)
        .cloned()
        .expect("g-jump checkout");
    copy.stream_seq += 1000;
    insert_all(client, "events", &[copy])
        .await
        .expect("redelivered copy");
}

#[allow(clippy::too_many_arguments)]
fn transition(
    tenant: &str,
    rule: &str,
    group: &str,
    previous: &str,
    state: &str,
    value: f64,
    threshold: f64,
    comparator: &str,
    secs: i64,
) -> AlertEventRow {
    let payload = json!({"tenant": tenant, "source": "web", "rule": rule, "group": group, "notification": state, "value": value, "threshold": threshold, "comparator": comparator});
    AlertEventRow {
        tenant: tenant.into(),
        source: "web".into(),
        rule: rule.into(),
        group_key: group.into(),
        transition_id: format!("trn_{tenant}_{rule}_{group}_{state}_{secs}"),
        state: state.into(),
        previous_state: previous.into(),
        value,
        threshold,
        comparator: comparator.into(),
        at: DateTime::from_timestamp(secs, 0).expect("time"),
        at_ms: secs as u64 * 1000 + 250,
        payload: payload.to_string(),
    }
}

/// acme: big-spenders (> 500) fired and resolved for g-drop, went pending, firing and repeat
/// for g-jump (resolved only after the range); churn-risk (< 50) fires for g-steady, and
/// fired for g-old, resolved with no value (an emptied window). globex: g-huge fires.
pub async fn seed_alerts(client: &clickhouse::Client) {
    let big = |group, previous, state, value, secs| {
        transition(
            "acme",
            "big-spenders",
            group,
            previous,
            state,
            value,
            500.0,
            ">",
            secs,
        )
    };
    let churn = |group, previous, state, value, secs| {
        transition(
            "acme",
            "churn-risk",
            group,
            previous,
            state,
            value,
            50.0,
            "<",
            secs,
        )
    };
    let rows = vec![
        churn("g-old", "inactive", "firing", 20.0, at(1, 9, 0)),
        big("g-drop", "inactive", "firing", 600.0, at(2, 12, 2)),
        churn("g-old", "firing", "resolved", f64::NAN, at(3, 9, 0)),
        big("g-drop", "firing", "resolved", 300.0, at(4, 12, 2)),
        churn("g-steady", "inactive", "firing", 40.0, at(5, 10, 30)),
        big("g-jump", "inactive", "pending", 600.0, at(6, 11, 2)),
        big("g-jump", "pending", "firing", 800.0, at(6, 11, 3)),
        big("g-jump", "firing", "repeat", 1000.0, at(6, 11, 4)),
        big("g-jump", "firing", "resolved", 100.0, at(7, 12, 0)),
        transition(
            "globex",
            "big-spenders",
            "g-huge",
            "inactive",
            "firing",
            3e6,
            500.0,
            ">",
            at(6, 11, 2),
        ),
    ];
    insert_all(client, "alert_events", &rows)
        .await
        .expect("alert events");
    // Recording is retried after a partial failure: the same transition again.
    insert_all(client, "alert_events", &rows[6..7])
        .await
        .expect("retried transition");
}

// ---------------------------------------------------------------------------------------
// What key panels must show.

fn sum_by(rows: &[Row], key: &str, value: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for row in rows {
        *sums.entry(text(row, key)).or_insert(0.0) += number(row, value);
    }
    sums
}

fn find<'a>(rows: &'a [Row], matches: &[(&str, &str)]) -> &'a Row {
    rows.iter()
        .find(|row| {
            matches
                .iter()
                .all(|(column, value)| text(row, column) == *value)
        })
        .unwrap_or_else(|| panic!("no row with {matches:?} in {rows:?}"))
}

fn expect_sums(actual: BTreeMap<String, f64>, expected: &[(&str, f64)]) {
    let expected: BTreeMap<String, f64> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(actual, expected);
}

pub async fn assert_events(http: &reqwest::Client, results: &Results) {
    let f = "events.json";
    let stat = |scenario, panel, column| number(&results.rows(scenario, f, panel)[0], column);
    assert_eq!(
        stat("acme", "Events", "events"),
        54.0,
        "47 web + 7 mobile events in range, the copy once"
    );
    assert_eq!(stat("acme-web", "Events", "events"), 47.0);
    assert_eq!(stat("all", "Events", "events"), 58.0);
    assert_eq!(stat("acme", "Users", "users"), 3.0);
    assert_eq!(stat("acme", "Event names", "event_names"), 4.0);

    let volume = results.rows("acme", f, "Event volume per source");
    expect_sums(
        sum_by(volume, "stream", "events"),
        &[("acme/mobile", 7.0), ("acme/web", 47.0)],
    );
    let hour = server_time(http, at(6, 11, 0)).await;
    let bucket = find(volume, &[("time", &hour), ("stream", "acme/web")]);
    assert_eq!(
        number(bucket, "events"),
        5.0,
        "g-jump's five checkouts in their hour"
    );
    expect_sums(
        sum_by(
            results.rows("all", f, "Event volume per event"),
            "event",
            "events",
        ),
        &[
            ("Pricing", 7.0),
            ("checkout_completed", 48.0),
            ("group", 2.0),
            ("identify", 1.0),
        ],
    );

    let in_range = results.rows("acme", f, "Events in the time range");
    let checkout = find(
        in_range,
        &[("source", "web"), ("event", "checkout_completed")],
    );
    assert_eq!(number(checkout, "events"), 44.0);
    assert_eq!(number(checkout, "users"), 3.0);
    assert_eq!(
        text(checkout, "first_in_range"),
        server_time(http, at(0, 10, 0)).await
    );
    assert_eq!(
        text(checkout, "last_in_range"),
        server_time(http, at(6, 12, 0)).await
    );

    let catalog = results.rows("acme", f, "Event catalog");
    assert_eq!(catalog.len(), 4, "{catalog:?}");
    assert_eq!(results.rows("acme-web", f, "Event catalog").len(), 3);
    let checkout = find(catalog, &[("event", "checkout_completed")]);
    assert_eq!(text(checkout, "kind"), "track");
    assert_eq!(
        number(checkout, "events"),
        45.0,
        "all time: the one before the range too"
    );
    assert_eq!(
        text(checkout, "first_seen"),
        server_time(http, at(-3, 10, 0)).await
    );
    assert_eq!(
        text(checkout, "last_seen"),
        server_time(http, at(6, 12, 0)).await
    );
    assert_eq!(
        text(checkout, "properties"),
        "currency: string, value: number"
    );
    let identify = find(catalog, &[("event", "identify")]);
    assert_eq!(text(identify, "properties"), "email: string, seats: number");
    assert_eq!(number(find(catalog, &[("event", "group")]), "events"), 2.0);
    let value = find(
        results.rows("acme", f, "Properties"),
        &[("event", "checkout_completed"), ("property", "value")],
    );
    assert_eq!(
        (text(value, "type").as_str(), number(value, "seen")),
        ("number", 45.0)
    );
}

pub async fn assert_alerts(http: &reqwest::Client, results: &Results) {
    let f = "alerts.json";
    let rows = |scenario, panel| results.rows(scenario, f, panel);
    assert_eq!(
        number(&rows("acme", "Alerts firing")[0], "firing"),
        2.0,
        "g-jump and g-steady, as of the range's end"
    );
    assert_eq!(number(&rows("all", "Alerts firing")[0], "firing"), 3.0);
    let counts = &rows("acme", "Fired / resolved in range")[0];
    assert_eq!(
        (number(counts, "fired"), number(counts, "resolved")),
        (4.0, 2.0),
        "the retried row once"
    );

    let firing: Vec<(String, String)> = rows("acme", "Firing now")
        .iter()
        .map(|r| (text(r, "rule"), text(r, "group_key")))
        .collect();
    assert_eq!(
        firing,
        [
            ("big-spenders".into(), "g-jump".into()),
            ("churn-risk".into(), "g-steady".into())
        ]
    );
    let jump = &rows("acme", "Firing now")[0];
    assert_eq!(
        text(jump, "firing_since"),
        server_time(http, at(6, 11, 3)).await
    );
    assert_eq!(
        (number(jump, "last_value"), number(jump, "trigger_value")),
        (1000.0, 500.0)
    );

    expect_sums(
        sum_by(rows("acme", "Transitions"), "state", "transitions"),
        &[
            ("firing", 4.0),
            ("pending", 1.0),
            ("repeat", 1.0),
            ("resolved", 2.0),
        ],
    );

    let values = rows("acme", "Value vs trigger");
    assert_eq!(
        values.len(),
        7,
        "every transition in range but the one without a value"
    );
    assert!(
        values
            .iter()
            .all(|r| number(r, "observed").is_finite() && number(r, "trigger").is_finite())
    );
    let proximity = rows("acme", "Proximity to trigger");
    let steady = find(proximity, &[("alert", "acme/churn-risk g-steady")]);
    assert_eq!(
        number(steady, "proximity"),
        125.0,
        "50 / 40: past the trigger of a < rule"
    );
    let repeat = find(
        proximity,
        &[
            ("alert", "acme/big-spenders g-jump"),
            ("time", &server_time(http, at(6, 11, 4)).await),
        ],
    );
    assert_eq!(number(repeat, "proximity"), 200.0);

    let closest: Vec<(String, f64)> = rows("acme", "Closest to trigger")
        .iter()
        .map(|r| (text(r, "group_key"), number(r, "proximity_pct")))
        .collect();
    assert_eq!(
        &closest[..3],
        [
            ("g-jump".into(), 200.0),
            ("g-steady".into(), 125.0),
            ("g-drop".into(), 60.0)
        ]
    );
    assert!(
        closest[3].0 == "g-old" && closest[3].1.is_nan(),
        "{closest:?}"
    );

    let history = rows("acme", "Alert history");
    assert_eq!(
        history.len(),
        8,
        "in range, the retried row once: {history:?}"
    );
    assert_eq!(
        (
            text(&history[0], "group_key").as_str(),
            text(&history[0], "state").as_str()
        ),
        ("g-jump", "repeat")
    );
}

pub async fn assert_movers(http: &reqwest::Client, results: &Results) {
    let f = "top-movers.json";
    assert_eq!(results.options("acme", f, "tenant"), ["acme", "globex"]);
    assert_eq!(results.options("acme", f, "source"), ["mobile", "web"]);
    assert_eq!(
        results.options("acme", f, "event"),
        ["checkout_completed"],
        "track events only"
    );
    assert_eq!(
        results.options("acme", f, "property"),
        ["(count)", "value"],
        "numeric properties only"
    );

    let table = |scenario| -> Vec<(String, f64, f64, f64)> {
        results
            .rows(scenario, f, "Top movers")
            .iter()
            .map(|r| {
                (
                    text(r, "account"),
                    number(r, "last_24h"),
                    number(r, "previous_24h"),
                    number(r, "change"),
                )
            })
            .collect()
    };
    let movers = |rows: &[(&str, f64, f64, f64)]| -> Vec<(String, f64, f64, f64)> {
        rows.iter()
            .map(|(a, l, p, c)| (a.to_string(), *l, *p, *c))
            .collect()
    };
    assert_eq!(
        table("acme"),
        movers(&[
            ("g-jump", 1000.0, 10.0, 990.0),
            ("g-drop", 100.0, 300.0, -200.0),
            ("g-steady", 100.0, 100.0, 0.0)
        ])
    );
    assert_eq!(
        table("acme-count"),
        movers(&[
            ("g-jump", 5.0, 1.0, 4.0),
            ("g-drop", 1.0, 3.0, -2.0),
            ("g-steady", 2.0, 2.0, 0.0)
        ])
    );
    assert_eq!(
        number(&results.rows("acme", f, "Top movers")[0], "change_pct"),
        9900.0
    );
    assert_eq!(table("all")[0], ("g-huge".into(), 3e6, 1.0, 3e6 - 1.0));

    let daily = results.rows("acme", f, "Top 5 movers, daily");
    let last = server_time(http, RANGE.to).await;
    let before = server_time(http, RANGE.to - DAY).await;
    assert_eq!(
        number(
            find(daily, &[("mover", "acme/g-jump"), ("time", &last)]),
            "value"
        ),
        1000.0
    );
    assert_eq!(
        number(
            find(daily, &[("mover", "acme/g-jump"), ("time", &before)]),
            "value"
        ),
        10.0
    );
    expect_sums(
        sum_by(daily, "mover", "value"),
        &[
            ("acme/g-drop", 1900.0),
            ("acme/g-jump", 1060.0),
            ("acme/g-steady", 700.0),
        ],
    );
}
