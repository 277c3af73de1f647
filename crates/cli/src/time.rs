//! RFC 3339 timestamps from the commit clock (microseconds since the Unix
//! epoch), in UTC.

/// `YYYY-MM-DDTHH:MM:SSZ`, truncated to the second.
pub fn rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of day `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn known_instants() {
        let s = 1_000_000;
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 * s), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(951_868_799 * s + 999_999), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_700_000_000 * s), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_400 * s), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799 * s), "9999-12-31T23:59:59Z");
    }
}
