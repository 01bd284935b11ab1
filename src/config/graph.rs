//! `GRAPH_*`: where Microsoft Graph is (`GRAPH_ENDPOINT`, by default the cloud's, and
//! `GRAPH_API_VERSION`) and how the client uses it (the request budget, paging, retries,
//! timeouts and the bytes of pages held at once).

use std::time::Duration;

use url::Url;

use super::parser::Parser;
use super::values::{format_duration, format_size};
use super::{Cloud, Lines};
use crate::redact::redact_url;

/// Graph API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `v1.0`
    V1,
    /// `beta`
    Beta,
}

impl ApiVersion {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// Microsoft Graph client settings.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Graph root, for example `https://graph.microsoft.us` (no trailing path).
    pub endpoint: Url,
    /// `v1.0` or `beta`.
    pub api_version: ApiVersion,
    /// Token scope, `<graph root>/.default`.
    pub scope: String,
    /// Requests allowed per 10 seconds for the tenant, across both jobs.
    pub max_requests_per_10s: u32,
    /// `$top`.
    pub page_size: u32,
    /// Attempts per page for transient failures.
    pub max_attempts: u32,
    /// Timeout for one request, headers and body.
    pub request_timeout: Duration,
    /// Failing windows are split down to this width before a run gives up.
    pub min_window: Duration,
    /// Bytes of received pages held at once (see [`crate::graph::budget`]).
    pub page_buffer: u64,
}

impl GraphConfig {
    /// Reads the `GRAPH_*` variables; the endpoint defaults to the cloud's.
    pub(super) fn parse(p: &mut Parser<'_>, cloud: Cloud) -> GraphConfig {
        let endpoint = p.endpoint("GRAPH_ENDPOINT", cloud.graph_endpoint());
        let api_version = p.choice(
            "GRAPH_API_VERSION",
            ApiVersion::V1,
            &[("v1.0", ApiVersion::V1), ("beta", ApiVersion::Beta)],
        );
        let scope = format!("{}/.default", endpoint.as_str().trim_end_matches('/'));
        GraphConfig {
            endpoint,
            api_version,
            scope,
            max_requests_per_10s: p.number("GRAPH_MAX_REQUESTS_PER_10S", 5, 1, 1000),
            page_size: p.number("GRAPH_PAGE_SIZE", 1000, 1, 1000),
            max_attempts: p.number("GRAPH_MAX_ATTEMPTS", 6, 1, 100),
            request_timeout: p.duration(
                "GRAPH_REQUEST_TIMEOUT",
                "120s",
                Duration::from_secs(1),
                None,
            ),
            min_window: p.duration("GRAPH_MIN_WINDOW", "1m", Duration::from_secs(1), None),
            page_buffer: p.size("GRAPH_PAGE_BUFFER", "4MiB", 256 * 1024, 1024 * 1024 * 1024),
        }
    }

    /// The `config check` lines of where Graph is: `GRAPH_ENDPOINT` and `GRAPH_API_VERSION`.
    pub(super) fn describe_endpoint(&self) -> Lines {
        vec![
            ("GRAPH_ENDPOINT".into(), redact_url(self.endpoint.as_str())),
            ("GRAPH_API_VERSION".into(), self.api_version.as_str().into()),
        ]
    }

    /// The `config check` lines of how the client uses Graph: budget, paging, retries, timeouts.
    pub(super) fn describe_limits(&self) -> Lines {
        vec![
            (
                "GRAPH_MAX_REQUESTS_PER_10S".into(),
                self.max_requests_per_10s.to_string(),
            ),
            ("GRAPH_PAGE_SIZE".into(), self.page_size.to_string()),
            ("GRAPH_MAX_ATTEMPTS".into(), self.max_attempts.to_string()),
            (
                "GRAPH_REQUEST_TIMEOUT".into(),
                format_duration(self.request_timeout),
            ),
            ("GRAPH_MIN_WINDOW".into(), format_duration(self.min_window)),
            ("GRAPH_PAGE_BUFFER".into(), format_size(self.page_buffer)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_each_names_its_variable, with};

    #[test]
    fn plain_http_is_allowed_only_on_loopback() {
        let config = with(&[("GRAPH_ENDPOINT", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(config.graph.scope, "http://127.0.0.1:8080/.default");
        assert!(with(&[("GRAPH_ENDPOINT", "http://localhost:8080")]).is_ok());
        assert!(with(&[("GRAPH_ENDPOINT", "http://[::1]:8080")]).is_ok());
        assert!(with(&[("GRAPH_ENDPOINT", "http://10.0.0.1:8080")]).is_err());
    }

    #[test]
    fn the_page_buffer_is_a_size() {
        let config = with(&[("GRAPH_PAGE_BUFFER", "16MiB")]).unwrap();
        assert_eq!(config.graph.page_buffer, 16 * 1024 * 1024);
        assert_eq!(with(&[]).unwrap().graph.page_buffer, 4 * 1024 * 1024);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("GRAPH_ENDPOINT", "http://graph.example.com"),
            ("GRAPH_ENDPOINT", "ftp://graph"),
            ("GRAPH_ENDPOINT", "https://:pw@graph.example.com"),
            ("GRAPH_API_VERSION", "v2"),
            ("GRAPH_MAX_REQUESTS_PER_10S", "0"),
            ("GRAPH_PAGE_SIZE", "1001"),
            ("GRAPH_MAX_ATTEMPTS", "many"),
            ("GRAPH_REQUEST_TIMEOUT", "0s"),
            ("GRAPH_MIN_WINDOW", "1"),
            ("GRAPH_PAGE_BUFFER", "1KiB"),
            ("GRAPH_PAGE_BUFFER", "lots"),
        ]);
    }
}
