//! Times as the two services write and read them.
//!
//! - Senlin writes `2026-12-01T10:00:00Z` (`isotime`).
//! - Masakari writes `2026-12-01T10:00:00.000000` (UTC, no offset, as its
//!   `DateTimeField` serialises) and reads any ISO 8601 time, with or
//!   without fraction and offset (a time without offset is UTC, as
//!   `timeutils.parse_isotime` takes it).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Now, UTC.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Senlin's form: seconds, `Z`.
pub fn senlin(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// Masakari's form: microseconds, no offset.
pub fn masakari(t: OffsetDateTime) -> String {
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
    t.to_offset(UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// Parse an ISO 8601 time: RFC 3339, or `YYYY-MM-DD[T ]HH:MM:SS[.frac]`
/// taken as UTC.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // RFC 3339 wants the `T` and an offset; accept a space and no offset.
    let s2 = s.replacen(' ', "T", 1);
    if let Ok(t) = OffsetDateTime::parse(&s2, &Rfc3339) {
        return Some(t);
    }
    let with_frac =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let plain = s2.trim_end_matches('Z');
    PrimitiveDateTime::parse(plain, &with_frac)
        .or_else(|_| PrimitiveDateTime::parse(plain, &without))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_parse_with_and_without_offset_and_fraction() {
        let a = parse("2026-12-01T10:00:00").unwrap();
        assert_eq!(masakari(a), "2026-12-01T10:00:00.000000");
        assert_eq!(senlin(a), "2026-12-01T10:00:00Z");
        assert_eq!(
            parse("2026-12-01T10:00:00.5").unwrap(),
            a + time::Duration::milliseconds(500)
        );
        assert_eq!(parse("2026-12-01T11:00:00+01:00").unwrap(), a);
        assert_eq!(parse("2026-12-01 10:00:00Z").unwrap(), a);
        assert_eq!(parse("2026-12-01T10:00:00.000000Z").unwrap(), a);
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-13-01T10:00:00").is_none());
    }
}
