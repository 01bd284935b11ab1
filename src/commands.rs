//! What each subcommand does. `main.rs` only dispatches here.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cli::{CheckpointCommand, JobArg};
use crate::config::{Config, JobSpecConfig, RETENTION};
use crate::job::JobKind;
use crate::pipeline::dedup::WrittenIds;
use crate::pipeline::plan::Leftover;
use crate::pipeline::report::Outcome;
use crate::pipeline::{Progress, RunOptions};
use crate::service::{Context, Service, Trigger};
use crate::storage::checkpoint::{self, StoredMetadata};
use crate::storage::{RunLock, Storage};
use crate::timestamp;

/// The ports the host may give us, newest name first.
const PORT_VARIABLES: [&str; 2] = ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"];

/// `serve`: bind first, then everything else. An invalid configuration does not stop the
/// process (the host would restart it in a loop and then give up); every invocation fails
/// with the configuration problems instead, on stderr and in the reply.
pub async fn serve() -> ExitCode {
    let port = PORT_VARIABLES
        .iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)));
    let Some((name, value)) = port else {
        eprintln!(
            "FUNCTIONS_CUSTOMHANDLER_PORT is not set: `serve` is started by the Azure Functions host, which sets it"
        );
        return ExitCode::from(2);
    };
    let Ok(port) = value.trim().parse::<u16>() else {
        eprintln!("{name}=`{value}` is not a port number");
        return ExitCode::from(2);
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::from_env();
    match &config {
        Ok(_) => tracing::info!(port, "custom handler listening"),
        Err(error) => {
            tracing::error!(port, error = %error, "custom handler listening with an invalid configuration: every run will fail")
        }
    }
    let service = Arc::new(Service::new(config));
    match crate::functions::serve(listener, service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("the custom handler stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `run <job> [--from --to]`.
pub async fn run(
    job: JobArg,
    backfill: Option<(OffsetDateTime, OffsetDateTime)>,
    no_progress: bool,
) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((from, to)) = backfill
        && from >= to
    {
        eprintln!("--from must be before --to");
        return ExitCode::from(2);
    }
    let kinds = kinds(job, &config);
    let service = Service::new(Ok(config));
    let mut failed = false;
    for kind in kinds {
        let progress = crate::progress::for_terminal(kind, no_progress);
        let options = RunOptions {
            backfill,
            progress: Some(progress as Arc<dyn Progress>),
        };
        let report = service.run_job(kind, Trigger::default(), options).await;
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        failed |= report.outcome == Some(Outcome::Failed);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `status`: checkpoint, lock state and last run of each job.
pub async fn status() -> ExitCode {
    let service = Service::new(Config::from_env());
    let context = match service.context().await {
        Ok(context) => context,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for job in &context.config.jobs {
        let state = tokio::time::timeout(
            Duration::from_secs(30),
            context.storage.read_checkpoint(&job.container),
        )
        .await;
        let enabled = if context.config.streams.contains(&job.spec.kind) {
            format!("run by {}", job.spec.timer.function_name())
        } else {
            format!(
                "not enabled: add {} to {}",
                job.spec.setting_name,
                job.spec.timer.setting()
            )
        };
        println!("{} (container {}, {enabled})", job.spec.name, job.container);
        match state {
            Ok(Ok(state)) => {
                let checkpoint = state
                    .checkpoint
                    .map(crate::timestamp::format)
                    .unwrap_or_else(|| "none (the first run starts from INITIAL_LOOKBACK)".into());
                println!("  checkpoint (last_datetime): {checkpoint}");
                println!(
                    "  lock: lease {} / {}",
                    state.lease.state, state.lease.status
                );
                match state.last_run {
                    Some(run) => {
                        println!(
                            "  last run: {} at {}, outcome {}, {} records written",
                            run.run_id,
                            crate::timestamp::format(run.finished_at),
                            run.outcome,
                            run.records_written
                        );
                        let stuck = serde_json::from_str::<serde_json::Value>(&run.report_json)
                            .ok()
                            .and_then(|report| report["runs_without_progress"].as_u64());
                        if let Some(stuck) = stuck {
                            println!("  runs in a row without progress: {stuck}");
                        }
                        println!("  last run report: {}", run.report_json);
                    }
                    None => println!("  last run: none recorded"),
                }
            }
            Ok(Err(crate::storage::Error::ContainerNotFound { .. })) => {
                println!(
                    "  never run: the container does not exist yet (the first run creates it and starts from INITIAL_LOOKBACK)"
                );
            }
            Ok(Err(error)) => {
                failed = true;
                println!("  error: {error}");
            }
            Err(_) => {
                failed = true;
                println!("  error: storage did not answer within 30 s");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The streams a [`JobArg`] names: one stream (enabled or not), a timer's enabled streams, or
/// every enabled stream.
fn kinds(job: JobArg, config: &Config) -> Vec<JobKind> {
    match job {
        JobArg::Stream(kind) => vec![kind],
        JobArg::Timer(timer) => config.timer_streams(timer),
        JobArg::All => config.streams.clone(),
    }
}

/// `checkpoint show|set`.
pub async fn checkpoint(command: CheckpointCommand) -> ExitCode {
    match command {
        CheckpointCommand::Show { job, json } => checkpoint_show(job, json).await,
        CheckpointCommand::Set {
            job,
            time,
            dry_run,
            force,
        } => checkpoint_set(job, time, dry_run, force).await,
    }
}

/// The shared clients, or the reason they cannot be built (printed).
async fn context() -> Option<Arc<Context>> {
    match Service::new(Config::from_env()).context().await {
        Ok(context) => Some(context),
        Err(error) => {
            eprintln!("{error}");
            None
        }
    }
}

/// The written-ids state blob of a job's container, in `STATE_CONTAINER` (as the pipeline
/// names it).
fn state_blob_name(container: &str) -> String {
    format!("{container}/written-ids.json")
}

/// Everything `checkpoint show` tells about one job.
struct Shown {
    job: &'static str,
    container: String,
    /// The metadata and lease; `Ok(None)`: the container does not exist (never run).
    stored: Result<Option<StoredMetadata>, String>,
    state_blob: String,
    /// The written-ids state; `Ok(None)`: none saved yet.
    state: Result<Option<WrittenIds>, String>,
}

impl Shown {
    async fn read(storage: &Storage, job: &JobSpecConfig) -> Shown {
        let stored = match storage.read_metadata(&job.container).await {
            Ok(stored) => Ok(Some(stored)),
            Err(crate::storage::Error::ContainerNotFound { .. }) => Ok(None),
            Err(error) => Err(error.to_string()),
        };
        let name = state_blob_name(&job.container);
        let state = match (&stored, storage.load_state(&name).await) {
            (Ok(None), _) => Ok(None),
            (_, Ok(Some((body, _)))) => WrittenIds::decode(&body)
                .map(Some)
                .map_err(|e| e.to_string()),
            (_, Ok(None)) => Ok(None),
            (_, Err(error)) => Err(error.to_string()),
        };
        Shown {
            job: job.spec.name,
            container: job.container.clone(),
            stored,
            state_blob: format!("{}/{name}", storage.state_container()),
            state,
        }
    }

    /// The checkpoint and last run, or why the checkpoint cannot be read.
    fn decoded(
        metadata: &HashMap<String, String>,
    ) -> (
        Result<Option<OffsetDateTime>, checkpoint::Unreadable>,
        Option<crate::storage::LastRun>,
    ) {
        match checkpoint::decode(metadata) {
            Ok((checkpoint, last_run)) => (Ok(checkpoint), last_run),
            Err(unreadable) => (Err(unreadable), checkpoint::decode_last_run(metadata)),
        }
    }

    /// True when something could not be read (exit 1).
    fn failed(&self) -> bool {
        match &self.stored {
            Err(_) => true,
            Ok(None) => false,
            Ok(Some(stored)) => Self::decoded(&stored.metadata).0.is_err() || self.state.is_err(),
        }
    }

    fn text(&self) -> String {
        let mut out = format!("{} (container {})\n", self.job, self.container);
        let stored = match &self.stored {
            Err(error) => {
                out += &format!("  error: {error}\n");
                return out;
            }
            Ok(None) => {
                out += "  never run: the container does not exist yet (the first run creates it and starts from INITIAL_LOOKBACK)\n";
                return out;
            }
            Ok(Some(stored)) => stored,
        };
        let metadata = &stored.metadata;
        let (checkpoint, last_run) = Self::decoded(metadata);
        match checkpoint {
            Ok(Some(instant)) => {
                out += &format!(
                    "  checkpoint (last_datetime): {}\n",
                    timestamp::format(instant)
                )
            }
            Ok(None) => {
                out += "  checkpoint (last_datetime): none (the next run starts from INITIAL_LOOKBACK)\n"
            }
            Err(unreadable) => {
                out += &format!(
                    "  checkpoint: unreadable `{}`: {}\n",
                    unreadable.value, unreadable.hint
                )
            }
        }
        out += &format!(
            "  checkpoint_version: {}\n",
            metadata
                .get(checkpoint::CHECKPOINT_VERSION)
                .map_or("none", String::as_str)
        );
        out += &format!(
            "  lock: lease {} / {}",
            stored.lease.state, stored.lease.status
        );
        if stored.lease.state == "leased" {
            out += " (a run holds it)";
        }
        out += "\n";
        match last_run {
            Some(run) => {
                out += &format!(
                    "  last run: {} at {}, outcome {}, {} records written\n",
                    run.run_id,
                    timestamp::format(run.finished_at),
                    run.outcome,
                    run.records_written
                )
            }
            None => out += "  last run: none recorded\n",
        }
        match &self.state {
            Err(error) => {
                out += &format!("  written-ids state {}: error: {error}\n", self.state_blob)
            }
            Ok(None) => out += &format!("  written-ids state {}: none yet\n", self.state_blob),
            Ok(Some(written)) => {
                out += &format!(
                    "  written-ids state {}: {} ids remembered",
                    self.state_blob,
                    written.len()
                );
                if let Some(density) = written.density_per_hour() {
                    out += &format!(", about {density:.1} records per hour");
                }
                out += "\n";
                match written.leftover().filter(|l| !l.open.is_empty()) {
                    None => out += "  windows left open: none\n",
                    Some(leftover) => {
                        out += &format!(
                            "  windows left open: {}, of the range [{}, {}) (the next run resumes them)\n",
                            leftover.open.len(),
                            timestamp::format(leftover.from),
                            timestamp::format(leftover.end)
                        );
                        for (start, end, progress) in &leftover.open {
                            out += &format!(
                                "    [{}, {}) stored up to {}\n",
                                timestamp::format(*start),
                                timestamp::format(*end),
                                timestamp::format(*progress)
                            );
                        }
                    }
                }
            }
        }
        out
    }

    fn json(&self) -> Value {
        let mut value = json!({ "job": self.job, "container": self.container });
        let stored = match &self.stored {
            Err(error) => {
                value["error"] = json!(error);
                return value;
            }
            Ok(None) => {
                value["exists"] = json!(false);
                return value;
            }
            Ok(Some(stored)) => stored,
        };
        let metadata = &stored.metadata;
        let (checkpoint, last_run) = Self::decoded(metadata);
        value["exists"] = json!(true);
        match checkpoint {
            Ok(instant) => value["checkpoint"] = json!(instant.map(timestamp::format)),
            Err(unreadable) => {
                value["checkpoint"] = Value::Null;
                value["checkpoint_unreadable"] =
                    json!({ "value": unreadable.value, "hint": unreadable.hint });
            }
        }
        value["checkpoint_version"] = json!(metadata.get(checkpoint::CHECKPOINT_VERSION));
        value["lease"] = json!({ "state": stored.lease.state, "status": stored.lease.status });
        value["last_run"] = json!(last_run.map(|run| json!({
            "run_id": run.run_id,
            "finished_at": timestamp::format(run.finished_at),
            "outcome": run.outcome,
            "records_written": run.records_written,
            "report": serde_json::from_str::<Value>(&run.report_json).unwrap_or(Value::String(run.report_json)),
        })));
        value["state"] = match &self.state {
            Err(error) => json!({ "blob": self.state_blob, "error": error }),
            Ok(None) => json!({ "blob": self.state_blob, "exists": false }),
            Ok(Some(written)) => json!({
                "blob": self.state_blob,
                "exists": true,
                "ids": written.len(),
                "density_per_hour": written.density_per_hour(),
                "windows_left_open": written.leftover().map(leftover_json),
            }),
        };
        value
    }
}

fn leftover_json(leftover: &Leftover) -> Value {
    json!({
        "from": timestamp::format(leftover.from),
        "end": timestamp::format(leftover.end),
        "open": leftover.open.iter().map(|(start, end, progress)| json!({
            "start": timestamp::format(*start),
            "end": timestamp::format(*end),
            "stored_up_to": timestamp::format(*progress),
        })).collect::<Vec<_>>(),
    })
}

/// `checkpoint show <job> [--json]`.
async fn checkpoint_show(job: JobArg, json: bool) -> ExitCode {
    let Some(context) = context().await else {
        return ExitCode::FAILURE;
    };
    let mut failed = false;
    for kind in kinds(job, &context.config) {
        let shown = Shown::read(&context.storage, context.config.job(kind)).await;
        failed |= shown.failed();
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&shown.json()).unwrap_or_default()
            );
        } else {
            print!("{}", shown.text());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Why `time` cannot be a checkpoint: later than `now` (the checkpoint says every record
/// before it is stored), or, unless `force`, older than Entra's retention.
pub fn check_checkpoint_time(
    time: OffsetDateTime,
    now: OffsetDateTime,
    force: bool,
) -> Result<(), String> {
    if time > now {
        return Err(format!(
            "{} is in the future (now is {}): the checkpoint says every record before it is stored, so it cannot be later than now",
            timestamp::format(time),
            timestamp::format(now)
        ));
    }
    let retention = time::Duration::seconds(RETENTION.as_secs() as i64);
    let oldest = now - retention;
    if time < oldest && !force {
        return Err(format!(
            "{} is older than Entra's {}-day retention (the oldest fetchable time is now {}): records older than the retention can no longer be fetched, so moving the checkpoint back before it cannot recover them; the next run would start at the retention limit anyway. Pass --force to set it all the same",
            timestamp::format(time),
            retention.whole_days(),
            timestamp::format(oldest)
        ));
    }
    Ok(())
}

/// What `checkpoint set` changes (or would change).
struct Change {
    job: &'static str,
    container: String,
    /// The metadata before (empty when the container does not exist).
    before: HashMap<String, String>,
    after: OffsetDateTime,
    /// The windows left open that are (or would be) cleared.
    cleared: Option<Leftover>,
    state_blob: String,
    replay_window: Duration,
}

impl Change {
    fn text(&self, dry_run: bool) -> String {
        let verb = if dry_run { "would change" } else { "changed" };
        let key = |name: &str| {
            self.before
                .get(name)
                .map_or("none", String::as_str)
                .to_owned()
        };
        let mut out = format!(
            "{} (container {}): checkpoint {verb}\n",
            self.job, self.container
        );
        out += &format!(
            "  {}: {} -> {}\n",
            checkpoint::LAST_DATETIME,
            key(checkpoint::LAST_DATETIME),
            timestamp::format(self.after)
        );
        out += &format!(
            "  {}: {} -> {}\n",
            checkpoint::CHECKPOINT_VERSION,
            key(checkpoint::CHECKPOINT_VERSION),
            checkpoint::VERSION
        );
        let mut kept: Vec<&str> = self
            .before
            .keys()
            .map(String::as_str)
            .filter(|k| ![checkpoint::LAST_DATETIME, checkpoint::CHECKPOINT_VERSION].contains(k))
            .collect();
        kept.sort_unstable();
        out += &format!(
            "  other metadata keys kept: {}\n",
            if kept.is_empty() {
                "none".to_owned()
            } else {
                kept.join(", ")
            }
        );
        match &self.cleared {
            None => out += &format!("  windows left open ({}): none\n", self.state_blob),
            Some(leftover) => {
                out += &format!(
                    "  windows left open ({}): {} in the last run's range [{}, {}), {}cleared: the next run plans its range afresh\n",
                    self.state_blob,
                    leftover.open.len(),
                    timestamp::format(leftover.from),
                    timestamp::format(leftover.end),
                    if dry_run { "would be " } else { "" }
                )
            }
        }
        out += &format!("  {}\n", self.next_run());
        out
    }

    /// What the next run does with the new checkpoint.
    fn next_run(&self) -> String {
        let replay = time::Duration::seconds(self.replay_window.as_secs() as i64);
        let start = self.after - replay;
        let before = self
            .before
            .get(checkpoint::LAST_DATETIME)
            .and_then(|value| timestamp::parse(value.trim()).ok());
        match before {
            None => format!(
                "the next run starts at {} (the checkpoint minus REPLAY_WINDOW)",
                timestamp::format(start)
            ),
            Some(before) if before == self.after => "the checkpoint is unchanged".to_owned(),
            Some(before) if self.after < before => format!(
                "the checkpoint moves back: the next run re-reads from {}; records whose ids are still remembered are skipped, older ones may be written a second time (readers deduplicate by id)",
                timestamp::format(start)
            ),
            Some(before) if start > before => format!(
                "the checkpoint moves forward: the next run starts at {}, and the timers will never fetch the records of [{}, {}); backfill them with `entra-export run {} --from {} --to {}` if they are needed",
                timestamp::format(start),
                timestamp::format(before),
                timestamp::format(start),
                self.job,
                timestamp::format(before),
                timestamp::format(start)
            ),
            Some(_) => format!(
                "the checkpoint moves forward within the replay window: the next run starts at {}, nothing is skipped",
                timestamp::format(start)
            ),
        }
    }
}

/// `checkpoint set <job> <time> [--dry-run] [--force]`.
async fn checkpoint_set(job: JobArg, time: OffsetDateTime, dry_run: bool, force: bool) -> ExitCode {
    let JobArg::Stream(kind) = job else {
        eprintln!("`checkpoint set` moves the checkpoint of one stream, named on its own");
        return ExitCode::from(2);
    };
    if let Err(reason) = check_checkpoint_time(time, OffsetDateTime::now_utc(), force) {
        eprintln!("{reason}");
        return ExitCode::from(2);
    }
    let Some(context) = context().await else {
        return ExitCode::FAILURE;
    };
    let storage = &context.storage;
    let job = context.config.job(kind);
    let state_name = state_blob_name(&job.container);
    let mut change = Change {
        job: job.spec.name,
        container: job.container.clone(),
        before: HashMap::new(),
        after: time,
        cleared: None,
        state_blob: format!("{}/{state_name}", storage.state_container()),
        replay_window: context.config.run.replay_window,
    };
    let lease = context.config.run.lock_lease;
    if dry_run {
        let mut notes = Vec::new();
        match storage.read_metadata(&job.container).await {
            Ok(stored) => {
                if stored.lease.state == "leased" {
                    notes.push(format!(
                        "a run of {} holds the lock now: without --dry-run this would be refused until it ends",
                        change.job
                    ));
                }
                change.before = stored.metadata;
            }
            Err(crate::storage::Error::ContainerNotFound { .. }) => notes.push(format!(
                "container {} does not exist yet: it would be created, as a run does",
                job.container
            )),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
        match load_written(storage, &state_name).await {
            Ok(written) => change.cleared = written.and_then(|(w, _)| w.leftover().cloned()),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
        print!("{}", change.text(true));
        for note in notes {
            println!("  note: {note}");
        }
        println!("dry run: nothing was changed");
        return ExitCode::SUCCESS;
    }
    if let Err(error) = storage.ensure_container(&job.container).await {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }
    let lock = match storage.try_lock_for(&job.container, lease).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            eprintln!(
                "a run of {} holds the lock; try again when it ends (at most LOCK_LEASE, {} s, after it stops): the checkpoint was not changed",
                change.job,
                lease.as_secs()
            );
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let result = set_under_lock(storage, &lock, &state_name, &mut change).await;
    if let Err(error) = lock.release().await {
        eprintln!(
            "could not release the run lock ({error}); it lapses within {} s",
            lease.as_secs()
        );
    }
    match result {
        Ok(()) => {
            print!("{}", change.text(false));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The written-ids state and its ETag, `None` when there is none.
async fn load_written(
    storage: &Storage,
    name: &str,
) -> Result<Option<(WrittenIds, crate::storage::ETag)>, String> {
    let shown = format!("{}/{name}", storage.state_container());
    match storage.load_state(name).await {
        Ok(None) => Ok(None),
        Ok(Some((body, etag))) => WrittenIds::decode(&body)
            .map(|written| Some((written, etag)))
            .map_err(|e| format!("state blob {shown}: {e}; the checkpoint was not changed")),
        Err(error) => Err(format!("{error}; the checkpoint was not changed")),
    }
}

/// Under the run lock: first clear the windows left open (they refer to the old checkpoint),
/// then write the checkpoint. If the second write fails, the next run plans afresh from the
/// old checkpoint, which costs requests but loses nothing.
async fn set_under_lock(
    storage: &Storage,
    lock: &RunLock,
    state_name: &str,
    change: &mut Change,
) -> Result<(), String> {
    if let Some((mut written, etag)) = load_written(storage, state_name).await?
        && let Some(leftover) = written.leftover().cloned()
    {
        written.set_leftover(None);
        storage
            .save_state(state_name, Bytes::from(written.encode()), Some(&etag))
            .await
            .map_err(|e| {
                format!(
                    "could not clear the windows left open: {e}; the checkpoint was not changed"
                )
            })?;
        change.cleared = Some(leftover);
    }
    change.before = storage
        .set_checkpoint(&change.container, lock, change.after)
        .await
        .map_err(|e| {
            let cleared = if change.cleared.is_some() {
                " (the windows left open were cleared: the next run plans its range afresh from the old checkpoint, which loses nothing)"
            } else {
                ""
            };
            format!("could not write the checkpoint{cleared}: {e}")
        })?;
    Ok(())
}

/// `config check`: the effective configuration with secrets redacted; exit 1 on any problem.
pub fn config_check() -> ExitCode {
    match Config::from_env() {
        Ok(config) => {
            for (name, value) in config.describe() {
                println!("{name}={value}");
            }
            println!("# derived: the Graph token scope is {}", config.graph.scope);
            println!("# configuration ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    #[test]
    fn a_checkpoint_is_not_in_the_future_nor_before_the_retention_unless_forced() {
        assert!(check_checkpoint_time(NOW, NOW, false).is_ok());
        assert!(check_checkpoint_time(NOW - time::Duration::days(29), NOW, false).is_ok());
        let error = check_checkpoint_time(NOW + time::Duration::seconds(1), NOW, true).unwrap_err();
        assert!(
            error.contains("2026-11-25T12:00:01.0000000Z is in the future"),
            "{error}"
        );
        let old = NOW - time::Duration::days(31);
        let error = check_checkpoint_time(old, NOW, false).unwrap_err();
        assert!(
            error.contains("2026-10-25T12:00:00.0000000Z is older than Entra's 30-day retention"),
            "{error}"
        );
        assert!(error.contains("cannot recover them") && error.contains("--force"));
        assert!(check_checkpoint_time(old, NOW, true).is_ok());
    }

    fn change(before: Option<&str>, after: OffsetDateTime) -> Change {
        let mut metadata = HashMap::new();
        if let Some(before) = before {
            metadata.insert(checkpoint::LAST_DATETIME.to_owned(), before.to_owned());
        }
        metadata.insert(
            "last_execution".to_owned(),
            "2019-05-21 12:15:41".to_owned(),
        );
        Change {
            job: "audit",
            container: "logs-audit".into(),
            before: metadata,
            after,
            cleared: None,
            state_blob: "logs-state/logs-audit/written-ids.json".into(),
            replay_window: Duration::from_secs(2 * 3600),
        }
    }

    #[test]
    fn the_change_says_what_the_next_run_does() {
        let text = change(
            Some("2026-11-25T10:00:00Z"),
            datetime!(2026-11-25 14:00 UTC),
        )
        .text(false);
        assert!(
            text.contains("last_datetime: 2026-11-25T10:00:00Z -> 2026-11-25T14:00:00.0000000Z"),
            "{text}"
        );
        assert!(text.contains("checkpoint_version: none -> 1"), "{text}");
        assert!(text.contains("kept: last_execution"), "{text}");
        assert!(
            text.contains("never fetch the records of [2026-11-25T10:00:00.0000000Z, 2026-11-25T12:00:00.0000000Z)"),
            "{text}"
        );
        assert!(
            text.contains("entra-export run audit --from 2026-11-25T10:00:00.0000000Z --to 2026-11-25T12:00:00.0000000Z"),
            "{text}"
        );
        let text = change(
            Some("2026-11-25T10:00:00Z"),
            datetime!(2026-11-25 11:00 UTC),
        )
        .text(true);
        assert!(text.contains("checkpoint would change"), "{text}");
        assert!(text.contains("nothing is skipped"), "{text}");
        let text = change(
            Some("2026-11-25T10:00:00Z"),
            datetime!(2026-11-25 08:00 UTC),
        )
        .text(false);
        assert!(text.contains("moves back"), "{text}");
        assert!(
            text.contains("re-reads from 2026-11-25T06:00:00.0000000Z"),
            "{text}"
        );
        let text = change(Some("yesterday"), datetime!(2026-11-25 08:00 UTC)).text(false);
        assert!(text.contains("last_datetime: yesterday -> "), "{text}");
        assert!(
            text.contains("the next run starts at 2026-11-25T06:00:00.0000000Z"),
            "{text}"
        );
    }
}
