//! Plays the Functions host: starts `entra-export serve` with an environment, polls `GET /` every
//! 25 ms until it answers, and POSTs invocation payloads with chunked transfer encoding.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The path of the `entra-export` binary: `ENTRA_EXPORT_BIN`, else next to the running
/// executable (`target/<profile>/`), else one level up (`target/<profile>/deps/`).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("ENTRA_EXPORT_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(PathBuf::from);
    while let Some(candidate) = dir {
        let path = candidate.join("entra-export");
        if path.is_file() {
            return Ok(path);
        }
        dir = candidate.parent().map(PathBuf::from);
        if candidate.ends_with("target") {
            break;
        }
    }
    bail!(
        "cannot find the entra-export binary: build it (`cargo build --bin entra-export`) or set ENTRA_EXPORT_BIN"
    )
}

/// A running `entra-export serve` process.
pub struct Serve {
    child: Child,
    /// The port it listens on (`FUNCTIONS_CUSTOMHANDLER_PORT`).
    pub port: u16,
    /// Process start to the first answered `GET /`.
    pub startup: Duration,
    log_path: PathBuf,
    _log_dir: tempdir::TempDir,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> std::io::Result<TempDir> {
            let path =
                std::env::temp_dir().join(format!("entra-export-serve-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path)?;
            Ok(TempDir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A reply as the host sees it.
#[derive(Debug, Clone)]
pub struct HostReply {
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl HostReply {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "reply body is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The run report (`ReturnValue`).
    pub fn report(&self) -> anyhow::Result<serde_json::Value> {
        let reports = self.reports()?;
        match reports.as_slice() {
            [one] => Ok(one.clone()),
            _ => anyhow::bail!("{} reports in the reply, not one", reports.len()),
        }
    }

    /// Every stream's report (`ReturnValue.reports`).
    pub fn reports(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let value = self.json()?["ReturnValue"]["reports"].clone();
        Ok(serde_json::from_value(value)?)
    }

    /// The stream whose report has this job name.
    pub fn report_of(&self, job: &str) -> Option<serde_json::Value> {
        self.reports()
            .ok()?
            .into_iter()
            .find(|r| r["job"].as_str() == Some(job))
    }

    /// The invocation's outcome (`ReturnValue.outcome`: the worst of its streams').
    pub fn outcome(&self) -> String {
        self.json()
            .ok()
            .and_then(|r| r["ReturnValue"]["outcome"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// `entra-export serve` with exactly these environment variables (plus `PATH` and `HOME`) on
/// `port`, logging JSON, as the Functions host would start it. The caller wires stdio.
pub fn serve_command(
    binary: &std::path::Path,
    env: &[(String, String)],
    port: u16,
) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .envs(
            ["PATH", "HOME"]
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("LOG_FORMAT", "json");
    command
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Serve {
    /// Starts `entra-export serve` with exactly these environment variables (plus `PATH` and
    /// `HOME`) and waits until `GET /` answers, polling every 25 ms as the host does.
    pub async fn spawn(env: &[(String, String)]) -> anyhow::Result<Serve> {
        let port = free_port()?;
        let log_dir = tempdir::TempDir::new()?;
        let log_path = log_dir.path().join("serve.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::from(serve_command(&binary()?, env, port));
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command.spawn().context("cannot start entra-export serve")?;
        let mut serve = Serve {
            child,
            port,
            startup: Duration::ZERO,
            log_path,
            _log_dir: log_dir,
        };
        loop {
            if serve.get("/").await.is_ok() {
                serve.startup = started.elapsed();
                return Ok(serve);
            }
            if let Some(status) = serve.child.try_wait()? {
                bail!("entra-export serve exited with {status}: {}", serve.logs());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "entra-export serve did not answer GET / within 30 s (the host would give up)"
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<HostReply> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        exchange(self.port, request.as_bytes()).await
    }

    /// POSTs an invocation body to `/<function>` as the host does: chunked, no Content-Length.
    pub async fn invoke(&self, function: &str, body: &[u8]) -> anyhow::Result<HostReply> {
        let invocation_id = uuid::Uuid::new_v4();
        let mut request = format!(
            "POST /{function} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Azure-Functions-InvocationId: {invocation_id}\r\n\
             X-Azure-Functions-HostVersion: 4.1036.1.23224\r\nUser-Agent: Azure-Functions-Host/4.1036.1.23224\r\n\
             traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
             Content-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            port = self.port
        )
        .into_bytes();
        // Two chunks, so that a parser that expects one read per body fails.
        let middle = body.len() / 2;
        for chunk in [&body[..middle], &body[middle..]] {
            if !chunk.is_empty() {
                request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend_from_slice(chunk);
                request.extend_from_slice(b"\r\n");
            }
        }
        request.extend_from_slice(b"0\r\n\r\n");
        exchange(self.port, &request).await
    }

    /// Kills the process with SIGKILL, as the host does on a timeout.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

async fn exchange(port: u16, request: &[u8]) -> anyhow::Result<HostReply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> anyhow::Result<HostReply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("reply has no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("reply has no status line")?;
    let mut content_type = String::new();
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.trim().to_owned(),
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HostReply {
        status,
        content_type,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end])?.trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The timer payload the host sends for a scheduled run; `with_status` gives a populated
/// `ScheduleStatus` (schedule monitor on), else `null`.
pub fn timer_payload(function: &str, with_status: bool, past_due: bool) -> Vec<u8> {
    let status = if with_status {
        serde_json::json!({
            "Last": "2026-11-25T10:15:00+00:00",
            "Next": "2026-11-25T10:30:00+00:00",
            "LastUpdated": "2026-11-25T10:15:00.0012345+00:00"
        })
    } else {
        serde_json::Value::Null
    };
    serde_json::to_vec(&serde_json::json!({
        "Data": { "timer": { "Schedule": { "AdjustForDST": true }, "ScheduleStatus": status, "IsPastDue": past_due } },
        "Metadata": { "sys": { "MethodName": function, "UtcNow": "2026-11-25T10:30:00.0012345Z", "RandGuid": uuid::Uuid::new_v4().to_string() } }
    }))
    .expect("static JSON")
}

/// The payload of a run started through `POST /admin/functions/<name>`: the host builds a fresh
/// timer object (not past due, schedule status as stored), indistinguishable from a scheduled one.
pub fn admin_payload(function: &str) -> Vec<u8> {
    timer_payload(function, true, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let reply = parse_reply(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(
            (
                reply.status,
                reply.content_type.as_str(),
                reply.body.as_slice()
            ),
            (200, "application/json", &b"{}"[..])
        );
        let reply = parse_reply(b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (500, &b"{}"[..]));
    }
}
