//! The rule language: which events a rule reads, the conditions they must meet, the windowed
//! aggregate it computes per group, and when that aggregate fires. Reference:
//! `docs/rules.md`.
//!
//! [`AlertRuleSpec::compile`](crate::resources::AlertRuleSpec::compile) validates a spec into
//! a [`CompiledRule`]; everything a [`CompiledRule`] does is a pure function of its input.

mod aggregate;
mod compiled;
mod condition;
mod field;
mod lifecycle;
mod trigger;
mod window;

pub use aggregate::{
    Accumulator, AggregateFunction, DISTINCT_ERROR_BOUND, DISTINCT_EXACT_UP_TO,
    DISTINCT_STANDARD_ERROR, Distinct,
};
pub use compiled::{CompiledRule, EventFilter, GroupBy};
pub use condition::{CompiledCondition, Operator};
pub use field::{EventContext, FieldPath};
pub use lifecycle::{AlertState, Change, Notification, Phase};
pub use trigger::Comparator;
pub use window::{BUCKETS_PER_WINDOW, Window};

#[cfg(test)]
mod distinct_tests;
#[cfg(test)]
pub(crate) mod test_support;
