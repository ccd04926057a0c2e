//! The profile cache: its bound, what a batch marks used, and loading misses from a real
//! ClickHouse.

use super::*;
use crate::engine::Engine;
use crate::engine::tests::{big_spenders_rule, event};
use crate::store::rows::BatchRows;
use model::event::EventKind;
use model::rule::Notification;
use serde_json::json;

fn identify(user: &str, traits: serde_json::Value) -> Event {
    event(EventKind::Identify, user, None, 1_000, traits)
}

fn join(user: &str, account: &str, traits: serde_json::Value) -> Event {
    event(EventKind::Group, user, Some(account), 1_000, traits)
}

#[test]
fn ids_split_into_queries_of_bounded_size() {
    let ids: Vec<String> = (0..20_000).map(|i| format!("user-{i:06}")).collect();
    let parts = chunks(&ids);
    assert!(parts.len() > 1);
    assert_eq!(parts.iter().map(|c| c.len()).sum::<usize>(), ids.len());
    for part in parts {
        assert!(part.iter().map(|id| id.len() + 8).sum::<usize>() <= QUERY_ID_BYTES);
    }
    assert!(chunks(&[]).is_empty());
}

#[test]
fn the_cache_holds_at_most_its_capacity_of_each_kind() {
    let mut traits = Traits::with_capacity(50);
    for i in 0..1_000 {
        traits.learn(&identify(&format!("u{i}"), json!({"plan": "pro"})));
        traits.learn(&join(
            &format!("u{i}"),
            &format!("g{i}"),
            json!({"seats": i}),
        ));
    }
    assert_eq!(traits.len(), (50, 50, 50));
    // The most recent ones are kept, merged per trait.
    traits.learn(&identify("u999", json!({"role": "admin"})));
    let track = event(EventKind::Track, "u999", None, 1_000, json!({}));
    let ctx = traits.context(&track);
    assert_eq!(ctx.account_id, Some("g999"));
    assert_eq!(
        ctx.user_traits.map(|t| t.len()),
        Some(2),
        "plan and role, merged"
    );
    assert_eq!(
        ctx.account_traits.and_then(|t| t.get("seats")),
        Some(&json!(999))
    );
}

#[test]
fn a_batch_marks_its_profiles_used_and_reports_the_evicted_ones() {
    let mut traits = Traits::with_capacity(3);
    for user in ["a", "b", "c"] {
        traits.learn(&join(user, &format!("g-{user}"), json!({"n": 1})));
        traits.learn(&identify(user, json!({"n": 1})));
    }
    // A batch of events by "a": held, so nothing is missing, and "a" is now the most recent.
    let by_a = event(EventKind::Track, "a", None, 1_000, json!({}));
    assert!(traits.missing([&by_a]).is_empty());
    // A fourth user evicts the least recently used, "b", not "a".
    traits.learn(&join("d", "g-d", json!({"n": 1})));
    traits.learn(&identify("d", json!({"n": 1})));
    assert!(traits.missing([&by_a]).is_empty());
    let by_b = event(EventKind::Track, "b", None, 1_000, json!({}));
    assert_eq!(
        traits.missing([&by_b]),
        Missing {
            users: vec!["b".into()],
            memberships: vec!["b".into()],
            accounts: vec![],
        }
    );
    // Its account is found through the membership, once that is loaded.
    let by_b_in_account = event(EventKind::Track, "b", Some("g-b"), 1_000, json!({}));
    assert_eq!(traits.missing([&by_b_in_account]).accounts, ["g-b"]);
}

async fn store(client: &clickhouse::Client, events: &[Event]) {
    let mut rows = BatchRows::default();
    for (seq, event) in events.iter().enumerate() {
        rows.add(event, seq as u64 + 1);
    }
    crate::store::write_batch(client, &rows, &[])
        .await
        .expect("write");
}

/// The example rule over ten qualifying accounts with a cache of two profiles: each track
/// event (no groupId: the account comes from the user's membership) still fires for its
/// account, because the evicted membership and account traits are read from ClickHouse
/// before the event counts. Without loading, the same engine misses most of them.
#[tokio::test]
async fn evicted_profiles_are_loaded_from_clickhouse_before_their_events_count() {
    let (client, _db) = ::tests::clickhouse_database("cs_traits")
        .await
        .expect("clickhouse");
    crate::store::schema::migrate(&client)
        .await
        .expect("migrate");
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let joins: Vec<Event> = (0..10)
        .map(|i| {
            let mut e = join(
                &format!("u{i}"),
                &format!("g{i}"),
                json!({"teamSize": 12, "monthlyCost": 2000}),
            );
            e.event_time = chrono::DateTime::from_timestamp_millis(now as i64 - 60_000).unwrap();
            e
        })
        .collect();
    store(&client, &joins).await;

    let mut loading = Engine::with_trait_capacity(vec![big_spenders_rule()], 2);
    let mut forgetting = Engine::with_trait_capacity(vec![big_spenders_rule()], 2);
    for e in &joins {
        loading.observe(e, now, false);
        forgetting.observe(e, now, false);
    }
    let mut fired = Vec::new();
    let mut fired_without_loading = 0;
    for i in 0..10 {
        let track = event(
            EventKind::Track,
            &format!("u{i}"),
            None,
            now,
            json!({"value": 6000}),
        );
        loading.load_profiles(&client, "acme", &[&track]).await;
        fired.extend(loading.observe(&track, now, true));
        fired_without_loading += forgetting.observe(&track, now, true).len();
    }
    let mut groups: Vec<_> = fired
        .iter()
        .filter(|t| t.change.notification == Some(Notification::Firing))
        .map(|t| t.group.clone())
        .collect();
    groups.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    assert_eq!(groups, expected);
    assert!(
        fired_without_loading <= 2,
        "without loading only cached profiles count: {fired_without_loading}"
    );
    let (users, accounts, memberships) = loading.traits.len();
    assert!(users <= 2 && accounts <= 2 && memberships <= 2);

    // A user with no stored profile costs one lookup: it is remembered as empty.
    let stranger = event(EventKind::Track, "nobody", None, now, json!({"value": 1}));
    assert!(!loading.traits.missing([&stranger]).is_empty());
    loading.load_profiles(&client, "acme", &[&stranger]).await;
    assert!(loading.traits.missing([&stranger]).is_empty());
    assert_eq!(loading.traits.context(&stranger).account_id, None);
}
