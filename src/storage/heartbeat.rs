//! Small blobs that are replaced in place, such as the heartbeats by which processes share
//! Graph's throttle budget (`graph-share/<job container>` in `STATE_CONTAINER`, see
//! `crate::pipeline::share`). Unlike data blobs (never replaced) and state blobs (replaced
//! under an ETag), these are written unconditionally: each has one writer at a time (the run
//! holding the job's lock), and the last write wins. Nothing here deletes a blob, so the
//! account SAS needs no `d` permission.

use azure_core::http::{NoFormat, RequestContent};
use azure_storage_blob::models::BlobClientUploadOptions;
use bytes::Bytes;

use super::{Error, Storage};

impl Storage {
    /// Writes `body` to `container/name`, replacing the blob if it exists (no condition), within
    /// the deadline of an upload of its size.
    pub async fn put_small_blob(
        &self,
        container: &str,
        name: &str,
        body: Bytes,
    ) -> Result<(), Error> {
        let op = self.op("write blob", container, Some(name));
        let limit = self.inner.timeouts.upload(body.len() as u64);
        let client = self.container_client(container).blob_client(name);
        op.within(limit, async {
            client
                .upload(
                    <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(body),
                    Some(BlobClientUploadOptions {
                        blob_content_type: Some("application/json".to_owned()),
                        ..Default::default()
                    }),
                )
                .await
                .map(|_| ())
                .map_err(|e| op.error(e))
        })
        .await
    }

    /// The bytes of `container/name`; `None` when the blob (or the container) does not exist.
    pub async fn read_small_blob(
        &self,
        container: &str,
        name: &str,
    ) -> Result<Option<Bytes>, Error> {
        let op = self.op("read blob", container, Some(name));
        let Some(response) = self.open_blob(&op, container, name, true).await? else {
            return Ok(None);
        };
        self.read_body(&op, response).await.map(Some)
    }
}
