//! Optional IP truncation before storage: IPv4 keeps its /24, IPv6 its /48, so analytics by
//! network stays possible while the address no longer names a device.

use model::event::Event;
use serde_json::Value;
use std::net::IpAddr;

pub fn truncate_ip(text: &str) -> Option<String> {
    match text.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string())
        }
    }
}

/// Truncates `context.ip`; a value that is not an IP address is removed.
pub fn truncate_event_ip(event: &mut Event) {
    if let Some(ip) = event.context.get_mut("ip") {
        match ip.as_str().and_then(truncate_ip) {
            Some(truncated) => *ip = Value::String(truncated),
            None => {
                event.context.remove("ip");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_both_families_and_rejects_garbage() {
        assert_eq!(truncate_ip("203.0.113.77").as_deref(), Some("203.0.113.0"));
        assert_eq!(
            truncate_ip("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::")
        );
        assert_eq!(truncate_ip("not an ip"), None);
    }
}
