//! The results: a JSON file, a Markdown table file and the SVG plot of records/s against page
//! latency (hand-written SVG, no plotting dependency).

use std::fmt::Write as _;

use serde::Serialize;

use super::resources;
use super::startup::Startup;
use super::throttle::{self, Strategy};

/// Where and when the benchmarks ran.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Online cores.
    pub cores: usize,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `git describe --always --dirty`.
    pub commit: String,
    /// 1-minute load average when the benchmarks started.
    pub load_at_start: f64,
    /// ... and when they ended.
    pub load_at_end: f64,
    /// UTC start.
    pub started_at: String,
    /// Wall time of the whole benchmark, seconds.
    pub seconds: f64,
}

/// Every result of one invocation of `bench`.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// `--quick`.
    pub quick: bool,
    /// The command line.
    pub command: String,
    /// Extra service environment (`--service-env`), empty for the published figures.
    pub service_env: Vec<(String, String)>,
    /// Scenario 1.
    pub throttle: Option<(throttle::Params, Vec<throttle::Run>)>,
    /// Scenario 2.
    pub resources: Option<Vec<resources::Run>>,
    /// Scenario 3.
    pub startup: Option<Startup>,
    /// Scenario 4 (`cargo bench --bench graph_client` with `BENCH_JSON`).
    pub client: Option<serde_json::Value>,
}

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub(super) fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

/// Summary of the runs of one strategy at one latency.
pub struct Point {
    /// Latency, intervals.
    pub latency: f64,
    /// Median records/s.
    pub rate: f64,
    /// Lowest and highest.
    pub range: (f64, f64),
    /// Median ratio to the bound.
    pub ratio: f64,
    /// 429s, summed over the runs.
    pub throttled: u64,
    /// Runs.
    pub runs: usize,
    /// Whether every run was counted over its steady part.
    pub steady: bool,
}

/// The progress-line note for CPU that other processes used during a run, when it matters.
pub fn other_load(cores: f64) -> String {
    if cores > 0.2 {
        format!(" (other load {cores:.2} cores)")
    } else {
        String::new()
    }
}

/// The points of a strategy, in latency order.
pub fn points(runs: &[throttle::Run], strategy: Strategy, latencies: &[f64]) -> Vec<Point> {
    latencies
        .iter()
        .filter_map(|&latency| {
            let these: Vec<&throttle::Run> = runs
                .iter()
                .filter(|r| r.strategy == strategy && r.latency_intervals == latency)
                .collect();
            if these.is_empty() {
                return None;
            }
            let rates: Vec<f64> = these.iter().map(|r| r.records_per_s).collect();
            Some(Point {
                latency,
                rate: median(rates.clone()),
                range: min_max(&rates),
                ratio: median(these.iter().map(|r| r.ratio).collect()),
                throttled: these.iter().map(|r| r.throttled).sum(),
                runs: these.len(),
                steady: these.iter().all(|r| r.steady),
            })
        })
        .collect()
}

pub(super) fn fmt_int(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

pub(super) fn pct(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

/// The machine and when the benchmark ran, as a table.
pub(super) fn machine_table(md: &mut String, m: &Machine) {
    let _ = writeln!(md, "| machine | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} ({} cores) |", m.cpu, m.cores);
    let _ = writeln!(md, "| memory | {:.0} GiB |", m.memory_gib);
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(md, "| started | {} |", m.started_at);
    let _ = writeln!(
        md,
        "| wall time | {:.1} min |\n| load average (1 min) at start / end | {:.2} / {:.2} |\n",
        m.seconds / 60.0,
        m.load_at_start,
        m.load_at_end
    );
}

/// `docs/bench/results.md`.
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let m = &results.machine;
    let _ = writeln!(md, "# Benchmark results\n");
    let _ = writeln!(
        md,
        "Generated by `{}` ({} mode); see `docs/BENCHMARKS.md` for the method. Raw figures: `results.json`.\n",
        results.command,
        if results.quick { "quick" } else { "full" }
    );
    if !results.service_env.is_empty() {
        let _ = writeln!(
            md,
            "**Experiment:** extra service environment {:?}; not the default configuration.\n",
            results.service_env
        );
    }
    machine_table(&mut md, m);

    if let Some((params, runs)) = &results.throttle {
        throttle_section(&mut md, params, runs);
    }
    if let Some(runs) = &results.resources {
        resources_section(&mut md, runs);
    }
    if let Some(startup) = &results.startup {
        let _ = writeln!(md, "## 3. Start-up\n");
        let _ = writeln!(
            md,
            "Process start to the first answered `GET /`, {} runs, polling every {} ms (the host polls every 25 ms, which rounds up to its next poll).\n",
            startup.runs, startup.poll_ms
        );
        let _ = writeln!(
            md,
            "| median | p95 | max | host-like polling (25 ms): median / p95 | binary size (release, stripped) |\n|---|---|---|---|---|"
        );
        let _ = writeln!(
            md,
            "| {:.1} ms | {:.1} ms | {:.1} ms | {:.1} / {:.1} ms | {} bytes ({:.1} MiB){} |\n",
            startup.median_ms,
            startup.p95_ms,
            startup.max_ms,
            startup.host_median_ms,
            startup.host_p95_ms,
            fmt_int(startup.binary_bytes as f64),
            startup.binary_bytes as f64 / (1024.0 * 1024.0),
            if startup.has_symbol_table {
                ", **not stripped**"
            } else {
                ""
            }
        );
    }
    if let Some(client) = &results.client {
        client_section(&mut md, client);
    }
    targets_section(&mut md, results);
    md
}

fn throttle_section(md: &mut String, params: &throttle::Params, runs: &[throttle::Run]) {
    let _ = writeln!(md, "## 1. Throttle-bound backfill of sign-ins\n");
    let _ = writeln!(
        md,
        "Budget {} requests per 10 s on the simulator and in `GRAPH_MAX_REQUESTS_PER_10S` (Graph's 5 scaled ×{}, latency scaled down by the same factor): one request interval = {:.0} ms, bound = {} records/s with 1000-record pages. \
         `SLICE_WIDTH=1m` with about {} sign-ins a minute (≈5 pages a slice); {} minutes backfilled ({} for the serial strategy at ≥ 2 intervals). \
         Records/s counted over the steady part (page {} to page {}+m·{}, see BENCHMARKS.md); median of {} runs for the parallel strategies, min–max in brackets.\n",
        params.budget,
        params.budget / 5,
        params.interval().as_secs_f64() * 1000.0,
        fmt_int(params.bound()),
        fmt_int(f64::from(throttle::RECORDS_PER_SLICE)),
        params.long_minutes,
        params.short_minutes,
        params.budget,
        params.budget,
        params.budget,
        params.repeats
    );
    let mut header = String::from("| page latency (intervals) | latency | bound |");
    let mut rule = String::from("|---|---|---|");
    for strategy in &params.strategies {
        let _ = write!(
            header,
            " {} records/s | ratio | 429s |",
            strategy.label(params.budget)
        );
        rule.push_str("---|---|---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    let columns: Vec<Vec<Point>> = params
        .strategies
        .iter()
        .map(|s| points(runs, *s, &params.latencies))
        .collect();
    for (i, &latency) in params.latencies.iter().enumerate() {
        let mut row = format!(
            "| {latency} | {:.0} ms | {} |",
            params.interval().as_secs_f64() * 1000.0 * latency,
            fmt_int(params.bound())
        );
        for column in &columns {
            match column.get(i) {
                Some(p) => {
                    let range = if p.runs > 1 {
                        format!(" ({}–{})", fmt_int(p.range.0), fmt_int(p.range.1))
                    } else {
                        String::new()
                    };
                    let flag = if p.steady { "" } else { "¹" };
                    let _ = write!(
                        row,
                        " {}{range}{flag} | {} | {} |",
                        fmt_int(p.rate),
                        pct(p.ratio),
                        p.throttled
                    );
                }
                None => row.push_str(" – | – | – |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(
        md,
        "\n¹ Too short for the steady window (far below the bound, so no burst to discount): counted from the first page to the last.\n"
    );
    let _ = writeln!(md, "![records/s against page latency](throughput.svg)\n");
    let _ = writeln!(md, "<details><summary>Every run</summary>\n");
    let _ = writeln!(
        md,
        "| strategy | latency (intervals) | run | slices | pages | records/page | requests | 429s (sim / report) | max requests in 10 s | counted pages | counted s | records/s | whole-run records/s | duration s | service CPU s | other load (cores) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} / {} | {} | {}–{} | {:.2} | {} | {} | {:.1} | {:.2} | {:.2} |",
            r.strategy.setting(),
            r.latency_intervals,
            r.repeat + 1,
            r.slices,
            r.pages,
            r.records_per_page,
            r.requests,
            r.throttled,
            r.report_throttled,
            r.max_requests_in_any_10s,
            r.window_from_page,
            r.window_to_page,
            r.window_seconds,
            fmt_int(r.records_per_s),
            fmt_int(r.whole_run_records_per_s),
            r.duration_s,
            r.service_cpu_s,
            r.foreign_cores
        );
    }
    let _ = writeln!(md, "\n</details>\n");
}

/// Medians of the runs of one size and output.
pub struct ResourceRow {
    /// Output.
    pub output: resources::Output,
    /// Records.
    pub size: u32,
    /// Runs.
    pub runs: usize,
    /// Medians.
    pub records_per_s: f64,
    /// CPU seconds.
    pub cpu_s: f64,
    /// CPU seconds per million.
    pub cpu_per_million: f64,
    /// Lowest and highest CPU seconds per million.
    pub cpu_per_million_range: (f64, f64),
    /// System share of the CPU seconds.
    pub system_share: f64,
    /// Peak RSS MiB (median).
    pub peak_rss: f64,
    /// Peak RSS MiB (max).
    pub peak_rss_max: f64,
    /// Idle RSS.
    pub idle_rss: f64,
    /// Simulator CPU.
    pub simulator_cpu: f64,
    /// Azurite CPU.
    pub azurite_cpu: f64,
    /// Bytes per record stored.
    pub stored_bytes_per_record: f64,
    /// Other load.
    pub foreign: f64,
}

/// Rows in run order of (span, output, size).
pub fn resource_rows(runs: &[resources::Run]) -> Vec<(resources::Shape, ResourceRow)> {
    let mut keys: Vec<(resources::Shape, resources::Output, u32)> = Vec::new();
    for r in runs {
        if !keys.contains(&(r.shape, r.output, r.size)) {
            keys.push((r.shape, r.output, r.size));
        }
    }
    keys.into_iter()
        .map(|(shape, output, size)| {
            let these: Vec<&resources::Run> = runs
                .iter()
                .filter(|r| r.shape == shape && r.output == output && r.size == size)
                .collect();
            let med =
                |f: &dyn Fn(&resources::Run) -> f64| median(these.iter().map(|r| f(r)).collect());
            let row = ResourceRow {
                output,
                size,
                runs: these.len(),
                records_per_s: med(&|r| r.records_per_s),
                cpu_s: med(&|r| r.service_cpu_s),
                cpu_per_million: med(&|r| r.cpu_s_per_million),
                cpu_per_million_range: min_max(
                    &these
                        .iter()
                        .map(|r| r.cpu_s_per_million)
                        .collect::<Vec<_>>(),
                ),
                system_share: med(&|r| r.service_system_s / r.service_cpu_s.max(1e-9)),
                peak_rss: med(&|r| r.peak_rss_mib),
                peak_rss_max: these.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max),
                idle_rss: med(&|r| r.idle_rss_mib),
                simulator_cpu: med(&|r| r.simulator_cpu_s),
                azurite_cpu: med(&|r| r.azurite_cpu_s),
                stored_bytes_per_record: med(&|r| {
                    r.bytes_uploaded as f64 / r.records_written.max(1) as f64
                }),
                foreign: med(&|r| r.foreign_cores),
            };
            (shape, row)
        })
        .collect()
}

fn resources_section(md: &mut String, runs: &[resources::Run]) {
    let _ = writeln!(md, "## 2. CPU and memory\n");
    let _ = writeln!(
        md,
        "A backfill of N sign-ins with no latency and no throttle (`GRAPH_MAX_REQUESTS_PER_10S=1000`, so `PARALLEL_SLICES=auto` = 10), default `GRAPH_PAGE_BUFFER` (4 MiB: one 1.3 MB page and its blob at a time), `SLICE_WIDTH=1h`, `REPLAY_WINDOW=0s`, `QUERY_LAG=0s`, `RUN_TIME_BUDGET=2h`; a fresh release `entra-export serve` per run and one `SignInTimer` invocation; the containers are deleted after each run. \
         Two spans: **26 days** (the first backfill; 1.6 records a slice per 1000 records) and **25 hours** (dense: 40 pages a slice at 1M). \
         CPU = the service process's user+system seconds (`/proc/<pid>/stat`, 10 ms ticks) over the invocation (the share in the kernel in brackets); peak RSS = `VmHWM` after it. The simulator (in the bench process) and Azurite share the 2 cores; their CPU is beside. Medians of the runs, min–max in brackets.\n"
    );
    let _ = writeln!(
        md,
        "| span | output | records | runs | records/s | service CPU s (kernel) | CPU s per million (min–max) | peak RSS (max) | RSS before the run | stored bytes/record | simulator CPU s | Azurite CPU s | other load (cores) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (shape, row) in resource_rows(runs) {
        let _ = writeln!(
            md,
            "| {} | {} {} | {} | {} | {} | {:.2} ({:.0}%) | **{:.2}** ({:.2}–{:.2}) | **{:.1} MiB** ({:.1}) | {:.1} MiB | {:.0} | {:.1} | {:.1} | {:.2} |",
            shape.name(),
            row.output.format,
            row.output.compression,
            fmt_int(f64::from(row.size)),
            row.runs,
            fmt_int(row.records_per_s),
            row.cpu_s,
            row.system_share * 100.0,
            row.cpu_per_million,
            row.cpu_per_million_range.0,
            row.cpu_per_million_range.1,
            row.peak_rss,
            row.peak_rss_max,
            row.idle_rss,
            row.stored_bytes_per_record,
            row.simulator_cpu,
            row.azurite_cpu,
            row.foreign
        );
    }
    let _ = writeln!(md);
}

fn client_section(md: &mut String, client: &serde_json::Value) {
    let _ = writeln!(md, "## 4. The Graph client alone\n");
    let _ = writeln!(
        md,
        "`cargo bench --bench graph_client` (`benches/graph_client.rs`): `client::parse_page` on a {} KiB 1000-record sign-in page, one core, median of {} rounds of {} pages; and streaming a window from the simulator (no latency, no throttle; client on one core, simulator on another thread).\n",
        client["parse_page"]["page_bytes"].as_f64().unwrap_or(0.0) as u64 / 1024,
        client["parse_page"]["rounds"],
        client["parse_page"]["pages_per_round"]
    );
    let _ = writeln!(
        md,
        "| parse_page records/s (min–max) | per page | MiB/s | streamed from the simulator, records/s | streamed RSS every 10 pages (KiB) |\n|---|---|---|---|---|"
    );
    let p = &client["parse_page"];
    let s = &client["stream"];
    let rss = s["rss_kib_every_10_pages"]
        .as_array()
        .map(|v| {
            let first = v.first().and_then(|x| x.as_u64()).unwrap_or(0);
            let last = v.last().and_then(|x| x.as_u64()).unwrap_or(0);
            let max = v.iter().filter_map(|x| x.as_u64()).max().unwrap_or(0);
            format!("first {first}, last {last}, max {max}")
        })
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "| **{}** ({}–{}) | {:.0} µs | {:.0} | {} ({} records) | {} |\n",
        fmt_int(p["records_per_s_median"].as_f64().unwrap_or(f64::NAN)),
        fmt_int(p["records_per_s_min"].as_f64().unwrap_or(f64::NAN)),
        fmt_int(p["records_per_s_max"].as_f64().unwrap_or(f64::NAN)),
        p["us_per_page"].as_f64().unwrap_or(f64::NAN),
        p["mib_per_s"].as_f64().unwrap_or(f64::NAN),
        fmt_int(s["records_per_s"].as_f64().unwrap_or(f64::NAN)),
        fmt_int(s["records"].as_f64().unwrap_or(f64::NAN)),
        rss
    );
}

pub(super) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn targets_section(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | verdict |\n|---|---|---|");
    if let Some((params, runs)) = &results.throttle {
        for strategy in params.strategies.iter().filter(|s| **s != Strategy::Serial) {
            let pts = points(runs, *strategy, &params.latencies);
            let upto4: Vec<&Point> = pts.iter().filter(|p| p.latency <= 4.0).collect();
            if upto4.is_empty() {
                continue;
            }
            let worst = upto4
                .iter()
                .map(|p| p.range.0 / params.bound())
                .fold(f64::INFINITY, f64::min);
            let throttled: u64 = pts.iter().map(|p| p.throttled).sum();
            let _ = writeln!(
                md,
                "| ≥ 90% of the bound up to 4 intervals, zero 429s ({}) | lowest run {} of the bound; {} 429s | {} |",
                strategy.label(params.budget),
                pct(worst),
                throttled,
                verdict(worst >= 0.9 && throttled == 0)
            );
        }
    }
    if let Some(runs) = &results.resources {
        let rows = resource_rows(runs);
        let largest = rows.iter().map(|(_, r)| r.size).max().unwrap_or(0);
        for (shape, row) in rows
            .iter()
            .filter(|(_, r)| r.size == largest && r.output.compression == "none")
        {
            let _ = writeln!(
                md,
                "| ≤ 5 CPU-s per million sign-ins without compression ({}, {}, {} records) | median {:.2} (runs {:.2}–{:.2}) | {} |",
                shape.name(),
                row.output.format,
                fmt_int(f64::from(row.size)),
                row.cpu_per_million,
                row.cpu_per_million_range.0,
                row.cpu_per_million_range.1,
                verdict(row.cpu_per_million <= 5.0)
            );
        }
        let mut groups: Vec<(resources::Shape, resources::Output)> = Vec::new();
        for (shape, r) in &rows {
            if !groups.contains(&(*shape, r.output)) {
                groups.push((*shape, r.output));
            }
        }
        for (shape, output) in groups {
            let these: Vec<&ResourceRow> = rows
                .iter()
                .filter(|(s, r)| *s == shape && r.output == output)
                .map(|(_, r)| r)
                .collect();
            let (Some(small), Some(big)) = (
                these.iter().min_by_key(|r| r.size),
                these.iter().max_by_key(|r| r.size),
            ) else {
                continue;
            };
            let peak = these.iter().map(|r| r.peak_rss_max).fold(0.0, f64::max);
            let growth = big.peak_rss / small.peak_rss - 1.0;
            let _ = writeln!(
                md,
                "| peak RSS under 64 MB and flat within 20% from {} to {} records ({}, {} {}) | {:.1} → {:.1} MiB ({:+.0}%), highest run {:.1} MiB = {:.1} MB | {} |",
                fmt_int(f64::from(small.size)),
                fmt_int(f64::from(big.size)),
                shape.name(),
                output.format,
                output.compression,
                small.peak_rss,
                big.peak_rss,
                growth * 100.0,
                peak,
                peak * 1.048_576,
                verdict(peak * 1.048_576 < 64.0 && growth.abs() <= 0.2)
            );
        }
    }
    if let Some(startup) = &results.startup {
        let _ = writeln!(
            md,
            "| start-up under 50 ms to the first answered `GET /` | median {:.1} ms, p95 {:.1} ms | {} |",
            startup.median_ms,
            startup.p95_ms,
            verdict(startup.p95_ms < 50.0)
        );
    }
    let _ = writeln!(md);
}

/// `docs/bench/throughput.svg`: records/s against page latency (log₂ axis), the bound, 90% of
/// it, and one line per strategy; the legend goes under the plot, in two columns.
pub fn svg(params: &throttle::Params, runs: &[throttle::Run]) -> String {
    let legend_rows = (2 + params.strategies.len()).div_ceil(2);
    let (left, right, top, plot_h) = (80.0, 30.0, 78.0, 300.0);
    // x tick labels and the axis title, then the legend rows.
    let axis_below = 64.0;
    let legend_row_h = 34.0;
    let width = 760.0;
    let height = top + plot_h + axis_below + legend_row_h * legend_rows as f64 + 8.0;
    let plot_w = width - left - right;
    let bound = params.bound();
    let y_max = (bound * 1.1 / 1000.0).ceil() * 1000.0;
    let x_min = params
        .latencies
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log2();
    let x_max = params
        .latencies
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .log2();
    let x_span = (x_max - x_min).max(1.0);
    let x = |latency: f64| left + (latency.log2() - x_min) / x_span * plot_w;
    let y = |rate: f64| top + plot_h - rate / y_max * plot_h;
    let interval_ms = params.interval().as_secs_f64() * 1000.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Sign-in backfill: records/s against page latency (budget {} requests per 10 s)</text>"#,
        width / 2.0,
        params.budget
    );
    for (i, line) in scaling_note(params).iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
            width / 2.0,
            42.0 + 15.0 * i as f64,
            escape(line)
        );
    }
    // Grid and axes.
    let steps = 5;
    for i in 0..=steps {
        let v = y_max / f64::from(steps) * f64::from(i);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            fmt_int(v)
        );
    }
    for &latency in &params.latencies {
        let xx = x(latency);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#e5e5e5"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{latency}</text><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#666" font-size="10">{:.0} ms</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            top + plot_h + 29.0,
            interval_ms * latency
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">page latency in request intervals (log scale); one interval is {:.0} ms here</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 50.0,
        interval_ms
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">records/s</text>"#,
        top + plot_h / 2.0
    );
    // Bound and target.
    let (x0, x1) = (left, left + plot_w);
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{:.1}" x2="{x1}" y2="{:.1}" stroke="#000" stroke-width="2"/>"##,
        y(bound),
        y(bound)
    );
    let _ = writeln!(
        s,
        r##"<line x1="{x0}" y1="{:.1}" x2="{x1}" y2="{:.1}" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>"##,
        y(bound * 0.9),
        y(bound * 0.9)
    );
    let colours = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd"];
    let mut legend: Vec<(String, String, bool)> = vec![
        (
            format!(
                "bound, {} records/s here ({} at Graph's budget)",
                fmt_int(bound),
                fmt_int(bound * f64::from(GRAPH_BUDGET) / f64::from(params.budget))
            ),
            "#000".into(),
            false,
        ),
        ("90% of the bound (target)".into(), "#888".into(), true),
    ];
    for (i, strategy) in params.strategies.iter().enumerate() {
        let colour = if *strategy == Strategy::Serial {
            colours[2]
        } else {
            colours[i % colours.len()]
        };
        let pts = points(runs, *strategy, &params.latencies);
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.latency), y(p.rate)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{} at {} intervals: {} records/s ({})</title></circle>"#,
                x(p.latency),
                y(p.rate),
                strategy.label(params.budget),
                p.latency,
                fmt_int(p.rate),
                pct(p.ratio)
            );
        }
        legend.push((strategy.label(params.budget), colour.into(), false));
    }
    // The legend under the axis title: reference lines in the first row, strategies after.
    let column_w = plot_w / 2.0;
    for (i, (label, colour, dashed)) in legend.iter().enumerate() {
        let ly = top + plot_h + axis_below + 12.0 + legend_row_h * (i / 2) as f64;
        let lx = left + column_w * (i % 2) as f64;
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            lx + 22.0
        );
        // Wrap long labels at the comma.
        let (first, second) = match label.split_once(", ") {
            Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
            None => (label.clone(), None),
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 28.0,
            ly + 4.0,
            escape(&first)
        );
        if let Some(second) = second {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="10">{}</text>"#,
                lx + 28.0,
                ly + 17.0,
                escape(&second)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Graph's throttle budget, requests per 10 s per tenant.
pub(super) const GRAPH_BUDGET: u32 = 5;

/// The plot's subtitle: how the budget and the latencies relate to Graph's.
fn scaling_note(params: &throttle::Params) -> Vec<String> {
    let scale = params.budget / GRAPH_BUDGET;
    let real_interval_s = 10.0 / f64::from(GRAPH_BUDGET);
    if scale <= 1 {
        return vec![format!(
            "Graph's own budget: one request interval is {real_interval_s:.0} s."
        )];
    }
    vec![
        format!(
            "Scaled to keep the benchmark short: budget ×{scale} (Graph allows {GRAPH_BUDGET} per 10 s), page latencies ÷{scale}."
        ),
        format!(
            "What matters is their ratio, the latency in request intervals: 1 interval is {:.0} ms here, {real_interval_s:.0} s at Graph.",
            params.interval().as_secs_f64() * 1000.0
        ),
    ]
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
