//! Blob Storage: job containers, the checkpoint in container metadata, the run lock (a
//! container lease), data blobs and the state blobs, through `azure_storage_blob` 1.x.
//!
//! Authentication is a token credential for `STORAGE_ACCOUNT_URL`, or an account SAS that
//! this service signs itself from `STORAGE_CONNECTION_STRING` (the SDK has no shared-key
//! auth; see [`sas`]). Nothing here logs a SAS, key, token or a URL carrying one: logs and
//! errors name the account, container and blob only.
//!
//! Architecture invariant: checkpoint safety rests on the lease id, never on container
//! `If-Match` (which the service does not support for container metadata and Azurite silently
//! ignores). Every checkpoint write passes the lease id; the service refuses it after the
//! lease lapsed or was taken over.
//!
//! Every operation has a deadline ([`Timeouts`]: a small operation 60 s, a body 30 s plus
//! 1 s per MiB), so a stalled connection or response body fails the operation
//! ([`Error::Timeout`]) instead of hanging a run that holds the lock.
//!
//! Modules: [`connection`] (connection strings), [`sas`] (account SAS signing), `client`
//! (SDK client, retry policy, deadlines), [`checkpoint`] (metadata codec), [`lease`] (run
//! lock), [`naming`] (blob names), [`blobs`] (record encoding and data blobs, never
//! replaced), [`state`] (state blobs with ETags), `heartbeat` (small blobs replaced in place:
//! the Graph budget heartbeats), `error`.

pub mod blobs;
pub mod checkpoint;
mod client;
mod error;
mod heartbeat;
mod journal;
pub mod lease;
pub mod naming;
pub mod sas;
pub mod state;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_storage_blob::models::BlobContainerClientGetPropertiesResultHeaders;
use azure_storage_blob::{BlobContainerClient, BlobServiceClient};
use time::OffsetDateTime;

pub use crate::config::connection_string as connection;
pub use blobs::{UPLOAD_PARALLEL, UPLOAD_PARTITION_SIZE};
pub use checkpoint::{ContainerState, LastRun, LeaseInfo};
pub use client::Timeouts;
pub use error::Error;
pub use lease::{LEASE_DURATION, RunLock};
pub use naming::BlobName;
pub use state::ETag;

use error::Op;

/// Access to one storage account. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    account: String,
    endpoint: String,
    service: BlobServiceClient,
    state_container: String,
    auth_hint: &'static str,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("account", &self.inner.account)
            .field("state_container", &self.inner.state_container)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Prepares access to the configured account. No network I/O: a wrong key or an
    /// unreachable endpoint shows up on the first call, within seconds.
    ///
    /// `STORAGE_ACCOUNT_URL` needs `credential`; a connection string ignores it.
    /// `http` should have automatic decompression off (downloads return stored bytes).
    pub fn new(
        config: &crate::config::StorageConfig,
        credential: Option<Arc<dyn TokenCredential>>,
        http: reqwest::Client,
    ) -> Result<Storage, Error> {
        Storage::with_timeouts(config, credential, http, Timeouts::default())
    }

    /// [`Storage::new`] with other deadlines than the default [`Timeouts`] (tests use short
    /// ones).
    pub fn with_timeouts(
        config: &crate::config::StorageConfig,
        credential: Option<Arc<dyn TokenCredential>>,
        http: reqwest::Client,
        timeouts: Timeouts,
    ) -> Result<Storage, Error> {
        let built = client::build(config, credential, http, &timeouts)?;
        Ok(Storage {
            inner: Arc::new(Inner {
                account: built.account,
                endpoint: built.endpoint,
                service: built.service,
                state_container: config.state_container.clone(),
                auth_hint: built.auth_hint,
                timeouts,
            }),
        })
    }

    /// The deadlines in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.inner.timeouts
    }

    /// The storage account name.
    pub fn account_name(&self) -> &str {
        &self.inner.account
    }

    /// The container holding state blobs (`STATE_CONTAINER`).
    pub fn state_container(&self) -> &str {
        &self.inner.state_container
    }

    /// Creates the container unless it exists. Creating one that another process just
    /// created counts as success.
    pub async fn ensure_container(&self, container: &str) -> Result<(), Error> {
        let client = self.container_client(container);
        let limit = self.inner.timeouts.operation;
        let read = self.op("read container", container, None);
        let exists = read
            .within(limit, async {
                client.exists().await.map_err(|e| read.error(e))
            })
            .await?;
        if exists {
            return Ok(());
        }
        let create = self.op("create container", container, None);
        create
            .within(limit, async {
                match client.create(None).await {
                    Ok(_) => {
                        tracing::info!(storage.account = %self.inner.account, storage.container = %container, "created container");
                        Ok(())
                    }
                    Err(e)
                        if Op::status_and_code(&e).1.as_deref()
                            == Some("ContainerAlreadyExists") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(create.error(e)),
                }
            })
            .await
    }

    /// The checkpoint, last run and lease of a job's container (for a run's start and for
    /// `status`). A checkpoint that cannot be read is [`Error::BadCheckpoint`]; a missing
    /// container is [`Error::ContainerNotFound`].
    pub async fn read_checkpoint(&self, container: &str) -> Result<ContainerState, Error> {
        let op = self.op("read checkpoint", container, None);
        let client = self.container_client(container);
        let properties = op
            .within(self.inner.timeouts.operation, async {
                client.get_properties(None).await.map_err(|e| op.error(e))
            })
            .await?;
        let metadata = properties.metadata().map_err(|e| op.error(e))?;
        let (checkpoint, last_run) =
            checkpoint::decode(&metadata).map_err(|unreadable| Error::BadCheckpoint {
                account: self.inner.account.clone(),
                container: container.to_owned(),
                value: unreadable.value,
                hint: unreadable.hint,
            })?;
        let lease = LeaseInfo {
            state: properties
                .lease_state()
                .map_err(|e| op.error(e))?
                .map_or_else(|| "available".to_owned(), |s| s.to_string()),
            status: properties
                .lease_status()
                .map_err(|e| op.error(e))?
                .map_or_else(|| "unlocked".to_owned(), |s| s.to_string()),
        };
        Ok(ContainerState {
            checkpoint,
            last_run,
            lease,
        })
    }

    /// Records the last run and, unless `last_datetime` is `None`, moves the checkpoint.
    /// Reads the metadata, merges (keys of others, such as the Python sample's
    /// `last_execution`, are kept) and writes the whole set under the lock's lease id, so the
    /// service refuses the write once the lease lapsed or another run holds it
    /// ([`Error::LeaseLost`], [`Error::LeaseMismatch`]; the lock then reports itself lost).
    pub async fn write_checkpoint(
        &self,
        container: &str,
        lock: &RunLock,
        last_datetime: Option<OffsetDateTime>,
        last_run: &LastRun,
    ) -> Result<(), Error> {
        self.update_metadata(container, lock, |current| {
            checkpoint::merge(current, last_datetime, last_run)
        })
        .await?;
        tracing::info!(
            storage.account = %self.inner.account,
            storage.container = %container,
            checkpoint.last_datetime = %last_datetime.map(crate::timestamp::format).unwrap_or_else(|| "unchanged".to_owned()),
            run_id = %last_run.run_id,
            "checkpoint written"
        );
        Ok(())
    }

    fn container_client(&self, container: &str) -> BlobContainerClient {
        self.inner.service.blob_container_client(container)
    }

    fn op<'a>(
        &'a self,
        operation: &'static str,
        container: &'a str,
        blob: Option<&'a str>,
    ) -> Op<'a> {
        Op {
            account: &self.inner.account,
            endpoint: &self.inner.endpoint,
            operation,
            container,
            blob,
            auth_hint: self.inner.auth_hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, OutputFormat, StorageConfig, StorageTarget};
    use azure_core::credentials::{AccessToken, TokenRequestOptions};
    use secrecy::SecretString;

    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no token in unit tests",
            ))
        }
    }

    fn config(target: StorageTarget) -> StorageConfig {
        StorageConfig {
            target,
            state_container: "logs-state".into(),
            max_records_per_blob: 1000,
            format: OutputFormat::GraphPage,
            compression: Compression::None,
        }
    }

    fn http() -> reqwest::Client {
        crate::http::build_client(None).unwrap()
    }

    #[test]
    fn a_connection_string_names_its_account() {
        let target = StorageTarget::ConnectionString(SecretString::from(
            "UseDevelopmentStorage=true".to_owned(),
        ));
        let storage = Storage::new(&config(target), None, http()).unwrap();
        assert_eq!(storage.account_name(), "devstoreaccount1");
        assert_eq!(storage.state_container(), "logs-state");
        assert!(!format!("{storage:?}").contains("Eby8"));
    }

    #[test]
    fn an_account_url_needs_a_credential_and_names_its_account() {
        let url = url::Url::parse("https://contosologs.blob.core.usgovcloudapi.net/").unwrap();
        let error = Storage::new(
            &config(StorageTarget::AccountUrl(url.clone())),
            None,
            http(),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert!(error.to_string().contains("contosologs"), "{error}");

        let credential: Arc<dyn TokenCredential> = Arc::new(NoToken);
        let storage = Storage::new(
            &config(StorageTarget::AccountUrl(url)),
            Some(credential),
            http(),
        )
        .unwrap();
        assert_eq!(storage.account_name(), "contosologs");
    }

    #[test]
    fn a_bad_connection_string_is_a_configuration_error_without_the_key() {
        let target = StorageTarget::ConnectionString(SecretString::from(
            "AccountName=contosologs;AccountKey=c2VjcmV0;BlobEndpoint=ftp://x".to_owned(),
        ));
        let error = Storage::new(&config(target), None, http()).unwrap_err();
        assert!(
            error.to_string().contains("STORAGE_CONNECTION_STRING"),
            "{error}"
        );
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
    }
}
