//! Instants as `i64` nanoseconds since the Unix epoch (UTC), with fast ISO-8601 formatting and
//! the two parsers the simulator needs: strict `$filter` literals and lenient record timestamps.

use time::OffsetDateTime;

pub(crate) const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// Nanoseconds since the epoch; saturates outside the `i64` range (years 1677..2262).
pub(crate) fn to_ns(instant: OffsetDateTime) -> i64 {
    let ns = instant.unix_timestamp_nanos();
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The instant for `ns` nanoseconds since the epoch, in UTC.
pub(crate) fn from_ns(ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128).expect("i64 nanoseconds are in range")
}

/// Appends `ns` as `YYYY-MM-DDTHH:MM:SS[.f]Z` with exactly `digits` fraction digits (0..=9),
/// truncating finer digits.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, ns: i64, digits: u8) {
    let days = ns.div_euclid(NS_PER_DAY);
    let in_day = ns.rem_euclid(NS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / NS_PER_SEC;
    let frac = (in_day % NS_PER_SEC) as u32;
    let mut buf = [0u8; 30];
    put4(&mut buf[0..4], year.clamp(0, 9999) as u32);
    buf[4] = b'-';
    put2(&mut buf[5..7], month);
    buf[7] = b'-';
    put2(&mut buf[8..10], day);
    buf[10] = b'T';
    put2(&mut buf[11..13], (secs / 3600) as u32);
    buf[13] = b':';
    put2(&mut buf[14..16], (secs / 60 % 60) as u32);
    buf[16] = b':';
    put2(&mut buf[17..19], (secs % 60) as u32);
    let mut len = 19;
    if digits > 0 {
        buf[19] = b'.';
        let mut value = frac;
        let mut digit_bytes = [b'0'; 9];
        for slot in digit_bytes.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        let digits = digits.min(9) as usize;
        buf[20..20 + digits].copy_from_slice(&digit_bytes[..digits]);
        len = 20 + digits;
    }
    buf[len] = b'Z';
    out.extend_from_slice(&buf[..=len]);
}

/// `ns` formatted by [`write_timestamp`].
pub(crate) fn format_timestamp(ns: i64, digits: u8) -> String {
    let mut out = Vec::with_capacity(30);
    write_timestamp(&mut out, ns, digits);
    String::from_utf8(out).expect("timestamps are ASCII")
}

/// Parses a `$filter` datetime literal: a date (`2024-01-13`, midnight UTC) or a date-time with
/// optional seconds, 0..=7 fraction digits and a mandatory `Z` or `±HH:MM` offset.
pub(crate) fn parse_filter_literal(text: &str) -> Option<i64> {
    parse(text, 7, true)
}

/// Parses a record timestamp leniently: 0..=9 fraction digits, `Z` or an offset.
pub(crate) fn parse_record_time(text: &str) -> Option<i64> {
    parse(text, 9, false)
}

fn parse(text: &str, max_fraction_digits: usize, allow_date_only: bool) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])? as i64;
    let month = digits(&bytes[5..7])?;
    let day = digits(&bytes[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let day_ns = days_from_civil(year, month, day).checked_mul(NS_PER_DAY)?;
    if bytes.len() == 10 {
        return allow_date_only.then_some(day_ns);
    }
    if !matches!(bytes[10], b'T' | b't') || bytes.len() < 16 || bytes[13] != b':' {
        return None;
    }
    let hour = digits(&bytes[11..13])?;
    let minute = digits(&bytes[14..16])?;
    let mut pos = 16;
    let mut second = 0;
    let mut fraction_ns = 0i64;
    if bytes.get(pos) == Some(&b':') {
        second = digits(bytes.get(pos + 1..pos + 3)?)?;
        pos += 3;
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            let count = pos - start;
            if count == 0 || count > max_fraction_digits {
                return None;
            }
            let value = digits(&bytes[start..pos])? as i64;
            fraction_ns = value * 10i64.pow(9 - count as u32);
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_ns = match &bytes[pos..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])? as i64;
            let minutes = digits(&[*m1, *m2])? as i64;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = (hours * 3600 + minutes * 60) * NS_PER_SEC;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let in_day = (hour as i64 * 3600 + minute as i64 * 60 + second as i64) * NS_PER_SEC;
    day_ns
        .checked_add(in_day + fraction_ns)?
        .checked_sub(offset_ns)
}

fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    let mut value = 0u32;
    for byte in bytes {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

fn put2(out: &mut [u8], value: u32) {
    out[0] = b'0' + (value / 10 % 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

fn put4(out: &mut [u8], value: u32) {
    out[0] = b'0' + (value / 1000 % 10) as u8;
    out[1] = b'0' + (value / 100 % 10) as u8;
    out[2] = b'0' + (value / 10 % 10) as u8;
    out[3] = b'0' + (value % 10) as u8;
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 } as i64;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_each_precision() {
        let ns = to_ns(datetime!(2020-03-13 19:15:41.619_583_3 UTC));
        assert_eq!(format_timestamp(ns, 7), "2020-03-13T19:15:41.6195833Z");
        assert_eq!(format_timestamp(ns, 6), "2020-03-13T19:15:41.619583Z");
        assert_eq!(format_timestamp(ns, 3), "2020-03-13T19:15:41.619Z");
        assert_eq!(format_timestamp(ns, 0), "2020-03-13T19:15:41Z");
    }

    #[test]
    fn format_agrees_with_the_time_crate_across_dates() {
        let format = time::format_description::well_known::Rfc3339;
        for days in (-800..40_000).step_by(37) {
            let ns = days * NS_PER_DAY + 12_345_678_901;
            let expected = from_ns(ns).format(&format).unwrap();
            assert_eq!(format_timestamp(ns, 9), expected.replace("+00:00", "Z"));
        }
    }

    #[test]
    fn filter_literals_accept_zero_to_seven_digits_and_dates() {
        let base = to_ns(datetime!(2024-01-13 14:13:32 UTC));
        assert_eq!(parse_filter_literal("2024-01-13T14:13:32Z"), Some(base));
        assert_eq!(
            parse_filter_literal("2024-01-13T14:13:32.5Z"),
            Some(base + 500_000_000)
        );
        assert_eq!(
            parse_filter_literal("2024-01-13T14:13:32.1234567Z"),
            Some(base + 123_456_700)
        );
        assert_eq!(
            parse_filter_literal("2024-01-13T15:13:32+01:00"),
            Some(base)
        );
        assert_eq!(
            parse_filter_literal("2024-01-13"),
            Some(to_ns(datetime!(2024-01-13 0:00 UTC)))
        );
        assert_eq!(
            parse_filter_literal("2024-01-13T14:13Z"),
            Some(base - 32 * NS_PER_SEC)
        );
    }

    #[test]
    fn filter_literals_reject_malformed_values() {
        for bad in [
            "2024-01-13T14:13:32.12345678Z",
            "2024-01-13T14:13:32",
            "'2024-01-13T14:13:32Z'",
            "2024-02-30",
            "2024-13-01T00:00:00Z",
            "2024-01-13T24:00:00Z",
            "2024-01-13T14:13:32.Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_filter_literal(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_times_accept_nine_digits_and_offsets() {
        assert_eq!(
            parse_record_time("2025-04-11T05:26:49.580091+00:00"),
            Some(to_ns(datetime!(2025-04-11 05:26:49.580091 UTC)))
        );
        assert_eq!(
            parse_record_time("2025-04-11T05:26:49.123456789Z"),
            Some(to_ns(datetime!(2025-04-11 05:26:49.123456789 UTC)))
        );
        assert_eq!(parse_record_time("2025-04-11"), None);
    }
}
