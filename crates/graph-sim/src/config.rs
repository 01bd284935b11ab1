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
    /// Certificates (DER) registered on `client_id`: the token endpoint also accepts a client
    /// assertion signed with the key of one of them (see [`crate::certs`]).
    pub client_certificates: Vec<Vec<u8>>,
    /// Further app registrations the token endpoint knows, each in `tenant` or a tenant of its
    /// own (every tenant named here exists; any other is AADSTS90002).
    pub apps: Vec<AppRegistration>,
    /// How long an issued access token is accepted by the Graph server (`expires_in`).
    pub token_lifetime: Duration,
    /// Generated records start at `start - history`.
    pub history: Duration,
    /// Generated records continue until `start + live_for` (they become visible as time passes).
    pub live_for: Duration,
    /// Directory audit records per hour of event time.
    pub audit_per_hour: u32,
    /// Interactive user sign-in records per hour of event time (the `signIns` stream).
    pub signin_per_hour: u32,
    /// Non-interactive user sign-ins per hour (`beta/auditLogs/signIns` with the
    /// `nonInteractiveUser` type filter). Default 0: the stream exists but is empty.
    pub noninteractive_per_hour: u32,
    /// Service-principal sign-ins per hour (type filter `servicePrincipal`). Default 0.
    pub service_principal_per_hour: u32,
    /// Managed-identity sign-ins per hour (type filter `managedIdentity`). Default 0.
    pub managed_identity_per_hour: u32,
    /// Provisioning events per hour (`auditLogs/provisioning`). Default 0.
    pub provisioning_per_hour: u32,
    /// Risk detections per hour of `detectedDateTime` (`identityProtection/riskDetections`).
    /// Default 0.
    pub risk_detections_per_hour: u32,
    /// Service-principal risk detections per hour
    /// (`identityProtection/servicePrincipalRiskDetections`). Default 0.
    pub sp_risk_detections_per_hour: u32,
    /// Delay between a record's event time and the moment the API starts returning it.
    pub lateness: Lateness,
    /// Per-stream replacements of `lateness` (the first entry for a stream wins), e.g.
    /// non-interactive sign-ins published later than interactive ones.
    pub stream_lateness: Vec<(Resource, Lateness)>,
    /// Streams that answer every list request with 403 from the start (the first entry for a
    /// stream wins); change at run time with [`crate::Sim::set_refusal`] or
    /// `POST /_sim/refusal`.
    pub refusals: Vec<(Resource, Refusal)>,
    /// Whether the tenant has Entra ID P2 (and Workload ID Premium). `false`: both Identity
    /// Protection streams answer 403 `Forbidden` "Your tenant is not licensed for this feature."
    /// (unless `refusals` says otherwise for a stream).
    pub p2_licence: bool,
    /// Fraction (0..=1) of the non-interactive, service-principal and managed-identity sign-ins
    /// that reuse the `id` of an interactive sign-in. Ids are unique only within a stream (Graph
    /// documents no uniqueness across sign-in types), so a client that dedupes across streams
    /// loses these. Default 0.
    pub shared_id_fraction: f64,
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
    /// The Azure Resource Manager part: subscriptions and their Activity Log.
    pub arm: crate::arm::ArmConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            tenant: "00000000-0000-0000-0000-0000000000aa".to_string(),
            client_id: "sim-client".to_string(),
            client_secret: "sim-secret".to_string(),
            client_certificates: Vec::new(),
            apps: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            history: Duration::from_secs(3 * 24 * 3600),
            live_for: Duration::from_secs(3600),
            audit_per_hour: 60,
            signin_per_hour: 240,
            noninteractive_per_hour: 0,
            service_principal_per_hour: 0,
            managed_identity_per_hour: 0,
            provisioning_per_hour: 0,
            risk_detections_per_hour: 0,
            sp_risk_detections_per_hour: 0,
            lateness: Lateness::None,
            stream_lateness: Vec::new(),
            refusals: Vec::new(),
            p2_licence: true,
            shared_id_fraction: 0.0,
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
            arm: crate::arm::ArmConfig::default(),
        }
    }
}

/// An app registration (service principal) in a tenant: its client id and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    /// The tenant the app is registered in (compared case-insensitively).
    pub tenant: String,
    /// Its application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one.
    pub client_secret: Option<String>,
    /// Its certificates (DER), whose keys may sign client assertions.
    pub certificates: Vec<Vec<u8>>,
}

impl SimConfig {
    /// Every app registration: the main one (`tenant`, `client_id`, `client_secret`,
    /// `client_certificates`), then `apps`.
    pub fn registrations(&self) -> Vec<AppRegistration> {
        let mut all = vec![AppRegistration {
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            client_secret: Some(self.client_secret.clone()),
            certificates: self.client_certificates.clone(),
        }];
        all.extend(self.apps.iter().cloned());
        all
    }

    /// Generated records per hour of event time for `resource`.
    pub fn per_hour(&self, resource: Resource) -> u32 {
        match resource {
            Resource::DirectoryAudits => self.audit_per_hour,
            Resource::SignIns => self.signin_per_hour,
            Resource::NonInteractiveSignIns => self.noninteractive_per_hour,
            Resource::ServicePrincipalSignIns => self.service_principal_per_hour,
            Resource::ManagedIdentitySignIns => self.managed_identity_per_hour,
            Resource::Provisioning => self.provisioning_per_hour,
            Resource::RiskDetections => self.risk_detections_per_hour,
            Resource::ServicePrincipalRiskDetections => self.sp_risk_detections_per_hour,
        }
    }

    /// The visibility delay of `resource`'s records: its `stream_lateness` entry, else `lateness`.
    pub fn lateness_of(&self, resource: Resource) -> &Lateness {
        self.stream_lateness
            .iter()
            .find(|(stream, _)| *stream == resource)
            .map_or(&self.lateness, |(_, lateness)| lateness)
    }

    /// The 403 a stream answers at start: its `refusals` entry, else a licence refusal for the
    /// Identity Protection streams when `p2_licence` is false.
    pub fn initial_refusal(&self, resource: Resource) -> Option<Refusal> {
        if let Some((_, refusal)) = self.refusals.iter().find(|(stream, _)| *stream == resource) {
            return Some(*refusal);
        }
        let identity_protection = matches!(
            resource,
            Resource::RiskDetections | Resource::ServicePrincipalRiskDetections
        );
        (identity_protection && !self.p2_licence).then_some(Refusal::Licence)
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
    /// `percent` of the records (drawn from the seed) take the `late` delay, the others the
    /// `otherwise` delay: a tail of records published long after the rest.
    Mixed {
        /// Share of records delayed by `late`, 0 to 100.
        percent: u8,
        /// The tail's delay.
        late: Box<Lateness>,
        /// Everyone else's delay.
        otherwise: Box<Lateness>,
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

/// The log streams the simulator serves, each with its own records, ids and truth.
///
/// The four sign-in streams share the path `auditLogs/signIns`: v1.0 serves only
/// [`Resource::SignIns`]; beta picks the stream from
/// `signInEventTypes/any(t: t eq '<type>')` in `$filter` (interactive without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// `/auditLogs/directoryAudits`, time field `activityDateTime`.
    DirectoryAudits,
    /// `/auditLogs/signIns`: interactive user sign-ins, time field `createdDateTime`.
    SignIns,
    /// `/beta/auditLogs/signIns` with the `nonInteractiveUser` type filter.
    NonInteractiveSignIns,
    /// `/beta/auditLogs/signIns` with the `servicePrincipal` type filter.
    ServicePrincipalSignIns,
    /// `/beta/auditLogs/signIns` with the `managedIdentity` type filter.
    ManagedIdentitySignIns,
    /// `/auditLogs/provisioning`, time field `activityDateTime` (`eq`, `gt`, `lt` only).
    Provisioning,
    /// `/identityProtection/riskDetections`, time field `detectedDateTime`.
    RiskDetections,
    /// `/identityProtection/servicePrincipalRiskDetections`, time field `detectedDateTime`.
    ServicePrincipalRiskDetections,
}

impl Resource {
    /// Every stream, in a fixed order.
    pub const ALL: [Resource; 8] = [
        Resource::DirectoryAudits,
        Resource::SignIns,
        Resource::NonInteractiveSignIns,
        Resource::ServicePrincipalSignIns,
        Resource::ManagedIdentitySignIns,
        Resource::Provisioning,
        Resource::RiskDetections,
        Resource::ServicePrincipalRiskDetections,
    ];

    /// The stream's name in control-endpoint arguments, fault specs and command-line flags:
    /// `directoryAudits`, `signIns`, `nonInteractiveUser`, `servicePrincipal`, `managedIdentity`,
    /// `provisioning`, `riskDetections`, `servicePrincipalRiskDetections`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::DirectoryAudits => "directoryAudits",
            Resource::SignIns => "signIns",
            Resource::NonInteractiveSignIns => "nonInteractiveUser",
            Resource::ServicePrincipalSignIns => "servicePrincipal",
            Resource::ManagedIdentitySignIns => "managedIdentity",
            Resource::Provisioning => "provisioning",
            Resource::RiskDetections => "riskDetections",
            Resource::ServicePrincipalRiskDetections => "servicePrincipalRiskDetections",
        }
    }

    /// The last path segment, as Graph spells it (`signIns` for every sign-in stream).
    pub fn segment(self) -> &'static str {
        self.path().rsplit('/').next().unwrap_or("")
    }

    /// The path after the version, e.g. `auditLogs/signIns` or
    /// `identityProtection/riskDetections`.
    pub fn path(self) -> &'static str {
        match self {
            Resource::DirectoryAudits => "auditLogs/directoryAudits",
            Resource::SignIns
            | Resource::NonInteractiveSignIns
            | Resource::ServicePrincipalSignIns
            | Resource::ManagedIdentitySignIns => "auditLogs/signIns",
            Resource::Provisioning => "auditLogs/provisioning",
            Resource::RiskDetections => "identityProtection/riskDetections",
            Resource::ServicePrincipalRiskDetections => {
                "identityProtection/servicePrincipalRiskDetections"
            }
        }
    }

    /// The `signInEventTypes` value of a sign-in stream (`interactiveUser`, ...), else `None`.
    pub fn sign_in_event_type(self) -> Option<&'static str> {
        match self {
            Resource::SignIns => Some("interactiveUser"),
            Resource::NonInteractiveSignIns => Some("nonInteractiveUser"),
            Resource::ServicePrincipalSignIns => Some("servicePrincipal"),
            Resource::ManagedIdentitySignIns => Some("managedIdentity"),
            _ => None,
        }
    }

    /// The sign-in stream of a `signInEventTypes` value (case-sensitive, as Graph's filters are).
    pub fn from_sign_in_event_type(value: &str) -> Option<Resource> {
        [
            Resource::SignIns,
            Resource::NonInteractiveSignIns,
            Resource::ServicePrincipalSignIns,
            Resource::ManagedIdentitySignIns,
        ]
        .into_iter()
        .find(|resource| resource.sign_in_event_type() == Some(value))
    }

    /// The name of the record's time field: the one `$filter` and `$orderby` use.
    pub fn time_field(self) -> &'static str {
        match self {
            Resource::DirectoryAudits | Resource::Provisioning => "activityDateTime",
            Resource::SignIns
            | Resource::NonInteractiveSignIns
            | Resource::ServicePrincipalSignIns
            | Resource::ManagedIdentitySignIns => "createdDateTime",
            Resource::RiskDetections | Resource::ServicePrincipalRiskDetections => {
                "detectedDateTime"
            }
        }
    }

    /// Parses a stream name ([`Resource::name`]), a sign-in event type (`interactiveUser` is
    /// `signIns`) or a path segment, case-insensitively.
    pub fn from_segment(segment: &str) -> Option<Resource> {
        if segment.eq_ignore_ascii_case("interactiveUser") {
            return Some(Resource::SignIns);
        }
        Resource::ALL
            .into_iter()
            .find(|resource| resource.name().eq_ignore_ascii_case(segment))
    }

    /// Same as [`Resource::from_segment`].
    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::from_segment(name)
    }

    pub(crate) fn index(self) -> usize {
        Resource::ALL
            .iter()
            .position(|resource| *resource == self)
            .expect("every resource is in ALL")
    }
}

/// Why a stream answers 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The tenant lacks the licence. Audit, sign-in and provisioning streams answer
    /// `Authentication_RequestFromNonPremiumTenantOrB2CTenant` "Neither tenant is B2C or tenant
    /// doesn't have premium license"; the Identity Protection streams answer `Forbidden` "Your
    /// tenant is not licensed for this feature."
    Licence,
    /// The application lacks a permission (for example `Directory.Read.All` for provisioning):
    /// `Authorization_RequestDenied` "Insufficient privileges to complete the operation."
    Permission,
}

impl Refusal {
    /// Parses `licence` (or `license`) and `permission`.
    pub fn from_name(name: &str) -> Option<Refusal> {
        match name.to_ascii_lowercase().as_str() {
            "licence" | "license" => Some(Refusal::Licence),
            "permission" => Some(Refusal::Permission),
            _ => None,
        }
    }

    /// `licence` or `permission`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Licence => "licence",
            Refusal::Permission => "permission",
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
    /// Which stream, or all. A beta sign-in request that reads two streams (`interactiveUser or
    /// nonInteractiveUser`) matches a fault on either.
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
    /// A fault of `kind` on every list request of every stream, probability 1.
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

    /// Restricts the fault to one stream.
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
