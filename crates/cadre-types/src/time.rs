//! Timestamps: always UTC, rendered as RFC 3339 on the wire.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time in UTC, as [`normalize`] makes it.
pub fn now() -> OffsetDateTime {
    normalize(OffsetDateTime::now_utc())
}

/// A timestamp as Cadre stores it: to the microsecond, the precision
/// PostgreSQL keeps, so it reads back exactly as written on either database
/// (which hash chains depend on); and with a last microsecond digit that is
/// never 0. SQLite keeps timestamps as RFC 3339 text, which compares like
/// time only when every value has the same number of fractional digits, and
/// RFC 3339 drops trailing zeros (`.5Z` would sort after `.51Z`): a 1 µs
/// nudge keeps every stored timestamp at exactly six digits.
pub fn normalize(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.nanosecond() / 1000;
    let micros = if micros.is_multiple_of(10) {
        micros + 1
    } else {
        micros
    };
    at.replace_nanosecond(micros * 1000).unwrap_or(at)
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

#[cfg(test)]
mod normalize_tests {
    use super::*;

    #[test]
    fn normalized_timestamps_sort_as_text_the_way_they_sort_as_time() {
        let base = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let stamps: Vec<OffsetDateTime> = [0u32, 500_000, 510_000, 123_400, 123_450, 999_990]
            .iter()
            .map(|&micros| normalize(base + time::Duration::microseconds(i64::from(micros))))
            .collect();
        for a in &stamps {
            let text = rfc3339(*a);
            assert_eq!(text.len(), "2024-10-04T00:00:00.000001Z".len(), "{text}");
            for b in &stamps {
                assert_eq!(rfc3339(*a).cmp(&rfc3339(*b)), a.cmp(b), "{a} vs {b}");
            }
        }
    }
}
