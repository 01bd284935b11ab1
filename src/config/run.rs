//! Timing of incremental runs: how far back a first run starts (`INITIAL_LOOKBACK`), the lag and
//! the replay window (`QUERY_LAG`, `REPLAY_WINDOW`) that catch late records, the reconcile
//! sweep, the run's time budget and the host's `FUNCTION_TIMEOUT` it must fit in, the slice
//! width and parallelism, the lock lease and whether changed records are written again.

use std::time::Duration;

use super::Lines;
use super::parser::Parser;
use super::values::{format_duration, parse_duration, seconds};
use crate::redact::shown;

/// Entra's longest retention; a first run never reaches further back.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Time a run keeps, after its in-flight slices are done or dropped, for its final writes: the
/// written-ids state, the checkpoint, the lease release and the report.
pub const FINAL_WRITES: Duration = Duration::from_secs(30);

/// How long slices still in flight when `RUN_TIME_BUDGET` is spent may go on before they are
/// dropped: an eighth of the budget.
pub fn grace(budget: Duration) -> Duration {
    budget / 8
}

/// The longest a run with this budget can take: the budget, its [`grace`] period and
/// [`FINAL_WRITES`]. It must fit in `FUNCTION_TIMEOUT`.
pub fn longest_run(budget: Duration) -> Duration {
    budget + grace(budget) + FINAL_WRITES
}

/// host.json, compiled in so that the default of `FUNCTION_TIMEOUT` follows the file.
const HOST_JSON: &str = include_str!("../../host.json");

/// The Functions host's default `functionTimeout` on Consumption, the strictest plan, when
/// host.json sets none.
const HOST_DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// host.json's `functionTimeout` (the default of `FUNCTION_TIMEOUT`): `None` for `-1`, no limit.
pub fn host_function_timeout() -> Option<Duration> {
    let host: serde_json::Value =
        serde_json::from_str(HOST_JSON).expect("host.json is JSON (a unit test checks it)");
    match host.get("functionTimeout").and_then(|v| v.as_str()) {
        None => Some(HOST_DEFAULT_FUNCTION_TIMEOUT),
        Some(text) => parse_function_timeout(text)
            .expect("host.json's functionTimeout is valid (a unit test checks it)"),
    }
}

/// Timing of incremental runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How far back a first run starts.
    pub initial_lookback: Duration,
    /// A run never asks for records newer than now minus this.
    pub query_lag: Duration,
    /// Each run re-reads this much before its checkpoint.
    pub replay_window: Duration,
    /// `RECONCILE_INTERVAL`: how often a run also sweeps `reconcile_window` for late records.
    pub reconcile_interval: Duration,
    /// `RECONCILE_WINDOW`: how far back the sweep reaches; zero disables it.
    pub reconcile_window: Duration,
    /// `ACCEPT_LATE_RECORD_LOSS`: `query_lag` and `replay_window` may be zero.
    pub accept_late_record_loss: bool,
    /// A run stops starting new slices after this. Slices in flight then get [`grace`] more,
    /// and the final writes [`FINAL_WRITES`]: [`longest_run`] fits in `function_timeout`.
    pub run_time_budget: Duration,
    /// `FUNCTION_TIMEOUT`: the Functions host kills the handler process (every run in it) when
    /// an invocation lasts longer; `None` is no limit (`-1`).
    pub function_timeout: Option<Duration>,
    /// Width of one slice.
    pub slice_width: Duration,
    /// Write a later version of a record whose content differs.
    pub republish_updates: bool,
    /// The run lock's lease (15 to 60 s), renewed while the run goes.
    pub lock_lease: Duration,
    /// Slices fetched at once; `None` is automatic (twice the request budget, at most 10).
    pub parallel_slices: Option<u32>,
}

/// `FUNCTION_TIMEOUT` (and host.json's `functionTimeout`) for no limit.
pub const NO_FUNCTION_TIMEOUT: &str = "-1";
/// Default `QUERY_LAG`: Microsoft's published 99th-percentile latency of audit and sign-in logs.
pub const DEFAULT_QUERY_LAG: &str = "5m";
/// Default `REPLAY_WINDOW`: the two hours MFA details may take to reach a sign-in.
pub const DEFAULT_REPLAY_WINDOW: &str = "2h";
/// Default `RECONCILE_INTERVAL`: four sweeps a day.
pub const DEFAULT_RECONCILE_INTERVAL: &str = "6h";
/// Default `RECONCILE_WINDOW`: a day, twelve times the longest published delay.
pub const DEFAULT_RECONCILE_WINDOW: &str = "24h";

/// Parses `FUNCTION_TIMEOUT` or host.json's `functionTimeout`: a duration (`10m`), the host's
/// `[d.]hh:mm:ss` (`00:10:00`), or `-1` for no limit (`Some(None)`).
pub fn parse_function_timeout(text: &str) -> Option<Option<Duration>> {
    let text = text.trim();
    if text == NO_FUNCTION_TIMEOUT {
        return Some(None);
    }
    if let Some(duration) = parse_duration(text) {
        return Some(Some(duration));
    }
    let (days, clock) = match text.split_once('.') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let field = |t: &str, max: u64| {
        ((1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    let secs =
        days.checked_mul(86_400)? + field(h, 23)? * 3600 + field(m, 59)? * 60 + field(s, 59)?;
    Some(Some(Duration::from_secs(secs)))
}

impl RunConfig {
    /// Reads the run variables, then refuses zero lag or replay without
    /// `ACCEPT_LATE_RECORD_LOSS` and a budget whose [`longest_run`] exceeds `FUNCTION_TIMEOUT`.
    pub(super) fn parse(p: &mut Parser<'_>) -> RunConfig {
        let run = RunConfig {
            initial_lookback: p.duration(
                "INITIAL_LOOKBACK",
                "7d",
                Duration::from_secs(60),
                Some(RETENTION),
            ),
            query_lag: p.duration(
                "QUERY_LAG",
                DEFAULT_QUERY_LAG,
                Duration::ZERO,
                Some(Duration::from_secs(24 * 3600)),
            ),
            replay_window: p.duration(
                "REPLAY_WINDOW",
                DEFAULT_REPLAY_WINDOW,
                Duration::ZERO,
                Some(Duration::from_secs(7 * 24 * 3600)),
            ),
            reconcile_interval: p.duration(
                "RECONCILE_INTERVAL",
                DEFAULT_RECONCILE_INTERVAL,
                Duration::ZERO,
                Some(Duration::from_secs(7 * 24 * 3600)),
            ),
            reconcile_window: p.duration(
                "RECONCILE_WINDOW",
                DEFAULT_RECONCILE_WINDOW,
                Duration::ZERO,
                Some(RETENTION),
            ),
            accept_late_record_loss: p.boolean("ACCEPT_LATE_RECORD_LOSS", false),
            run_time_budget: p.duration("RUN_TIME_BUDGET", "8m", Duration::from_secs(1), None),
            function_timeout: function_timeout(p),
            slice_width: p.duration(
                "SLICE_WIDTH",
                "1h",
                Duration::from_secs(1),
                Some(Duration::from_secs(24 * 3600)),
            ),
            republish_updates: p.boolean("REPUBLISH_UPDATES", false),
            lock_lease: p.duration(
                "LOCK_LEASE",
                "60s",
                Duration::from_secs(15),
                Some(Duration::from_secs(60)),
            ),
            parallel_slices: match p.get("PARALLEL_SLICES").map(str::to_owned).as_deref() {
                None | Some("auto") => None,
                Some(_) => Some(p.number("PARALLEL_SLICES", 1, 1, 64)),
            },
        };
        late_records(p, &run);
        run_fits_function_timeout(p, &run);
        run
    }

    /// The `config check` lines of the run's timing, `INITIAL_LOOKBACK` to `SLICE_WIDTH`.
    pub(super) fn describe_timing(&self) -> Lines {
        let secs = format_duration;
        vec![
            ("INITIAL_LOOKBACK".into(), secs(self.initial_lookback)),
            ("QUERY_LAG".into(), secs(self.query_lag)),
            ("REPLAY_WINDOW".into(), secs(self.replay_window)),
            ("RECONCILE_INTERVAL".into(), secs(self.reconcile_interval)),
            ("RECONCILE_WINDOW".into(), secs(self.reconcile_window)),
            (
                "ACCEPT_LATE_RECORD_LOSS".into(),
                self.accept_late_record_loss.to_string(),
            ),
            ("RUN_TIME_BUDGET".into(), secs(self.run_time_budget)),
            (
                "FUNCTION_TIMEOUT".into(),
                self.function_timeout
                    .map_or_else(|| NO_FUNCTION_TIMEOUT.into(), secs),
            ),
            ("SLICE_WIDTH".into(), secs(self.slice_width)),
        ]
    }

    /// The `config check` lines of how a run writes: `REPUBLISH_UPDATES`, `LOCK_LEASE` and
    /// `PARALLEL_SLICES`.
    pub(super) fn describe_writes(&self) -> Lines {
        vec![
            (
                "REPUBLISH_UPDATES".into(),
                self.republish_updates.to_string(),
            ),
            ("LOCK_LEASE".into(), format_duration(self.lock_lease)),
            (
                "PARALLEL_SLICES".into(),
                self.parallel_slices
                    .map_or_else(|| "auto".into(), |n| n.to_string()),
            ),
        ]
    }
}

/// `FUNCTION_TIMEOUT`, by default host.json's `functionTimeout`.
fn function_timeout(p: &mut Parser<'_>) -> Option<Duration> {
    let fallback = host_function_timeout();
    let Some(value) = p.get("FUNCTION_TIMEOUT").map(str::to_owned) else {
        return fallback;
    };
    match parse_function_timeout(&value) {
        Some(Some(timeout)) if timeout >= Duration::from_secs(1) => Some(timeout),
        Some(None) => None,
        _ => {
            p.problem(
                "FUNCTION_TIMEOUT",
                format!(
                    "{} is not a timeout: write the Functions host's functionTimeout as a duration \
                     (10m), as in host.json (00:10:00), or -1 for none",
                    shown(&value)
                ),
            );
            fallback
        }
    }
}

/// Refuses `QUERY_LAG=0s` and `REPLAY_WINDOW=0s` unless `ACCEPT_LATE_RECORD_LOSS=true`.
fn late_records(p: &mut Parser<'_>, run: &RunConfig) {
    if run.accept_late_record_loss {
        return;
    }
    const LATENCY: &str = "Microsoft's published latency for audit and sign-in logs is 2 min \
                           at the 95th percentile and 5 min at the 99th, and MFA details may \
                           take up to two hours to reach a sign-in";
    if run.query_lag.is_zero() {
        p.problem(
            "QUERY_LAG",
            format!(
                "`0s` asks Graph for records it has not published yet ({LATENCY}): records \
                 that arrive late are then caught only by REPLAY_WINDOW and lost past it. Use \
                 a few minutes ({DEFAULT_QUERY_LAG}, the default), or set \
                 ACCEPT_LATE_RECORD_LOSS=true if losing late records is intended (a simulator \
                 that publishes at once)"
            ),
        );
    }
    if run.replay_window.is_zero() {
        p.problem(
            "REPLAY_WINDOW",
            format!(
                "`0s` never re-reads before the checkpoint, so every record Graph publishes \
                 after a run has passed its time is lost ({LATENCY}). Use \
                 {DEFAULT_REPLAY_WINDOW} (the default), or set ACCEPT_LATE_RECORD_LOSS=true \
                 if losing late records is intended (a simulator that publishes at once)"
            ),
        );
    }
}

/// Refuses a `RUN_TIME_BUDGET` whose [`longest_run`] does not fit in `FUNCTION_TIMEOUT`.
fn run_fits_function_timeout(p: &mut Parser<'_>, run: &RunConfig) {
    let Some(timeout) = run.function_timeout else {
        return;
    };
    if p.reported("RUN_TIME_BUDGET") || p.reported("FUNCTION_TIMEOUT") {
        return;
    }
    let budget = run.run_time_budget;
    let total = longest_run(budget);
    if total <= timeout {
        return;
    }
    // The largest whole-second budget that fits.
    let mut fits = timeout
        .saturating_sub(FINAL_WRITES)
        .as_secs()
        .saturating_mul(8)
        / 9;
    while fits > 0 && longest_run(Duration::from_secs(fits)) > timeout {
        fits -= 1;
    }
    let fix = if fits == 0 {
        format!(
            "raise FUNCTION_TIMEOUT above {}",
            seconds(FINAL_WRITES + Duration::from_secs(1))
        )
    } else {
        format!(
            "lower RUN_TIME_BUDGET to at most {}",
            format_duration(Duration::from_secs(fits))
        )
    };
    p.problem(
        "RUN_TIME_BUDGET/FUNCTION_TIMEOUT",
        format!(
            "a run can take RUN_TIME_BUDGET {} + {} of grace for slices in flight (an eighth \
             of the budget) + {} of final writes = {}, more than FUNCTION_TIMEOUT {} \
             ({}): the Functions host would kill the process mid-run, and the other job's run \
             with it. Either {fix}, or raise the host's functionTimeout (host.json, or the app \
             setting AzureFunctionsJobHost__functionTimeout; at most 00:10:00 on Consumption) \
             and FUNCTION_TIMEOUT with it",
            format_duration(budget),
            seconds(grace(budget)),
            seconds(FINAL_WRITES),
            seconds(total),
            format_duration(timeout),
            seconds(timeout),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_names_its_variable, problem_variables, with};

    #[test]
    fn function_timeout_defaults_to_host_json() {
        let host: serde_json::Value = serde_json::from_str(HOST_JSON).unwrap();
        let written = host["functionTimeout"].as_str().unwrap();
        assert_eq!(
            parse_function_timeout(written),
            Some(host_function_timeout()),
            "{written}"
        );
        assert_eq!(host_function_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(
            with(&[]).unwrap().run.function_timeout,
            host_function_timeout()
        );
        // The default budget fits the default timeout.
        assert!(longest_run(parse_duration("8m").unwrap()) <= Duration::from_secs(600));
    }

    #[test]
    fn function_timeouts_parse_in_the_hosts_forms() {
        let some = |s: u64| Some(Some(Duration::from_secs(s)));
        assert_eq!(parse_function_timeout("00:10:00"), some(600));
        assert_eq!(parse_function_timeout("0:05:30"), some(330));
        assert_eq!(parse_function_timeout("1.02:00:00"), some(93_600));
        assert_eq!(parse_function_timeout("10m"), some(600));
        assert_eq!(parse_function_timeout("-1"), Some(None));
        for bad in [
            "",
            "10",
            "10:00",
            "00:60:00",
            "24:00:00",
            "00:10:00.5",
            "x.00:10:00",
            "soon",
        ] {
            assert_eq!(parse_function_timeout(bad), None, "{bad}");
        }
        let config = with(&[("FUNCTION_TIMEOUT", "00:30:00"), ("RUN_TIME_BUDGET", "20m")]).unwrap();
        assert_eq!(config.run.function_timeout, Some(Duration::from_secs(1800)));
        let config = with(&[("FUNCTION_TIMEOUT", "-1"), ("RUN_TIME_BUDGET", "6h")]).unwrap();
        assert_eq!(config.run.function_timeout, None);
        assert!(
            config
                .describe()
                .contains(&("FUNCTION_TIMEOUT".into(), "-1".into()))
        );
    }

    #[test]
    fn grace_and_final_writes_are_the_documented_numbers() {
        assert_eq!(grace(Duration::from_secs(480)), Duration::from_secs(60));
        assert_eq!(FINAL_WRITES, Duration::from_secs(30));
        assert_eq!(
            longest_run(Duration::from_secs(480)),
            Duration::from_secs(570)
        );
        assert_eq!(seconds(grace(Duration::from_secs(540))), "67.5s");
        assert_eq!(seconds(Duration::from_secs(600)), "600s");
    }

    #[test]
    fn a_budget_that_cannot_finish_before_the_host_timeout_is_refused() {
        // 9m + 67.5s + 30s = 637.5s > 600s.
        let error = with(&[("RUN_TIME_BUDGET", "9m")]).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        let problem = &error.problems[0];
        assert_eq!(problem.variable, "RUN_TIME_BUDGET/FUNCTION_TIMEOUT");
        for part in [
            "RUN_TIME_BUDGET 9m",
            "67.5s of grace",
            "30s of final writes",
            "= 637.5s",
            "FUNCTION_TIMEOUT 10m (600s)",
            "lower RUN_TIME_BUDGET to at most 506s",
            "AzureFunctionsJobHost__functionTimeout",
        ] {
            assert!(
                problem.message.contains(part),
                "{part}: {}",
                problem.message
            );
        }
        // 506 s is the largest budget that fits ten minutes; the fix it gives is right.
        assert!(longest_run(Duration::from_secs(506)) <= Duration::from_secs(600));
        assert!(longest_run(Duration::from_secs(507)) > Duration::from_secs(600));
        assert!(with(&[("RUN_TIME_BUDGET", "506s")]).is_ok());
        assert!(with(&[("RUN_TIME_BUDGET", "507s")]).is_err());
        // A larger host timeout takes a larger budget; none takes any.
        assert!(with(&[("RUN_TIME_BUDGET", "9m"), ("FUNCTION_TIMEOUT", "11m")]).is_ok());
        assert!(with(&[("RUN_TIME_BUDGET", "1d"), ("FUNCTION_TIMEOUT", "-1")]).is_ok());
        // A timeout shorter than the final writes has no budget to offer.
        let error = with(&[("RUN_TIME_BUDGET", "1s"), ("FUNCTION_TIMEOUT", "20s")]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("raise FUNCTION_TIMEOUT above 31s"),
            "{error}"
        );
        // An unreadable value is one problem, not two.
        let variables = problem_variables(with(&[
            ("RUN_TIME_BUDGET", "1h"),
            ("FUNCTION_TIMEOUT", "later"),
        ]));
        assert_eq!(variables, vec!["FUNCTION_TIMEOUT"]);
    }

    #[test]
    fn zero_lag_or_replay_needs_the_explicit_override() {
        for name in ["QUERY_LAG", "REPLAY_WINDOW"] {
            let error = with(&[(name, "0s")]).unwrap_err();
            assert_eq!(problem_variables(Err(error.clone())), vec![name]);
            let text = error.to_string();
            for part in ["lost", "ACCEPT_LATE_RECORD_LOSS=true", "5 min at the 99th"] {
                assert!(text.contains(part), "{part}: {text}");
            }
            let config = with(&[(name, "0s"), ("ACCEPT_LATE_RECORD_LOSS", "true")]).unwrap();
            assert!(config.run.accept_late_record_loss);
        }
        let both = problem_variables(with(&[("QUERY_LAG", "0s"), ("REPLAY_WINDOW", "0s")]));
        assert_eq!(both, vec!["QUERY_LAG", "REPLAY_WINDOW"]);
        let config = with(&[
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "0s"),
            ("ACCEPT_LATE_RECORD_LOSS", "true"),
        ])
        .unwrap();
        assert!(config.run.query_lag.is_zero() && config.run.replay_window.is_zero());
        // The override changes nothing else, and non-zero values need none.
        assert!(with(&[("QUERY_LAG", "1s"), ("REPLAY_WINDOW", "1s")]).is_ok());
        assert!(with(&[("ACCEPT_LATE_RECORD_LOSS", "true")]).is_ok());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("INITIAL_LOOKBACK", "31d"),
            ("INITIAL_LOOKBACK", "7 days"),
            ("QUERY_LAG", "-2m"),
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "1w"),
            ("REPLAY_WINDOW", "0s"),
            ("RECONCILE_INTERVAL", "8d"),
            ("RECONCILE_WINDOW", "31d"),
            ("ACCEPT_LATE_RECORD_LOSS", "maybe"),
            ("RUN_TIME_BUDGET", "0s"),
            ("RUN_TIME_BUDGET", "10m"),
            ("FUNCTION_TIMEOUT", "5m"),
            ("FUNCTION_TIMEOUT", "00:61:00"),
            ("FUNCTION_TIMEOUT", "0s"),
            ("FUNCTION_TIMEOUT", "soon"),
            ("SLICE_WIDTH", "2d"),
            ("REPUBLISH_UPDATES", "maybe"),
            ("LOCK_LEASE", "5m"),
            ("PARALLEL_SLICES", "0"),
            ("PARALLEL_SLICES", "many"),
        ]);
    }
}
