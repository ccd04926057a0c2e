//! Status conditions as every Kubernetes controller reports them: a transition time that only
//! moves when the status does, and the generation they describe.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// One condition's outcome, before it is stamped with times and the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub type_: &'static str,
    pub ok: bool,
    /// CamelCase reason, e.g. `Valid`, `InvalidSpec`, `Progressing`.
    pub reason: &'static str,
    pub message: String,
}

impl Outcome {
    pub fn ok(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: true,
            reason,
            message: message.into(),
        }
    }

    pub fn failed(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// The new conditions: unchanged statuses keep their `lastTransitionTime`.
pub fn stamp(
    outcomes: &[Outcome],
    previous: &[Condition],
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    outcomes
        .iter()
        .map(|o| {
            let status = if o.ok { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == o.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: o.type_.to_string(),
                status: status.to_string(),
                reason: o.reason.to_string(),
                // The API server limits messages to 32 KiB.
                message: truncate(&o.message, 32 * 1024),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let first = stamp(
            &[Outcome::ok("Ready", "Available", "")],
            &[],
            Some(1),
            at(10),
        );
        let same = stamp(
            &[Outcome::ok("Ready", "Available", "x")],
            &first,
            Some(2),
            at(20),
        );
        assert_eq!(same[0].last_transition_time, at(10));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = stamp(
            &[Outcome::failed("Ready", "Down", "")],
            &same,
            Some(2),
            at(30),
        );
        assert_eq!(flipped[0].last_transition_time, at(30));
        assert_eq!(flipped[0].status, "False");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let message = "é".repeat(20_000);
        let c = stamp(
            &[Outcome::failed("Accepted", "Invalid", message)],
            &[],
            None,
            at(0),
        );
        assert!(c[0].message.len() <= 32 * 1024);
        assert!(c[0].message.chars().all(|ch| ch == 'é'));
    }
}
