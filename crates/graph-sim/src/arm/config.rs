//! The ARM part's knobs, a field of [`crate::SimConfig`].

use std::time::Duration;

use crate::config::Lateness;

/// What the simulated Azure Resource Manager serves: generated subscriptions with Activity Log
/// events, their access, read throttling and the token audiences it accepts.
///
/// Build it with struct-update syntax:
/// `ArmConfig { subscriptions: 4, forbidden: vec![subscription_id(2)], ..ArmConfig::default() }`.
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// Generated subscriptions, ids [`subscription_id`]`(1..=n)`; every one has events and is
    /// listed by `GET /subscriptions` unless it is in `not_found`.
    pub subscriptions: u32,
    /// Activity Log events per hour of `eventTimestamp`, per subscription (every phase of a
    /// multi-phase operation counts).
    pub events_per_hour: u32,
    /// Generated events start at `start - history`.
    pub history: Duration,
    /// Generated events continue until `start + live_for` (they become visible as time passes).
    pub live_for: Duration,
    /// Delay between an event's `eventTimestamp` and its `submissionTimestamp`, the instant from
    /// which the API returns it. Default uniform 10 s .. 60 s (13-20 s in Microsoft's examples).
    pub publication_delay: Lateness,
    /// Fraction (0..=1) of events published much later: `straggler_delay` is added to their
    /// `publication_delay`. Default 0.
    pub straggler_fraction: f64,
    /// The extra delay of stragglers. Default uniform 5 min .. 2 h.
    pub straggler_delay: Lateness,
    /// A `$filter` start older than `now - retention` is answered 400 ("The start time cannot be
    /// more than 90 days in the past."). Default 90 days.
    pub retention: Duration,
    /// Events per Activity Log page (the real page size is not documented). Default 200.
    pub page_size: usize,
    /// Subscriptions per `GET /subscriptions` page. Default 100.
    pub subscriptions_page_size: usize,
    /// Probability (0..=1) that an Activity Log page which could be full is cut short (possibly
    /// empty) while still carrying `nextLink`. Default 0.
    pub short_page_probability: f64,
    /// Subscription ids answered 403 `AuthorizationFailed` (no Reader/Monitoring Reader role);
    /// still listed by `GET /subscriptions`.
    pub forbidden: Vec<String>,
    /// Subscription ids answered 404 `SubscriptionNotFound` (a removed subscription); not listed.
    /// Ids that are not generated answer 404 anyway.
    pub not_found: Vec<String>,
    /// Token bucket per (client, subscription) for reads, and per client for tenant reads
    /// (`GET /subscriptions`); `None` disables throttling.
    pub throttle: Option<ArmThrottle>,
    /// Token audiences ARM accepts (the token endpoint sets a token's audience from its scope,
    /// `https://management.azure.com/.default` giving `https://management.azure.com`).
    pub audiences: Vec<String>,
    /// Write the Microsoft.Insights errors (bad `$filter`, start older than the retention, bad
    /// skiptoken) as `{"error":{"code","message"}}` like ARM's own errors, instead of the bare
    /// `{"code","message"}` that the resource provider was observed to return. Default false.
    pub rp_errors_wrapped: bool,
}

impl Default for ArmConfig {
    fn default() -> Self {
        ArmConfig {
            subscriptions: 3,
            events_per_hour: 60,
            history: Duration::from_secs(3 * 24 * 3600),
            live_for: Duration::from_secs(3600),
            publication_delay: Lateness::Uniform {
                min: Duration::from_secs(10),
                max: Duration::from_secs(60),
            },
            straggler_fraction: 0.0,
            straggler_delay: Lateness::Uniform {
                min: Duration::from_secs(5 * 60),
                max: Duration::from_secs(2 * 3600),
            },
            retention: Duration::from_secs(90 * 24 * 3600),
            page_size: 200,
            subscriptions_page_size: 100,
            short_page_probability: 0.0,
            forbidden: Vec::new(),
            not_found: Vec::new(),
            throttle: Some(ArmThrottle::default()),
            audiences: default_audiences(),
            rp_errors_wrapped: false,
        }
    }
}

/// ARM's token bucket (the model Microsoft documents since 2024): `capacity` requests, refilled
/// at `refill_per_second`. Default 250 and 25/s, the subscription-reads figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmThrottle {
    /// Bucket size: requests a fresh client may send at once.
    pub capacity: u32,
    /// Requests added back per second.
    pub refill_per_second: f64,
}

impl Default for ArmThrottle {
    fn default() -> Self {
        ArmThrottle {
            capacity: 250,
            refill_per_second: 25.0,
        }
    }
}

/// How ARM answers requests for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmAccess {
    /// Served normally.
    Allowed,
    /// 403 `AuthorizationFailed` on the Activity Log; listed by `GET /subscriptions`.
    Forbidden,
    /// 404 `SubscriptionNotFound`; not listed.
    NotFound,
}

/// The audiences of the public cloud's and Azure Government's Resource Manager, with and
/// without the trailing slash (ARM compares them exactly).
pub fn default_audiences() -> Vec<String> {
    [
        "https://management.core.windows.net/",
        "https://management.core.windows.net",
        "https://management.azure.com/",
        "https://management.azure.com",
        "https://management.core.usgovcloudapi.net/",
        "https://management.core.usgovcloudapi.net",
        "https://management.usgovcloudapi.net/",
        "https://management.usgovcloudapi.net",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The id of generated subscription `index` (1-based): `5ab5c71d-0000-4000-8000-<index, 12 hex
/// digits>`, the same whatever the seed.
pub fn subscription_id(index: u32) -> String {
    format!("5ab5c71d-0000-4000-8000-{index:012x}")
}
