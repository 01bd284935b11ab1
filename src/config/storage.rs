//! `STORAGE_*`, `STATE_CONTAINER`, `MAX_RECORDS_PER_BLOB` and `OUTPUT_*`: which storage account
//! (by URL with a token, or by connection string with its key), where state that does not fit
//! in container metadata goes, and the shape of the data blobs. Each stream's own container is
//! in `streams`.

use std::fmt;

use secrecy::SecretString;
use url::Url;

use super::connection_string::check_connection_string;
use super::parser::Parser;
use super::{Cloud, Lines, UNSET};
use crate::redact::{REDACTED, redact_url, shown_url};
use crate::url_util::{is_loopback, plain_host};

/// Where the logs are stored and in which shape.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The account and its credentials.
    pub target: StorageTarget,
    /// Container for state that does not fit in container metadata.
    pub state_container: String,
    /// Records in one data blob at most.
    pub max_records_per_blob: usize,
    /// Data blob layout.
    pub format: OutputFormat,
    /// Data blob compression.
    pub compression: Compression,
}

/// How to reach the storage account.
#[derive(Clone)]
pub enum StorageTarget {
    /// `https://<account>.blob.<suffix>` with an Entra ID token.
    AccountUrl(Url),
    /// An account-key connection string (`UseDevelopmentStorage=true` included).
    ConnectionString(SecretString),
}

impl fmt::Debug for StorageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageTarget::AccountUrl(url) => {
                f.debug_tuple("AccountUrl").field(&url.as_str()).finish()
            }
            StorageTarget::ConnectionString(_) => f.write_str("ConnectionString([REDACTED])"),
        }
    }
}

/// Data blob layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `{"value":[...]}`, as Graph pages and the Python sample's blobs.
    GraphPage,
    /// One record per line.
    Ndjson,
}

/// Data blob compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON.
    None,
    /// gzip, stored with `Content-Encoding: gzip`.
    Gzip,
}

impl StorageConfig {
    /// Reads the storage variables: exactly one of `STORAGE_ACCOUNT_URL` and
    /// `STORAGE_CONNECTION_STRING`, then the state container and the output format.
    pub(super) fn parse(p: &mut Parser<'_>, cloud: Cloud) -> StorageConfig {
        StorageConfig {
            target: target(p, cloud),
            state_container: p.container("STATE_CONTAINER", "logs-state"),
            max_records_per_blob: p.number("MAX_RECORDS_PER_BLOB", 1000, 1, 1000) as usize,
            format: p.choice(
                "OUTPUT_FORMAT",
                OutputFormat::GraphPage,
                &[
                    ("graph-page", OutputFormat::GraphPage),
                    ("ndjson", OutputFormat::Ndjson),
                ],
            ),
            compression: p.choice(
                "OUTPUT_COMPRESSION",
                Compression::None,
                &[("none", Compression::None), ("gzip", Compression::Gzip)],
            ),
        }
    }

    /// The `config check` lines of the account: its URL without credentials, or the connection
    /// string redacted.
    pub(super) fn describe_account(&self) -> Lines {
        let (account_url, connection_string) = match &self.target {
            StorageTarget::AccountUrl(url) => (redact_url(url.as_str()), UNSET.to_owned()),
            StorageTarget::ConnectionString(_) => (UNSET.to_owned(), REDACTED.to_owned()),
        };
        vec![
            ("STORAGE_ACCOUNT_URL".into(), account_url),
            ("STORAGE_CONNECTION_STRING".into(), connection_string),
        ]
    }

    /// The `config check` line of `STATE_CONTAINER`.
    pub(super) fn describe_state_container(&self) -> Lines {
        vec![("STATE_CONTAINER".into(), self.state_container.clone())]
    }

    /// The `config check` lines of the data blobs' shape.
    pub(super) fn describe_output(&self) -> Lines {
        vec![
            (
                "MAX_RECORDS_PER_BLOB".into(),
                self.max_records_per_blob.to_string(),
            ),
            (
                "OUTPUT_FORMAT".into(),
                match self.format {
                    OutputFormat::GraphPage => "graph-page".into(),
                    OutputFormat::Ndjson => "ndjson".into(),
                },
            ),
            (
                "OUTPUT_COMPRESSION".into(),
                match self.compression {
                    Compression::None => "none".into(),
                    Compression::Gzip => "gzip".into(),
                },
            ),
        ]
    }
}

/// Reads `STORAGE_ACCOUNT_URL` or `STORAGE_CONNECTION_STRING`, exactly one of them. A connection
/// string is checked here (its grammar, its key's base64, its endpoint) so that `config check`
/// reports it; the problem never repeats the key.
fn target(p: &mut Parser<'_>, cloud: Cloud) -> StorageTarget {
    let url = p.get("STORAGE_ACCOUNT_URL").map(str::to_owned);
    let connection = p.get("STORAGE_CONNECTION_STRING").map(str::to_owned);
    match (url, connection) {
        (Some(_), Some(_)) | (None, None) => {
            p.problem(
                "STORAGE_ACCOUNT_URL/STORAGE_CONNECTION_STRING",
                format!(
                    "exactly one must be set: STORAGE_ACCOUNT_URL=https://<account>.blob.{} (token auth) \
                     or STORAGE_CONNECTION_STRING with an account key (UseDevelopmentStorage=true for Azurite)",
                    cloud.storage_suffix()
                ),
            );
            StorageTarget::ConnectionString(SecretString::from(String::new()))
        }
        (Some(value), None) => {
            let shown = shown_url(&value);
            match Url::parse(&value) {
                Ok(url)
                    if url.scheme() == "https"
                        && plain_host(&url)
                        && url.query().is_none()
                        && url.fragment().is_none()
                        && url.username().is_empty()
                        && url.password().is_none() =>
                {
                    StorageTarget::AccountUrl(url)
                }
                Ok(url) if url.scheme() == "http" => {
                    p.problem(
                        "STORAGE_ACCOUNT_URL",
                        format!(
                            "{shown} uses plain http: token auth needs https{}",
                            if is_loopback(&url) {
                                "; for Azurite over http use STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true"
                            } else {
                                ""
                            }
                        ),
                    );
                    StorageTarget::AccountUrl(url)
                }
                _ => {
                    p.problem(
                        "STORAGE_ACCOUNT_URL",
                        format!(
                            "{shown} is not an account URL such as https://<account>.blob.{} \
                             (no user or password, no query string or SAS: the managed identity \
                             or AUTH_MODE credential signs in)",
                            cloud.storage_suffix()
                        ),
                    );
                    StorageTarget::ConnectionString(SecretString::from(String::new()))
                }
            }
        }
        (None, Some(value)) => {
            if let Err(message) = check_connection_string(&value) {
                p.problem("STORAGE_CONNECTION_STRING", message);
            }
            StorageTarget::ConnectionString(SecretString::from(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{
        assert_each_names_its_variable, every_rendering, problem_variables, with,
    };

    #[test]
    fn exactly_one_storage_target() {
        let variables = problem_variables(with(&[(
            "STORAGE_CONNECTION_STRING",
            "UseDevelopmentStorage=true",
        )]));
        assert_eq!(
            variables,
            vec!["STORAGE_ACCOUNT_URL/STORAGE_CONNECTION_STRING"]
        );
        let config = with(&[
            ("STORAGE_ACCOUNT_URL", ""),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert!(matches!(
            config.storage.target,
            StorageTarget::ConnectionString(_)
        ));
    }

    #[test]
    fn connection_string_problems_never_echo_the_secret() {
        let cases: &[(&str, &str)] = &[
            (
                "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://logs.blob.core.windows.net/?sv=1&sig=MARKER",
                "BlobEndpoint `https://logs.blob.core.windows.net/?[REDACTED]` must be a plain service URL",
            ),
            (
                "AccountName=logs;AccountKey=TUFSS0VS;BlobEndpoint=https://user:MARKER@logs.blob.core.windows.net",
                "BlobEndpoint `https://[REDACTED]@logs.blob.core.windows.net/` must be a plain service URL",
            ),
            (
                "UseDevelopmentStorage=true;BlobEndpoint=http://user:MARKER@127.0.0.1:10000/devstoreaccount1",
                "without user, password, query or fragment",
            ),
            (
                "AccountName=logs;AccountKey=MARKER!",
                "AccountKey for account `logs` is not valid base64",
            ),
            (
                "AccountName=logs,AccountKey=MARKER==",
                "AccountName (value not shown: it may hold a secret) is not a storage account name",
            ),
            (
                "UseDevelopmentStorage=true,AccountKey=MARKER",
                "UseDevelopmentStorage=(value not shown: it may hold a secret) is not supported",
            ),
            (
                "SharedAccessSignature=sv=2024&sig=MARKER",
                "SharedAccessSignature connection strings are not supported",
            ),
        ];
        for (value, shows) in cases {
            let result = with(&[
                ("STORAGE_ACCOUNT_URL", ""),
                ("STORAGE_CONNECTION_STRING", value),
            ]);
            let text = every_rendering(&result);
            assert!(!text.contains("MARKER"), "{value}: {text}");
            assert!(text.contains(shows), "{value}: {text}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("STORAGE_ACCOUNT_URL", "http://logs.blob.core.windows.net"),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.windows.net/?sv=x&sig=y",
            ),
            (
                "STORAGE_ACCOUNT_URL",
                "https://user:pw@logs.blob.core.windows.net",
            ),
            (
                "STORAGE_ACCOUNT_URL",
                "https://logs.blob.core.windows.net/#sig=y",
            ),
            ("STATE_CONTAINER", "-state"),
            ("MAX_RECORDS_PER_BLOB", "0"),
            ("MAX_RECORDS_PER_BLOB", "5000"),
            ("OUTPUT_FORMAT", "csv"),
            ("OUTPUT_COMPRESSION", "zstd"),
        ]);
    }
}
