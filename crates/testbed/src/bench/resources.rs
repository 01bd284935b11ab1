//! Scenario 2: CPU and memory of a backfill with no latency and no throttle.
//!
//! `N` sign-ins spread uniformly over a span (`SLICE_WIDTH=1h`, 10 slices at once), written by
//! a fresh `entra-export serve` process through one `SignInTimer` invocation. Two spans: the
//! first backfill of a tenant (625 h, about 26 days: 1 to 2 pages a slice at 1M) and a dense one
//! (25 h: 40 pages a slice at 1M, every slice in flight holds full pages). The
//! process's own CPU seconds (user + system from `/proc/<pid>/stat`, all threads) are read
//! before and after the invocation; peak RSS is `VmHWM` of `/proc/<pid>/status` after it (the
//! process served nothing else). The simulator runs in the bench process and Azurite in its
//! own; their CPU is reported beside, as they share the machine's cores with the service.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use graph_sim::SimConfig;
use serde::Serialize;
use testbed::{Serve, Stack, StackOptions, timer_payload};

use super::Common;
use super::procfs::{CpuSnapshot, status_kib};

/// How the records are spread in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Shape {
    /// 625 hours (26 days), the first backfill (`INITIAL_LOOKBACK=30d`).
    Backfill,
    /// 25 hours.
    Dense,
}

impl Shape {
    /// Hours of records (sizes divide by it exactly).
    pub fn hours(self) -> u32 {
        match self {
            Shape::Backfill => 625,
            Shape::Dense => 25,
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Backfill => "26 days",
            Shape::Dense => "25 hours",
        }
    }
}

/// One output configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Output {
    /// `OUTPUT_FORMAT`.
    pub format: &'static str,
    /// `OUTPUT_COMPRESSION`.
    pub compression: &'static str,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The span of the records.
    pub shape: Shape,
    /// The output configuration.
    pub output: Output,
    /// Records generated.
    pub size: u32,
    /// Which repetition.
    pub repeat: usize,
    /// Records written (run report).
    pub records_written: u64,
    /// Blobs written.
    pub blobs: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Run duration (report), seconds.
    pub duration_s: f64,
    /// Records written per second of the run.
    pub records_per_s: f64,
    /// Service CPU seconds during the invocation.
    pub service_cpu_s: f64,
    /// Of which system (kernel) seconds.
    pub service_system_s: f64,
    /// Service CPU seconds per million records.
    pub cpu_s_per_million: f64,
    /// `VmHWM` after the run, MiB.
    pub peak_rss_mib: f64,
    /// `VmRSS` after start-up, before the run, MiB.
    pub idle_rss_mib: f64,
    /// CPU seconds of the bench process (the simulator, mostly).
    pub simulator_cpu_s: f64,
    /// CPU seconds of Azurite.
    pub azurite_cpu_s: f64,
    /// CPU used by other processes during the run, in cores.
    pub foreign_cores: f64,
}

/// Runs every size × output configuration, `repeats` times each (sizes of a million and more:
/// `big_repeats` times).
pub async fn run(
    shape: Shape,
    sizes: &[u32],
    outputs: &[Output],
    repeats: usize,
    big_repeats: usize,
    common: &Common,
) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for &output in outputs {
        for &size in sizes {
            let repeats = if size >= 1_000_000 {
                big_repeats
            } else {
                repeats
            };
            for repeat in 0..repeats {
                let run = one(shape, output, size, repeat, common)
                    .await
                    .with_context(|| {
                        format!(
                            "resources scenario, {size} records over {}, {}/{}",
                            shape.name(),
                            output.format,
                            output.compression
                        )
                    })?;
                eprintln!(
                    "  resources: {:>8} {:>10}/{:<4} {:>8} records: {:>7.0} records/s, {:>5.2} CPU s ({:.2} per million), peak RSS {:>5.1} MiB (idle {:.1}); simulator {:.1} s, Azurite {:.1} s CPU{}",
                    shape.name(),
                    output.format,
                    output.compression,
                    size,
                    run.records_per_s,
                    run.service_cpu_s,
                    run.cpu_s_per_million,
                    run.peak_rss_mib,
                    run.idle_rss_mib,
                    run.simulator_cpu_s,
                    run.azurite_cpu_s,
                    super::report::other_load(run.foreign_cores)
                );
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

async fn one(
    shape: Shape,
    output: Output,
    size: u32,
    repeat: usize,
    common: &Common,
) -> anyhow::Result<Run> {
    let azurite = common.azurite;
    let sim = SimConfig {
        seed: 60 + repeat as u64,
        history: Duration::from_secs(u64::from(shape.hours()) * 3600),
        live_for: Duration::ZERO,
        audit_per_hour: 0,
        signin_per_hour: size / shape.hours(),
        throttle: None,
        ..SimConfig::default()
    };
    let env: Vec<(String, String)> = [
        ("GRAPH_MAX_REQUESTS_PER_10S", "1000".to_owned()),
        ("INITIAL_LOOKBACK", format!("{}h", shape.hours() + 1)),
        ("QUERY_LAG", "0s".into()),
        ("REPLAY_WINDOW", "0s".into()),
        ("RUN_TIME_BUDGET", "2h".into()),
        ("OUTPUT_FORMAT", output.format.into()),
        ("OUTPUT_COMPRESSION", output.compression.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let env = common.env(env);
    let stack = Stack::start(StackOptions { sim, env })
        .await?
        .context("Azurite is not reachable: start it with scripts/azurite.sh start")?;
    let serve = Serve::spawn(&stack.env()).await?;
    let pid = serve.pid().context("serve has no pid")?;
    let idle_rss = status_kib(pid, "VmRSS").unwrap_or(0);
    let payload = timer_payload("SignInTimer", true, false);
    let recorder = match &common.profile {
        Some(dir) => Some(Recorder::attach(
            pid,
            &dir.join(format!(
                "perf-{:?}-{}-{}-{size}-{}.data",
                shape,
                output.format,
                output.compression,
                repeat + 1
            )),
        )?),
        None => None,
    };
    let before = CpuSnapshot::take(Some(pid), azurite);
    let started = Instant::now();
    let reply = serve.invoke("SignInTimer", &payload).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = before.delta(&CpuSnapshot::take(Some(pid), azurite));
    if let Some(recorder) = recorder {
        recorder.stop()?;
    }
    let peak = status_kib(pid, "VmHWM").context("no VmHWM")?;
    let report = reply.report()?;
    if reply.status != 200 || report["outcome"] != "complete" {
        bail!(
            "the run did not complete (HTTP {}): {report}\n{}",
            reply.status,
            serve.logs()
        );
    }
    terminate(pid).await;
    super::delete_containers(&stack).await?;
    let written = report["records_written"].as_u64().unwrap_or(0);
    if written != u64::from(size) {
        bail!("{written} records written, {size} expected: {report}");
    }
    let duration_s = report["duration_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    Ok(Run {
        shape,
        output,
        size,
        repeat,
        records_written: written,
        blobs: report["blobs_written"].as_u64().unwrap_or(0),
        bytes_uploaded: report["bytes_uploaded"].as_u64().unwrap_or(0),
        duration_s,
        records_per_s: written as f64 / duration_s,
        service_cpu_s: cpu.service,
        service_system_s: cpu.service_system,
        cpu_s_per_million: cpu.service / written as f64 * 1e6,
        peak_rss_mib: peak as f64 / 1024.0,
        idle_rss_mib: idle_rss as f64 / 1024.0,
        simulator_cpu_s: cpu.bench,
        azurite_cpu_s: cpu.azurite,
        foreign_cores: cpu.foreign() / elapsed,
    })
}

/// `perf record` attached to a process.
struct Recorder {
    child: Child,
}

impl Recorder {
    /// Starts recording `pid` into `output` and gives perf a moment to attach.
    fn attach(pid: u32, output: &Path) -> anyhow::Result<Recorder> {
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let child = Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `perf record` (install linux-perf)")?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Recorder { child })
    }

    /// Stops recording (SIGINT, so that perf writes its file) and waits for it.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Sends SIGTERM, as the host does when it stops, and waits up to 20 s for the process to end (a
/// profiler wrapping the binary writes its file then).
async fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    for _ in 0..200 {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ended = state
            .rfind(')')
            .map(|i| state[i + 1..].trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true);
        if ended {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
