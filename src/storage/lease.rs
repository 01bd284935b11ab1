//! The run lock: a lease on the job's container.
//!
//! A run takes a 60 s lease ([`LEASE_DURATION`]) and a background task renews it every third
//! of that (20 s). If renewal keeps failing until less than one interval of the lease is
//! left, or the service says the lease is gone, the lock reports itself lost
//! ([`RunLock::lost`]) while the lease is still valid, so the run can stop before another run
//! could take over. A crashed run stops renewing and its lease lapses within the duration.
//! Dropping a `RunLock` without [`RunLock::release`] behaves like a crash (the lease lapses).

use std::time::Duration;

use azure_storage_blob::BlobContainerClient;
use azure_storage_blob::models::{
    BlobContainerClientAcquireLeaseOptions, BlobContainerClientAcquireLeaseResultHeaders,
    BlobContainerClientBreakLeaseOptions,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::Op;
use super::{Error, Storage};

/// The lease a run holds on its container.
pub const LEASE_DURATION: Duration = Duration::from_secs(60);

/// A held run lock. Release it at the end of the run.
pub struct RunLock {
    storage: Storage,
    container: String,
    lease_id: String,
    client: BlobContainerClient,
    lost: CancellationToken,
    stop: CancellationToken,
    renewer: Option<JoinHandle<()>>,
}

impl Storage {
    /// Takes the run lock of a job's container with the standard 60 s lease. `None` means
    /// another run holds it (not an error).
    pub async fn try_lock(&self, container: &str) -> Result<Option<RunLock>, Error> {
        self.try_lock_for(container, LEASE_DURATION).await
    }

    /// [`Storage::try_lock`] with another lease duration (15 to 60 s; tests use 15 s).
    pub async fn try_lock_for(
        &self,
        container: &str,
        duration: Duration,
    ) -> Result<Option<RunLock>, Error> {
        if !(15..=60).contains(&duration.as_secs()) || duration.subsec_nanos() != 0 {
            return Err(Error::Config(format!(
                "a lease lasts 15 to 60 whole seconds, not {duration:?}"
            )));
        }
        let op = self.op("acquire lease on", container, None);
        let client = self.container_client(container);
        // A proposed id makes a retried acquire (after a lost response) succeed, not 409.
        let proposed = uuid::Uuid::new_v4().to_string();
        let acquired_at = Instant::now();
        let acquired = op
            .within(self.inner.timeouts.operation, async {
                match client
                    .acquire_lease(
                        duration.as_secs() as i32,
                        Some(BlobContainerClientAcquireLeaseOptions {
                            proposed_lease_id: Some(proposed.clone()),
                            ..Default::default()
                        }),
                    )
                    .await
                {
                    Ok(response) => Ok(Some(response)),
                    Err(e)
                        if Op::status_and_code(&e).1.as_deref() == Some("LeaseAlreadyPresent") =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(op.error(e)),
                }
            })
            .await?;
        let Some(response) = acquired else {
            tracing::info!(storage.account = %self.inner.account, storage.container = %container, "run lock held by another run");
            return Ok(None);
        };
        let lease_id = response
            .lease_id()
            .map_err(|e| op.error(e))?
            .unwrap_or(proposed);
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew(Renewal {
            account: self.inner.account.clone(),
            container: container.to_owned(),
            lease_id: lease_id.clone(),
            client: self.container_client(container),
            duration,
            valid_until: acquired_at + duration,
            lost: lost.clone(),
            stop: stop.clone(),
        }));
        tracing::info!(storage.account = %self.inner.account, storage.container = %container, lease.seconds = duration.as_secs(), "run lock taken");
        Ok(Some(RunLock {
            storage: self.clone(),
            container: container.to_owned(),
            lease_id,
            client,
            lost,
            stop,
            renewer: Some(renewer),
        }))
    }

    /// Breaks the container's lease at once, whoever holds it (operator action: the holder's
    /// next renewal or checkpoint write fails and it stops).
    pub async fn break_lease(&self, container: &str) -> Result<(), Error> {
        let op = self.op("break lease on", container, None);
        let client = self.container_client(container);
        op.within(self.inner.timeouts.operation, async {
            match client
                .break_lease(Some(BlobContainerClientBreakLeaseOptions {
                    break_period: Some(0),
                    ..Default::default()
                }))
                .await
            {
                Ok(_) => Ok(()),
                // No lease to break.
                Err(e)
                    if Op::status_and_code(&e).1.as_deref()
                        == Some("LeaseNotPresentWithLeaseOperation") =>
                {
                    Ok(())
                }
                Err(e) => Err(op.error(e)),
            }
        })
        .await
    }
}

impl RunLock {
    /// The lease id; every checkpoint write passes it.
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// The container this lock guards.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The storage account of the container.
    pub fn account(&self) -> &str {
        self.storage.account_name()
    }

    /// Cancelled when the lock is lost (renewal failed, or the service refused the lease id):
    /// the run must stop and must not write its checkpoint.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Stops renewing and releases the lease so the next run can start at once.
    pub async fn release(mut self) -> Result<(), Error> {
        self.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.await;
        }
        let op = self.storage.op("release lease on", &self.container, None);
        op.within(self.storage.inner.timeouts.operation, async {
            match self.client.release_lease(self.lease_id.clone(), None).await {
                Ok(_) => {
                    tracing::info!(storage.account = %self.account(), storage.container = %self.container, "run lock released");
                    Ok(())
                }
                Err(e) => Err(self.classify(e, &op)),
            }
        })
        .await
    }

    /// Translates an error of an operation made under this lease; a refused lease id marks
    /// the lock lost.
    pub(crate) fn classify(&self, error: azure_core::Error, op: &Op<'_>) -> Error {
        let (status, code) = Op::status_and_code(&error);
        let code = code.unwrap_or_default();
        if matches!(status, Some(409 | 412)) && code.starts_with("Lease") {
            self.lost.cancel();
            if code.starts_with("LeaseIdMismatch") {
                return Error::LeaseMismatch {
                    account: self.account().to_owned(),
                    container: self.container.clone(),
                };
            }
            return Error::LeaseLost {
                account: self.account().to_owned(),
                container: self.container.clone(),
                cause: format!("the service answered {code}: the lease lapsed or was broken"),
            };
        }
        op.error(error)
    }
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLock")
            .field("account", &self.account())
            .field("container", &self.container)
            .field("lost", &self.lost.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

struct Renewal {
    account: String,
    container: String,
    lease_id: String,
    client: BlobContainerClient,
    duration: Duration,
    valid_until: Instant,
    lost: CancellationToken,
    stop: CancellationToken,
}

/// Renews every third of the lease. A refused renewal (4xx) means lost at once; a failed one
/// (network, 5xx, timeout) is retried every 2 s until less than one interval of the lease is
/// left, then the lock is declared lost while the lease is still valid.
async fn renew(mut r: Renewal) {
    let interval = r.duration / 3;
    let attempt_timeout = interval / 2;
    let mut wait = interval;
    loop {
        tokio::select! {
            _ = r.stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let sent_at = Instant::now();
        let result = tokio::time::timeout(
            attempt_timeout,
            r.client.renew_lease(r.lease_id.clone(), None),
        )
        .await;
        let cause = match result {
            Ok(Ok(_)) => {
                r.valid_until = sent_at + r.duration;
                wait = interval;
                tracing::debug!(storage.account = %r.account, storage.container = %r.container, "run lock renewed");
                continue;
            }
            Ok(Err(error)) => {
                let (status, code) = Op::status_and_code(&error);
                let described = match &code {
                    Some(code) => format!("HTTP {} {code}", status.unwrap_or(0)),
                    None => super::error::describe(&error),
                };
                if matches!(status, Some(s) if s < 500 && s != 408 && s != 429) {
                    tracing::error!(storage.account = %r.account, storage.container = %r.container, error = %described, "run lock lost: the service refused the renewal");
                    r.lost.cancel();
                    return;
                }
                described
            }
            Err(_) => format!("no answer within {} s", attempt_timeout.as_secs()),
        };
        if r.stop.is_cancelled() {
            return;
        }
        let left = r.valid_until.saturating_duration_since(Instant::now());
        if left < interval {
            tracing::error!(storage.account = %r.account, storage.container = %r.container, error = %cause, lease.left_ms = left.as_millis() as u64, "run lock lost: renewal kept failing");
            r.lost.cancel();
            return;
        }
        tracing::warn!(storage.account = %r.account, storage.container = %r.container, error = %cause, lease.left_ms = left.as_millis() as u64, "run lock renewal failed; retrying");
        wait = Duration::from_secs(2).min(interval);
    }
}
