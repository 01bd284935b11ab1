//! The stand-ins of one test or demo: a Graph simulator in this process, Azurite (started by
//! `scripts/azurite.sh`), unique containers, and the environment `entra-export` needs to use them.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use entra_export::config::Config;
use entra_export::job::JobKind;
use entra_export::storage::Storage;
use graph_sim::{Sim, SimConfig};

/// Azurite's well-known development account (published in the Azurite README; not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (published in the Azurite README; not a secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Azurite blob endpoint: `AZURITE_BLOB_URL` or the default port.
pub fn azurite_blob_url() -> String {
    std::env::var("AZURITE_BLOB_URL")
        .unwrap_or_else(|_| format!("http://127.0.0.1:10000/{AZURITE_ACCOUNT}"))
}

/// A connection string for Azurite with an explicit `BlobEndpoint`.
pub fn azurite_connection_string() -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
        azurite_blob_url()
    )
}

/// True when Azurite answers. When it does not: under `CI=true` an error (a test must fail, not
/// skip), otherwise `false` with a notice, so that a developer without Azurite can run the rest.
pub async fn azurite_available() -> anyhow::Result<bool> {
    let url = url_host_port(&azurite_blob_url())?;
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect(&url),
    )
    .await
    {
        Ok(Ok(_)) => Ok(true),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            bail!(
                "Azurite is not reachable at {url} and CI=true: start it with scripts/azurite.sh start"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: Azurite is not reachable at {url}; run the tests with scripts/test.sh"
            );
            Ok(false)
        }
    }
}

fn url_host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .split("://")
        .nth(1)
        .context("AZURITE_BLOB_URL has no scheme")?;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

/// What a stack is started with.
#[derive(Default)]
pub struct StackOptions {
    /// The simulator's configuration.
    pub sim: SimConfig,
    /// Extra or overriding environment variables for `entra-export`.
    pub env: Vec<(String, String)>,
}

/// A running set of stand-ins.
pub struct Stack {
    /// The Graph simulator.
    pub sim: Sim,
    /// The simulator's CA certificate, trusted through `EXTRA_CA_FILE`.
    pub ca_file: PathBuf,
    /// The prefix of this stack's containers.
    pub prefix: String,
    env: Vec<(String, String)>,
}

impl Stack {
    /// Starts the simulator and prepares unique containers. `None` when Azurite is unreachable
    /// outside CI (the caller skips).
    pub async fn start(options: StackOptions) -> anyhow::Result<Option<Stack>> {
        if !azurite_available().await? {
            return Ok(None);
        }
        let sim_config = options.sim;
        let tenant = sim_config.tenant.clone();
        let client_id = sim_config.client_id.clone();
        let client_secret = sim_config.client_secret.clone();
        let sim = graph_sim::start(sim_config).await?;
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let ca_file = std::env::temp_dir().join(format!("{prefix}-sim-ca.pem"));
        sim.write_ca_file(&ca_file)?;
        let mut env: Vec<(String, String)> = [
            ("AZURE_TENANT_ID", tenant),
            ("AZURE_CLOUD", "AzureUSGovernment".into()),
            ("AUTH_MODE", "client_secret".into()),
            ("AZURE_CLIENT_ID", client_id),
            ("AZURE_CLIENT_SECRET", client_secret),
            ("AZURE_AUTHORITY_HOST", sim.authority_url()),
            ("GRAPH_ENDPOINT", sim.graph_url()),
            ("EXTRA_CA_FILE", ca_file.display().to_string()),
            ("STORAGE_CONNECTION_STRING", azurite_connection_string()),
            ("STATE_CONTAINER", format!("{prefix}-state")),
            // The two original streams unless a test names more.
            ("SIGNIN_EVENT_TYPES", "interactiveUser".into()),
            ("AUDIT_STREAMS", "directoryAudits".into()),
            // The simulator publishes at once (late arrivals are explicit in its config), so the
            // tests, the demo and the benchmarks run with QUERY_LAG=0s, and some REPLAY_WINDOW=0s.
            ("ACCEPT_LATE_RECORD_LOSS", "true".into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for kind in JobKind::ALL {
            env.push((
                kind.spec_template().container_variable.to_owned(),
                container_name(&prefix, kind),
            ));
        }
        for (name, value) in options.env {
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
        Ok(Some(Stack {
            sim,
            ca_file,
            prefix,
            env,
        }))
    }

    /// The environment for `entra-export`.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// The environment with some variables replaced.
    pub fn env_with(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (name, value) in overrides {
            env.retain(|(k, _)| k != name);
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
        env
    }

    /// The parsed configuration of this stack.
    pub fn config(&self) -> anyhow::Result<Config> {
        Config::from_vars(self.env.clone()).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The data container of a job.
    pub fn container(&self, kind: JobKind) -> String {
        container_name(&self.prefix, kind)
    }

    /// A storage client on this stack's account, to inspect what landed.
    pub async fn storage(&self) -> anyhow::Result<Storage> {
        let config = self.config()?;
        let http = entra_export::http::build_client(config.extra_ca_file.as_deref())?;
        Ok(Storage::new(&config.storage, None, http)?)
    }
}

/// A stream's container in a stack: `<prefix>-<stream name>`.
fn container_name(prefix: &str, kind: JobKind) -> String {
    format!("{prefix}-{}", kind.name())
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}
