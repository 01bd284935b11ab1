//! Configuration from environment variables (Functions app settings), parsed once at start-up
//! into typed structs. Every problem is collected and reported together, each naming its
//! variable and what is allowed.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AZURE_TENANT_ID` | required | tenant id (GUID) or primary domain |
//! | `AZURE_CLOUD` | `AzureUSGovernment` | `AzurePublic`, `AzureUSGovernment`, `AzureUSGovernmentDoD`, `AzureChina` |
//! | `AUTH_MODE` | `auto` | `auto`, `managed_identity`, `client_secret`, `client_certificate`, `workload_identity`, `azure_cli` |
//! | `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` | none | service principal, or the user-assigned identity's client id |
//! | `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_CLIENT_CERTIFICATE`, `AZURE_CLIENT_CERTIFICATE_PASSWORD` | none | the service principal's certificate: a PEM file (key and certificate) or a PFX, or the certificate itself (the base64 PFX a Key Vault reference resolves to, or PEM text), and its password |
//! | `AZURE_FEDERATED_TOKEN_FILE` | none | workload identity token file |
//! | `AZURE_AUTHORITY_HOST`, `GRAPH_ENDPOINT` | per cloud (`GRAPH_ENDPOINT`: `GRAPH_CLOUD`'s) | https overrides (private endpoints, local simulator) |
//! | `GRAPH_API_VERSION` | `v1.0` | `v1.0` or `beta` |
//! | `GRAPH_CLOUD`, `GRAPH_TENANT_ID` | `AZURE_CLOUD`, `AZURE_TENANT_ID` | Graph's cloud and tenant, when they are not the service's (a commercial or GCC Moderate tenant read from a Government Function App) |
//! | `GRAPH_AUTH_MODE`, `GRAPH_CLIENT_ID`, `GRAPH_CLIENT_SECRET`, `GRAPH_CLIENT_CERTIFICATE_PATH`, `GRAPH_CLIENT_CERTIFICATE`, `GRAPH_CLIENT_CERTIFICATE_PASSWORD`, `GRAPH_FEDERATED_TOKEN_FILE` | `AUTH_MODE`'s credential | Graph's own credential, like the `AUTH_MODE` set; once one is set, Graph's credential is read from these alone |
//! | `GRAPH_AUTHORITY_HOST` | `GRAPH_CLOUD`'s when set, else `AZURE_AUTHORITY_HOST`'s | https override of Graph's authority |
//! | `ARM_ENDPOINT` | per cloud | Azure Resource Manager, the source of the Azure Activity Log (no timer uses it yet): https override (local simulator) |
//! | `STORAGE_ACCOUNT_URL` | none | `https://<account>.blob.<suffix>`, token auth |
//! | `STORAGE_CONNECTION_STRING` | none | account-key connection string, `UseDevelopmentStorage=true` included |
//! | `AUDIT_STREAMS` | `directoryAudits,provisioning` | the streams `AuditTimer` runs (`none`: none); `riskDetections`, `servicePrincipalRiskDetections` are opt-in (P2) |
//! | `SIGNIN_EVENT_TYPES` | `interactiveUser,nonInteractiveUser,servicePrincipal,managedIdentity` | the sign-in streams `SignInTimer` runs (`none`: none) |
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
//! | `ARM_MAX_REQUESTS_PER_10S` | `25` | Azure Resource Manager request budget, apart from Graph's |
//! | `MAX_RECORDS_PER_BLOB` | `1000` | records in one data blob, 1 to 1000 (a blob never spans pages) |
//! | `OUTPUT_FORMAT`, `OUTPUT_COMPRESSION` | `graph-page`, `none` | `graph-page` or `ndjson`; `none` or `gzip` |
//! | `REPUBLISH_UPDATES` | `false` | write a later version of a record whose content changed |
//! | `LOCK_LEASE` | `60s` | run lock lease, 15 s to 60 s; a crashed run's lease lapses after it |
//! | `PARALLEL_SLICES` | `auto` | windows fetched at once (lanes): `auto` (twice the request budget, at most 10) or 1 to 64 |
//! | `EXTRA_CA_FILE` | none | PEM certificates to trust in addition to the system roots |
//! | `LOG_FORMAT` | `auto` | `json` when not on a terminal, `pretty` on a terminal |
//!
//! `config check` shows the variables in the order of this table. Each area parses, checks and
//! describes its own variables, with its tests beside it: `cloud.rs` (tenant and cloud),
//! `auth.rs`, `graph.rs`, `arm.rs`, `storage.rs` (the account, the state container and the blob shape;
//! [`connection_string`] is the grammar of `STORAGE_CONNECTION_STRING`), `streams.rs` (which
//! streams each timer runs, each stream's container) and `run.rs` (the timing of incremental
//! runs and the budget that must fit in the host's timeout). This file puts them together and
//! reads the process settings (`EXTRA_CA_FILE`, `LOG_FORMAT`); `parser.rs` collects the
//! problems, `values.rs` reads and writes durations, sizes and container names.

mod arm;
mod auth;
mod certificate;
mod cloud;
pub mod connection_string;
mod graph;
mod parser;
mod run;
mod storage;
mod streams;
#[cfg(test)]
mod testing;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use arm::ArmConfig;
pub use auth::{
    AuthConfig, AuthMode, CredentialSet, CredentialVariables, GraphIdentity, INHERITED, expose,
};
pub use certificate::{CertificateSource, ClientCertificate};
pub use cloud::Cloud;
pub use graph::{ApiVersion, GraphConfig};
pub use parser::{ConfigError, Problem};
pub use run::{
    DEFAULT_QUERY_LAG, DEFAULT_RECONCILE_INTERVAL, DEFAULT_RECONCILE_WINDOW, DEFAULT_REPLAY_WINDOW,
    FINAL_WRITES, NO_FUNCTION_TIMEOUT, RETENTION, RunConfig, grace, host_function_timeout,
    longest_run, parse_function_timeout,
};
pub use storage::{Compression, OutputFormat, StorageConfig, StorageTarget};
pub use streams::JobSpecConfig;
pub use values::{
    container_name_problem, format_duration, format_size, parse_duration, parse_size,
};

use crate::job::{JobKind, Timer};
use parser::Parser;

/// `config check` lines: `(VARIABLE, value)`, secrets redacted.
type Lines = Vec<(String, String)>;

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tenant id (GUID) or primary domain.
    pub tenant_id: String,
    /// The national or public cloud.
    pub cloud: Cloud,
    /// How tokens are obtained (Blob Storage's, and Graph's unless Graph has its own).
    pub auth: AuthConfig,
    /// Graph's tenant, cloud and credential (by default the service's).
    pub graph_identity: GraphIdentity,
    /// Microsoft Graph access.
    pub graph: GraphConfig,
    /// Azure Resource Manager access (the Azure Activity Log).
    pub arm: ArmConfig,
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

/// What `describe` prints for a variable that is not set.
pub const UNSET: &str = "(unset)";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from the given variables (the process environment in production,
    /// a map in tests). Empty values count as unset.
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
        let mut p = Parser::new(&env);

        let tenant_id = cloud::tenant_id(&mut p);
        let cloud = cloud::cloud(&mut p);
        let auth = AuthConfig::parse(&mut p, cloud);
        let graph_identity = GraphIdentity::parse(&mut p, cloud, &tenant_id, &auth);
        let graph = GraphConfig::parse(&mut p, graph_identity.cloud);
        let arm = ArmConfig::parse(&mut p, cloud);
        let storage = StorageConfig::parse(&mut p, cloud);
        let run = RunConfig::parse(&mut p);
        let jobs = streams::containers(&mut p, &storage.state_container);
        let streams = streams::enabled(&mut p);
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

        p.finish()?;
        Ok(Config {
            tenant_id,
            cloud,
            auth,
            graph_identity,
            graph,
            arm,
            storage,
            run,
            jobs,
            streams,
            log_format,
            extra_ca_file,
        })
    }

    /// True when Graph's tokens come from the same credential as the service's (storage)
    /// tokens: one credential then serves both.
    pub fn graph_shares_credential(&self) -> bool {
        self.graph_identity
            .shares_credential_with(&self.tenant_id, &self.auth)
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
    /// `config check`, in the order of the table above: each area describes its own variables.
    pub fn describe(&self) -> Lines {
        let mut lines = cloud::describe(&self.tenant_id, self.cloud);
        lines.extend(self.auth.describe());
        lines.extend(self.graph.describe_endpoint());
        lines.extend(self.graph_identity.describe());
        lines.extend(self.arm.describe_endpoint());
        lines.extend(self.storage.describe_account());
        lines.extend(streams::describe_enabled(&self.streams));
        lines.extend(streams::describe_containers(&self.jobs));
        lines.extend(self.storage.describe_state_container());
        lines.extend(self.run.describe_timing());
        lines.extend(self.graph.describe_limits());
        lines.extend(self.arm.describe_limits());
        lines.extend(self.storage.describe_output());
        lines.extend(self.run.describe_writes());
        lines.extend(self.describe_process());
        lines
    }

    /// The `config check` lines of the process settings, `EXTRA_CA_FILE` and `LOG_FORMAT`.
    fn describe_process(&self) -> Lines {
        vec![
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
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::{
        SECRET, assert_each_names_its_variable, every_rendering, minimal, with, with_owned,
    };
    use super::*;
    use crate::redact::REDACTED;

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
    fn a_bad_process_setting_names_its_variable() {
        assert_each_names_its_variable(&[
            ("EXTRA_CA_FILE", "/nonexistent/ca.pem"),
            ("LOG_FORMAT", "xml"),
        ]);
    }

    /// `config check` lines fed back as the environment (unset lines dropped, redacted secrets
    /// put back by the operator) give the same configuration.
    fn reads_back(vars: &[(&str, &str)]) {
        let owned: Vec<(&str, String)> = vars.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        let config = with_owned(&owned).unwrap_or_else(|e| panic!("{e}"));
        let lines = config.describe();
        let secrets: BTreeMap<&str, &str> =
            minimal().into_iter().chain(vars.iter().copied()).collect();
        let again: Vec<(String, String)> = lines
            .iter()
            .filter(|(_, value)| !value.starts_with("(unset"))
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
        // Graph in another tenant with the same (multi-tenant) app, then in another cloud with
        // an app of its own, with a secret.
        reads_back(&[("GRAPH_TENANT_ID", "contoso.onmicrosoft.com")]);
        reads_back(&[
            ("AUTH_MODE", "managed_identity"),
            ("AZURE_CLIENT_SECRET", ""),
            ("GRAPH_CLOUD", "AzurePublic"),
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", "22222222-3333-4444-5555-666666666666"),
            ("GRAPH_CLIENT_SECRET", "graph-secret"),
        ]);
        reads_back(&[
            ("GRAPH_AUTHORITY_HOST", "https://127.0.0.1:8443"),
            ("GRAPH_AUTH_MODE", "azure_cli"),
        ]);
    }

    #[test]
    fn config_check_output_of_certificates_reads_back_to_the_same_configuration() {
        use graph_sim::certs::{PfxStyle, TestCertificate, TestKey};
        let dir = tempfile::tempdir().unwrap();
        let certificate = TestCertificate::generate(TestKey::A, "read back").unwrap();
        let pem = dir.path().join("app.pem");
        std::fs::write(&pem, certificate.pem_bundle()).unwrap();
        let pfx = dir.path().join("app.pfx");
        std::fs::write(&pfx, certificate.pfx("pa55", PfxStyle::Modern).unwrap()).unwrap();
        let key_vault = certificate.key_vault_secret_value().unwrap();
        let pem = pem.display().to_string();
        let pfx = pfx.display().to_string();
        reads_back(&[
            ("AZURE_CLIENT_SECRET", ""),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &pem),
        ]);
        reads_back(&[
            ("AZURE_CLIENT_SECRET", ""),
            ("AUTH_MODE", "client_certificate"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &pfx),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pa55"),
        ]);
        reads_back(&[
            ("GRAPH_CLOUD", "AzurePublic"),
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com"),
            ("GRAPH_CLIENT_ID", "22222222-3333-4444-5555-666666666666"),
            ("GRAPH_CLIENT_CERTIFICATE", &key_vault),
        ]);
        let config = with_owned(&[
            ("GRAPH_TENANT_ID", "contoso.onmicrosoft.com".to_owned()),
            ("GRAPH_CLIENT_ID", "graph-app".to_owned()),
            ("GRAPH_CLIENT_CERTIFICATE", key_vault.clone()),
        ])
        .unwrap();
        let described = format!("{:?}\n{config:?}", config.describe());
        assert!(!described.contains(&key_vault[10..60]), "{described}");
        assert!(described.contains(&certificate.sha1_hex()), "{described}");
    }

    /// The variables of the table in this module's documentation, in its order.
    fn documented() -> Vec<String> {
        include_str!("config.rs")
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
            .collect()
    }

    #[test]
    fn every_documented_variable_is_described() {
        let config = with(&[]).unwrap();
        let described: Vec<String> = config.describe().into_iter().map(|(n, _)| n).collect();
        let documented = documented();
        assert!(documented.len() > 25, "{documented:?}");
        for name in documented {
            assert!(
                described.contains(&name),
                "`config check` leaves out {name}"
            );
        }
    }

    #[test]
    fn config_check_lists_the_variables_in_the_order_of_the_table() {
        let described: Vec<String> = with(&[])
            .unwrap()
            .describe()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(described, documented());
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
}
