//! Shared test helpers.

// ---------------------------------------------------------------------------------------------
// Azurite (storage tests)
//
// `azurite()` gives a `Storage` on the Azurite at AZURITE_BLOB_URL
// (default http://127.0.0.1:10000/devstoreaccount1; start one with `scripts/azurite.sh start`).
// When Azurite cannot be reached, a test fails under CI=true and is skipped with a printed
// notice otherwise:
//
//     let Some(storage) = helpers::azurite().await else { return };
// ---------------------------------------------------------------------------------------------

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use entra_export::config::{Compression, OutputFormat, StorageConfig, StorageTarget};
use entra_export::storage::Storage;
use entra_export::storage::connection::ConnectionString;
use entra_export::storage::sas::{SasPolicy, SasSigner};
use secrecy::SecretString;

/// Azurite's well-known development account key, published in the Azurite README.
pub const AZURITE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// The Azurite blob endpoint under test.
pub fn azurite_url() -> String {
    std::env::var("AZURITE_BLOB_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:10000/devstoreaccount1".to_owned())
}

/// The account-key connection string of the Azurite under test.
pub fn azurite_connection_string() -> String {
    connection_string(&azurite_url(), AZURITE_ACCOUNT_KEY)
}

/// An account-key connection string for the development account at `blob_endpoint`.
pub fn connection_string(blob_endpoint: &str, key: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};BlobEndpoint={blob_endpoint};"
    )
}

/// A container name no other test uses: `t-<tag>-<random>`.
pub fn unique_container(tag: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(30)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("t-{tag}-{}", &random[..12])
}

/// A `Storage` for `connection_string`, with its own state container.
pub fn storage_for(connection_string: &str) -> Storage {
    let config = StorageConfig {
        target: StorageTarget::ConnectionString(SecretString::from(connection_string.to_owned())),
        state_container: unique_container("state"),
        max_records_per_blob: 1000,
        format: OutputFormat::GraphPage,
        compression: Compression::None,
    };
    let http = entra_export::http::build_client(None).expect("the HTTP client builds");
    Storage::new(&config, None, http).expect("the storage configuration is valid")
}

/// A `Storage` on the Azurite under test, or `None` (after a printed notice) when Azurite
/// cannot be reached outside CI. Under `CI=true` an unreachable Azurite fails the test.
pub async fn azurite() -> Option<Storage> {
    if !azurite_reachable().await {
        let url = azurite_url();
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
            panic!(
                "Azurite is not reachable at {url} and CI=true: storage tests must not be skipped \
                 (start it with `scripts/azurite.sh start`)"
            );
        }
        eprintln!(
            "NOTICE: skipping a storage test: Azurite is not reachable at {url} \
             (start it with `scripts/azurite.sh start`; under CI=true this fails)"
        );
        return None;
    }
    Some(storage_for(&azurite_connection_string()))
}

/// A raw SDK client for a container of the Azurite under test, signed like the service
/// signs, for arranging what the service itself never does (foreign metadata, inspecting
/// blob properties).
pub fn raw_container_client(container: &str) -> BlobContainerClient {
    let parsed = ConnectionString::parse(&azurite_connection_string()).expect("valid");
    let mut options = BlobContainerClientOptions::default();
    options
        .client_options
        .per_try_policies
        .push(Arc::new(SasPolicy::new(Arc::new(SasSigner::new(&parsed)))));
    let url = url::Url::parse(&format!(
        "{}/{container}",
        azurite_url().trim_end_matches('/')
    ))
    .expect("a valid URL");
    BlobContainerClient::new(url, None, Some(options)).expect("a valid client")
}

async fn azurite_reachable() -> bool {
    match url::Url::parse(&azurite_url()) {
        Ok(url) => reachable(&url).await,
        Err(_) => false,
    }
}

/// The https Azurite with `--oauth basic` (started by `scripts/azurite.sh start` when openssl
/// is available).
pub fn azurite_oauth_url() -> String {
    std::env::var("AZURITE_OAUTH_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "https://127.0.0.1:10010/devstoreaccount1".to_owned())
}

/// A `Storage` on the https/oauth Azurite through `STORAGE_ACCOUNT_URL` and a token
/// credential, trusting the throwaway CA the script wrote. `None` (with a notice) when the
/// script did not start that instance (no openssl, or AZURITE_OAUTH=0); under CI=true a CA
/// file without a listening instance fails the test.
pub async fn azurite_oauth() -> Option<Storage> {
    let ca = std::env::var("AZURITE_OAUTH_CA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".azurite/oauth-ca.pem")
        });
    let url = url::Url::parse(&azurite_oauth_url()).expect("AZURITE_OAUTH_URL is a URL");
    if !ca.is_file() {
        eprintln!(
            "NOTICE: skipping a token-path storage test: no {} (scripts/azurite.sh start writes it when openssl is available)",
            ca.display()
        );
        return None;
    }
    if !reachable(&url).await {
        if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1") {
            panic!(
                "the https/oauth Azurite is not reachable at {url} although {} exists and CI=true",
                ca.display()
            );
        }
        eprintln!("NOTICE: skipping a token-path storage test: nothing answers at {url}");
        return None;
    }
    let config = StorageConfig {
        target: StorageTarget::AccountUrl(url),
        state_container: unique_container("state"),
        max_records_per_blob: 1000,
        format: OutputFormat::GraphPage,
        compression: Compression::None,
    };
    let http = entra_export::http::build_client(Some(&ca)).expect("the HTTP client builds");
    let credential: Arc<dyn azure_core::credentials::TokenCredential> =
        Arc::new(UnsignedEntraToken::default());
    Some(Storage::new(&config, Some(credential), http).expect("valid storage configuration"))
}

/// A token credential returning an unsigned JWT with the claims Azurite's `--oauth basic`
/// checks (issuer, audience, times); it does not check signatures. Counts its calls.
#[derive(Debug, Default)]
pub struct UnsignedEntraToken {
    pub calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for UnsignedEntraToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        use base64::Engine as _;
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = time::OffsetDateTime::now_utc();
        let encode = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header = encode(serde_json::json!({"alg": "none", "typ": "JWT"}));
        let claims = encode(serde_json::json!({
            "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "aud": "https://storage.azure.com",
            "nbf": now.unix_timestamp() - 60,
            "iat": now.unix_timestamp() - 60,
            "exp": now.unix_timestamp() + 3600,
            "oid": "00000000-0000-0000-0000-000000000001",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        }));
        Ok(azure_core::credentials::AccessToken::new(
            format!("{header}.{claims}."),
            now + time::Duration::hours(1),
        ))
    }
}

async fn reachable(url: &url::Url) -> bool {
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((host.as_str(), port))
        )
        .await,
        Ok(Ok(_))
    )
}
