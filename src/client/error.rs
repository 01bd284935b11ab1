//! The Graph source's errors. Messages name the query (path and decoded `$filter`) and the page,
//! quote Graph's error code and message, and never contain a token, a secret or record content.

use std::fmt;
use std::time::Duration;

/// Where in a fetch something went wrong: the request path (no query string) and the page's
/// index in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRef {
    /// URL path, for example `/v1.0/auditLogs/signIns`.
    pub path: String,
    /// The page's index in the `fetch_window` stream (0-based).
    pub index: usize,
}

impl fmt::Display for PageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} page {}", self.path, self.index)
    }
}

/// Why fetching from Graph failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: Graph refused the query. Not retried.
    #[error("graph refused the query {query} (HTTP 400, code `{code}`): {message}")]
    BadRequest {
        /// Path and decoded `$filter`.
        query: String,
        /// Graph's error code (may be empty).
        code: String,
        /// Graph's error message, shortened.
        message: String,
    },
    /// 400 naming the skip token on a nextLink: the token expired. The window is restarted from
    /// its first page; this error surfaces only when the restarts run out.
    #[error("graph refused the skip token of {page} (HTTP 400): {message}")]
    SkipTokenExpired {
        /// The page whose nextLink was refused.
        page: PageRef,
        /// Graph's error message, shortened.
        message: String,
    },
    /// 401 even after a new token was obtained, and still after the grace given to new
    /// credentials and consent (`RetryPolicy::unauthorized_grace`).
    #[error(
        "graph refused the token for {path} (HTTP 401) even after a refresh: check the tenant, the scope and the app registration"
    )]
    Unauthorized {
        /// URL path.
        path: String,
    },
    /// 403: missing permission or licence. Not retried (beyond the licence error's small budget).
    #[error("graph denied access to {path} (HTTP 403, code `{code}`): {hint}")]
    Forbidden {
        /// URL path.
        path: String,
        /// Graph's error code.
        code: String,
        /// What the job's operator should check (`JobSpec::forbidden_hint`).
        hint: String,
    },
    /// 404: the resource does not exist in this cloud or API version.
    #[error(
        "graph has no resource {path} (HTTP 404): check GRAPH_API_VERSION and whether the cloud offers it"
    )]
    NotFound {
        /// URL path.
        path: String,
    },
    /// Any other unexpected status.
    #[error("graph answered {path} with HTTP {status} (code `{code}`)")]
    Status {
        /// URL path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Graph's error code (may be empty).
        code: String,
    },
    /// 429 or 503. Returned as such (not inside `Exhausted`) only when a deadline was set and
    /// Graph's `Retry-After`, or the limiter's pause, ends after it: the message then reads
    /// `graph throttled <path> (HTTP 429) for 600 s (Retry-After)`.
    #[error("graph throttled {path} (HTTP {status}){}", throttled_for(retry_after))]
    Throttled {
        /// URL path.
        path: String,
        /// 429 or 503.
        status: u16,
        /// The parsed `Retry-After`, if any, as Graph asked it (not capped; what is left of it
        /// when the limiter's pause refused the request).
        retry_after: Option<Duration>,
    },
    /// No response within the attempt's timeout (headers and body): `GRAPH_REQUEST_TIMEOUT`, or
    /// less close to the deadline.
    #[error("graph request for {path} timed out after {}s", timeout.as_secs_f64())]
    Timeout {
        /// URL path.
        path: String,
        /// The attempt's timeout.
        timeout: Duration,
    },
    /// Connection refused, reset or dropped, or the body was cut short.
    #[error("request to graph for {path} failed")]
    Transport {
        /// URL path.
        path: String,
        /// The cause, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The body is not JSON (usually a truncated body): the page is retried.
    #[error("graph {page} is not valid JSON: {reason}")]
    Decode {
        /// The page.
        page: PageRef,
        /// The parser's reason (position only).
        reason: String,
    },
    /// The body is JSON but not a Graph collection page (no `value` array, ...).
    #[error("graph {page} is not a collection page: {reason}")]
    InvalidPage {
        /// The page.
        page: PageRef,
        /// What is wrong.
        reason: String,
    },
    /// A nextLink points at another scheme, host or port than `GRAPH_ENDPOINT`. The token is
    /// never sent there.
    #[error(
        "graph {page} has a nextLink to {link_host}, not the configured graph endpoint: refused"
    )]
    ForeignNextLink {
        /// The page that carried the link.
        page: PageRef,
        /// `scheme://host:port` of the link (no path or query).
        link_host: String,
    },
    /// Transient failures persisted through every attempt (and every split of the window).
    #[error("graph request for {path} failed {attempts} times")]
    Exhausted {
        /// URL path.
        path: String,
        /// Attempts made for the last page.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },
    /// The caller's deadline ([`super::FetchLimits::deadline`]) passed before the page could
    /// be requested: nothing was sent.
    #[error("the run's time budget ended before {path} could be requested")]
    DeadlinePassed {
        /// URL path.
        path: String,
    },
    /// No token could be obtained.
    #[error("cannot authenticate to graph: {0}")]
    Token(crate::auth::AuthError),
}

impl Error {
    /// True when the cause is expected to pass by itself: a later attempt (another run) may
    /// succeed without anyone changing anything. Permanent errors need an operator or a code fix.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Throttled { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::SkipTokenExpired { .. }
            | Error::DeadlinePassed { .. }
            | Error::Exhausted { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 408,
            Error::BadRequest { .. }
            | Error::Unauthorized { .. }
            | Error::Forbidden { .. }
            | Error::NotFound { .. }
            | Error::InvalidPage { .. }
            | Error::ForeignNextLink { .. }
            | Error::Token(_) => false,
        }
    }

    /// The `Retry-After` Graph asked for, if this is a throttling error: with a deadline, the
    /// stream ended because Graph asked to wait past it ("throttled by Graph for N s"). `None`
    /// for an `Exhausted` error, even one whose last failure was a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for failures that a narrower window may avoid (timeouts and server errors), the only
    /// ones for which a window is split.
    pub(crate) fn warrants_split(&self) -> bool {
        match self {
            Error::Exhausted { last, .. } => matches!(
                **last,
                Error::Timeout { .. }
                    | Error::Transport { .. }
                    | Error::Decode { .. }
                    | Error::Status { .. }
                    | Error::Throttled { status: 503, .. }
            ),
            _ => false,
        }
    }
}

/// ` for N s (Retry-After)`, N rounded up, or nothing.
fn throttled_for(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => {
            let seconds = wait
                .as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0));
            format!(" for {seconds} s (Retry-After)")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_page() {
        let page = PageRef {
            path: "/v1.0/auditLogs/signIns".into(),
            index: 3,
        };
        let error = Error::InvalidPage {
            page,
            reason: "it has no `value` array".into(),
        };
        assert_eq!(
            error.to_string(),
            "graph /v1.0/auditLogs/signIns page 3 is not a collection page: it has no `value` array"
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn throttling_names_the_retry_after() {
        let throttled = |retry_after| Error::Throttled {
            path: "/v1.0/auditLogs/signIns".into(),
            status: 429,
            retry_after,
        };
        assert_eq!(
            throttled(Some(Duration::from_secs(600))).to_string(),
            "graph throttled /v1.0/auditLogs/signIns (HTTP 429) for 600 s (Retry-After)"
        );
        assert_eq!(
            throttled(Some(Duration::from_millis(750))).to_string(),
            "graph throttled /v1.0/auditLogs/signIns (HTTP 429) for 1 s (Retry-After)"
        );
        assert!(
            throttled(Some(Duration::MAX))
                .to_string()
                .ends_with(&format!("for {} s (Retry-After)", u64::MAX))
        );
        assert_eq!(
            throttled(None).to_string(),
            "graph throttled /v1.0/auditLogs/signIns (HTTP 429)"
        );
        assert_eq!(
            throttled(Some(Duration::from_secs(600))).retry_after(),
            Some(Duration::from_secs(600))
        );
    }
}
