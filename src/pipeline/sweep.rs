//! The reconciliation sweep: records Graph publishes after the replay window has passed their
//! time are caught, at most `RECONCILE_WINDOW` later.
//!
//! Every `RECONCILE_INTERVAL`, a run whose range is complete goes on with
//! `[now - RECONCILE_WINDOW, checkpoint - REPLAY_WINDOW)`, oldest first, a chunk of whole hours
//! at a time (as many as hold about [`CHUNK_RECORDS`] records at the density learned). The ids
//! written over a chunk come from the id shards (`shards.rs`) and the state; only records not
//! among them are written, and their ids are appended to the shards when the chunk ends. Where
//! the sweep got is kept in the state blob, so a sweep longer than one run goes on in the next.
//! The report counts what it caught (`records_reconciled`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::commit::{self, Committer};
use super::dedup::{WrittenIds, from_ticks, ticks};
use super::error::CommitError;
use super::fetch::{Counts, SliceContext};
use super::plan::Planner;
use super::report::{ReconcileReport, RunReport};
use super::shards::{IdShards, hour_start};
use super::slices::span;
use super::{Lanes, fetch_windows, lock_planner, parallel_slices};
use crate::config::Config;
use crate::timestamp;

/// Records a sweep chunk is sized for: its ids are held in memory while it is fetched.
const CHUNK_RECORDS: f64 = 250_000.0;

/// Where the reconciliation sweep stands, kept in the state blob (times in 100 ns ticks since
/// the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconcile {
    /// The id shards hold every id written from this time on; absent when they hold every id
    /// the job ever wrote (a job begun by a build with the sweep). A job upgraded from an older
    /// build, or whose state blob was deleted, has shards only from its replay window on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// When the last sweep began, by Graph's clock.
    pub last: i64,
    /// The sweep under way: `[from, to)` and everything before `reached` swept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Span>,
}

/// A sweep's span and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Start.
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
    /// Everything before this is swept.
    pub reached: i64,
}

impl Reconcile {
    /// False for a value no build writes (the state then starts the sweep afresh).
    pub fn is_valid(&self) -> bool {
        self.sweep
            .is_none_or(|s| s.from <= s.reached && s.reached <= s.to)
    }

    /// The state a run starts from: the stored one, or a new one whose shards are complete from
    /// what the state can vouch for. `None` when the sweep is off (`RECONCILE_WINDOW=0`).
    pub fn resolve(
        stored: Option<&Reconcile>,
        config: &Config,
        checkpoint: Option<OffsetDateTime>,
        had_state: bool,
        now: OffsetDateTime,
    ) -> Option<Reconcile> {
        if config.run.reconcile_window.is_zero() {
            return None;
        }
        if let Some(stored) = stored {
            return Some(stored.clone());
        }
        let since = match (checkpoint, had_state) {
            // Nothing was ever written: the shards will hold everything.
            (None, false) => None,
            // The state holds the ids of the replay window before the checkpoint, no older.
            (Some(c), _) => Some(ticks(c - span(config.run.replay_window))),
            (None, true) => Some(ticks(now)),
        };
        // The first sweep comes one interval later: this run reads the recent past anyway.
        Some(Reconcile {
            since,
            last: ticks(now),
            sweep: None,
        })
    }
}

/// What a sweep needs from the run.
pub(super) struct Sweep<'a> {
    pub(super) config: &'a Config,
    /// The run's window context, cloned for the sweep's windows.
    pub(super) main: &'a Arc<SliceContext>,
    pub(super) shards: &'a IdShards,
    /// "Now" for the run, by Graph's clock.
    pub(super) now: OffsetDateTime,
    /// The run's budget end.
    pub(super) deadline: Instant,
    /// Entra's retention: nothing older is asked for.
    pub(super) oldest: OffsetDateTime,
}

impl Sweep<'_> {
    /// Sweeps when due, after the run's range is complete and its checkpoint committed.
    pub(super) async fn run(
        &self,
        committer: &mut Committer<'_>,
        report: &mut RunReport,
        checkpoint: Option<OffsetDateTime>,
    ) -> Result<(), CommitError> {
        let config = self.config;
        let stored = {
            let written = self.main.written.lock().unwrap_or_else(|e| e.into_inner());
            written.reconcile().cloned()
        };
        let (Some(mut state), Some(checkpoint)) = (stored, checkpoint) else {
            return Ok(());
        };
        let interval = span(config.run.reconcile_interval);
        let last = from_ticks(state.last).unwrap_or(self.now);
        if state.sweep.is_none() && self.now - last < interval {
            return Ok(());
        }
        // The run's range is durable before the sweep begins.
        committer
            .commit(Some(checkpoint), &commit::last_run(report, "running"))
            .await?;
        let floor = [
            Some(self.now - span(config.run.reconcile_window)),
            state.since.and_then(from_ticks),
            Some(self.oldest),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(self.now);
        let mut current = match state.sweep {
            Some(sweep) => sweep,
            None => {
                state.last = ticks(self.now);
                let to = checkpoint - span(config.run.replay_window);
                Span {
                    from: ticks(floor),
                    to: ticks(to),
                    reached: ticks(floor),
                }
            }
        };
        current.reached = current.reached.max(ticks(floor)).min(current.to);
        let (from, to) = (
            from_ticks(current.from).unwrap_or(floor),
            from_ticks(current.to).unwrap_or(floor),
        );
        let counts = Arc::new(Counts::default());
        let mut error = None;
        if current.reached < current.to {
            tracing::info!(
                sweep.from = %timestamp::format(from),
                sweep.to = %timestamp::format(to),
                sweep.reached = %from_ticks(current.reached).map(timestamp::format).unwrap_or_default(),
                "reconciliation sweep"
            );
        }
        while current.reached < current.to && Instant::now() < self.deadline {
            let a = from_ticks(current.reached).unwrap_or(to);
            let b = self.chunk_end(a, to);
            match self.chunk(a, b, committer, &counts).await {
                Ok(reached) => current.reached = ticks(reached),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            {
                let mut written = self.main.written.lock().unwrap_or_else(|e| e.into_inner());
                state.sweep = Some(current);
                written.set_reconcile(Some(state.clone()));
            }
            if committer.lock.lost().is_cancelled() {
                break;
            }
            let mut snapshot = report.clone();
            snapshot.records_reconciled = counts.written.load(Ordering::Relaxed);
            committer
                .commit(Some(checkpoint), &commit::last_run(&snapshot, "running"))
                .await?;
            if ticks(b) > current.reached {
                // The chunk stopped early (budget, failure): the next run goes on.
                break;
            }
        }
        let done = current.reached >= current.to;
        state.sweep = (!done).then_some(current);
        {
            let mut written = self.main.written.lock().unwrap_or_else(|e| e.into_inner());
            written.set_reconcile(Some(state));
        }
        let caught = counts.written.load(Ordering::Relaxed);
        report.records_reconciled = caught;
        report.records_written += caught;
        report.blobs_written += counts.blobs.load(Ordering::Relaxed);
        report.bytes_uploaded += counts.bytes.load(Ordering::Relaxed);
        report.records_quarantined += counts.quarantined.load(Ordering::Relaxed);
        report.reconcile = Some(ReconcileReport {
            from: timestamp::format(from),
            to: timestamp::format(to),
            reached: from_ticks(current.reached)
                .map(timestamp::format)
                .unwrap_or_default(),
            done,
            records_fetched: counts.fetched.load(Ordering::Relaxed),
            error,
        });
        if caught > 0 {
            tracing::warn!(
                records.reconciled = caught,
                "the reconciliation sweep wrote records published after the replay window: consider a wider REPLAY_WINDOW"
            );
        }
        Ok(())
    }

    /// The end of the chunk starting at `a`: whole hours holding about [`CHUNK_RECORDS`].
    fn chunk_end(&self, a: OffsetDateTime, to: OffsetDateTime) -> OffsetDateTime {
        let density = {
            let written = self.main.written.lock().unwrap_or_else(|e| e.into_inner());
            written.density_per_hour()
        };
        let hours = density.map_or(1.0, |d| (CHUNK_RECORDS / d.max(1.0)).floor().max(1.0));
        let hours = hours.min(24.0 * 31.0) as i64;
        (hour_start(a) + time::Duration::hours(hours)).min(to)
    }

    /// Sweeps `[a, b)`; returns how far it got.
    async fn chunk(
        &self,
        a: OffsetDateTime,
        b: OffsetDateTime,
        committer: &mut Committer<'_>,
        counts: &Arc<Counts>,
    ) -> Result<OffsetDateTime, String> {
        let config = self.config;
        let mut known = self
            .shards
            .load(a, b)
            .await
            .map_err(|e| format!("reading the id shards: {e}"))?;
        let density = {
            let written = self.main.written.lock().unwrap_or_else(|e| e.into_inner());
            known.extend(written.between(a, b));
            written.density_per_hour()
        };
        let spec = &self.main.job;
        let planner = Planner::resuming_within(
            a,
            b,
            parallel_slices(config),
            config.graph.page_size.min(spec.max_page_size) as usize,
            config.graph.min_window,
            density,
            None,
            (!spec.ordered).then_some(crate::job::UNORDERED_MAX_WINDOW),
        );
        let context = Arc::new(self.main.sweeping(
            WrittenIds::from_entries(known),
            planner,
            counts.clone(),
        ));
        let outcome = fetch_windows(
            config,
            context.clone(),
            committer,
            &RunReport::default(),
            &super::RunOptions::default(),
            Lanes {
                deadline: self.deadline,
                main: false,
            },
        )
        .await;
        // Written by this chunk: known to later sweeps from now on.
        self.shards
            .append(&context.take_collected())
            .await
            .map_err(|e| format!("writing the id shards: {e}"))?;
        let (reached, all_done) = {
            let planner = lock_planner(&context.planner);
            (planner.progress().unwrap_or(a), planner.all_done())
        };
        if let Some(error) = outcome.error {
            return Err(error);
        }
        Ok(if all_done { b } else { reached.clamp(a, b) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config(window: &str) -> Config {
        Config::from_vars([
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("AZURE_CLIENT_SECRET", "secret"),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.usgovcloudapi.net",
            ),
            ("REPLAY_WINDOW", "2h"),
            ("RECONCILE_WINDOW", window),
        ])
        .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    #[test]
    fn a_new_job_has_every_id_in_its_shards_and_sweeps_one_interval_later() {
        let state = Reconcile::resolve(None, &config("24h"), None, false, NOW).unwrap();
        assert_eq!(state.since, None);
        assert_eq!(state.last, ticks(NOW));
        assert_eq!(state.sweep, None);
    }

    #[test]
    fn an_upgraded_job_sweeps_only_what_its_state_vouches_for() {
        let checkpoint = datetime!(2026-11-25 11:50 UTC);
        let state = Reconcile::resolve(None, &config("24h"), Some(checkpoint), true, NOW).unwrap();
        // The state held the ids of the replay window before the checkpoint, no older ones.
        assert_eq!(state.since, Some(ticks(datetime!(2026-11-25 09:50 UTC))));
        // A deleted state blob: the same, from the checkpoint's word.
        let state = Reconcile::resolve(None, &config("24h"), Some(checkpoint), false, NOW).unwrap();
        assert_eq!(state.since, Some(ticks(datetime!(2026-11-25 09:50 UTC))));
    }

    #[test]
    fn a_stored_state_is_kept_and_a_zero_window_turns_the_sweep_off() {
        let stored = Reconcile {
            since: None,
            last: 5,
            sweep: Some(Span {
                from: 1,
                to: 10,
                reached: 4,
            }),
        };
        assert_eq!(
            Reconcile::resolve(Some(&stored), &config("24h"), None, true, NOW),
            Some(stored.clone())
        );
        assert_eq!(
            Reconcile::resolve(Some(&stored), &config("0s"), None, true, NOW),
            None
        );
        assert!(stored.is_valid());
        let backwards = Reconcile {
            sweep: Some(Span {
                from: 1,
                to: 10,
                reached: 11,
            }),
            ..stored
        };
        assert!(!backwards.is_valid());
    }
}
