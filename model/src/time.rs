//! Time formatting shared by every JSON output: RFC 3339 in UTC, with milliseconds only when they are not zero.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats epoch milliseconds as RFC 3339 UTC (`2024-11-03T14:30:00Z`, or `...:00.250Z` for sub-second times).
pub fn rfc3339_ms(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => "+262142-12-31T23:59:59.999Z".to_string(),
    }
}

/// A duration of `ms` milliseconds as the flags take it (`30s`, `1m 30s`, `250ms`).
pub fn duration_text(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// Wall clock now, epoch milliseconds.
pub fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_have_no_fraction() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_730_644_210_000), "2024-11-03T14:30:10Z");
    }

    #[test]
    fn sub_second_times_keep_milliseconds() {
        assert_eq!(rfc3339_ms(1_730_644_210_250), "2024-11-03T14:30:10.250Z");
    }

    #[test]
    fn out_of_range_times_do_not_panic() {
        assert!(!rfc3339_ms(u64::MAX).is_empty());
    }
}
