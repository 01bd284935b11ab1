//! A TCP fault proxy in front of Azurite, for end-to-end fault tests: the `serve` process talks
//! to storage through it (see [`connection_string_via`]) while the test reads results directly.
//!
//! Plain HTTP/1.1: every request is forwarded with `Connection: close`, so each connection
//! carries one request and one response and the proxy never has to find where a response ends.
//! Faults are rules matched on the method and the request target (path and query,
//! percent-decoded):
//!
//! - [`FaultProxy::fail_after`]: once a request matching the trigger was forwarded, the next
//!   `times` requests matching the target are answered by the proxy itself with a status (they
//!   never reach the server);
//! - [`FaultProxy::drop_reply_of`]: the next requests matching are forwarded and applied by the
//!   server, then their connection is closed before any byte of the reply reaches the client
//!   ("the write succeeded but its reply was lost").
//!
//! Every fault is counted. Dropping the proxy stops it and closes every connection it holds.
//! (The same approach as the root crate's test helper `FaultProxy`, which this crate cannot
//! import.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::stack::{AZURITE_ACCOUNT, AZURITE_KEY, azurite_blob_url};

/// Requests with this method whose target contains every one of these substrings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `PUT`, `GET`, ...
    pub method: String,
    /// Substrings of the percent-decoded request target (path and query), all required.
    pub contains: Vec<String>,
}

impl Match {
    /// Requests with `method` whose target contains every one of `contains`.
    pub fn new(method: &str, contains: &[&str]) -> Match {
        Match {
            method: method.to_owned(),
            contains: contains.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// `PUT /<account>/<container>?restype=container&comp=metadata`: a container's metadata
    /// (the checkpoint) is written.
    pub fn set_container_metadata(container: &str) -> Match {
        Match::new("PUT", &[&format!("/{container}?"), "comp=metadata"])
    }

    /// A PUT of the written-ids state blob of a job's container.
    pub fn state_write(container: &str) -> Match {
        Match::new("PUT", &[&format!("/{container}/written-ids.json")])
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method == method && self.contains.iter().all(|s| target.contains(s.as_str()))
    }
}

#[derive(Debug)]
struct FailRule {
    trigger: Option<Match>,
    target: Match,
    status: u16,
    remaining: usize,
}

#[derive(Debug)]
struct DropRule {
    target: Match,
    remaining: usize,
}

#[derive(Default)]
struct State {
    fail: Mutex<Vec<FailRule>>,
    drop_reply: Mutex<Vec<DropRule>>,
    requests: Mutex<Vec<String>>,
    failed: AtomicUsize,
    replies_dropped: AtomicUsize,
}

enum Action {
    Forward,
    Fail(u16),
    DropReply,
}

impl State {
    /// Decides what happens to a request, and arms the rules it triggers.
    fn decide(&self, method: &str, target: &str) -> Action {
        {
            let mut rules = self.fail.lock().unwrap();
            for rule in rules.iter_mut() {
                if rule.trigger.is_none()
                    && rule.remaining > 0
                    && rule.target.matches(method, target)
                {
                    rule.remaining -= 1;
                    self.failed.fetch_add(1, Ordering::SeqCst);
                    return Action::Fail(rule.status);
                }
            }
        }
        let mut drops = self.drop_reply.lock().unwrap();
        for rule in drops.iter_mut() {
            if rule.remaining > 0 && rule.target.matches(method, target) {
                rule.remaining -= 1;
                return Action::DropReply;
            }
        }
        Action::Forward
    }

    /// A request was forwarded and answered by the server: arms the rules it triggers.
    fn forwarded(&self, method: &str, target: &str) {
        let mut rules = self.fail.lock().unwrap();
        for rule in rules.iter_mut() {
            if rule
                .trigger
                .as_ref()
                .is_some_and(|t| t.matches(method, target))
            {
                rule.trigger = None;
            }
        }
    }
}

/// A running fault proxy. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            // Owned here, so that aborting this task closes every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((client, _)) = accepted {
                            connections.spawn(proxy_one(client, target, accept_state.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(FaultProxy { addr, state, task })
    }

    /// A proxy in front of the Azurite under test (`AZURITE_BLOB_URL`).
    pub async fn azurite() -> anyhow::Result<FaultProxy> {
        FaultProxy::start(azurite_addr()?).await
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Azurite connection string through this proxy.
    pub fn connection_string(&self) -> String {
        connection_string_via(self.addr)
    }

    /// Once a request matching `trigger` was forwarded (`None`: at once), the next `times`
    /// requests matching `target` are answered `status` by the proxy and never forwarded
    /// (empty body, `x-ms-error-code: InjectedFault`).
    pub fn fail_after(&self, trigger: Option<Match>, target: Match, status: u16, times: usize) {
        self.state.fail.lock().unwrap().push(FailRule {
            trigger,
            target,
            status,
            remaining: times,
        });
    }

    /// The next `times` requests matching `target` are forwarded and applied, then their
    /// connection is closed before any byte of the reply reaches the client.
    pub fn drop_reply_of(&self, target: Match, times: usize) {
        self.state.drop_reply.lock().unwrap().push(DropRule {
            target,
            remaining: times,
        });
    }

    /// Forgets every rule not used up (the counters stay).
    pub fn clear(&self) {
        self.state.fail.lock().unwrap().clear();
        self.state.drop_reply.lock().unwrap().clear();
    }

    /// Requests answered with an injected status so far.
    pub fn failed(&self) -> usize {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Replies dropped after the server applied the request, so far.
    pub fn replies_dropped(&self) -> usize {
        self.state.replies_dropped.load(Ordering::SeqCst)
    }

    /// The requests seen so far, as `METHOD /path?query` (percent-decoded, `sig` left out).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The socket address of the Azurite under test.
pub fn azurite_addr() -> anyhow::Result<SocketAddr> {
    let url = azurite_blob_url();
    let host_port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| anyhow::anyhow!("AZURITE_BLOB_URL `{url}` has no host"))?;
    std::net::ToSocketAddrs::to_socket_addrs(host_port)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("`{host_port}` does not resolve"))
}

/// An Azurite connection string whose `BlobEndpoint` is `addr` (a proxy).
pub fn connection_string_via(addr: SocketAddr) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint=http://{addr}/{AZURITE_ACCOUNT};"
    )
}

/// `%XX` sequences decoded (invalid ones kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One client connection: one request, forwarded with `Connection: close`, and its response.
async fn proxy_one(
    mut client: TcpStream,
    target: SocketAddr,
    state: Arc<State>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or_default().to_owned();
    let request_target = percent_decode(words.next().unwrap_or_default());
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let content_length: usize = headers
        .iter()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let shown: Vec<&str> = request_target
        .split(['?', '&'])
        .filter(|p| !p.starts_with("sig="))
        .collect();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {}", shown.join("&")));

    let action = state.decide(&method, &request_target);
    if let Action::Fail(status) = action {
        let mut remaining = content_length.saturating_sub(buf.len() - head_end);
        while remaining > 0 {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            remaining = remaining.saturating_sub(n);
        }
        client
            .write_all(
                format!(
                    "HTTP/1.1 {status} Injected Fault\r\nContent-Length: 0\r\nx-ms-error-code: InjectedFault\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        client.shutdown().await?;
        return Ok(());
    }
    let drop_reply = matches!(action, Action::DropReply);

    let mut forwarded = format!("{request_line}\r\n");
    for line in headers {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(target).await?;
    server.write_all(forwarded.as_bytes()).await?;
    server.write_all(&buf[head_end..]).await?;

    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let mut first = true;
        loop {
            let n = server_read.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            if first {
                first = false;
                // The server answered: the request was applied (or refused) by now.
                state.forwarded(&method, &request_target);
                if drop_reply {
                    state.replies_dropped.fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                }
            }
            client_write.write_all(&chunk[..n]).await?;
        }
    };
    // When the response side ends, both connections close (the halves are dropped).
    tokio::select! {
        _ = upstream => Ok(()),
        result = downstream => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_sequences() {
        assert_eq!(percent_decode("/a%2Fb%3D?c=%41"), "/a/b=?c=A");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn a_rule_is_armed_by_its_trigger_and_used_up() {
        let state = State::default();
        state.fail.lock().unwrap().push(FailRule {
            trigger: Some(Match::state_write("c")),
            target: Match::set_container_metadata("c"),
            status: 500,
            remaining: 2,
        });
        let metadata = "/acct/c?restype=container&comp=metadata";
        assert!(matches!(state.decide("PUT", metadata), Action::Forward));
        state.forwarded("PUT", "/acct/state/c/written-ids.json");
        assert!(matches!(
            state.decide("PUT", "/acct/d?comp=metadata"),
            Action::Forward
        ));
        assert!(matches!(state.decide("PUT", metadata), Action::Fail(500)));
        assert!(matches!(state.decide("PUT", metadata), Action::Fail(500)));
        assert!(matches!(state.decide("PUT", metadata), Action::Forward));
        assert_eq!(state.failed.load(Ordering::SeqCst), 2);
    }
}
