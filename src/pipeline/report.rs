//! The run report: what one run did, returned as the invocation's `ReturnValue`, logged as one
//! line and kept in the job container's metadata.

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every slice of the range was written and the checkpoint moved to its end.
    Complete,
    /// The time budget ran out (or some slices failed); the completed prefix was saved and the
    /// next run resumes there.
    Partial,
    /// Another run of the job held the lock; nothing was done.
    Skipped,
    /// Nothing could be saved; the checkpoint is unchanged.
    Failed,
}

impl Outcome {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Partial => "partial",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Everything one run did. Times are RFC 3339 with seven fractional digits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// A fresh id per run.
    pub run_id: String,
    /// `audit` or `signin`.
    pub job: String,
    /// The Functions invocation id, when run by the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// How the run ended (`None` only while it runs).
    pub outcome: Option<Outcome>,
    /// Why it was skipped, partial or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True for an explicit `--from/--to` backfill, which never moves the checkpoint.
    pub backfill: bool,
    /// Start of the range the run set out to fetch.
    pub range_start: Option<String>,
    /// End (exclusive) of that range.
    pub range_end: Option<String>,
    /// The part of the wanted range older than Entra's retention, which Graph no longer serves
    /// and the run skipped: `[start, end)` of that span, absent when nothing was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_before_retention: Option<[String; 2]>,
    /// True when the run moved the checkpoint (or, for a backfill, wrote what it set out to);
    /// false for a run that left everything as it found it.
    pub made_progress: bool,
    /// Runs in a row, this one included, that made no progress (0 when this one did): an
    /// operator alerts on this rather than on a single slow run.
    pub runs_without_progress: u64,
    /// `last_datetime` when the run started.
    pub checkpoint_before: Option<String>,
    /// `last_datetime` when the run ended.
    pub checkpoint_after: Option<String>,
    /// Windows handed to lanes: the planner's pieces of the range, retries included.
    pub windows: u64,
    /// Times the planner cut the rest of a window into pieces for idle lanes (or halved a
    /// failing one).
    pub plan_splits: u64,
    /// Windows given up in this run after repeated or permanent failures.
    pub windows_failed: u64,
    /// Graph pages received.
    pub pages: u64,
    /// Records received from Graph (including ones already written).
    pub records_fetched: u64,
    /// Records written to blobs.
    pub records_written: u64,
    /// Records skipped because they had been written before.
    pub records_skipped: u64,
    /// Records that could not be placed (no id, no usable time, a time outside the window asked
    /// for), stored apart under `quarantine/` in the job's container with the reason.
    pub records_quarantined: u64,
    /// Records written again because their content changed (`REPUBLISH_UPDATES=true`).
    pub records_updated: u64,
    /// Records written that were older than the checkpoint the run started from: late arrivals
    /// caught by the replay window.
    pub late_records: u64,
    /// The largest lateness among them, in seconds behind the starting checkpoint.
    pub max_lateness_seconds: f64,
    /// Graph requests sent.
    pub requests: u64,
    /// 429 answers.
    pub throttled: u64,
    /// Requests retried.
    pub retries: u64,
    /// Windows restarted (expired skiptoken) or split (repeated failures).
    pub window_restarts: u64,
    /// Windows split in half after repeated failures.
    pub window_splits: u64,
    /// Data blobs written.
    pub blobs_written: u64,
    /// Bytes uploaded to data blobs.
    pub bytes_uploaded: u64,
    /// Records the reconciliation sweep found that no run had written: published after the
    /// replay window had passed their time (included in `records_written`). Often above zero
    /// means `REPLAY_WINDOW` is too narrow for this tenant.
    pub records_reconciled: u64,
    /// What the reconciliation sweep did in this run, absent when it was not due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileReport>,
    /// When the run started.
    pub started_at: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// The reconciliation sweep's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Start of the span the sweep re-reads (`now - RECONCILE_WINDOW` when it began).
    pub from: String,
    /// End (exclusive) of that span (the checkpoint minus `REPLAY_WINDOW` when it began).
    pub to: String,
    /// Everything before this is swept; equal to `to` when the sweep is done.
    pub reached: String,
    /// True when the sweep covered its span; false when it goes on in the next run.
    pub done: bool,
    /// Records the sweep received.
    pub records_fetched: u64,
    /// Why the sweep stopped early, when it did (a failure of the sweep never fails the run:
    /// the main range is exported; the sweep goes on in the next run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunReport {
    /// A report with a fresh run id and nothing done yet: the one constructor of reports.
    pub fn new(job: &str, invocation_id: Option<String>) -> RunReport {
        RunReport {
            run_id: uuid::Uuid::new_v4().to_string(),
            job: job.to_owned(),
            invocation_id,
            started_at: Some(crate::timestamp::format(time::OffsetDateTime::now_utc())),
            ..RunReport::default()
        }
    }

    /// A report of a run that did not start: `skipped` or `failed`, with the reason.
    pub fn ended(
        job: &str,
        invocation_id: Option<String>,
        outcome: Outcome,
        reason: String,
    ) -> RunReport {
        let mut report = RunReport::new(job, invocation_id);
        report.set_outcome(outcome, Some(reason));
        report
    }

    /// Sets how the run ended and why.
    pub fn set_outcome(&mut self, outcome: Outcome, reason: Option<String>) {
        self.outcome = Some(outcome);
        self.reason = reason;
    }

    /// One human line for the invocation's `Logs`.
    pub fn summary(&self) -> String {
        let outcome = self.outcome.map(Outcome::as_str).unwrap_or("running");
        let mut line = format!(
            "{} run {}: {} written, {} already stored, {} late, {} blobs, checkpoint {} -> {}",
            self.job,
            outcome,
            self.records_written,
            self.records_skipped,
            self.late_records,
            self.blobs_written,
            self.checkpoint_before.as_deref().unwrap_or("none"),
            self.checkpoint_after.as_deref().unwrap_or("none"),
        );
        if let Some(reason) = &self.reason {
            line.push_str(": ");
            line.push_str(reason);
        }
        line
    }
}
