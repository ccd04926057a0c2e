//! Schema helpers for fields whose JSON type the derive cannot express structurally.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Any JSON value (a condition's operand: number, string, boolean or list). Kubernetes needs
/// `x-kubernetes-preserve-unknown-fields` to accept a value of no fixed type.
pub fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true
    })
}
