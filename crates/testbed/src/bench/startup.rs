//! Scenario 3: start-up, process start to the first answered `GET /`.
//!
//! The host polls every 25 ms, which rounds the figure up to the next poll; to measure, this
//! polls every millisecond from a blocking thread (connect, `GET /`, read the status line). The
//! host-like figure (`testbed::Serve::spawn`, 25 ms polls) is reported beside.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use testbed::Serve;

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// Runs.
    pub runs: usize,
    /// Poll period of the measurement, ms.
    pub poll_ms: f64,
    /// Every measured start-up, ms, sorted.
    pub samples_ms: Vec<f64>,
    /// Median, ms.
    pub median_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Host-like measurement (25 ms polls): median, ms.
    pub host_median_ms: f64,
    /// Host-like: 95th percentile, ms.
    pub host_p95_ms: f64,
    /// Size of the binary, bytes.
    pub binary_bytes: u64,
    /// The binary measured.
    pub binary: String,
    /// Whether the ELF file still has a symbol table (`.symtab`).
    pub has_symbol_table: bool,
}

/// Percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Measures `runs` start-ups with 1 ms polls and `host_runs` with the host's 25 ms polls.
pub async fn run(
    env: &[(String, String)],
    runs: usize,
    host_runs: usize,
) -> anyhow::Result<Startup> {
    let binary = testbed::host::binary()?;
    let mut samples = Vec::with_capacity(runs);
    // One unmeasured start so that the binary is in the page cache.
    once(&binary, env)?;
    for _ in 0..runs {
        let env = env.to_vec();
        let binary = binary.clone();
        samples.push(tokio::task::spawn_blocking(move || once(&binary, &env)).await??);
    }
    samples.sort_by(f64::total_cmp);
    let mut host = Vec::with_capacity(host_runs);
    for _ in 0..host_runs {
        let mut serve = Serve::spawn(env).await?;
        host.push(serve.startup.as_secs_f64() * 1000.0);
        serve.kill().await?;
    }
    host.sort_by(f64::total_cmp);
    let bytes = std::fs::read(&binary)?;
    Ok(Startup {
        runs,
        poll_ms: 1.0,
        median_ms: percentile(&samples, 50.0),
        p95_ms: percentile(&samples, 95.0),
        max_ms: samples.last().copied().unwrap_or(f64::NAN),
        samples_ms: samples,
        host_median_ms: percentile(&host, 50.0),
        host_p95_ms: percentile(&host, 95.0),
        binary_bytes: bytes.len() as u64,
        binary: workspace_relative(&binary),
        has_symbol_table: bytes.windows(8).any(|w| w == b".symtab\0"),
    })
}

/// `path` relative to the workspace root when it is inside it (the results are committed, and an
/// absolute path would name one machine's checkout), else as it is.
fn workspace_relative(path: &std::path::Path) -> String {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2);
    workspace
        .and_then(|root| path.strip_prefix(root).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One start-up, in ms.
fn once(binary: &std::path::Path, env: &[(String, String)]) -> anyhow::Result<f64> {
    let port = testbed::host::free_port()?;
    let mut command = testbed::host::serve_command(binary, env, port);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().context("cannot start entra-export serve")?;
    let result = loop {
        if answers(port) {
            break Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("entra-export serve exited with {status}"));
        }
        if started.elapsed() > Duration::from_secs(30) {
            break Err(anyhow::anyhow!("no answer to GET / within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// True when `GET /` gets a 2xx status line.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    head.starts_with(b"HTTP/1.1 2")
}
