//! The benchmark harness: `scripts/bench.sh` builds the release binaries, starts Azurite and runs
//! this; it writes `results.md`, `results.json` and `throughput.svg` (scenarios 1 to 4) and
//! `layouts.md`, `layouts.json` and `layouts.svg` (scenario 5), by default in `docs/bench/`.
//! Only the files of the scenarios that ran are written.
//!
//! ```text
//! bench [--quick] [--out DIR] [--only throttle,resources,startup,client,layouts,streams]
//!       [--client-results FILE] [--repeats N] [--budget N]
//!       [--sizes 10000,100000] [--outputs graph-page/none,ndjson/gzip]
//!       [--shapes backfill,dense] [--layouts sparse,medium,dense]
//!       [--case LAYOUT:BUDGET:LATENCY:STRATEGY[:REPEATS]]...
//!       [--profile DIR] [--service-env NAME=VALUE]...
//! bench --render-only RESULTS.json|LAYOUTS.json [--out DIR]
//! ```
//!
//! `--render-only` measures nothing: it redraws `throughput.svg` from the throttle runs of a
//! `results.json`, or `layouts.svg` and `layouts.md` from a `layouts.json`, in `--out` (after a
//! change to the plot's or the table's layout).
//!
//! `--sizes`, `--outputs` and `--shapes` narrow scenario 2 (the dense shape runs with the first
//! output only); `--profile DIR` records each of its runs with
//! `perf record` (CPU-clock samples with DWARF call graphs, attached to the service process for
//! the invocation) into `DIR/perf-<format>-<compression>-<size>-<run>.data`; use a build with
//! symbols for it (see `docs/BENCHMARKS.md`). `--service-env` adds a variable to the
//! service's environment in scenarios 1 and 2 (for experiments; recorded in the results).
//!
//! Scenarios (method and reading in `docs/BENCHMARKS.md`):
//! 1. `throttle`: a throttle-bound sign-in backfill at page latencies of 0.25 to 8 request
//!    intervals, the service against the serial strategy (`PARALLEL_SLICES=1`);
//! 2. `resources`: CPU seconds and peak RSS of the service process for 10k, 100k and 1M
//!    sign-ins, per output format and compression;
//! 3. `startup`: process start to the first answered `GET /`, and the binary's size;
//! 4. `client`: the figures of `cargo bench --bench graph_client` (`BENCH_JSON=FILE`), read
//!    from `--client-results`;
//! 5. `layouts`: first runs over layouts users meet (sparse, medium, dense with an empty day
//!    before the data; `--layouts` narrows them): Graph requests per 1,000 records, wall time
//!    against the throttle minimum, fraction of the bound, the service against the serial
//!    strategy. `--case dense:5:4:auto` runs one configuration instead of the set (repeatable).
//! 6. `streams` (written to `streams.md` and `streams.json`): all eight streams at Graph's
//!    throttle with a large non-interactive backfill, rounds of both timers at once; fraction
//!    of the bound per round and every stream's checkpoint advance (`--repeats N`: rounds).
//!
//! Use a release build of `entra-export` (`ENTRA_EXPORT_BIN=target/release/entra-export`, or
//! this binary's own directory when built with `--release`).

#[path = "../bench/mod.rs"]
mod bench;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use bench::layouts::Layout;
use bench::layouts_report::LayoutResults;
use bench::report::{Machine, Results};
use bench::resources::{Output, Shape};
use bench::throttle::{Params, Strategy};
use bench::{Common, layouts, layouts_report, procfs, report, resources, startup, throttle};
use testbed::{Stack, StackOptions};

/// Every scenario, in the order they run.
const SCENARIOS: [&str; 6] = [
    "throttle",
    "resources",
    "startup",
    "client",
    "layouts",
    "streams",
];

struct Args {
    quick: bool,
    out: PathBuf,
    only: Vec<String>,
    client_results: Option<PathBuf>,
    repeats: Option<usize>,
    budget: u32,
    sizes: Option<Vec<u32>>,
    outputs: Option<Vec<Output>>,
    profile: Option<PathBuf>,
    shapes: Vec<Shape>,
    layouts: Vec<Layout>,
    cases: Vec<layouts::Case>,
    service_env: Vec<(String, String)>,
    render_only: Option<PathBuf>,
}

fn parse_output(text: &str) -> anyhow::Result<Output> {
    let (format, compression) = text.split_once('/').unwrap_or((text, "none"));
    let format = match format {
        "graph-page" => "graph-page",
        "ndjson" => "ndjson",
        other => bail!("--outputs: unknown format `{other}`"),
    };
    let compression = match compression {
        "none" => "none",
        "gzip" => "gzip",
        other => bail!("--outputs: unknown compression `{other}`"),
    };
    Ok(Output {
        format,
        compression,
    })
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        quick: false,
        out: PathBuf::from("docs/bench"),
        only: SCENARIOS.map(str::to_owned).to_vec(),
        client_results: None,
        repeats: None,
        budget: 50,
        sizes: None,
        outputs: None,
        profile: None,
        shapes: vec![Shape::Backfill, Shape::Dense],
        layouts: Layout::ALL.to_vec(),
        cases: Vec::new(),
        service_env: Vec::new(),
        render_only: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--only" => {
                args.only = value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect()
            }
            "--client-results" => {
                args.client_results = Some(PathBuf::from(value("--client-results")?))
            }
            "--repeats" => args.repeats = Some(value("--repeats")?.parse()?),
            "--budget" => args.budget = value("--budget")?.parse()?,
            "--sizes" => {
                args.sizes = Some(
                    value("--sizes")?
                        .split(',')
                        .map(|s| s.trim().parse())
                        .collect::<Result<_, _>>()?,
                )
            }
            "--outputs" => {
                args.outputs = Some(
                    value("--outputs")?
                        .split(',')
                        .map(|s| parse_output(s.trim()))
                        .collect::<Result<_, _>>()?,
                )
            }
            "--profile" => args.profile = Some(PathBuf::from(value("--profile")?)),
            "--render-only" => args.render_only = Some(PathBuf::from(value("--render-only")?)),
            "--service-env" => {
                let pair = value("--service-env")?;
                let (name, value) = pair
                    .split_once('=')
                    .context("--service-env takes NAME=VALUE")?;
                args.service_env.push((name.to_owned(), value.to_owned()));
            }
            "--layouts" => {
                args.layouts = value("--layouts")?
                    .split(',')
                    .map(|s| {
                        Layout::parse(s.trim()).with_context(|| {
                            format!(
                                "--layouts: unknown layout `{}` (sparse, medium, dense)",
                                s.trim()
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "--case" => args.cases.push(layouts::Case::parse(&value("--case")?)?),
            "--shapes" => {
                args.shapes = value("--shapes")?
                    .split(',')
                    .map(|s| match s.trim() {
                        "backfill" => Ok(Shape::Backfill),
                        "dense" => Ok(Shape::Dense),
                        other => Err(anyhow::anyhow!("--shapes: unknown shape `{other}`")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "-h" | "--help" => {
                println!(
                    "bench [--quick] [--out DIR] [--only throttle,resources,startup,client,layouts,streams] [--client-results FILE] [--repeats N] [--budget N]\n      [--sizes 10000,100000] [--outputs graph-page/none,ndjson/gzip] [--shapes backfill,dense] [--layouts sparse,medium,dense]\n      [--case LAYOUT:BUDGET:LATENCY:auto|1[:REPEATS]]... [--profile DIR] [--service-env NAME=VALUE]...\nbench --render-only RESULTS.json|LAYOUTS.json [--out DIR]   redraw throughput.svg, or layouts.svg and layouts.md, from a results file, measuring nothing"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    for name in &args.only {
        if !SCENARIOS.contains(&name.as_str()) {
            bail!("--only: unknown scenario `{name}`");
        }
    }
    if args.budget < 5 || !args.budget.is_multiple_of(5) {
        bail!("--budget must be a multiple of 5 (Graph's budget is 5 per 10 s)");
    }
    Ok(args)
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine(started_at: String, load_at_start: f64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: memory_kib / (1024.0 * 1024.0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        rustc: command_output("rustc", &["-V"]),
        commit: command_output("git", &["describe", "--always", "--dirty"]),
        load_at_start,
        load_at_end: f64::NAN,
        started_at,
        seconds: 0.0,
    }
}

/// The `scripts/bench.sh` command line that runs what this invocation runs: this process's
/// arguments without the ones the script adds itself (`--out`, `--client-results`).
fn bench_sh_command() -> String {
    let mut line = String::from("scripts/bench.sh");
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--out" || arg == "--client-results" {
            iter.next();
            continue;
        }
        line.push(' ');
        line.push_str(&arg);
    }
    line
}

/// `--render-only`: `throughput.svg` from the throttle runs of a `results.json`, or
/// `layouts.svg` from a `layouts.json`.
fn render_only(results: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read(results).with_context(|| format!("reading {}", results.display()))?;
    let mut value: serde_json::Value = serde_json::from_slice(&text)?;
    if value.get("layouts").is_some() {
        let layout_results: LayoutResults = serde_json::from_value(value)
            .with_context(|| format!("{}: not a layouts result", results.display()))?;
        std::fs::create_dir_all(out)?;
        let (params, runs) = &layout_results.layouts;
        let path = out.join("layouts.svg");
        std::fs::write(&path, layouts_report::svg(params, runs))?;
        std::fs::write(
            out.join("layouts.md"),
            layouts_report::markdown(&layout_results),
        )?;
        eprintln!(
            "bench: wrote {} and layouts.md from {}",
            path.display(),
            results.display()
        );
        return Ok(());
    }
    let throttle: Option<(Params, Vec<throttle::Run>)> =
        serde_json::from_value(value["throttle"].take()).with_context(|| {
            format!("{}: `throttle` is not a throttle result", results.display())
        })?;
    let (params, runs) = throttle.with_context(|| {
        format!(
            "{} has no throttle results (scenario 1 did not run)",
            results.display()
        )
    })?;
    std::fs::create_dir_all(out)?;
    let path = out.join("throughput.svg");
    std::fs::write(&path, report::svg(&params, &runs))?;
    eprintln!("bench: wrote {} from {}", path.display(), results.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if let Some(results) = &args.render_only {
        return render_only(results, &args.out);
    }
    let wants = |name: &str| args.only.iter().any(|o| o == name);
    let began = Instant::now();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut machine = machine(started_at, procfs::load_average());
    let binary = testbed::host::binary()?;
    if !binary.to_string_lossy().contains("release") {
        eprintln!(
            "warning: measuring {} which does not look like a release build; set ENTRA_EXPORT_BIN=target/release/entra-export",
            binary.display()
        );
    }
    let repo = std::env::current_dir()?;
    let azurite = procfs::azurite_pid(&repo);
    if azurite.is_none() {
        eprintln!(
            "note: Azurite's pid file was not found under .azurite/: its CPU is not reported"
        );
    }
    eprintln!(
        "bench: {} mode, measuring {}; load average {:.2}",
        if args.quick { "quick" } else { "full" },
        binary.display(),
        machine.load_at_start
    );

    let common = Common {
        azurite,
        service_env: args.service_env.clone(),
        profile: args.profile.clone(),
    };
    if !common.service_env.is_empty() {
        eprintln!("bench: extra service environment {:?}", common.service_env);
    }
    let mut results = Results {
        machine: machine.clone(),
        quick: args.quick,
        command: format!(
            "scripts/bench.sh{}",
            if args.quick { " --quick" } else { "" }
        ),
        service_env: args.service_env.clone(),
        throttle: None,
        resources: None,
        startup: None,
        client: None,
    };

    if wants("throttle") {
        let params = if args.quick {
            Params {
                budget: args.budget,
                latencies: vec![1.0, 4.0],
                strategies: vec![Strategy::Auto, Strategy::Serial],
                long_minutes: 26,
                short_minutes: 8,
                repeats: args.repeats.unwrap_or(1),
            }
        } else {
            Params {
                budget: args.budget,
                latencies: vec![0.25, 1.0, 2.0, 4.0, 8.0],
                // `auto` is 10 slices at the scaled budget as at Graph's real one.
                strategies: vec![Strategy::Auto, Strategy::Serial],
                long_minutes: 46,
                short_minutes: 8,
                repeats: args.repeats.unwrap_or(2),
            }
        };
        eprintln!("== 1. throttle-bound backfill");
        let runs = throttle::run(&params, &common).await?;
        results.throttle = Some((params, runs));
    }
    if wants("resources") {
        eprintln!("== 2. CPU and memory");
        let (sizes, outputs, repeats, big) = if args.quick {
            (
                vec![10_000, 100_000],
                vec![
                    Output {
                        format: "graph-page",
                        compression: "none",
                    },
                    Output {
                        format: "ndjson",
                        compression: "gzip",
                    },
                ],
                args.repeats.unwrap_or(1),
                1,
            )
        } else {
            (
                vec![10_000, 100_000, 1_000_000],
                vec![
                    Output {
                        format: "graph-page",
                        compression: "none",
                    },
                    Output {
                        format: "ndjson",
                        compression: "none",
                    },
                    Output {
                        format: "graph-page",
                        compression: "gzip",
                    },
                    Output {
                        format: "ndjson",
                        compression: "gzip",
                    },
                ],
                args.repeats.unwrap_or(3),
                2,
            )
        };
        let sizes = args.sizes.clone().unwrap_or(sizes);
        let outputs = args.outputs.clone().unwrap_or(outputs);
        let mut runs = Vec::new();
        for shape in &args.shapes {
            // The dense span only with the first output (it is about buffers in flight).
            let outputs = match shape {
                Shape::Backfill => &outputs[..],
                Shape::Dense => &outputs[..1],
            };
            runs.extend(resources::run(*shape, &sizes, outputs, repeats, big, &common).await?);
        }
        results.resources = Some(runs);
    }
    if wants("startup") {
        eprintln!("== 3. start-up");
        let stack = Stack::start(StackOptions::default())
            .await?
            .context("Azurite is not reachable: start it with scripts/azurite.sh start")?;
        let (runs, host_runs) = if args.quick { (20, 5) } else { (100, 20) };
        let measured = startup::run(&stack.env(), runs, host_runs).await?;
        eprintln!(
            "  start-up: median {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} runs, 1 ms polls); host-like 25 ms polls: median {:.1} ms; binary {} bytes",
            measured.median_ms,
            measured.p95_ms,
            measured.max_ms,
            measured.runs,
            measured.host_median_ms,
            measured.binary_bytes
        );
        results.startup = Some(measured);
    }
    if wants("client")
        && let Some(path) = &args.client_results
    {
        match std::fs::read(path) {
            Ok(bytes) => results.client = Some(serde_json::from_slice(&bytes)?),
            Err(error) => eprintln!(
                "note: no Graph client results at {} ({error}): run `BENCH_JSON={} cargo bench --bench graph_client` first",
                path.display(),
                path.display()
            ),
        }
    }

    let mut stream_results = None;
    if wants("streams") {
        eprintln!("== 6. every stream at once");
        let streams_began = Instant::now();
        let params = bench::streams::Params::new(args.quick, args.repeats);
        let (rounds, service_cpu_s) = bench::streams::run(&params, &common).await?;
        let mut machine = machine.clone();
        machine.load_at_end = procfs::load_average();
        machine.seconds = streams_began.elapsed().as_secs_f64();
        stream_results = Some(bench::streams::summarise(
            machine,
            args.quick,
            bench_sh_command(),
            params,
            rounds,
            service_cpu_s,
        ));
    }

    let mut layout_results = None;
    if wants("layouts") {
        eprintln!("== 5. layouts users meet");
        let layouts_began = Instant::now();
        let params = if args.cases.is_empty() {
            layouts::Params::new(args.quick, args.repeats, &args.layouts)
        } else {
            layouts::Params {
                cases: args.cases.clone(),
            }
        };
        let runs = layouts::run(&params, &common).await?;
        let mut machine = machine.clone();
        machine.load_at_end = procfs::load_average();
        machine.seconds = layouts_began.elapsed().as_secs_f64();
        layout_results = Some(LayoutResults {
            machine,
            quick: args.quick,
            command: bench_sh_command(),
            service_env: args.service_env.clone(),
            layouts: (params, runs),
        });
    }

    machine.load_at_end = procfs::load_average();
    machine.seconds = began.elapsed().as_secs_f64();
    results.machine = machine;
    std::fs::create_dir_all(&args.out)?;
    if SCENARIOS[..4].iter().any(|s| wants(s)) {
        std::fs::write(
            args.out.join("results.json"),
            serde_json::to_vec_pretty(&results)?,
        )?;
        std::fs::write(args.out.join("results.md"), report::markdown(&results))?;
        if let Some((params, runs)) = &results.throttle {
            std::fs::write(args.out.join("throughput.svg"), report::svg(params, runs))?;
        }
    }
    if let Some(layout_results) = &layout_results {
        std::fs::write(
            args.out.join("layouts.json"),
            serde_json::to_vec_pretty(layout_results)?,
        )?;
        std::fs::write(
            args.out.join("layouts.md"),
            layouts_report::markdown(layout_results),
        )?;
        let (params, runs) = &layout_results.layouts;
        std::fs::write(
            args.out.join("layouts.svg"),
            layouts_report::svg(params, runs),
        )?;
    }
    if let Some(stream_results) = &stream_results {
        std::fs::write(
            args.out.join("streams.json"),
            serde_json::to_vec_pretty(stream_results)?,
        )?;
        std::fs::write(
            args.out.join("streams.md"),
            bench::streams::markdown(stream_results),
        )?;
    }
    eprintln!(
        "bench: done in {:.1} min; wrote {}",
        results.machine.seconds / 60.0,
        args.out.display()
    );
    Ok(())
}
