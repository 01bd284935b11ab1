//! Journals: append blobs in `STATE_CONTAINER` that a run extends after every stored page, so
//! that what a run wrote since its last commit is known even when it is killed. Appending is
//! one small write per page; the blob is never read during a run, only at the next run's start.
//! Resetting a journal replaces it with an empty one (a write, not a delete: the identity may
//! not delete).

use azure_core::http::{NoFormat, RequestContent};
use bytes::Bytes;

use super::error::Op;
use super::{Error, Storage};

impl Storage {
    /// Replaces the journal `name` with an empty append blob.
    pub async fn reset_journal(&self, name: &str) -> Result<(), Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("reset journal", container, Some(name));
        let client = self
            .container_client(container)
            .blob_client(name)
            .append_blob_client();
        op.within(self.inner.timeouts.operation, async {
            client
                .create(None)
                .await
                .map(|_| ())
                .map_err(|e| op.error(e))
        })
        .await
    }

    /// Appends `bytes` (one block, at most 4 MiB) to the journal `name`, creating it when it
    /// does not exist yet.
    pub async fn append_journal(&self, name: &str, bytes: Bytes) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        let container = self.inner.state_container.as_str();
        let op = self.op("append to journal", container, Some(name));
        let client = self
            .container_client(container)
            .blob_client(name)
            .append_blob_client();
        let append = || {
            let body = <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(bytes.clone());
            client.append_block(body, bytes.len() as u64, None)
        };
        let limit = self.inner.timeouts.upload(bytes.len() as u64);
        op.within(limit, async {
            match append().await {
                Ok(_) => Ok(()),
                Err(e) if Op::status_and_code(&e).0 == Some(404) => {
                    match client.create(None).await {
                        Ok(_) => {}
                        // Created meanwhile by a retry of ours: append to it.
                        Err(e) if Op::status_and_code(&e).0 == Some(409) => {}
                        Err(e) => return Err(op.error(e)),
                    }
                    append().await.map(|_| ()).map_err(|e| op.error(e))
                }
                Err(e) => Err(op.error(e)),
            }
        })
        .await
    }

    /// The journal's bytes; `None` when it does not exist.
    pub async fn load_journal(&self, name: &str) -> Result<Option<Bytes>, Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("read journal", container, Some(name));
        match self.open_blob(&op, container, name, true).await? {
            Some(response) => self.read_body(&op, response).await.map(Some),
            None => Ok(None),
        }
    }
}
