//! Aggregation functions and their mergeable accumulator.
//!
//! An [`Accumulator`] holds one bucket's worth of observations; windows are built from
//! buckets by [`Accumulator::merge`]. Every function merges exactly except `count_distinct`
//! beyond [`DISTINCT_EXACT_UP_TO`] values, which is a HyperLogLog estimate (see [`Distinct`]).
//! Results are `f64`: a sum that overflows becomes `+inf`, which exceeds every threshold.
//! `avg`, `min` and `max` of an empty window have no value (`None`), and nothing fires on it;
//! `count`, `sum` and `count_distinct` of an empty window are 0.

use cardinality_estimator::CardinalityEstimator;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Distinct values counted exactly; beyond this the count is a HyperLogLog estimate.
pub const DISTINCT_EXACT_UP_TO: usize = 128;

/// HyperLogLog precision: 2^12 registers, a standard error of 1.04 / sqrt(4096) = 1.6 %.
const DISTINCT_PRECISION: usize = 12;

/// Relative standard error of a `count_distinct` estimate beyond [`DISTINCT_EXACT_UP_TO`].
pub const DISTINCT_STANDARD_ERROR: f64 = 0.01625;

/// Estimates within this relative error 99.7 % of the time (three standard errors).
pub const DISTINCT_ERROR_BOUND: f64 = 3.0 * DISTINCT_STANDARD_ERROR;

/// A mergeable distinct-value sketch with bounded memory.
///
/// Cloudflare's `cardinality-estimator` was chosen over `hyperloglogplus` and exact sets: up
/// to 128 values it keeps their 31-bit hash codes (8 bytes inline for up to 2, then a small
/// array), so small counts are exact (two values share a code with probability ~1e-8 per
/// pair); beyond that it is a HyperLogLog++ (LogLog-Beta bias correction) of 4096 six-bit
/// registers, about 3 KB, which no input grows. It merges, which is what windows are made
/// of, and estimates in O(1) (it keeps the register sum up to date). `hyperloglogplus` needs
/// `&mut` to count and its sparse mode grows to ~200 KB per sketch.
/// Values are hashed here (64-bit SipHash of a normalized value) and fed in as hashes.
pub type Distinct = CardinalityEstimator<u64, DefaultHasher, DISTINCT_PRECISION, 6>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    CountDistinct,
}

impl AggregateFunction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::CountDistinct => "count_distinct",
        }
    }

    /// Whether the function needs an `aggregation.field`.
    pub fn needs_field(self) -> bool {
        self != Self::Count
    }

    /// Whether the function reads numbers (other values are skipped).
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Sum | Self::Avg | Self::Min | Self::Max)
    }
}

/// Running aggregate of one bucket. Keeps only what its function needs to merge exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Accumulator {
    Count(u64),
    Sum(f64),
    Avg {
        sum: f64,
        count: u64,
    },
    Min(Option<f64>),
    Max(Option<f64>),
    /// The distinct values seen: exact up to [`DISTINCT_EXACT_UP_TO`], then an estimate.
    Distinct(Distinct),
}

impl Accumulator {
    pub fn new(function: AggregateFunction) -> Self {
        match function {
            AggregateFunction::Count => Self::Count(0),
            AggregateFunction::Sum => Self::Sum(0.0),
            AggregateFunction::Avg => Self::Avg { sum: 0.0, count: 0 },
            AggregateFunction::Min => Self::Min(None),
            AggregateFunction::Max => Self::Max(None),
            AggregateFunction::CountDistinct => Self::Distinct(Distinct::new()),
        }
    }

    /// Adds one event's value (`None` for `count` without a field). Returns whether the value
    /// counted: numeric functions skip non-numbers and non-finite numbers.
    pub fn observe(&mut self, value: Option<&Value>) -> bool {
        let number = || value.and_then(Value::as_f64).filter(|n| n.is_finite());
        match self {
            Self::Count(n) => *n += 1,
            Self::Distinct(sketch) => match value {
                Some(v) => sketch.insert_hash(distinct_hash(v)),
                None => return false,
            },
            Self::Sum(sum) => match number() {
                Some(x) => *sum += x,
                None => return false,
            },
            Self::Avg { sum, count } => match number() {
                Some(x) => {
                    *sum += x;
                    *count += 1;
                }
                None => return false,
            },
            Self::Min(min) => match number() {
                Some(x) => *min = Some(min.map_or(x, |m| m.min(x))),
                None => return false,
            },
            Self::Max(max) => match number() {
                Some(x) => *max = Some(max.map_or(x, |m| m.max(x))),
                None => return false,
            },
        }
        true
    }

    /// Folds another bucket of the same function into this one.
    pub fn merge(&mut self, other: &Self) {
        match (self, other) {
            (Self::Count(a), Self::Count(b)) => *a += b,
            (Self::Sum(a), Self::Sum(b)) => *a += b,
            (Self::Avg { sum, count }, Self::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Self::Min(a), Self::Min(b)) => *a = min_opt(*a, *b, f64::min),
            (Self::Max(a), Self::Max(b)) => *a = min_opt(*a, *b, f64::max),
            (Self::Distinct(a), Self::Distinct(b)) => a.merge(b),
            (this, other) => debug_assert!(false, "merging {this:?} with {other:?}"),
        }
    }

    /// Removes a bucket merged earlier, for the functions where that is exact arithmetic
    /// (count, sum, avg). Returns false (and changes nothing) for the others.
    pub fn unmerge(&mut self, other: &Self) -> bool {
        match (self, other) {
            (Self::Count(a), Self::Count(b)) => *a = a.saturating_sub(*b),
            (Self::Sum(a), Self::Sum(b)) => *a -= b,
            (Self::Avg { sum, count }, Self::Avg { sum: s, count: c }) => {
                *sum -= s;
                *count = count.saturating_sub(*c);
            }
            _ => return false,
        }
        true
    }

    /// Approximate memory held, in bytes (for `count_distinct`: at most ~3 KB more).
    pub fn bytes(&self) -> usize {
        let heap = match self {
            Self::Distinct(sketch) => sketch.size_of().saturating_sub(size_of::<usize>()),
            _ => 0,
        };
        size_of::<Self>() + heap
    }

    /// The aggregate's value, or `None` where the function has none (empty avg/min/max).
    pub fn value(&self) -> Option<f64> {
        match self {
            Self::Count(n) => Some(*n as f64),
            Self::Sum(sum) => Some(*sum),
            Self::Avg { sum, count } => (*count > 0).then(|| sum / *count as f64),
            Self::Min(v) | Self::Max(v) => *v,
            Self::Distinct(sketch) => Some(sketch.estimate() as f64),
        }
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// Hash of a value for distinct counting: numbers by value (so `10` and `10.0` are one),
/// everything else by its JSON text.
fn distinct_hash(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => (0u8, i).hash(&mut hasher),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                    (0u8, f as i64).hash(&mut hasher)
                }
                Some(f) => (1u8, f.to_bits()).hash(&mut hasher),
                None => (2u8, n.to_string()).hash(&mut hasher),
            },
        },
        Value::String(s) => (3u8, s).hash(&mut hasher),
        other => (4u8, other.to_string()).hash(&mut hasher),
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(function: AggregateFunction, values: &[Value]) -> Option<f64> {
        let mut acc = Accumulator::new(function);
        for v in values {
            acc.observe(Some(v));
        }
        acc.value()
    }

    #[test]
    fn each_function() {
        let values = [json!(4), json!(1.5), json!("skip"), json!(10), json!(4)];
        assert_eq!(run(AggregateFunction::Count, &values), Some(5.0));
        assert_eq!(run(AggregateFunction::Sum, &values), Some(19.5));
        assert_eq!(run(AggregateFunction::Avg, &values), Some(19.5 / 4.0));
        assert_eq!(run(AggregateFunction::Min, &values), Some(1.5));
        assert_eq!(run(AggregateFunction::Max, &values), Some(10.0));
        assert_eq!(run(AggregateFunction::CountDistinct, &values), Some(4.0));
    }

    #[test]
    fn empty_window() {
        assert_eq!(run(AggregateFunction::Count, &[]), Some(0.0));
        assert_eq!(run(AggregateFunction::Sum, &[]), Some(0.0));
        assert_eq!(run(AggregateFunction::CountDistinct, &[]), Some(0.0));
        assert_eq!(run(AggregateFunction::Avg, &[]), None);
        assert_eq!(run(AggregateFunction::Min, &[]), None);
        assert_eq!(run(AggregateFunction::Max, &[]), None);
    }

    #[test]
    fn numeric_functions_skip_non_numbers() {
        let mut acc = Accumulator::new(AggregateFunction::Sum);
        assert!(!acc.observe(Some(&json!("12"))));
        assert!(!acc.observe(None));
        assert!(acc.observe(Some(&json!(2))));
        assert_eq!(acc.value(), Some(2.0));
    }

    #[test]
    fn count_counts_events_even_without_value() {
        let mut acc = Accumulator::new(AggregateFunction::Count);
        assert!(acc.observe(None));
        assert_eq!(acc.value(), Some(1.0));
    }

    #[test]
    fn overflow_saturates_to_infinity() {
        assert_eq!(
            run(AggregateFunction::Sum, &[json!(1.7e308), json!(1.7e308)]),
            Some(f64::INFINITY)
        );
        assert_eq!(
            run(AggregateFunction::Max, &[json!(-1e308), json!(1e308)]),
            Some(1e308)
        );
    }

    #[test]
    fn distinct_treats_equal_numbers_as_one_and_types_apart() {
        let values = [
            json!(10),
            json!(10.0),
            json!("10"),
            json!(true),
            json!([1]),
            json!({"a": 1}),
        ];
        assert_eq!(run(AggregateFunction::CountDistinct, &values), Some(5.0));
    }

    fn function() -> impl Strategy<Value = AggregateFunction> {
        prop_oneof![
            Just(AggregateFunction::Count),
            Just(AggregateFunction::Sum),
            Just(AggregateFunction::Avg),
            Just(AggregateFunction::Min),
            Just(AggregateFunction::Max),
            Just(AggregateFunction::CountDistinct),
        ]
    }

    proptest! {
        /// Splitting observations across buckets and merging gives the single-bucket answer.
        #[test]
        fn merge_equals_single_pass(f in function(), xs in prop::collection::vec(-1000i32..1000, 0..60), cut in 0usize..60) {
            let values: Vec<Value> = xs.iter().map(|x| json!(x)).collect();
            let cut = cut.min(values.len());
            let mut left = Accumulator::new(f);
            let mut right = Accumulator::new(f);
            values[..cut].iter().for_each(|v| { left.observe(Some(v)); });
            values[cut..].iter().for_each(|v| { right.observe(Some(v)); });
            left.merge(&right);
            let whole = run(f, &values);
            match (left.value(), whole) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}"),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }
}
