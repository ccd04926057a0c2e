//! The trigger: how a rule's aggregate value is compared with its `triggerValue`.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Comparator {
    #[default]
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
}

impl Comparator {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    /// Whether `value` trips the trigger. No value (an empty `avg`/`min`/`max` window) and NaN
    /// never fire; `==`/`!=` compare floats exactly, which suits counts and whole sums.
    pub fn fires(self, value: Option<f64>, threshold: f64) -> bool {
        let Some(value) = value.filter(|v| !v.is_nan()) else {
            return false;
        };
        match self {
            Self::Gt => value > threshold,
            Self::Gte => value >= threshold,
            Self::Lt => value < threshold,
            Self::Lte => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_comparator_at_and_around_the_threshold() {
        let cases = [
            (Comparator::Gt, [false, false, true]),
            (Comparator::Gte, [false, true, true]),
            (Comparator::Lt, [true, false, false]),
            (Comparator::Lte, [true, true, false]),
            (Comparator::Eq, [false, true, false]),
            (Comparator::Ne, [true, false, true]),
        ];
        for (comparator, expected) in cases {
            let got = [4999.0, 5000.0, 5000.5].map(|v| comparator.fires(Some(v), 5000.0));
            assert_eq!(got, expected, "{comparator:?}");
        }
    }

    #[test]
    fn no_value_nan_and_infinities() {
        for comparator in [
            Comparator::Gt,
            Comparator::Lt,
            Comparator::Ne,
            Comparator::Eq,
        ] {
            assert!(!comparator.fires(None, 0.0), "{comparator:?}");
            assert!(!comparator.fires(Some(f64::NAN), 0.0), "{comparator:?}");
        }
        assert!(Comparator::Gt.fires(Some(f64::INFINITY), f64::MAX));
        assert!(Comparator::Lt.fires(Some(f64::NEG_INFINITY), f64::MIN));
    }

    #[test]
    fn default_is_greater_than() {
        assert_eq!(Comparator::default(), Comparator::Gt);
    }
}
