//! Fetching one window of the plan and writing its new records: the loop that turns Graph pages
//! into blobs, and tells the planner how far the window got after every page.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::dedup::{self, Decision, Entry, WrittenIds};
use super::plan::{Assignment, Planner};
use super::slices::{Slice, partition};
use crate::config::{Compression, OutputFormat};
use crate::job::JobSpec;
use crate::source::{FetchLimits, FetchStats, Page, Source};
use crate::storage::{BlobName, Storage};

/// What a window needs from the run.
pub struct SliceContext {
    /// Where the stream's records come from.
    pub source: Arc<dyn Source>,
    /// Storage.
    pub storage: Storage,
    /// The job.
    pub job: JobSpec,
    /// The job's data container.
    pub container: String,
    /// Blob layout.
    pub format: OutputFormat,
    /// Blob compression.
    pub compression: Compression,
    /// Records per blob at most.
    pub max_records_per_blob: usize,
    /// Width of the UTC grid cells that name blob partitions (`SLICE_WIDTH`).
    pub partition_width: Duration,
    /// Write changed versions of known ids.
    pub republish_updates: bool,
    /// Every record written so far (prior runs inside the replay window, and this run).
    pub written: Arc<Mutex<WrittenIds>>,
    /// The checkpoint the run started from, to recognise late arrivals.
    pub checkpoint_before: Option<OffsetDateTime>,
    /// Graph request statistics of the run.
    pub fetch_stats: Arc<FetchStats>,
    /// Record statistics of the run.
    pub counts: Arc<Counts>,
    /// The run's plan, told about every stored page.
    pub planner: Arc<Mutex<Planner>>,
    /// The next blob sequence number of each partition.
    pub partitions: Partitions,
    /// Cancelled when windows should stop after their current page (the budget is spent).
    pub stop: CancellationToken,
    /// The run's deadline for Graph (`RUN_TIME_BUDGET` from the run's start): a `Retry-After`
    /// beyond it ends the window at once, and one page's retries take a share of what is left.
    pub limits: FetchLimits,
    /// Where the ids of every stored page are appended, for a successor of a killed run.
    pub journal: Arc<super::journal::Journal>,
    /// The reconciliation sweep's windows also collect the ids they store here, for the id
    /// shards (see `shards.rs`).
    pub collect: Option<Mutex<Vec<(u128, Entry)>>>,
}

impl SliceContext {
    /// The context of a sweep window over the run's: the same source, sink and journal, its own
    /// plan, counts and known ids, and the ids it stores collected.
    pub fn sweeping(
        &self,
        written: WrittenIds,
        planner: Planner,
        counts: Arc<Counts>,
    ) -> SliceContext {
        SliceContext {
            source: self.source.clone(),
            storage: self.storage.clone(),
            job: self.job.clone(),
            container: self.container.clone(),
            format: self.format,
            compression: self.compression,
            max_records_per_blob: self.max_records_per_blob,
            partition_width: self.partition_width,
            republish_updates: self.republish_updates,
            written: Arc::new(Mutex::new(written)),
            checkpoint_before: None,
            fetch_stats: self.fetch_stats.clone(),
            counts,
            planner: Arc::new(Mutex::new(planner)),
            partitions: Partitions::default(),
            stop: CancellationToken::new(),
            limits: self.limits,
            journal: self.journal.clone(),
            collect: Some(Mutex::new(Vec::new())),
        }
    }

    /// The ids collected so far (see [`SliceContext::collect`]), emptied.
    pub fn take_collected(&self) -> Vec<(u128, Entry)> {
        self.collect
            .as_ref()
            .map(|c| std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }
}

/// Record statistics shared by the slices of a run.
#[derive(Debug, Default)]
pub struct Counts {
    /// Pages received.
    pub pages: AtomicU64,
    /// Records received.
    pub fetched: AtomicU64,
    /// Records written.
    pub written: AtomicU64,
    /// Records skipped as already written.
    pub skipped: AtomicU64,
    /// Records written again with changed content.
    pub updated: AtomicU64,
    /// Records written whose time was before the starting checkpoint.
    pub late: AtomicU64,
    /// The largest lateness behind the starting checkpoint, in milliseconds.
    pub max_lateness_ms: AtomicU64,
    /// Blobs written.
    pub blobs: AtomicU64,
    /// Bytes uploaded.
    pub bytes: AtomicU64,
    /// Records that could not be placed, stored under `quarantine/`.
    pub quarantined: AtomicU64,
}

/// Why a slice stopped before writing all its records.
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    /// The source failed for good.
    #[error("fetching {window} failed: {source}")]
    Source {
        /// The slice, for the message.
        window: String,
        /// The cause.
        #[source]
        source: crate::source::Error,
    },
    /// Storage failed.
    #[error("writing {window} failed: {source}")]
    Storage {
        /// The slice, for the message.
        window: String,
        /// The cause.
        #[source]
        source: crate::storage::Error,
    },
}

impl SliceError {
    /// True when the same failure would hit every other slice (permissions, licence, bad
    /// request), so the run should stop starting slices.
    pub fn is_permanent(&self) -> bool {
        match self {
            SliceError::Source { source, .. } => !source.is_transient(),
            SliceError::Storage { .. } => false,
        }
    }
}

/// Records waiting to be written: zero-copy slices of their pages' bodies.
struct Pending {
    raw: Vec<bytes::Bytes>,
    entries: Vec<(u128, Entry, Decision, OffsetDateTime)>,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            raw: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.raw.len()
    }

    fn records(&self) -> Vec<&[u8]> {
        self.raw.iter().map(|r| r.as_ref()).collect()
    }
}

/// Sequence numbers tried for one blob when names are already taken, before giving up.
const MAX_TAKEN_NAMES: u32 = 16;

/// Further tries of one blob name after a write that failed and may have landed (2, 4, 8, 16 s
/// apart), before the window fails.
const SAME_NAME_ATTEMPTS: u32 = 4;

/// How a window ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowEnd {
    /// Every record of the window is stored.
    Completed,
    /// The planner took the rest of the window back, cut into pieces for idle lanes.
    HandedBack,
    /// The run asked windows to stop (budget spent); the window's progress is kept.
    Stopped,
}

/// The blob sequence numbers of the partitions written by a run: each partition's counter
/// starts after the blobs that exist (listed once per run), so no stored blob is overwritten.
#[derive(Default)]
pub struct Partitions {
    cells: Mutex<FxHashMap<i128, Arc<tokio::sync::OnceCell<AtomicU32>>>>,
}

impl Partitions {
    async fn next_seq(
        &self,
        storage: &Storage,
        container: &str,
        cell: Slice,
    ) -> Result<u32, crate::storage::Error> {
        let slot = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells
                .entry(cell.start.unix_timestamp_nanos())
                .or_default()
                .clone()
        };
        let counter = slot
            .get_or_try_init(|| async {
                let prefix = BlobName::prefix_for_window(cell.start, cell.end);
                let existing = storage.list_blobs(container, &prefix).await?;
                Ok::<_, crate::storage::Error>(AtomicU32::new(next_sequence(&prefix, &existing)))
            })
            .await?;
        Ok(counter.fetch_add(1, Ordering::Relaxed))
    }
}

/// Fetches `[window.from, window.end)` oldest first and writes every record not written
/// before, in blobs named after the grid cell of their records. Each page's new records are
/// written before the next page is requested; then the planner learns how far the window got
/// and may take the rest back (idle lanes), or the run may ask the window to stop.
pub async fn fetch_window(
    ctx: Arc<SliceContext>,
    window: Assignment,
) -> Result<WindowEnd, SliceError> {
    let label = format!(
        "[{}, {})",
        crate::timestamp::format(window.from),
        crate::timestamp::format(window.end)
    );
    let storage_error = |source| SliceError::Storage {
        window: label.clone(),
        source,
    };
    // Pages in time order let the window resume after its last stored record; a source that
    // ignores the order is noticed on the first page out of order.
    let mut ordered = ctx.job.ordered;
    // Ids of the current page already taken, against an id repeated within one page (ids
    // stored from earlier pages, or before a window restart, are in `written`).
    let mut in_page: FxHashMap<u128, u64> = FxHashMap::default();
    let mut pages = std::pin::pin!(ctx.source.fetch_window(
        &ctx.job,
        window.from,
        window.end,
        ctx.fetch_stats.clone(),
        ctx.limits
    ));
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            // The run's budget ended before the next page was asked for: stopped as after a
            // page, with the progress of the pages stored.
            Err(crate::source::Error::DeadlinePassed { .. }) => return Ok(WindowEnd::Stopped),
            Err(source) => {
                return Err(SliceError::Source {
                    window: label.clone(),
                    source,
                });
            }
        };
        ctx.counts.pages.fetch_add(1, Ordering::Relaxed);
        ctx.counts
            .fetched
            .fetch_add(page.len() as u64, Ordering::Relaxed);
        if ordered && !page.records().map(|r| r.time).is_sorted() {
            ordered = false;
            tracing::warn!(
                window.start = %crate::timestamp::format(window.from),
                window.end = %crate::timestamp::format(window.end),
                "graph returned a page out of time order: this window counts progress only when it completes"
            );
        }
        let mut cells: BTreeMap<i128, (Slice, Pending)> = BTreeMap::new();
        {
            let written = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
            for record in page.records() {
                let key = dedup::id_key(record.id);
                let content = dedup::content_key(record.raw);
                if let Some(&seen) = in_page.get(&key)
                    && (seen == content || !ctx.republish_updates)
                {
                    ctx.counts.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let decision = written.decide(key, content, ctx.republish_updates);
                if decision == Decision::Duplicate {
                    ctx.counts.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                in_page.insert(key, content);
                let cell = partition(record.time, ctx.partition_width);
                let (_, pending) = cells
                    .entry(cell.start.unix_timestamp_nanos())
                    .or_insert_with(|| (cell, Pending::new()));
                pending.raw.push(page.body().slice_ref(record.raw));
                let entry = Entry {
                    ticks: dedup::ticks(record.time),
                    content,
                };
                pending.entries.push((key, entry, decision, record.time));
            }
        }
        // Write this page's records before asking for the next page: a window never waits for
        // the page budget (graph::budget) while it holds a page, so windows cannot deadlock on
        // it, and a blob never spans pages.
        for (_, (cell, mut pending)) in cells {
            while pending.len() > 0 {
                let count = ctx.max_records_per_blob.min(pending.len());
                let rest = split_off(&mut pending, count);
                upload(&ctx, cell, &pending).await.map_err(storage_error)?;
                pending = rest;
            }
        }
        // Stored: `written` knows these ids now.
        in_page.clear();
        // Records that cannot be placed are kept apart, and the window goes on.
        quarantine(&ctx, &page, &label)
            .await
            .map_err(storage_error)?;
        // Every record before the last one of this page is stored, when pages come in order
        // (a later sub-window starts only after the earlier one completed).
        let progress = ordered.then(|| {
            let start = page.window_start.unwrap_or(window.from);
            page.records()
                .last()
                .map_or(start, |record| record.time.max(start))
        });
        let mut planner = ctx.planner.lock().unwrap_or_else(|e| e.into_inner());
        planner.page_stored(window.id, page.len(), progress);
        if !page.more {
            continue;
        }
        if ctx.stop.is_cancelled() {
            return Ok(WindowEnd::Stopped);
        }
        if ordered && planner.hand_back(window.id) {
            return Ok(WindowEnd::HandedBack);
        }
    }
    Ok(WindowEnd::Completed)
}

/// Stores each record of `page` that cannot be placed (no id, no usable time, a time outside the
/// window asked for) under `quarantine/`, with the reason and the query, named by its content:
/// a record fetched again is stored once. Counted in the report; never logged.
async fn quarantine(
    ctx: &SliceContext,
    page: &Page,
    query: &str,
) -> Result<(), crate::storage::Error> {
    for reject in page.rejects() {
        let name = BlobName::quarantine(dedup::content_key(reject.raw));
        let head = serde_json::json!({
            "reason": reject.reason,
            "job": ctx.job.name,
            "query": format!("{} {query}", ctx.job.resource_path),
        })
        .to_string();
        // `{"reason":…,"job":…,"query":…,"record":<the record as Graph sent it>}`
        let mut body = Vec::with_capacity(head.len() + reject.raw.len() + 12);
        body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        body.extend_from_slice(b",\"record\":");
        body.extend_from_slice(reject.raw);
        body.push(b'}');
        match ctx
            .storage
            .upload_records(
                &ctx.container,
                &name,
                &[&body],
                OutputFormat::Ndjson,
                Compression::None,
            )
            .await
        {
            Ok(_) => {
                ctx.counts.quarantined.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(blob.name = %name.as_str(), reason = reject.reason, "record quarantined");
            }
            // Quarantined by an earlier run (with another query): once is enough.
            Err(crate::storage::Error::BlobExists { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn split_off(pending: &mut Pending, count: usize) -> Pending {
    Pending {
        raw: pending.raw.split_off(count),
        entries: pending.entries.split_off(count),
    }
}

async fn upload(
    ctx: &SliceContext,
    cell: Slice,
    pending: &Pending,
) -> Result<(), crate::storage::Error> {
    let records = pending.records();
    // Uploads are conditional (`If-None-Match: *`): a name taken by someone else (an older
    // build, a run that lost its lease) is never replaced; the next sequence number is taken.
    // A write that failed ambiguously (a timeout, a dropped connection, a 5xx) may have landed:
    // it is tried again under the same name, where a landed earlier try is recognised as ours
    // (same bytes), instead of under a new name, which would store the records twice.
    let mut taken = 0;
    let mut in_doubt = 0;
    let mut seq = None;
    let (name, bytes) = loop {
        let this = match seq {
            Some(seq) => seq,
            None => {
                ctx.partitions
                    .next_seq(&ctx.storage, &ctx.container, cell)
                    .await?
            }
        };
        seq = Some(this);
        let name = BlobName::new(cell.start, cell.end, this, ctx.format, ctx.compression);
        match ctx
            .storage
            .upload_records(&ctx.container, &name, &records, ctx.format, ctx.compression)
            .await
        {
            Ok(bytes) => break (name, bytes),
            Err(crate::storage::Error::BlobExists { .. }) if taken < MAX_TAKEN_NAMES => {
                taken += 1;
                seq = None;
                tracing::warn!(blob.name = %name.as_str(), "blob name already taken: using the next sequence number");
            }
            Err(error) if error.is_transient() && in_doubt < SAME_NAME_ATTEMPTS => {
                in_doubt += 1;
                tracing::warn!(blob.name = %name.as_str(), error = %error, "blob write failed and may have landed: trying the same name again");
                tokio::time::sleep(Duration::from_secs(1 << in_doubt)).await;
            }
            Err(error) => return Err(error),
        }
    };
    tracing::debug!(blob.name = %name.as_str(), records = records.len(), blob.bytes = bytes, "blob written");
    // Only now are the records stored: remember them, in memory and in the journal.
    let journaled: Vec<(u128, Entry)> = pending
        .entries
        .iter()
        .map(|(key, entry, _, _)| (*key, *entry))
        .collect();
    {
        let mut written = ctx.written.lock().unwrap_or_else(|e| e.into_inner());
        for (key, entry) in &journaled {
            written.insert(*key, *entry);
        }
    }
    ctx.journal.append(&journaled).await?;
    if let Some(collect) = &ctx.collect {
        collect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&journaled);
    }
    for (_, _, decision, time) in &pending.entries {
        match decision {
            Decision::Updated => ctx.counts.updated.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if let Some(checkpoint) = ctx.checkpoint_before
            && *time < checkpoint
        {
            ctx.counts.late.fetch_add(1, Ordering::Relaxed);
            let lateness_ms = (checkpoint - *time).whole_milliseconds().max(0) as u64;
            ctx.counts
                .max_lateness_ms
                .fetch_max(lateness_ms, Ordering::Relaxed);
        }
    }
    ctx.counts
        .written
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    ctx.counts.blobs.fetch_add(1, Ordering::Relaxed);
    ctx.counts.bytes.fetch_add(bytes, Ordering::Relaxed);
    Ok(())
}

/// The first sequence number after every existing blob of a window (`<prefix><seq>.json…`).
fn next_sequence(prefix: &str, existing: &[String]) -> u32 {
    existing
        .iter()
        .filter_map(|name| name.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next()?.parse::<u32>().ok())
        .map(|seq| seq + 1)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_continues_after_existing_blobs() {
        let prefix = "y=2026/m=11/d=25/h=10/20261125T100000.0000000Z_20261125T110000.0000000Z_";
        assert_eq!(next_sequence(prefix, &[]), 0);
        let existing = vec![
            format!("{prefix}0.json"),
            format!("{prefix}3.json.gz"),
            format!("{prefix}1.json"),
        ];
        assert_eq!(next_sequence(prefix, &existing), 4);
        assert_eq!(next_sequence(prefix, &["other".into()]), 0);
    }

    #[test]
    fn pending_records_split_at_record_boundaries() {
        let mut pending = Pending::new();
        for record in [
            &b"{\"id\":\"a\"}"[..],
            b"{\"id\":\"bb\"}",
            b"{\"id\":\"ccc\"}",
        ] {
            pending.raw.push(bytes::Bytes::from_static(record));
            pending.entries.push((
                0,
                Entry {
                    ticks: 0,
                    content: 0,
                },
                Decision::New,
                OffsetDateTime::UNIX_EPOCH,
            ));
        }
        let rest = split_off(&mut pending, 2);
        assert_eq!(
            pending.records(),
            vec![&b"{\"id\":\"a\"}"[..], b"{\"id\":\"bb\"}"]
        );
        assert_eq!(rest.records(), vec![&b"{\"id\":\"ccc\"}"[..]]);
        assert_eq!(rest.entries.len(), 1);
    }
}
