//! NATS subjects and de-duplication ids for events.
//!
//! Tenants and Source names are DNS labels wherever this project validates them, which are
//! already safe subject tokens; escaping anyway keeps a name that bypassed validation (an old
//! object, a hand-written key file) from splitting or wild-carding a subject.

/// Subject prefix of the events stream.
pub const EVENTS_PREFIX: &str = "events";

/// `events.<tenant>.<source>`.
pub fn events_subject(tenant: &str, source: &str) -> String {
    format!("{EVENTS_PREFIX}.{}.{}", token(tenant), token(source))
}

/// The `Nats-Msg-Id` that makes a client's retry of the same message a duplicate.
pub fn message_dedup_id(tenant: &str, source: &str, message_id: &str) -> String {
    format!("{tenant}/{source}/{message_id}")
}

/// Durable JetStream consumer of a Source: the evaluator consumes with it, the operator
/// deletes it when the Source goes away.
pub fn durable_name(tenant: &str, source: &str) -> String {
    format!("evaluator-{}-{}", token(tenant), token(source))
}

/// Escapes a name into one subject token: ASCII letters, digits, `-` and `_` stay; every
/// other byte (`.`, `*`, `>`, whitespace, `%`, non-ASCII) becomes `%XX`. Empty becomes `%`.
pub fn token(name: &str) -> String {
    if name.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dns_labels_pass_through() {
        assert_eq!(events_subject("acme-prod", "web"), "events.acme-prod.web");
    }

    #[test]
    fn unsafe_characters_are_escaped() {
        assert_eq!(token("a.b *>c%"), "a%2Eb%20%2A%3Ec%25");
        assert_eq!(token(""), "%");
        assert_eq!(token("ü"), "%C3%BC");
    }

    proptest! {
        #[test]
        fn any_name_is_exactly_one_safe_token(name in ".{0,40}") {
            let t = token(&name);
            prop_assert!(!t.is_empty());
            prop_assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)));
        }

        #[test]
        fn escaping_is_injective(a in ".{0,12}", b in ".{0,12}") {
            prop_assume!(a != b);
            prop_assert_ne!(token(&a), token(&b));
        }
    }
}
