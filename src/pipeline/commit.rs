//! Making a run's progress durable: the written ids and the windows left open first, then the
//! checkpoint, during the run (every minute) and at its end.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::dedup::{Entry, WrittenIds, ticks};
use super::error::CommitError;
use super::journal::Journal;
use super::lock_planner;
use super::plan::Planner;
use super::report::RunReport;
use super::shards::IdShards;
use super::slices::Horizon;
use crate::source::Source;
use crate::storage::{ETag, LastRun, RunLock, Storage};

/// The last-run record kept in the container metadata.
pub(super) fn last_run(report: &RunReport, outcome: &str) -> LastRun {
    LastRun {
        run_id: report.run_id.clone(),
        finished_at: OffsetDateTime::now_utc(),
        outcome: outcome.to_owned(),
        records_written: report.records_written,
        report_json: serde_json::to_string(report).unwrap_or_default(),
    }
}

/// Makes a run's progress durable, during the run and at its end: first the written ids (with
/// nothing dropped that the checkpoint *in storage* still needs) and the windows left open,
/// then the checkpoint. If the second write fails, the next run starts from the old checkpoint
/// and still finds every id it may fetch again: the state is never ahead of the checkpoint.
pub(super) struct Committer<'a> {
    pub(super) storage: &'a Storage,
    pub(super) container: &'a str,
    pub(super) lock: &'a RunLock,
    pub(super) state_name: String,
    pub(super) etag: Option<ETag>,
    /// The checkpoint in storage now.
    pub(super) stored: Option<OffsetDateTime>,
    pub(super) horizon: Horizon,
    pub(super) range_start: OffsetDateTime,
    pub(super) written: Arc<Mutex<WrittenIds>>,
    pub(super) planner: Arc<Mutex<Planner>>,
    /// The journals of ids written since the last commit.
    pub(super) journal: Arc<Journal>,
    /// Graph, whose clock bounds the checkpoint.
    pub(super) source: Arc<dyn Source>,
    /// When the run started, by the local monotonic clock.
    pub(super) run_start: tokio::time::Instant,
    /// `QUERY_LAG`.
    pub(super) query_lag: std::time::Duration,
    /// Where pruned ids go for the reconciliation sweep (absent when it is off).
    pub(super) archive: Option<Archive>,
}

/// Ids pruned from the state that the reconciliation sweep still needs, on their way to the id
/// shards: appended before the state that no longer holds them is saved.
pub(super) struct Archive {
    pub(super) shards: IdShards,
    /// Ids older than this are past the sweep's reach (now minus `RECONCILE_WINDOW`).
    pub(super) from: OffsetDateTime,
    pub(super) pending: Mutex<Vec<(u128, Entry)>>,
}

impl Archive {
    fn keep(&self, forgotten: Vec<(u128, Entry)>) {
        let from = ticks(self.from);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(forgotten.into_iter().filter(|(_, e)| e.ticks >= from));
    }

    /// Appends the pending ids to their shards.
    async fn flush(&self) -> Result<(), crate::storage::Error> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if let Err(error) = self.shards.append(&pending).await {
            // Kept for the next attempt; the state in storage still holds them meanwhile.
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(pending);
            return Err(error);
        }
        Ok(())
    }
}

impl Committer<'_> {
    /// Where the checkpoint may move once everything before `progress` is stored: forward
    /// only, never in a backfill, and never past Graph's time at the run's start minus
    /// `QUERY_LAG` (a host clock ahead of Graph's planned a range that ends in Graph's future;
    /// records Graph publishes later for that stretch must stay ahead of the checkpoint).
    pub(super) fn target(&self, progress: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let to = self.horizon.checkpoint_after(progress)?;
        let Some(graph_start) = self.source.clock().at(self.run_start) else {
            return Some(to);
        };
        let ceiling = graph_start - super::slices::span(self.query_lag);
        if to > ceiling {
            tracing::warn!(
                checkpoint.wanted = %crate::timestamp::format(to),
                checkpoint.ceiling = %crate::timestamp::format(ceiling),
                "this host's clock runs ahead of Graph's: the checkpoint stops at Graph's time minus QUERY_LAG"
            );
        }
        Some(to.min(ceiling).max(self.stored.unwrap_or(ceiling).min(to)))
    }

    /// Forgets, in memory, the ids no run needs while `stored` is the checkpoint in storage.
    pub(super) fn prune(&self) {
        let (refetch, progress, forgettable) = {
            let planner = lock_planner(&self.planner);
            let forgettable = if self.horizon.backfill {
                Vec::new()
            } else {
                planner.forgettable(self.horizon.replay_window)
            };
            (planner.refetch_horizon(), planner.progress(), forgettable)
        };
        // Stretches beyond the run's progress stay stored whatever the checkpoint says (the
        // windows left open name them); the leading stretch waits for the checkpoint.
        let beyond = progress.unwrap_or(self.range_start);
        let interior: Vec<_> = forgettable
            .into_iter()
            .filter(|(start, _)| *start >= beyond)
            .collect();
        let keep_from = self.horizon.keep_from_stored(self.stored, refetch);
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut forgotten = written.prune_before(keep_from);
        forgotten.extend(written.forget(&interior));
        drop(written);
        if let Some(archive) = &self.archive {
            archive.keep(forgotten);
        }
    }

    /// Saves the state, then moves the checkpoint to `to` (when it moves) and records `last_run`.
    pub(super) async fn commit(
        &mut self,
        to: Option<OffsetDateTime>,
        last_run: &LastRun,
    ) -> Result<(), CommitError> {
        // Later appends go to the emptied older journal; the ids appended to the other one are
        // in memory, so in the state saved next.
        self.journal.turn().await.map_err(CommitError::State)?;
        self.prune();
        // Ids the saved state will no longer hold are in their shards first.
        if let Some(archive) = &self.archive {
            archive.flush().await.map_err(CommitError::State)?;
        }
        let body = {
            let leftover = if self.horizon.backfill {
                None
            } else {
                to.and_then(|c| lock_planner(&self.planner).leftover(c))
            };
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            if !self.horizon.backfill {
                written.set_leftover(leftover);
            }
            written.encode()
        };
        let etag = self
            .storage
            .save_state(&self.state_name, body.into(), self.etag.as_ref())
            .await
            .map_err(CommitError::State)?;
        self.etag = Some(etag);
        self.journal.saved();
        let moved = to.filter(|to| Some(*to) != self.stored);
        self.storage
            .write_checkpoint(self.container, self.lock, moved, last_run)
            .await
            .map_err(CommitError::Checkpoint)?;
        if moved.is_some() {
            self.stored = moved;
        }
        Ok(())
    }
}
