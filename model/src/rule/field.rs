//! Field paths: how a rule names a value of an event or of the traits around it.
//!
//! | path | value |
//! |---|---|
//! | `properties.<key>[.<key>…]` | the event's properties |
//! | `traits.<key>…` | traits sent on the event itself (identify, group) |
//! | `context.<key>…` | the event's context |
//! | `user.traits.<key>…` | latest `identify` traits of the event's user |
//! | `account.traits.<key>…` | latest `group` traits of the event's account |
//! | `event.name`, `event.kind`, `event.userId`, `event.anonymousId`, `event.groupId`, `event.sessionId`, `event.messageId`, `event.source` | the event's own attributes |
//! | `<key>…` (bare) | the first present of `properties`, `traits`, `account.traits`, `user.traits` |
//!
//! A numeric segment indexes an array (`properties.items.0.sku`). JSON `null` counts as
//! missing.

use crate::event::{Event, JsonObject};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// What a rule sees of one event: the event, its account, and the latest traits of its user
/// and account, which the evaluator looks up.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    pub event: &'a Event,
    /// The account the event belongs to: its `groupId`, or the account its user last joined.
    pub account_id: Option<&'a str>,
    pub user_traits: Option<&'a JsonObject>,
    pub account_traits: Option<&'a JsonObject>,
}

impl<'a> EventContext<'a> {
    /// A context with no trait lookups: the event's own `groupId` is its account.
    pub fn of(event: &'a Event) -> Self {
        Self {
            event,
            account_id: event.group_id.as_deref(),
            user_traits: None,
            account_traits: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Properties,
    Traits,
    Context,
    UserTraits,
    AccountTraits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Name,
    Kind,
    UserId,
    AnonymousId,
    GroupId,
    SessionId,
    MessageId,
    Source,
}

const ATTRIBUTES: [(&str, Attribute); 9] = [
    ("name", Attribute::Name),
    ("kind", Attribute::Kind),
    ("type", Attribute::Kind),
    ("userId", Attribute::UserId),
    ("anonymousId", Attribute::AnonymousId),
    ("groupId", Attribute::GroupId),
    ("sessionId", Attribute::SessionId),
    ("messageId", Attribute::MessageId),
    ("source", Attribute::Source),
];

/// Bare names look in these scopes, in this order.
const BARE_ORDER: [Scope; 4] = [
    Scope::Properties,
    Scope::Traits,
    Scope::AccountTraits,
    Scope::UserTraits,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    Scoped(Scope, Vec<String>),
    Attribute(Attribute),
    Bare(Vec<String>),
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<&str> = text.split('.').collect();
        if text.is_empty() || segments.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "{text:?} is not a field path: use dot-separated names like properties.value"
            ));
        }
        let owned = |rest: &[&str]| rest.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let needs_key =
            |prefix: &str| format!("{text:?}: {prefix} needs a key after it, e.g. {prefix}.plan");
        let scoped = |scope, rest: &[&str], prefix: &str| {
            if rest.is_empty() {
                Err(needs_key(prefix))
            } else {
                Ok(Self::Scoped(scope, owned(rest)))
            }
        };
        match segments.as_slice() {
            ["properties", rest @ ..] => scoped(Scope::Properties, rest, "properties"),
            ["traits", rest @ ..] => scoped(Scope::Traits, rest, "traits"),
            ["context", rest @ ..] => scoped(Scope::Context, rest, "context"),
            ["user", "traits", rest @ ..] => scoped(Scope::UserTraits, rest, "user.traits"),
            ["account", "traits", rest @ ..] => {
                scoped(Scope::AccountTraits, rest, "account.traits")
            }
            ["user" | "account", ..] => Err(format!(
                "{text:?}: user and account fields are read from their traits, e.g. {}.traits.plan",
                segments[0]
            )),
            ["event", attribute] => ATTRIBUTES
                .iter()
                .find(|(name, _)| name == attribute)
                .map(|(_, a)| Self::Attribute(*a))
                .ok_or_else(|| {
                    let names: Vec<_> = ATTRIBUTES
                        .iter()
                        .map(|(n, _)| format!("event.{n}"))
                        .collect();
                    format!(
                        "{text:?} is not an event attribute; use one of {}",
                        names.join(", ")
                    )
                }),
            ["event", ..] => Err(format!("{text:?}: event attributes have no sub-fields")),
            _ => Ok(Self::Bare(owned(&segments))),
        }
    }

    /// The value this path names in `ctx`, or `None` when missing or null.
    pub fn resolve<'a>(&self, ctx: &EventContext<'a>) -> Option<Cow<'a, Value>> {
        match self {
            Self::Scoped(scope, keys) => {
                lookup(scope_object(*scope, ctx)?, keys).map(Cow::Borrowed)
            }
            Self::Bare(keys) => BARE_ORDER
                .iter()
                .find_map(|scope| lookup(scope_object(*scope, ctx)?, keys))
                .map(Cow::Borrowed),
            Self::Attribute(attribute) => {
                let event = ctx.event;
                let text = match attribute {
                    Attribute::Name => event.name.as_deref(),
                    Attribute::Kind => Some(event.kind.as_str()),
                    Attribute::UserId => event.user_id.as_deref(),
                    Attribute::AnonymousId => event.anonymous_id.as_deref(),
                    Attribute::GroupId => event.group_id.as_deref(),
                    Attribute::SessionId => event.session_id.as_deref(),
                    Attribute::MessageId => Some(event.message_id.as_str()),
                    Attribute::Source => Some(event.source.as_str()),
                };
                text.map(|t| Cow::Owned(Value::String(t.to_owned())))
            }
        }
    }
}

fn scope_object<'a>(scope: Scope, ctx: &EventContext<'a>) -> Option<&'a JsonObject> {
    match scope {
        Scope::Properties => Some(&ctx.event.properties),
        Scope::Traits => Some(&ctx.event.traits),
        Scope::Context => Some(&ctx.event.context),
        Scope::UserTraits => ctx.user_traits,
        Scope::AccountTraits => ctx.account_traits,
    }
}

fn lookup<'a>(object: &'a JsonObject, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut value = object.get(first)?;
    for key in rest {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!value.is_null()).then_some(value)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scoped(scope, keys) => {
                let prefix = match scope {
                    Scope::Properties => "properties",
                    Scope::Traits => "traits",
                    Scope::Context => "context",
                    Scope::UserTraits => "user.traits",
                    Scope::AccountTraits => "account.traits",
                };
                write!(f, "{prefix}.{}", keys.join("."))
            }
            Self::Attribute(attribute) => {
                let name = ATTRIBUTES
                    .iter()
                    .find(|(_, a)| a == attribute)
                    .map_or("?", |(n, _)| n);
                write!(f, "event.{name}")
            }
            Self::Bare(keys) => f.write_str(&keys.join(".")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::test_support::{event, object};
    use serde_json::json;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            FieldPath::parse("properties.cart.total"),
            Ok(FieldPath::Scoped(
                Scope::Properties,
                vec!["cart".into(), "total".into()]
            ))
        );
        assert_eq!(
            FieldPath::parse("account.traits.monthlyCost"),
            Ok(FieldPath::Scoped(
                Scope::AccountTraits,
                vec!["monthlyCost".into()]
            ))
        );
        assert_eq!(
            FieldPath::parse("event.type"),
            Ok(FieldPath::Attribute(Attribute::Kind))
        );
        assert_eq!(
            FieldPath::parse("teamSize"),
            Ok(FieldPath::Bare(vec!["teamSize".into()]))
        );
        for bad in [
            "",
            "properties",
            "user.plan",
            "account.traits",
            "event.nope",
            "event.name.x",
            "a..b",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "properties.a.b",
            "user.traits.plan",
            "event.userId",
            "teamSize",
            "context.ip",
        ] {
            assert_eq!(FieldPath::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn bare_names_resolve_properties_then_traits_then_account_then_user() {
        let e = event(json!({"shared": "from-properties"}));
        let user = object(json!({"shared": "from-user", "teamSize": 3, "plan": "pro"}));
        let account = object(json!({"teamSize": 12}));
        let ctx = EventContext {
            event: &e,
            account_id: Some("g1"),
            user_traits: Some(&user),
            account_traits: Some(&account),
        };
        let get = |p: &str| {
            FieldPath::parse(p)
                .unwrap()
                .resolve(&ctx)
                .map(|v| v.into_owned())
        };
        assert_eq!(get("shared"), Some(json!("from-properties")));
        assert_eq!(get("teamSize"), Some(json!(12)));
        assert_eq!(get("plan"), Some(json!("pro")));
        assert_eq!(get("user.traits.teamSize"), Some(json!(3)));
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn nested_arrays_attributes_and_nulls() {
        let e = event(json!({"items": [{"sku": "a"}], "gone": null}));
        let ctx = EventContext::of(&e);
        let get = |p: &str| {
            FieldPath::parse(p)
                .unwrap()
                .resolve(&ctx)
                .map(|v| v.into_owned())
        };
        assert_eq!(get("properties.items.0.sku"), Some(json!("a")));
        assert_eq!(get("properties.items.1.sku"), None);
        assert_eq!(get("properties.items.x"), None);
        assert_eq!(get("properties.gone"), None, "null counts as missing");
        assert_eq!(get("event.name"), Some(json!("checkout")));
        assert_eq!(get("event.kind"), Some(json!("track")));
        assert_eq!(get("event.sessionId"), None);
        assert_eq!(get("context.ip"), Some(json!("1.2.3.4")));
        assert_eq!(
            get("account.traits.teamSize"),
            None,
            "no account traits known"
        );
    }
}
