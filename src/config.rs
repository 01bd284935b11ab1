//! Configuration from environment variables (Functions app settings), parsed once at start-up
//! into typed structs. Every problem is collected and reported together, each naming its
//! variable and what is allowed.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AZURE_TENANT_ID` | required | tenant id (GUID) or primary domain |
//! | `AZURE_CLOUD` | `AzureUSGovernment` | `AzurePublic`, `AzureUSGovernment`, `AzureUSGovernmentDoD`, `AzureChina` |
//! | `AUTH_MODE` | `auto` | `auto`, `managed_identity`, `client_secret`, `workload_identity`, `azure_cli` |
//! | `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` | none | service principal, or the user-assigned identity's client id |
//! | `AZURE_FEDERATED_TOKEN_FILE` | none | workload identity token file |
//! | `AZURE_AUTHORITY_HOST`, `GRAPH_ENDPOINT` | per cloud | https overrides (private endpoints, local simulator) |
//! | `GRAPH_API_VERSION` | `v1.0` | `v1.0` or `beta` |
//! | `STORAGE_ACCOUNT_URL` | none | `https://<account>.blob.<suffix>`, token auth |
//! | `STORAGE_CONNECTION_STRING` | none | account-key connection string, `UseDevelopmentStorage=true` included |
//! | `SIGNIN_EVENT_TYPES` | `interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity` | the sign-in streams `SignInTimer` runs (empty: none) |
//! | `AUDIT_STREAMS` | `directoryAudits,provisioning` | the streams `AuditTimer` runs; `riskDetections`, `servicePrincipalRiskDetections` are opt-in (P2) |
//! | `AUDIT_CONTAINER`, `SIGNIN_CONTAINER`, `SIGNIN_NONINTERACTIVE_CONTAINER`, `SIGNIN_SERVICEPRINCIPAL_CONTAINER`, `SIGNIN_MANAGEDIDENTITY_CONTAINER`, `PROVISIONING_CONTAINER`, `RISKDETECTIONS_CONTAINER`, `SPRISKDETECTIONS_CONTAINER` | `logs-audit`, `logs-signin`, `logs-signin-noninteractive`, `logs-signin-serviceprincipal`, `logs-signin-managedidentity`, `logs-provisioning`, `logs-riskdetections`, `logs-spriskdetections` | data container and checkpoint of each stream |
//! | `STATE_CONTAINER` | `logs-state` | ids already written inside the replay window |
//! | `INITIAL_LOOKBACK` | `7d` | how far back a first run starts (at most 30 days) |
//! | `QUERY_LAG` | `5m` | a run never asks for records newer than now minus this: Microsoft's published latency for audit and sign-in logs is 2 min at the 95th percentile and 5 min at the 99th ("Azure Active Directory reporting latencies", since withdrawn; its successor "Log latency for Microsoft Entra ID" gives no figures) |
//! | `REPLAY_WINDOW` | `2h` | each run re-reads this much before its checkpoint: MFA details "might take up to two hours" to reach a sign-in ("Microsoft Entra monitoring and health FAQ"), the longest published delay |
//! | `RECONCILE_INTERVAL` | `6h` | how often a run also sweeps the older past for records published after the replay window (at most 7 days; `0s`: every run whose range is complete) |
//! | `RECONCILE_WINDOW` | `24h` | the sweep re-reads `[now - RECONCILE_WINDOW, checkpoint - REPLAY_WINDOW)` and writes only records never written; `0` disables it (at most 30 days) |
//! | `ACCEPT_LATE_RECORD_LOSS` | `false` | `true` allows `QUERY_LAG=0s` and `REPLAY_WINDOW=0s` (simulators, benchmarks), which lose records Graph publishes late |
//! | `RUN_TIME_BUDGET` | `8m` | a run stops starting new work after this; the budget, its grace period (an eighth of it) and 30 s of final writes must fit in `FUNCTION_TIMEOUT` |
//! | `FUNCTION_TIMEOUT` | host.json `functionTimeout` (`10m`) | the Functions host's limit for one invocation: `10m`, host.json's `00:10:00`, or `-1` for none |
//! | `SLICE_WIDTH` | `1h` | width of the UTC grid cells that name blob partitions (records go to the cell of their time) |
//! | `GRAPH_MAX_REQUESTS_PER_10S` | `5` | Graph reporting throttle budget shared by both jobs |
//! | `GRAPH_PAGE_SIZE` | `1000` | `$top`, 1 to 1000 |
//! | `GRAPH_MAX_ATTEMPTS` | `6` | attempts per page for transient failures |
//! | `GRAPH_REQUEST_TIMEOUT` | `120s` | one Graph request, headers and body |
//! | `GRAPH_MIN_WINDOW` | `1m` | failing windows are split in half down to this width |
//! | `GRAPH_PAGE_BUFFER` | `4MiB` | bytes of received pages held at once, each counted twice (page and blob); 256KiB to 1GiB |
//! | `MAX_RECORDS_PER_BLOB` | `1000` | records in one data blob, 1 to 1000 (a blob never spans pages) |
//! | `OUTPUT_FORMAT`, `OUTPUT_COMPRESSION` | `graph-page`, `none` | `graph-page` or `ndjson`; `none` or `gzip` |
//! | `REPUBLISH_UPDATES` | `false` | write a later version of a record whose content changed |
//! | `PARALLEL_SLICES` | `auto` | windows fetched at once (lanes): `auto` (twice the request budget, at most 10) or 1 to 64 |
//! | `LOCK_LEASE` | `60s` | run lock lease, 15 s to 60 s; a crashed run's lease lapses after it |
//! | `EXTRA_CA_FILE` | none | PEM certificates to trust in addition to the system roots |
//! | `LOG_FORMAT` | `auto` | `json` when not on a terminal, `pretty` on a terminal |

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::job::{JobKind, JobSpec, Timer};
use crate::redact::{NOT_SHOWN, REDACTED, redact_url, shown, shown_url};
use crate::url_util::{is_loopback, plain_host};

/// Entra's longest retention; a first run never reaches further back.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Time a run keeps, after its in-flight slices are done or dropped, for its final writes: the
/// written-ids state, the checkpoint, the lease release and the report.
pub const FINAL_WRITES: Duration = Duration::from_secs(30);

/// How long slices still in flight when `RUN_TIME_BUDGET` is spent may go on before they are
/// dropped: an eighth of the budget.
pub fn grace(budget: Duration) -> Duration {
    budget / 8
}

/// The longest a run with this budget can take: the budget, its [`grace`] period and
/// [`FINAL_WRITES`]. It must fit in `FUNCTION_TIMEOUT`.
pub fn longest_run(budget: Duration) -> Duration {
    budget + grace(budget) + FINAL_WRITES
}

/// host.json, compiled in so that the default of `FUNCTION_TIMEOUT` follows the file.
const HOST_JSON: &str = include_str!("../host.json");

/// The Functions host's default `functionTimeout` on Consumption, the strictest plan, when
/// host.json sets none.
const HOST_DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// host.json's `functionTimeout` (the default of `FUNCTION_TIMEOUT`): `None` for `-1`, no limit.
pub fn host_function_timeout() -> Option<Duration> {
    let host: serde_json::Value =
        serde_json::from_str(HOST_JSON).expect("host.json is JSON (a unit test checks it)");
    match host.get("functionTimeout").and_then(|v| v.as_str()) {
        None => Some(HOST_DEFAULT_FUNCTION_TIMEOUT),
        Some(text) => parse_function_timeout(text)
            .expect("host.json's functionTimeout is valid (a unit test checks it)"),
    }
}

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tenant id (GUID) or primary domain.
    pub tenant_id: String,
    /// The national or public cloud.
    pub cloud: Cloud,
    /// How tokens are obtained.
    pub auth: AuthConfig,
    /// Microsoft Graph access.
    pub graph: GraphConfig,
    /// Blob Storage access and output format.
    pub storage: StorageConfig,
    /// Incremental-run timing.
    pub run: RunConfig,
    /// Every stream, with its container resolved (enabled or not: `status` and `checkpoint`
    /// address any).
    pub jobs: Vec<JobSpecConfig>,
    /// The streams the timers run (`SIGNIN_EVENT_TYPES`, `AUDIT_STREAMS`), in order.
    pub streams: Vec<JobKind>,
    /// Log output format.
    pub log_format: LogFormat,
    /// Extra PEM CA certificates trusted for every outgoing HTTPS connection.
    pub extra_ca_file: Option<PathBuf>,
}

/// A job description together with the container this deployment gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpecConfig {
    /// What the job reads.
    pub spec: JobSpec,
    /// Where the job writes its blobs and keeps its checkpoint.
    pub container: String,
}

/// The clouds this service knows, with their endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Azure public cloud, including Microsoft 365 GCC.
    AzurePublic,
    /// Azure US Government L4 (GCC High).
    AzureUSGovernment,
    /// Azure US Government L5 (DoD).
    AzureUSGovernmentDoD,
    /// Azure China (21Vianet).
    AzureChina,
}

impl Cloud {
    const NAMES: [(&'static str, Cloud); 4] = [
        ("AzurePublic", Cloud::AzurePublic),
        ("AzureUSGovernment", Cloud::AzureUSGovernment),
        ("AzureUSGovernmentDoD", Cloud::AzureUSGovernmentDoD),
        ("AzureChina", Cloud::AzureChina),
    ];

    /// The Entra ID authority host.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "https://login.microsoftonline.com",
            Cloud::AzureUSGovernment | Cloud::AzureUSGovernmentDoD => {
                "https://login.microsoftonline.us"
            }
            Cloud::AzureChina => "https://login.chinacloudapi.cn",
        }
    }

    /// The Microsoft Graph root.
    pub fn graph_endpoint(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "https://graph.microsoft.com",
            Cloud::AzureUSGovernment => "https://graph.microsoft.us",
            Cloud::AzureUSGovernmentDoD => "https://dod-graph.microsoft.us",
            Cloud::AzureChina => "https://microsoftgraph.chinacloudapi.cn",
        }
    }

    /// The Blob Storage host suffix (`blob.<suffix>`).
    pub fn storage_suffix(self) -> &'static str {
        match self {
            Cloud::AzurePublic => "core.windows.net",
            Cloud::AzureUSGovernment | Cloud::AzureUSGovernmentDoD => "core.usgovcloudapi.net",
            Cloud::AzureChina => "core.chinacloudapi.cn",
        }
    }

    /// The name written in `AZURE_CLOUD`.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// How the service obtains Entra ID tokens, resolved from `AUTH_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The Function App's managed identity (`IDENTITY_ENDPOINT`).
    ManagedIdentity,
    /// A service principal with a client secret.
    ClientSecret,
    /// A federated token file (AKS workload identity, GitHub OIDC).
    WorkloadIdentity,
    /// The signed-in Azure CLI, for local use.
    AzureCli,
}

impl AuthMode {
    /// The name written in `AUTH_MODE`.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::ManagedIdentity => "managed_identity",
            AuthMode::ClientSecret => "client_secret",
            AuthMode::WorkloadIdentity => "workload_identity",
            AuthMode::AzureCli => "azure_cli",
        }
    }
}

/// Token acquisition settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The resolved mode (never `auto`).
    pub mode: AuthMode,
    /// Service principal or user-assigned identity client id.
    pub client_id: Option<String>,
    /// The client secret, redacted in `Debug`.
    pub client_secret: Option<SecretString>,
    /// Workload identity token file.
    pub federated_token_file: Option<PathBuf>,
    /// The authority host, `https` (from the cloud or `AZURE_AUTHORITY_HOST`).
    pub authority_host: Url,
}

/// Graph API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `v1.0`
    V1,
    /// `beta`
    Beta,
}

impl ApiVersion {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// Microsoft Graph client settings.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Graph root, for example `https://graph.microsoft.us` (no trailing path).
    pub endpoint: Url,
    /// `v1.0` or `beta`.
    pub api_version: ApiVersion,
    /// Token scope, `<graph root>/.default`.
    pub scope: String,
    /// Requests allowed per 10 seconds for the tenant, across both jobs.
    pub max_requests_per_10s: u32,
    /// `$top`.
    pub page_size: u32,
    /// Attempts per page for transient failures.
    pub max_attempts: u32,
    /// Timeout for one request, headers and body.
    pub request_timeout: Duration,
    /// Failing windows are split down to this width before a run gives up.
    pub min_window: Duration,
    /// Bytes of received pages held at once (see [`crate::graph::budget`]).
    pub page_buffer: u64,
}

/// Where the logs are stored and in which shape.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The account and its credentials.
    pub target: StorageTarget,
    /// Container for state that does not fit in container metadata.
    pub state_container: String,
    /// Records in one data blob at most.
    pub max_records_per_blob: usize,
    /// Data blob layout.
    pub format: OutputFormat,
    /// Data blob compression.
    pub compression: Compression,
}

/// How to reach the storage account.
#[derive(Clone)]
pub enum StorageTarget {
    /// `https://<account>.blob.<suffix>` with an Entra ID token.
    AccountUrl(Url),
    /// An account-key connection string (`UseDevelopmentStorage=true` included).
    ConnectionString(SecretString),
}

impl fmt::Debug for StorageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageTarget::AccountUrl(url) => {
                f.debug_tuple("AccountUrl").field(&url.as_str()).finish()
            }
            StorageTarget::ConnectionString(_) => f.write_str("ConnectionString([REDACTED])"),
        }
    }
}

/// Data blob layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `{"value":[...]}`, as Graph pages and the Python sample's blobs.
    GraphPage,
    /// One record per line.
    Ndjson,
}

/// Data blob compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON.
    None,
    /// gzip, stored with `Content-Encoding: gzip`.
    Gzip,
}

/// Timing of incremental runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// How far back a first run starts.
    pub initial_lookback: Duration,
    /// A run never asks for records newer than now minus this.
    pub query_lag: Duration,
    /// Each run re-reads this much before its checkpoint.
    pub replay_window: Duration,
    /// `RECONCILE_INTERVAL`: how often a run also sweeps `reconcile_window` for late records.
    pub reconcile_interval: Duration,
    /// `RECONCILE_WINDOW`: how far back the sweep reaches; zero disables it.
    pub reconcile_window: Duration,
    /// `ACCEPT_LATE_RECORD_LOSS`: `query_lag` and `replay_window` may be zero.
    pub accept_late_record_loss: bool,
    /// A run stops starting new slices after this. Slices in flight then get [`grace`] more,
    /// and the final writes [`FINAL_WRITES`]: [`longest_run`] fits in `function_timeout`.
    pub run_time_budget: Duration,
    /// `FUNCTION_TIMEOUT`: the Functions host kills the handler process (every run in it) when
    /// an invocation lasts longer; `None` is no limit (`-1`).
    pub function_timeout: Option<Duration>,
    /// Width of one slice.
    pub slice_width: Duration,
    /// Write a later version of a record whose content differs.
    pub republish_updates: bool,
    /// The run lock's lease (15 to 60 s), renewed while the run goes.
    pub lock_lease: Duration,
    /// Slices fetched at once; `None` is automatic (twice the request budget, at most 10).
    pub parallel_slices: Option<u32>,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `json` when stderr is not a terminal, `pretty` when it is.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable at fault (or the variables, joined with `/`).
    pub variable: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Every problem found in the environment, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in variable order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration problem(s):", self.problems.len())?;
        for problem in &self.problems {
            write!(f, "\n  {}: {}", problem.variable, problem.message)?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from the given variables (the process environment in production,
    /// a map in tests). Empty values count as unset.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let mut p = Parser {
            env: &env,
            problems: Vec::new(),
        };

        let tenant_id = p.tenant_id();
        let cloud = p.choice("AZURE_CLOUD", Cloud::AzureUSGovernment, &Cloud::NAMES);
        let auth = p.auth(cloud);
        let graph_endpoint = p.endpoint("GRAPH_ENDPOINT", cloud.graph_endpoint());
        let api_version = p.choice(
            "GRAPH_API_VERSION",
            ApiVersion::V1,
            &[("v1.0", ApiVersion::V1), ("beta", ApiVersion::Beta)],
        );
        let scope = format!("{}/.default", graph_endpoint.as_str().trim_end_matches('/'));
        let graph = GraphConfig {
            endpoint: graph_endpoint,
            api_version,
            scope,
            max_requests_per_10s: p.number("GRAPH_MAX_REQUESTS_PER_10S", 5, 1, 1000),
            page_size: p.number("GRAPH_PAGE_SIZE", 1000, 1, 1000),
            max_attempts: p.number("GRAPH_MAX_ATTEMPTS", 6, 1, 100),
            request_timeout: p.duration(
                "GRAPH_REQUEST_TIMEOUT",
                "120s",
                Duration::from_secs(1),
                None,
            ),
            min_window: p.duration("GRAPH_MIN_WINDOW", "1m", Duration::from_secs(1), None),
            page_buffer: p.size("GRAPH_PAGE_BUFFER", "4MiB", 256 * 1024, 1024 * 1024 * 1024),
        };
        let storage = StorageConfig {
            target: p.storage_target(cloud),
            state_container: p.container("STATE_CONTAINER", "logs-state"),
            max_records_per_blob: p.number("MAX_RECORDS_PER_BLOB", 1000, 1, 1000) as usize,
            format: p.choice(
                "OUTPUT_FORMAT",
                OutputFormat::GraphPage,
                &[
                    ("graph-page", OutputFormat::GraphPage),
                    ("ndjson", OutputFormat::Ndjson),
                ],
            ),
            compression: p.choice(
                "OUTPUT_COMPRESSION",
                Compression::None,
                &[("none", Compression::None), ("gzip", Compression::Gzip)],
            ),
        };
        let run = RunConfig {
            initial_lookback: p.duration(
                "INITIAL_LOOKBACK",
                "7d",
                Duration::from_secs(60),
                Some(RETENTION),
            ),
            query_lag: p.duration(
                "QUERY_LAG",
                DEFAULT_QUERY_LAG,
                Duration::ZERO,
                Some(Duration::from_secs(24 * 3600)),
            ),
            replay_window: p.duration(
                "REPLAY_WINDOW",
                DEFAULT_REPLAY_WINDOW,
                Duration::ZERO,
                Some(Duration::from_secs(7 * 24 * 3600)),
            ),
            reconcile_interval: p.duration(
                "RECONCILE_INTERVAL",
                DEFAULT_RECONCILE_INTERVAL,
                Duration::ZERO,
                Some(Duration::from_secs(7 * 24 * 3600)),
            ),
            reconcile_window: p.duration(
                "RECONCILE_WINDOW",
                DEFAULT_RECONCILE_WINDOW,
                Duration::ZERO,
                Some(RETENTION),
            ),
            accept_late_record_loss: p.boolean("ACCEPT_LATE_RECORD_LOSS", false),
            run_time_budget: p.duration("RUN_TIME_BUDGET", "8m", Duration::from_secs(1), None),
            function_timeout: p.function_timeout(),
            slice_width: p.duration(
                "SLICE_WIDTH",
                "1h",
                Duration::from_secs(1),
                Some(Duration::from_secs(24 * 3600)),
            ),
            republish_updates: p.boolean("REPUBLISH_UPDATES", false),
            lock_lease: p.duration(
                "LOCK_LEASE",
                "60s",
                Duration::from_secs(15),
                Some(Duration::from_secs(60)),
            ),
            parallel_slices: match p.get("PARALLEL_SLICES").map(str::to_owned).as_deref() {
                None | Some("auto") => None,
                Some(_) => Some(p.number("PARALLEL_SLICES", 1, 1, 64)),
            },
        };
        p.late_records(&run);
        p.run_fits_function_timeout(&run);
        let jobs: Vec<JobSpecConfig> = JobKind::ALL
            .into_iter()
            .map(|kind| {
                let spec = kind.spec_template().clone();
                let container = p.container(spec.container_variable, spec.default_container);
                JobSpecConfig { spec, container }
            })
            .collect();
        p.distinct_containers(&jobs, &storage.state_container);
        let streams = Timer::ALL
            .into_iter()
            .flat_map(|timer| p.streams(timer))
            .collect();
        let log_format = p.choice(
            "LOG_FORMAT",
            LogFormat::Auto,
            &[
                ("auto", LogFormat::Auto),
                ("json", LogFormat::Json),
                ("pretty", LogFormat::Pretty),
            ],
        );
        let extra_ca_file = p.existing_file("EXTRA_CA_FILE");

        if p.problems.is_empty() {
            Ok(Config {
                tenant_id,
                cloud,
                auth,
                graph,
                storage,
                run,
                jobs,
                streams,
                log_format,
                extra_ca_file,
            })
        } else {
            Err(ConfigError {
                problems: p.problems,
            })
        }
    }

    /// The streams `timer` runs.
    pub fn timer_streams(&self, timer: Timer) -> Vec<JobKind> {
        self.streams
            .iter()
            .copied()
            .filter(|kind| kind.spec_template().timer == timer)
            .collect()
    }

    /// The job with this kind, with its container.
    pub fn job(&self, kind: JobKind) -> &JobSpecConfig {
        self.jobs
            .iter()
            .find(|job| job.spec.kind == kind)
            .expect("every job kind is configured")
    }

    /// The effective configuration as `VARIABLE=value` lines, secrets redacted, for
    /// `config check`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let secs = |d: Duration| format_duration(d);
        let mut lines = vec![
            ("AZURE_TENANT_ID".into(), self.tenant_id.clone()),
            ("AZURE_CLOUD".into(), self.cloud.name().into()),
            ("AUTH_MODE".into(), self.auth.mode.name().into()),
            (
                "AZURE_CLIENT_ID".into(),
                self.auth.client_id.clone().unwrap_or_else(|| UNSET.into()),
            ),
            (
                "AZURE_CLIENT_SECRET".into(),
                if self.auth.client_secret.is_some() {
                    REDACTED.into()
                } else {
                    UNSET.into()
                },
            ),
            (
                "AZURE_FEDERATED_TOKEN_FILE".into(),
                self.auth
                    .federated_token_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| UNSET.into()),
            ),
            (
                "AZURE_AUTHORITY_HOST".into(),
                redact_url(self.auth.authority_host.as_str()),
            ),
            (
                "GRAPH_ENDPOINT".into(),
                redact_url(self.graph.endpoint.as_str()),
            ),
            (
                "GRAPH_API_VERSION".into(),
                self.graph.api_version.as_str().into(),
            ),
        ];
        let (account_url, connection_string) = match &self.storage.target {
            StorageTarget::AccountUrl(url) => (redact_url(url.as_str()), UNSET.to_owned()),
            StorageTarget::ConnectionString(_) => (UNSET.to_owned(), REDACTED.to_owned()),
        };
        lines.push(("STORAGE_ACCOUNT_URL".into(), account_url));
        lines.push(("STORAGE_CONNECTION_STRING".into(), connection_string));
        for timer in Timer::ALL {
            let names: Vec<&str> = self
                .timer_streams(timer)
                .into_iter()
                .map(|kind| kind.spec_template().setting_name)
                .collect();
            lines.push((timer.setting().into(), names.join(",")));
        }
        for job in &self.jobs {
            lines.push((job.spec.container_variable.into(), job.container.clone()));
        }
        lines.extend([
            (
                "STATE_CONTAINER".into(),
                self.storage.state_container.clone(),
            ),
            ("INITIAL_LOOKBACK".into(), secs(self.run.initial_lookback)),
            ("QUERY_LAG".into(), secs(self.run.query_lag)),
            ("REPLAY_WINDOW".into(), secs(self.run.replay_window)),
            (
                "RECONCILE_INTERVAL".into(),
                secs(self.run.reconcile_interval),
            ),
            ("RECONCILE_WINDOW".into(), secs(self.run.reconcile_window)),
            (
                "ACCEPT_LATE_RECORD_LOSS".into(),
                self.run.accept_late_record_loss.to_string(),
            ),
            ("RUN_TIME_BUDGET".into(), secs(self.run.run_time_budget)),
            (
                "FUNCTION_TIMEOUT".into(),
                self.run
                    .function_timeout
                    .map_or_else(|| NO_FUNCTION_TIMEOUT.into(), secs),
            ),
            ("SLICE_WIDTH".into(), secs(self.run.slice_width)),
            (
                "GRAPH_MAX_REQUESTS_PER_10S".into(),
                self.graph.max_requests_per_10s.to_string(),
            ),
            ("GRAPH_PAGE_SIZE".into(), self.graph.page_size.to_string()),
            (
                "GRAPH_MAX_ATTEMPTS".into(),
                self.graph.max_attempts.to_string(),
            ),
            (
                "GRAPH_REQUEST_TIMEOUT".into(),
                secs(self.graph.request_timeout),
            ),
            ("GRAPH_MIN_WINDOW".into(), secs(self.graph.min_window)),
            (
                "GRAPH_PAGE_BUFFER".into(),
                format_size(self.graph.page_buffer),
            ),
            (
                "MAX_RECORDS_PER_BLOB".into(),
                self.storage.max_records_per_blob.to_string(),
            ),
            (
                "OUTPUT_FORMAT".into(),
                match self.storage.format {
                    OutputFormat::GraphPage => "graph-page".into(),
                    OutputFormat::Ndjson => "ndjson".into(),
                },
            ),
            (
                "OUTPUT_COMPRESSION".into(),
                match self.storage.compression {
                    Compression::None => "none".into(),
                    Compression::Gzip => "gzip".into(),
                },
            ),
            (
                "REPUBLISH_UPDATES".into(),
                self.run.republish_updates.to_string(),
            ),
            ("LOCK_LEASE".into(), secs(self.run.lock_lease)),
            (
                "PARALLEL_SLICES".into(),
                self.run
                    .parallel_slices
                    .map_or_else(|| "auto".into(), |n| n.to_string()),
            ),
            (
                "EXTRA_CA_FILE".into(),
                self.extra_ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| UNSET.into()),
            ),
            (
                "LOG_FORMAT".into(),
                match self.log_format {
                    LogFormat::Auto => "auto".into(),
                    LogFormat::Json => "json".into(),
                    LogFormat::Pretty => "pretty".into(),
                },
            ),
        ]);
        lines
    }
}

/// What `describe` prints for a variable that is not set.
pub const UNSET: &str = "(unset)";
/// `FUNCTION_TIMEOUT` (and host.json's `functionTimeout`) for no limit.
pub const NO_FUNCTION_TIMEOUT: &str = "-1";
/// Default `QUERY_LAG`: Microsoft's published 99th-percentile latency of audit and sign-in logs.
pub const DEFAULT_QUERY_LAG: &str = "5m";
/// Default `REPLAY_WINDOW`: the two hours MFA details may take to reach a sign-in.
pub const DEFAULT_REPLAY_WINDOW: &str = "2h";
/// Default `RECONCILE_INTERVAL`: four sweeps a day.
pub const DEFAULT_RECONCILE_INTERVAL: &str = "6h";
/// Default `RECONCILE_WINDOW`: a day, twelve times the longest published delay.
pub const DEFAULT_RECONCILE_WINDOW: &str = "24h";

/// Writes a size so that [`parse_size`] reads it back exactly: the largest IEC unit that divides
/// it (`4MiB`, `300KiB`), else bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Parses a size: a number of bytes, or a number and a unit (`512KiB`, `4MiB`, `8MB`; IEC units
/// are powers of 1024, SI units powers of 1000).
pub fn parse_size(text: &str) -> Option<u64> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .ok()
        .map(|size| size.as_u64())
}

/// Parses a duration written as a whole number and a unit: `90s`, `15m`, `2h`, `7d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(unit_secs).map(Duration::from_secs)
}

/// Parses `FUNCTION_TIMEOUT` or host.json's `functionTimeout`: a duration (`10m`), the host's
/// `[d.]hh:mm:ss` (`00:10:00`), or `-1` for no limit (`Some(None)`).
pub fn parse_function_timeout(text: &str) -> Option<Option<Duration>> {
    let text = text.trim();
    if text == NO_FUNCTION_TIMEOUT {
        return Some(None);
    }
    if let Some(duration) = parse_duration(text) {
        return Some(Some(duration));
    }
    let (days, clock) = match text.split_once('.') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return None;
    };
    let field = |t: &str, max: u64| {
        ((1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    let secs =
        days.checked_mul(86_400)? + field(h, 23)? * 3600 + field(m, 59)? * 60 + field(s, 59)?;
    Some(Some(Duration::from_secs(secs)))
}

/// Writes a duration for a problem message, in seconds with up to three decimals (`67.5s`).
fn seconds(duration: Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Writes a duration in the largest unit that divides it (`7d`, `90s`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Checks a container name against Azure's rules: 3 to 63 characters, lowercase letters,
/// digits and single hyphens, starting and ending with a letter or digit.
pub fn container_name_problem(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may contain only lowercase letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must start and end with a letter or digit");
    }
    if name.contains("--") {
        return Some("must not contain consecutive hyphens");
    }
    if name.starts_with("azure-webjobs-") || name.starts_with("$") {
        return Some("is reserved for the Functions host");
    }
    None
}

/// True for text shaped like a JSON Web Token (`eyJ…` and two dots): a token, not a setting.
fn looks_like_token(text: &str) -> bool {
    text.starts_with("eyJ") && text.matches('.').count() >= 2
}

struct Parser<'a> {
    env: &'a BTreeMap<String, String>,
    problems: Vec<Problem>,
}

impl Parser<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(|v| v.trim())
    }

    fn problem(&mut self, variable: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            variable: variable.into(),
            message: message.into(),
        });
    }

    fn tenant_id(&mut self) -> String {
        let Some(value) = self.get("AZURE_TENANT_ID").map(str::to_owned) else {
            self.problem(
                "AZURE_TENANT_ID",
                "is required: the tenant id (a GUID) or its primary domain (contoso.onmicrosoft.us)",
            );
            return String::new();
        };
        let is_guid = uuid::Uuid::try_parse(&value).is_ok();
        let is_domain = value.contains('.')
            && value.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !is_guid && !is_domain {
            self.problem(
                "AZURE_TENANT_ID",
                format!(
                    "{} is neither a GUID nor a domain name such as contoso.onmicrosoft.us",
                    shown(&value)
                ),
            );
        }
        value
    }

    fn choice<T: Copy>(&mut self, name: &str, default: T, allowed: &[(&str, T)]) -> T {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        if let Some((_, t)) = allowed.iter().find(|(n, _)| n.eq_ignore_ascii_case(&value)) {
            return *t;
        }
        let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
        self.problem(
            name,
            format!("{} is not one of: {}", shown(&value), names.join(", ")),
        );
        default
    }

    fn number(&mut self, name: &str, default: u32, min: u32, max: u32) -> u32 {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        match value.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(
                    name,
                    format!(
                        "{} must be a whole number from {min} to {max}",
                        shown(&value)
                    ),
                );
                default
            }
        }
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(value) = self.get(name).map(str::to_owned) else {
            return default;
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                self.problem(name, format!("{} must be true or false", shown(&value)));
                default
            }
        }
    }

    /// A size such as `4MiB`, `512KiB`, `8MB` or a number of bytes.
    fn size(&mut self, name: &str, default: &str, min: u64, max: u64) -> u64 {
        let fallback = parse_size(default).expect("defaults are valid sizes");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        match parse_size(&value) {
            Some(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(
                    name,
                    format!(
                        "{} must be a size from {} to {} (for example `4MiB`, `512KiB` or a number of bytes)",
                        shown(&value),
                        bytesize::ByteSize::b(min).display().iec_short(),
                        bytesize::ByteSize::b(max).display().iec_short()
                    ),
                );
                fallback
            }
        }
    }

    fn duration(
        &mut self,
        name: &str,
        default: &str,
        min: Duration,
        max: Option<Duration>,
    ) -> Duration {
        let fallback = parse_duration(default).expect("defaults are valid durations");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        let range = match max {
            Some(max) => format!("from {} to {}", format_duration(min), format_duration(max)),
            None => format!("of at least {}", format_duration(min)),
        };
        match parse_duration(&value) {
            Some(d) if d >= min && max.is_none_or(|max| d <= max) => d,
            Some(_) => {
                self.problem(
                    name,
                    format!("{} is out of range: use a duration {range}", shown(&value)),
                );
                fallback
            }
            None => {
                self.problem(
                    name,
                    format!("{} is not a duration: write a whole number and s, m, h or d (90s, 15m, 2h, 7d), {range}", shown(&value)),
                );
                fallback
            }
        }
    }

    fn endpoint(&mut self, name: &str, default: &str) -> Url {
        let fallback = Url::parse(default).expect("cloud endpoints are valid URLs");
        let Some(value) = self.get(name).map(str::to_owned) else {
            return fallback;
        };
        let shown = shown_url(&value);
        match Url::parse(&value) {
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
                if url.query().is_some()
                    || url.fragment().is_some()
                    || !url.username().is_empty()
                    || url.password().is_some()
                    || !plain_host(&url)
                {
                    self.problem(
                        name,
                        format!(
                            "{shown} must be a plain root URL: a host name, without query, fragment, user or password"
                        ),
                    );
                }
                url
            }
            Ok(url) if url.scheme() == "http" => {
                self.problem(
                    name,
                    format!(
                        "{shown} uses plain http, allowed only for loopback addresses: use https"
                    ),
                );
                fallback
            }
            _ => {
                self.problem(name, format!("{shown} is not an https URL"));
                fallback
            }
        }
    }

    /// `FUNCTION_TIMEOUT`, by default host.json's `functionTimeout`.
    fn function_timeout(&mut self) -> Option<Duration> {
        let fallback = host_function_timeout();
        let Some(value) = self.get("FUNCTION_TIMEOUT").map(str::to_owned) else {
            return fallback;
        };
        match parse_function_timeout(&value) {
            Some(Some(timeout)) if timeout >= Duration::from_secs(1) => Some(timeout),
            Some(None) => None,
            _ => {
                self.problem(
                    "FUNCTION_TIMEOUT",
                    format!(
                        "{} is not a timeout: write the Functions host's functionTimeout as a duration \
                         (10m), as in host.json (00:10:00), or -1 for none",
                        shown(&value)
                    ),
                );
                fallback
            }
        }
    }

    /// Refuses `QUERY_LAG=0s` and `REPLAY_WINDOW=0s` unless `ACCEPT_LATE_RECORD_LOSS=true`.
    fn late_records(&mut self, run: &RunConfig) {
        if run.accept_late_record_loss {
            return;
        }
        const LATENCY: &str = "Microsoft's published latency for audit and sign-in logs is 2 min \
                               at the 95th percentile and 5 min at the 99th, and MFA details may \
                               take up to two hours to reach a sign-in";
        if run.query_lag.is_zero() {
            self.problem(
                "QUERY_LAG",
                format!(
                    "`0s` asks Graph for records it has not published yet ({LATENCY}): records \
                     that arrive late are then caught only by REPLAY_WINDOW and lost past it. Use \
                     a few minutes ({DEFAULT_QUERY_LAG}, the default), or set \
                     ACCEPT_LATE_RECORD_LOSS=true if losing late records is intended (a simulator \
                     that publishes at once)"
                ),
            );
        }
        if run.replay_window.is_zero() {
            self.problem(
                "REPLAY_WINDOW",
                format!(
                    "`0s` never re-reads before the checkpoint, so every record Graph publishes \
                     after a run has passed its time is lost ({LATENCY}). Use \
                     {DEFAULT_REPLAY_WINDOW} (the default), or set ACCEPT_LATE_RECORD_LOSS=true \
                     if losing late records is intended (a simulator that publishes at once)"
                ),
            );
        }
    }

    /// Refuses a `RUN_TIME_BUDGET` whose [`longest_run`] does not fit in `FUNCTION_TIMEOUT`.
    fn run_fits_function_timeout(&mut self, run: &RunConfig) {
        let Some(timeout) = run.function_timeout else {
            return;
        };
        let already = |v: &str| self.problems.iter().any(|p| p.variable == v);
        if already("RUN_TIME_BUDGET") || already("FUNCTION_TIMEOUT") {
            return;
        }
        let budget = run.run_time_budget;
        let total = longest_run(budget);
        if total <= timeout {
            return;
        }
        // The largest whole-second budget that fits.
        let mut fits = timeout
            .saturating_sub(FINAL_WRITES)
            .as_secs()
            .saturating_mul(8)
            / 9;
        while fits > 0 && longest_run(Duration::from_secs(fits)) > timeout {
            fits -= 1;
        }
        let fix = if fits == 0 {
            format!(
                "raise FUNCTION_TIMEOUT above {}",
                seconds(FINAL_WRITES + Duration::from_secs(1))
            )
        } else {
            format!(
                "lower RUN_TIME_BUDGET to at most {}",
                format_duration(Duration::from_secs(fits))
            )
        };
        self.problem(
            "RUN_TIME_BUDGET/FUNCTION_TIMEOUT",
            format!(
                "a run can take RUN_TIME_BUDGET {} + {} of grace for slices in flight (an eighth \
                 of the budget) + {} of final writes = {}, more than FUNCTION_TIMEOUT {} \
                 ({}): the Functions host would kill the process mid-run, and the other job's run \
                 with it. Either {fix}, or raise the host's functionTimeout (host.json, or the app \
                 setting AzureFunctionsJobHost__functionTimeout; at most 00:10:00 on Consumption) \
                 and FUNCTION_TIMEOUT with it",
                format_duration(budget),
                seconds(grace(budget)),
                seconds(FINAL_WRITES),
                seconds(total),
                format_duration(timeout),
                seconds(timeout),
            ),
        );
    }

    fn auth(&mut self, cloud: Cloud) -> AuthConfig {
        let client_id = self.get("AZURE_CLIENT_ID").map(str::to_owned);
        let client_secret = self
            .get("AZURE_CLIENT_SECRET")
            .map(|s| SecretString::from(s.to_owned()));
        let federated_token_file = self.get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from);
        self.secret_shapes(
            client_id.as_deref(),
            client_secret.as_ref().map(expose),
            federated_token_file.as_deref(),
        );
        let authority_host = self.endpoint("AZURE_AUTHORITY_HOST", cloud.authority_host());
        if authority_host.scheme() != "https" {
            self.problem(
                "AZURE_AUTHORITY_HOST",
                "must use https, even on loopback: the Azure SDK refuses plain-http authorities",
            );
        }
        let requested = self.get("AUTH_MODE").map(str::to_ascii_lowercase);
        let mode = match requested.as_deref() {
            None | Some("auto") => {
                if client_secret.is_some() {
                    Some(AuthMode::ClientSecret)
                } else if federated_token_file.is_some() {
                    Some(AuthMode::WorkloadIdentity)
                } else if self.get("IDENTITY_ENDPOINT").is_some() {
                    Some(AuthMode::ManagedIdentity)
                } else {
                    self.problem(
                        "AUTH_MODE",
                        "`auto` found no credential: set AZURE_CLIENT_SECRET (with AZURE_CLIENT_ID), \
                         AZURE_FEDERATED_TOKEN_FILE, or run where IDENTITY_ENDPOINT is set (a Function App \
                         with a managed identity); for local use set AUTH_MODE=azure_cli",
                    );
                    None
                }
            }
            Some("managed_identity") => Some(AuthMode::ManagedIdentity),
            Some("client_secret") => Some(AuthMode::ClientSecret),
            Some("workload_identity") => Some(AuthMode::WorkloadIdentity),
            Some("azure_cli") => Some(AuthMode::AzureCli),
            Some(other) => {
                self.problem(
                    "AUTH_MODE",
                    format!("{} is not one of: auto, managed_identity, client_secret, workload_identity, azure_cli", shown(other)),
                );
                None
            }
        };
        match mode {
            Some(AuthMode::ClientSecret) => {
                if client_id.is_none() {
                    self.problem(
                        "AZURE_CLIENT_ID",
                        "is required with client_secret authentication",
                    );
                }
                if client_secret.is_none() {
                    self.problem(
                        "AZURE_CLIENT_SECRET",
                        "is required with client_secret authentication",
                    );
                }
            }
            Some(AuthMode::WorkloadIdentity) => {
                if client_id.is_none() {
                    self.problem(
                        "AZURE_CLIENT_ID",
                        "is required with workload_identity authentication",
                    );
                }
                if federated_token_file.is_none() {
                    self.problem(
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "is required with workload_identity authentication",
                    );
                }
            }
            _ => {}
        }
        AuthConfig {
            mode: mode.unwrap_or(AuthMode::ManagedIdentity),
            client_id,
            client_secret,
            federated_token_file,
            authority_host,
        }
    }

    /// Catches a secret in the wrong place or pasted badly, without ever showing it: a client id
    /// is a GUID (or a name of letters, digits, `-`, `_`, `.`), a client secret is one line, and
    /// the federated token file is a path, not the token.
    fn secret_shapes(
        &mut self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        federated_token_file: Option<&std::path::Path>,
    ) {
        if let Some(id) = client_id
            && !(id.len() <= 64
                && !looks_like_token(id)
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        {
            self.problem(
                "AZURE_CLIENT_ID",
                format!(
                    "{NOT_SHOWN} is not a client id: set the application (client) id, a GUID; \
                     the secret goes in AZURE_CLIENT_SECRET"
                ),
            );
        }
        if let Some(secret) = client_secret
            && secret.chars().any(char::is_control)
        {
            self.problem(
                "AZURE_CLIENT_SECRET",
                "contains a line break or another control character, which a client secret never \
                 has (the value is not shown): copy the secret's value again, on one line",
            );
        }
        if let Some(path) = federated_token_file {
            let text = path.to_string_lossy();
            let path_like = text.chars().all(|c| {
                c.is_alphanumeric() || matches!(c, '/' | '\\' | '.' | '-' | '_' | ':' | ' ')
            });
            if looks_like_token(&text) || !path_like {
                self.problem(
                    "AZURE_FEDERATED_TOKEN_FILE",
                    format!(
                        "{NOT_SHOWN} is not a file path: set the path of the file that holds the \
                         federated token, not the token"
                    ),
                );
            }
        }
    }

    fn storage_target(&mut self, cloud: Cloud) -> StorageTarget {
        let url = self.get("STORAGE_ACCOUNT_URL").map(str::to_owned);
        let connection = self.get("STORAGE_CONNECTION_STRING").map(str::to_owned);
        match (url, connection) {
            (Some(_), Some(_)) | (None, None) => {
                self.problem(
                    "STORAGE_ACCOUNT_URL/STORAGE_CONNECTION_STRING",
                    format!(
                        "exactly one must be set: STORAGE_ACCOUNT_URL=https://<account>.blob.{} (token auth) \
                         or STORAGE_CONNECTION_STRING with an account key (UseDevelopmentStorage=true for Azurite)",
                        cloud.storage_suffix()
                    ),
                );
                StorageTarget::ConnectionString(SecretString::from(String::new()))
            }
            (Some(value), None) => {
                let shown = shown_url(&value);
                match Url::parse(&value) {
                    Ok(url)
                        if url.scheme() == "https"
                            && plain_host(&url)
                            && url.query().is_none()
                            && url.fragment().is_none()
                            && url.username().is_empty()
                            && url.password().is_none() =>
                    {
                        StorageTarget::AccountUrl(url)
                    }
                    Ok(url) if url.scheme() == "http" => {
                        self.problem(
                            "STORAGE_ACCOUNT_URL",
                            format!(
                                "{shown} uses plain http: token auth needs https{}",
                                if is_loopback(&url) {
                                    "; for Azurite over http use STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true"
                                } else {
                                    ""
                                }
                            ),
                        );
                        StorageTarget::AccountUrl(url)
                    }
                    _ => {
                        self.problem(
                            "STORAGE_ACCOUNT_URL",
                            format!(
                                "{shown} is not an account URL such as https://<account>.blob.{} \
                                 (no user or password, no query string or SAS: the managed identity \
                                 or AUTH_MODE credential signs in)",
                                cloud.storage_suffix()
                            ),
                        );
                        StorageTarget::ConnectionString(SecretString::from(String::new()))
                    }
                }
            }
            (None, Some(value)) => {
                if let Err(message) = crate::storage::connection::check_connection_string(&value) {
                    self.problem("STORAGE_CONNECTION_STRING", message);
                }
                StorageTarget::ConnectionString(SecretString::from(value))
            }
        }
    }

    fn container(&mut self, name: &str, default: &str) -> String {
        let value = self.get(name).unwrap_or(default).to_owned();
        if let Some(rule) = container_name_problem(&value) {
            self.problem(
                name,
                format!("{} is not a valid container name: it {rule}", shown(&value)),
            );
        }
        value
    }

    /// The streams a timer runs: its setting's comma-separated names, or the streams on by
    /// default; an empty value runs none.
    fn streams(&mut self, timer: Timer) -> Vec<JobKind> {
        let variable = timer.setting();
        let Some(value) = self.get(variable).map(str::to_owned) else {
            return timer
                .streams()
                .filter(|kind| kind.spec_template().default_on)
                .collect();
        };
        let mut streams = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match JobKind::from_setting_name(timer, name) {
                Some(kind) if !streams.contains(&kind) => streams.push(kind),
                Some(_) => {}
                None => {
                    let allowed: Vec<&str> = timer
                        .streams()
                        .map(|kind| kind.spec_template().setting_name)
                        .collect();
                    self.problem(
                        variable,
                        format!(
                            "{} is not a stream of {}: use a comma-separated list of {}",
                            shown(name),
                            timer.function_name(),
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        streams.sort();
        streams
    }

    fn distinct_containers(&mut self, jobs: &[JobSpecConfig], state: &str) {
        let mut seen: Vec<(&str, &str)> = vec![(state, "STATE_CONTAINER")];
        for job in jobs {
            if let Some((_, other)) = seen.iter().find(|(c, _)| *c == job.container) {
                let message = format!(
                    "{} is also used by {other}: every job needs a container of its own",
                    shown(&job.container)
                );
                self.problem(job.spec.container_variable, message);
            }
            seen.push((&job.container, job.spec.container_variable));
        }
    }

    fn existing_file(&mut self, name: &str) -> Option<PathBuf> {
        let path = PathBuf::from(self.get(name)?);
        if !path.is_file() {
            let shown = shown(&path.to_string_lossy());
            self.problem(name, format!("{shown} is not a readable file"));
        }
        Some(path)
    }
}

/// Keeps a secret out of `Debug` and `Display` while letting the owner read it.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-value-that-must-not-leak";

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("AZURE_CLIENT_SECRET", SECRET),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.usgovcloudapi.net",
            ),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut vars = minimal();
        for (name, value) in extra {
            vars.retain(|(n, _)| n != name);
            vars.push((name, value));
        }
        Config::from_vars(vars)
    }

    fn problem_variables(result: Result<Config, ConfigError>) -> Vec<String> {
        result
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.variable)
            .collect()
    }

    #[test]
    fn defaults_are_azure_government_and_the_documented_values() {
        let config = with(&[]).unwrap();
        assert_eq!(config.cloud, Cloud::AzureUSGovernment);
        assert_eq!(config.auth.mode, AuthMode::ClientSecret);
        assert_eq!(
            config.auth.authority_host.as_str(),
            "https://login.microsoftonline.us/"
        );
        assert_eq!(
            config.graph.endpoint.as_str(),
            "https://graph.microsoft.us/"
        );
        assert_eq!(config.graph.scope, "https://graph.microsoft.us/.default");
        assert_eq!(config.graph.api_version, ApiVersion::V1);
        assert_eq!(config.graph.max_requests_per_10s, 5);
        assert_eq!(config.graph.page_size, 1000);
        assert_eq!(config.run.initial_lookback, Duration::from_secs(7 * 86_400));
        assert_eq!(config.run.query_lag, Duration::from_secs(300));
        assert_eq!(config.run.replay_window, Duration::from_secs(7200));
        assert!(!config.run.accept_late_record_loss);
        assert_eq!(config.run.run_time_budget, Duration::from_secs(480));
        assert_eq!(config.run.function_timeout, Some(Duration::from_secs(600)));
        assert!(!config.run.republish_updates);
        assert_eq!(config.job(JobKind::Audit).container, "logs-audit");
        assert_eq!(config.job(JobKind::SignIn).container, "logs-signin");
        assert_eq!(config.storage.state_container, "logs-state");
        assert_eq!(config.storage.format, OutputFormat::GraphPage);
        assert_eq!(config.storage.compression, Compression::None);
        assert_eq!(config.log_format, LogFormat::Auto);
    }

    #[test]
    fn each_cloud_sets_its_endpoints() {
        let config = with(&[("AZURE_CLOUD", "AzureUSGovernmentDoD")]).unwrap();
        assert_eq!(
            config.graph.scope,
            "https://dod-graph.microsoft.us/.default"
        );
        let config = with(&[("AZURE_CLOUD", "AzurePublic")]).unwrap();
        assert_eq!(
            config.auth.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(config.graph.scope, "https://graph.microsoft.com/.default");
        let config = with(&[("AZURE_CLOUD", "AzureChina")]).unwrap();
        assert_eq!(config.cloud.storage_suffix(), "core.chinacloudapi.cn");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("AZURE_TENANT_ID", "not a tenant"),
            ("AZURE_CLOUD", "AzureMoon"),
            ("AUTH_MODE", "password"),
            ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
            ("GRAPH_ENDPOINT", "http://graph.example.com"),
            ("GRAPH_ENDPOINT", "ftp://graph"),
            ("GRAPH_API_VERSION", "v2"),
            ("STORAGE_ACCOUNT_URL", "http://logs.blob.core.windows.net"),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.windows.net/?sv=x&sig=y",
            ),
            ("AUDIT_CONTAINER", "Logs_Audit"),
            ("SIGNIN_CONTAINER", "ab"),
            ("STATE_CONTAINER", "-state"),
            ("INITIAL_LOOKBACK", "31d"),
            ("INITIAL_LOOKBACK", "7 days"),
            ("QUERY_LAG", "-2m"),
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "1w"),
            ("REPLAY_WINDOW", "0s"),
            ("ACCEPT_LATE_RECORD_LOSS", "maybe"),
            ("RUN_TIME_BUDGET", "0s"),
            ("RUN_TIME_BUDGET", "10m"),
            ("FUNCTION_TIMEOUT", "5m"),
            ("FUNCTION_TIMEOUT", "00:61:00"),
            ("FUNCTION_TIMEOUT", "0s"),
            ("FUNCTION_TIMEOUT", "soon"),
            ("AZURE_CLIENT_ID", "Abc8Q~not-an-id"),
            ("AZURE_CLIENT_SECRET", "two\nlines"),
            ("AZURE_FEDERATED_TOKEN_FILE", "eyJhbGciOi.eyJzdWIiOi.c2ln"),
            (
                "STORAGE_ACCOUNT_URL",
                "https://user:pw@logs.blob.core.windows.net",
            ),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.windows.net/#sig=y",
            ),
            ("GRAPH_ENDPOINT", "https://:pw@graph.example.com"),
            ("SLICE_WIDTH", "2d"),
            ("GRAPH_MAX_REQUESTS_PER_10S", "0"),
            ("GRAPH_PAGE_SIZE", "1001"),
            ("GRAPH_MAX_ATTEMPTS", "many"),
            ("GRAPH_REQUEST_TIMEOUT", "0s"),
            ("GRAPH_MIN_WINDOW", "1"),
            ("GRAPH_PAGE_BUFFER", "1KiB"),
            ("GRAPH_PAGE_BUFFER", "lots"),
            ("MAX_RECORDS_PER_BLOB", "0"),
            ("MAX_RECORDS_PER_BLOB", "5000"),
            ("OUTPUT_FORMAT", "csv"),
            ("OUTPUT_COMPRESSION", "zstd"),
            ("REPUBLISH_UPDATES", "maybe"),
            ("LOCK_LEASE", "5m"),
            ("PARALLEL_SLICES", "0"),
            ("PARALLEL_SLICES", "many"),
            ("EXTRA_CA_FILE", "/nonexistent/ca.pem"),
            ("LOG_FORMAT", "xml"),
        ];
        for (name, value) in cases {
            let variables = problem_variables(with(&[(name, value)]));
            assert!(
                variables.iter().any(|v| v.contains(name)),
                "{name}={value} gave problems for {variables:?}"
            );
        }
    }

    #[test]
    fn problems_are_reported_together() {
        let error = Config::from_vars([
            ("AZURE_CLOUD", "AzureMoon"),
            ("GRAPH_PAGE_SIZE", "5000"),
            ("QUERY_LAG", "soon"),
        ])
        .unwrap_err();
        let variables: Vec<_> = error.problems.iter().map(|p| p.variable.as_str()).collect();
        for expected in [
            "AZURE_TENANT_ID",
            "AZURE_CLOUD",
            "AUTH_MODE",
            "GRAPH_PAGE_SIZE",
            "QUERY_LAG",
            "STORAGE_ACCOUNT_URL/STORAGE_CONNECTION_STRING",
        ] {
            assert!(
                variables.contains(&expected),
                "{expected} missing from {variables:?}"
            );
        }
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "{} configuration problem(s):",
                error.problems.len()
            )),
            "{text}"
        );
        assert!(
            text.contains("QUERY_LAG: `soon` is not a duration"),
            "{text}"
        );
    }

    #[test]
    fn auto_picks_the_credential_from_the_environment() {
        let base = [
            ("AZURE_TENANT_ID", "contoso.onmicrosoft.us"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ];
        let mi = Config::from_vars(
            base.iter()
                .copied()
                .chain([("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")]),
        )
        .unwrap();
        assert_eq!(mi.auth.mode, AuthMode::ManagedIdentity);
        let wi = Config::from_vars(base.iter().copied().chain([
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_ID", "x"),
        ]))
        .unwrap();
        assert_eq!(wi.auth.mode, AuthMode::WorkloadIdentity);
        let none = problem_variables(Config::from_vars(base));
        assert_eq!(none, vec!["AUTH_MODE"]);
        let cli =
            Config::from_vars(base.iter().copied().chain([("AUTH_MODE", "azure_cli")])).unwrap();
        assert_eq!(cli.auth.mode, AuthMode::AzureCli);
    }

    #[test]
    fn client_secret_mode_needs_both_halves() {
        let variables = problem_variables(with(&[
            ("AUTH_MODE", "client_secret"),
            ("AZURE_CLIENT_SECRET", ""),
        ]));
        assert_eq!(variables, vec!["AZURE_CLIENT_SECRET"]);
    }

    #[test]
    fn exactly_one_storage_target() {
        let variables = problem_variables(with(&[(
            "STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true",
        )]));
        assert_eq!(
            variables,
            vec!["STORAGE_ACCOUNT_URL/STORAGE_CONNECTION_STRING"]
        );
        let config = with(&[
            ("STORAGE_ACCOUNT_URL", ""),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert!(matches!(
            config.storage.target,
            StorageTarget::ConnectionString(_)
        ));
    }

    #[test]
    fn plain_http_is_allowed_only_on_loopback() {
        let config = with(&[("GRAPH_ENDPOINT", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(config.graph.scope, "http://127.0.0.1:8080/.default");
        assert!(with(&[("GRAPH_ENDPOINT", "http://localhost:8080")]).is_ok());
        assert!(with(&[("GRAPH_ENDPOINT", "http://[::1]:8080")]).is_ok());
        assert!(with(&[("GRAPH_ENDPOINT", "http://10.0.0.1:8080")]).is_err());
    }

    #[test]
    fn containers_must_differ() {
        let variables = problem_variables(with(&[("SIGNIN_CONTAINER", "logs-audit")]));
        assert_eq!(variables, vec!["SIGNIN_CONTAINER"]);
    }

    #[test]
    fn sizes_parse_in_iec_and_si_units() {
        assert_eq!(parse_size("4MiB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_size("512 KiB"), Some(512 * 1024));
        assert_eq!(parse_size("8MB"), Some(8_000_000));
        assert_eq!(parse_size("1048576"), Some(1_048_576));
        for bad in ["", "MiB", "4 parsecs", "-1MiB"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        let config = with(&[("GRAPH_PAGE_BUFFER", "16MiB")]).unwrap();
        assert_eq!(config.graph.page_buffer, 16 * 1024 * 1024);
        assert_eq!(with(&[]).unwrap().graph.page_buffer, 4 * 1024 * 1024);
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        for bad in [
            "",
            "7",
            "d",
            "1.5h",
            "-1m",
            "7days",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    /// `config check` lines fed back as the environment (unset lines dropped, redacted secrets
    /// put back by the operator) give the same configuration.
    fn reads_back(vars: &[(&'static str, &'static str)]) {
        let config = with(vars).unwrap();
        let lines = config.describe();
        let secrets: BTreeMap<&str, &str> =
            minimal().into_iter().chain(vars.iter().copied()).collect();
        let again: Vec<(String, String)> = lines
            .iter()
            .filter(|(_, value)| value != UNSET)
            .map(|(name, value)| {
                let value = if value.contains(REDACTED) {
                    secrets[name.as_str()].to_owned()
                } else {
                    value.clone()
                };
                (name.clone(), value)
            })
            .collect();
        let reread = Config::from_vars(again).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reread.describe(), lines);
        assert_eq!(format!("{reread:?}"), format!("{config:?}"));
    }

    #[test]
    fn config_check_output_reads_back_to_the_same_configuration() {
        reads_back(&[]);
        reads_back(&[
            ("GRAPH_PAGE_BUFFER", "4MiB"),
            ("LOG_FORMAT", "json"),
            ("PARALLEL_SLICES", "3"),
            ("OUTPUT_FORMAT", "ndjson"),
            ("OUTPUT_COMPRESSION", "gzip"),
            ("REPLAY_WINDOW", "90s"),
            ("AZURE_CLOUD", "AzurePublic"),
        ]);
        reads_back(&[
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "0s"),
            ("ACCEPT_LATE_RECORD_LOSS", "true"),
            ("RUN_TIME_BUDGET", "2h"),
            ("FUNCTION_TIMEOUT", "-1"),
        ]);
        reads_back(&[("RUN_TIME_BUDGET", "20m"), ("FUNCTION_TIMEOUT", "00:30:00")]);
        reads_back(&[("GRAPH_PAGE_BUFFER", "300KiB"), ("LOG_FORMAT", "pretty")]);
        reads_back(&[("GRAPH_PAGE_BUFFER", "1000000")]);
        reads_back(&[
            ("STORAGE_ACCOUNT_URL", ""),
            (
                "STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.usgovcloudapi.net",
            ),
            ("AUTH_MODE", "workload_identity"),
            ("AZURE_CLIENT_SECRET", ""),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token"),
        ]);
    }

    #[test]
    fn every_documented_variable_is_described() {
        let config = with(&[]).unwrap();
        let described: Vec<String> = config.describe().into_iter().map(|(n, _)| n).collect();
        let documented = include_str!("config.rs")
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .filter_map(|line| line.strip_prefix("//! | `"))
            .flat_map(|line| {
                let names = line.split(" | ").next().unwrap_or("");
                names
                    .split(", ")
                    .map(|n| n.trim_matches('`').to_owned())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        assert!(documented.len() > 25, "{documented:?}");
        for name in documented {
            assert!(
                described.contains(&name),
                "`config check` leaves out {name}"
            );
        }
    }

    #[test]
    fn sizes_print_so_that_they_read_back() {
        assert_eq!(format_size(4 << 20), "4MiB");
        assert_eq!(parse_size(&format_size(300 << 10)), Some(300 << 10));
        assert_eq!(parse_size(&format_size(1_000_001)), Some(1_000_001));
    }

    #[test]
    fn secrets_never_show_in_debug_or_describe() {
        let config = with(&[]).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
        let described = format!("{:?}", config.describe());
        assert!(!described.contains(SECRET));
        assert!(described.contains("[REDACTED]"));
        let connection = "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.usgovcloudapi.net";
        let config = with(&[
            ("STORAGE_ACCOUNT_URL", ""),
            ("STORAGE_CONNECTION_STRING", connection),
        ])
        .unwrap();
        assert!(!format!("{config:?}").contains("c2VjcmV0a2V5"));
        assert!(!format!("{:?}", config.describe()).contains("c2VjcmV0a2V5"));
    }

    /// Values that carry the marker the way secrets reach the wrong place: a SAS, an account
    /// key, URL user information, a client secret, a second line, a connection string with
    /// the wrong separator.
    const MARKED: &[&str] = &[
        "https://logs.blob.core.windows.net/?sv=2024-08-04&sig=MARKER%3D",
        "https://logs.blob.core.windows.net/#sig=MARKER",
        "https://user:MARKER@logs.blob.core.windows.net/",
        "https://:MARKER@graph.example.com",
        "http://user:MARKER@10.0.0.1:8080",
        "http://user:MARKER@127.0.0.1:8080/?sig=MARKER",
        "ftp://user:MARKER@graph.example.com",
        "user:MARKER@graph.example.com",
        "https://graph.example.com;sig=MARKER/",
        "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=MARKER",
        "AccountName=logs,AccountKey=MARKER==",
        "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://logs.blob.core.windows.net/?sv=1&sig=MARKER",
        "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://user:MARKER@logs.blob.core.windows.net",
        "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=http://user:MARKER@logs.example",
        "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=MARKER@logs",
        "AccountName=logs;AccountKey=TUFSS0VS;EndpointSuffix=core.windows.net/?sig=MARKER",
        "UseDevelopmentStorage=true;BlobEndpoint=http://user:MARKER@127.0.0.1:10000/devstoreaccount1",
        "UseDevelopmentStorage=true,AccountKey=MARKER",
        "SharedAccessSignature=sv=2024&sig=MARKER",
        "Abc8Q~MARKER.value_of_a_client_secret",
        "MARKER\nMARKER",
        "first line\nMARKER",
        "2m\nsig=MARKER",
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJhcGk6Ly9BenVyZUFEVG9rZW5FeGNoYW5nZSIsInN1YiI6Ik1BUktFUiJ9.MARKER",
        "x;sig=MARKER",
    ];

    /// Everything a configuration error or a configuration can be shown as.
    fn every_rendering(result: &Result<Config, ConfigError>) -> String {
        match result {
            Ok(config) => format!("{config:?}\n{:?}", config.describe()),
            Err(error) => format!("{error}\n{error:?}"),
        }
    }

    #[test]
    fn no_variable_echoes_a_secret_in_problems_debug_or_describe() {
        let names: Vec<String> = with(&[])
            .unwrap()
            .describe()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.contains(&"STORAGE_CONNECTION_STRING".to_owned()));
        for name in &names {
            for value in MARKED {
                let mut vars = minimal();
                vars.retain(|(n, _)| n != name);
                if name == "STORAGE_CONNECTION_STRING" {
                    // Exactly one storage target: the connection string is parsed only alone.
                    vars.retain(|(n, _)| *n != "STORAGE_ACCOUNT_URL");
                }
                let mut vars: Vec<(String, String)> = vars
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                vars.push((name.clone(), (*value).to_owned()));
                let result = Config::from_vars(vars);
                let text = every_rendering(&result);
                assert!(
                    !text.to_ascii_lowercase().contains("marker"),
                    "{name}={value:?} shows its value:\n{text}"
                );
            }
        }
    }

    #[test]
    fn secret_carrying_values_fail_with_a_redacted_problem() {
        // (variable, value, the problem's variable, what the message shows instead)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.windows.net/?sv=2024&sig=MARKER",
                "STORAGE_ACCOUNT_URL",
                "`https://logs.blob.core.windows.net/?[REDACTED]` is not an account URL",
            ),
            (
                "STORAGE_ACCOUNT_URL",
                "https://user:MARKER@logs.blob.core.windows.net",
                "STORAGE_ACCOUNT_URL",
                "`https://[REDACTED]@logs.blob.core.windows.net/`",
            ),
            (
                "STORAGE_ACCOUNT_URL",
                "http://user:MARKER@logs.blob.core.windows.net/?sig=MARKER",
                "STORAGE_ACCOUNT_URL",
                "`http://[REDACTED]@logs.blob.core.windows.net/?[REDACTED]` uses plain http",
            ),
            (
                "GRAPH_ENDPOINT",
                "https://user:MARKER@graph.example.com",
                "GRAPH_ENDPOINT",
                "`https://[REDACTED]@graph.example.com/` must be a plain root URL",
            ),
            (
                "GRAPH_ENDPOINT",
                "https://:MARKER@graph.example.com",
                "GRAPH_ENDPOINT",
                "without query, fragment, user or password",
            ),
            (
                "AZURE_AUTHORITY_HOST",
                "https://login.example.com/?client_secret=MARKER",
                "AZURE_AUTHORITY_HOST",
                "`https://login.example.com/?[REDACTED]`",
            ),
            (
                "AZURE_AUTHORITY_HOST",
                "user:MARKER@login.example.com",
                "AZURE_AUTHORITY_HOST",
                "(value not shown: it may hold a secret) is not an https URL",
            ),
            (
                "AZURE_CLIENT_SECRET",
                "MARKER\nMARKER",
                "AZURE_CLIENT_SECRET",
                "contains a line break",
            ),
            (
                "AZURE_CLIENT_ID",
                "Abc8Q~MARKER",
                "AZURE_CLIENT_ID",
                "(value not shown: it may hold a secret) is not a client id",
            ),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "eyJhbGciOiJSUzI1NiJ9.eyJNQVJLRVIiOjF9.MARKER",
                "AZURE_FEDERATED_TOKEN_FILE",
                "not the token",
            ),
            (
                "AZURE_TENANT_ID",
                "Abc8Q~MARKER",
                "AZURE_TENANT_ID",
                "(value not shown: it may hold a secret) is neither a GUID",
            ),
            (
                "QUERY_LAG",
                "2m\nsig=MARKER",
                "QUERY_LAG",
                "(value not shown: it may hold a secret) is not a duration",
            ),
        ];
        for (name, value, variable, shows) in cases {
            let result = with(&[(name, value)]);
            let text = every_rendering(&result);
            assert!(!text.contains("MARKER"), "{name}={value:?}: {text}");
            let problems = result.unwrap_err().problems;
            let problem = problems
                .iter()
                .find(|p| p.variable == *variable)
                .unwrap_or_else(|| panic!("{name}={value:?}: {problems:?}"));
            assert!(
                problem.message.contains(shows),
                "{name}={value:?}: {problem:?}"
            );
        }
    }

    #[test]
    fn connection_string_problems_never_echo_the_secret() {
        let cases: &[(&str, &str)] = &[
            (
                "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://logs.blob.core.windows.net/?sv=1&sig=MARKER",
                "BlobEndpoint `https://logs.blob.core.windows.net/?[REDACTED]` must be a plain service URL",
            ),
            (
                "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://user:MARKER@logs.blob.core.windows.net",
                "BlobEndpoint `https://[REDACTED]@logs.blob.core.windows.net/` must be a plain service URL",
            ),
            (
                "UseDevelopmentStorage=true;BlobEndpoint=http://user:MARKER@127.0.0.1:10000/devstoreaccount1",
                "without user, password, query or fragment",
            ),
            (
                "AccountName=logs;AccountKey=MARKER!",
                "AccountKey for account `logs` is not valid base64",
            ),
            (
                "AccountName=logs,AccountKey=MARKER==",
                "AccountName (value not shown: it may hold a secret) is not a storage account name",
            ),
            (
                "UseDevelopmentStorage=true,AccountKey=MARKER",
                "UseDevelopmentStorage=(value not shown: it may hold a secret) is not supported",
            ),
            (
                "SharedAccessSignature=sv=2024&sig=MARKER",
                "SharedAccessSignature connection strings are not supported",
            ),
        ];
        for (value, shows) in cases {
            let result = with(&[
                ("STORAGE_ACCOUNT_URL", ""),
                ("STORAGE_CONNECTION_STRING", value),
            ]);
            let text = every_rendering(&result);
            assert!(!text.contains("MARKER"), "{value}: {text}");
            assert!(text.contains(shows), "{value}: {text}");
        }
    }

    #[test]
    fn the_client_secret_is_never_shown_even_when_accepted() {
        for secret in ["MARKER", "Abc8Q~MARKER_x.y-z", "MARKER==", " MARKER \n"] {
            let result = with(&[("AZURE_CLIENT_SECRET", secret)]);
            let text = every_rendering(&result);
            assert!(result.is_ok(), "{secret:?}: {text}");
            assert!(!text.contains("MARKER"), "{secret:?}: {text}");
        }
    }

    #[test]
    fn function_timeout_defaults_to_host_json() {
        let host: serde_json::Value = serde_json::from_str(HOST_JSON).unwrap();
        let written = host["functionTimeout"].as_str().unwrap();
        assert_eq!(
            parse_function_timeout(written),
            Some(host_function_timeout()),
            "{written}"
        );
        assert_eq!(host_function_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(
            with(&[]).unwrap().run.function_timeout,
            host_function_timeout()
        );
        // The default budget fits the default timeout.
        assert!(longest_run(parse_duration("8m").unwrap()) <= Duration::from_secs(600));
    }

    #[test]
    fn function_timeouts_parse_in_the_hosts_forms() {
        let some = |s: u64| Some(Some(Duration::from_secs(s)));
        assert_eq!(parse_function_timeout("00:10:00"), some(600));
        assert_eq!(parse_function_timeout("0:05:30"), some(330));
        assert_eq!(parse_function_timeout("1.02:00:00"), some(93_600));
        assert_eq!(parse_function_timeout("10m"), some(600));
        assert_eq!(parse_function_timeout("-1"), Some(None));
        for bad in [
            "",
            "10",
            "10:00",
            "00:60:00",
            "24:00:00",
            "00:10:00.5",
            "x.00:10:00",
            "soon",
        ] {
            assert_eq!(parse_function_timeout(bad), None, "{bad}");
        }
        let config = with(&[("FUNCTION_TIMEOUT", "00:30:00"), ("RUN_TIME_BUDGET", "20m")]).unwrap();
        assert_eq!(config.run.function_timeout, Some(Duration::from_secs(1800)));
        let config = with(&[("FUNCTION_TIMEOUT", "-1"), ("RUN_TIME_BUDGET", "6h")]).unwrap();
        assert_eq!(config.run.function_timeout, None);
        assert!(
            config
                .describe()
                .contains(&("FUNCTION_TIMEOUT".into(), "-1".into()))
        );
    }

    #[test]
    fn grace_and_final_writes_are_the_documented_numbers() {
        assert_eq!(grace(Duration::from_secs(480)), Duration::from_secs(60));
        assert_eq!(FINAL_WRITES, Duration::from_secs(30));
        assert_eq!(
            longest_run(Duration::from_secs(480)),
            Duration::from_secs(570)
        );
        assert_eq!(seconds(grace(Duration::from_secs(540))), "67.5s");
        assert_eq!(seconds(Duration::from_secs(600)), "600s");
    }

    #[test]
    fn a_budget_that_cannot_finish_before_the_host_timeout_is_refused() {
        // 9m + 67.5s + 30s = 637.5s > 600s.
        let error = with(&[("RUN_TIME_BUDGET", "9m")]).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        let problem = &error.problems[0];
        assert_eq!(problem.variable, "RUN_TIME_BUDGET/FUNCTION_TIMEOUT");
        for part in [
            "RUN_TIME_BUDGET 9m",
            "67.5s of grace",
            "30s of final writes",
            "= 637.5s",
            "FUNCTION_TIMEOUT 10m (600s)",
            "lower RUN_TIME_BUDGET to at most 506s",
            "AzureFunctionsJobHost__functionTimeout",
        ] {
            assert!(
                problem.message.contains(part),
                "{part}: {}",
                problem.message
            );
        }
        // 506 s is the largest budget that fits ten minutes; the fix it gives is right.
        assert!(longest_run(Duration::from_secs(506)) <= Duration::from_secs(600));
        assert!(longest_run(Duration::from_secs(507)) > Duration::from_secs(600));
        assert!(with(&[("RUN_TIME_BUDGET", "506s")]).is_ok());
        assert!(with(&[("RUN_TIME_BUDGET", "507s")]).is_err());
        // A larger host timeout takes a larger budget; none takes any.
        assert!(with(&[("RUN_TIME_BUDGET", "9m"), ("FUNCTION_TIMEOUT", "11m")]).is_ok());
        assert!(with(&[("RUN_TIME_BUDGET", "1d"), ("FUNCTION_TIMEOUT", "-1")]).is_ok());
        // A timeout shorter than the final writes has no budget to offer.
        let error = with(&[("RUN_TIME_BUDGET", "1s"), ("FUNCTION_TIMEOUT", "20s")]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("raise FUNCTION_TIMEOUT above 31s"),
            "{error}"
        );
        // An unreadable value is one problem, not two.
        let variables = problem_variables(with(&[
            ("RUN_TIME_BUDGET", "1h"),
            ("FUNCTION_TIMEOUT", "later"),
        ]));
        assert_eq!(variables, vec!["FUNCTION_TIMEOUT"]);
    }

    #[test]
    fn zero_lag_or_replay_needs_the_explicit_override() {
        for name in ["QUERY_LAG", "REPLAY_WINDOW"] {
            let error = with(&[(name, "0s")]).unwrap_err();
            assert_eq!(problem_variables(Err(error.clone())), vec![name]);
            let text = error.to_string();
            for part in ["lost", "ACCEPT_LATE_RECORD_LOSS=true", "5 min at the 99th"] {
                assert!(text.contains(part), "{part}: {text}");
            }
            let config = with(&[(name, "0s"), ("ACCEPT_LATE_RECORD_LOSS", "true")]).unwrap();
            assert!(config.run.accept_late_record_loss);
        }
        let both = problem_variables(with(&[("QUERY_LAG", "0s"), ("REPLAY_WINDOW", "0s")]));
        assert_eq!(both, vec!["QUERY_LAG", "REPLAY_WINDOW"]);
        let config = with(&[
            ("QUERY_LAG", "0s"),
            ("REPLAY_WINDOW", "0s"),
            ("ACCEPT_LATE_RECORD_LOSS", "true"),
        ])
        .unwrap();
        assert!(config.run.query_lag.is_zero() && config.run.replay_window.is_zero());
        // The override changes nothing else, and non-zero values need none.
        assert!(with(&[("QUERY_LAG", "1s"), ("REPLAY_WINDOW", "1s")]).is_ok());
        assert!(with(&[("ACCEPT_LATE_RECORD_LOSS", "true")]).is_ok());
    }
}
