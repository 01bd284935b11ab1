//! Data blobs: record encoding (`graph-page`, `ndjson`, gzip), upload, listing, download.
//!
//! Record bytes are written exactly as Graph sent them. Uploads are bounded in memory: the
//! encoded body is built once, and bodies larger than [`UPLOAD_PARTITION_SIZE`] go up in
//! blocks of that size, [`UPLOAD_PARALLEL`] at a time (slices of the same buffer, no copies).

use std::io::Write as _;
use std::num::NonZero;

use azure_core::http::{NoFormat, RequestContent};
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
};
use bytes::Bytes;
use futures::TryStreamExt as _;

use super::naming::BlobName;
use super::{Error, Storage};
use crate::config::{Compression, OutputFormat};

/// Block size of uploads and downloads; smaller bodies are a single PUT.
pub const UPLOAD_PARTITION_SIZE: NonZero<u64> = NonZero::new(4 * 1024 * 1024).unwrap();
/// Blocks in flight at once per upload or download.
pub const UPLOAD_PARALLEL: NonZero<usize> = NonZero::new(2).unwrap();

impl Storage {
    /// Writes one data blob holding `records` (already chunked by the caller), replacing a
    /// blob of the same name. Returns the bytes stored (after compression).
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
        self.container_client(container)
            .blob_client(name.as_str())
            .upload(
                <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(body),
                Some(BlobClientUploadOptions {
                    blob_content_type: Some(content_type(format).to_owned()),
                    blob_content_encoding: content_encoding(compression).map(str::to_owned),
                    partition_size: Some(UPLOAD_PARTITION_SIZE),
                    parallel: Some(UPLOAD_PARALLEL),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| op.error(e))?;
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

    /// Names of the blobs in `container` that start with `prefix`, in name order.
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
        while let Some(item) = pager.try_next().await.map_err(|e| op.error(e))? {
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
            .container_client(container)
            .blob_client(name)
            .download(Some(BlobClientDownloadOptions {
                parallel: Some(UPLOAD_PARALLEL),
                partition_size: Some(
                    NonZero::new(UPLOAD_PARTITION_SIZE.get() as usize).expect("non-zero"),
                ),
                ..Default::default()
            }))
            .await
            .map_err(|e| op.error(e))?;
        response.body.collect().await.map_err(|e| op.error(e))
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
