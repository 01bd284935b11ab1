//! The planner: how a run's range is cut into windows, from the density Graph shows rather than
//! from the clock.
//!
//! The range is a sorted, gapless list of segments. A lane (one of `PARALLEL_SLICES` fetches at
//! once) takes the earliest pending segment and fetches it oldest first (`$orderby` asc), page
//! by page. Because pages come in time order, a segment has *progress*: the instant before which
//! every one of its records is stored. After each stored page the lane asks the planner whether
//! to hand the rest of its segment back: when lanes are idle and the records seen so far say that
//! the rest holds several pages, the rest is cut into pieces of about equal record count and the
//! lane stops following its nextLink. So a sparse range costs about one request per page of
//! data (one window, no empty slices), and a dense one is spread over every lane.
//!
//! **Architecture invariant (slice progress):** everything before [`Planner::progress`] is
//! stored. It is the end of the leading run of done segments, continued by the progress of the
//! first segment that is not done; a segment's progress only moves to the end of a page whose
//! records were all stored and arrived in time order (or to the start of a later sub-window
//! after the earlier one completed). The checkpoint may move to it, so a run stopped in the
//! middle of a segment still moves the checkpoint, and the next run continues from there.

use time::{Duration, OffsetDateTime};

/// A piece is cut only when each piece would hold at least this many pages: every window ends
/// with a partial page, so smaller pieces would spend requests on little data.
const MIN_PAGES_PER_PIECE: f64 = 4.0;

/// A segment that failed this many times (transiently) is left for the next run.
const MAX_FAILURES: u32 = 3;

/// The id of a segment, stable while the run goes (pieces get new ids).
pub type SegmentId = u64;

/// What the planner knows of one piece of the range.
#[derive(Debug, Clone)]
struct Segment {
    id: SegmentId,
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// Every record before this instant is stored (`start` when nothing is known).
    progress: OffsetDateTime,
    state: State,
    /// Records seen by the lane since `measured_from`, to estimate the density of the rest.
    records: u64,
    measured_from: OffsetDateTime,
    failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Active,
    Done,
    /// Failed too often: left for the next run (the checkpoint stops at its progress).
    Abandoned,
}

/// A window handed to a lane: fetch `[from, end)` for segment `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The segment.
    pub id: SegmentId,
    /// Where to start: the segment's progress.
    pub from: OffsetDateTime,
    /// Exclusive end.
    pub end: OffsetDateTime,
}

/// What to do after a segment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Fetch it again later, from its progress.
    Retry,
    /// Retried too often: left for the next run.
    GiveUp,
}

/// Counters for the run report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// Windows handed to lanes (including retries and pieces).
    pub windows: u64,
    /// Times a segment's rest was cut into pieces.
    pub splits: u64,
}

/// What a run leaves for the next: beyond `from` (the checkpoint it wrote) and up to `end`,
/// every record is stored except in the `open` segments, each stored up to its progress. The
/// next run resumes each open segment from its progress instead of fetching again what other
/// lanes already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The checkpoint this applies from.
    pub from: OffsetDateTime,
    /// The end of the range the run planned.
    pub end: OffsetDateTime,
    /// `(start, end, progress)` of each segment not done, in time order, within `[from, end)`.
    pub open: Vec<(OffsetDateTime, OffsetDateTime, OffsetDateTime)>,
}

impl Leftover {
    /// What of this leftover the next run may trust: stretches fetched by the last run are
    /// complete only for records at least `replay` older than the last run's range end (a
    /// record may be published up to `replay` after its time), so the last `replay` before
    /// `end` is planned afresh, open windows there included. `None` when nothing is left.
    pub fn settled(&self, replay: std::time::Duration) -> Option<Leftover> {
        let replay = Duration::try_from(replay).unwrap_or(Duration::MAX);
        let end = self.end.checked_sub(replay)?;
        if end <= self.from {
            return None;
        }
        let open = self
            .open
            .iter()
            .filter(|(a, _, _)| *a < end)
            .map(|(a, b, p)| (*a, (*b).min(end), (*p).min(end)))
            .collect();
        Some(Leftover {
            from: self.from,
            end,
            open,
        })
    }
}

/// The segments of one run's range and the lanes working on them.
#[derive(Debug)]
pub struct Planner {
    segments: Vec<Segment>,
    next_id: SegmentId,
    lanes: usize,
    page_size: f64,
    min_width: Duration,
    /// Fresh windows are no wider than this.
    max_width: Option<Duration>,
    stats: PlanStats,
}

impl Planner {
    /// Plans `[start, end)` for `lanes` parallel fetches of `page_size` records per page.
    /// `density` (records per hour, learned by earlier runs) cuts the range up front into
    /// pieces of equal expected record count; without it the range is one window, and the
    /// first page tells how to cut the rest. Pieces are never narrower than `min_width`.
    pub fn new(
        start: OffsetDateTime,
        end: OffsetDateTime,
        lanes: usize,
        page_size: usize,
        min_width: std::time::Duration,
        density: Option<f64>,
    ) -> Planner {
        Planner::resuming(start, end, lanes, page_size, min_width, density, None)
    }

    /// [`Planner::new`], continuing what an earlier run left: within `[leftover.from,
    /// leftover.end)` only the open segments are fetched, each from its progress; the rest of
    /// the range is planned afresh.
    pub fn resuming(
        start: OffsetDateTime,
        end: OffsetDateTime,
        lanes: usize,
        page_size: usize,
        min_width: std::time::Duration,
        density: Option<f64>,
        leftover: Option<&Leftover>,
    ) -> Planner {
        Planner::resuming_within(
            start, end, lanes, page_size, min_width, density, leftover, None,
        )
    }

    /// [`Planner::resuming`], with fresh windows no wider than `max_width` (a source without
    /// time order counts a window's progress only when it completes, so each must fit in a run).
    #[allow(clippy::too_many_arguments)]
    pub fn resuming_within(
        start: OffsetDateTime,
        end: OffsetDateTime,
        lanes: usize,
        page_size: usize,
        min_width: std::time::Duration,
        density: Option<f64>,
        leftover: Option<&Leftover>,
        max_width: Option<std::time::Duration>,
    ) -> Planner {
        let mut planner = Planner {
            segments: Vec::new(),
            next_id: 0,
            lanes: lanes.max(1),
            page_size: page_size.max(1) as f64,
            min_width: Duration::try_from(min_width).unwrap_or(Duration::MINUTE),
            max_width: max_width.and_then(|w| Duration::try_from(w).ok()),
            stats: PlanStats::default(),
        };
        if start >= end {
            return planner;
        }
        let leftover = leftover.filter(|l| l.from >= start && l.from < end && l.end > l.from);
        let Some(leftover) = leftover else {
            planner.plan_fresh(start, end, density, planner.lanes);
            return planner;
        };
        let resumed_end = leftover.end.min(end);
        planner.plan_fresh(start, leftover.from, density, 1);
        let mut cursor = leftover.from;
        for &(a, b, progress) in &leftover.open {
            let (a, b) = (a.max(cursor), b.min(resumed_end));
            if a >= b {
                continue;
            }
            if a > cursor {
                let mut done = planner.segment(cursor, a);
                done.state = State::Done;
                done.progress = a;
                planner.segments.push(done);
            }
            let mut open = planner.segment(a, b);
            open.progress = progress.clamp(a, b);
            planner.segments.push(open);
            cursor = b;
        }
        if resumed_end > cursor {
            let mut done = planner.segment(cursor, resumed_end);
            done.state = State::Done;
            done.progress = resumed_end;
            planner.segments.push(done);
        }
        planner.plan_fresh(resumed_end, end, density, planner.lanes);
        planner
    }

    /// Appends segments for `[start, end)`: pieces of equal expected record count when the
    /// density is known, at most `pieces` of them; one window otherwise.
    fn plan_fresh(
        &mut self,
        start: OffsetDateTime,
        end: OffsetDateTime,
        density: Option<f64>,
        pieces: usize,
    ) {
        if start >= end {
            return;
        }
        let pieces = match density {
            Some(per_hour) if per_hour.is_finite() && per_hour > 0.0 => {
                let hours = (end - start).as_seconds_f64() / 3600.0;
                self.pieces_for(per_hour * hours / self.page_size, pieces)
            }
            _ => 1,
        };
        let pieces = match self.max_width {
            Some(max) if max.is_positive() => {
                let needed = ((end - start).as_seconds_f64() / max.as_seconds_f64()).ceil();
                pieces.max(needed.min(100_000.0) as usize)
            }
            _ => pieces,
        };
        for (a, b) in self.cut(start, end, pieces) {
            let segment = self.segment(a, b);
            self.segments.push(segment);
        }
    }

    /// What the next run needs to resume the segments not done, given the checkpoint written.
    pub fn leftover(&self, checkpoint: OffsetDateTime) -> Option<Leftover> {
        let end = self.segments.last()?.end;
        if checkpoint >= end {
            return None;
        }
        let open: Vec<_> = self
            .segments
            .iter()
            .filter(|s| s.state != State::Done && s.end > checkpoint)
            .map(|s| (s.start.max(checkpoint), s.end, s.progress.max(checkpoint)))
            .collect();
        Some(Leftover {
            from: checkpoint,
            end,
            open,
        })
    }

    /// Spans of event time whose written ids nobody needs any more: inside each stretch of
    /// stored time, everything older than `replay` before the stretch's end (a later run
    /// re-reads only the replay window before its checkpoint, and the checkpoint can land at
    /// the end of any stretch), and nothing a window in flight may fetch again (from its start).
    pub fn forgettable(
        &self,
        replay: std::time::Duration,
    ) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let replay = Duration::try_from(replay).unwrap_or(Duration::MAX);
        let mut spans = Vec::new();
        let mut stretch_start: Option<OffsetDateTime> = None;
        for segment in &self.segments {
            let from = *stretch_start.get_or_insert(segment.start);
            if segment.state == State::Done {
                continue;
            }
            // The stretch ends at this segment's progress.
            let mut until = segment.progress.checked_sub(replay).unwrap_or(from);
            if segment.state == State::Active {
                until = until.min(segment.measured_from);
            }
            if until > from {
                spans.push((from, until));
            }
            stretch_start = None;
        }
        if let (Some(from), Some(last)) = (stretch_start, self.segments.last()) {
            let until = last.end.checked_sub(replay).unwrap_or(from);
            if until > from {
                spans.push((from, until));
            }
        }
        spans
    }

    /// How many pieces `pages` of data should be cut into, with at most `available` pieces.
    fn pieces_for(&self, pages: f64, available: usize) -> usize {
        let by_size = (pages / MIN_PAGES_PER_PIECE).floor();
        (by_size as usize).clamp(1, available.max(1))
    }

    /// Cuts `[a, b)` into `n` pieces of equal width, none narrower than `min_width`.
    fn cut(
        &self,
        a: OffsetDateTime,
        b: OffsetDateTime,
        n: usize,
    ) -> Vec<(OffsetDateTime, OffsetDateTime)> {
        let width = b - a;
        let by_width = if self.min_width.is_positive() {
            (width.as_seconds_f64() / self.min_width.as_seconds_f64()).floor() as usize
        } else {
            n
        };
        let n = n.min(by_width).max(1);
        let mut bounds = Vec::with_capacity(n);
        let mut from = a;
        for i in 1..=n {
            let to = if i == n {
                b
            } else {
                crate::timestamp::truncate_to_ticks(a + width * (i as f64 / n as f64))
            };
            if to > from {
                bounds.push((from, to));
                from = to;
            }
        }
        bounds
    }

    fn segment(&mut self, start: OffsetDateTime, end: OffsetDateTime) -> Segment {
        self.next_id += 1;
        Segment {
            id: self.next_id,
            start,
            end,
            progress: start,
            state: State::Pending,
            records: 0,
            measured_from: start,
            failures: 0,
        }
    }

    fn index(&self, id: SegmentId) -> Option<usize> {
        self.segments.iter().position(|s| s.id == id)
    }

    /// The earliest pending segment, now active; `None` when none is pending.
    pub fn next_window(&mut self) -> Option<Assignment> {
        let segment = self
            .segments
            .iter_mut()
            .find(|s| s.state == State::Pending)?;
        segment.state = State::Active;
        segment.records = 0;
        segment.measured_from = segment.progress;
        self.stats.windows += 1;
        Some(Assignment {
            id: segment.id,
            from: segment.progress,
            end: segment.end,
        })
    }

    /// A page of segment `id` with `records` records is stored; every record of the segment
    /// before `progress` (if known) is stored.
    pub fn page_stored(&mut self, id: SegmentId, records: usize, progress: Option<OffsetDateTime>) {
        let Some(i) = self.index(id) else { return };
        let segment = &mut self.segments[i];
        segment.records += records as u64;
        if let Some(progress) = progress {
            segment.progress = segment.progress.max(progress.min(segment.end));
        }
    }

    /// Called after a page when more pages follow: `true` when the rest of segment `id` was cut
    /// into pending pieces (the lane stops and takes new work); `false` to go on.
    pub fn hand_back(&mut self, id: SegmentId) -> bool {
        let idle = self.idle_lanes();
        if idle == 0 {
            return false;
        }
        let Some(i) = self.index(id) else {
            return false;
        };
        let segment = &self.segments[i];
        let measured = segment.progress - segment.measured_from;
        if segment.state != State::Active || !measured.is_positive() || segment.records == 0 {
            return false;
        }
        let rest = segment.end - segment.progress;
        let per_second = segment.records as f64 / measured.as_seconds_f64();
        let pages_left = per_second * rest.as_seconds_f64() / self.page_size;
        // Only worth it when every piece, this lane's included, keeps a few pages.
        let pieces = self.pieces_for(pages_left, idle + 1);
        if pieces < 2 {
            return false;
        }
        let (progress, end, start) = (segment.progress, segment.end, segment.start);
        let cuts = self.cut(progress, end, pieces);
        if cuts.len() < 2 {
            return false;
        }
        let done = Segment {
            end: progress,
            state: State::Done,
            ..self.segments[i].clone()
        };
        let mut replacement = Vec::with_capacity(cuts.len() + 1);
        if progress > start {
            replacement.push(done);
        }
        for (a, b) in cuts {
            let piece = self.segment(a, b);
            replacement.push(piece);
        }
        self.segments.splice(i..=i, replacement);
        self.stats.splits += 1;
        true
    }

    /// Segment `id` was fetched to its end and stored.
    pub fn completed(&mut self, id: SegmentId) {
        if let Some(i) = self.index(id) {
            let segment = &mut self.segments[i];
            segment.progress = segment.end;
            segment.state = State::Done;
        }
    }

    /// Segment `id` stopped before its end without a failure (the run's budget ran out): it
    /// keeps its progress and is not taken again in this run.
    pub fn stopped(&mut self, id: SegmentId) {
        if let Some(i) = self.index(id) {
            self.segments[i].state = State::Abandoned;
        }
    }

    /// Segment `id` failed transiently: fetch it again from its progress, cut in half when it
    /// failed before (a narrower window may avoid the failure), or give it up for this run.
    pub fn failed(&mut self, id: SegmentId) -> AfterFailure {
        let Some(i) = self.index(id) else {
            return AfterFailure::GiveUp;
        };
        let min_width = self.min_width;
        let segment = &mut self.segments[i];
        segment.failures += 1;
        if segment.failures >= MAX_FAILURES {
            segment.state = State::Abandoned;
            return AfterFailure::GiveUp;
        }
        segment.state = State::Pending;
        let (progress, end, failures) = (segment.progress, segment.end, segment.failures);
        if failures >= 2 && end - progress >= min_width * 2 {
            let start = segment.start;
            let mid = crate::timestamp::truncate_to_ticks(progress + (end - progress) / 2);
            let done = Segment {
                end: progress,
                state: State::Done,
                ..segment.clone()
            };
            let mut first = self.segment(progress, mid);
            let mut second = self.segment(mid, end);
            first.failures = failures;
            second.failures = failures;
            let mut replacement = Vec::with_capacity(3);
            if progress > start {
                replacement.push(done);
            }
            replacement.push(first);
            replacement.push(second);
            self.segments.splice(i..=i, replacement);
            self.stats.splits += 1;
        }
        AfterFailure::Retry
    }

    /// Every segment pending or active is given up (a permanent failure, or the run stops).
    pub fn abandon_all(&mut self) {
        for segment in &mut self.segments {
            if matches!(segment.state, State::Pending | State::Active) {
                segment.state = State::Abandoned;
            }
        }
    }

    /// Lanes with nothing to do: lanes minus active and pending segments.
    fn idle_lanes(&self) -> usize {
        let busy = self
            .segments
            .iter()
            .filter(|s| matches!(s.state, State::Pending | State::Active))
            .count();
        self.lanes.saturating_sub(busy)
    }

    /// Segments waiting for a lane.
    pub fn pending(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.state == State::Pending)
            .count()
    }

    /// True when every segment is done.
    pub fn all_done(&self) -> bool {
        self.segments.iter().all(|s| s.state == State::Done)
    }

    /// The instant before which every record of the range is stored: the end of the leading
    /// done segments, continued by the progress of the first segment not done. `None` when
    /// nothing is known beyond the range's start (or the range is empty).
    pub fn progress(&self) -> Option<OffsetDateTime> {
        let first = self.segments.first()?;
        let mut reached = first.start;
        for segment in &self.segments {
            if segment.state == State::Done {
                reached = segment.end;
            } else {
                reached = segment.progress;
                break;
            }
        }
        (reached > first.start).then_some(reached)
    }

    /// Before this instant no record will be fetched again in this run: the smaller of
    /// [`Planner::progress`] and the start of every window in flight (a window whose skip token
    /// expires starts again from its beginning). Ids older than it may be forgotten once the
    /// next run does not need them either.
    pub fn refetch_horizon(&self) -> Option<OffsetDateTime> {
        let progress = self.progress()?;
        let in_flight = self
            .segments
            .iter()
            .filter(|s| s.state == State::Active)
            .map(|s| s.measured_from)
            .min();
        Some(in_flight.map_or(progress, |from| from.min(progress)))
    }

    /// Counters for the report.
    pub fn stats(&self) -> PlanStats {
        self.stats
    }

    /// Segments in the plan now (for the report and progress display).
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Segments done.
    pub fn done(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.state == State::Done)
            .count()
    }

    #[cfg(test)]
    fn bounds(&self) -> Vec<(OffsetDateTime, OffsetDateTime, State)> {
        self.segments
            .iter()
            .map(|s| (s.start, s.end, s.state))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-28 00:00 UTC);
    const MIN: std::time::Duration = std::time::Duration::from_secs(60);

    fn gapless(planner: &Planner, start: OffsetDateTime, end: OffsetDateTime) {
        let bounds = planner.bounds();
        assert_eq!(bounds.first().unwrap().0, start);
        assert_eq!(bounds.last().unwrap().1, end);
        for pair in bounds.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{bounds:?}");
            assert!(pair[0].0 < pair[0].1);
        }
    }

    #[test]
    fn without_a_density_the_range_is_one_window() {
        let end = T0 + Duration::days(3);
        let mut planner = Planner::new(T0, end, 10, 1000, MIN, None);
        assert_eq!(planner.segments(), 1);
        let window = planner.next_window().unwrap();
        assert_eq!((window.from, window.end), (T0, end));
        assert_eq!(planner.next_window(), None);
    }

    #[test]
    fn a_known_density_cuts_the_range_into_pieces_of_several_pages() {
        let end = T0 + Duration::hours(10);
        // 100 pages in all: ten lanes of ten pages.
        let planner = Planner::new(T0, end, 10, 1000, MIN, Some(10_000.0));
        assert_eq!(planner.segments(), 10);
        gapless(&planner, T0, end);
        // 12 pages: 3 pieces of 4 pages, not 10 pieces of about one.
        let planner = Planner::new(T0, end, 10, 1000, MIN, Some(1_200.0));
        assert_eq!(planner.segments(), 3);
        // Two pages: one window.
        let planner = Planner::new(T0, end, 10, 1000, MIN, Some(200.0));
        assert_eq!(planner.segments(), 1);
    }

    #[test]
    fn a_dense_first_page_spreads_the_rest_over_idle_lanes() {
        let end = T0 + Duration::hours(24);
        let mut planner = Planner::new(T0, end, 10, 1000, MIN, None);
        let window = planner.next_window().unwrap();
        // 1,000 records in the first 6 minutes: about 239 pages left.
        planner.page_stored(window.id, 1000, Some(T0 + Duration::minutes(6)));
        assert!(planner.hand_back(window.id));
        gapless(&planner, T0, end);
        assert_eq!(planner.progress(), Some(T0 + Duration::minutes(6)));
        // The stored part is done, the rest is one piece per lane.
        assert_eq!(planner.pending(), 10);
        let mut windows = Vec::new();
        while let Some(w) = planner.next_window() {
            windows.push(w);
        }
        assert_eq!(windows.len(), 10);
        assert_eq!(windows[0].from, T0 + Duration::minutes(6));
        // No lane is idle now: nobody hands back.
        planner.page_stored(
            windows[0].id,
            1000,
            Some(windows[0].from + Duration::minutes(6)),
        );
        assert!(!planner.hand_back(windows[0].id));
    }

    #[test]
    fn a_sparse_first_page_keeps_following_its_next_link() {
        let end = T0 + Duration::days(3);
        let mut planner = Planner::new(T0, end, 10, 1000, MIN, None);
        let window = planner.next_window().unwrap();
        // 3,000 records over 3 days: the first page covers a day, two pages are left.
        planner.page_stored(window.id, 1000, Some(T0 + Duration::days(1)));
        assert!(!planner.hand_back(window.id));
        assert_eq!(planner.segments(), 1);
    }

    #[test]
    fn progress_is_the_leading_done_segments_then_the_first_partial_one() {
        let end = T0 + Duration::hours(4);
        let mut planner = Planner::new(T0, end, 4, 1000, MIN, Some(4_000.0));
        assert_eq!(planner.segments(), 4);
        let w: Vec<Assignment> = std::iter::from_fn(|| planner.next_window()).collect();
        assert_eq!(planner.progress(), None);
        planner.completed(w[1].id);
        assert_eq!(planner.progress(), None, "the first segment holds it back");
        planner.page_stored(w[0].id, 500, Some(T0 + Duration::minutes(30)));
        assert_eq!(planner.progress(), Some(T0 + Duration::minutes(30)));
        planner.completed(w[0].id);
        planner.page_stored(w[2].id, 10, Some(w[2].from + Duration::minutes(5)));
        assert_eq!(planner.progress(), Some(w[2].from + Duration::minutes(5)));
        // Progress never goes back, nor past the segment's end.
        planner.page_stored(w[2].id, 10, Some(w[2].from));
        planner.page_stored(w[3].id, 10, Some(end + Duration::hours(1)));
        assert_eq!(planner.progress(), Some(w[2].from + Duration::minutes(5)));
        planner.completed(w[2].id);
        assert_eq!(planner.progress(), Some(end));
        assert!(!planner.all_done());
        planner.completed(w[3].id);
        assert!(planner.all_done());
    }

    #[test]
    fn a_stopped_segment_keeps_its_progress_and_is_not_taken_again() {
        let end = T0 + Duration::hours(2);
        let mut planner = Planner::new(T0, end, 1, 1000, MIN, None);
        let w = planner.next_window().unwrap();
        planner.page_stored(w.id, 1000, Some(T0 + Duration::minutes(20)));
        planner.stopped(w.id);
        assert_eq!(planner.next_window(), None);
        assert_eq!(planner.progress(), Some(T0 + Duration::minutes(20)));
    }

    #[test]
    fn a_failing_segment_is_retried_from_its_progress_then_halved_then_given_up() {
        let end = T0 + Duration::hours(2);
        let mut planner = Planner::new(T0, end, 2, 1000, MIN, None);
        let w = planner.next_window().unwrap();
        planner.page_stored(w.id, 1000, Some(T0 + Duration::minutes(20)));
        assert_eq!(planner.failed(w.id), AfterFailure::Retry);
        let again = planner.next_window().unwrap();
        assert_eq!(again.from, T0 + Duration::minutes(20));
        assert_eq!(planner.failed(again.id), AfterFailure::Retry);
        // Second failure: the rest is halved.
        gapless(&planner, T0, end);
        let first = planner.next_window().unwrap();
        let second = planner.next_window().unwrap();
        assert_eq!(first.from, T0 + Duration::minutes(20));
        assert_eq!(first.end, second.from);
        assert_eq!(second.end, end);
        assert_eq!(planner.failed(first.id), AfterFailure::GiveUp);
        planner.completed(second.id);
        assert_eq!(planner.progress(), Some(T0 + Duration::minutes(20)));
        assert!(!planner.all_done());
    }

    #[test]
    fn pieces_are_never_narrower_than_the_minimum_width() {
        let end = T0 + Duration::minutes(3);
        let planner = Planner::new(T0, end, 10, 1000, MIN, Some(10_000_000.0));
        assert_eq!(planner.segments(), 3);
        gapless(&planner, T0, end);
    }

    #[test]
    fn a_leftover_resumes_open_segments_and_skips_what_was_stored() {
        let end = T0 + Duration::hours(10);
        let mut planner = Planner::new(T0, end, 10, 1000, MIN, Some(10_000.0));
        let w: Vec<Assignment> = std::iter::from_fn(|| planner.next_window()).collect();
        assert_eq!(w.len(), 10);
        // The first window got 20 minutes, the third finished, the others got 10 minutes.
        planner.page_stored(w[0].id, 1000, Some(T0 + Duration::minutes(20)));
        planner.completed(w[2].id);
        for window in &w[3..] {
            planner.page_stored(window.id, 500, Some(window.from + Duration::minutes(10)));
        }
        planner.abandon_all();
        let checkpoint = planner.progress().unwrap();
        assert_eq!(checkpoint, T0 + Duration::minutes(20));
        let leftover = planner.leftover(checkpoint).unwrap();
        assert_eq!(leftover.open.len(), 9, "{leftover:?}");

        // The next run replays 10 minutes and continues to a later end.
        let next_end = end + Duration::hours(1);
        let replay_start = checkpoint - Duration::minutes(10);
        let mut next =
            Planner::resuming(replay_start, next_end, 10, 1000, MIN, None, Some(&leftover));
        gapless(&next, replay_start, next_end);
        let windows: Vec<Assignment> = std::iter::from_fn(|| next.next_window()).collect();
        // The replay, the 9 open windows (the third is done), the new hour.
        assert_eq!(windows.len(), 11, "{windows:?}");
        assert_eq!(windows[0].from, replay_start);
        assert_eq!(windows[1].from, checkpoint);
        assert_eq!(
            windows[2].from, w[1].from,
            "the second window got nothing yet"
        );
        assert_eq!(windows[3].from, w[3].from + Duration::minutes(10));
        assert_eq!(windows[10].from, end);
        // What the third window stored is done without a request.
        for window in &windows {
            assert!(window.end <= w[2].from || window.from >= w[2].end);
        }
    }

    #[test]
    fn a_leftover_from_another_checkpoint_is_ignored_where_it_does_not_fit() {
        let leftover = Leftover {
            from: T0 + Duration::hours(5),
            end: T0 + Duration::hours(6),
            open: vec![],
        };
        // The range starts after the leftover (an operator moved the checkpoint on).
        let planner = Planner::resuming(
            T0 + Duration::hours(7),
            T0 + Duration::hours(8),
            4,
            1000,
            MIN,
            None,
            Some(&leftover),
        );
        assert_eq!(planner.segments(), 1);
        assert_eq!(planner.done(), 0);
    }

    #[test]
    fn ids_are_forgotten_only_where_no_later_run_reads_again() {
        let end = T0 + Duration::hours(4);
        let mut planner = Planner::new(T0, end, 4, 1000, MIN, Some(4_000.0));
        let w: Vec<Assignment> = std::iter::from_fn(|| planner.next_window()).collect();
        planner.completed(w[0].id);
        planner.page_stored(w[1].id, 100, Some(w[1].from + Duration::minutes(40)));
        planner.completed(w[2].id);
        let replay = std::time::Duration::from_secs(600);
        let spans = planner.forgettable(replay);
        // The first stretch runs to the second window's progress, but that window is in
        // flight from its start: everything before its start may go.
        assert_eq!(spans[0], (T0, w[1].from));
        // The third window is stored up to the fourth's start (which got nothing).
        assert_eq!(spans[1], (w[2].from, w[2].end - Duration::minutes(10)));
        assert_eq!(spans.len(), 2);
    }

    #[test]
    fn a_leftover_is_trusted_only_a_replay_window_before_its_end() {
        let at = |m: i64| T0 + Duration::minutes(m);
        let leftover = Leftover {
            from: at(0),
            end: at(100),
            open: vec![(at(10), at(20), at(15)), (at(80), at(95), at(90))],
        };
        let settled = leftover
            .settled(std::time::Duration::from_secs(30 * 60))
            .unwrap();
        assert_eq!(settled.end, at(70));
        // The open window before the cut keeps its progress; the one after it is planned anew.
        assert_eq!(settled.open, vec![(at(10), at(20), at(15))]);
        let cut = leftover
            .settled(std::time::Duration::from_secs(15 * 60))
            .unwrap();
        assert_eq!(cut.open[1], (at(80), at(85), at(85)));
        assert_eq!(
            leftover.settled(std::time::Duration::from_secs(200 * 60)),
            None
        );
        // A resumed plan fetches the last replay window again: a record published late into a
        // stretch the last run had stored is not skipped.
        let planner = Planner::resuming(at(0), at(120), 4, 1000, MIN, None, Some(&settled));
        let fetched: Vec<_> = planner
            .segments
            .iter()
            .filter(|s| s.state != State::Done)
            .map(|s| (s.start, s.end))
            .collect();
        assert!(fetched.contains(&(at(10), at(20))), "{fetched:?}");
        assert!(
            fetched.iter().any(|(a, b)| *a <= at(70) && *b > at(70)),
            "{fetched:?}"
        );
    }

    #[test]
    fn an_empty_range_has_no_window() {
        let mut planner = Planner::new(T0, T0, 10, 1000, MIN, None);
        assert_eq!(planner.next_window(), None);
        assert_eq!(planner.progress(), None);
        assert!(planner.all_done());
    }
}
