//! Microsoft Graph, as one dialect of the shared paged client ([`crate::client`]): the
//! `$filter` on each stream's time field with Graph's timestamp format, `$top`, `$orderby`, the
//! API version, and Graph's intermittent licence 403. Everything else that differs between
//! Graph streams (path, extra filter clause, operators allowed, fields, ordering, retention,
//! what a 403 means) is each stream's description in [`crate::job`].

use std::sync::Arc;

use percent_encoding::utf8_percent_encode;
use time::OffsetDateTime;
use url::Url;

use crate::auth::TokenCache;
use crate::client::{Dialect, PagedClient, throttle::Limiter};
use crate::config::GraphConfig;
use crate::job::{JobSpec, StartFilter};
use crate::url_util::QUERY_VALUE;

/// The Graph error code of the intermittent licence 403 (graph-audit-api.md §5).
pub const LICENCE_ERROR_CODE: &str = "Authentication_RequestFromNonPremiumTenantOrB2CTenant";

/// Graph's dialect: `GRAPH_ENDPOINT`, the default `GRAPH_API_VERSION` (a stream may name its
/// own) and `GRAPH_PAGE_SIZE` (a stream may allow less).
#[derive(Debug, Clone)]
pub struct Graph {
    endpoint: Url,
    api_version: &'static str,
    page_size: u32,
}

impl Graph {
    /// Graph as configured.
    pub fn new(config: &GraphConfig) -> Graph {
        Graph {
            endpoint: config.endpoint.clone(),
            api_version: config.api_version.as_str(),
            page_size: config.page_size,
        }
    }
}

/// A paged client speaking Graph, with the settings of `config` (see [`PagedClient::new`]).
pub fn client(
    config: &GraphConfig,
    tokens: Arc<TokenCache>,
    http: reqwest::Client,
    limiter: Arc<Limiter>,
) -> PagedClient {
    PagedClient::new(config, Arc::new(Graph::new(config)), tokens, http, limiter)
}

impl Dialect for Graph {
    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// `<endpoint>/<version>/<resource>?$filter=<extra> and <time> ge <start> and <time> lt
    /// <end>&$top=<n>[&$orderby=<time> asc]`, with seven-digit unquoted timestamps,
    /// percent-encoded; `gt` the tick before `start` where the stream refuses `ge`.
    fn window_url(&self, job: &JobSpec, start: OffsetDateTime, end: OffsetDateTime) -> Url {
        let from = match job.start_filter {
            StartFilter::Ge => format!("{} ge {}", job.time_field, crate::timestamp::format(start)),
            StartFilter::GtTickBefore => format!(
                "{} gt {}",
                job.time_field,
                crate::timestamp::format(start - time::Duration::nanoseconds(100))
            ),
        };
        let mut filter = format!(
            "{from} and {field} lt {end}",
            field = job.time_field,
            end = crate::timestamp::format(end),
        );
        if let Some(extra) = job.extra_filter {
            filter = format!("{extra} and {filter}");
        }
        // Oldest first where the source honours it, so that a window can resume after the last
        // record stored (pipeline::plan).
        let order = if job.ordered {
            format!(
                "&$orderby={}",
                utf8_percent_encode(&format!("{} asc", job.time_field), QUERY_VALUE)
            )
        } else {
            String::new()
        };
        let text = format!(
            "{root}/{version}/{path}?$filter={filter}&$top={top}{order}",
            root = self.endpoint.as_str().trim_end_matches('/'),
            version = job.api_version.unwrap_or(self.api_version),
            path = job.resource_path,
            filter = utf8_percent_encode(&filter, QUERY_VALUE),
            top = self.page_size.min(job.max_page_size),
        );
        Url::parse(&text).expect("an endpoint URL plus a path and an encoded query is a URL")
    }

    fn forbidden_is_passing(&self, code: &str) -> bool {
        code == LICENCE_ERROR_CODE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobKind;
    use time::macros::datetime;

    fn graph(vars: &[(&str, &str)]) -> Graph {
        let mut all = vec![
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
            ("AUTH_MODE", "azure_cli"),
        ];
        all.extend_from_slice(vars);
        Graph::new(&crate::config::Config::from_vars(all).unwrap().graph)
    }

    #[test]
    fn window_url_has_an_encoded_seven_digit_filter() {
        let graph = graph(&[("GRAPH_PAGE_SIZE", "500")]);
        let url = graph.window_url(
            JobKind::SignIn.spec_template(),
            datetime!(2024-01-13 14:13:32 UTC),
            datetime!(2024-01-14 17:43:26.1234567 UTC),
        );
        assert_eq!(
            url.as_str(),
            "https://graph.microsoft.us/v1.0/auditLogs/signIns?$filter=createdDateTime%20ge%202024-01-13T14%3A13%3A32.0000000Z%20and%20createdDateTime%20lt%202024-01-14T17%3A43%3A26.1234567Z&$top=500&$orderby=createdDateTime%20asc"
        );
        let beta = super::tests::graph(&[
            ("GRAPH_API_VERSION", "beta"),
            ("GRAPH_ENDPOINT", "http://127.0.0.1:8080/"),
        ]);
        let url = beta.window_url(
            JobKind::Audit.spec_template(),
            datetime!(2024-01-13 00:00 UTC),
            datetime!(2024-01-14 00:00 UTC),
        );
        assert!(url.as_str().starts_with(
            "http://127.0.0.1:8080/beta/auditLogs/directoryAudits?$filter=activityDateTime%20ge%20"
        ));
        assert!(
            url.as_str()
                .ends_with("&$top=1000&$orderby=activityDateTime%20asc")
        );
    }

    #[test]
    fn each_stream_description_shapes_its_query() {
        let graph = graph(&[("GRAPH_ENDPOINT", "http://127.0.0.1:8080/")]);
        let decoded = |kind: JobKind| {
            let url = graph.window_url(
                kind.spec_template(),
                datetime!(2024-01-13 00:00 UTC),
                datetime!(2024-01-14 00:00 UTC),
            );
            percent_encoding::percent_decode_str(url.as_str())
                .decode_utf8()
                .unwrap()
                .into_owned()
        };
        assert_eq!(
            decoded(JobKind::NonInteractiveSignIn),
            "http://127.0.0.1:8080/beta/auditLogs/signIns?$filter=signInEventTypes/any(t: t eq 'nonInteractiveUser') and createdDateTime ge 2024-01-13T00:00:00.0000000Z and createdDateTime lt 2024-01-14T00:00:00.0000000Z&$top=1000&$orderby=createdDateTime asc"
        );
        // Provisioning: no `ge` on its time field, and no order to ask for.
        let provisioning = decoded(JobKind::Provisioning);
        assert!(
            provisioning.contains("$filter=activityDateTime gt 2024-01-12T23:59:59.9999999Z and activityDateTime lt 2024-01-14T00:00:00.0000000Z"),
            "{provisioning}"
        );
        assert!(!provisioning.contains("$orderby"), "{provisioning}");
    }

    #[test]
    fn only_the_licence_403_is_passing() {
        let graph = graph(&[]);
        assert!(graph.forbidden_is_passing(LICENCE_ERROR_CODE));
        assert!(!graph.forbidden_is_passing("Authorization_RequestDenied"));
        assert!(!graph.forbidden_is_passing(""));
    }
}
