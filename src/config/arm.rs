//! `ARM_*`: where Azure Resource Manager is (`ARM_ENDPOINT`, by default the cloud's), the API of
//! the Azure Activity Log, and its own request budget (ARM's read limits are apart from
//! Graph's).

use url::Url;

use super::parser::Parser;
use super::{Cloud, Lines};
use crate::redact::redact_url;

/// Azure Resource Manager client settings. Timeouts, attempts, the minimum window and the page
/// buffer are those of `GRAPH_*` (one HTTP client configuration for every source).
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// ARM root, for example `https://management.usgovcloudapi.net` (no trailing path).
    pub endpoint: Url,
    /// Token scope, `<ARM root>/.default`.
    pub scope: String,
    /// Requests allowed per 10 seconds to ARM, across every subscription.
    pub max_requests_per_10s: u32,
}

impl ArmConfig {
    /// Reads the `ARM_*` variables; the endpoint defaults to the cloud's.
    pub(super) fn parse(p: &mut Parser<'_>, cloud: Cloud) -> ArmConfig {
        let endpoint = p.endpoint("ARM_ENDPOINT", cloud.arm_endpoint());
        let scope = format!("{}/.default", endpoint.as_str().trim_end_matches('/'));
        ArmConfig {
            endpoint,
            scope,
            // ARM refills a subscription's read bucket at 25 per second (250 at most); a
            // tenth of that leaves room for everything else the identity reads.
            max_requests_per_10s: p.number("ARM_MAX_REQUESTS_PER_10S", 25, 1, 2500),
        }
    }

    /// The `config check` line of where ARM is.
    pub(super) fn describe_endpoint(&self) -> Lines {
        vec![("ARM_ENDPOINT".into(), redact_url(self.endpoint.as_str()))]
    }

    /// The `config check` line of ARM's budget.
    pub(super) fn describe_limits(&self) -> Lines {
        vec![(
            "ARM_MAX_REQUESTS_PER_10S".into(),
            self.max_requests_per_10s.to_string(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_each_names_its_variable, with};

    #[test]
    fn the_endpoint_can_be_a_local_simulator() {
        let config = with(&[("ARM_ENDPOINT", "http://127.0.0.1:8080")]).unwrap();
        assert_eq!(config.arm.scope, "http://127.0.0.1:8080/.default");
        assert_eq!(config.arm.max_requests_per_10s, 25);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_each_names_its_variable(&[
            ("ARM_ENDPOINT", "http://management.example.com"),
            ("ARM_ENDPOINT", "https://management.example.com/?x=1"),
            ("ARM_MAX_REQUESTS_PER_10S", "0"),
            ("ARM_MAX_REQUESTS_PER_10S", "lots"),
        ]);
    }
}
