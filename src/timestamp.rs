//! Graph timestamps: parsed to instants (never compared as strings) and written with seven
//! fractional digits, the precision Graph uses and the Python sample stored in `last_datetime`.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Why a timestamp was refused. The message quotes the value, which is a time, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Not an RFC 3339 date-time with an offset.
    #[error("`{value}` is not an RFC 3339 date-time such as 2024-01-13T14:13:32.1234567Z")]
    Syntax {
        /// The refused text.
        value: String,
    },
    /// More than seven fractional digits, which a seven-digit checkpoint could not hold.
    #[error("`{value}` has more than 7 fractional second digits")]
    TooPrecise {
        /// The refused text.
        value: String,
    },
}

/// Parses a Graph timestamp: RFC 3339 with 0 to 7 fractional digits and `Z` or a numeric offset
/// (`+00:00` in diagnostic-settings exports). The result is in UTC.
pub fn parse(value: &str) -> Result<OffsetDateTime, TimestampError> {
    let digits = fraction_digits(value);
    if digits > 7 {
        return Err(TimestampError::TooPrecise {
            value: value.to_owned(),
        });
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|_| TimestampError::Syntax {
            value: value.to_owned(),
        })
}

/// Formats an instant as UTC RFC 3339 with exactly seven fractional digits
/// (`2019-05-21T19:15:41.6195833Z`). Precision below 100 ns is truncated.
pub fn format(instant: OffsetDateTime) -> String {
    with_separators(instant, "-", ":")
}

/// Formats an instant in the basic ISO 8601 form with seven fractional digits
/// (`20190521T191541.6195833Z`): no colons, so it fits blob names and sorts as text.
pub fn format_compact(instant: OffsetDateTime) -> String {
    with_separators(instant, "", "")
}

fn with_separators(instant: OffsetDateTime, date: &str, time: &str) -> String {
    let t = instant.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{date}{:02}{date}{:02}T{:02}{time}{:02}{time}{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// Truncates an instant to the 100 ns grid that [`format`] can represent.
pub fn truncate_to_ticks(instant: OffsetDateTime) -> OffsetDateTime {
    let t = instant.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 100 * 100)
        .expect("a truncated nanosecond is in range")
}

fn fraction_digits(value: &str) -> usize {
    // The fraction follows the seconds' dot and runs until the offset.
    let Some(time_part) = value.split(['T', 't']).nth(1) else {
        return 0;
    };
    let Some(dot) = time_part.find('.') else {
        return 0;
    };
    time_part[dot + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn accepts_zero_to_seven_fraction_digits() {
        let cases = [
            ("2024-05-01T08:15:53Z", datetime!(2024-05-01 08:15:53 UTC)),
            (
                "2024-05-01T08:15:53.5Z",
                datetime!(2024-05-01 08:15:53.5 UTC),
            ),
            (
                "2024-05-01T05:26:49.580091+00:00",
                datetime!(2024-05-01 05:26:49.580091 UTC),
            ),
            (
                "2019-05-21T19:15:41.6195833Z",
                datetime!(2019-05-21 19:15:41.6195833 UTC),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            parse("2024-05-01T10:00:00+02:00").unwrap(),
            datetime!(2024-05-01 08:00:00 UTC)
        );
    }

    #[test]
    fn refuses_more_than_seven_digits_and_garbage() {
        assert!(matches!(
            parse("2024-05-01T08:15:53.123456789Z"),
            Err(TimestampError::TooPrecise { .. })
        ));
        for bad in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T08:15:53",
            "2024-13-01T00:00:00Z",
        ] {
            assert!(
                matches!(parse(bad), Err(TimestampError::Syntax { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn formats_seven_digits_in_utc() {
        assert_eq!(
            format(datetime!(2019-05-21 19:15:41.6195833 UTC)),
            "2019-05-21T19:15:41.6195833Z"
        );
        assert_eq!(
            format(datetime!(2024-01-01 00:00 UTC)),
            "2024-01-01T00:00:00.0000000Z"
        );
        assert_eq!(
            format(datetime!(2024-01-01 02:00 +02:00)),
            "2024-01-01T00:00:00.0000000Z"
        );
    }

    #[test]
    fn the_compact_form_has_no_separators() {
        assert_eq!(
            format_compact(datetime!(2019-05-21 19:15:41.6195833 UTC)),
            "20190521T191541.6195833Z"
        );
    }

    #[test]
    fn mixed_precision_orders_by_instant_not_by_text() {
        // As text, "...:53Z" sorts after "...:53.1Z"; as instants it is earlier.
        assert!(parse("2024-05-01T08:15:53Z").unwrap() < parse("2024-05-01T08:15:53.1Z").unwrap());
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,64}") {
            let _ = parse(&text);
        }

        #[test]
        fn every_accepted_timestamp_round_trips(
            secs in 0i64..4_102_444_800,
            ticks in 0u32..10_000_000,
            digits in 0usize..=7,
        ) {
            let whole = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let fraction = format!("{ticks:07}");
            let text = if digits == 0 {
                format!("{}Z", &format(whole)[..19])
            } else {
                format!("{}.{}Z", &format(whole)[..19], &fraction[..digits])
            };
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(parse(&format(parsed)).unwrap(), parsed);
            prop_assert_eq!(truncate_to_ticks(parsed), parsed);
        }
    }
}
