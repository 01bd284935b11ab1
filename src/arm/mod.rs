//! Azure Resource Manager, as one dialect of the shared paged client ([`crate::client`]): the
//! Azure Activity Log of a subscription,
//! `GET {arm}/subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp ge '<t0>' and eventTimestamp le '<t1>'`.
//!
//! What differs from Graph, and where it is handled:
//! - both bounds are quoted and inclusive: a window `[start, end)` asks for `le end - 100 ns`
//!   (record times lie on the 100 ns grid, as Graph's);
//! - no `$top` and no `$orderby`: pages come newest first, so the stream is unordered
//!   (`JobSpec::ordered` false: windows of at most six hours, each counting progress when
//!   complete);
//! - the next link is `nextLink` (the page parser reads both names);
//! - errors may come without the `error` wrapper (the client reads both shapes);
//! - 90-day retention (`JobSpec::retention`), `eventDataId` as the id, `eventTimestamp` as the
//!   time; ARM's read budget is its own limiter, its token its own scope.
//!
//! The stream's `resource_path` names the subscription:
//! `subscriptions/<id>/providers/Microsoft.Insights/eventtypes/management/values`.

use std::sync::Arc;

use percent_encoding::utf8_percent_encode;
use time::OffsetDateTime;
use url::Url;

use crate::auth::TokenCache;
use crate::client::{Dialect, PagedClient, throttle::Limiter};
use crate::config::{ArmConfig, GraphConfig};
use crate::job::JobSpec;
use crate::url_util::QUERY_VALUE;

/// The Activity Log's API version.
pub const ACTIVITY_API_VERSION: &str = "2015-04-01";

/// The path of a subscription's Activity Log below the ARM root.
pub fn activity_path(subscription: &str) -> String {
    format!(
        "subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values"
    )
}

/// ARM's dialect: `ARM_ENDPOINT`.
#[derive(Debug, Clone)]
pub struct Arm {
    endpoint: Url,
}

impl Arm {
    /// ARM as configured.
    pub fn new(config: &ArmConfig) -> Arm {
        Arm {
            endpoint: config.endpoint.clone(),
        }
    }
}

/// A paged client speaking ARM: the endpoint of `arm`, the timeouts, retries and page buffer
/// of `http_settings` (`GRAPH_*`, shared by every source), `tokens` for ARM's scope and ARM's
/// own `limiter`.
pub fn client(
    arm: &ArmConfig,
    http_settings: &GraphConfig,
    tokens: Arc<TokenCache>,
    http: reqwest::Client,
    limiter: Arc<Limiter>,
) -> PagedClient {
    PagedClient::new(
        http_settings,
        Arc::new(Arm::new(arm)),
        tokens,
        http,
        limiter,
    )
}

impl Dialect for Arm {
    fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// `<endpoint>/<resource>?api-version=2015-04-01&$filter=<time> ge '<start>' and <time> le
    /// '<end - 100 ns>'`, seven-digit quoted timestamps, percent-encoded.
    fn window_url(&self, stream: &JobSpec, start: OffsetDateTime, end: OffsetDateTime) -> Url {
        let last = end - time::Duration::nanoseconds(100);
        let filter = format!(
            "{field} ge '{start}' and {field} le '{last}'",
            field = stream.time_field,
            start = crate::timestamp::format(start),
            last = crate::timestamp::format(last),
        );
        let text = format!(
            "{root}/{path}?api-version={ACTIVITY_API_VERSION}&$filter={filter}",
            root = self.endpoint.as_str().trim_end_matches('/'),
            path = stream.resource_path,
            filter = utf8_percent_encode(&filter, QUERY_VALUE),
        );
        Url::parse(&text).expect("an endpoint URL plus a path and an encoded query is a URL")
    }

    fn forbidden_is_passing(&self, _code: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_is_two_quoted_inclusive_bounds() {
        let config = crate::config::Config::from_vars([
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
            ("AUTH_MODE", "azure_cli"),
        ])
        .unwrap();
        let arm = Arm::new(&config.arm);
        let stream = JobSpec {
            resource_path: "subscriptions/0000/providers/Microsoft.Insights/eventtypes/management/values",
            time_field: "eventTimestamp",
            ..crate::job::JobKind::Audit.spec_template().clone()
        };
        let url = arm.window_url(
            &stream,
            datetime!(2024-01-13 00:00 UTC),
            datetime!(2024-01-13 06:00 UTC),
        );
        let decoded = percent_encoding::percent_decode_str(url.as_str())
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert_eq!(
            decoded,
            "https://management.usgovcloudapi.net/subscriptions/0000/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp ge '2024-01-13T00:00:00.0000000Z' and eventTimestamp le '2024-01-13T05:59:59.9999999Z'"
        );
        assert!(!arm.forbidden_is_passing("AuthorizationFailed"));
    }
}
