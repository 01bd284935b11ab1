//! One incremental run of a job, the same whether a timer, the admin endpoint or the CLI
//! started it:
//!
//! 1. take the job's lock (a lease on its container); if it is held, report "skipped";
//! 2. read the checkpoint C (`last_datetime`); on a first run C = now - `INITIAL_LOOKBACK`;
//! 3. the range is [C - `REPLAY_WINDOW`, now - `QUERY_LAG`);
//! 4. cut it into slices and fetch several at once, as many as the throttle budget keeps busy;
//! 5. write each record whose id was not written before (ids inside the replay window are kept
//!    in the state blob);
//! 6. save the state, then advance C to the end of the contiguous run of completed slices;
//! 7. stop starting slices when `RUN_TIME_BUDGET` is spent and return "partial".
//!
//! Architecture invariant: the checkpoint only moves after the blobs of every slice before it
//! and the state blob naming their records are stored, and only under the run's lease.

pub mod dedup;
pub mod fetch;
pub mod report;
pub mod slices;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tracing::Instrument;

use crate::config::{Config, JobSpecConfig, RETENTION};
use crate::graph::FetchStats;
use crate::job::JobKind;
use crate::service::{Context, Trigger};
use crate::storage::{ETag, LastRun, RunLock, Storage};
use crate::timestamp;
use dedup::WrittenIds;
use fetch::{Counts, SliceContext};
use report::{Outcome, RunReport};
use slices::{Horizon, Slice, span};

/// How far inside Entra's retention a first run or a backfill may start, so that Graph does not
/// refuse the filter as too old.
const RETENTION_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Options of one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// An explicit past range `[from, to)`; the checkpoint does not move.
    pub backfill: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Where progress is shown (the CLI); `None` under the host.
    pub progress: Option<Arc<dyn Progress>>,
}

/// Receives progress while a run goes.
pub trait Progress: Send + Sync {
    /// The run has `slices` slices to fetch.
    fn planned(&self, slices: u64);
    /// Another slice finished.
    fn advanced(&self, slices_done: u64, records_fetched: u64);
    /// The run ended.
    fn finished(&self);
}

/// A report with a fresh run id and nothing done yet.
pub fn new_report(kind: JobKind, trigger: &Trigger) -> RunReport {
    RunReport {
        run_id: uuid::Uuid::new_v4().to_string(),
        job: kind.name().to_owned(),
        invocation_id: trigger.invocation_id.clone(),
        started_at: Some(timestamp::format(OffsetDateTime::now_utc())),
        ..RunReport::default()
    }
}

/// Runs one job and reports what it did. Never panics on bad input; every failure ends up in
/// the report (outcome `failed`, with the reason).
pub async fn run(
    context: &Context,
    kind: JobKind,
    trigger: &Trigger,
    options: RunOptions,
) -> RunReport {
    let mut report = new_report(kind, trigger);
    let span = tracing::info_span!(
        "job.run",
        job = %kind,
        run.id = %report.run_id,
        invocation.id = trigger.invocation_id.as_deref().unwrap_or(""),
    );
    let started = Instant::now();
    async {
        let job = context.config.job(kind).clone();
        if let Err(reason) = run_locked(context, &job, &options, &mut report, started).await {
            report.outcome = Some(Outcome::Failed);
            report.reason = Some(reason);
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        log_report(&report);
        if let Some(progress) = &options.progress {
            progress.finished();
        }
    }
    .instrument(span)
    .await;
    report
}

fn log_report(report: &RunReport) {
    let outcome = report.outcome.map(Outcome::as_str).unwrap_or("unknown");
    let json = serde_json::to_string(report).unwrap_or_default();
    match report.outcome {
        Some(Outcome::Failed) => tracing::error!(
            run.outcome = outcome,
            records.written = report.records_written,
            run.report = %json,
            "run report"
        ),
        _ => tracing::info!(
            run.outcome = outcome,
            records.written = report.records_written,
            run.report = %json,
            "run report"
        ),
    }
}

async fn run_locked(
    context: &Context,
    job: &JobSpecConfig,
    options: &RunOptions,
    report: &mut RunReport,
    started: Instant,
) -> Result<(), String> {
    let storage = &context.storage;
    let config = &context.config;
    storage
        .ensure_container(&job.container)
        .await
        .map_err(|e| e.to_string())?;
    storage
        .ensure_container(&config.storage.state_container)
        .await
        .map_err(|e| e.to_string())?;
    let Some(lock) = storage
        .try_lock_for(&job.container, config.run.lock_lease)
        .await
        .map_err(|e| e.to_string())?
    else {
        report.outcome = Some(Outcome::Skipped);
        report.reason = Some("skipped: another run holds the lock".into());
        return Ok(());
    };
    let result = run_with_lock(context, job, options, report, &lock, started).await;
    if let Err(error) = lock.release().await {
        // The lease lapses by itself within a minute; nothing is lost.
        tracing::warn!(error = %error, "could not release the run lock; it lapses within 60 s");
    }
    result
}

async fn run_with_lock(
    context: &Context,
    job: &JobSpecConfig,
    options: &RunOptions,
    report: &mut RunReport,
    lock: &RunLock,
    started: Instant,
) -> Result<(), String> {
    let config = &context.config;
    let storage = &context.storage;
    let state = storage
        .read_checkpoint(&job.container)
        .await
        .map_err(|e| e.to_string())?;
    let checkpoint_before = state.checkpoint;
    report.checkpoint_before = checkpoint_before.map(timestamp::format);
    report.backfill = options.backfill.is_some();

    let now = timestamp::truncate_to_ticks(OffsetDateTime::now_utc());
    let planned = plan_range(config, checkpoint_before, options.backfill, now)?;
    let (range_start, range_end) = (planned.start, planned.end);
    report.range_start = Some(timestamp::format(range_start));
    report.range_end = Some(timestamp::format(range_end));
    report.skipped_before_retention = planned
        .skipped_from
        .map(|from| [timestamp::format(from), timestamp::format(range_start)]);
    let slices = slices::plan(range_start, range_end, config.run.slice_width);
    report.slices = slices.len() as u64;
    if let Some(progress) = &options.progress {
        progress.planned(slices.len() as u64);
    }
    tracing::info!(
        range.start = %timestamp::format(range_start),
        range.end = %timestamp::format(range_end),
        slices = slices.len(),
        "run started"
    );

    let state_name = format!("{}/written-ids.json", job.container);
    let (written, etag) = load_written(storage, &state_name).await?;
    let written = Arc::new(Mutex::new(written));
    let fetch_stats = Arc::new(FetchStats::default());
    let counts = Arc::new(Counts::default());
    let slice_context = Arc::new(SliceContext {
        graph: context.graph.clone(),
        storage: storage.clone(),
        job: job.spec.clone(),
        container: job.container.clone(),
        format: config.storage.format,
        compression: config.storage.compression,
        max_records_per_blob: config.storage.max_records_per_blob,
        republish_updates: config.run.republish_updates,
        written: written.clone(),
        checkpoint_before,
        fetch_stats: fetch_stats.clone(),
        counts: counts.clone(),
    });

    let horizon = Horizon {
        checkpoint_before,
        range_start,
        replay_window: config.run.replay_window,
        backfill: options.backfill.is_some(),
    };
    let outcome = fetch_slices(config, &slices, slice_context, &horizon, lock, options).await;
    copy_counts(report, &counts, &fetch_stats, &outcome);
    if lock.lost().is_cancelled() {
        return Err(
            "lost the run lock (lease renewal failed): the checkpoint was not written".into(),
        );
    }

    // What the completed slices allow; keep every id a later run may fetch again.
    let prefix_end = slices::completed_prefix_end(&slices, &outcome.completed);
    let checkpoint_after = horizon.checkpoint_after(prefix_end);
    let state_body = {
        let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
        written.prune_before(horizon.keep_from(prefix_end));
        written.encode()
    };
    storage
        .save_state(&state_name, state_body.into(), etag.as_ref())
        .await
        .map_err(|e| {
            format!("could not save the written-ids state, the checkpoint was not moved: {e}")
        })?;

    report.checkpoint_after = checkpoint_after.map(timestamp::format);
    report.outcome = Some(match (&outcome.error, outcome.all_completed()) {
        (Some(_), _) => Outcome::Failed,
        (None, true) => Outcome::Complete,
        (None, false) => Outcome::Partial,
    });
    report.reason = match (&outcome.error, outcome.all_completed()) {
        (Some(error), _) => Some(error.clone()),
        (None, true) => None,
        (None, false) => Some(format!(
            "partial, will resume: the run time budget of {} was spent with {} of {} slices done",
            crate::config::format_duration(config.run.run_time_budget),
            outcome.completed.iter().filter(|c| **c).count(),
            slices.len()
        )),
    };
    // The stored report carries the time taken so far (all but the checkpoint write).
    report.duration_ms = started.elapsed().as_millis() as u64;
    let last_run = LastRun {
        run_id: report.run_id.clone(),
        finished_at: OffsetDateTime::now_utc(),
        outcome: report
            .outcome
            .map(Outcome::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        records_written: report.records_written,
        report_json: serde_json::to_string(report).unwrap_or_default(),
    };
    let moved = checkpoint_after.filter(|after| Some(*after) != checkpoint_before);
    storage
        .write_checkpoint(&job.container, lock, moved, &last_run)
        .await
        .map_err(|e| {
            format!("blobs and state are saved but the checkpoint could not be written: {e}")
        })?;
    Ok(())
}

/// The range a run fetches, clamped inside Entra's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlannedRange {
    start: OffsetDateTime,
    end: OffsetDateTime,
    /// The wanted start, when it lay before the retention and was moved up.
    skipped_from: Option<OffsetDateTime>,
}

/// The range a run fetches: `[checkpoint - REPLAY_WINDOW, now - QUERY_LAG)`, a first run from
/// `now - INITIAL_LOOKBACK` (nothing to replay yet), or the backfill's range; clamped inside
/// Entra's retention. A backfill wholly older than the retention is refused.
fn plan_range(
    config: &Config,
    checkpoint: Option<OffsetDateTime>,
    backfill: Option<(OffsetDateTime, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<PlannedRange, String> {
    let oldest = now - span(RETENTION) + span(RETENTION_MARGIN);
    let latest = now - span(config.run.query_lag);
    let (start, end) = match backfill {
        Some((from, to)) => (from, to.min(latest)),
        None => match checkpoint {
            Some(checkpoint) => (checkpoint - span(config.run.replay_window), latest),
            None => (now - span(config.run.initial_lookback), latest),
        },
    };
    if backfill.is_some() && end <= oldest {
        return Err(format!(
            "the backfill range [{}, {}) lies wholly before Entra's 30-day retention (Graph serves records from {} on): nothing can be fetched",
            timestamp::format(start),
            timestamp::format(end),
            timestamp::format(oldest)
        ));
    }
    let skipped_from = (start < oldest).then_some(start);
    if skipped_from.is_some() {
        tracing::warn!(
            range.start = %timestamp::format(start),
            clamped.start = %timestamp::format(oldest),
            "the range starts before Entra's 30-day retention; starting inside it (older records are gone from Graph)"
        );
    }
    Ok(PlannedRange {
        start: start.max(oldest),
        end,
        skipped_from,
    })
}

async fn load_written(storage: &Storage, name: &str) -> Result<(WrittenIds, Option<ETag>), String> {
    match storage.load_state(name).await {
        Ok(Some((body, etag))) => {
            let written =
                WrittenIds::decode(&body).map_err(|e| format!("state blob `{name}`: {e}"))?;
            Ok((written, Some(etag)))
        }
        Ok(None) => Ok((WrittenIds::default(), None)),
        Err(error) => Err(format!("could not read the state blob `{name}`: {error}")),
    }
}

/// What happened to the slices of a run.
struct SlicesOutcome {
    completed: Vec<bool>,
    failed: u64,
    error: Option<String>,
}

impl SlicesOutcome {
    fn all_completed(&self) -> bool {
        self.completed.iter().all(|c| *c)
    }
}

/// Fetches slices, several at once, in order of time, until all are done, the budget is spent,
/// a permanent error makes further slices pointless, or the lock is lost.
async fn fetch_slices(
    config: &Config,
    slices: &[Slice],
    context: Arc<SliceContext>,
    horizon: &Horizon,
    lock: &RunLock,
    options: &RunOptions,
) -> SlicesOutcome {
    let started = Instant::now();
    let budget = config.run.run_time_budget;
    // In-flight slices may finish within a grace period after the budget, then they are dropped
    // (what they wrote is remembered in the state; the checkpoint does not pass them).
    let grace = budget / 8;
    let parallel = parallel_slices(config);
    let lost = lock.lost();
    let mut outcome = SlicesOutcome {
        completed: vec![false; slices.len()],
        failed: 0,
        error: None,
    };
    let mut next = 0;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut stop_starting = false;
    let mut done = 0u64;
    let mut pruned_to = None;
    loop {
        while !stop_starting && next < slices.len() && in_flight.len() < parallel {
            if started.elapsed() >= budget {
                stop_starting = true;
                tracing::warn!(
                    slices.left = slices.len() - next,
                    "run time budget spent: no new slices"
                );
                break;
            }
            let index = next;
            let slice = slices[index];
            let context = context.clone();
            in_flight.spawn(async move { (index, fetch::fetch_slice(context, slice).await) });
            next += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        let hard_stop = tokio::time::sleep((budget + grace).saturating_sub(started.elapsed()));
        tokio::select! {
            Some(joined) = in_flight.join_next() => {
                done += 1;
                match joined {
                    Ok((index, Ok(()))) => {
                        outcome.completed[index] = true;
                        // Forget ids no slice of this run or the next run's replay will see,
                        // so that memory stays bounded by the replay window, not the backlog.
                        let prefix_end = slices::completed_prefix_end(slices, &outcome.completed);
                        if prefix_end > pruned_to {
                            pruned_to = prefix_end;
                            let mut written = context.written.lock().unwrap_or_else(|e| e.into_inner());
                            written.prune_before(horizon.keep_from(prefix_end));
                        }
                    }
                    Ok((_, Err(error))) => {
                        outcome.failed += 1;
                        tracing::error!(error = %error, "slice failed");
                        if error.is_permanent() || outcome.error.is_none() {
                            stop_starting = true;
                        }
                        outcome.error.get_or_insert_with(|| error.to_string());
                    }
                    Err(join_error) => {
                        outcome.failed += 1;
                        stop_starting = true;
                        outcome.error.get_or_insert_with(|| format!("a slice task ended abnormally: {join_error}"));
                    }
                }
                if let Some(progress) = &options.progress {
                    progress.advanced(done, context.counts.fetched.load(Ordering::Relaxed));
                }
            }
            _ = lost.cancelled() => {
                tracing::error!("lost the run lock: stopping");
                break;
            }
            _ = hard_stop => {
                tracing::warn!(slices.in_flight = in_flight.len(), "grace period after the budget is over: dropping slices in flight");
                break;
            }
        }
    }
    // Stop what is left and wait until it has stopped, so that nothing writes after the state
    // is saved or the lock released.
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    outcome
}

/// How many slices to fetch at once: `PARALLEL_SLICES`, or [`auto_parallel_slices`].
fn parallel_slices(config: &Config) -> usize {
    match config.run.parallel_slices {
        Some(n) => n as usize,
        None => auto_parallel_slices(config.graph.max_requests_per_10s),
    }
}

/// `PARALLEL_SLICES=auto`: enough slices to keep a budget of `max_requests_per_10s` busy while
/// pages are slow (latency up to about ten request intervals at Graph's budget of 5), at most 10.
pub fn auto_parallel_slices(max_requests_per_10s: u32) -> usize {
    (max_requests_per_10s as usize * 2).clamp(2, 10)
}

fn copy_counts(
    report: &mut RunReport,
    counts: &Counts,
    stats: &FetchStats,
    outcome: &SlicesOutcome,
) {
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    report.slices_completed = outcome.completed.iter().filter(|c| **c).count() as u64;
    report.slices_failed = outcome.failed;
    report.pages = load(&counts.pages);
    report.records_fetched = load(&counts.fetched);
    report.records_written = load(&counts.written);
    report.records_skipped = load(&counts.skipped);
    report.records_updated = load(&counts.updated);
    report.late_records = load(&counts.late);
    report.max_lateness_seconds = load(&counts.max_lateness_ms) as f64 / 1000.0;
    report.blobs_written = load(&counts.blobs);
    report.bytes_uploaded = load(&counts.bytes);
    report.requests = load(&stats.requests);
    report.throttled = load(&stats.throttled);
    report.retries = load(&stats.retries);
    report.window_restarts = load(&stats.window_restarts);
    report.window_splits = load(&stats.window_splits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config() -> Config {
        Config::from_vars([
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("AZURE_CLIENT_SECRET", "secret"),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.usgovcloudapi.net",
            ),
            ("INITIAL_LOOKBACK", "7d"),
            ("REPLAY_WINDOW", "1h"),
            ("QUERY_LAG", "2m"),
        ])
        .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2026-12-02 12:00 UTC);

    #[test]
    fn a_first_run_starts_initial_lookback_back_without_a_replay() {
        let range = plan_range(&config(), None, None, NOW).unwrap();
        assert_eq!(range.start, datetime!(2026-11-25 12:00 UTC));
        assert_eq!(range.end, datetime!(2026-12-02 11:58 UTC));
        assert_eq!(range.skipped_from, None);
    }

    #[test]
    fn a_later_run_replays_before_its_checkpoint() {
        let checkpoint = datetime!(2026-12-02 10:00 UTC);
        let range = plan_range(&config(), Some(checkpoint), None, NOW).unwrap();
        assert_eq!(range.start, datetime!(2026-12-02 09:00 UTC));
    }

    #[test]
    fn a_start_before_the_retention_is_moved_up_and_reported() {
        let old = datetime!(2026-10-01 00:00 UTC);
        let range = plan_range(&config(), Some(old), None, NOW).unwrap();
        assert_eq!(range.skipped_from, Some(old - time::Duration::hours(1)));
        assert_eq!(
            range.start,
            NOW - span(RETENTION) + span(RETENTION_MARGIN),
            "15 minutes inside the 30 days"
        );
        let backfill = (old, datetime!(2026-11-20 00:00 UTC));
        let range = plan_range(&config(), None, Some(backfill), NOW).unwrap();
        assert!(range.start < range.end);
        assert_eq!(range.skipped_from, Some(old));
    }

    #[test]
    fn a_backfill_wholly_before_the_retention_is_refused() {
        let backfill = (
            datetime!(2026-09-01 00:00 UTC),
            datetime!(2026-09-02 00:00 UTC),
        );
        let error = plan_range(&config(), None, Some(backfill), NOW).unwrap_err();
        assert!(
            error.contains("wholly before Entra's 30-day retention"),
            "{error}"
        );
        assert!(error.contains("2026-09-01T00:00:00.0000000Z"), "{error}");
    }
}
