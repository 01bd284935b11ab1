//! Shared test helpers.

// ---------------------------------------------------------------------------------------------
// Azurite (storage tests)
//
// `azurite()` gives a `Storage` on the Azurite at AZURITE_BLOB_URL
// (default http://127.0.0.1:10000/devstoreaccount1; start one with `scripts/azurite.sh start`).
// When Azurite cannot be reached, a test fails under CI=true and is skipped with a printed
// notice otherwise:
//
//     let Some(storage) = helpers::azurite().await else { return };
// ---------------------------------------------------------------------------------------------

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use entra_export::config::{Compression, OutputFormat, StorageConfig, StorageTarget};
use entra_export::storage::connection::ConnectionString;
use entra_export::storage::sas::{SasPolicy, SasSigner};
use entra_export::storage::{Storage, Timeouts};
use secrecy::SecretString;

/// Azurite's well-known development account key, published in the Azurite README.
pub const AZURITE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// The Azurite blob endpoint under test.
pub fn azurite_url() -> String {
    std::env::var("AZURITE_BLOB_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:10000/devstoreaccount1".to_owned())
}

/// The account-key connection string of the Azurite under test.
pub fn azurite_connection_string() -> String {
    connection_string(&azurite_url(), AZURITE_ACCOUNT_KEY)
}

/// An account-key connection string for the development account at `blob_endpoint`.
pub fn connection_string(blob_endpoint: &str, key: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};BlobEndpoint={blob_endpoint};"
    )
}

/// A container name no other test uses: `t-<tag>-<random>`.
pub fn unique_container(tag: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(30)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("t-{tag}-{}", &random[..12])
}

/// A `Storage` for `connection_string`, with its own state container.
pub fn storage_for(connection_string: &str) -> Storage {
    storage_with_timeouts(connection_string, Timeouts::default())
}

/// [`storage_for`] with other deadlines (short ones for fault tests).
pub fn storage_with_timeouts(connection_string: &str, timeouts: Timeouts) -> Storage {
    let config = StorageConfig {
        target: StorageTarget::ConnectionString(SecretString::from(connection_string.to_owned())),
        state_container: unique_container("state"),
        max_records_per_blob: 1000,
        format: OutputFormat::GraphPage,
        compression: Compression::None,
    };
    let http = entra_export::http::build_client(None).expect("the HTTP client builds");
    Storage::with_timeouts(&config, None, http, timeouts)
        .expect("the storage configuration is valid")
}

/// A `Storage` on the Azurite under test, or `None` (after a printed notice) when Azurite
/// cannot be reached outside CI. Under `CI=true` an unreachable Azurite fails the test.
pub async fn azurite() -> Option<Storage> {
    if !azurite_reachable().await {
        let url = azurite_url();
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
            panic!(
                "Azurite is not reachable at {url} and CI=true: storage tests must not be skipped \
                 (start it with `scripts/azurite.sh start`)"
            );
        }
        eprintln!(
            "NOTICE: skipping a storage test: Azurite is not reachable at {url} \
             (start it with `scripts/azurite.sh start`; under CI=true this fails)"
        );
        return None;
    }
    Some(storage_for(&azurite_connection_string()))
}

/// A raw SDK client for a container of the Azurite under test, signed like the service
/// signs, for arranging what the service itself never does (foreign metadata, inspecting
/// blob properties).
pub fn raw_container_client(container: &str) -> BlobContainerClient {
    let parsed = ConnectionString::parse(&azurite_connection_string()).expect("valid");
    let mut options = BlobContainerClientOptions::default();
    options
        .client_options
        .per_try_policies
        .push(Arc::new(SasPolicy::new(Arc::new(SasSigner::new(&parsed)))));
    let url = url::Url::parse(&format!(
        "{}/{container}",
        azurite_url().trim_end_matches('/')
    ))
    .expect("a valid URL");
    BlobContainerClient::new(url, None, Some(options)).expect("a valid client")
}

async fn azurite_reachable() -> bool {
    match url::Url::parse(&azurite_url()) {
        Ok(url) => reachable(&url).await,
        Err(_) => false,
    }
}

/// The https Azurite with `--oauth basic` (started by `scripts/azurite.sh start` when openssl
/// is available).
pub fn azurite_oauth_url() -> String {
    std::env::var("AZURITE_OAUTH_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "https://127.0.0.1:10010/devstoreaccount1".to_owned())
}

/// A `Storage` on the https/oauth Azurite through `STORAGE_ACCOUNT_URL` and a token
/// credential, trusting the throwaway CA the script wrote. `None` (with a notice) when the
/// script did not start that instance (no openssl, or AZURITE_OAUTH=0); under CI=true a CA
/// file without a listening instance fails the test.
pub async fn azurite_oauth() -> Option<Storage> {
    let ca = std::env::var("AZURITE_OAUTH_CA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".azurite/oauth-ca.pem")
        });
    let url = url::Url::parse(&azurite_oauth_url()).expect("AZURITE_OAUTH_URL is a URL");
    if !ca.is_file() {
        eprintln!(
            "NOTICE: skipping a token-path storage test: no {} (scripts/azurite.sh start writes it when openssl is available)",
            ca.display()
        );
        return None;
    }
    if !reachable(&url).await {
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
            panic!(
                "the https/oauth Azurite is not reachable at {url} although {} exists and CI=true",
                ca.display()
            );
        }
        eprintln!("NOTICE: skipping a token-path storage test: nothing answers at {url}");
        return None;
    }
    let config = StorageConfig {
        target: StorageTarget::AccountUrl(url),
        state_container: unique_container("state"),
        max_records_per_blob: 1000,
        format: OutputFormat::GraphPage,
        compression: Compression::None,
    };
    let http = entra_export::http::build_client(Some(&ca)).expect("the HTTP client builds");
    let credential: Arc<dyn azure_core::credentials::TokenCredential> =
        Arc::new(UnsignedEntraToken::default());
    Some(Storage::new(&config, Some(credential), http).expect("valid storage configuration"))
}

/// A token credential returning an unsigned JWT with the claims Azurite's `--oauth basic`
/// checks (issuer, audience, times); it does not check signatures. Counts its calls.
#[derive(Debug, Default)]
pub struct UnsignedEntraToken {
    pub calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for UnsignedEntraToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        use base64::Engine as _;
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = time::OffsetDateTime::now_utc();
        let encode = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header = encode(serde_json::json!({"alg": "none", "typ": "JWT"}));
        let claims = encode(serde_json::json!({
            "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "aud": "https://storage.azure.com",
            "nbf": now.unix_timestamp() - 60,
            "iat": now.unix_timestamp() - 60,
            "exp": now.unix_timestamp() + 3600,
            "oid": "00000000-0000-0000-0000-000000000001",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        }));
        Ok(azure_core::credentials::AccessToken::new(
            format!("{header}.{claims}."),
            now + time::Duration::hours(1),
        ))
    }
}

async fn reachable(url: &url::Url) -> bool {
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((host.as_str(), port))
        )
        .await,
        Ok(Ok(_))
    )
}

// ---------------------------------------------------------------------------------------------
// Fault proxy (storage faults)
//
// A plain-HTTP/1.1 TCP proxy in front of Azurite (or any HTTP server) that forwards bytes and
// injects faults on request:
//
//     let (addr, faults) = FaultProxy::start(helpers::azurite_addr()).await;
//     let storage = helpers::storage_for(&helpers::connection_string(
//         &format!("http://{addr}/devstoreaccount1"), helpers::AZURITE_ACCOUNT_KEY));
//     faults.drop_reply_of_next("PUT", "written-ids");   // the write lands, its reply is lost
//     faults.stall_after_headers(true);                    // responses stop after their headers
//     faults.fail_next_request_with(503);                  // answered by the proxy, not forwarded
//
// Every request is forwarded with `Connection: close`, so each connection carries one request
// and one response and the proxy never has to find where a response ends. Dropping the handle
// stops the proxy and closes every connection it holds (stalled ones included).
// ---------------------------------------------------------------------------------------------

/// The socket address of the Azurite under test (`AZURITE_BLOB_URL`).
pub fn azurite_addr() -> std::net::SocketAddr {
    let url = url::Url::parse(&azurite_url()).expect("AZURITE_BLOB_URL is a URL");
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(10000);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("the Azurite host resolves")
        .next()
        .expect("the Azurite host has an address")
}

/// A `Storage` on the Azurite under test reached through a new [`FaultProxy`], with the given
/// deadlines; `None` (after the usual notice) when Azurite is not reachable outside CI.
pub async fn azurite_behind_proxy(timeouts: Timeouts) -> Option<(Storage, FaultHandle)> {
    azurite().await?;
    let (addr, faults) = FaultProxy::start(azurite_addr()).await;
    let account_path = url::Url::parse(&azurite_url())
        .expect("AZURITE_BLOB_URL is a URL")
        .path()
        .trim_end_matches('/')
        .to_owned();
    let storage = storage_with_timeouts(
        &connection_string(&format!("http://{addr}{account_path}"), AZURITE_ACCOUNT_KEY),
        timeouts,
    );
    Some((storage, faults))
}

/// Starts fault proxies; see [`FaultHandle`].
pub struct FaultProxy;

impl FaultProxy {
    /// Listens on a free loopback port and forwards each connection to `target`. Returns the
    /// address to connect to and the handle that injects faults (dropping it stops the proxy).
    pub async fn start(target: std::net::SocketAddr) -> (std::net::SocketAddr, FaultHandle) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let state = Arc::new(FaultState::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let (accept_state, accept_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                };
                let (state, stop) = (accept_state.clone(), accept_stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = proxy_one(client, target, state) => {}
                    }
                });
            }
        });
        (addr, FaultHandle { state, stop })
    }
}

/// Controls a running [`FaultProxy`]. Dropping it stops the proxy.
pub struct FaultHandle {
    state: Arc<FaultState>,
    stop: tokio_util::sync::CancellationToken,
}

#[derive(Default)]
struct FaultState {
    stall_after_headers: std::sync::atomic::AtomicBool,
    fail_next: std::sync::Mutex<Option<u16>>,
    drop_next: std::sync::Mutex<Option<(String, String)>>,
    requests: std::sync::Mutex<Vec<String>>,
    replies_dropped: std::sync::atomic::AtomicUsize,
    responses_stalled: std::sync::atomic::AtomicUsize,
}

impl FaultHandle {
    /// While on, every response is forwarded up to the end of its headers and then held: the
    /// body never arrives and the connection stays open (until the proxy stops).
    pub fn stall_after_headers(&self, on: bool) {
        self.state
            .stall_after_headers
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next request is not forwarded: the proxy reads it and answers `status` itself
    /// (empty body, `x-ms-error-code: InjectedFault`).
    pub fn fail_next_request_with(&self, status: u16) {
        *self.state.fail_next.lock().unwrap() = Some(status);
    }

    /// The next request with this method whose target (path and query, percent-decoded)
    /// contains `target_substring` is forwarded and applied by the server, then its connection is
    /// closed before any byte of the reply reaches the client: "the write succeeded but its
    /// reply was lost".
    pub fn drop_reply_of_next(&self, method: &str, target_substring: &str) {
        *self.state.drop_next.lock().unwrap() =
            Some((method.to_owned(), target_substring.to_owned()));
    }

    /// The requests seen so far, as `METHOD /path` (percent-decoded; query strings, with
    /// their SAS, left out).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many replies were dropped by [`FaultHandle::drop_reply_of_next`].
    pub fn replies_dropped(&self) -> usize {
        self.state
            .replies_dropped
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many responses were held after their headers.
    pub fn responses_stalled(&self) -> usize {
        self.state
            .responses_stalled
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One client connection: one request, forwarded with `Connection: close`, and its response.
async fn proxy_one(
    mut client: tokio::net::TcpStream,
    target: std::net::SocketAddr,
    state: Arc<FaultState>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(pos) = find_subslice(&buf, b"\r\n\r\n") {
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
    // Matched and recorded percent-decoded (the SDK encodes `/` and `=` in blob names).
    let request_target = percent_encoding::percent_decode_str(words.next().unwrap_or_default())
        .decode_utf8_lossy()
        .into_owned();
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
    let path = request_target.split('?').next().unwrap_or_default();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));

    let fail_with = state.fail_next.lock().unwrap().take();
    if let Some(status) = fail_with {
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
    let drop_reply = {
        let mut next = state.drop_next.lock().unwrap();
        match next.as_ref() {
            Some((m, p)) if *m == method && request_target.contains(p.as_str()) => {
                next.take();
                true
            }
            _ => false,
        }
    };
    let stall = state.stall_after_headers.load(Ordering::SeqCst);

    let mut forwarded = format!("{request_line}\r\n");
    for line in headers {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !name.eq_ignore_ascii_case("connection") {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = tokio::net::TcpStream::connect(target).await?;
    server.write_all(forwarded.as_bytes()).await?;
    server.write_all(&buf[head_end..]).await?;

    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let mut response_head = Vec::new();
        loop {
            let n = server_read.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            if drop_reply {
                // The server applied the request and answered: the answer is lost.
                state.replies_dropped.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            if stall {
                response_head.extend_from_slice(&chunk[..n]);
                if let Some(pos) = find_subslice(&response_head, b"\r\n\r\n") {
                    client_write.write_all(&response_head[..pos + 4]).await?;
                    client_write.flush().await?;
                    state.responses_stalled.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                continue;
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
