//! The seam between the pipeline and the APIs it copies from. The pipeline asks a [`Source`]
//! for the pages of one stream's time window and reads the server's clock; it names no type of
//! any particular API. A source is chosen per stream ([`crate::job::JobSpec`] describes the
//! stream: path, filters, fields, ordering, retention, what a 403 means).
//!
//! Today every source is a [`PagedClient`] (the shared HTTP plumbing of `crate::client`) with
//! a dialect: Graph's (`crate::graph`) or Azure Resource Manager's (`crate::arm`). A source that is not a paged JSON API implements
//! [`Source`] itself.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use time::OffsetDateTime;

use crate::auth::TokenCache;
use crate::client::throttle::Limiter;
use crate::config::Config;
use crate::job::{Api, JobSpec};

pub use crate::client::clock::ServerClock;
pub use crate::client::{Error, FetchLimits, FetchStats, Page, PagedClient, RecordRef};

/// The pages of one window, oldest first where the stream is ordered; ends after the first
/// error.
pub type PageStream = Pin<Box<dyn Stream<Item = Result<Page, Error>> + Send + 'static>>;

/// Where a stream's records come from.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Every record of `stream` with `start <= time < end`, page by page, **at least once**
    /// (a restarted or split window yields records again: the consumer de-duplicates by id),
    /// within `limits`, every request counted in `stats`. See [`PagedClient::fetch_window`]
    /// for the full contract a source keeps.
    fn fetch_window(
        &self,
        stream: &JobSpec,
        start: OffsetDateTime,
        end: OffsetDateTime,
        stats: Arc<FetchStats>,
        limits: FetchLimits,
    ) -> PageStream;

    /// The server's clock, as its replies tell it (`None` until one did).
    fn clock(&self) -> &ServerClock;
}

impl Source for PagedClient {
    fn fetch_window(
        &self,
        stream: &JobSpec,
        start: OffsetDateTime,
        end: OffsetDateTime,
        stats: Arc<FetchStats>,
        limits: FetchLimits,
    ) -> PageStream {
        Box::pin(PagedClient::fetch_window(
            self, stream, start, end, stats, limits,
        ))
    }

    fn clock(&self) -> &ServerClock {
        PagedClient::clock(self)
    }
}

/// The sources of one process, one per API, each shared by every stream it serves.
#[derive(Debug, Clone)]
pub struct Sources {
    graph: Arc<dyn Source>,
    arm: Arc<dyn Source>,
}

/// What [`Sources::build`] needs besides the configuration: the tokens of each API and the
/// throttle limiter of Graph (shared with the budget heartbeats).
pub struct SourceParts {
    /// Tokens for Graph's scope.
    pub graph_tokens: Arc<TokenCache>,
    /// Tokens for ARM's scope.
    pub arm_tokens: Arc<TokenCache>,
    /// The process's HTTP pool.
    pub http: reqwest::Client,
    /// Graph's throttle limiter.
    pub graph_limiter: Arc<Limiter>,
}

impl Sources {
    /// The sources given.
    pub fn new(graph: Arc<dyn Source>, arm: Arc<dyn Source>) -> Sources {
        Sources { graph, arm }
    }

    /// The sources as configured: Graph (`GRAPH_*`) and ARM (`ARM_*`, with its own limiter),
    /// both with the HTTP client settings of `GRAPH_*`.
    pub fn build(config: &Config, parts: SourceParts) -> Sources {
        let graph = crate::graph::client(
            &config.graph,
            parts.graph_tokens,
            parts.http.clone(),
            parts.graph_limiter,
        );
        let arm = crate::arm::client(
            &config.arm,
            &config.graph,
            parts.arm_tokens,
            parts.http,
            Arc::new(Limiter::new(config.arm.max_requests_per_10s)),
        );
        Sources::new(Arc::new(graph), Arc::new(arm))
    }

    /// The source of `stream`.
    pub fn of(&self, stream: &JobSpec) -> Arc<dyn Source> {
        match stream.api {
            Api::Graph => self.graph.clone(),
            Api::Arm => self.arm.clone(),
        }
    }
}
