use super::*;
use crate::rule::test_support::event;
use proptest::prelude::*;
use serde_json::json;

fn check(field: &str, operator: Operator, value: Value, properties: Value) -> bool {
    let condition =
        CompiledCondition::new(FieldPath::parse(field).unwrap(), operator, Some(&value)).unwrap();
    let e = event(properties);
    condition.matches(&EventContext::of(&e))
}

#[test]
fn ordering_operators_compare_numbers() {
    let p = json!({"n": 10});
    assert!(check("n", Operator::Gt, json!(9.5), p.clone()));
    assert!(!check("n", Operator::Gt, json!(10), p.clone()));
    assert!(check("n", Operator::Gte, json!(10), p.clone()));
    assert!(check("n", Operator::Lt, json!(11), p.clone()));
    assert!(!check("n", Operator::Lt, json!(10), p.clone()));
    assert!(check("n", Operator::Lte, json!(10), p));
}

#[test]
fn ordering_operators_never_match_other_types() {
    for actual in [json!("11"), json!(true), json!([11]), json!({"n": 11})] {
        assert!(
            !check("n", Operator::Gt, json!(1), json!({"n": actual})),
            "{actual}"
        );
    }
}

#[test]
fn huge_numbers_compare_correctly() {
    assert!(check(
        "n",
        Operator::Gt,
        json!(1e300),
        json!({"n": 1.5e308})
    ));
    assert!(check("n", Operator::Lt, json!(0), json!({"n": -1.7e308})));
    assert!(check(
        "n",
        Operator::Eq,
        json!(u64::MAX),
        json!({"n": u64::MAX})
    ));
    assert!(!check(
        "n",
        Operator::Eq,
        json!(9007199254740993_i64),
        json!({"n": 9007199254740992_i64})
    ));
}

#[test]
fn equality_is_typed_and_numeric_by_value() {
    assert!(check("n", Operator::Eq, json!(10), json!({"n": 10.0})));
    assert!(!check("n", Operator::Eq, json!(10), json!({"n": "10"})));
    assert!(check("n", Operator::Ne, json!(10), json!({"n": "10"})));
    assert!(check(
        "plan",
        Operator::Eq,
        json!("pro"),
        json!({"plan": "pro"})
    ));
    assert!(!check(
        "plan",
        Operator::Ne,
        json!("pro"),
        json!({"plan": "pro"})
    ));
    assert!(check(
        "flag",
        Operator::Eq,
        json!(true),
        json!({"flag": true})
    ));
}

#[test]
fn membership_and_contains() {
    assert!(check(
        "plan",
        Operator::In,
        json!(["pro", "team"]),
        json!({"plan": "team"})
    ));
    assert!(!check(
        "plan",
        Operator::In,
        json!(["pro"]),
        json!({"plan": "free"})
    ));
    assert!(check(
        "plan",
        Operator::NotIn,
        json!(["pro"]),
        json!({"plan": "free"})
    ));
    assert!(check("n", Operator::In, json!([1, 2]), json!({"n": 2.0})));
    assert!(check(
        "email",
        Operator::Contains,
        json!("@acme"),
        json!({"email": "a@acme.io"})
    ));
    assert!(check(
        "tags",
        Operator::Contains,
        json!("vip"),
        json!({"tags": ["new", "vip"]})
    ));
    assert!(!check(
        "tags",
        Operator::Contains,
        json!("vip"),
        json!({"tags": 7})
    ));
}

#[test]
fn missing_fields_match_nothing_but_exists_false() {
    for (operator, value) in [
        (Operator::Gt, json!(0)),
        (Operator::Eq, json!("x")),
        (Operator::Ne, json!("x")),
        (Operator::In, json!(["x"])),
        (Operator::NotIn, json!(["x"])),
        (Operator::Contains, json!("x")),
        (Operator::Exists, json!(true)),
    ] {
        assert!(
            !check("absent", operator, value.clone(), json!({})),
            "{operator:?}"
        );
        assert!(
            !check("nul", operator, value, json!({"nul": null})),
            "{operator:?} on null"
        );
    }
    assert!(check("absent", Operator::Exists, json!(false), json!({})));
    assert!(!check(
        "present",
        Operator::Exists,
        json!(false),
        json!({"present": 0})
    ));
}

#[test]
fn exists_defaults_to_true() {
    let condition =
        CompiledCondition::new(FieldPath::parse("a").unwrap(), Operator::Exists, None).unwrap();
    assert!(condition.matches(&EventContext::of(&event(json!({"a": false})))));
}

#[test]
fn operand_types_are_checked_at_compile_time() {
    let path = || FieldPath::parse("a").unwrap();
    let err = |op, v: Value| CompiledCondition::new(path(), op, Some(&v)).unwrap_err();
    assert!(err(Operator::Gt, json!("10")).contains("compares numbers"));
    assert!(err(Operator::In, json!("pro")).contains("list"));
    assert!(err(Operator::In, json!([])).contains("non-empty"));
    assert!(err(Operator::In, json!([["nested"]])).contains("not array"));
    assert!(err(Operator::Eq, json!({"a": 1})).contains("not object"));
    assert!(err(Operator::Exists, json!("yes")).contains("true or false"));
    assert!(
        CompiledCondition::new(path(), Operator::Eq, None)
            .unwrap_err()
            .contains("needs a value")
    );
    assert!(CompiledCondition::new(path(), Operator::Eq, Some(&Value::Null)).is_err());
}

proptest! {
    /// `!=` is exactly the negation of `==` on any present value, and ordering is consistent.
    #[test]
    fn negations_and_orderings_agree(actual in -1e6f64..1e6, bound in -1e6f64..1e6) {
        let p = json!({"n": actual});
        prop_assert_ne!(check("n", Operator::Eq, json!(bound), p.clone()), check("n", Operator::Ne, json!(bound), p.clone()));
        prop_assert_eq!(check("n", Operator::Gt, json!(bound), p.clone()), actual > bound);
        prop_assert_eq!(check("n", Operator::Lte, json!(bound), p.clone()), actual <= bound);
        prop_assert_ne!(check("n", Operator::In, json!([bound]), p.clone()), check("n", Operator::NotIn, json!([bound]), p));
    }
}
