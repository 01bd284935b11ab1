//! The service: configuration plus the clients every run shares (one HTTP pool, one Graph
//! throttle limiter for the tenant and its share of the budget when other processes draw on it
//! too, one storage client), built lazily on first use so that
//! `serve` listens before doing anything else, and an in-process guard so that one job never runs
//! twice at once in a process. Across processes the storage lease is the lock.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::config::Config;
use crate::job::JobKind;
use crate::pipeline::{
    self, RunOptions,
    report::{Outcome, RunReport},
};

pub use crate::pipeline::{Context, ContextError, Trigger};

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

    /// The streams `timer` runs: the configured ones, or (when the configuration is invalid)
    /// its default streams, each of which then reports the configuration's problems.
    pub fn timer_streams(&self, timer: crate::job::Timer) -> Vec<JobKind> {
        match &self.config {
            Ok(config) => config.timer_streams(timer),
            Err(_) => timer
                .streams()
                .filter(|kind| kind.spec_template().default_on)
                .collect(),
        }
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
