//! The alert lifecycle of one (rule, group), as Prometheus and Alertmanager users expect:
//! *pending* while the trigger holds for less than `for`, then *firing* (notified), notified
//! again every `repeatInterval` while it keeps firing, and *resolved* (notified) when the
//! trigger stops holding. A pure state machine: the evaluator persists [`AlertState`] and acts
//! on the [`Change`]s it returns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Inactive,
    Pending,
    Firing,
}

/// What a receiver is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notification {
    Firing,
    /// Still firing, `repeatInterval` after the last notification.
    Repeat,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub phase: Phase,
    /// When the current phase began (epoch ms).
    pub since_ms: u64,
    /// When a firing alert was last notified.
    pub last_notified_ms: Option<u64>,
    pub last_value: Option<f64>,
}

/// One step's outcome: a phase change, a notification, or both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub previous: Phase,
    pub phase: Phase,
    pub notification: Option<Notification>,
}

impl Default for AlertState {
    fn default() -> Self {
        Self {
            phase: Phase::Inactive,
            since_ms: 0,
            last_notified_ms: None,
            last_value: None,
        }
    }
}

impl AlertState {
    /// Advances the state with whether the trigger `holds` at `now_ms`. Returns what changed.
    pub fn step(
        &mut self,
        holds: bool,
        value: Option<f64>,
        now_ms: u64,
        for_ms: u64,
        repeat_ms: u64,
    ) -> Option<Change> {
        self.last_value = value;
        let previous = self.phase;
        let notification = match (self.phase, holds) {
            (Phase::Inactive, false) => None,
            (Phase::Inactive, true) if for_ms == 0 => self.fire(now_ms),
            (Phase::Inactive, true) => {
                self.enter(Phase::Pending, now_ms);
                None
            }
            (Phase::Pending, true) if now_ms.saturating_sub(self.since_ms) >= for_ms => {
                self.fire(now_ms)
            }
            (Phase::Pending, true) => None,
            (Phase::Pending, false) => {
                self.enter(Phase::Inactive, now_ms);
                None
            }
            (Phase::Firing, true) => {
                let due = self
                    .last_notified_ms
                    .is_none_or(|last| now_ms.saturating_sub(last) >= repeat_ms);
                due.then(|| {
                    self.last_notified_ms = Some(now_ms);
                    Notification::Repeat
                })
            }
            (Phase::Firing, false) => {
                self.enter(Phase::Inactive, now_ms);
                self.last_notified_ms = None;
                Some(Notification::Resolved)
            }
        };
        (previous != self.phase || notification.is_some()).then_some(Change {
            previous,
            phase: self.phase,
            notification,
        })
    }

    fn enter(&mut self, phase: Phase, now_ms: u64) {
        self.phase = phase;
        self.since_ms = now_ms;
    }

    fn fire(&mut self, now_ms: u64) -> Option<Notification> {
        self.enter(Phase::Firing, now_ms);
        self.last_notified_ms = Some(now_ms);
        Some(Notification::Firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOR: u64 = 60_000;
    const REPEAT: u64 = 3_600_000;

    fn run(
        state: &mut AlertState,
        steps: &[(bool, u64)],
    ) -> Vec<Option<(Phase, Option<Notification>)>> {
        steps
            .iter()
            .map(|(holds, at)| {
                state
                    .step(*holds, Some(1.0), *at, FOR, REPEAT)
                    .map(|c| (c.phase, c.notification))
            })
            .collect()
    }

    #[test]
    fn pending_for_then_firing_once_then_resolved() {
        let mut state = AlertState::default();
        let got = run(
            &mut state,
            &[
                (true, 0),
                (true, 30_000),
                (true, 60_000),
                (true, 90_000),
                (false, 120_000),
                (false, 150_000),
            ],
        );
        assert_eq!(
            got,
            [
                Some((Phase::Pending, None)),
                None,
                Some((Phase::Firing, Some(Notification::Firing))),
                None,
                Some((Phase::Inactive, Some(Notification::Resolved))),
                None,
            ]
        );
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let mut state = AlertState::default();
        let got = run(
            &mut state,
            &[(true, 0), (false, 30_000), (true, 40_000), (true, 90_000)],
        );
        assert_eq!(got[1], Some((Phase::Inactive, None)));
        assert_eq!(
            got[3], None,
            "pending restarted at 40 s, so 90 s is not yet 60 s later"
        );
    }

    #[test]
    fn without_for_fires_at_once_and_repeats_every_interval() {
        let mut state = AlertState::default();
        let step = |s: &mut AlertState, holds, at| {
            s.step(holds, None, at, 0, REPEAT)
                .and_then(|c| c.notification)
        };
        assert_eq!(step(&mut state, true, 0), Some(Notification::Firing));
        assert_eq!(step(&mut state, true, REPEAT - 1), None);
        assert_eq!(step(&mut state, true, REPEAT), Some(Notification::Repeat));
        assert_eq!(step(&mut state, true, REPEAT + 1), None);
        assert_eq!(
            step(&mut state, false, REPEAT + 2),
            Some(Notification::Resolved)
        );
        assert_eq!(
            step(&mut state, true, REPEAT + 3),
            Some(Notification::Firing)
        );
    }

    #[test]
    fn state_survives_serialization() {
        let mut state = AlertState::default();
        state.step(true, Some(5001.0), 10, 0, REPEAT);
        let text = serde_json::to_string(&state).unwrap();
        let back: AlertState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert!(text.contains("\"firing\""), "{text}");
    }
}
