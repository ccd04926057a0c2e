//! Streaming rule evaluation for one Source: every event updates the windowed aggregate of
//! each matching rule's group, and the group's alert lifecycle steps on every update and on
//! every tick (so a window that slides down resolves without new events).
//!
//! Windows are in event time relative to the wall clock: a rule over `7d` sees events of the
//! last seven days, late ones included (see `model::rule::Window`). The lifecycle (`for`,
//! `repeatInterval`) runs on the wall clock. Conditions on `user.traits` / `account.traits`
//! read the latest traits this engine has seen, merged per trait as Segment profiles are.

use model::event::{Event, EventKind, JsonObject};
use model::rule::{AlertState, Change, CompiledRule, EventContext, Phase, Window};
use std::collections::HashMap;

/// The traits and account memberships seen so far.
#[derive(Debug, Default)]
pub struct Traits {
    users: HashMap<String, JsonObject>,
    accounts: HashMap<String, JsonObject>,
    /// A user's latest account (from `group` calls).
    membership: HashMap<String, String>,
}

impl Traits {
    pub fn learn(&mut self, event: &Event) {
        match (event.kind, event.user_key(), event.group_id.as_deref()) {
            (EventKind::Identify, Some(user), _) => {
                let traits = self.users.entry(user.to_string()).or_default();
                traits.extend(event.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            (EventKind::Group, user, Some(account)) => {
                let traits = self.accounts.entry(account.to_string()).or_default();
                traits.extend(event.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(user) = user {
                    self.membership
                        .insert(user.to_string(), account.to_string());
                }
            }
            _ => {}
        }
    }

    /// What a rule sees of `event`: its account (own groupId, else its user's latest
    /// account) and the latest traits of both.
    pub fn context<'a>(&'a self, event: &'a Event) -> EventContext<'a> {
        let account = event.group_id.as_deref().or_else(|| {
            event
                .user_key()
                .and_then(|u| self.membership.get(u))
                .map(String::as_str)
        });
        EventContext {
            event,
            account_id: account,
            user_traits: event.user_key().and_then(|u| self.users.get(u)),
            account_traits: account.and_then(|a| self.accounts.get(a)),
        }
    }
}

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
    groups: HashMap<(usize, String), Group>,
    pub traits: Traits,
}

impl Engine {
    pub fn new(rules: Vec<CompiledRule>) -> Self {
        Self {
            rules,
            groups: HashMap::new(),
            traits: Traits::default(),
        }
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Restores a group's lifecycle state (from the alert-state store) before events flow.
    pub fn restore(&mut self, rule: &str, group: &str, state: AlertState) {
        if let Some(index) = self.rules.iter().position(|r| r.name == rule) {
            let window = self.rules[index].new_window();
            self.groups
                .insert((index, group.to_string()), Group { window, state });
        }
    }

    /// Counts one event and returns the transitions it caused. With `notify` false (a state
    /// rebuild replaying stored events) windows fill but lifecycles do not step.
    pub fn observe(&mut self, event: &Event, now_ms: u64, notify: bool) -> Vec<Transition> {
        self.traits.learn(event);
        let at_ms = u64::try_from(event.event_time.timestamp_millis()).unwrap_or(0);
        let mut touched = Vec::new();
        let ctx = self.traits.context(event);
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.matches(&ctx) {
                continue;
            }
            let Some(key) = rule.group_key(&ctx) else {
                continue;
            };
            let group = self
                .groups
                .entry((index, key.clone()))
                .or_insert_with(|| Group {
                    window: rule.new_window(),
                    state: AlertState::default(),
                });
            if group
                .window
                .observe(at_ms, now_ms, |acc| rule.observe(&ctx, acc))
            {
                touched.push((index, key));
            }
        }
        if !notify {
            return Vec::new();
        }
        touched
            .into_iter()
            .filter_map(|(index, key)| self.step(index, &key, now_ms))
            .collect()
    }

    /// Re-evaluates every group at `now_ms`; forgets inactive groups whose window emptied.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Transition> {
        let keys: Vec<(usize, String)> = self.groups.keys().cloned().collect();
        let transitions = keys
            .iter()
            .filter_map(|(index, key)| self.step(*index, key, now_ms))
            .collect();
        self.groups
            .retain(|_, g| !(g.window.is_empty() && g.state.phase == Phase::Inactive));
        transitions
    }

    /// Ends every alert of a rule being removed or replaced: firing groups resolve, pending
    /// ones go inactive, and the rule's groups are forgotten.
    pub fn retire(&mut self, rule: &str, now_ms: u64) -> Vec<Transition> {
        let Some(index) = self.rules.iter().position(|r| r.name == rule) else {
            return Vec::new();
        };
        let mut transitions = Vec::new();
        for ((i, key), group) in self.groups.iter_mut().filter(|((i, _), _)| *i == index) {
            let value = group.state.last_value;
            if let Some(change) = group.state.step(false, value, now_ms, 0, u64::MAX) {
                transitions.push(Transition {
                    rule: self.rules[*i].name.clone(),
                    group: key.clone(),
                    change,
                    state: group.state,
                    value,
                    at_ms: now_ms,
                });
            }
        }
        self.groups.retain(|(i, _), _| *i != index);
        transitions
    }

    fn step(&mut self, index: usize, key: &str, now_ms: u64) -> Option<Transition> {
        let rule = &self.rules[index];
        let group = self.groups.get_mut(&(index, key.to_string()))?;
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
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
