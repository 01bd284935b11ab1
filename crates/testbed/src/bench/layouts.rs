//! Scenario 5: first runs over layouts users meet (issue 12), not page-aligned slices.
//!
//! Three tenants, each a first run with a 3-day lookback (`INITIAL_LOOKBACK=3d`) done in one
//! run (`RUN_TIME_BUDGET=1h`, far more than any of them needs):
//! - **sparse**: 3,000 audit records and 12,000 sign-ins over the 3 days (both jobs, invoked at
//!   once as the two timers fire; they share the tenant's budget);
//! - **medium**: 50,000 sign-ins over the 3 days;
//! - **dense**: 200,000 sign-ins over the last 2 days only, so the first day of the range is
//!   empty (the simulator's `history` is 2 days).
//!
//! The simulator spreads record times uniformly at random, so no hour and no window holds a whole
//! number of pages. For each run: the Graph requests the simulator received per 1,000 records,
//! the throttle minimum (`P` = Σ over the jobs of ⌈records ÷ page size⌉ pages of data, and
//! `P` request intervals: the time they need at the budget's rate), the wall time, and the
//! records/s of the run's steady part as a fraction of the bound (`page size` records per
//! request interval), counted as in scenario 1.
//!
//! The dense layout runs at the scaled budget of scenario 1 (50 requests per 10 s, page latency
//! in request intervals of 200 ms). Sparse and medium run at Graph's own budget (5 per 10 s, one
//! interval is 2 s): at the scaled budget their 17 to 55 requests would all fit in the first
//! 10 s window, so the throttle would never bite. One dense run at Graph's own budget shows what
//! the scaled budget hides (its sliding window lets the first 50 requests go at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use graph_sim::{Resource, SimConfig, Throttle};
use serde::{Deserialize, Serialize};
use testbed::{Serve, Stack, StackOptions, timer_payload};

use super::Common;
use super::procfs::CpuSnapshot;
use super::throttle::{Strategy, steady_window};

/// Records per Graph page (`GRAPH_PAGE_SIZE`, Graph's maximum and the service's default).
pub const PAGE_SIZE: u64 = 1000;
/// The lookback of the layouts users meet (`INITIAL_LOOKBACK`), hours.
pub const LOOKBACK_HOURS: u64 = 72;
/// Counter sampling period.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// A tenant's records in the 3-day range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// 3,000 audit records and 12,000 sign-ins over 3 days.
    Sparse,
    /// 50,000 sign-ins over 3 days.
    Medium,
    /// 200,000 sign-ins over the last 2 days of the 3.
    Dense,
    /// The control for the empty day: the dense tenant's 2 days of data with a 2-day lookback
    /// (not in the default set; `--layouts dense-no-gap` or `--case dense-no-gap:...`).
    DenseNoGap,
}

impl Layout {
    /// The layouts users meet, in table order (the default set).
    pub const ALL: [Layout; 3] = [Layout::Sparse, Layout::Medium, Layout::Dense];

    /// The short name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Sparse => "sparse",
            Layout::Medium => "medium",
            Layout::Dense => "dense",
            Layout::DenseNoGap => "dense-no-gap",
        }
    }

    /// Parses [`Layout::name`].
    pub fn parse(text: &str) -> Option<Layout> {
        Layout::ALL
            .into_iter()
            .chain([Layout::DenseNoGap])
            .find(|l| l.name() == text)
    }

    /// What the tenant holds.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Sparse => "3,000 audit + 12,000 sign-ins over 3 days",
            Layout::Medium => "50,000 sign-ins over 3 days",
            Layout::Dense => "200,000 sign-ins over the last 2 of 3 days",
            Layout::DenseNoGap => "200,000 sign-ins over 2 days, 2-day lookback (no empty day)",
        }
    }

    /// Hours of generated records before the simulator's start (the data start there).
    pub fn history_hours(self) -> u64 {
        match self {
            Layout::Sparse | Layout::Medium => 72,
            Layout::Dense | Layout::DenseNoGap => 48,
        }
    }

    /// `INITIAL_LOOKBACK`, hours.
    pub fn lookback_hours(self) -> u64 {
        match self {
            Layout::DenseNoGap => 48,
            _ => LOOKBACK_HOURS,
        }
    }

    /// Audit records per hour (the simulator's rate; the totals round to within 0.5%).
    pub fn audit_per_hour(self) -> u32 {
        match self {
            // 42 × 72 = 3,024.
            Layout::Sparse => 42,
            Layout::Medium | Layout::Dense | Layout::DenseNoGap => 0,
        }
    }

    /// Sign-ins per hour.
    pub fn signin_per_hour(self) -> u32 {
        match self {
            // 167 × 72 = 12,024.
            Layout::Sparse => 167,
            // 694 × 72 = 49,968.
            Layout::Medium => 694,
            // 4,167 × 48 = 200,016.
            Layout::Dense | Layout::DenseNoGap => 4_167,
        }
    }

    /// The jobs a timer tick runs for this tenant (those with records).
    pub fn jobs(self) -> Vec<Job> {
        let mut jobs = Vec::new();
        if self.audit_per_hour() > 0 {
            jobs.push(Job::Audit);
        }
        if self.signin_per_hour() > 0 {
            jobs.push(Job::SignIn);
        }
        jobs
    }
}

/// One of the two jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Job {
    /// `AuditTimer`.
    Audit,
    /// `SignInTimer`.
    SignIn,
}

impl Job {
    fn function(self) -> &'static str {
        match self {
            Job::Audit => "AuditTimer",
            Job::SignIn => "SignInTimer",
        }
    }

    fn resource(self) -> Resource {
        match self {
            Job::Audit => Resource::DirectoryAudits,
            Job::SignIn => Resource::SignIns,
        }
    }

    /// `audit` or `signin`.
    pub fn name(self) -> &'static str {
        match self {
            Job::Audit => "audit",
            Job::SignIn => "signin",
        }
    }
}

/// One configuration to measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The tenant.
    pub layout: Layout,
    /// Requests per 10 s (simulator throttle and `GRAPH_MAX_REQUESTS_PER_10S`).
    pub budget: u32,
    /// Page latency, in request intervals (`10 s ÷ budget`).
    pub latency_intervals: f64,
    /// `PARALLEL_SLICES`.
    pub strategy: Strategy,
    /// Runs.
    pub repeats: usize,
}

impl Case {
    /// Parses `LAYOUT:BUDGET:LATENCY:STRATEGY[:REPEATS]`, e.g. `dense:5:4:auto` or
    /// `dense:50:8:1:3` (`--case`).
    pub fn parse(text: &str) -> anyhow::Result<Case> {
        let parts: Vec<&str> = text.split(':').collect();
        let [layout, budget, latency, strategy, rest @ ..] = parts.as_slice() else {
            bail!("--case {text}: expected LAYOUT:BUDGET:LATENCY:STRATEGY[:REPEATS]");
        };
        let layout = Layout::parse(layout)
            .with_context(|| format!("--case {text}: unknown layout `{layout}`"))?;
        let budget: u32 = budget
            .parse()
            .with_context(|| format!("--case {text}: budget"))?;
        if budget < 5 || !budget.is_multiple_of(5) {
            bail!("--case {text}: the budget must be a multiple of 5");
        }
        let latency_intervals: f64 = latency
            .parse()
            .with_context(|| format!("--case {text}: latency"))?;
        let strategy = match *strategy {
            "auto" => Strategy::Auto,
            "1" | "serial" => Strategy::Serial,
            other => bail!("--case {text}: strategy `{other}` is not auto or 1"),
        };
        let repeats = match rest {
            [] => 1,
            [n] => n
                .parse()
                .with_context(|| format!("--case {text}: repeats"))?,
            _ => bail!("--case {text}: too many fields"),
        };
        Ok(Case {
            layout,
            budget,
            latency_intervals,
            strategy,
            repeats,
        })
    }

    /// One request interval.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(10) / self.budget
    }

    /// The bound, records/s: a full page per request interval.
    pub fn bound(&self) -> f64 {
        PAGE_SIZE as f64 / self.interval().as_secs_f64()
    }

    /// `layout, budget, latency, strategy` for messages.
    pub fn label(&self) -> String {
        format!(
            "{} at budget {}, {} intervals, PARALLEL_SLICES={}",
            self.layout.name(),
            self.budget,
            self.latency_intervals,
            self.strategy.setting()
        )
    }
}

/// The scenario's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// The configurations, in table order.
    pub cases: Vec<Case>,
}

impl Params {
    /// The full set (about 30 minutes) or the quick one (about 3).
    pub fn new(quick: bool, repeats: Option<usize>, layouts: &[Layout]) -> Params {
        let mut cases = Vec::new();
        let case = |layout, budget, latency_intervals, strategy, repeats| Case {
            layout,
            budget,
            latency_intervals,
            strategy,
            repeats,
        };
        let both = [Strategy::Auto, Strategy::Serial];
        if quick {
            cases.push(case(Layout::Sparse, 5, 1.0, Strategy::Auto, 1));
            for strategy in both {
                cases.push(case(Layout::Dense, 50, 1.0, strategy, 1));
            }
        } else {
            for layout in [Layout::Sparse, Layout::Medium] {
                for strategy in both {
                    cases.push(case(layout, 5, 1.0, strategy, 1));
                }
            }
            for latency in [0.25, 1.0, 4.0, 8.0] {
                cases.push(case(
                    Layout::Dense,
                    50,
                    latency,
                    Strategy::Auto,
                    repeats.unwrap_or(2),
                ));
                cases.push(case(Layout::Dense, 50, latency, Strategy::Serial, 1));
            }
            // What the scaled budget hides: the same tenant at Graph's own budget (7 minutes).
            cases.push(case(Layout::Dense, 5, 4.0, Strategy::Auto, 1));
        }
        cases.retain(|c| layouts.contains(&c.layout));
        Params { cases }
    }
}

/// What one job's run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRun {
    /// The job.
    pub job: Job,
    /// Records the simulator holds in the run's range.
    pub records_in_range: u64,
    /// ⌈records_in_range ÷ page size⌉.
    pub pages_of_data: u64,
    /// The run report's figures.
    pub records_written: u64,
    /// Graph requests the service counted.
    pub requests: u64,
    /// Graph pages it received.
    pub pages: u64,
    /// Windows handed to lanes.
    pub windows: u64,
    /// Times a window's rest was cut for idle lanes.
    pub plan_splits: u64,
    /// The run's own duration, seconds.
    pub duration_s: f64,
    /// The run's outcome.
    pub outcome: String,
}

/// One measured run of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The configuration.
    pub case: Case,
    /// Which repetition.
    pub repeat: usize,
    /// Page latency, milliseconds.
    pub latency_ms: f64,
    /// One request interval, seconds.
    pub interval_s: f64,
    /// Each job's figures.
    pub jobs: Vec<JobRun>,
    /// Records in the range, both jobs.
    pub records: u64,
    /// Pages of data `P`: Σ ⌈records ÷ page size⌉ over the jobs.
    pub pages_of_data: u64,
    /// Graph list requests the simulator received (429s included).
    pub requests: u64,
    /// 200 pages it served (empty ones included).
    pub pages_served: u64,
    /// Records in them.
    pub records_served: u64,
    /// 429s.
    pub throttled: u64,
    /// The most requests accepted in any 10 s.
    pub max_requests_in_any_10s: u64,
    /// Requests per 1,000 records.
    pub requests_per_1000: f64,
    /// The least possible: `P` per 1,000 records.
    pub min_requests_per_1000: f64,
    /// `P` request intervals, seconds: the time the pages of data need at the budget's rate.
    pub throttle_min_s: f64,
    /// From the invocations to the last reply, seconds.
    pub wall_s: f64,
    /// `wall_s ÷ throttle_min_s`.
    pub wall_over_min: f64,
    /// Records ÷ wall time ÷ the bound.
    pub whole_run_ratio: f64,
    /// True when the steady window (pages `B` to `B + m·B`) fits in the run.
    pub steady: bool,
    /// Pages counted: from the completion of this page ...
    pub window_from_page: u64,
    /// ... to the completion of this one.
    pub window_to_page: u64,
    /// Seconds between the two.
    pub window_seconds: f64,
    /// Records served between them.
    pub window_records: u64,
    /// Records/s between them.
    pub records_per_s: f64,
    /// `records_per_s ÷` the bound.
    pub ratio: f64,
    /// Graph requests the simulator received in each 10 s of the run, from the invocations (the
    /// last entry is the partial rest): how fast the run reached the budget, and its tail.
    #[serde(default)]
    pub requests_per_10s: Vec<u64>,
    /// Service CPU seconds (noisy: 2 shared cores).
    pub service_cpu_s: f64,
    /// CPU other processes used meanwhile, cores.
    pub foreign_cores: f64,
}

#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    requests: u64,
    pages: u64,
    records: u64,
}

/// Runs every case and returns the runs in order.
pub async fn run(params: &Params, common: &Common) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for case in &params.cases {
        for repeat in 0..case.repeats {
            let run = one(case, repeat, common)
                .await
                .with_context(|| format!("layouts scenario, {}", case.label()))?;
            let steady = if run.steady {
                format!("{:.1}% of the bound steady", run.ratio * 100.0)
            } else {
                "too short for a steady window".to_owned()
            };
            eprintln!(
                "  layouts: {:<6} budget {:>2} latency {:>4} intervals {:<4}: {} records, {} requests ({:.2} per 1000, min {:.2}), wall {:.1} s vs min {:.1} s (×{:.2}), {steady}, 429s {}{}",
                case.layout.name(),
                case.budget,
                case.latency_intervals,
                case.strategy.setting(),
                run.records,
                run.requests,
                run.requests_per_1000,
                run.min_requests_per_1000,
                run.wall_s,
                run.throttle_min_s,
                run.wall_over_min,
                run.throttled,
                super::report::other_load(run.foreign_cores)
            );
            runs.push(run);
        }
    }
    Ok(runs)
}

fn parse_time(value: &serde_json::Value) -> anyhow::Result<time::OffsetDateTime> {
    let text = value.as_str().context("no range in the run report")?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("range bound {text}"))
}

async fn one(case: &Case, repeat: usize, common: &Common) -> anyhow::Result<Run> {
    let layout = case.layout;
    let interval = case.interval();
    let latency = interval.mul_f64(case.latency_intervals);
    let sim = SimConfig {
        seed: 120 + repeat as u64,
        history: Duration::from_secs(layout.history_hours() * 3600),
        live_for: Duration::ZERO,
        audit_per_hour: layout.audit_per_hour(),
        signin_per_hour: layout.signin_per_hour(),
        throttle: Some(Throttle {
            requests: case.budget,
            per: Duration::from_secs(10),
        }),
        page_latency: latency,
        ..SimConfig::default()
    };
    let env: Vec<(String, String)> = [
        ("GRAPH_MAX_REQUESTS_PER_10S", case.budget.to_string()),
        ("GRAPH_PAGE_SIZE", PAGE_SIZE.to_string()),
        ("INITIAL_LOOKBACK", format!("{}h", layout.lookback_hours())),
        ("QUERY_LAG", "0s".into()),
        ("REPLAY_WINDOW", "0s".into()),
        ("RUN_TIME_BUDGET", "1h".into()),
        ("PARALLEL_SLICES", case.strategy.setting()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let env = common.env(env);
    let stack = Stack::start(StackOptions { sim, env })
        .await?
        .context("Azurite is not reachable: start it with scripts/azurite.sh start")?;
    let serve = Serve::spawn(&stack.env()).await?;
    let jobs = layout.jobs();

    let done = AtomicBool::new(false);
    let mut samples = Vec::new();
    let cpu_before = CpuSnapshot::take(serve.pid(), common.azurite);
    let started = Instant::now();
    let sampler = async {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let counters = stack.sim.counters();
            samples.push(Sample {
                t: started.elapsed().as_secs_f64(),
                requests: counters.list_requests,
                pages: counters.pages_served,
                records: counters.records_served,
            });
            if done.load(Ordering::Relaxed) {
                break;
            }
        }
    };
    // Both timers fire at once, as on the quarter hour.
    let invoke = async {
        let replies = invoke_all(&serve, &jobs).await;
        let wall = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        (replies, wall)
    };
    let ((replies, wall_s), ()) = tokio::join!(invoke, sampler);
    let cpu = cpu_before.delta(&CpuSnapshot::take(serve.pid(), common.azurite));
    let counters = stack.sim.counters();

    let mut job_runs = Vec::new();
    for (job, reply) in jobs.iter().zip(replies) {
        let reply = reply?;
        let report = reply.report()?;
        if reply.status != 200 || report["outcome"] != "complete" {
            bail!(
                "the {} run did not complete (HTTP {}): {report}\n{}",
                job.name(),
                reply.status,
                serve.logs()
            );
        }
        let (from, to) = (
            parse_time(&report["range_start"])?,
            parse_time(&report["range_end"])?,
        );
        let in_range = stack.sim.all_records(job.resource(), from, to).len() as u64;
        let written = report["records_written"].as_u64().unwrap_or(0);
        if written != in_range {
            bail!(
                "the {} run wrote {written} records, the simulator holds {in_range} in its range",
                job.name()
            );
        }
        job_runs.push(JobRun {
            job: *job,
            records_in_range: in_range,
            pages_of_data: in_range.div_ceil(PAGE_SIZE),
            records_written: written,
            requests: report["requests"].as_u64().unwrap_or(0),
            pages: report["pages"].as_u64().unwrap_or(0),
            windows: report["windows"].as_u64().unwrap_or(0),
            plan_splits: report["plan_splits"].as_u64().unwrap_or(0),
            duration_s: report["duration_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
            outcome: report["outcome"].as_str().unwrap_or("").to_owned(),
        });
    }
    super::delete_containers(&stack).await?;

    let records: u64 = job_runs.iter().map(|j| j.records_in_range).sum();
    let pages_of_data: u64 = job_runs.iter().map(|j| j.pages_of_data).sum();
    let interval_s = interval.as_secs_f64();
    let throttle_min_s = pages_of_data as f64 * interval_s;
    let bound = case.bound();

    // The steady window, as in scenario 1.
    let n = counters.pages_served;
    let (from, to, window_seconds, window_records, steady) = steady_window(
        |page| {
            samples
                .iter()
                .find(|s| s.pages >= page)
                .map(|s| (s.t, s.records))
        },
        counters.pages_served,
        u64::from(case.budget),
    )?;
    let records_per_s = window_records as f64 / window_seconds;
    let per_1000 = |count: u64| count as f64 * 1000.0 / records.max(1) as f64;
    let mut requests_per_10s = Vec::new();
    let mut before = 0;
    for k in 1..=(wall_s / 10.0).ceil() as usize {
        let upto = samples
            .iter()
            .take_while(|s| s.t <= 10.0 * k as f64)
            .last()
            .map_or(0, |s| s.requests);
        requests_per_10s.push(upto - before);
        before = upto;
    }
    if let Some(last) = requests_per_10s.last_mut() {
        *last += counters.list_requests - before;
    }
    Ok(Run {
        case: *case,
        repeat,
        latency_ms: latency.as_secs_f64() * 1000.0,
        interval_s,
        jobs: job_runs,
        records,
        pages_of_data,
        requests: counters.list_requests,
        pages_served: n,
        records_served: counters.records_served,
        throttled: counters.throttled,
        max_requests_in_any_10s: counters.max_requests_in_any_10s_window,
        requests_per_1000: per_1000(counters.list_requests),
        min_requests_per_1000: per_1000(pages_of_data),
        throttle_min_s,
        wall_s,
        wall_over_min: wall_s / throttle_min_s,
        whole_run_ratio: records as f64 / wall_s / bound,
        steady,
        window_from_page: from,
        window_to_page: to,
        window_seconds,
        window_records,
        records_per_s,
        ratio: records_per_s / bound,
        requests_per_10s,
        service_cpu_s: cpu.service,
        foreign_cores: cpu.foreign() / started.elapsed().as_secs_f64(),
    })
}

/// Invokes every job's timer at once and waits for all the replies.
async fn invoke_all(serve: &Serve, jobs: &[Job]) -> Vec<anyhow::Result<testbed::HostReply>> {
    let mut set = Vec::new();
    for job in jobs {
        let payload = timer_payload(job.function(), true, false);
        set.push(async move { serve.invoke(job.function(), &payload).await });
    }
    let mut replies = Vec::new();
    // At most two jobs: join them pairwise without an extra dependency.
    let mut iter = set.into_iter();
    match (iter.next(), iter.next()) {
        (Some(a), Some(b)) => {
            let (a, b) = tokio::join!(a, b);
            replies.push(a);
            replies.push(b);
        }
        (Some(a), None) => replies.push(a.await),
        _ => {}
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_parses_from_the_command_line() {
        let case = Case::parse("dense:5:4:auto").unwrap();
        assert_eq!(case.layout, Layout::Dense);
        assert_eq!(case.budget, 5);
        assert_eq!(case.latency_intervals, 4.0);
        assert_eq!(case.strategy, Strategy::Auto);
        assert_eq!(case.repeats, 1);
        assert_eq!(case.interval(), Duration::from_secs(2));
        assert_eq!(case.bound(), 500.0);
        let case = Case::parse("sparse:50:0.25:1:3").unwrap();
        assert_eq!(
            (case.strategy, case.repeats, case.bound()),
            (Strategy::Serial, 3, 5000.0)
        );
        for bad in [
            "dense",
            "dense:7:1:auto",
            "huge:5:1:auto",
            "dense:5:1:2",
            "dense:5:x:auto",
        ] {
            assert!(Case::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_layouts_hold_what_they_say() {
        let total = |l: Layout, per_hour: u32| u64::from(per_hour) * l.history_hours();
        assert_eq!(
            total(Layout::Sparse, Layout::Sparse.audit_per_hour()),
            3_024
        );
        assert_eq!(
            total(Layout::Sparse, Layout::Sparse.signin_per_hour()),
            12_024
        );
        assert_eq!(
            total(Layout::Medium, Layout::Medium.signin_per_hour()),
            49_968
        );
        assert_eq!(
            total(Layout::Dense, Layout::Dense.signin_per_hour()),
            200_016
        );
        // The dense tenant's data start a day after the lookback does.
        assert_eq!(
            Layout::Dense.lookback_hours() - Layout::Dense.history_hours(),
            24
        );
        assert_eq!(
            Layout::DenseNoGap.lookback_hours(),
            Layout::DenseNoGap.history_hours()
        );
        assert_eq!(Layout::parse("dense-no-gap"), Some(Layout::DenseNoGap));
        assert_eq!(Layout::Sparse.jobs(), vec![Job::Audit, Job::SignIn]);
        assert_eq!(Layout::Dense.jobs(), vec![Job::SignIn]);
        let full = Params::new(false, None, &Layout::ALL);
        assert_eq!(full.cases.len(), 13);
        let dense_only = Params::new(false, None, &[Layout::Dense]);
        assert!(dense_only.cases.iter().all(|c| c.layout == Layout::Dense));
    }
}
