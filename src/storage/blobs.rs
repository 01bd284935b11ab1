//! Data blobs: record encoding (`graph-page`, `ndjson`, gzip), upload, listing, download.
//!
//! Record bytes are written exactly as Graph sent them. Uploads are bounded in memory: the
//! encoded body is built once, and bodies larger than [`UPLOAD_PARTITION_SIZE`] go up in
//! blocks of that size, [`UPLOAD_PARALLEL`] at a time (slices of the same buffer, no copies).
//!
//! A stored blob is never replaced: uploads carry `If-None-Match: *` (on the single Put Blob,
//! or on the Put Block List that commits the blocks of a large body; staged blocks change
//! nothing until committed). When the name is taken, the stored bytes are compared with ours:
//! the same bytes mean our own earlier write (its reply was lost and the SDK retried), which
//! is success; other bytes are [`Error::BlobExists`].

use std::io::Write as _;
use std::num::NonZero;

use azure_core::http::headers::HeaderName;
use azure_core::http::{Etag, NoFormat, RequestContent};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientDownloadResult, BlobClientUploadOptions,
    BlobContainerClientListBlobsOptions,
};
use bytes::Bytes;
use futures::TryStreamExt as _;

use super::error::Op;
use super::naming::BlobName;
use super::state::ETag;
use super::{Error, Storage};
use crate::config::{Compression, OutputFormat};

/// Block size of uploads and downloads; smaller bodies are a single PUT.
pub const UPLOAD_PARTITION_SIZE: NonZero<u64> = NonZero::new(4 * 1024 * 1024).unwrap();
/// Blocks in flight at once per upload or download.
pub const UPLOAD_PARALLEL: NonZero<usize> = NonZero::new(2).unwrap();

impl Storage {
    /// Writes one data blob holding `records` (already chunked by the caller), only if no
    /// blob of that name exists. Returns the bytes stored (after compression).
    ///
    /// A blob of that name holding exactly these bytes counts as written (our own write whose
    /// reply was lost, then retried); one holding other bytes is left unchanged and the call
    /// fails with [`Error::BlobExists`], so that the caller takes the next sequence number.
    pub async fn upload_records(
        &self,
        container: &str,
        name: &BlobName,
        records: &[&[u8]],
        format: OutputFormat,
        compression: Compression,
    ) -> Result<u64, Error> {
        let op = self.op("upload blob", container, Some(name.as_str()));
        let body = encode(records, format, compression)
            .await
            .map_err(|cause| Error::Request {
                account: self.inner.account.clone(),
                operation: "encode blob",
                target: format!("{container}/{name}"),
                status: None,
                code: None,
                cause,
            })?;
        let stored = body.len() as u64;
        let client = self.container_client(container).blob_client(name.as_str());
        let created = op
            .within(self.inner.timeouts.upload(stored), async {
                match client
                    .upload(
                        <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(body.clone()),
                        Some(BlobClientUploadOptions {
                            blob_content_type: Some(content_type(format).to_owned()),
                            blob_content_encoding: content_encoding(compression).map(str::to_owned),
                            if_none_match: Some(Etag::from("*")),
                            partition_size: Some(UPLOAD_PARTITION_SIZE),
                            parallel: Some(UPLOAD_PARALLEL),
                            ..Default::default()
                        }),
                    )
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if name_taken(&e) => Ok(false),
                    Err(e) => Err(op.error(e)),
                }
            })
            .await?;
        if !created {
            if self
                .holds_exactly(container, name.as_str(), &body)
                .await?
                .is_none()
            {
                return Err(Error::BlobExists {
                    account: self.inner.account.clone(),
                    container: container.to_owned(),
                    blob: name.as_str().to_owned(),
                });
            }
            tracing::info!(
                storage.account = %self.inner.account,
                storage.container = %container,
                blob.name = %name,
                "the blob already holds exactly these bytes (an earlier try whose reply was lost); not written again"
            );
        }
        tracing::debug!(
            storage.account = %self.inner.account,
            storage.container = %container,
            blob.name = %name,
            blob.bytes = stored,
            blob.records = records.len(),
            "blob written"
        );
        Ok(stored)
    }

    /// Names of the blobs in `container` that start with `prefix`, in name order. Each page
    /// of the listing has the deadline of a small operation.
    pub async fn list_blobs(&self, container: &str, prefix: &str) -> Result<Vec<String>, Error> {
        let op = self.op("list blobs in", container, None);
        let mut pager = self
            .container_client(container)
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                ..Default::default()
            }))
            .map_err(|e| op.error(e))?;
        let mut names = Vec::new();
        let limit = self.inner.timeouts.operation;
        while let Some(item) = op
            .within(limit, async {
                pager.try_next().await.map_err(|e| op.error(e))
            })
            .await?
        {
            if let Some(name) = item.name {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The stored bytes of a blob, as stored (a gzip blob stays compressed).
    pub async fn download(&self, container: &str, name: &str) -> Result<Bytes, Error> {
        let op = self.op("download blob", container, Some(name));
        let response = self
            .open_blob(&op, container, name, false)
            .await?
            .expect("a missing blob is an error here");
        self.read_body(&op, response).await
    }

    /// Starts a download: the response headers within a small operation's deadline. `None`
    /// for a missing blob or container when `missing_ok`.
    pub(crate) async fn open_blob(
        &self,
        op: &Op<'_>,
        container: &str,
        name: &str,
        missing_ok: bool,
    ) -> Result<Option<BlobClientDownloadResult>, Error> {
        let client = self.container_client(container).blob_client(name);
        op.within(self.inner.timeouts.operation, async {
            match client
                .download(Some(BlobClientDownloadOptions {
                    parallel: Some(UPLOAD_PARALLEL),
                    partition_size: Some(
                        NonZero::new(UPLOAD_PARTITION_SIZE.get() as usize).expect("non-zero"),
                    ),
                    ..Default::default()
                }))
                .await
            {
                Ok(response) => Ok(Some(response)),
                Err(e) if missing_ok && Op::status_and_code(&e).0 == Some(404) => Ok(None),
                Err(e) => Err(op.error(e)),
            }
        })
        .await
    }

    /// The whole body of a started download, within the body deadline for its size.
    pub(crate) async fn read_body(
        &self,
        op: &Op<'_>,
        response: BlobClientDownloadResult,
    ) -> Result<Bytes, Error> {
        let limit = self.inner.timeouts.download_body(blob_size(&response));
        op.within(limit, async {
            response.body.collect().await.map_err(|e| op.error(e))
        })
        .await
    }

    /// The blob's ETag when it holds exactly `expected`; `None` when it holds other bytes or
    /// does not exist. The body is compared as it arrives (no second copy is kept) and not
    /// read at all when its size differs.
    pub(crate) async fn holds_exactly(
        &self,
        container: &str,
        name: &str,
        expected: &[u8],
    ) -> Result<Option<ETag>, Error> {
        let op = self.op("read back blob", container, Some(name));
        let Some(response) = self.open_blob(&op, container, name, true).await? else {
            return Ok(None);
        };
        let size = blob_size(&response);
        if size != expected.len() as u64 {
            return Ok(None);
        }
        let etag = response
            .properties
            .etag
            .as_ref()
            .map(|e| ETag(e.to_string()));
        let mut body = response.body;
        let same = op
            .within(self.inner.timeouts.download_body(size), async {
                let mut at = 0usize;
                while let Some(chunk) = body.try_next().await.map_err(|e| op.error(e))? {
                    let end = at + chunk.len();
                    if end > expected.len() || expected[at..end] != chunk[..] {
                        return Ok(false);
                    }
                    at = end;
                }
                Ok(at == expected.len())
            })
            .await?;
        if !same {
            return Ok(None);
        }
        etag.map(Some).ok_or_else(|| Error::Request {
            account: self.inner.account.clone(),
            operation: "read back blob",
            target: format!("{container}/{name}"),
            status: None,
            code: None,
            cause: "the response has no ETag".to_owned(),
        })
    }
}

/// The blob's whole size: the total of `Content-Range` (a partitioned download asks for the
/// first partition), else `Content-Length`.
fn blob_size(response: &BlobClientDownloadResult) -> u64 {
    response
        .headers
        .get_optional_str(&HeaderName::from_static("content-range"))
        .and_then(|range| range.rsplit('/').next()?.trim().parse().ok())
        .or(response.properties.content_length)
        .unwrap_or(0)
}

/// The write was refused because the name is taken: 409 `BlobAlreadyExists`, or 412 (the
/// `If-None-Match: *` condition failed).
pub(crate) fn name_taken(error: &azure_core::Error) -> bool {
    match Op::status_and_code(error) {
        (Some(409), Some(code)) => code == "BlobAlreadyExists",
        (Some(412), code) => code.is_none_or(|c| c == "ConditionNotMet"),
        _ => false,
    }
}

/// The `Content-Type` of a layout.
pub fn content_type(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::GraphPage => "application/json",
        OutputFormat::Ndjson => "application/x-ndjson",
    }
}

/// The `Content-Encoding` of a compression, if any.
pub fn content_encoding(compression: Compression) -> Option<&'static str> {
    match compression {
        Compression::None => None,
        Compression::Gzip => Some("gzip"),
    }
}

/// The blob body: `{"value":[r1,r2,...]}` or one record per line, then gzip if asked
/// (compression runs off the async threads).
pub async fn encode(
    records: &[&[u8]],
    format: OutputFormat,
    compression: Compression,
) -> Result<Bytes, String> {
    let plain = encode_plain(records, format);
    match compression {
        Compression::None => Ok(Bytes::from(plain)),
        Compression::Gzip => tokio::task::spawn_blocking(move || gzip(&plain))
            .await
            .map_err(|e| format!("gzip task failed: {e}"))?
            .map(Bytes::from)
            .map_err(|e| format!("gzip failed: {e}")),
    }
}

/// The uncompressed body. In `ndjson`, a record containing line breaks (only possible as
/// whitespace between JSON tokens) has them turned into spaces so that it stays one line;
/// every other byte is kept.
pub fn encode_plain(records: &[&[u8]], format: OutputFormat) -> Vec<u8> {
    let payload: usize = records.iter().map(|r| r.len() + 1).sum();
    match format {
        OutputFormat::GraphPage => {
            let mut body = Vec::with_capacity(payload + 12);
            body.extend_from_slice(b"{\"value\":[");
            for (i, record) in records.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(record);
            }
            body.extend_from_slice(b"]}");
            body
        }
        OutputFormat::Ndjson => {
            let mut body = Vec::with_capacity(payload);
            for record in records {
                let start = body.len();
                body.extend_from_slice(record);
                // Graph sends compact JSON: a line break is rare, look for one first (one SIMD
                // pass for both bytes).
                if memchr::memchr2(b'\n', b'\r', record).is_some() {
                    for byte in &mut body[start..] {
                        if *byte == b'\n' || *byte == b'\r' {
                            *byte = b' ';
                        }
                    }
                }
                body.push(b'\n');
            }
            body
        }
    }
}

fn gzip(plain: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain.len() / 4 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(plain)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    const R1: &[u8] = br#"{"id":"a","activityDateTime":"2024-01-13T14:00:01.1234567Z"}"#;
    const R2: &[u8] = br#"{"id":"b c","x":"\u00e9\n"}"#;

    #[test]
    fn graph_page_wraps_records_verbatim() {
        assert_eq!(
            encode_plain(&[R1, R2], OutputFormat::GraphPage),
            [b"{\"value\":[".as_slice(), R1, b",", R2, b"]}"].concat()
        );
        assert_eq!(
            encode_plain(&[], OutputFormat::GraphPage),
            b"{\"value\":[]}"
        );
        let parsed: serde_json::Value =
            serde_json::from_slice(&encode_plain(&[R1, R2], OutputFormat::GraphPage)).unwrap();
        assert_eq!(parsed["value"][1]["id"], "b c");
    }

    #[test]
    fn ndjson_is_one_record_per_line() {
        assert_eq!(
            encode_plain(&[R1, R2], OutputFormat::Ndjson),
            [R1, b"\n", R2, b"\n"].concat()
        );
        let pretty: &[u8] = b"{\n  \"id\": \"p\"\r\n}";
        assert_eq!(
            encode_plain(&[pretty], OutputFormat::Ndjson),
            b"{   \"id\": \"p\"  }\n"
        );
    }

    #[tokio::test]
    async fn gzip_round_trips() {
        let body = encode(&[R1, R2], OutputFormat::Ndjson, Compression::Gzip)
            .await
            .unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, encode_plain(&[R1, R2], OutputFormat::Ndjson));
    }
}
