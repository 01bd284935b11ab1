//! State that does not fit in 8 KB of container metadata (for example the ids already written
//! inside the replay window) lives in blobs of `STATE_CONTAINER`, written with optimistic
//! concurrency: create with `If-None-Match: *`, replace with `If-Match: <etag>`. A stale
//! write is refused with [`Error::StateConflict`].

use azure_core::http::{Etag, NoFormat, RequestContent};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientUploadOptions, BlockBlobClientUploadResult,
};
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
    pub async fn load_state(&self, name: &str) -> Result<Option<(Bytes, ETag)>, Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("read state blob", container, Some(name));
        let response = match self
            .container_client(container)
            .blob_client(name)
            .download(Some(BlobClientDownloadOptions {
                parallel: Some(UPLOAD_PARALLEL),
                partition_size: Some(
                    std::num::NonZero::new(UPLOAD_PARTITION_SIZE.get() as usize).expect("non-zero"),
                ),
                ..Default::default()
            }))
            .await
        {
            Ok(response) => response,
            Err(e) if Op::status_and_code(&e).0 == Some(404) => return Ok(None),
            Err(e) => return Err(op.error(e)),
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
        let body = response.body.collect().await.map_err(|e| op.error(e))?;
        Ok(Some((body, ETag(etag.to_string()))))
    }

    /// Writes a state blob if nobody changed it since it was read: `expected` is the ETag
    /// from [`Storage::load_state`], or `None` for a blob that must not exist yet. Returns the
    /// new ETag. Creates the state container when missing.
    pub async fn save_state(
        &self,
        name: &str,
        body: Bytes,
        expected: Option<&ETag>,
    ) -> Result<ETag, Error> {
        let container = self.inner.state_container.as_str();
        let op = self.op("write state blob", container, Some(name));
        let result = match self.put_state(name, body.clone(), expected).await {
            Err(e)
                if Op::status_and_code(&e).1.as_deref() == Some("ContainerNotFound")
                    && expected.is_none() =>
            {
                self.ensure_container(container).await?;
                self.put_state(name, body, expected).await
            }
            other => other,
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
            // 412: the ETag no longer matches; 409: the blob already exists; 404: it was
            // deleted since it was read.
            Err(e) if matches!(Op::status_and_code(&e).0, Some(409 | 412 | 404)) => {
                Err(Error::StateConflict {
                    account: self.inner.account.clone(),
                    container: container.to_owned(),
                    name: name.to_owned(),
                })
            }
            Err(e) => Err(op.error(e)),
        }
    }

    async fn put_state(
        &self,
        name: &str,
        body: Bytes,
        expected: Option<&ETag>,
    ) -> azure_core::Result<BlockBlobClientUploadResult> {
        let (if_match, if_none_match) = match expected {
            Some(etag) => (Some(Etag::from(etag.0.clone())), None),
            None => (None, Some(Etag::from("*"))),
        };
        self.container_client(&self.inner.state_container)
            .blob_client(name)
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
            .await
    }
}
