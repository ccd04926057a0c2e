//! Condition operators, their typing rules, and matching.
//!
//! Semantics (also in `docs/rules.md`):
//! - A missing field (absent or `null`) matches no operator except `exists` with
//!   `value: false`, as SQL's NULL does. Use `exists` to test presence.
//! - `>` `>=` `<` `<=` compare JSON numbers only; a field of another type does not match.
//! - `==` compares numbers by value (`10 == 10.0`), strings and booleans exactly; a field of
//!   another type than the rule's value is unequal. `!=` is the negation of `==` for a present
//!   field; `not_in` likewise of `in`.
//! - `contains`: substring for a string field, element equality for an array field.

use super::field::{EventContext, FieldPath};
use super::trigger::Comparator;
use crate::event::json_type_name;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Operator {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Gte,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Lte,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "not_in")]
    NotIn,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "exists")]
    Exists,
}

/// What a condition tests, with its operand checked against the operator's type.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    Order(Comparator, f64),
    Equals { value: Value, negate: bool },
    OneOf { values: Vec<Value>, negate: bool },
    Contains(Value),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompiledCondition {
    pub field: FieldPath,
    test: Test,
}

impl CompiledCondition {
    /// Checks the operand's type for the operator. Errors name the problem, not the path:
    /// the caller knows where the condition sits.
    pub fn new(
        field: FieldPath,
        operator: Operator,
        value: Option<&Value>,
    ) -> Result<Self, String> {
        let test = match (operator, value) {
            (Operator::Exists, None) => Test::Exists(true),
            (Operator::Exists, Some(Value::Bool(b))) => Test::Exists(*b),
            (Operator::Exists, Some(other)) => {
                return Err(format!(
                    "exists takes true or false, not {}",
                    json_type_name(other)
                ));
            }
            (_, None | Some(Value::Null)) => {
                return Err(format!("operator {} needs a value", operator.symbol()));
            }
            (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte, Some(v)) => {
                match finite(v) {
                    Some(n) => Test::Order(operator.comparator().unwrap_or_default(), n),
                    None => {
                        return Err(format!(
                            "operator {} compares numbers; the value is {}",
                            operator.symbol(),
                            json_type_name(v)
                        ));
                    }
                }
            }
            (Operator::Eq | Operator::Ne, Some(v)) => Test::Equals {
                value: scalar(v)?,
                negate: operator == Operator::Ne,
            },
            (Operator::In | Operator::NotIn, Some(Value::Array(items))) if !items.is_empty() => {
                Test::OneOf {
                    values: items.iter().map(scalar).collect::<Result<_, _>>()?,
                    negate: operator == Operator::NotIn,
                }
            }
            (Operator::In | Operator::NotIn, Some(_)) => {
                return Err(format!(
                    "operator {} needs a non-empty list of values",
                    operator.symbol()
                ));
            }
            (Operator::Contains, Some(v)) => Test::Contains(scalar(v)?),
        };
        Ok(Self { field, test })
    }

    pub fn matches(&self, ctx: &EventContext<'_>) -> bool {
        let Some(actual) = self.field.resolve(ctx) else {
            return matches!(self.test, Test::Exists(false));
        };
        let actual = actual.as_ref();
        match &self.test {
            Test::Exists(wanted) => *wanted,
            Test::Order(comparator, bound) => comparator.fires(finite(actual), *bound),
            Test::Equals { value, negate } => json_eq(actual, value) != *negate,
            Test::OneOf { values, negate } => values.iter().any(|v| json_eq(actual, v)) != *negate,
            Test::Contains(needle) => match (actual, needle) {
                (Value::String(haystack), Value::String(needle)) => {
                    haystack.contains(needle.as_str())
                }
                (Value::Array(items), needle) => items.iter().any(|item| json_eq(item, needle)),
                _ => false,
            },
        }
    }
}

impl Operator {
    /// The numeric comparison of `>` `>=` `<` `<=`, shared with the trigger.
    fn comparator(self) -> Option<Comparator> {
        match self {
            Self::Gt => Some(Comparator::Gt),
            Self::Gte => Some(Comparator::Gte),
            Self::Lt => Some(Comparator::Lt),
            Self::Lte => Some(Comparator::Lte),
            _ => None,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Contains => "contains",
            Self::Exists => "exists",
        }
    }
}

fn finite(value: &Value) -> Option<f64> {
    value.as_f64().filter(|n| n.is_finite())
}

fn scalar(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(value.clone()),
        other => Err(format!(
            "values compared here are strings, numbers or booleans, not {}",
            json_type_name(other)
        )),
    }
}

/// Equality with numbers compared by value: exactly when both are integers (no precision
/// lost on ids beyond 2^53), as floats otherwise.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
