//! Building the SDK's `BlobServiceClient` from the configuration: the shared HTTP client as
//! transport, a retry policy short enough that a dead endpoint is reported in seconds, a
//! per-try timeout, and either a token credential or the self-signed account SAS; and the
//! [`Timeouts`] that bound every operation.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Request, RetryOptions, Transport,
};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use secrecy::ExposeSecret;

use super::Error;
use super::connection::{self, ConnectionString};
use super::sas::{SasPolicy, SasSigner};
use crate::config::{StorageConfig, StorageTarget};

/// Tries per request: the first plus this many retries of connection errors, 408, 429, 5xx.
pub const MAX_RETRIES: u32 = 4;
/// No retry starts after this much time since the first try ended: a refused connection is
/// reported in about 5 s, an unanswered one (the shared client's 5 s connect timeout) in
/// about 16 s; never minutes of silent retries.
pub const MAX_RETRY_ELAPSED: Duration = Duration::from_secs(8);

/// Deadlines of storage operations, so that a stalled connection or response body never
/// hangs a run (which may hold the run lock meanwhile). Expiry is [`Error::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One try of one request, until its response headers; the SDK retries a try that
    /// times out (within [`MAX_RETRIES`] and [`MAX_RETRY_ELAPSED`]).
    pub per_try: Duration,
    /// A whole small operation, the SDK's retries included: container create and properties,
    /// metadata, lease operations, one page of a listing, the response headers of a download.
    pub operation: Duration,
    /// The body of a download, after its headers: this plus [`Timeouts::per_mib`] for each
    /// started MiB.
    pub body: Duration,
    /// Added per started MiB of a body, downloaded or uploaded. An upload (retries included)
    /// gets [`Timeouts::operation`] plus this per MiB.
    pub per_mib: Duration,
}

impl Default for Timeouts {
    /// 30 s per try, 60 s per small operation, 30 s + 1 s per MiB for a body.
    fn default() -> Timeouts {
        Timeouts {
            per_try: Duration::from_secs(30),
            operation: Duration::from_secs(60),
            body: Duration::from_secs(30),
            per_mib: Duration::from_secs(1),
        }
    }
}

impl Timeouts {
    fn scaled(&self, base: Duration, bytes: u64) -> Duration {
        let mib = bytes.div_ceil(1024 * 1024);
        base + self.per_mib * u32::try_from(mib).unwrap_or(u32::MAX)
    }

    /// The deadline of a download's body of `bytes` bytes, once its headers arrived.
    pub fn download_body(&self, bytes: u64) -> Duration {
        self.scaled(self.body, bytes)
    }

    /// The deadline of an upload of `bytes` bytes, retries included.
    pub fn upload(&self, bytes: u64) -> Duration {
        self.scaled(self.operation, bytes)
    }
}

/// What the client authenticates with, for error hints.
pub(crate) struct Built {
    pub account: String,
    /// Scheme, host and port of the endpoint, for error messages.
    pub endpoint: String,
    pub service: BlobServiceClient,
    pub auth_hint: &'static str,
}

/// Builds the service client. No network I/O.
pub(crate) fn build(
    config: &StorageConfig,
    credential: Option<Arc<dyn TokenCredential>>,
    http: reqwest::Client,
    timeouts: &Timeouts,
) -> Result<Built, Error> {
    let mut client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: time::Duration::milliseconds(200),
            max_retries: MAX_RETRIES,
            max_total_elapsed: time::Duration::try_from(MAX_RETRY_ELAPSED)
                .expect("a small duration converts"),
            max_delay: time::Duration::seconds(2),
        }),
        ..ClientOptions::default()
    };
    client_options
        .per_try_policies
        .push(Arc::new(TryTimeoutPolicy(timeouts.per_try)));

    let (account, url, credential, auth_hint) = match &config.target {
        StorageTarget::AccountUrl(url) => {
            let account = connection::account_name_from_url(url).ok_or_else(|| {
                Error::Config(format!(
                    "STORAGE_ACCOUNT_URL `{url}` does not name an account (https://<account>.blob.<suffix>)"
                ))
            })?;
            let credential = credential.ok_or_else(|| {
                Error::Config(format!(
                    "STORAGE_ACCOUNT_URL for account `{account}` needs a token credential"
                ))
            })?;
            if url.scheme() != "https" {
                return Err(Error::Config(format!(
                    "STORAGE_ACCOUNT_URL for account `{account}` must use https with token authentication"
                )));
            }
            (
                account,
                connection::normalize_endpoint(url.clone()),
                Some(credential),
                "the token was refused: check that the identity is in the account's tenant and cloud, \
                 and has `Storage Blob Data Contributor` on the account",
            )
        }
        StorageTarget::ConnectionString(secret) => {
            let parsed = ConnectionString::parse(secret.expose_secret()).map_err(|message| {
                Error::Config(format!("STORAGE_CONNECTION_STRING: {message}"))
            })?;
            client_options
                .per_try_policies
                .push(Arc::new(SasPolicy::new(Arc::new(SasSigner::new(&parsed)))));
            (
                parsed.account_name.clone(),
                parsed.blob_endpoint.clone(),
                None,
                "the request signature was refused: check AccountKey (and AccountName) in \
                 STORAGE_CONNECTION_STRING against the account's access keys, and the clock",
            )
        }
    };

    let endpoint = url.origin().ascii_serialization();
    let service = BlobServiceClient::new(
        url,
        credential,
        Some(BlobServiceClientOptions {
            client_options,
            ..BlobServiceClientOptions::default()
        }),
    )
    .map_err(|e| Error::Config(format!("storage account `{account}`: {e}")))?;
    Ok(Built {
        account,
        endpoint,
        service,
        auth_hint,
    })
}

/// Ends one try that has no response headers after the given time, as an I/O error (retried).
#[derive(Debug)]
struct TryTimeoutPolicy(Duration);

#[async_trait::async_trait]
impl Policy for TryTimeoutPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        match tokio::time::timeout(self.0, next[0].send(ctx, request, &next[1..])).await {
            Ok(result) => result,
            Err(_) => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                format!("no response within {:?}", self.0),
            )),
        }
    }
}
