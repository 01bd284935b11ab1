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

/// What a run may do with its checkpoint and which written ids it must keep, given the end of
/// the contiguous prefix of completed slices.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    /// `last_datetime` when the run started.
    pub checkpoint_before: Option<OffsetDateTime>,
    /// Start of the run's range.
    pub range_start: OffsetDateTime,
    /// `REPLAY_WINDOW`.
    pub replay_window: Duration,
    /// An explicit backfill never moves the checkpoint.
    pub backfill: bool,
}

impl Horizon {
    /// The checkpoint after the slices before `prefix_end` are written: never backwards, never
    /// moved by a backfill.
    pub fn checkpoint_after(&self, prefix_end: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        match (self.backfill, prefix_end, self.checkpoint_before) {
            (true, _, before) | (false, None, before) => before,
            (false, Some(end), None) => Some(end),
            (false, Some(end), Some(before)) => Some(end.max(before)),
        }
    }

    /// The oldest record time still worth remembering: the next run's replay start, and, while
    /// slices are in flight, nothing after the completed prefix (those slices may still see the
    /// records again).
    pub fn keep_from(&self, prefix_end: Option<OffsetDateTime>) -> OffsetDateTime {
        let next_replay_start = self
            .checkpoint_after(prefix_end)
            .unwrap_or(self.range_start)
            - span(self.replay_window);
        match prefix_end {
            Some(end) => next_replay_start.min(end),
            None => next_replay_start.min(self.range_start),
        }
    }
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

    fn horizon(backfill: bool, before: Option<OffsetDateTime>) -> Horizon {
        Horizon {
            checkpoint_before: before,
            range_start: datetime!(2026-11-25 09:00 UTC),
            replay_window: HOUR,
            backfill,
        }
    }

    #[test]
    fn the_checkpoint_moves_forward_only_and_never_in_a_backfill() {
        let before = Some(datetime!(2026-11-25 10:00 UTC));
        let early = Some(datetime!(2026-11-25 09:30 UTC));
        let late = Some(datetime!(2026-11-25 12:00 UTC));
        assert_eq!(horizon(false, before).checkpoint_after(late), late);
        assert_eq!(horizon(false, before).checkpoint_after(early), before);
        assert_eq!(horizon(false, before).checkpoint_after(None), before);
        assert_eq!(horizon(false, None).checkpoint_after(early), early);
        assert_eq!(horizon(true, before).checkpoint_after(late), before);
        assert_eq!(horizon(true, None).checkpoint_after(late), None);
    }

    #[test]
    fn ids_are_kept_from_the_next_replay_start_and_the_open_slices() {
        let before = Some(datetime!(2026-11-25 10:00 UTC));
        let prefix = Some(datetime!(2026-11-25 12:00 UTC));
        assert_eq!(
            horizon(false, before).keep_from(prefix),
            datetime!(2026-11-25 11:00 UTC)
        );
        assert_eq!(
            horizon(false, before).keep_from(None),
            datetime!(2026-11-25 09:00 UTC)
        );
        // A backfill keeps what the next regular run replays, and all of its open slices.
        assert_eq!(
            horizon(true, before).keep_from(prefix),
            datetime!(2026-11-25 09:00 UTC)
        );
        assert_eq!(
            horizon(true, before).keep_from(Some(datetime!(2026-11-25 08:30 UTC))),
            datetime!(2026-11-25 08:30 UTC)
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
