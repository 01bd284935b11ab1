//! Scenario 1: a throttle-bound backfill of sign-ins.
//!
//! The budget is scaled up and the latency down together (budget `B` requests per 10 s on both
//! the simulator and `GRAPH_MAX_REQUESTS_PER_10S`, so one request interval is `10 s / B`; the
//! bound is `B / 10 s × 1000` records/s). Page latency is given in request intervals.
//!
//! Throughput is counted over the steady part of the run: from the completion of page `B` (the
//! sliding window lets the first `B` requests go at once, a burst a long backfill does not see
//! again) to the completion of page `B + m·B` (a whole number of budget windows, so the bursty
//! shape of a sliding-window budget does not bias the figure), leaving at least
//! [`TAIL_PAGES`] pages of the end out (the last slices run with less parallelism). A run too
//! short for that (the serial strategy at long latencies, far from the bound) is counted from the
//! completion of its first page to its end. The whole-run figure (records ÷ run duration) is
//! reported too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use graph_sim::{SimConfig, Throttle};
use serde::{Deserialize, Serialize};
use testbed::{Serve, Stack, StackOptions, timer_payload};

use super::Common;
use super::procfs::CpuSnapshot;

/// Sign-ins per one-minute slice on average (about five 1000-record pages; the counts per slice
/// vary randomly around it, as the simulator spreads record times uniformly).
pub const RECORDS_PER_SLICE: u32 = 4_900;
/// Pages left out at the end of a long run.
pub const TAIL_PAGES: u64 = 10;
/// Counter sampling period.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How slices are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// `PARALLEL_SLICES=auto`.
    Auto,
    /// `PARALLEL_SLICES=1`.
    Serial,
}

impl Strategy {
    /// The value of `PARALLEL_SLICES`.
    pub fn setting(self) -> String {
        match self {
            Strategy::Auto => "auto".into(),
            Strategy::Serial => "1".into(),
        }
    }

    /// A column name.
    pub fn label(self, budget: u32) -> String {
        match self {
            Strategy::Auto => format!(
                "service, PARALLEL_SLICES=auto (= {} at budget {budget})",
                entra_export::pipeline::auto_parallel_slices(budget)
            ),
            Strategy::Serial => "serial, PARALLEL_SLICES=1".into(),
        }
    }
}

/// The scenario's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// Requests per 10 s (simulator throttle and `GRAPH_MAX_REQUESTS_PER_10S`).
    pub budget: u32,
    /// Page latencies, in request intervals.
    pub latencies: Vec<f64>,
    /// Strategies, in column order.
    pub strategies: Vec<Strategy>,
    /// Minutes of sign-ins backfilled by a long run.
    pub long_minutes: u32,
    /// Minutes backfilled by the serial strategy at latencies of 2 intervals and more (it is far
    /// below the bound there and a long run would take minutes).
    pub short_minutes: u32,
    /// Runs of each parallel configuration (the serial one runs once).
    pub repeats: usize,
}

impl Params {
    /// One request interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(10) / self.budget
    }

    /// The throttle bound in records/s (1000-record pages).
    pub fn bound(&self) -> f64 {
        f64::from(self.budget) / 10.0 * 1000.0
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// `PARALLEL_SLICES`.
    pub strategy: Strategy,
    /// Which repetition.
    pub repeat: usize,
    /// Page latency in request intervals.
    pub latency_intervals: f64,
    /// Page latency in milliseconds.
    pub latency_ms: f64,
    /// Minutes of sign-ins in the range.
    pub minutes: u32,
    /// Windows the run handed to lanes (the run report's `windows`; `slices` before the
    /// planner).
    pub slices: u64,
    /// Pages served (200s).
    pub pages: u64,
    /// Records served.
    pub records: u64,
    /// Graph list requests (429s included).
    pub requests: u64,
    /// 429s provoked (simulator counter).
    pub throttled: u64,
    /// 429s the service saw (run report).
    pub report_throttled: u64,
    /// The most requests accepted in any 10 s (simulator).
    pub max_requests_in_any_10s: u64,
    /// Pages counted: from the completion of this page ...
    pub window_from_page: u64,
    /// ... to the completion of this page.
    pub window_to_page: u64,
    /// True when the window is whole budget windows after the first (a long run).
    pub steady: bool,
    /// Seconds between the two.
    pub window_seconds: f64,
    /// Records served between the two.
    pub window_records: u64,
    /// Records/s in the window.
    pub records_per_s: f64,
    /// Records ÷ run duration (the run report's `duration_ms`).
    pub whole_run_records_per_s: f64,
    /// Run duration, seconds.
    pub duration_s: f64,
    /// `records_per_s` ÷ the bound.
    pub ratio: f64,
    /// Records per 200 page.
    pub records_per_page: f64,
    /// The run's outcome.
    pub outcome: String,
    /// Service CPU seconds.
    pub service_cpu_s: f64,
    /// CPU used by other processes on the machine during the run, in cores.
    pub foreign_cores: f64,
}

#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    pages: u64,
    records: u64,
}

/// Runs every configuration and returns the runs in order.
pub async fn run(params: &Params, common: &Common) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for &latency in &params.latencies {
        for &strategy in &params.strategies {
            let repeats = if strategy == Strategy::Serial {
                1
            } else {
                params.repeats
            };
            for repeat in 0..repeats {
                let minutes = if strategy == Strategy::Serial && latency >= 2.0 {
                    params.short_minutes
                } else {
                    params.long_minutes
                };
                let run = one(params, strategy, latency, minutes, repeat, common)
                    .await
                    .with_context(|| {
                        format!(
                            "throttle scenario, {} at {latency} intervals",
                            strategy.label(params.budget)
                        )
                    })?;
                eprintln!(
                    "  throttle: {:<55} latency {:>4} intervals ({:>5.0} ms): {:>6.0} records/s = {:>5.1}% of the bound, 429s {}, {} pages, {:.1} s{}",
                    strategy.label(params.budget),
                    latency,
                    run.latency_ms,
                    run.records_per_s,
                    run.ratio * 100.0,
                    run.throttled,
                    run.pages,
                    run.duration_s,
                    super::report::other_load(run.foreign_cores)
                );
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

async fn one(
    params: &Params,
    strategy: Strategy,
    latency_intervals: f64,
    minutes: u32,
    repeat: usize,
    common: &Common,
) -> anyhow::Result<Run> {
    let azurite = common.azurite;
    let latency = params.interval().mul_f64(latency_intervals);
    let sim = SimConfig {
        seed: 6 + repeat as u64,
        history: Duration::from_secs(u64::from(minutes + 2) * 60),
        live_for: Duration::ZERO,
        audit_per_hour: 0,
        signin_per_hour: RECORDS_PER_SLICE * 60,
        throttle: Some(Throttle {
            requests: params.budget,
            per: Duration::from_secs(10),
        }),
        page_latency: latency,
        ..SimConfig::default()
    };
    let env: Vec<(String, String)> = [
        ("GRAPH_MAX_REQUESTS_PER_10S", params.budget.to_string()),
        ("INITIAL_LOOKBACK", format!("{minutes}m")),
        ("QUERY_LAG", "0s".into()),
        ("REPLAY_WINDOW", "0s".into()),
        ("SLICE_WIDTH", "1m".into()),
        ("RUN_TIME_BUDGET", "1h".into()),
        ("PARALLEL_SLICES", strategy.setting()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let env = common.env(env);
    let stack = Stack::start(StackOptions { sim, env })
        .await?
        .context("Azurite is not reachable: start it with scripts/azurite.sh start")?;
    let serve = Serve::spawn(&stack.env()).await?;
    let payload = timer_payload("SignInTimer", true, false);

    let done = AtomicBool::new(false);
    let mut samples = Vec::new();
    let cpu_before = CpuSnapshot::take(serve.pid(), azurite);
    let started = Instant::now();
    let sampler = async {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let counters = stack.sim.counters();
            samples.push(Sample {
                t: started.elapsed().as_secs_f64(),
                pages: counters.pages_served,
                records: counters.records_served,
            });
            if done.load(Ordering::Relaxed) {
                break;
            }
        }
    };
    let invoke = async {
        let reply = serve.invoke("SignInTimer", &payload).await;
        done.store(true, Ordering::Relaxed);
        reply
    };
    let (reply, ()) = tokio::join!(invoke, sampler);
    let cpu = cpu_before.delta(&CpuSnapshot::take(serve.pid(), azurite));
    let reply = reply?;
    let report = reply.report()?;
    if reply.status != 200 || report["outcome"] != "complete" {
        bail!(
            "the run did not complete (HTTP {}): {report}\n{}",
            reply.status,
            serve.logs()
        );
    }
    super::delete_containers(&stack).await?;
    let counters = stack.sim.counters();
    let n = counters.pages_served;
    let (from, to, window_seconds, window_records, steady) = steady_window(
        |page| {
            samples
                .iter()
                .find(|s| s.pages >= page)
                .map(|s| (s.t, s.records))
        },
        counters.pages_served,
        u64::from(params.budget),
    )?;
    let records_per_s = window_records as f64 / window_seconds;
    let duration_s = report["duration_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    let fetched = report["records_fetched"].as_u64().unwrap_or(0);
    Ok(Run {
        strategy,
        repeat,
        latency_intervals,
        latency_ms: latency.as_secs_f64() * 1000.0,
        minutes,
        slices: report["windows"].as_u64().unwrap_or(0),
        pages: n,
        records: counters.records_served,
        requests: counters.list_requests,
        throttled: counters.throttled,
        report_throttled: report["throttled"].as_u64().unwrap_or(0),
        max_requests_in_any_10s: counters.max_requests_in_any_10s_window,
        window_from_page: from,
        window_to_page: to,
        steady,
        window_seconds,
        window_records,
        records_per_s,
        whole_run_records_per_s: fetched as f64 / duration_s,
        duration_s,
        ratio: records_per_s / params.bound(),
        records_per_page: counters.records_served as f64 / n.max(1) as f64,
        outcome: report["outcome"].as_str().unwrap_or("").to_owned(),
        service_cpu_s: cpu.service,
        foreign_cores: cpu.foreign() / started.elapsed().as_secs_f64(),
    })
}
/// The steady part of a run, pages `B` to `B + m·B` (`B` = budget, leaving [`TAIL_PAGES`]),
/// or the whole run when it is too short. `at(page)` is the
/// `(time, records so far)` of the first sample that had `page` pages served.
/// Returns `(from page, to page, seconds, records, steady)`.
pub(super) fn steady_window(
    at: impl Fn(u64) -> Option<(f64, u64)>,
    pages_served: u64,
    budget: u64,
) -> anyhow::Result<(u64, u64, f64, u64, bool)> {
    let (n, b) = (pages_served, budget);
    let (from, to, steady) = if n >= 2 * b + TAIL_PAGES {
        (b, b + (n - TAIL_PAGES - b) / b * b, true)
    } else {
        (1, n, false)
    };
    let point = |page| at(page).context("no sample reached the page");
    let ((t0, r0), (t1, r1)) = (point(from)?, point(to)?);
    Ok((from, to, t1 - t0, r1 - r0, steady))
}
