//! Generated product data for end-to-end tests, and the alerts it must cause, computed here
//! with plain arithmetic (not the engine's code).
//!
//! Per account: `identify` and `group` calls (traits `teamSize`, `monthlyCost`) a little more
//! than seven days ago, then `checkout_completed` tracks with integer `value`s (so sums are
//! exact in any order) and `page` views spread over the last seven days, at least an hour
//! inside the window so nothing slides out while a test runs. The rule this data is meant for
//! is [`rule_yaml`]: accounts with `teamSize > 10` and `monthlyCost >= 1000` whose seven-day
//! sum of `value` exceeds the threshold.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const DAY_MS: i64 = 86_400_000;
const TEAM_SIZES: [u64; 5] = [3, 8, 12, 25, 60];
const MONTHLY_COSTS: [u64; 5] = [200, 900, 1000, 2500, 8000];
const SPEND: [u64; 5] = [1, 2, 4, 6, 10];

pub struct Dataset {
    /// Segment Spec messages, in sending order (profiles first).
    pub messages: Vec<Value>,
    /// Accounts the rule must alert on.
    pub expected: BTreeSet<String>,
    /// Every account's seven-day sum of `value`.
    pub sums: BTreeMap<String, u64>,
    /// For expected accounts: the running sum, in sending order, at the event that first
    /// exceeds the threshold (the value a firing notification carries when events are
    /// evaluated in order as they arrive).
    pub tipping: BTreeMap<String, u64>,
}

/// A deterministic data set for `accounts` accounts around `now_ms`. Message ids are
/// `m-<n>` (the same in every data set of the same size, so two tenants sending the same ids
/// show that de-duplication is per tenant).
pub fn generate(seed: u64, accounts: usize, threshold: u64, now_ms: i64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut profiles = Vec::new();
    let mut activity = Vec::new();
    let mut sums = BTreeMap::new();
    let mut expected = BTreeSet::new();
    let mut tipping = BTreeMap::new();
    for a in 0..accounts {
        let account = format!("acct-{a:04}");
        let team = TEAM_SIZES[rng.random_range(0..TEAM_SIZES.len())];
        let cost = MONTHLY_COSTS[rng.random_range(0..MONTHLY_COSTS.len())];
        let users: Vec<String> = (0..rng.random_range(1..=3))
            .map(|u| format!("{account}-user-{u}"))
            .collect();
        for user in &users {
            let at = now_ms - 7 * DAY_MS - rng.random_range(60_000..3_600_000);
            profiles.push(
                json!({"type": "identify", "userId": user, "timestamp": iso(at),
                "traits": {"email": format!("{user}@example.com")}}),
            );
            profiles.push(json!({"type": "group", "userId": user, "groupId": account,
                "timestamp": iso(at), "traits": {"name": account, "teamSize": team, "monthlyCost": cost}}));
        }
        let spend = SPEND[rng.random_range(0..SPEND.len())];
        let mut sum = 0;
        for _ in 0..rng.random_range(3..=12) {
            let at = now_ms - rng.random_range(120_000..7 * DAY_MS - 3_600_000);
            let value = rng.random_range(50..900) * spend;
            sum += value;
            if sum > threshold && !tipping.contains_key(&account) {
                tipping.insert(account.clone(), sum);
            }
            let user = &users[rng.random_range(0..users.len())];
            activity.push(
                json!({"type": "track", "userId": user, "event": "checkout_completed",
                "timestamp": iso(at), "properties": {"value": value, "currency": "USD"}}),
            );
            activity.push(json!({"type": "page", "userId": user, "name": "Pricing",
                "timestamp": iso(at - 120_000)}));
        }
        if team > 10 && cost >= 1000 && sum > threshold {
            expected.insert(account.clone());
        } else {
            tipping.remove(&account);
        }
        sums.insert(account, sum);
    }
    let mut messages = profiles;
    messages.extend(activity);
    for (n, message) in messages.iter_mut().enumerate() {
        message["messageId"] = json!(format!("m-{n:06}"));
    }
    Dataset {
        messages,
        expected,
        sums,
        tipping,
    }
}

/// One account, `acct-crash`, that qualifies (teamSize 12, monthlyCost 1000) through a
/// `group` call eight days before `now_ms`, and spends 3 × 2000 in the last three hours: the
/// rule alerts exactly once, with value 6000, when the third track counts.
pub fn single_alert(now_ms: i64) -> (Value, Vec<Value>) {
    let group = json!({"type": "group", "userId": "u1", "groupId": "acct-crash", "messageId": "g1",
        "timestamp": iso(now_ms - 8 * DAY_MS), "traits": {"teamSize": 12, "monthlyCost": 1000}});
    let tracks = (0..3)
        .map(|i| {
            json!({"type": "track", "userId": "u1", "event": "checkout_completed",
                "messageId": format!("t{i}"), "timestamp": iso(now_ms - (i + 1) * 3_600_000),
                "properties": {"value": 2000}})
        })
        .collect();
    (group, tracks)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The rule the data set is generated for, as standalone AlertRule YAML.
pub fn rule_yaml(tenant: &str, source: &str, name: &str, threshold: u64, url: &str) -> String {
    format!(
        "apiVersion: customersignal.io/v1alpha1
kind: AlertRule
metadata: {{name: {name}, namespace: {tenant}}}
spec:
  source: {source}
  events: {{names: [checkout_completed]}}
  conditions:
    - {{field: teamSize, operator: '>', value: 10}}
    - {{field: monthlyCost, operator: '>=', value: 1000}}
  aggregation: {{field: value, function: sum, timeWindow: 7d}}
  groupBy: account
  triggerValue: {threshold}
  webhook:
    url: {url}
    secretRef: {{name: hook-secret, key: signing-secret}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_has_alerts_and_non_alerts() {
        let a = generate(7, 60, 5000, 1_800_000_000_000);
        let b = generate(7, 60, 5000, 1_800_000_000_000);
        assert_eq!(a.messages, b.messages);
        assert!(!a.expected.is_empty() && a.expected.len() < 60);
        // Some accounts are over the threshold but excluded by their traits.
        let over = a.sums.values().filter(|s| **s > 5000).count();
        assert!(over > a.expected.len(), "{over} over the threshold");
        assert!(
            a.expected
                .iter()
                .all(|acct| a.tipping[acct] > 5000 && a.tipping[acct] <= a.sums[acct])
        );
        assert_eq!(a.tipping.len(), a.expected.len());
        assert_ne!(
            generate(8, 60, 5000, 1_800_000_000_000).expected,
            a.expected
        );
    }
}
