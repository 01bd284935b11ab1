//! The shared clients every run of this process uses: the configuration, one source per API
//! (Graph: one HTTP pool, one token cache, one throttle limiter for the tenant), one storage
//! client and the process's share of the Graph budget; and what started a run. Graph's token
//! cache gets Graph's credential, storage and Resource Manager the service's: the same one unless
//! Graph's identity (`GRAPH_TENANT_ID`, `GRAPH_CLOUD`, `GRAPH_CLIENT_ID`, ...) differs.
//!
//! The pipeline owns these types so that it depends on no module above it: `service` builds a
//! [`Context`] lazily and hands it to [`super::run`].

use std::sync::Arc;

use crate::auth::{self, TokenCache};
use crate::client::throttle::Limiter;
use crate::config::{Config, StorageTarget};
use crate::source::{SourceParts, Sources};
use crate::storage::Storage;

use super::share::GraphShare;

/// The shared clients of one process.
pub struct Context {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Where the streams' records come from, one source per API.
    pub sources: Sources,
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
        let credentials = auth::build_credentials(&config, http.clone())?;
        let tokens = Arc::new(TokenCache::new(
            credentials.graph.clone(),
            config.graph.scope.clone(),
        ));
        let limiter = Arc::new(Limiter::new(config.graph.max_requests_per_10s));
        let sources = Sources::build(
            &config,
            SourceParts {
                graph_tokens: tokens,
                arm_tokens: Arc::new(TokenCache::new(
                    credentials.service.clone(),
                    config.arm.scope.clone(),
                )),
                http: http.clone(),
                graph_limiter: limiter.clone(),
            },
        );
        let storage_credential = match config.storage.target {
            StorageTarget::AccountUrl(_) => Some(credentials.service),
            StorageTarget::ConnectionString(_) => None,
        };
        let storage = Storage::new(&config.storage, storage_credential, http)?;
        // Graph's budget is its tenant's.
        let share = Arc::new(GraphShare::new(
            storage.clone(),
            limiter,
            &config.graph_identity.tenant_id,
        ));
        Ok(Context {
            config,
            sources,
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
