//! `storage::Error`: the cases the pipeline branches on, each naming the account and the
//! container or blob. SDK errors are translated here and never kept as a `source`: the
//! transport error inside an SDK error prints the request URL, and with a connection string
//! that URL carries the SAS token. Causes are therefore plain text built from the parts that
//! are safe to show (HTTP status, storage error code, the socket-level reason) and scrubbed.

use azure_core::error::ErrorKind;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made (DNS, refused, TLS, timeout), after the SDK's short retries.
    #[error("storage account `{account}` is unreachable: {cause}")]
    Unreachable {
        /// The storage account.
        account: String,
        /// What failed, for example `tcp connect error: Connection refused`.
        cause: String,
    },
    /// The account refused the key, SAS or token, or the identity lacks a role.
    #[error("storage account `{account}` refused access: {cause}")]
    Auth {
        /// The storage account.
        account: String,
        /// The status, error code and what to check.
        cause: String,
    },
    /// The configured credential gave no token for Blob Storage: nothing was sent to the
    /// account (the Azure CLI missing or signed out, a managed identity not available, ...).
    #[error(
        "cannot get a token for storage account `{account}` from the configured credential (the account was not contacted): {cause}"
    )]
    Credential {
        /// The storage account.
        account: String,
        /// The credential's reason.
        cause: String,
    },
    /// The container does not exist (call `ensure_container` first).
    #[error("container `{container}` does not exist in storage account `{account}`")]
    ContainerNotFound {
        /// The storage account.
        account: String,
        /// The container.
        container: String,
    },
    /// The run lock is gone: the lease lapsed, was broken, or renewal failed. The run must stop
    /// and must not write its checkpoint.
    #[error(
        "the run lock on container `{container}` in storage account `{account}` was lost: {cause}"
    )]
    LeaseLost {
        /// The storage account.
        account: String,
        /// The job's container.
        container: String,
        /// Why the lock is considered lost.
        cause: String,
    },
    /// The container is leased under another lease id (another run took over), or the lock
    /// belongs to a different container.
    #[error(
        "the run lock on container `{container}` in storage account `{account}` is held under another lease id"
    )]
    LeaseMismatch {
        /// The storage account.
        account: String,
        /// The job's container.
        container: String,
    },
    /// A state blob changed (or appeared) since it was read: reload and retry.
    #[error(
        "state blob `{name}` in container `{container}` of storage account `{account}` was changed by another writer"
    )]
    StateConflict {
        /// The storage account.
        account: String,
        /// The state container.
        container: String,
        /// The state blob.
        name: String,
    },
    /// A data blob of that name already exists with other content: nothing was replaced (a
    /// stored blob is never overwritten). Take the next sequence number.
    #[error(
        "blob `{blob}` already exists in container `{container}` of storage account `{account}` with other content; it was left unchanged"
    )]
    BlobExists {
        /// The storage account.
        account: String,
        /// The container.
        container: String,
        /// The blob.
        blob: String,
    },
    /// An operation (a request with its retries, or a response body) did not finish in time:
    /// a stalled connection or response. Nothing is left waiting on it.
    #[error(
        "storage account `{account}`: {operation} `{target}` did not finish within {after:?} (stalled connection or response)"
    )]
    Timeout {
        /// The storage account.
        account: String,
        /// What was attempted, for example `read state blob`.
        operation: &'static str,
        /// The container or `container/blob`.
        target: String,
        /// The deadline that passed.
        after: std::time::Duration,
    },
    /// The checkpoint in container metadata cannot be read. Nothing restarts silently.
    #[error(
        "container `{container}` in storage account `{account}` has an unreadable checkpoint `{value}`: {hint}"
    )]
    BadCheckpoint {
        /// The storage account.
        account: String,
        /// The job's container.
        container: String,
        /// The value as stored (a time or a version number, never a secret).
        value: String,
        /// How to fix it.
        hint: String,
    },
    /// The storage configuration cannot be used (no network I/O was attempted).
    #[error("storage configuration: {0}")]
    Config(String),
    /// The service answered a request with an error not covered above.
    #[error("storage account `{account}`: {operation} `{target}` failed: {cause}")]
    Request {
        /// The storage account.
        account: String,
        /// What was attempted, for example `upload blob`.
        operation: &'static str,
        /// The container or `container/blob`.
        target: String,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// The storage error code (`x-ms-error-code`), when there was one.
        code: Option<String>,
        /// Status, code, or the local reason.
        cause: String,
    },
}

impl Error {
    /// Worth retrying the same operation after a delay (network trouble, throttling, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } => true,
            Error::Request { status, .. } => {
                matches!(status, Some(408 | 429 | 500 | 502 | 503 | 504))
            }
            _ => false,
        }
    }
}

/// Where an SDK error happened, for the message.
pub(crate) struct Op<'a> {
    pub account: &'a str,
    /// Scheme, host and port of the blob endpoint (never a query string).
    pub endpoint: &'a str,
    pub operation: &'static str,
    pub container: &'a str,
    pub blob: Option<&'a str>,
    /// What to check when the service refuses the credentials.
    pub auth_hint: &'static str,
}

impl Op<'_> {
    fn target(&self) -> String {
        match self.blob {
            Some(blob) => format!("{}/{}", self.container, blob),
            None => self.container.to_owned(),
        }
    }

    /// Runs `future` under a deadline; expiry is [`Error::Timeout`] naming this operation
    /// (the future is dropped, with any connection it held).
    pub async fn within<T>(
        &self,
        limit: std::time::Duration,
        future: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(limit, future)
            .await
            .unwrap_or_else(|_| Err(self.timeout(limit)))
    }

    /// The deadline of this operation passed.
    pub fn timeout(&self, after: std::time::Duration) -> Error {
        Error::Timeout {
            account: self.account.to_owned(),
            operation: self.operation,
            target: self.target(),
            after,
        }
    }

    /// The HTTP status and storage error code of an SDK error, if it carries a response.
    pub fn status_and_code(error: &azure_core::Error) -> (Option<u16>, Option<String>) {
        match error.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => (Some(u16::from(*status)), error_code.clone()),
            _ => (None, None),
        }
    }

    /// Translates an SDK error into ours, with a cause that is safe to log.
    pub fn error(&self, error: azure_core::Error) -> Error {
        let account = self.account.to_owned();
        match error.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => {
                let status = u16::from(*status);
                let code = error_code.clone();
                let shown = format!("HTTP {status} {}", code.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_owned();
                match (status, code.as_deref()) {
                    (401 | 403, Some("AuthorizationPermissionMismatch")) => Error::Auth {
                        account,
                        cause: format!(
                            "{shown}: the identity lacks a data role; assign `Storage Blob Data Contributor` on the account"
                        ),
                    },
                    (401 | 403, _) => Error::Auth {
                        account,
                        cause: format!("{shown}: {}", self.auth_hint),
                    },
                    (404, Some("ContainerNotFound")) => Error::ContainerNotFound {
                        account,
                        container: self.container.to_owned(),
                    },
                    _ => Error::Request {
                        account,
                        operation: self.operation,
                        target: self.target(),
                        status: Some(status),
                        cause: shown,
                        code,
                    },
                }
            }
            ErrorKind::Connection | ErrorKind::Io => Error::Unreachable {
                account,
                cause: format!(
                    "{} ({} `{}` at {})",
                    describe(&error),
                    self.operation,
                    self.target(),
                    self.endpoint
                ),
            },
            ErrorKind::Credential => Error::Credential {
                account,
                cause: describe(&error),
            },
            _ => Error::Request {
                account,
                operation: self.operation,
                target: self.target(),
                status: None,
                code: None,
                cause: describe(&error),
            },
        }
    }
}

/// The error chain as text, without any part that could carry a URL with a SAS: a reqwest
/// error's own message names the URL, so only its causes are shown; the rest is scrubbed.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<reqwest::Error>().is_none() {
            let text = match scrub(&e.to_string()).as_str() {
                "retry policy expired and the request will no longer be retried" => {
                    "gave up after retries".to_owned()
                }
                "failed to execute `reqwest` request" => String::new(),
                other => other.to_owned(),
            };
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Removes SAS signatures, any URL query string, and connection-string secrets
/// (`AccountKey=`, `SharedAccessSignature=`) from a message.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("http") {
        out.push_str(&rest[..pos]);
        let url_len = rest[pos..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ']'))
            .unwrap_or(rest.len() - pos);
        let url = &rest[pos..pos + url_len];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?[REDACTED]");
            }
            None => out.push_str(url),
        }
        rest = &rest[pos + url_len..];
    }
    out.push_str(rest);
    // A signature outside a URL (should not happen, but never print one).
    while let Some(pos) = out.find("sig=") {
        let end = out[pos..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map_or(out.len(), |e| pos + e);
        out.replace_range(pos..end, "sig-redacted");
    }
    // A connection string's secrets (should not happen either).
    for key in ["AccountKey=", "SharedAccessSignature="] {
        let mut from = 0;
        while let Some(found) = out[from..].find(key) {
            let start = from + found + key.len();
            let end = out[start..]
                .find(|c: char| c == ';' || c.is_whitespace())
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "[REDACTED]");
            from = start + "[REDACTED]".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_query_strings_and_signatures() {
        let text = "error sending request for url (http://127.0.0.1:1/devstoreaccount1/c?restype=container&sv=2021-08-06&sig=abc%2B): refused; sig=zzz";
        let scrubbed = scrub(text);
        assert_eq!(
            scrubbed,
            "error sending request for url (http://127.0.0.1:1/devstoreaccount1/c?[REDACTED]): refused; sig-redacted"
        );
        assert_eq!(
            scrub("bad AccountKey=c2VjcmV0;BlobEndpoint=x and SharedAccessSignature=sv=1&sig=abc"),
            "bad AccountKey=[REDACTED];BlobEndpoint=x and SharedAccessSignature=[REDACTED]"
        );
    }

    #[test]
    fn transient_classification() {
        let request = |status| Error::Request {
            account: "a".into(),
            operation: "upload blob",
            target: "c/b".into(),
            status,
            code: None,
            cause: String::new(),
        };
        assert!(request(Some(503)).is_transient());
        assert!(!request(Some(400)).is_transient());
        assert!(
            Error::Unreachable {
                account: "a".into(),
                cause: "x".into()
            }
            .is_transient()
        );
        assert!(
            Error::Timeout {
                account: "a".into(),
                operation: "read state blob",
                target: "c/b".into(),
                after: std::time::Duration::from_secs(60),
            }
            .is_transient()
        );
        assert!(
            !Error::BlobExists {
                account: "a".into(),
                container: "c".into(),
                blob: "b".into()
            }
            .is_transient()
        );
        assert!(
            !Error::StateConflict {
                account: "a".into(),
                container: "c".into(),
                name: "n".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn auth_failures_name_the_account_and_the_hint() {
        let op = Op {
            account: "contosologs",
            endpoint: "https://contosologs.blob.core.usgovcloudapi.net",
            operation: "create container",
            container: "logs-audit",
            blob: None,
            auth_hint: "check AccountKey",
        };
        let sdk = azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: azure_core::http::StatusCode::Forbidden,
                error_code: Some("AuthenticationFailed".into()),
                raw_response: None,
            },
            "denied",
        );
        let message = op.error(sdk).to_string();
        assert_eq!(
            message,
            "storage account `contosologs` refused access: HTTP 403 AuthenticationFailed: check AccountKey"
        );
    }
}
