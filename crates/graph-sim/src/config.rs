//! The simulator's knobs: record volume and timing, throttling, latency and injected faults.

use std::time::Duration;

/// Everything a simulator instance does, fixed at [`crate::start`] (faults and page latency can
/// also be changed at run time through [`crate::Sim`]).
///
/// Build it with struct-update syntax: `SimConfig { seed: 7, ..SimConfig::default() }`.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every generated record and of every random decision (faults, short pages).
    pub seed: u64,
    /// The only tenant id the token endpoint accepts (compared case-insensitively).
    pub tenant: String,
    /// The only client id the token endpoint accepts.
    pub client_id: String,
    /// The client secret that goes with `client_id`.
    pub client_secret: String,
    /// How long an issued access token is accepted by the Graph server (`expires_in`).
    pub token_lifetime: Duration,
    /// Generated records start at `start - history`.
    pub history: Duration,
    /// Generated records continue until `start + live_for` (they become visible as time passes).
    pub live_for: Duration,
    /// Directory audit records per hour of event time.
    pub audit_per_hour: u32,
    /// Sign-in records per hour of event time.
    pub signin_per_hour: u32,
    /// Delay between a record's event time and the moment the API starts returning it.
    pub lateness: Lateness,
    /// Fraction (0..=1) of sign-ins that are published a second time, with the same `id` and
    /// changed content (`riskLevelAggregated`, `riskState`, `riskEventTypes`).
    pub republish_fraction: f64,
    /// Delay between a record's first visibility and the visibility of its re-published version.
    /// An addition to the original brief; defaults to 1 min .. 2 h (MFA aggregation takes up to 2 h).
    pub republish_delay: Lateness,
    /// Per-client sliding-window request budget; `None` disables throttling.
    pub throttle: Option<Throttle>,
    /// How `Retry-After` is written on 429 and 503 responses.
    pub retry_after_style: RetryAfterStyle,
    /// Sleep before answering every list request.
    pub page_latency: Duration,
    /// Additional sleep per record in the answered page.
    pub per_record_latency: Duration,
    /// A `$filter` lower bound older than `now - retention` is answered with 400 `Invalid filter clause`.
    pub retention: Duration,
    /// A `$skiptoken` issued longer ago than this is answered with 400 `Invalid Skip Token`.
    pub skiptoken_ttl: Duration,
    /// Probability (0..=1) that a page which could be full is cut short (0 to `$top - 1` records,
    /// possibly empty) while still carrying `@odata.nextLink`, as Graph does mid-stream.
    /// An addition to the original brief; default 0.
    pub short_page_probability: f64,
    /// Failures injected into Graph list requests, tried in order; the first that fires wins.
    pub faults: Vec<Fault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            tenant: "00000000-0000-0000-0000-0000000000aa".to_string(),
            client_id: "sim-client".to_string(),
            client_secret: "sim-secret".to_string(),
            token_lifetime: Duration::from_secs(3600),
            history: Duration::from_secs(3 * 24 * 3600),
            live_for: Duration::from_secs(3600),
            audit_per_hour: 60,
            signin_per_hour: 240,
            lateness: Lateness::None,
            republish_fraction: 0.0,
            republish_delay: Lateness::Uniform {
                min: Duration::from_secs(60),
                max: Duration::from_secs(2 * 3600),
            },
            throttle: Some(Throttle {
                requests: 5,
                per: Duration::from_secs(10),
            }),
            retry_after_style: RetryAfterStyle::Fractional,
            page_latency: Duration::ZERO,
            per_record_latency: Duration::ZERO,
            retention: Duration::from_secs(30 * 24 * 3600),
            skiptoken_ttl: Duration::from_secs(3600),
            short_page_probability: 0.0,
            faults: Vec::new(),
        }
    }
}

/// A delay distribution, drawn once per record from the seed.
#[derive(Debug, Clone, PartialEq)]
pub enum Lateness {
    /// No delay.
    None,
    /// Always the same delay.
    Fixed(Duration),
    /// Uniform between `min` and `max` (inclusive).
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
}

/// A sliding-window budget: at most `requests` accepted requests in any interval of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Accepted requests per window.
    pub requests: u32,
    /// Window length.
    pub per: Duration,
}

/// How a `Retry-After` header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryAfterStyle {
    /// Whole seconds, rounded up, at least 1 (`Retry-After: 10`).
    Integer,
    /// Decimal seconds with three digits, rounded up to the millisecond (`Retry-After: 2.128`).
    Fractional,
    /// An IMF-fixdate, rounded up to the next whole second (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`).
    HttpDate,
}

/// The two log collections the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/auditLogs/directoryAudits`, time field `activityDateTime`.
    DirectoryAudits,
    /// `/auditLogs/signIns`, time field `createdDateTime`.
    SignIns,
}

impl Resource {
    /// The path segment after `auditLogs/`, as Graph spells it.
    pub fn segment(self) -> &'static str {
        match self {
            Resource::DirectoryAudits => "directoryAudits",
            Resource::SignIns => "signIns",
        }
    }

    /// The name of the record's time field.
    pub fn time_field(self) -> &'static str {
        match self {
            Resource::DirectoryAudits => "activityDateTime",
            Resource::SignIns => "createdDateTime",
        }
    }

    /// Parses a path segment or a control-endpoint argument, case-insensitively.
    pub fn from_segment(segment: &str) -> Option<Resource> {
        if segment.eq_ignore_ascii_case("directoryAudits") {
            Some(Resource::DirectoryAudits)
        } else if segment.eq_ignore_ascii_case("signIns") {
            Some(Resource::SignIns)
        } else {
            None
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Resource::DirectoryAudits => 0,
            Resource::SignIns => 1,
        }
    }
}

/// One kind of injected failure, with the requests it applies to.
///
/// A fault applies to Graph list requests that match `resource` (any when `None`) and, when
/// `min_window` is set, whose `$filter` window is wider than `min_window` (a window open on either
/// side counts as infinitely wide). Only the first `first_n` matching requests are candidates
/// (unlimited when `None`); each candidate fires with `probability`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Which collection, or both.
    pub resource: Option<Resource>,
    /// How many matching requests are candidates.
    pub first_n: Option<u32>,
    /// Probability that a candidate request fails.
    pub probability: f64,
    /// Only windows wider than this (to exercise window splitting).
    pub min_window: Option<std::time::Duration>,
    /// Only windows that contain this instant (a poisoned stretch of time that fails however
    /// it is asked for, down to the narrowest window).
    pub covering: Option<time::OffsetDateTime>,
}

impl Fault {
    /// A fault of `kind` on every list request of both collections, probability 1.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            resource: None,
            first_n: None,
            probability: 1.0,
            min_window: None,
            covering: None,
        }
    }

    /// Restricts the fault to one collection.
    pub fn on(mut self, resource: Resource) -> Fault {
        self.resource = Some(resource);
        self
    }

    /// Restricts the fault to the first `n` matching requests.
    pub fn first(mut self, n: u32) -> Fault {
        self.first_n = Some(n);
        self
    }

    /// Sets the probability that a matching request fails.
    pub fn with_probability(mut self, probability: f64) -> Fault {
        self.probability = probability;
        self
    }

    /// Restricts the fault to requests whose filter window is wider than `width`.
    pub fn wider_than(mut self, width: std::time::Duration) -> Fault {
        self.min_window = Some(width);
        self
    }

    /// Restricts the fault to requests whose filter window contains `instant`.
    pub fn covering(mut self, instant: time::OffsetDateTime) -> Fault {
        self.covering = Some(instant);
        self
    }
}

/// What an injected fault does to the request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status (500, 502, 503, 504, ...) and a Graph error body, code
    /// `UnknownError`; a 503 also carries `Retry-After` (0.75 s, in the configured style).
    Status(u16),
    /// Answer 200 with chunked encoding, send the first half of the page and close the connection
    /// without the final chunk.
    TruncatedBody,
    /// Close the TCP connection without any response.
    DropConnection,
    /// Sleep this long, then answer normally.
    Stall(std::time::Duration),
    /// Answer 401 `InvalidAuthenticationToken` even though the token is valid.
    ExpiredToken,
    /// Only on requests that carry `$skiptoken`: answer 400 `Invalid Skip Token`.
    ExpiredSkiptoken,
    /// Answer 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant`.
    LicenceForbidden,
    /// Answer 429 `TooManyRequests` (the throttling body) with this text as the `Retry-After`
    /// header, verbatim (`600`, `99999999999999999999`, `Fri, 31 Dec 9999 23:59:59 GMT`; empty:
    /// no header). Counted in `throttled`; not remembered for `retry_after_ignored`.
    TooManyRequests(String),
}
