//! The service: configuration plus the clients every run shares (one HTTP pool, one Graph
//! throttle limiter for the tenant and its share of the budget when other processes draw on it
//! too, one storage client), built lazily on first use so that
//! `serve` listens before doing anything else, and an in-process guard so that one job never runs
//! twice at once in a process. Across processes the storage lease is the lock.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::auth::{self, TokenCache};
use crate::config::{Config, StorageTarget};
use crate::graph::{GraphClient, throttle::Limiter};
use crate::job::JobKind;
use crate::pipeline::share::GraphShare;
use crate::pipeline::{
    self, RunOptions,
    report::{Outcome, RunReport},
};
use crate::storage::Storage;

/// The shared clients of one process.
pub struct Context {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Microsoft Graph.
    pub graph: GraphClient,
    /// Blob Storage.
    pub storage: Storage,
    /// Graph's throttle budget shared with other processes (heartbeats in storage).
    pub share: Arc<GraphShare>,
}

/// Why the shared clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// The credential could not be built.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The storage client could not be built.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
}

impl Context {
    /// Builds every client from the configuration. No network I/O happens here.
    pub fn build(config: Arc<Config>) -> Result<Context, ContextError> {
        let http = crate::http::build_client(config.extra_ca_file.as_deref())?;
        let credential = auth::build_credential(&config, http.clone())?;
        let tokens = Arc::new(TokenCache::new(
            credential.clone(),
            config.graph.scope.clone(),
        ));
        let limiter = Arc::new(Limiter::new(config.graph.max_requests_per_10s));
        let graph = GraphClient::new(&config.graph, tokens, http.clone(), limiter.clone());
        let storage_credential = match config.storage.target {
            StorageTarget::AccountUrl(_) => Some(credential),
            StorageTarget::ConnectionString(_) => None,
        };
        let storage = Storage::new(&config.storage, storage_credential, http)?;
        let share = Arc::new(GraphShare::new(storage.clone(), limiter, &config.tenant_id));
        Ok(Context {
            config,
            graph,
            storage,
            share,
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    /// The Functions invocation id (`X-Azure-Functions-InvocationId`).
    pub invocation_id: Option<String>,
}

/// The configuration (or its problems), the lazily built context and the per-job guards.
pub struct Service {
    config: Result<Arc<Config>, crate::config::ConfigError>,
    context: OnceCell<Arc<Context>>,
    running: HashMap<JobKind, Mutex<()>>,
}

impl Service {
    /// Wraps a configuration result; an invalid configuration fails every run with its problems.
    pub fn new(config: Result<Config, crate::config::ConfigError>) -> Service {
        Service {
            config: config.map(Arc::new),
            context: OnceCell::new(),
            running: JobKind::ALL
                .into_iter()
                .map(|kind| (kind, Mutex::new(())))
                .collect(),
        }
    }

    /// The shared clients, built on first use.
    pub async fn context(&self) -> Result<Arc<Context>, ContextError> {
        let config = self.config.clone()?;
        self.context
            .get_or_try_init(|| async move { Context::build(config).map(Arc::new) })
            .await
            .cloned()
    }

    /// Runs one job unless it is already running in this process, in which case the report says
    /// it was skipped and why. Failures are reported in the report, never as a panic.
    pub async fn run_job(&self, kind: JobKind, trigger: Trigger, options: RunOptions) -> RunReport {
        let guard = self.running[&kind].try_lock();
        let Ok(_guard) = guard else {
            let report = RunReport::ended(
                kind.name(),
                trigger.invocation_id.clone(),
                Outcome::Skipped,
                "skipped: another run of this job is in progress in this process".into(),
            );
            tracing::info!(job = %kind, run.id = %report.run_id, "run skipped: already running in this process");
            return report;
        };
        match self.context().await {
            Ok(context) => pipeline::run(&context, kind, &trigger, options).await,
            Err(error) => {
                let report = RunReport::ended(
                    kind.name(),
                    trigger.invocation_id.clone(),
                    Outcome::Failed,
                    error.to_string(),
                );
                tracing::error!(job = %kind, run.id = %report.run_id, error = %error, "run failed before it started");
                report
            }
        }
    }
}
