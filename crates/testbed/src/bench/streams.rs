//! Scenario 6: every stream at once (issue 14), at Graph's own throttle.
//!
//! One tenant with all eight streams enabled (`SIGNIN_EVENT_TYPES` all four sign-in types,
//! `AUDIT_STREAMS` directory audits, provisioning and both risk-detection streams) whose
//! non-interactive sign-ins are a large backfill (`noninteractive_per_hour` × `history_hours`,
//! far more than a run can fetch) while the other streams hold a few thousand records each and
//! keep receiving live records. The simulator throttles at Graph's budget (5 requests per 10 s,
//! the service's default `GRAPH_MAX_REQUESTS_PER_10S=5`) with a page latency of one request
//! interval (2 s). Each round fires both timers at once, as the host does on the quarter hour,
//! each run bounded by `RUN_TIME_BUDGET`; the next round starts as soon as both replies are in.
//!
//! Per round: records written (all streams) per second of the round against the bound, 429s,
//! and for every stream whether its checkpoint advanced (`checkpoint_after` later than
//! `checkpoint_before`, or set for the first time) and `made_progress`.
//!
//! The bound: the budget allows `0.5 × T` requests in a round of `T` seconds. Each stream other
//! than the backfill needs `max(1, ⌈records ÷ its page size⌉)` of them (risk detections take at
//! most 500 a page), however few its records; the rest could each carry a full page (1,000) of
//! the backfill. `bound = Σ small-stream records + (0.5 T − their requests) × 1000` records, and
//! the round's fraction is records written ÷ that bound. The raw figure against 500 records/s
//! (every request a full page of 1,000) is reported too.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use entra_export::job::{JobKind, Timer};
use graph_sim::{SimConfig, Throttle};
use serde::{Deserialize, Serialize};
use testbed::{Serve, Stack, StackOptions, timer_payload};

use super::Common;
use super::report::Machine;

/// The stream that holds the backfill.
pub const BACKFILL_STREAM: &str = "signin-noninteractive";
/// Graph's budget: requests per 10 s.
pub const BUDGET: u32 = 5;
/// `GRAPH_PAGE_SIZE`.
pub const PAGE_SIZE: u64 = 1000;

/// The scenario's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// Rounds (each fires both timers once).
    pub rounds: usize,
    /// `RUN_TIME_BUDGET`, seconds.
    pub run_budget_s: u64,
    /// Hours of records before the simulator's start, and `INITIAL_LOOKBACK`.
    pub history_hours: u64,
    /// Page latency, seconds.
    pub page_latency_s: f64,
    /// Records per hour of each stream: audit, interactive, non-interactive, service principal,
    /// managed identity, provisioning, risk detections, service-principal risk detections.
    pub audit_per_hour: u32,
    /// Interactive sign-ins per hour.
    pub signin_per_hour: u32,
    /// Non-interactive sign-ins per hour (the backfill).
    pub noninteractive_per_hour: u32,
    /// Service-principal sign-ins per hour.
    pub service_principal_per_hour: u32,
    /// Managed-identity sign-ins per hour.
    pub managed_identity_per_hour: u32,
    /// Provisioning events per hour.
    pub provisioning_per_hour: u32,
    /// Risk detections per hour.
    pub risk_detections_per_hour: u32,
    /// Service-principal risk detections per hour.
    pub sp_risk_detections_per_hour: u32,
}

impl Params {
    /// The full run (about 12 minutes) or the quick one (about 4).
    pub fn new(quick: bool, rounds: Option<usize>) -> Params {
        let full = Params {
            rounds: 5,
            run_budget_s: 120,
            history_hours: 8,
            page_latency_s: 2.0,
            audit_per_hour: 600,
            signin_per_hour: 1_500,
            // 40,000 × 8 h = 320,000: more than five 2-minute runs can fetch at 500 records/s.
            noninteractive_per_hour: 40_000,
            service_principal_per_hour: 800,
            managed_identity_per_hour: 800,
            provisioning_per_hour: 300,
            risk_detections_per_hour: 120,
            sp_risk_detections_per_hour: 120,
        };
        let mut params = if quick {
            Params {
                rounds: 3,
                run_budget_s: 60,
                history_hours: 4,
                ..full
            }
        } else {
            full
        };
        if let Some(rounds) = rounds {
            params.rounds = rounds;
        }
        params
    }

    /// The records of the backfill in the initial range.
    pub fn backfill_records(&self) -> u64 {
        u64::from(self.noninteractive_per_hour) * self.history_hours
    }
}

/// One stream's run in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRun {
    /// The stream (`job` of the report).
    pub stream: String,
    /// Its largest page.
    pub page_size: u64,
    /// The run's outcome.
    pub outcome: String,
    /// `checkpoint_before`.
    pub checkpoint_before: Option<String>,
    /// `checkpoint_after`.
    pub checkpoint_after: Option<String>,
    /// `checkpoint_after` later than `checkpoint_before` (or set for the first time).
    pub advanced: bool,
    /// `made_progress`.
    pub made_progress: bool,
    /// Records written.
    pub records_written: u64,
    /// Graph requests the service sent for it.
    pub requests: u64,
    /// Pages received.
    pub pages: u64,
    /// 429s it received.
    pub throttled: u64,
    /// The run's duration, seconds.
    pub duration_s: f64,
}

/// One round: both timers fired at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// 1-based.
    pub round: usize,
    /// From the invocations to the last reply, seconds.
    pub wall_s: f64,
    /// HTTP status of the two replies (audit, sign-in).
    pub status: [u16; 2],
    /// Every stream's run, audit timer's first.
    pub streams: Vec<StreamRun>,
    /// Records written, all streams.
    pub records_written: u64,
    /// Records written by the backfill stream.
    pub backfill_written: u64,
    /// List requests the simulator received in the round (429s included).
    pub requests: u64,
    /// 429s it answered.
    pub throttled: u64,
    /// Pages it served, records in them.
    pub pages_served: u64,
    /// Records in those pages.
    pub records_served: u64,
    /// Requests the budget allows in the round: `0.5 × wall_s`.
    pub budget_requests: f64,
    /// Requests the small streams need at least.
    pub small_requests: u64,
    /// The bound, records (see the module documentation).
    pub bound_records: f64,
    /// `records_written ÷ bound_records`.
    pub ratio: f64,
    /// `records_written ÷ wall_s ÷ 500`.
    pub raw_ratio: f64,
    /// Accepted requests ÷ `budget_requests`.
    pub request_utilisation: f64,
}

/// Everything one `bench --only streams` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamResults {
    /// The machine.
    pub machine: Machine,
    /// `--quick`.
    pub quick: bool,
    /// The command line.
    pub command: String,
    /// The parameters.
    pub params: Params,
    /// The rounds.
    pub rounds: Vec<Round>,
    /// Rounds counted as steady (all but the first).
    pub steady_rounds: Vec<usize>,
    /// Σ records ÷ Σ bound over the steady rounds.
    pub steady_ratio: f64,
    /// Σ records ÷ Σ wall ÷ 500 over the steady rounds.
    pub steady_raw_ratio: f64,
    /// Records/s over the steady rounds.
    pub steady_records_per_s: f64,
    /// Whether every stream's checkpoint advanced in every round.
    pub every_checkpoint_advanced: bool,
    /// Service CPU seconds over the scenario.
    pub service_cpu_s: f64,
}

fn page_size(stream: &str) -> u64 {
    JobKind::from_name(stream)
        .map_or(PAGE_SIZE, |k| u64::from(k.spec_template().max_page_size))
        .min(PAGE_SIZE)
}

fn parse(text: Option<&str>) -> Option<time::OffsetDateTime> {
    text.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })
}

/// Runs the scenario.
pub async fn run(
    params: &Params,
    common: &Common,
) -> anyhow::Result<(Vec<Round>, f64 /* service CPU s */)> {
    let sim = SimConfig {
        seed: 140,
        history: Duration::from_secs(params.history_hours * 3600),
        live_for: Duration::from_secs(2 * 3600),
        audit_per_hour: params.audit_per_hour,
        signin_per_hour: params.signin_per_hour,
        noninteractive_per_hour: params.noninteractive_per_hour,
        service_principal_per_hour: params.service_principal_per_hour,
        managed_identity_per_hour: params.managed_identity_per_hour,
        provisioning_per_hour: params.provisioning_per_hour,
        risk_detections_per_hour: params.risk_detections_per_hour,
        sp_risk_detections_per_hour: params.sp_risk_detections_per_hour,
        throttle: Some(Throttle {
            requests: BUDGET,
            per: Duration::from_secs(10),
        }),
        page_latency: Duration::from_secs_f64(params.page_latency_s),
        ..SimConfig::default()
    };
    let env: Vec<(String, String)> = [
        ("GRAPH_MAX_REQUESTS_PER_10S", BUDGET.to_string()),
        ("GRAPH_PAGE_SIZE", PAGE_SIZE.to_string()),
        ("INITIAL_LOOKBACK", format!("{}h", params.history_hours)),
        ("QUERY_LAG", "0s".into()),
        ("REPLAY_WINDOW", "0s".into()),
        ("RUN_TIME_BUDGET", format!("{}s", params.run_budget_s)),
        (
            "SIGNIN_EVENT_TYPES",
            "interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity".into(),
        ),
        (
            "AUDIT_STREAMS",
            "directoryAudits,provisioning,riskDetections,servicePrincipalRiskDetections".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let env = common.env(env);
    let stack = Stack::start(StackOptions { sim, env })
        .await?
        .context("Azurite is not reachable: start it with scripts/azurite.sh start")?;
    let serve = Serve::spawn(&stack.env()).await?;
    let cpu_before = super::procfs::CpuSnapshot::take(serve.pid(), common.azurite);
    let mut rounds = Vec::new();
    for round in 1..=params.rounds {
        let before = stack.sim.counters();
        let started = Instant::now();
        let invoke = |timer: Timer| {
            let function = timer.function_name();
            let payload = timer_payload(function, true, false);
            let serve = &serve;
            async move { serve.invoke(function, &payload).await }
        };
        let (audit, signin) = tokio::join!(invoke(Timer::Audit), invoke(Timer::SignIn));
        let wall_s = started.elapsed().as_secs_f64();
        let after = stack.sim.counters();
        let (audit, signin) = (audit?, signin?);
        let mut streams = Vec::new();
        for reply in [&audit, &signin] {
            let reports = reply
                .reports()
                .with_context(|| format!("round {round}: no reports\n{}", serve.logs()))?;
            for report in reports {
                let stream = report["job"].as_str().unwrap_or("").to_owned();
                let before_text = report["checkpoint_before"].as_str().map(str::to_owned);
                let after_text = report["checkpoint_after"].as_str().map(str::to_owned);
                let advanced = match (parse(before_text.as_deref()), parse(after_text.as_deref())) {
                    (None, Some(_)) => true,
                    (Some(b), Some(a)) => a > b,
                    _ => false,
                };
                let outcome = report["outcome"].as_str().unwrap_or("").to_owned();
                if outcome == "failed" {
                    bail!(
                        "round {round}: stream {stream} failed: {report}\n{}",
                        serve.logs()
                    );
                }
                streams.push(StreamRun {
                    page_size: page_size(&stream),
                    stream,
                    outcome,
                    checkpoint_before: before_text,
                    checkpoint_after: after_text,
                    advanced,
                    made_progress: report["made_progress"].as_bool().unwrap_or(false),
                    records_written: report["records_written"].as_u64().unwrap_or(0),
                    requests: report["requests"].as_u64().unwrap_or(0),
                    pages: report["pages"].as_u64().unwrap_or(0),
                    throttled: report["throttled"].as_u64().unwrap_or(0),
                    duration_s: report["duration_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
                });
            }
        }
        let records_written: u64 = streams.iter().map(|s| s.records_written).sum();
        let backfill_written: u64 = streams
            .iter()
            .filter(|s| s.stream == BACKFILL_STREAM)
            .map(|s| s.records_written)
            .sum();
        let small_records: u64 = records_written - backfill_written;
        let small_requests: u64 = streams
            .iter()
            .filter(|s| s.stream != BACKFILL_STREAM)
            .map(|s| s.records_written.div_ceil(s.page_size).max(1))
            .sum();
        let budget_requests = wall_s * f64::from(BUDGET) / 10.0;
        let bound_records = small_records as f64
            + (budget_requests - small_requests as f64).max(0.0) * PAGE_SIZE as f64;
        let requests = after.list_requests - before.list_requests;
        let throttled = after.throttled - before.throttled;
        let r = Round {
            round,
            wall_s,
            status: [audit.status, signin.status],
            records_written,
            backfill_written,
            requests,
            throttled,
            pages_served: after.pages_served - before.pages_served,
            records_served: after.records_served - before.records_served,
            budget_requests,
            small_requests,
            bound_records,
            ratio: records_written as f64 / bound_records,
            raw_ratio: records_written as f64 / wall_s / raw_bound(),
            request_utilisation: (requests - throttled) as f64 / budget_requests,
            streams,
        };
        let advanced = r.streams.iter().filter(|s| s.advanced).count();
        eprintln!(
            "  streams: round {round}: {:.1} s, {} records ({} backfill), {:.0} records/s, {:.1}% of the bound ({:.1}% of 500/s), {} requests, {} 429s, checkpoints advanced {advanced}/{}{}",
            wall_s,
            r.records_written,
            r.backfill_written,
            r.records_written as f64 / wall_s,
            r.ratio * 100.0,
            r.raw_ratio * 100.0,
            r.requests,
            r.throttled,
            r.streams.len(),
            r.streams
                .iter()
                .filter(|s| !s.advanced)
                .map(|s| format!(" [{} not advanced]", s.stream))
                .collect::<String>()
        );
        rounds.push(r);
    }
    let cpu = cpu_before.delta(&super::procfs::CpuSnapshot::take(
        serve.pid(),
        common.azurite,
    ));
    super::delete_containers(&stack).await?;
    Ok((rounds, cpu.service))
}

/// 500 records/s: a full page of 1,000 per request interval of 2 s.
pub fn raw_bound() -> f64 {
    PAGE_SIZE as f64 * f64::from(BUDGET) / 10.0
}

/// The summary of the rounds.
pub fn summarise(
    machine: Machine,
    quick: bool,
    command: String,
    params: Params,
    rounds: Vec<Round>,
    service_cpu_s: f64,
) -> StreamResults {
    let steady: Vec<&Round> = rounds.iter().skip(1).collect();
    let steady = if steady.is_empty() {
        rounds.iter().collect()
    } else {
        steady
    };
    let records: u64 = steady.iter().map(|r| r.records_written).sum();
    let bound: f64 = steady.iter().map(|r| r.bound_records).sum();
    let wall: f64 = steady.iter().map(|r| r.wall_s).sum();
    StreamResults {
        machine,
        quick,
        command,
        steady_rounds: steady.iter().map(|r| r.round).collect(),
        steady_ratio: records as f64 / bound,
        steady_raw_ratio: records as f64 / wall / raw_bound(),
        steady_records_per_s: records as f64 / wall,
        every_checkpoint_advanced: rounds.iter().all(|r| r.streams.iter().all(|s| s.advanced)),
        service_cpu_s,
        params,
        rounds,
    }
}

/// `docs/bench/streams.md`.
pub fn markdown(results: &StreamResults) -> String {
    let p = &results.params;
    let m = &results.machine;
    let mut out = String::new();
    out.push_str("# Scenario 6: every stream at once (issue 14)\n\n");
    if results.quick {
        out.push_str("**Quick run (`--quick`): smaller than the published scenario.**\n\n");
    }
    out.push_str(&format!(
        "`{}` on {} ({} cores, {:.1} GiB), commit {}, {}, started {} ({:.1} min; load {:.2} → {:.2}).\n\n",
        results.command,
        m.cpu,
        m.cores,
        m.memory_gib,
        m.commit,
        m.rustc,
        m.started_at,
        m.seconds / 60.0,
        m.load_at_start,
        m.load_at_end
    ));
    out.push_str(&format!(
        "All eight streams, Graph's throttle ({BUDGET} requests per 10 s), page latency {:.0} s, \
         `RUN_TIME_BUDGET={}s`, both timers fired together each round, {} rounds back to back. \
         Tenant: {} h of history (`INITIAL_LOOKBACK={}h`) and live arrivals; per hour: \
         non-interactive {} (the backfill: {} records), interactive {}, service principal {}, \
         managed identity {}, directory audits {}, provisioning {}, risk detections {}, \
         service-principal risk detections {}.\n\n",
        p.page_latency_s,
        p.run_budget_s,
        p.rounds,
        p.history_hours,
        p.history_hours,
        p.noninteractive_per_hour,
        p.backfill_records(),
        p.signin_per_hour,
        p.service_principal_per_hour,
        p.managed_identity_per_hour,
        p.audit_per_hour,
        p.provisioning_per_hour,
        p.risk_detections_per_hour,
        p.sp_risk_detections_per_hour
    ));
    out.push_str(&format!(
        "**Steady rounds {:?}: {:.0} records/s, {:.1} % of the bound** (page-size adjusted; \
         {:.1} % of the raw 500 records/s). Every stream's checkpoint advanced in every round: \
         **{}**. Service CPU {:.1} s.\n\n",
        results.steady_rounds,
        results.steady_records_per_s,
        results.steady_ratio * 100.0,
        results.steady_raw_ratio * 100.0,
        if results.every_checkpoint_advanced {
            "yes"
        } else {
            "no"
        },
        results.service_cpu_s
    ));
    out.push_str("## Throughput per round\n\n");
    out.push_str("| round | wall s | records | backfill | records/s | requests | 429s | budget requests | small-stream requests | bound records | % of bound | % of 500/s | accepted ÷ budget |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &results.rounds {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {:.0} | {} | {} | {:.1} | {} | {:.0} | {:.1} | {:.1} | {:.2} |\n",
            r.round,
            r.wall_s,
            r.records_written,
            r.backfill_written,
            r.records_written as f64 / r.wall_s,
            r.requests,
            r.throttled,
            r.budget_requests,
            r.small_requests,
            r.bound_records,
            r.ratio * 100.0,
            r.raw_ratio * 100.0,
            r.request_utilisation
        ));
    }
    out.push_str("\n## Checkpoint advances per stream per round\n\n");
    out.push_str("Each cell: advanced (✓ / ✗), records written, requests.\n\n");
    let names: Vec<String> = results
        .rounds
        .first()
        .map(|r| r.streams.iter().map(|s| s.stream.clone()).collect())
        .unwrap_or_default();
    out.push_str("| stream |");
    for r in &results.rounds {
        out.push_str(&format!(" round {} |", r.round));
    }
    out.push_str(" advanced every round |\n|---|");
    for _ in &results.rounds {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for name in &names {
        out.push_str(&format!("| `{name}` |"));
        let mut all = true;
        for r in &results.rounds {
            match r.streams.iter().find(|s| &s.stream == name) {
                Some(s) => {
                    all &= s.advanced;
                    out.push_str(&format!(
                        " {} {} / {} |",
                        if s.advanced { "✓" } else { "✗" },
                        s.records_written,
                        s.requests
                    ));
                }
                None => {
                    all = false;
                    out.push_str(" – |");
                }
            }
        }
        out.push_str(if all { " yes |\n" } else { " **no** |\n" });
    }
    out.push_str(
        "\nThe bound of a round of `T` s: `0.5 T` requests; each stream but the backfill needs \
         `max(1, ⌈records ÷ page size⌉)` of them (page size 1,000, risk detections 500); every \
         other request could carry a full page of 1,000 backfill records.\n",
    );
    out
}
