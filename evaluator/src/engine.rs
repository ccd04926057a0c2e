//! Streaming rule evaluation for one Source: every event updates the windowed aggregate of
//! each matching rule's group, and the group's alert lifecycle steps on every update and on
//! every tick (so a window that slides down resolves without new events).
//!
//! Windows are in event time relative to the wall clock: a rule over `7d` sees events of the
//! last seven days, late ones included (see `model::rule::Window`). The lifecycle (`for`,
//! `repeatInterval`) runs on the wall clock. Conditions on `user.traits` / `account.traits`
//! read the latest traits, merged per trait as Segment profiles are, from a bounded cache
//! (`crate::traits`: what a miss does is explained there).

use crate::traits::Traits;
use model::event::Event;
use model::rule::{AlertState, Change, CompiledRule, Phase, Window};
use std::collections::HashMap;

#[derive(Debug)]
struct Group {
    window: Window,
    state: AlertState,
}

/// A lifecycle change of one (rule, group), with what the notification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub rule: String,
    pub group: String,
    pub change: Change,
    pub state: AlertState,
    pub value: Option<f64>,
    pub at_ms: u64,
}

pub struct Engine {
    rules: Vec<CompiledRule>,
    /// Each rule's groups, by the rule's index: looked up by `&str`, no key copied per event.
    groups: Vec<HashMap<String, Group>>,
    /// The rules that may admit an event of a name (those listing it and those listing no
    /// names), in rule order, so an event is checked against those only.
    by_name: HashMap<String, Vec<usize>>,
    /// The rules listing no event names: all that may admit an event of another name.
    unnamed: Vec<usize>,
    pub traits: Traits,
}

impl Engine {
    pub fn new(rules: Vec<CompiledRule>) -> Self {
        Self::with_traits(rules, Traits::default())
    }

    /// An engine whose profile cache holds at most `capacity` entries per kind.
    pub fn with_trait_capacity(rules: Vec<CompiledRule>, capacity: usize) -> Self {
        Self::with_traits(rules, Traits::with_capacity(capacity))
    }

    fn with_traits(rules: Vec<CompiledRule>, traits: Traits) -> Self {
        let unnamed: Vec<usize> = (0..rules.len())
            .filter(|i| rules[*i].filter.names.is_empty())
            .collect();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, rule) in rules.iter().enumerate() {
            for name in &rule.filter.names {
                by_name.entry(name.clone()).or_default().push(index);
            }
        }
        for indices in by_name.values_mut() {
            indices.extend(&unnamed);
            indices.sort_unstable();
            indices.dedup();
        }
        Self {
            groups: rules.iter().map(|_| HashMap::new()).collect(),
            rules,
            by_name,
            unnamed,
            traits,
        }
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Groups held across all rules.
    pub fn group_count(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }

    /// Per rule: (name, firing groups, pending groups), for the AlertRule status.
    pub fn phase_counts(&self) -> Vec<(String, u32, u32)> {
        let count = |groups: &HashMap<String, Group>, phase| {
            groups.values().filter(|g| g.state.phase == phase).count() as u32
        };
        self.rules
            .iter()
            .zip(&self.groups)
            .map(|(rule, groups)| {
                let firing = count(groups, Phase::Firing);
                (rule.name.clone(), firing, count(groups, Phase::Pending))
            })
            .collect()
    }

    /// Restores a group's lifecycle state (from the alert-state store) before events flow.
    pub fn restore(&mut self, rule: &str, group: &str, state: AlertState) {
        if let Some(index) = self.rules.iter().position(|r| r.name == rule) {
            let window = self.rules[index].new_window();
            self.groups[index].insert(group.to_string(), Group { window, state });
        }
    }

    /// Loads the profiles `events` need that the cache lacks, before they are counted (see
    /// `crate::traits`). Without rules nothing reads profiles, so nothing is loaded. A failure
    /// is logged and the events are counted with the profiles at hand.
    pub async fn load_profiles(
        &mut self,
        client: &clickhouse::Client,
        tenant: &str,
        events: &[&Event],
    ) {
        if self.rules.is_empty() {
            return;
        }
        let loaded = self
            .traits
            .load_missing(client, tenant, events.iter().copied())
            .await;
        if let Err(error) = loaded {
            tracing::warn!(%error, tenant, "loading profiles failed; counting with those in memory");
        }
    }

    /// Counts one event and returns the transitions it caused. With `notify` false (a state
    /// rebuild replaying stored events) windows fill but lifecycles do not step.
    pub fn observe(&mut self, event: &Event, now_ms: u64, notify: bool) -> Vec<Transition> {
        self.traits.learn(event);
        let at_ms = u64::try_from(event.event_time.timestamp_millis()).unwrap_or(0);
        let mut transitions = Vec::new();
        let ctx = self.traits.context(event);
        let candidates = event
            .name
            .as_deref()
            .and_then(|name| self.by_name.get(name))
            .unwrap_or(&self.unnamed);
        for &index in candidates {
            let (rule, groups) = (&self.rules[index], &mut self.groups[index]);
            if !rule.matches(&ctx) {
                continue;
            }
            let Some(key) = rule.group_key(&ctx) else {
                continue;
            };
            if !groups.contains_key(&key) {
                let window = rule.new_window();
                let state = AlertState::default();
                groups.insert(key.clone(), Group { window, state });
            }
            let Some(group) = groups.get_mut(&key) else {
                continue;
            };
            let counted = group
                .window
                .observe(at_ms, now_ms, |acc| rule.observe(&ctx, acc));
            if counted
                && notify
                && let Some(transition) = step(rule, &key, group, now_ms)
            {
                transitions.push(transition);
            }
        }
        transitions
    }

    /// Re-evaluates every group at `now_ms`; forgets inactive groups whose window emptied.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Transition> {
        let mut transitions = Vec::new();
        for (rule, groups) in self.rules.iter().zip(self.groups.iter_mut()) {
            for (key, group) in groups.iter_mut() {
                transitions.extend(step(rule, key, group, now_ms));
            }
            groups.retain(|_, g| !(g.window.is_empty() && g.state.phase == Phase::Inactive));
        }
        transitions
    }

    /// Ends every alert of a rule being removed or replaced: firing groups resolve, pending
    /// ones go inactive, and the rule's groups are forgotten.
    pub fn retire(&mut self, rule: &str, now_ms: u64) -> Vec<Transition> {
        let Some(index) = self.rules.iter().position(|r| r.name == rule) else {
            return Vec::new();
        };
        let mut transitions = Vec::new();
        for (key, mut group) in self.groups[index].drain() {
            let value = group.state.last_value;
            if let Some(change) = group.state.step(false, value, now_ms, 0, u64::MAX) {
                transitions.push(Transition {
                    rule: rule.to_string(),
                    group: key,
                    change,
                    state: group.state,
                    value,
                    at_ms: now_ms,
                });
            }
        }
        transitions
    }
}

/// Steps a group's lifecycle with its window's value at `now_ms`.
fn step(rule: &CompiledRule, key: &str, group: &mut Group, now_ms: u64) -> Option<Transition> {
    let value = group.window.value(now_ms);
    let for_ms = rule.for_duration.as_millis() as u64;
    let repeat_ms = rule.repeat_interval.as_millis() as u64;
    let change = group
        .state
        .step(rule.fires(value), value, now_ms, for_ms, repeat_ms)?;
    Some(Transition {
        rule: rule.name.clone(),
        group: key.to_string(),
        change,
        state: group.state,
        value,
        at_ms: now_ms,
    })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
pub(crate) mod tests;
