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

mod commit;
mod context;
pub mod dedup;
pub mod error;
pub mod fetch;
mod journal;
pub mod plan;
pub mod report;
mod shards;
pub mod share;
pub mod slices;
pub mod sweep;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tracing::Instrument;

use crate::config::{Config, JobSpecConfig};
use crate::job::JobKind;
use crate::source::{FetchLimits, FetchStats};
use crate::storage::{ETag, RunLock, Storage};
use crate::timestamp;
use commit::{Archive, Committer};
pub use context::{Context, ContextError, Trigger};
use dedup::WrittenIds;
use error::RunError;
use fetch::{Counts, Partitions, SliceContext, SliceError, WindowEnd};
use journal::Journal;
use plan::{AfterFailure, PlanStats, Planner};
use report::{Outcome, RunReport};
use shards::IdShards;
use slices::{Horizon, span};
use sweep::{Reconcile, Sweep};
use tokio_util::sync::CancellationToken;

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
    /// The run's range spans `minutes` minutes of event time.
    fn planned(&self, minutes: u64);
    /// Every record of the first `minutes_done` minutes of the range is stored, and
    /// `records_fetched` records were received so far.
    fn advanced(&self, minutes_done: u64, records_fetched: u64);
    /// The run ended.
    fn finished(&self);
}

/// Runs one job and reports what it did. Never panics on bad input; every failure ends up in
/// the report (outcome `failed`, with the reason).
pub async fn run(
    context: &Context,
    kind: JobKind,
    trigger: &Trigger,
    options: RunOptions,
) -> RunReport {
    let mut report = RunReport::new(kind.name(), trigger.invocation_id.clone());
    let span = tracing::info_span!(
        "job.run",
        job = %kind,
        run.id = %report.run_id,
        invocation.id = trigger.invocation_id.as_deref().unwrap_or(""),
    );
    let started = Instant::now();
    async {
        let job = context.config.job(kind).clone();
        if let Err(error) = run_locked(context, &job, &options, &mut report, started).await {
            report.set_outcome(Outcome::Failed, Some(error.to_string()));
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
) -> Result<(), RunError> {
    let storage = &context.storage;
    let config = &context.config;
    storage.ensure_container(&job.container).await?;
    storage
        .ensure_container(&config.storage.state_container)
        .await?;
    let Some(lock) = storage
        .try_lock_for(&job.container, config.run.lock_lease)
        .await?
    else {
        report.set_outcome(
            Outcome::Skipped,
            Some("skipped: another run holds the lock".into()),
        );
        return Ok(());
    };
    // Graph's budget is shared with the runs of other processes (before any Graph request).
    let membership = context.share.join(&job.container).await;
    let result = run_with_lock(context, job, options, report, &lock, started).await;
    membership.leave().await;
    if let Err(error) = &result
        && !matches!(error, RunError::LockLost { .. })
    {
        // A run that failed before its final commit still leaves its report in the metadata
        // (the checkpoint does not move).
        let mut failed = report.clone();
        failed.set_outcome(Outcome::Failed, Some(error.to_string()));
        failed.duration_ms = started.elapsed().as_millis() as u64;
        let last = commit::last_run(&failed, Outcome::Failed.as_str());
        if let Err(write) = storage
            .write_checkpoint(&job.container, &lock, None, &last)
            .await
        {
            tracing::warn!(error = %write, "could not record the failed run in the container metadata");
        }
    }
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
) -> Result<(), RunError> {
    let config = &context.config;
    let storage = &context.storage;
    let state = storage.read_checkpoint(&job.container).await?;
    let checkpoint_before = state.checkpoint;
    let previously_stuck = state
        .last_run
        .as_ref()
        .and_then(|run| serde_json::from_str::<serde_json::Value>(&run.report_json).ok())
        .and_then(|report| report["runs_without_progress"].as_u64())
        .unwrap_or(0);
    // Until the run shows otherwise (a run that fails early made none).
    report.runs_without_progress = previously_stuck + 1;
    report.checkpoint_before = checkpoint_before.map(timestamp::format);
    report.backfill = options.backfill.is_some();

    let now = now_by_graph(context, &job.spec, checkpoint_before, options).await?;
    let planned = plan_range(config, &job.spec, checkpoint_before, options.backfill, now)
        .map_err(RunError::Range)?;
    let (range_start, range_end) = (planned.start, planned.end);
    report.range_start = Some(timestamp::format(range_start));
    report.range_end = Some(timestamp::format(range_end));
    report.skipped_before_retention = planned
        .skipped_from
        .map(|from| [timestamp::format(from), timestamp::format(range_start)]);

    let state_name = format!("{}/written-ids.json", job.container);
    let (mut written, etag) = load_written(storage, &state_name).await?;
    // What runs killed since their last commit wrote is in the journals.
    let journal = Arc::new(Journal::new(storage.clone(), &job.container));
    let journaled = journal.load().await.map_err(|source| RunError::ReadState {
        name: format!("{state_name} journals"),
        source,
    })?;
    if !journaled.is_empty() {
        tracing::info!(
            journal.entries = journaled.len(),
            "ids written after the last commit of an earlier run found in the journal"
        );
    }
    for (key, entry) in journaled {
        written.insert(key, entry);
    }
    let density = written.density_per_hour();
    let backfill = options.backfill.is_some();
    if !backfill {
        let reconcile = Reconcile::resolve(
            written.reconcile(),
            config,
            checkpoint_before,
            etag.is_some(),
            now,
        );
        written.set_reconcile(reconcile);
    }
    let shards = IdShards::new(storage.clone(), &job.container);
    let deadline = started + config.run.run_time_budget;
    // Windows an earlier run left open are resumed where they got, unless the checkpoint was
    // moved past where that run left them (an operator's `checkpoint set`).
    // Stretches it stored within REPLAY_WINDOW of its range end are fetched again, for records
    // published late into them.
    let leftover = written
        .leftover()
        .filter(|l| !backfill && checkpoint_before.is_none_or(|c| l.from >= c))
        .and_then(|l| l.settled(config.run.replay_window));
    let planner = Planner::resuming_within(
        range_start,
        range_end,
        parallel_slices(config),
        config.graph.page_size.min(job.spec.max_page_size) as usize,
        config.graph.min_window,
        density,
        leftover.as_ref(),
        (!job.spec.ordered).then_some(crate::job::UNORDERED_MAX_WINDOW),
    );
    if let Some(progress) = &options.progress {
        progress.planned(minutes(range_end - range_start));
    }
    tracing::info!(
        range.start = %timestamp::format(range_start),
        range.end = %timestamp::format(range_end),
        windows = planner.segments(),
        windows.resumed = leftover.as_ref().map_or(0, |l| l.open.len()),
        density.per_hour = density.unwrap_or(-1.0),
        "run started"
    );
    let planner = Arc::new(Mutex::new(planner));
    let written = Arc::new(Mutex::new(written));
    let fetch_stats = Arc::new(FetchStats::default());
    let counts = Arc::new(Counts::default());
    let slice_context = Arc::new(SliceContext {
        source: context.sources.of(&job.spec),
        storage: storage.clone(),
        job: job.spec.clone(),
        container: job.container.clone(),
        format: config.storage.format,
        compression: config.storage.compression,
        max_records_per_blob: config.storage.max_records_per_blob,
        partition_width: config.run.slice_width,
        republish_updates: config.run.republish_updates,
        written: written.clone(),
        checkpoint_before,
        fetch_stats: fetch_stats.clone(),
        counts: counts.clone(),
        planner: planner.clone(),
        partitions: Partitions::default(),
        stop: CancellationToken::new(),
        limits: FetchLimits::until(tokio::time::Instant::from_std(deadline)),
        journal: journal.clone(),
        collect: None,
    });
    let mut committer = Committer {
        storage,
        container: &job.container,
        lock,
        state_name,
        etag,
        stored: checkpoint_before,
        horizon: Horizon {
            checkpoint_before,
            range_start,
            replay_window: config.run.replay_window,
            backfill,
        },
        range_start,
        written: written.clone(),
        planner: planner.clone(),
        journal,
        source: context.sources.of(&job.spec),
        run_start: tokio::time::Instant::from_std(started),
        query_lag: config.run.query_lag,
        archive: (!config.run.reconcile_window.is_zero()).then(|| Archive {
            shards: shards.clone(),
            from: now - span(config.run.reconcile_window),
            pending: Mutex::default(),
        }),
    };

    let lanes = Lanes {
        deadline,
        main: true,
    };
    let outcome = fetch_windows(
        config,
        slice_context.clone(),
        &mut committer,
        report,
        options,
        lanes,
    )
    .await;
    let (progress, all_done, stats) = {
        let planner = lock_planner(&planner);
        (planner.progress(), planner.all_done(), planner.stats())
    };
    copy_counts(report, &counts, &fetch_stats, &outcome, stats);
    if lock.lost().is_cancelled() {
        let checkpoint = committer
            .stored
            .filter(|c| Some(*c) != checkpoint_before)
            .map_or_else(
                || "the checkpoint was not moved".to_owned(),
                |c| {
                    format!(
                        "the checkpoint stays at {}, written earlier in this run",
                        timestamp::format(c)
                    )
                },
            );
        return Err(RunError::LockLost { checkpoint });
    }

    let checkpoint_after = committer.target(progress);
    report.checkpoint_after = checkpoint_after.map(timestamp::format);
    let moved = checkpoint_after.filter(|after| Some(*after) != checkpoint_before);
    report.made_progress = match options.backfill {
        Some(_) => all_done,
        None => moved.is_some(),
    };
    report.runs_without_progress = if report.made_progress {
        0
    } else {
        previously_stuck + 1
    };
    let (outcome_kind, reason) = conclude(config, &outcome, all_done, moved, options);
    report.set_outcome(outcome_kind, reason);
    if outcome_kind == Outcome::Complete && !backfill {
        // With the range exported, older records Graph published late (when due).
        let sweep = Sweep {
            config,
            main: &slice_context,
            shards: &shards,
            now,
            deadline,
            oldest: now - span(job.spec.retention) + span(RETENTION_MARGIN),
        };
        sweep.run(&mut committer, report, checkpoint_after).await?;
    }
    // The stored report carries the time taken so far (all but the final writes).
    report.duration_ms = started.elapsed().as_millis() as u64;
    // What the next run plans with: records per hour of event time seen by this one.
    if let Some(progress) = progress
        && !backfill
    {
        let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
        written.learn_density(report.records_fetched, progress - range_start);
    }
    let last_run = commit::last_run(report, outcome_kind.as_str());
    committer.commit(checkpoint_after, &last_run).await?;
    Ok(())
}

/// How far a checkpoint may lie ahead of Graph's time before it is refused as in the future
/// (clocks, and the whole seconds of `Date`).
const FUTURE_TOLERANCE: time::Duration = time::Duration::minutes(1);

/// "Now" for planning the run: the local clock, bounded by Graph's when a reply has told it (a
/// host clock ahead of Graph's must not move the checkpoint into Graph's future). A checkpoint
/// ahead of now is refused with both times; when Graph's clock is not known yet, one request
/// asks for it before a run is failed on the local clock's word.
async fn now_by_graph(
    context: &Context,
    job: &crate::job::JobSpec,
    checkpoint: Option<OffsetDateTime>,
    options: &RunOptions,
) -> Result<OffsetDateTime, RunError> {
    let local = timestamp::truncate_to_ticks(OffsetDateTime::now_utc());
    let source = context.sources.of(job);
    let clock = source.clock();
    let best = |graph: Option<OffsetDateTime>| {
        graph.map_or(local, |g| timestamp::truncate_to_ticks(g).min(local))
    };
    let mut now = best(clock.now());
    let Some(checkpoint) = checkpoint.filter(|_| options.backfill.is_none()) else {
        return Ok(now);
    };
    if checkpoint <= now + FUTURE_TOLERANCE {
        return Ok(now);
    }
    if clock.now().is_none() {
        // One request for an empty instant, only to read Graph's `Date`.
        let probe = source.fetch_window(
            job,
            checkpoint,
            checkpoint + time::Duration::nanoseconds(100),
            Arc::new(FetchStats::default()),
            FetchLimits::default(),
        );
        let mut probe = std::pin::pin!(probe);
        let _ = futures::StreamExt::next(&mut probe).await;
        now = best(clock.now());
    }
    if checkpoint <= now + FUTURE_TOLERANCE {
        return Ok(now);
    }
    let by_graph = clock.now().is_some();
    Err(RunError::FutureCheckpoint {
        checkpoint: timestamp::format(checkpoint),
        now: timestamp::format(now),
        source_of_now: if by_graph {
            " by Graph's clock"
        } else {
            " by this host's clock; Graph did not answer"
        },
    })
}

/// The outcome and reason of a run whose windows ended as `outcome` says.
fn conclude(
    config: &Config,
    outcome: &WindowsOutcome,
    all_done: bool,
    moved: Option<OffsetDateTime>,
    options: &RunOptions,
) -> (Outcome, Option<String>) {
    let checkpoint = match (options.backfill.is_some(), moved) {
        (true, _) => "a backfill leaves the checkpoint alone".to_owned(),
        (false, Some(to)) => format!(
            "the checkpoint moved to {} (everything before it is stored)",
            timestamp::format(to)
        ),
        (false, None) => "the checkpoint did not move".to_owned(),
    };
    if let Some(error) = &outcome.error {
        return (Outcome::Failed, Some(format!("{error}; {checkpoint}")));
    }
    if all_done {
        return (Outcome::Complete, None);
    }
    let why = match outcome.throttled {
        Some(pause) => format!(
            "throttled by Graph for {} s, longer than the run has left",
            pause.as_secs()
        ),
        None => format!(
            "the run time budget of {} was spent",
            crate::config::format_duration(config.run.run_time_budget)
        ),
    };
    (
        Outcome::Partial,
        Some(format!("partial, will resume: {why}; {checkpoint}")),
    )
}

/// Whole minutes of a span, at least one for a non-empty span.
fn minutes(span: time::Duration) -> u64 {
    let seconds = span.whole_seconds().max(0) as u64;
    seconds.div_ceil(60)
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
/// the stream's retention. A backfill wholly older than the retention is refused.
fn plan_range(
    config: &Config,
    spec: &crate::job::JobSpec,
    checkpoint: Option<OffsetDateTime>,
    backfill: Option<(OffsetDateTime, OffsetDateTime)>,
    now: OffsetDateTime,
) -> Result<PlannedRange, String> {
    let oldest = now - span(spec.retention) + span(RETENTION_MARGIN);
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
            "the backfill range [{}, {}) lies wholly before {} (the source serves records from {} on): nothing can be fetched",
            timestamp::format(start),
            timestamp::format(end),
            spec.retention_name,
            timestamp::format(oldest)
        ));
    }
    let skipped_from = (start < oldest).then_some(start);
    if skipped_from.is_some() {
        tracing::warn!(
            range.start = %timestamp::format(start),
            clamped.start = %timestamp::format(oldest),
            retention = spec.retention_name,
            "the range starts before the source's retention; starting inside it (older records are gone)"
        );
    }
    Ok(PlannedRange {
        start: start.max(oldest),
        end,
        skipped_from,
    })
}

async fn load_written(
    storage: &Storage,
    name: &str,
) -> Result<(WrittenIds, Option<ETag>), RunError> {
    match storage.load_state(name).await {
        Ok(Some((body, etag))) => {
            let written = WrittenIds::decode(&body).map_err(|source| RunError::BadState {
                name: name.to_owned(),
                source,
            })?;
            Ok((written, Some(etag)))
        }
        Ok(None) => Ok((WrittenIds::default(), None)),
        Err(source) => Err(RunError::ReadState {
            name: name.to_owned(),
            source,
        }),
    }
}

/// How often a run makes its progress durable (state, then checkpoint) while it goes.
const COMMIT_INTERVAL: Duration = Duration::from_secs(60);

/// How [`fetch_windows`] runs its lanes.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    /// The run's budget end: no window starts after it, and those in flight stop after their
    /// current page (dropped a grace period later).
    deadline: Instant,
    /// The run's range (commits every minute, forgets ids, shows progress), not a sweep.
    main: bool,
}

/// How the windows of a run ended.
#[derive(Debug, Default)]
struct WindowsOutcome {
    /// Windows given up in this run after repeated failures.
    failed: u64,
    /// The first failure that was not recovered, for the report.
    error: Option<String>,
    /// Graph asked for a pause longer than the run had left.
    throttled: Option<Duration>,
}

/// Fetches the plan's windows, several at once, oldest first, until all are done, the budget is
/// spent, a permanent error makes further requests pointless, or the lock is lost.
///
/// A transient failure puts its window back (from its progress) and the other lanes go on; a
/// permanent one (permissions, licence, bad request) stops every lane at once. When the budget
/// is spent, windows stop after their current page and keep their progress; whatever is still
/// running a grace period later is aborted (what it stored is in `written`, and its progress as
/// of its last stored page is kept).
async fn fetch_windows(
    config: &Config,
    context: Arc<SliceContext>,
    committer: &mut Committer<'_>,
    report: &RunReport,
    options: &RunOptions,
    lanes: Lanes,
) -> WindowsOutcome {
    let grace = crate::config::grace(config.run.run_time_budget);
    let deadline = lanes.deadline;
    let parallel = parallel_slices(config);
    let lost = committer.lock.lost();
    let planner = context.planner.clone();
    let range_start = committer.range_start;
    let mut outcome = WindowsOutcome::default();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut stop_starting = false;
    let mut commits = tokio::time::interval_at(
        tokio::time::Instant::now() + COMMIT_INTERVAL,
        COMMIT_INTERVAL,
    );
    commits.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while !stop_starting && in_flight.len() < parallel {
            let Some(window) = lock_planner(&planner).next_window() else {
                break;
            };
            let context = context.clone();
            in_flight.spawn(async move { (window.id, fetch::fetch_window(context, window).await) });
        }
        if in_flight.is_empty() {
            break;
        }
        let until_budget = tokio::time::sleep(deadline.saturating_duration_since(Instant::now()));
        let hard_stop =
            tokio::time::sleep((deadline + grace).saturating_duration_since(Instant::now()));
        tokio::select! {
            Some(joined) = in_flight.join_next() => {
                match joined {
                    Ok((id, Ok(WindowEnd::Completed))) => lock_planner(&planner).completed(id),
                    Ok((_, Ok(WindowEnd::HandedBack))) => {}
                    Ok((id, Ok(WindowEnd::Stopped))) => lock_planner(&planner).stopped(id),
                    Ok((id, Err(error))) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match throttled_for(&error) {
                            Some(pause) if pause >= left => {
                                tracing::warn!(retry_after_s = pause.as_secs(), "graph asked for a pause longer than the run has left: stopping");
                                outcome.throttled = Some(pause);
                                lock_planner(&planner).stopped(id);
                                stop_starting = true;
                                context.stop.cancel();
                            }
                            _ if error.is_permanent() => {
                                tracing::error!(error = %error, "window failed for good: stopping every lane");
                                outcome.error.get_or_insert_with(|| error.to_string());
                                outcome.failed += 1;
                                lock_planner(&planner).abandon_all();
                                stop_starting = true;
                                in_flight.abort_all();
                            }
                            _ => match lock_planner(&planner).failed(id) {
                                AfterFailure::Retry => {
                                    tracing::warn!(error = %error, "window failed: it will be fetched again from where it got");
                                }
                                AfterFailure::GiveUp => {
                                    tracing::error!(error = %error, "window failed repeatedly: left for the next run");
                                    outcome.failed += 1;
                                    outcome.error.get_or_insert_with(|| error.to_string());
                                }
                            },
                        }
                    }
                    // Aborted after a permanent failure: already accounted for.
                    Err(join_error) if join_error.is_cancelled() => {}
                    Err(join_error) => {
                        outcome.failed += 1;
                        stop_starting = true;
                        outcome.error.get_or_insert_with(|| format!("a window task ended abnormally: {join_error}"));
                    }
                }
                // Forget ids no window of this run or the next run's replay will see, so that
                // memory stays bounded by the replay window, not the backlog.
                if lanes.main {
                    committer.prune();
                }
                if let Some(sink) = options.progress.as_ref().filter(|_| lanes.main) {
                    let progress = lock_planner(&planner).progress();
                    let covered = progress.map_or(0, |p| minutes(p - range_start));
                    sink.advanced(covered, context.counts.fetched.load(Ordering::Relaxed));
                }
            }
            _ = commits.tick(), if lanes.main && !committer.horizon.backfill => {
                // Progress made durable as the run goes: a run killed later loses none of it.
                let progress = lock_planner(&planner).progress();
                let to = committer.target(progress);
                if to.is_some() && to != committer.stored {
                    let mut snapshot = report.clone();
                    snapshot.records_written = context.counts.written.load(Ordering::Relaxed);
                    snapshot.checkpoint_after = to.map(timestamp::format);
                    snapshot.made_progress = true;
                    snapshot.runs_without_progress = 0;
                    match committer.commit(to, &commit::last_run(&snapshot, "running")).await {
                        Ok(()) => tracing::info!(checkpoint = %to.map(timestamp::format).unwrap_or_default(), "progress committed"),
                        Err(error) => {
                            tracing::error!(error = %error, "could not commit progress: stopping");
                            outcome.error.get_or_insert_with(|| error.to_string());
                            stop_starting = true;
                            context.stop.cancel();
                        }
                    }
                }
            }
            _ = until_budget, if !stop_starting => {
                tracing::warn!(windows.in_flight = in_flight.len(), "run time budget spent: windows stop after their current page");
                stop_starting = true;
                context.stop.cancel();
            }
            _ = lost.cancelled() => {
                tracing::error!("lost the run lock: stopping");
                break;
            }
            _ = hard_stop => {
                tracing::warn!(windows.in_flight = in_flight.len(), "grace period after the budget is over: dropping windows in flight");
                break;
            }
        }
    }
    // Stop what is left and wait until it has stopped, so that nothing writes after the state
    // is saved or the lock released. Their progress as of their last stored page stays.
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    lock_planner(&planner).abandon_all();
    outcome
}

fn lock_planner(planner: &Mutex<Planner>) -> std::sync::MutexGuard<'_, Planner> {
    planner.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pause Graph asked for, when `error` is throttling that outlasted the retries.
fn throttled_for(error: &SliceError) -> Option<Duration> {
    match error {
        SliceError::Source { source, .. } => source.retry_after(),
        SliceError::Storage { .. } => None,
    }
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
    outcome: &WindowsOutcome,
    plan: PlanStats,
) {
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    report.windows = plan.windows;
    report.plan_splits = plan.splits;
    report.windows_failed = outcome.failed;
    report.pages = load(&counts.pages);
    report.records_fetched = load(&counts.fetched);
    report.records_written = load(&counts.written);
    report.records_skipped = load(&counts.skipped);
    report.records_updated = load(&counts.updated);
    report.records_quarantined = load(&counts.quarantined);
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
        let range =
            plan_range(&config(), JobKind::SignIn.spec_template(), None, None, NOW).unwrap();
        assert_eq!(range.start, datetime!(2026-11-25 12:00 UTC));
        assert_eq!(range.end, datetime!(2026-12-02 11:58 UTC));
        assert_eq!(range.skipped_from, None);
    }

    #[test]
    fn a_later_run_replays_before_its_checkpoint() {
        let checkpoint = datetime!(2026-12-02 10:00 UTC);
        let range = plan_range(
            &config(),
            JobKind::SignIn.spec_template(),
            Some(checkpoint),
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(range.start, datetime!(2026-12-02 09:00 UTC));
    }

    #[test]
    fn a_start_before_the_retention_is_moved_up_and_reported() {
        let old = datetime!(2026-10-01 00:00 UTC);
        let range = plan_range(
            &config(),
            JobKind::SignIn.spec_template(),
            Some(old),
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(range.skipped_from, Some(old - time::Duration::hours(1)));
        assert_eq!(
            range.start,
            NOW - span(JobKind::SignIn.spec_template().retention) + span(RETENTION_MARGIN),
            "15 minutes inside the 30 days"
        );
        let backfill = (old, datetime!(2026-11-20 00:00 UTC));
        let range = plan_range(
            &config(),
            JobKind::SignIn.spec_template(),
            None,
            Some(backfill),
            NOW,
        )
        .unwrap();
        assert!(range.start < range.end);
        assert_eq!(range.skipped_from, Some(old));
    }

    #[test]
    fn a_backfill_wholly_before_the_retention_is_refused() {
        let backfill = (
            datetime!(2026-09-01 00:00 UTC),
            datetime!(2026-09-02 00:00 UTC),
        );
        let error = plan_range(
            &config(),
            JobKind::SignIn.spec_template(),
            None,
            Some(backfill),
            NOW,
        )
        .unwrap_err();
        assert!(
            error.contains("wholly before Entra's 30-day retention"),
            "{error}"
        );
        assert!(error.contains("2026-09-01T00:00:00.0000000Z"), "{error}");
    }
}
