//! State that does not fit in 8 KB of container metadata (for example the ids already written
//! inside the replay window) lives in blobs of `STATE_CONTAINER`, written with optimistic
//! concurrency: create with `If-None-Match: *`, replace with `If-Match: <etag>`. A stale
//! write is refused with [`Error::StateConflict`]; a write refused only because our own
//! earlier try of it already landed (the reply was lost) is recognised by its bytes and
//! succeeds.

use azure_core::http::{Etag, NoFormat, RequestContent};
use azure_storage_blob::models::{BlobClientUploadOptions, BlockBlobClientUploadResult};
use bytes::Bytes;

use super::error::Op;
use super::{Error, Storage, UPLOAD_PARALLEL, UPLOAD_PARTITION_SIZE};

/// A blob's entity tag, quotes included, exactly as the service sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Storage {
    /// Reads a state blob and its ETag; `None` when it (or the state container) does not exist.
    /// The response headers have a small operation's deadline and the body one scaled to its
    /// size ([`super::Timeouts`]): a stalled read fails with [`Error::Timeout`].
    pub async fn load_state(&self, name: &str) -> Result<Option<(Bytes, ETag)>, Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("read state blob", container, Some(name));
        let Some(response) = self.open_blob(&op, container, name, true).await? else {
            return Ok(None);
        };
        let etag = response
            .properties
            .etag
            .clone()
            .ok_or_else(|| Error::Request {
                account: self.inner.account.clone(),
                operation: "read state blob",
                target: format!("{container}/{name}"),
                status: None,
                code: None,
                cause: "the response has no ETag".to_owned(),
            })?;
        let body = self.read_body(&op, response).await?;
        Ok(Some((body, ETag(etag.to_string()))))
    }

    /// Writes a state blob if nobody changed it since it was read: `expected` is the ETag
    /// from [`Storage::load_state`], or `None` for a blob that must not exist yet. Returns the
    /// new ETag. Creates the state container when missing.
    ///
    /// When the condition fails, the blob is read back: if it holds exactly `body`, the write
    /// is ours (its reply was lost and the SDK's retry met our own write) and its current
    /// ETag is returned; otherwise [`Error::StateConflict`].
    pub async fn save_state(
        &self,
        name: &str,
        body: Bytes,
        expected: Option<&ETag>,
    ) -> Result<ETag, Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("write state blob", container, Some(name));
        let result = match self.put_state(&op, name, body.clone(), expected).await? {
            Err(e)
                if Op::status_and_code(&e).1.as_deref() == Some("ContainerNotFound")
                    && expected.is_none() =>
            {
                self.ensure_container(container).await?;
                self.put_state(&op, name, body.clone(), expected).await?
            }
            other => other,
        };
        let conflict = || Error::StateConflict {
            account: self.inner.account.clone(),
            container: container.to_owned(),
            name: name.to_owned(),
        };
        match result {
            Ok(uploaded) => {
                let etag = uploaded.etag.ok_or_else(|| Error::Request {
                    account: self.inner.account.clone(),
                    operation: "write state blob",
                    target: format!("{container}/{name}"),
                    status: None,
                    code: None,
                    cause: "the response has no ETag".to_owned(),
                })?;
                Ok(ETag(etag.to_string()))
            }
            // 412: the ETag no longer matches; 409: the blob already exists. Either may be
            // our own write met by a retry: then the blob holds exactly our bytes.
            Err(e) if matches!(Op::status_and_code(&e).0, Some(409 | 412)) => {
                match self.holds_exactly(container, name, &body).await? {
                    Some(current) => {
                        tracing::info!(
                            storage.account = %self.inner.account,
                            storage.container = %container,
                            blob.name = %name,
                            "the state blob already holds exactly these bytes (an earlier try whose reply was lost)"
                        );
                        Ok(current)
                    }
                    None => Err(conflict()),
                }
            }
            // 404: it was deleted since it was read.
            Err(e) if Op::status_and_code(&e).0 == Some(404) => Err(conflict()),
            Err(e) => Err(op.error(e)),
        }
    }

    /// One conditional upload under the upload deadline; the outer error is the deadline only.
    async fn put_state(
        &self,
        op: &Op<'_>,
        name: &str,
        body: Bytes,
        expected: Option<&ETag>,
    ) -> Result<azure_core::Result<BlockBlobClientUploadResult>, Error> {
        let (if_match, if_none_match) = match expected {
            Some(etag) => (Some(Etag::from(etag.0.clone())), None),
            None => (None, Some(Etag::from("*"))),
        };
        let limit = self.inner.timeouts.upload(body.len() as u64);
        let client = self
            .container_client(&self.inner.state_container)
            .blob_client(name);
        op.within(limit, async {
            Ok(client
                .upload(
                    <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(body),
                    Some(BlobClientUploadOptions {
                        blob_content_type: Some("application/octet-stream".to_owned()),
                        if_match,
                        if_none_match,
                        partition_size: Some(UPLOAD_PARTITION_SIZE),
                        parallel: Some(UPLOAD_PARALLEL),
                        ..Default::default()
                    }),
                )
                .await)
        })
        .await
    }
}
