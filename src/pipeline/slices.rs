//! Planning a run: its range and the slices it is cut into, and the checkpoint a set of
//! completed slices allows.

use std::time::Duration;

use time::OffsetDateTime;

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slice {
    /// Inclusive start.
    pub start: OffsetDateTime,
    /// Exclusive end.
    pub end: OffsetDateTime,
}

/// Cuts `[start, end)` into slices whose inner boundaries lie on a grid of `width` counted from
/// the Unix epoch (whole hours for `1h`), so that blob partitions line up across runs.
pub fn plan(start: OffsetDateTime, end: OffsetDateTime, width: Duration) -> Vec<Slice> {
    let width_ns = width.as_nanos().max(1) as i128;
    let mut slices = Vec::new();
    let mut cursor = start;
    while cursor < end {
        let cursor_ns = cursor.unix_timestamp_nanos();
        let next_grid = (cursor_ns.div_euclid(width_ns) + 1) * width_ns;
        let next = OffsetDateTime::from_unix_timestamp_nanos(next_grid)
            .unwrap_or(end)
            .min(end);
        slices.push(Slice {
            start: cursor,
            end: next,
        });
        cursor = next;
    }
    slices
}

/// The end of the longest run of completed slices from the first one, if any completed.
/// `completed[i]` says whether `slices[i]` was fully written.
pub fn completed_prefix_end(slices: &[Slice], completed: &[bool]) -> Option<OffsetDateTime> {
    slices
        .iter()
        .zip(completed)
        .take_while(|(_, done)| **done)
        .last()
        .map(|(slice, _)| slice.end)
}

/// Converts a `std::time::Duration` for arithmetic with `OffsetDateTime`.
pub fn span(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn slices_follow_the_hour_grid() {
        let slices = plan(
            datetime!(2026-11-25 10:13 UTC),
            datetime!(2026-11-25 12:28 UTC),
            HOUR,
        );
        let bounds: Vec<_> = slices.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(
            bounds,
            vec![
                (
                    datetime!(2026-11-25 10:13 UTC),
                    datetime!(2026-11-25 11:00 UTC)
                ),
                (
                    datetime!(2026-11-25 11:00 UTC),
                    datetime!(2026-11-25 12:00 UTC)
                ),
                (
                    datetime!(2026-11-25 12:00 UTC),
                    datetime!(2026-11-25 12:28 UTC)
                ),
            ]
        );
    }

    #[test]
    fn an_empty_range_has_no_slices() {
        let t = datetime!(2026-11-25 10:00 UTC);
        assert!(plan(t, t, HOUR).is_empty());
        assert!(plan(t, t - time::Duration::hours(1), HOUR).is_empty());
    }

    #[test]
    fn the_prefix_stops_at_the_first_gap() {
        let slices = plan(
            datetime!(2026-11-25 10:00 UTC),
            datetime!(2026-11-25 14:00 UTC),
            HOUR,
        );
        assert_eq!(
            completed_prefix_end(&slices, &[true, true, false, true]),
            Some(datetime!(2026-11-25 12:00 UTC))
        );
        assert_eq!(
            completed_prefix_end(&slices, &[false, true, true, true]),
            None
        );
        assert_eq!(
            completed_prefix_end(&slices, &[true; 4]),
            Some(datetime!(2026-11-25 14:00 UTC))
        );
    }

    proptest! {
        #[test]
        fn slices_tile_the_range_exactly(
            start in 0i64..2_000_000_000,
            length in 0i64..1_000_000,
            width in 1u64..100_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let start = OffsetDateTime::from_unix_timestamp(start).unwrap().replace_nanosecond(nanos).unwrap();
            let end = start + time::Duration::seconds(length);
            let slices = plan(start, end, Duration::from_secs(width));
            if length == 0 {
                prop_assert!(slices.is_empty());
            } else {
                prop_assert_eq!(slices[0].start, start);
                prop_assert_eq!(slices.last().unwrap().end, end);
                for pair in slices.windows(2) {
                    prop_assert_eq!(pair[0].end, pair[1].start);
                }
                for slice in &slices {
                    prop_assert!(slice.start < slice.end);
                    prop_assert!(slice.end - slice.start <= time::Duration::seconds(width as i64));
                }
            }
        }
    }
}
