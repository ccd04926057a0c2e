//! Durations in rules (`30s`, `5m`, `7d`, `1h30m`), parsed by humantime and bounded.

use std::time::Duration;

/// The longest aggregation window: longer windows would make rebuilding state from the event
/// store on start too slow to stay restart-safe.
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Schema pattern for duration strings: one or more `<number><unit>` parts.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d|w) ?)+$";

/// Parses a duration and checks it lies within `[min, max]`.
pub fn parse_bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration < min || duration > max {
        return Err(format!(
            "{text:?} is outside the allowed range {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(duration)
}

pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 30s, 5m, 4h or 7d ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_rules_use() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("soon").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn bounds_windows() {
        assert!(parse_bounded("30d", MIN_WINDOW, MAX_WINDOW).is_ok());
        assert!(
            parse_bounded("31d", MIN_WINDOW, MAX_WINDOW)
                .unwrap_err()
                .contains("outside")
        );
        assert!(parse_bounded("500ms", MIN_WINDOW, MAX_WINDOW).is_err());
    }
}
