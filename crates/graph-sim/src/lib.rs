//! A local stand-in for Microsoft Graph's log list APIs (`/auditLogs/directoryAudits`,
//! `/auditLogs/signIns` with every sign-in event type, `/auditLogs/provisioning`,
//! `/identityProtection/riskDetections` and `/identityProtection/servicePrincipalRiskDetections`)
//! and for the Entra ID token endpoint, for tests, benchmarks and demos.
//!
//! Each log is a *stream* ([`Resource`]) with its own records, ids and truth.
//!
//! [`start`] binds two loopback servers: the Graph server (plain HTTP) and the token server
//! (HTTPS with a CA generated at start, see [`Sim::ca_pem`]). Records are generated
//! deterministically from [`SimConfig::seed`] over `[start - history, start + live_for)` and
//! become visible as wall-clock time passes (plus [`SimConfig::lateness`]). [`Sim::truth`] tells
//! what a perfect client could read right now. See `README.md` beside this crate for the HTTP
//! behaviour in detail.
//!
//! This crate deliberately shares no types with the service it tests: it writes its JSON by hand
//! so that a field-name mistake on either side fails a test.

#![warn(missing_docs)]

mod arm;
pub mod certs;
mod config;
mod graph;
mod query;
mod render;
mod serve;
mod store;
mod timefmt;
mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    AppRegistration, Fault, FaultKind, Lateness, Refusal, Resource, RetryAfterStyle, SimConfig,
    Throttle,
};

pub use arm::{
    ArmAccess, ArmArgs, ArmConfig, ArmCounters, ArmTally, ArmThrottle, ArmTruthRecord,
    default_audiences, subscription_id,
};

pub use token::TokenRequest;

use store::{Collection, Injected, Item, Selection};
use timefmt::{from_ns, parse_record_time, to_ns};

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Requests to the Graph server (control endpoints excluded).
    pub requests: u64,
    /// Requests whose path is one of the list endpoints.
    pub list_requests: u64,
    /// 429 responses.
    pub throttled: u64,
    /// Requests that arrived before a `Retry-After` given to the same client had elapsed.
    pub retry_after_ignored: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Requests to the token endpoint.
    pub token_requests: u64,
    /// Token requests refused (wrong tenant, client, secret, scope or grant).
    pub token_refused: u64,
    /// 401 responses of the Graph server (injected ones included).
    pub unauthorized: u64,
    /// 400 responses of the Graph server.
    pub bad_requests: u64,
    /// Faults injected.
    pub faults_injected: u64,
    /// Pages answered with 200 (truncated ones included).
    pub pages_served: u64,
    /// Records in those pages.
    pub records_served: u64,
    /// The most requests one client had accepted (not throttled) within any 10 s.
    pub max_requests_in_any_10s_window: u64,
    /// Per stream ([`Resource::name`]): list requests that reached the stream (past the token
    /// check and the throttle, with a valid query), pages served and records in them, and 403s.
    pub streams: std::collections::BTreeMap<String, StreamCounters>,
}

/// What one stream served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamCounters {
    /// List requests that selected this stream.
    pub requests: u64,
    /// Pages answered with 200.
    pub pages_served: u64,
    /// Records in those pages.
    pub records_served: u64,
    /// 403 answers (refusals and injected licence faults).
    pub forbidden: u64,
}

#[derive(Default)]
pub(crate) struct CounterCells {
    pub requests: AtomicU64,
    pub list_requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retry_after_ignored: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub token_requests: AtomicU64,
    pub token_refused: AtomicU64,
    pub unauthorized: AtomicU64,
    pub bad_requests: AtomicU64,
    pub faults_injected: AtomicU64,
    pub pages_served: AtomicU64,
    pub records_served: AtomicU64,
    pub max_requests_in_any_10s_window: AtomicU64,
    /// Per stream, in [`Resource::ALL`] order: requests, pages, records, forbidden.
    pub streams: [[AtomicU64; 4]; Resource::ALL.len()],
}

/// Indexes into [`CounterCells::streams`].
pub(crate) const STREAM_REQUESTS: usize = 0;
pub(crate) const STREAM_PAGES: usize = 1;
pub(crate) const STREAM_RECORDS: usize = 2;
pub(crate) const STREAM_FORBIDDEN: usize = 3;

impl CounterCells {
    pub(crate) fn count_stream(&self, resource: Resource, cell: usize, amount: u64) {
        self.streams[resource.index()][cell].fetch_add(amount, AtomicOrdering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let read = |cell: &AtomicU64| cell.load(AtomicOrdering::Relaxed);
        Counters {
            requests: read(&self.requests),
            list_requests: read(&self.list_requests),
            throttled: read(&self.throttled),
            retry_after_ignored: read(&self.retry_after_ignored),
            tokens_issued: read(&self.tokens_issued),
            token_requests: read(&self.token_requests),
            token_refused: read(&self.token_refused),
            unauthorized: read(&self.unauthorized),
            bad_requests: read(&self.bad_requests),
            faults_injected: read(&self.faults_injected),
            pages_served: read(&self.pages_served),
            records_served: read(&self.records_served),
            max_requests_in_any_10s_window: read(&self.max_requests_in_any_10s_window),
            streams: Resource::ALL
                .iter()
                .map(|resource| {
                    let cells = &self.streams[resource.index()];
                    let counters = StreamCounters {
                        requests: read(&cells[STREAM_REQUESTS]),
                        pages_served: read(&cells[STREAM_PAGES]),
                        records_served: read(&cells[STREAM_RECORDS]),
                        forbidden: read(&cells[STREAM_FORBIDDEN]),
                    };
                    (resource.name().to_string(), counters)
                })
                .collect(),
        }
    }
}

/// One record as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthRecord {
    /// The record's `id` (empty for an injected record without a string id).
    pub id: String,
    /// Its time: the stream's time field (`activityDateTime`, `createdDateTime` or
    /// `detectedDateTime`).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// When the API starts returning it.
    #[serde(with = "time::serde::rfc3339")]
    pub visible_at: OffsetDateTime,
    /// 0, or 1 when the record was re-published and the re-published version is visible now.
    pub version: u32,
    /// When the re-published version becomes (or became) visible, if the record is re-published.
    #[serde(with = "time::serde::rfc3339::option")]
    pub republished_at: Option<OffsetDateTime>,
}

pub(crate) struct FaultState {
    pub faults: Vec<Fault>,
    pub matched: Vec<u32>,
    pub random: ChaCha8Rng,
}

/// State shared by both servers and the [`Sim`] handle.
pub(crate) struct Shared {
    pub config: SimConfig,
    pub graph_base: String,
    /// One per stream, in [`Resource::ALL`] order.
    pub collections: Vec<Collection>,
    pub tokens: Mutex<HashMap<String, token::IssuedToken>>,
    /// Every token request, in order of arrival.
    pub token_log: Mutex<Vec<TokenRequest>>,
    pub clients: Mutex<HashMap<String, graph::ClientState>>,
    pub faults: Mutex<FaultState>,
    pub page_latency_ns: AtomicU64,
    pub counters: CounterCells,
    pub random: Mutex<ChaCha8Rng>,
    pub inject_sequence: AtomicU64,
    /// Per stream, the top-level property names of a v1.0 and a beta record.
    pub properties: Vec<[Vec<String>; 2]>,
    /// Per stream, the 403 it answers now, if any.
    pub refusals: Mutex<[Option<Refusal>; Resource::ALL.len()]>,
    /// The Azure Resource Manager part (subscriptions, Activity Log).
    pub arm: arm::ArmState,
}

impl Shared {
    fn new(config: SimConfig, start_ns: i64, graph_base: String) -> Shared {
        // The other sign-in streams may reuse interactive ids (`shared_id_fraction`).
        let interactive = Collection::new(Resource::SignIns, &config, start_ns, &[]);
        let mut collections: Vec<Collection> = Resource::ALL
            .iter()
            .filter(|resource| **resource != Resource::SignIns)
            .map(|resource| Collection::new(*resource, &config, start_ns, &interactive.generated))
            .collect();
        collections.insert(Resource::SignIns.index(), interactive);
        let faults = FaultState {
            matched: vec![0; config.faults.len()],
            faults: config.faults.clone(),
            random: ChaCha8Rng::seed_from_u64(config.seed ^ 0xFA17),
        };
        let properties = Resource::ALL
            .iter()
            .map(|resource| [false, true].map(|beta| sample_properties(*resource, beta)))
            .collect();
        let refusals = Resource::ALL.map(|resource| config.initial_refusal(resource));
        Shared {
            page_latency_ns: AtomicU64::new(store::duration_ns(config.page_latency) as u64),
            random: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed ^ 0x5407)),
            graph_base,
            collections,
            tokens: Mutex::new(HashMap::new()),
            token_log: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            faults: Mutex::new(faults),
            counters: CounterCells::default(),
            inject_sequence: AtomicU64::new(1),
            properties,
            refusals: Mutex::new(refusals),
            arm: arm::ArmState::new(&config, start_ns),
            config,
        }
    }

    pub(crate) fn page_latency(&self) -> Duration {
        Duration::from_nanos(self.page_latency_ns.load(AtomicOrdering::Relaxed))
    }

    pub(crate) fn known_properties(&self, resource: Resource, beta: bool) -> &[String] {
        &self.properties[resource.index()][usize::from(beta)]
    }

    /// The 403 `resource` answers now, if any.
    pub(crate) fn refusal(&self, resource: Resource) -> Option<Refusal> {
        self.refusals.lock().expect("refusals lock")[resource.index()]
    }

    pub(crate) fn set_refusal(&self, resource: Resource, refusal: Option<Refusal>) {
        self.refusals.lock().expect("refusals lock")[resource.index()] = refusal;
    }

    /// Records with `start <= time < end`, visible at `now` (all when `None`), in order, with
    /// their time and visibility in nanoseconds.
    pub(crate) fn truth_ns(
        &self,
        resource: Resource,
        start: i64,
        end: i64,
        now: Option<i64>,
    ) -> Vec<(TruthRecord, i64, i64)> {
        if end <= start {
            return Vec::new();
        }
        let collection = &self.collections[resource.index()];
        let injected = collection.injected.read().expect("injected lock");
        let selection = Selection {
            lo: start,
            hi: end - 1,
            descending: false,
            after: None,
            snapshot: now.unwrap_or(i64::MAX),
        };
        let version_at = to_ns(OffsetDateTime::now_utc());
        let (items, _) = collection.select(&injected, &selection, usize::MAX - 1);
        items
            .iter()
            .map(|item| match item {
                Item::Generated(rec) => {
                    let republished = rec.republish_at != i64::MAX;
                    let record = TruthRecord {
                        id: collection.id_of(rec).as_str().to_string(),
                        time: from_ns(rec.time),
                        visible_at: from_ns(rec.visible_at),
                        version: u32::from(republished && rec.republish_at <= version_at),
                        republished_at: republished.then(|| from_ns(rec.republish_at)),
                    };
                    (record, rec.time, rec.visible_at)
                }
                Item::Injected(rec) => {
                    let record = TruthRecord {
                        id: rec.id.clone(),
                        time: from_ns(rec.time),
                        visible_at: from_ns(rec.visible_at),
                        version: 0,
                        republished_at: None,
                    };
                    (record, rec.time, rec.visible_at)
                }
            })
            .collect()
    }
}

/// The top-level property names of a rendered record, for `$select` validation.
fn sample_properties(resource: Resource, beta: bool) -> Vec<String> {
    let rec = store::Rec {
        time: 0,
        visible_at: 0,
        republish_at: i64::MAX,
        bits: 1,
        precision: 7,
    };
    let context = render::RenderContext { tenant: "", beta };
    let mut out = Vec::new();
    render::write_record(&mut out, resource, &rec, false, &context);
    match serde_json::from_slice::<serde_json::Value>(&out) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A random GUID for request ids and trace ids.
pub(crate) fn new_guid() -> String {
    use rand::RngCore;
    let mut random = rand::rng();
    let mut id = render::IdBuf::new();
    render::write_guid(&mut id, random.next_u64(), random.next_u64());
    id.as_str().to_string()
}

/// A running simulator. Dropping it (or [`Sim::shutdown`]) stops both servers.
pub struct Sim {
    shared: Arc<Shared>,
    graph_address: SocketAddr,
    token_address: SocketAddr,
    started_at: OffsetDateTime,
    ca_pem: String,
    shutdown: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts a simulator on `127.0.0.1`, both servers on ephemeral ports.
pub async fn start(config: SimConfig) -> anyhow::Result<Sim> {
    start_on(config, 0, 0).await
}

/// Starts a simulator on `127.0.0.1:graph_port` (plain HTTP) and `127.0.0.1:token_port` (HTTPS);
/// 0 picks a free port.
pub async fn start_on(config: SimConfig, graph_port: u16, token_port: u16) -> anyhow::Result<Sim> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&config.republish_fraction),
        "republish_fraction must be between 0 and 1"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&config.shared_id_fraction),
        "shared_id_fraction must be between 0 and 1"
    );
    let graph_listener = TcpListener::bind(("127.0.0.1", graph_port)).await?;
    let token_listener = TcpListener::bind(("127.0.0.1", token_port)).await?;
    let graph_address = graph_listener.local_addr()?;
    let token_address = token_listener.local_addr()?;
    let tls = token::generate_tls()?;
    let started_at = OffsetDateTime::now_utc();
    let start_ns = to_ns(started_at);
    let graph_base = format!("http://{graph_address}");
    let shared =
        tokio::task::spawn_blocking(move || Shared::new(config, start_ns, graph_base)).await?;
    let shared = Arc::new(shared);
    let (shutdown, shutdown_receiver) = watch::channel(());
    let graph_task = tokio::spawn(serve::serve(
        graph_listener,
        graph::router(shared.clone()).merge(arm::router(shared.clone())),
        None,
        shutdown_receiver.clone(),
    ));
    let token_task = tokio::spawn(serve::serve(
        token_listener,
        token::router(shared.clone()),
        Some(tokio_rustls::TlsAcceptor::from(tls.server_config)),
        shutdown_receiver,
    ));
    tracing::info!(graph = %graph_address, token = %token_address, "graph-sim started");
    Ok(Sim {
        shared,
        graph_address,
        token_address,
        started_at,
        ca_pem: tls.ca_pem,
        shutdown,
        tasks: vec![graph_task, token_task],
    })
}

impl Sim {
    /// The Graph root, `http://127.0.0.1:<port>` (append `/v1.0/auditLogs/signIns`, ...).
    pub fn graph_url(&self) -> String {
        format!("http://{}", self.graph_address)
    }

    /// The token authority root, `https://127.0.0.1:<port>` (append `/{tenant}/oauth2/v2.0/token`).
    pub fn authority_url(&self) -> String {
        format!("https://{}", self.token_address)
    }

    /// The PEM certificate of the CA that signed the token server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`Sim::ca_pem`] to `path`.
    pub fn write_ca_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// The configuration the simulator was started with (faults and page latency as at start).
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// The instant generation is relative to: records span `[started_at - history, started_at + live_for)`.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every request to the token endpoint so far, in order of arrival: which host, tenant,
    /// client, scope and credential it used, and its AADSTS code when it was refused.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared
            .token_log
            .lock()
            .expect("token log lock")
            .clone()
    }

    /// Every record with `start <= time < end` that is visible now, sorted by time then id.
    pub fn truth(
        &self,
        resource: Resource,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<TruthRecord> {
        let now = to_ns(OffsetDateTime::now_utc());
        self.shared
            .truth_ns(resource, to_ns(start), to_ns(end), Some(now))
            .into_iter()
            .map(|(record, _, _)| record)
            .collect()
    }

    /// Every record with `start <= time < end`, visible or not, sorted by time then id.
    pub fn all_records(
        &self,
        resource: Resource,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<TruthRecord> {
        self.shared
            .truth_ns(resource, to_ns(start), to_ns(end), None)
            .into_iter()
            .map(|(record, _, _)| record)
            .collect()
    }

    /// Replaces the injected faults (their `first_n` counts start again from zero).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        let mut state = self.shared.faults.lock().expect("faults lock");
        state.matched = vec![0; faults.len()];
        state.faults = faults;
    }

    /// Makes `resource` answer every list request with 403 (`Some`), or serve again (`None`),
    /// from the next request on. A request that reads two sign-in streams is refused when either
    /// is.
    pub fn set_refusal(&self, resource: Resource, refusal: Option<Refusal>) {
        self.shared.set_refusal(resource, refusal);
    }

    /// The 403 `resource` answers now, if any.
    pub fn refusal(&self, resource: Resource) -> Option<Refusal> {
        self.shared.refusal(resource)
    }

    /// Replaces the per-page latency.
    pub fn set_page_latency(&self, latency: Duration) {
        self.shared
            .page_latency_ns
            .store(store::duration_ns(latency) as u64, AtomicOrdering::Relaxed);
    }

    /// Adds a hand-made record, returned verbatim once `visible_at` has passed.
    ///
    /// Its position in time comes from the stream's time field ([`Resource::time_field`], any
    /// precision, `Z` or an offset); when that is missing or malformed, `visible_at` is used
    /// for filtering and ordering instead. A missing or non-string `id` sorts as the empty string.
    pub fn inject(
        &self,
        resource: Resource,
        record: serde_json::Value,
        visible_at: OffsetDateTime,
    ) {
        let visible_ns = to_ns(visible_at);
        let time = record
            .get(resource.time_field())
            .and_then(|value| value.as_str())
            .and_then(parse_record_time)
            .unwrap_or(visible_ns);
        let id = record
            .get("id")
            .and_then(|value| value.as_str())
            .unwrap_or("")
            .to_string();
        let injected = Injected {
            time,
            id,
            seq: self
                .shared
                .inject_sequence
                .fetch_add(1, AtomicOrdering::Relaxed),
            visible_at: visible_ns,
            json: record.to_string(),
        };
        self.shared.collections[resource.index()].inject(injected);
    }

    /// Stops both servers and closes open connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(());
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(());
    }
}
