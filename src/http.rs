//! The one HTTP client of the process, shared by Graph, the token credentials and Blob Storage,
//! so that there is one connection pool and one TLS configuration.

use std::path::Path;
use std::time::Duration;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The extra CA file could not be read.
    #[error("cannot read EXTRA_CA_FILE `{path}`")]
    ReadCa {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The extra CA file holds no usable PEM certificate.
    #[error("EXTRA_CA_FILE `{path}` holds no PEM certificate")]
    ParseCa {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// Installs the ring crypto provider for rustls. Idempotent; call before building any client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared client: system roots plus the certificates of `extra_ca_file`, a short
/// connect timeout so that an unreachable endpoint is reported in seconds, no automatic
/// decompression (storage downloads need the raw bytes).
pub fn build_client(extra_ca_file: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("entra-export/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_ca_file {
        let pem = std::fs::read(path).map_err(|source| HttpError::ReadCa {
            path: path.display().to_string(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| HttpError::ParseCa {
                path: path.display().to_string(),
                source,
            })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(HttpError::Build)
}
