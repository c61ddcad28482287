//! Timestamps: always UTC, rendered as RFC 3339 on the wire.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time in UTC, to the microsecond: the precision PostgreSQL
/// keeps, so a timestamp reads back exactly as written on either database
/// (which hash chains depend on).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// RFC 3339 text for a timestamp, as every API response shows it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    // Formatting a UTC OffsetDateTime as RFC 3339 only fails for years
    // outside 0..=9999, which no clock we read produces.
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A duration in milliseconds with microsecond precision, as logs and
/// health reports show latencies.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_renders_utc_with_z() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(at), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().nanosecond() % 1000, 0);
    }

    #[test]
    fn millis_keep_three_decimals() {
        assert_eq!(millis(std::time::Duration::from_nanos(1_234_567)), 1.235);
    }
}
