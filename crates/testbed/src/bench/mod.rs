//! The benchmark scenarios behind `target/release/bench` (see `docs/BENCHMARKS.md`).

pub mod layouts;
pub mod layouts_report;
pub mod procfs;
pub mod report;
pub mod resources;
pub mod startup;
pub mod streams;
pub mod throttle;

use std::path::PathBuf;

/// What every scenario run needs besides its own parameters.
#[derive(Debug, Clone, Default)]
pub struct Common {
    /// Azurite's pid, for its CPU figures.
    pub azurite: Option<u32>,
    /// Extra environment variables for the service (`--service-env`), e.g. allocator settings
    /// for an experiment.
    pub service_env: Vec<(String, String)>,
    /// `--profile DIR`: record scenario 2's runs with `perf`.
    pub profile: Option<PathBuf>,
}

impl Common {
    /// `env` followed by the extra variables (which win). No Functions host runs the scenarios'
    /// `serve` and they give a run hours (`RUN_TIME_BUDGET`), so `FUNCTION_TIMEOUT` is a day
    /// unless the scenario sets it.
    pub fn env(&self, env: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "FUNCTION_TIMEOUT") {
            env.push(("FUNCTION_TIMEOUT".to_owned(), "1d".to_owned()));
        }
        for (name, value) in &self.service_env {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }
}

/// The permission of the clean-up SAS: delete only. The service's own SAS (`SAS_PERMISSIONS`,
/// `rwlc`) deliberately has no delete, so the bench signs its own.
const CLEANUP_SAS_PERMISSIONS: &str = "d";

/// Deletes a stack's containers from Azurite after a run (raw `DELETE` with an account SAS
/// signed by the service's signing code, with delete permission), so that Azurite, which keeps
/// its blob index in memory, does not slow down run after run.
pub async fn delete_containers(stack: &testbed::Stack) -> anyhow::Result<()> {
    use entra_export::storage::sas::{AccountSasFields, SAS_VERSION, format_expiry, sign};
    use testbed::stack::{AZURITE_ACCOUNT, AZURITE_KEY, azurite_blob_url};

    let key = azure_core::credentials::Secret::new(AZURITE_KEY.to_owned());
    let fields = AccountSasFields {
        account: AZURITE_ACCOUNT.to_owned(),
        permissions: CLEANUP_SAS_PERMISSIONS.to_owned(),
        expiry: format_expiry(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        protocol: String::new(),
    };
    let signature = sign(&key, &fields.string_to_sign()).map_err(anyhow::Error::msg)?;
    let pairs = fields.query_pairs(&signature);
    let client = entra_export::http::build_client(None)?;
    for suffix in ["audit", "signin", "state"] {
        let mut url = format!(
            "{}/{}-{suffix}?restype=container",
            azurite_blob_url(),
            stack.prefix
        );
        for (name, value) in &pairs {
            url.push_str(&format!("&{name}={}", encode(value)));
        }
        let status = client
            .delete(url)
            .header("x-ms-version", SAS_VERSION)
            .send()
            .await?
            .status();
        if !status.is_success() && status.as_u16() != 404 {
            anyhow::bail!(
                "deleting container {}-{suffix}: HTTP {status}",
                stack.prefix
            );
        }
    }
    Ok(())
}

/// Percent-encodes a query value (unreserved characters kept).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
