//! Time cells and the checkpoint: the UTC grid that names blob partitions, and [`Horizon`], where
//! the checkpoint may move and which written ids must still be remembered.

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

/// The cell of the UTC grid of `width` (counted from the Unix epoch: whole hours for `1h`) that
/// holds `time`. Records are stored in blobs named after their cell, so partitions line up
/// across runs whatever windows fetched them.
pub fn partition(time: OffsetDateTime, width: Duration) -> Slice {
    let width_ns = width.as_nanos().max(1) as i128;
    let cell = time.unix_timestamp_nanos().div_euclid(width_ns) * width_ns;
    let start = OffsetDateTime::from_unix_timestamp_nanos(cell).unwrap_or(time);
    let end = OffsetDateTime::from_unix_timestamp_nanos(cell + width_ns).unwrap_or(time);
    Slice { start, end }
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

impl Horizon {
    /// The oldest record time whose id must still be remembered while `stored` is the
    /// checkpoint in storage and no window of this run fetches before `refetch`: a run that
    /// starts from `stored` re-reads from `stored - REPLAY_WINDOW`, so nothing after that is
    /// forgotten before the checkpoint that allows it is written (the state never gets ahead of
    /// the checkpoint). A backfill keeps what the job's next regular run replays.
    pub fn keep_from_stored(
        &self,
        stored: Option<OffsetDateTime>,
        refetch: Option<OffsetDateTime>,
    ) -> OffsetDateTime {
        if self.backfill {
            return self.keep_from(refetch);
        }
        let replay_start = stored.unwrap_or(self.range_start) - span(self.replay_window);
        replay_start.min(refetch.unwrap_or(self.range_start))
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
    fn partitions_are_cells_of_the_utc_grid() {
        let cell = partition(datetime!(2026-11-25 10:13:07.1234567 UTC), HOUR);
        assert_eq!(cell.start, datetime!(2026-11-25 10:00 UTC));
        assert_eq!(cell.end, datetime!(2026-11-25 11:00 UTC));
        let on_boundary = partition(datetime!(2026-11-25 11:00 UTC), HOUR);
        assert_eq!(on_boundary.start, datetime!(2026-11-25 11:00 UTC));
        let before_epoch = partition(datetime!(1969-12-31 23:30 UTC), HOUR);
        assert_eq!(before_epoch.start, datetime!(1969-12-31 23:00 UTC));
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

    #[test]
    fn ids_the_stored_checkpoint_needs_are_kept_until_it_moves() {
        let stored = Some(datetime!(2026-11-25 10:00 UTC));
        let refetch = Some(datetime!(2026-11-25 12:00 UTC));
        // The run got to 12:00, but storage still says 10:00: keep from 09:00.
        assert_eq!(
            horizon(false, stored).keep_from_stored(stored, refetch),
            datetime!(2026-11-25 09:00 UTC)
        );
        // Once 12:00 is stored, from 11:00.
        assert_eq!(
            horizon(false, stored).keep_from_stored(refetch, refetch),
            datetime!(2026-11-25 11:00 UTC)
        );
        // A window in flight from 10:30 keeps what it may fetch again.
        assert_eq!(
            horizon(false, stored).keep_from_stored(refetch, Some(datetime!(2026-11-25 10:30 UTC))),
            datetime!(2026-11-25 10:30 UTC)
        );
        // A first run before its first commit forgets nothing of its range.
        assert_eq!(
            horizon(false, None).keep_from_stored(None, refetch),
            datetime!(2026-11-25 08:00 UTC)
        );
    }

    proptest! {
        #[test]
        fn every_time_lies_in_its_partition(
            seconds in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
            width in 1u64..100_000,
        ) {
            let time = OffsetDateTime::from_unix_timestamp(seconds).unwrap().replace_nanosecond(nanos).unwrap();
            let width = Duration::from_secs(width);
            let cell = partition(time, width);
            prop_assert!(cell.start <= time && time < cell.end);
            prop_assert_eq!(cell.end - cell.start, time::Duration::try_from(width).unwrap());
            prop_assert_eq!(cell.start.unix_timestamp() % width.as_secs() as i64, 0);
        }
    }
}
