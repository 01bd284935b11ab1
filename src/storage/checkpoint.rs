//! The checkpoint codec: container metadata ↔ [`ContainerState`].
//!
//! | key | value |
//! |---|---|
//! | `last_datetime` | every record with a time before this is stored; UTC RFC 3339, 7 fractional digits |
//! | `checkpoint_version` | `1` |
//! | `last_run_id`, `last_run_finished_at`, `last_run_outcome`, `last_run_records` | the last run |
//! | `last_run_report` | the last run's report, compact JSON, ASCII, at most [`REPORT_LIMIT`] bytes |
//!
//! The Python sample wrote `last_datetime` as the raw Graph timestamp (`2019-05-21T19:15:41.6195833Z`,
//! or fewer digits) and `last_execution`; both are read, and keys this service does not own are
//! kept, because Set Container Metadata replaces the whole set.
//!
//! Besides the codec, the metadata operations an operator's `checkpoint show` and
//! `checkpoint set` need: [`Storage::read_metadata`] (undecoded, so an unreadable checkpoint
//! can still be shown and replaced) and [`Storage::set_checkpoint`] (only `last_datetime` and
//! `checkpoint_version`, under the run lock's lease id, every other key kept).

use std::collections::HashMap;

use azure_storage_blob::models::{
    BlobContainerClientGetPropertiesOptions, BlobContainerClientGetPropertiesResultHeaders,
    BlobContainerClientSetMetadataOptions,
};
use time::OffsetDateTime;

use super::{Error, RunLock, Storage};
use crate::timestamp;

/// How an operator moves a checkpoint, for hints (`<job>` is `audit` or `signin`).
pub const SET_COMMAND: &str = "entra-export checkpoint set <job> <time>";

/// The checkpoint key, shared with the Python sample.
pub const LAST_DATETIME: &str = "last_datetime";
/// The format version key.
pub const CHECKPOINT_VERSION: &str = "checkpoint_version";
/// The format version this build writes and reads.
pub const VERSION: &str = "1";
/// The last run's id.
pub const LAST_RUN_ID: &str = "last_run_id";
/// When the last run finished (7-digit UTC).
pub const LAST_RUN_FINISHED_AT: &str = "last_run_finished_at";
/// The last run's outcome word.
pub const LAST_RUN_OUTCOME: &str = "last_run_outcome";
/// Records the last run wrote.
pub const LAST_RUN_RECORDS: &str = "last_run_records";
/// The last run's report JSON.
pub const LAST_RUN_REPORT: &str = "last_run_report";
/// The service limit for all metadata names and values of one container together.
pub const METADATA_LIMIT: usize = 8 * 1024;
/// The report never takes more than this, so foreign keys keep room.
pub const REPORT_LIMIT: usize = 4 * 1024;
/// Head-room below [`METADATA_LIMIT`].
const METADATA_MARGIN: usize = 128;

/// What `status` shows for one container, and where a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Every record with a time before this is stored; `None` before the first run.
    pub checkpoint: Option<OffsetDateTime>,
    /// The last run that wrote a checkpoint.
    pub last_run: Option<LastRun>,
    /// The container's lease, which is the run lock.
    pub lease: LeaseInfo,
}

/// The last run, as recorded next to the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// The run id.
    pub run_id: String,
    /// When it finished.
    pub finished_at: OffsetDateTime,
    /// `succeeded`, `partial`, `failed`, … (the pipeline's word).
    pub outcome: String,
    /// Records written.
    pub records_written: u64,
    /// The run report, compact JSON. When written it is truncated safely (see
    /// [`fit_report`]) to fit the metadata limits; read back as stored.
    pub report_json: String,
}

/// The container lease, as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// `available`, `leased`, `expired`, `breaking` or `broken`.
    pub state: String,
    /// `locked` or `unlocked`.
    pub status: String,
}

/// A `last_datetime` (or version) that cannot be read, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The stored value.
    pub value: String,
    /// What to do.
    pub hint: String,
}

/// Reads the checkpoint and last run from container metadata (keys lowercase, as returned).
pub fn decode(
    metadata: &HashMap<String, String>,
) -> Result<(Option<OffsetDateTime>, Option<LastRun>), Unreadable> {
    if let Some(version) = metadata.get(CHECKPOINT_VERSION)
        && version.trim() != VERSION
    {
        return Err(Unreadable {
            value: format!("{CHECKPOINT_VERSION}={version}"),
            hint: format!(
                "this build reads checkpoint version {VERSION} only; run the entra-export version that wrote it, \
                 or, if `{LAST_DATETIME}` is a UTC time, set {CHECKPOINT_VERSION}={VERSION} \
                 (`{SET_COMMAND}` writes both, keeping the other keys)"
            ),
        });
    }
    let checkpoint = match metadata.get(LAST_DATETIME) {
        None => None,
        Some(value) => Some(timestamp::parse(value.trim()).map_err(|error| {
            let reason = match error {
                timestamp::TimestampError::TooPrecise { .. } => {
                    "it has more than 7 fractional second digits"
                }
                timestamp::TimestampError::Syntax { .. } => "it is not an RFC 3339 date-time",
            };
            Unreadable {
                value: value.clone(),
                hint: format!(
                    "{reason}; set it to a UTC time such as 2024-01-13T14:00:00.0000000Z (every \
                     record before it counts as stored) with `{SET_COMMAND}`, which keeps the \
                     other metadata keys, or delete the key to start again from INITIAL_LOOKBACK"
                ),
            }
        })?),
    };
    Ok((checkpoint, decode_last_run(metadata)))
}

/// The last run, or `None` when absent or incomplete (informational only: never an error).
pub fn decode_last_run(metadata: &HashMap<String, String>) -> Option<LastRun> {
    let run_id = metadata.get(LAST_RUN_ID)?.clone();
    let finished_at = match metadata
        .get(LAST_RUN_FINISHED_AT)
        .map(|v| timestamp::parse(v))
    {
        Some(Ok(t)) => t,
        _ => {
            tracing::warn!(run_id = %run_id, "ignoring the recorded last run: `{LAST_RUN_FINISHED_AT}` is missing or unreadable");
            return None;
        }
    };
    Some(LastRun {
        run_id,
        finished_at,
        outcome: metadata.get(LAST_RUN_OUTCOME).cloned().unwrap_or_default(),
        records_written: metadata
            .get(LAST_RUN_RECORDS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        report_json: metadata.get(LAST_RUN_REPORT).cloned().unwrap_or_default(),
    })
}

/// The metadata to write: `current` (foreign keys kept) with the checkpoint (unless `None`),
/// the version and the last run set, the report shortened to fit the limits.
pub fn merge(
    current: &HashMap<String, String>,
    last_datetime: Option<OffsetDateTime>,
    last_run: &LastRun,
) -> HashMap<String, String> {
    let mut metadata = current.clone();
    if let Some(instant) = last_datetime {
        metadata.insert(LAST_DATETIME.to_owned(), timestamp::format(instant));
    }
    metadata.insert(CHECKPOINT_VERSION.to_owned(), VERSION.to_owned());
    metadata.insert(LAST_RUN_ID.to_owned(), header_safe(&last_run.run_id));
    metadata.insert(
        LAST_RUN_FINISHED_AT.to_owned(),
        timestamp::format(last_run.finished_at),
    );
    metadata.insert(LAST_RUN_OUTCOME.to_owned(), header_safe(&last_run.outcome));
    metadata.insert(
        LAST_RUN_RECORDS.to_owned(),
        last_run.records_written.to_string(),
    );
    metadata.remove(LAST_RUN_REPORT);
    let used = metadata_size(&metadata) + LAST_RUN_REPORT.len();
    let budget = METADATA_LIMIT
        .saturating_sub(METADATA_MARGIN)
        .saturating_sub(used)
        .min(REPORT_LIMIT);
    let report = fit_report(&last_run.report_json, budget);
    if !report.is_empty() {
        metadata.insert(LAST_RUN_REPORT.to_owned(), report);
    }
    metadata
}

/// The metadata to write for an operator's `checkpoint set`: `current` with `last_datetime`
/// and `checkpoint_version` set; every other key (the last run, the Python sample's
/// `last_execution`, anybody's) is kept as it is.
pub fn merge_checkpoint(
    current: &HashMap<String, String>,
    last_datetime: OffsetDateTime,
) -> HashMap<String, String> {
    let mut metadata = current.clone();
    metadata.insert(LAST_DATETIME.to_owned(), timestamp::format(last_datetime));
    metadata.insert(CHECKPOINT_VERSION.to_owned(), VERSION.to_owned());
    metadata
}

/// A container's metadata exactly as stored (names lowercase, as returned) and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMetadata {
    /// Every metadata key and value, undecoded.
    pub metadata: HashMap<String, String>,
    /// The container's lease, which is the run lock.
    pub lease: LeaseInfo,
}

impl Storage {
    /// The container's metadata as stored and its lease, without decoding the checkpoint (for
    /// `checkpoint show` and `set`, which must work when the stored checkpoint is unreadable).
    /// A missing container is [`Error::ContainerNotFound`].
    pub async fn read_metadata(&self, container: &str) -> Result<StoredMetadata, Error> {
        let op = self.op("read metadata of", container, None);
        let client = self.container_client(container);
        let properties = op
            .within(self.inner.timeouts.operation, async {
                client.get_properties(None).await.map_err(|e| op.error(e))
            })
            .await?;
        let metadata = properties.metadata().map_err(|e| op.error(e))?;
        let lease = LeaseInfo {
            state: properties
                .lease_state()
                .map_err(|e| op.error(e))?
                .map_or_else(|| "available".to_owned(), |s| s.to_string()),
            status: properties
                .lease_status()
                .map_err(|e| op.error(e))?
                .map_or_else(|| "unlocked".to_owned(), |s| s.to_string()),
        };
        Ok(StoredMetadata { metadata, lease })
    }

    /// Reads the container metadata and writes `update(current)` in its place, both under
    /// `lock`'s lease id: the service refuses them once the lease lapsed or another run holds
    /// it ([`Error::LeaseLost`], [`Error::LeaseMismatch`]). Set Container Metadata replaces the
    /// whole set, so `update` must return every key to keep. Returns the metadata as it was.
    pub async fn update_metadata(
        &self,
        container: &str,
        lock: &RunLock,
        update: impl FnOnce(&HashMap<String, String>) -> HashMap<String, String>,
    ) -> Result<HashMap<String, String>, Error> {
        if lock.container() != container || lock.account() != self.inner.account {
            return Err(Error::LeaseMismatch {
                account: self.inner.account.clone(),
                container: container.to_owned(),
            });
        }
        if lock.lost().is_cancelled() {
            return Err(Error::LeaseLost {
                account: self.inner.account.clone(),
                container: container.to_owned(),
                cause: "lease renewal failed earlier".to_owned(),
            });
        }
        let client = self.container_client(container);
        let op = self.op("write metadata of", container, None);
        let limit = self.inner.timeouts.operation;
        let properties = op
            .within(limit, async {
                client
                    .get_properties(Some(BlobContainerClientGetPropertiesOptions {
                        lease_id: Some(lock.lease_id().to_owned()),
                        ..Default::default()
                    }))
                    .await
                    .map_err(|e| lock.classify(e, &op))
            })
            .await?;
        let current = properties.metadata().map_err(|e| op.error(e))?;
        let updated = update(&current);
        op.within(limit, async {
            client
                .set_metadata(
                    &updated,
                    Some(BlobContainerClientSetMetadataOptions {
                        lease_id: Some(lock.lease_id().to_owned()),
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| lock.classify(e, &op))
        })
        .await?;
        Ok(current)
    }

    /// Moves the checkpoint by hand (`checkpoint set`): under `lock`, sets only
    /// `last_datetime` and `checkpoint_version` and keeps every other key, unlike
    /// [`Storage::write_checkpoint`], which also records a run. Returns the metadata as it was.
    pub async fn set_checkpoint(
        &self,
        container: &str,
        lock: &RunLock,
        last_datetime: OffsetDateTime,
    ) -> Result<HashMap<String, String>, Error> {
        let before = self
            .update_metadata(container, lock, |current| {
                merge_checkpoint(current, last_datetime)
            })
            .await?;
        tracing::info!(
            storage.account = %self.inner.account,
            storage.container = %container,
            checkpoint.before = before.get(LAST_DATETIME).map_or("none", String::as_str),
            checkpoint.last_datetime = %timestamp::format(last_datetime),
            "checkpoint set by hand"
        );
        Ok(before)
    }
}

/// Bytes the service counts against [`METADATA_LIMIT`]: every name and value.
pub fn metadata_size(metadata: &HashMap<String, String>) -> usize {
    metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// `report` as an ASCII header value of at most `budget` bytes. A report that fits is kept
/// (non-ASCII escaped as `\uXXXX`, control characters turned into spaces). A longer one is
/// replaced by valid JSON `{"truncated":true,"original_bytes":N,"head":"<start of the report>"}`,
/// or by `{"truncated":true,"original_bytes":N}`, or by nothing if even that does not fit.
pub fn fit_report(report: &str, budget: usize) -> String {
    let whole = json_ascii(report);
    if whole.len() <= budget {
        return whole;
    }
    let wrapped = |head_len: usize| {
        let head = serde_json::to_string(&report[..head_len]).expect("a str serializes");
        format!(
            r#"{{"truncated":true,"original_bytes":{},"head":{}}}"#,
            report.len(),
            json_ascii(&head)
        )
    };
    // The longest head (cut at a character boundary) whose escaped form fits. Escaping
    // expands text unevenly, so search: `low` always fits, the answer is in `low..=high`.
    if wrapped(0).len() <= budget {
        let (mut low, mut high) = (0, floor_char_boundary(report, budget));
        while low < high {
            let mut mid = floor_char_boundary(report, low + (high - low).div_ceil(2));
            if mid <= low {
                mid = low + report[low..].chars().next().map_or(1, char::len_utf8);
            }
            if wrapped(mid).len() <= budget {
                low = mid;
            } else {
                high = floor_char_boundary(report, mid - 1);
            }
        }
        return wrapped(low);
    }
    let bare = format!(r#"{{"truncated":true,"original_bytes":{}}}"#, report.len());
    if bare.len() <= budget {
        bare
    } else {
        String::new()
    }
}

/// Escapes non-ASCII characters and DEL as JSON `\uXXXX` (valid inside JSON strings, the only
/// place they can occur) and turns control characters (whitespace between JSON tokens) into
/// spaces, making a valid header value that decodes to the same JSON.
fn json_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c < ' ' {
            // Raw control characters occur in JSON only as whitespace between tokens.
            out.push(' ');
        } else if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// A plain word for a header value: printable ASCII, anything else replaced by `?`.
fn header_safe(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run() -> LastRun {
        LastRun {
            run_id: "7d0c9a1e-1111-2222-3333-444455556666".into(),
            finished_at: datetime!(2024-01-13 14:15:00 UTC),
            outcome: "succeeded".into(),
            records_written: 1234,
            report_json: r#"{"pages":3,"note":"café"}"#.into(),
        }
    }

    #[test]
    fn reads_the_python_sample_formats() {
        for (value, expected) in [
            (
                "2019-05-21T19:15:41.6195833Z",
                datetime!(2019-05-21 19:15:41.6195833 UTC),
            ),
            (
                "2019-05-21T19:15:41.61Z",
                datetime!(2019-05-21 19:15:41.61 UTC),
            ),
            ("2019-05-21T19:15:41Z", datetime!(2019-05-21 19:15:41 UTC)),
            (
                "2019-02-20T10:15:41.619583Z",
                datetime!(2019-02-20 10:15:41.619583 UTC),
            ),
        ] {
            let metadata = map(&[
                (LAST_DATETIME, value),
                ("last_execution", "2019-05-21 12:15:41.123"),
            ]);
            let (checkpoint, last_run) = decode(&metadata).unwrap();
            assert_eq!(checkpoint, Some(expected), "{value}");
            assert_eq!(last_run, None);
        }
        assert_eq!(decode(&HashMap::new()).unwrap(), (None, None));
    }

    #[test]
    fn unreadable_values_are_errors_that_show_the_value_and_a_fix() {
        for bad in [
            "yesterday",
            "",
            "2019-05-21",
            "2019-05-21T19:15:41.123456789Z",
        ] {
            let error = decode(&map(&[(LAST_DATETIME, bad)])).unwrap_err();
            assert_eq!(error.value, bad);
            assert!(
                error.hint.contains("2024-01-13T14:00:00.0000000Z"),
                "{}",
                error.hint
            );
        }
        let error = decode(&map(&[
            (LAST_DATETIME, "2024-01-13T14:00:00Z"),
            (CHECKPOINT_VERSION, "2"),
        ]))
        .unwrap_err();
        assert_eq!(error.value, "checkpoint_version=2");
    }

    #[test]
    fn merge_keeps_foreign_keys_and_round_trips() {
        let current = map(&[
            (LAST_DATETIME, "2019-05-21T19:15:41.61Z"),
            ("last_execution", "2019-05-21 12:15:41"),
        ]);
        let checkpoint = datetime!(2024-01-13 14:00:00.1234567 UTC);
        let merged = merge(&current, Some(checkpoint), &run());
        assert_eq!(merged["last_execution"], "2019-05-21 12:15:41");
        assert_eq!(merged[LAST_DATETIME], "2024-01-13T14:00:00.1234567Z");
        assert_eq!(merged[CHECKPOINT_VERSION], "1");
        assert_eq!(merged[LAST_RUN_REPORT], r#"{"pages":3,"note":"caf\u00e9"}"#);
        let (read_checkpoint, last_run) = decode(&merged).unwrap();
        assert_eq!(read_checkpoint, Some(checkpoint));
        let last_run = last_run.unwrap();
        assert_eq!(last_run.records_written, 1234);
        assert_eq!(last_run.finished_at, run().finished_at);
        let report: serde_json::Value = serde_json::from_str(&last_run.report_json).unwrap();
        assert_eq!(report["note"], "café");
    }

    #[test]
    fn merge_checkpoint_sets_only_the_checkpoint_and_its_version() {
        let current = map(&[
            (LAST_DATETIME, "2019-05-21T19:15:41.61Z"),
            (CHECKPOINT_VERSION, "1"),
            ("last_execution", "2019-05-21 12:15:41"),
            (LAST_RUN_ID, "7d0c9a1e"),
            (LAST_RUN_REPORT, r#"{"pages":3}"#),
        ]);
        let checkpoint = datetime!(2024-01-13 14:00:00.5 UTC);
        let merged = merge_checkpoint(&current, checkpoint);
        assert_eq!(merged.len(), current.len());
        assert_eq!(merged[LAST_DATETIME], "2024-01-13T14:00:00.5000000Z");
        for key in [
            "last_execution",
            LAST_RUN_ID,
            LAST_RUN_REPORT,
            CHECKPOINT_VERSION,
        ] {
            assert_eq!(merged[key], current[key], "{key}");
        }
        // An unreadable checkpoint or an unknown version is replaced.
        let merged = merge_checkpoint(
            &map(&[(LAST_DATETIME, "yesterday"), (CHECKPOINT_VERSION, "2")]),
            checkpoint,
        );
        assert_eq!(decode(&merged).unwrap(), (Some(checkpoint), None));
    }

    #[test]
    fn hints_name_the_real_command() {
        let bad_time = decode(&map(&[(LAST_DATETIME, "yesterday")])).unwrap_err();
        let bad_version = decode(&map(&[(CHECKPOINT_VERSION, "2")])).unwrap_err();
        for error in [bad_time, bad_version] {
            assert!(
                error
                    .hint
                    .contains("entra-export checkpoint set <job> <time>"),
                "{}",
                error.hint
            );
        }
    }

    #[test]
    fn merge_without_a_checkpoint_leaves_it_alone() {
        let current = map(&[(LAST_DATETIME, "2019-05-21T19:15:41.61Z")]);
        let merged = merge(&current, None, &run());
        assert_eq!(merged[LAST_DATETIME], "2019-05-21T19:15:41.61Z");
    }

    #[test]
    fn large_reports_are_truncated_to_valid_json_within_the_limit() {
        let big = format!(r#"{{"errors":["{}"]}}"#, "é\"x\n".repeat(5000));
        let foreign = map(&[("notes", &"n".repeat(3000))]);
        let merged = merge(
            &foreign,
            None,
            &LastRun {
                report_json: big.clone(),
                ..run()
            },
        );
        assert!(metadata_size(&merged) <= METADATA_LIMIT);
        let report = &merged[LAST_RUN_REPORT];
        assert!(report.len() <= REPORT_LIMIT && report.is_ascii());
        let value: serde_json::Value = serde_json::from_str(report).unwrap();
        assert_eq!(value["truncated"], true);
        assert_eq!(value["original_bytes"], big.len());
        assert!(big.starts_with(value["head"].as_str().unwrap()));
        assert!(value["head"].as_str().unwrap().len() > 1000);
    }

    proptest::proptest! {
        #[test]
        fn fitted_reports_respect_the_budget_and_are_header_safe(
            report in "(?s).{0,300}",
            budget in 0usize..400,
        ) {
            let fitted = fit_report(&report, budget);
            proptest::prop_assert!(fitted.len() <= budget);
            proptest::prop_assert!(fitted.bytes().all(|b| (0x20..0x7f).contains(&b)));
            if fitted.starts_with(r#"{"truncated""#) {
                let value: serde_json::Value = serde_json::from_str(&fitted).unwrap();
                let head = value["head"].as_str().unwrap_or("");
                proptest::prop_assert!(report.starts_with(head));
            }
        }
    }

    #[test]
    fn tiny_budgets_degrade_gracefully() {
        let report = "x".repeat(100);
        assert_eq!(
            fit_report(&report, 40),
            r#"{"truncated":true,"original_bytes":100}"#
        );
        assert_eq!(fit_report(&report, 10), "");
        assert_eq!(fit_report("", 0), "");
    }
}
