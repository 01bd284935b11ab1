//! Process and machine figures read from `/proc`: CPU seconds (user + system, all threads, dead
//! ones included), peak and current resident memory, the machine's busy time and load.

use std::path::Path;
use std::sync::OnceLock;

/// Clock ticks per second of the `utime`/`stime` fields (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat` fields 14 and 15; 10 ms
/// resolution). `pid` `None` is this process.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    cpu_split(pid).map(|(user, system)| user + system)
}

/// User and system CPU seconds of a process so far, apart.
pub fn cpu_split(pid: Option<u32>) -> Option<(f64, f64)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / clock_ticks(), stime / clock_ticks()))
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
}

/// Busy and total CPU seconds of the whole machine (`/proc/stat`, all cores).
pub fn machine_cpu() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let values: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    Some(((total - idle) / clock_ticks(), total / clock_ticks()))
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The pid of the Azurite blob service started by `scripts/azurite.sh` (its pid file), if any.
pub fn azurite_pid(repo: &Path) -> Option<u32> {
    let port = std::env::var("AZURITE_BLOB_URL")
        .ok()
        .and_then(|url| {
            url.split(':')
                .nth(2)?
                .split('/')
                .next()?
                .parse::<u16>()
                .ok()
        })
        .unwrap_or(10000);
    let text = std::fs::read_to_string(repo.join(format!(".azurite/azurite-{port}.pid"))).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// CPU seconds of a process and all its descendants that are alive now (Azurite runs node under a
/// launcher), summed.
pub fn tree_cpu_seconds(root: u32) -> f64 {
    let mut total = 0.0;
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        total += cpu_seconds(Some(pid)).unwrap_or(0.0);
        stack.extend(children(pid));
    }
    total
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// CPU usage of the parties of one measurement, as deltas between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    /// The measured `entra-export` process.
    pub service: f64,
    /// Its system (kernel) part.
    pub service_system: f64,
    /// This process (the Graph simulator and the measuring code).
    pub bench: f64,
    /// Azurite.
    pub azurite: f64,
    /// Busy seconds of the whole machine.
    pub machine_busy: f64,
    /// Wall-clock-equivalent CPU seconds of the whole machine (cores × elapsed).
    pub machine_total: f64,
}

impl CpuSnapshot {
    /// Reads everything now.
    pub fn take(service: Option<u32>, azurite: Option<u32>) -> CpuSnapshot {
        let (busy, total) = machine_cpu().unwrap_or((0.0, 0.0));
        let (user, system) = service
            .and_then(|p| cpu_split(Some(p)))
            .unwrap_or((0.0, 0.0));
        CpuSnapshot {
            service: user + system,
            service_system: system,
            bench: cpu_seconds(None).unwrap_or(0.0),
            azurite: azurite.map(tree_cpu_seconds).unwrap_or(0.0),
            machine_busy: busy,
            machine_total: total,
        }
    }

    /// `later - self`.
    pub fn delta(&self, later: &CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            service: later.service - self.service,
            service_system: later.service_system - self.service_system,
            bench: later.bench - self.bench,
            azurite: later.azurite - self.azurite,
            machine_busy: later.machine_busy - self.machine_busy,
            machine_total: later.machine_total - self.machine_total,
        }
    }

    /// CPU seconds used by processes other than the three measured ones (other builds, ...).
    pub fn foreign(&self) -> f64 {
        (self.machine_busy - self.service - self.bench - self.azurite).max(0.0)
    }
}
