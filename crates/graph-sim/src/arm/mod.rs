//! A stand-in for Azure Resource Manager's subscription list and Azure Activity Log APIs, served
//! on the Graph server's port (so `ARM_ENDPOINT` is [`crate::Sim::arm_url`]).
//!
//! - `GET /subscriptions?api-version=<2016-06-01 … 2022-12-01>`: `{"value":[…],"count":…}` plus
//!   `nextLink` when more than [`ArmConfig::subscriptions_page_size`] remain.
//! - `GET /subscriptions/{id}?api-version=…`: one subscription.
//! - `GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp ge '<t0>' [and eventTimestamp le '<t1>']`
//!   (path case-insensitive): events with `t0 <= eventTimestamp <= t1` whose
//!   `submissionTimestamp` has passed at the time of each request, newest first (ties by
//!   `eventDataId` descending), [`ArmConfig::page_size`] per page, `nextLink` an absolute URL
//!   with `$skiptoken` (the last event returned). Optional `$select`.
//! - Control endpoints (no auth, not counted): `GET /_sim/arm/truth?subscription=&start=&end=`,
//!   `GET /_sim/arm/counters`, `GET /_sim/arm/subscriptions`.
//!
//! Order of checks: bearer token (401: missing, unknown, expired, or an audience neither in
//! [`ArmConfig::audiences`] nor the simulator's own root, `http://<Host>`) → read budget (429 `SubscriptionRequestsThrottled` with
//! `Retry-After`) → `api-version` (400) → subscription id (400 malformed, 404 not found, 403
//! forbidden) → `$filter`/`$select` (400) → retention (400) → skiptoken (400) → page. Every reply
//! after the token check carries `x-ms-ratelimit-remaining-subscription-reads` (or `…-tenant-reads`
//! for `GET /subscriptions`); a request that passes the budget consumes it, whatever its outcome.
//!
//! ARM's own errors are `{"error":{"code","message"}}`; the Microsoft.Insights errors (filter,
//! retention, skiptoken) are a bare `{"code","message"}` as the resource provider was observed to
//! answer (see [`ArmConfig::rp_errors_wrapped`]).

mod cli;
mod config;
mod query;
mod render;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use cli::ArmArgs;
pub use config::{ArmAccess, ArmConfig, ArmThrottle, default_audiences, subscription_id};

use query::{
    ACTIVITY_API_VERSION, ActivityQuery, ActivityToken, ApiVersionProblem, Params,
    SUBSCRIPTIONS_API_VERSIONS, check_api_version, encode_query, fingerprint, parse_activity_query,
};
use render::{RenderContext, category_of, correlation_id, guid_string, status_of};
use store::{Event, Events};

use crate::timefmt::{format_timestamp, from_ns, parse_filter_literal, to_ns};
use crate::{Shared, SimConfig, new_guid};

/// `x-ms-ratelimit-remaining-*-reads` when throttling is off.
const UNTHROTTLED_REMAINING: u32 = 11_999;

/// A request this much before its `Retry-After` ends still counts as honouring it.
const RETRY_AFTER_TOLERANCE: Duration = Duration::from_millis(10);

/// One generated subscription.
pub(crate) struct Subscription {
    pub id: String,
    pub index: u32,
    pub events: Events,
}

/// ARM's state inside [`Shared`].
pub(crate) struct ArmState {
    pub subscriptions: Vec<Subscription>,
    /// Lower-cased id → access, for every id that is not simply allowed or unknown.
    access: Mutex<HashMap<String, ArmAccess>>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    counters: Mutex<ArmCounters>,
    random: Mutex<ChaCha8Rng>,
}

impl ArmState {
    /// Generates every subscription's events (call from a blocking context).
    pub(crate) fn new(config: &SimConfig, start_ns: i64) -> ArmState {
        let arm = &config.arm;
        let subscriptions = (1..=arm.subscriptions)
            .map(|index| Subscription {
                id: subscription_id(index),
                index,
                events: Events::generate(arm, config.seed, index, start_ns),
            })
            .collect();
        let mut access = HashMap::new();
        for id in &arm.forbidden {
            access.insert(id.to_ascii_lowercase(), ArmAccess::Forbidden);
        }
        for id in &arm.not_found {
            access.insert(id.to_ascii_lowercase(), ArmAccess::NotFound);
        }
        ArmState {
            subscriptions,
            access: Mutex::new(access),
            buckets: Mutex::new(HashMap::new()),
            counters: Mutex::new(ArmCounters::default()),
            random: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed ^ 0xA3A5_0000)),
        }
    }

    fn find(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions
            .iter()
            .find(|sub| sub.id.eq_ignore_ascii_case(id))
    }

    /// How a subscription id is answered: overrides first, then generated ones are allowed and
    /// unknown ones not found.
    fn access(&self, id: &str) -> ArmAccess {
        let overrides = self.access.lock().expect("access lock");
        match overrides.get(&id.to_ascii_lowercase()) {
            Some(access) => *access,
            None if self.find(id).is_some() => ArmAccess::Allowed,
            None => ArmAccess::NotFound,
        }
    }

    fn count(&self, subscription: Option<&str>, update: impl Fn(&mut ArmTally)) {
        let mut counters = self.counters.lock().expect("counters lock");
        update(&mut counters.total);
        if let Some(id) = subscription {
            update(
                counters
                    .per_subscription
                    .entry(id.to_ascii_lowercase())
                    .or_default(),
            );
        }
    }
}

/// Request counts of the ARM endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArmTally {
    /// Requests (control endpoints excluded).
    pub requests: u64,
    /// `GET /subscriptions` requests.
    pub subscription_list_requests: u64,
    /// Requests to the Activity Log path.
    pub activity_requests: u64,
    /// Activity Log pages answered with 200.
    pub pages_served: u64,
    /// Events in those pages.
    pub records_served: u64,
    /// 429 responses.
    pub throttled: u64,
    /// Requests that arrived before a `Retry-After` given for the same budget had elapsed.
    pub retry_after_ignored: u64,
    /// 401 responses.
    pub unauthorized: u64,
    /// 403 responses.
    pub forbidden: u64,
    /// 404 responses.
    pub not_found: u64,
    /// 400 responses.
    pub bad_requests: u64,
}

/// A snapshot of the ARM counters: totals, and the same per subscription (lower-cased id, every
/// subscription id a request named).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArmCounters {
    /// Over all ARM requests.
    #[serde(flatten)]
    pub total: ArmTally,
    /// Per subscription named in the path.
    pub per_subscription: BTreeMap<String, ArmTally>,
}

/// One Activity Log event as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmTruthRecord {
    /// `eventDataId`, the dedupe key.
    pub event_data_id: String,
    /// `correlationId`, shared by the phases of one operation.
    pub correlation_id: String,
    /// `eventTimestamp`.
    #[serde(with = "time::serde::rfc3339")]
    pub event_timestamp: OffsetDateTime,
    /// `submissionTimestamp`: from then on the API returns the event.
    #[serde(with = "time::serde::rfc3339")]
    pub submission_timestamp: OffsetDateTime,
    /// `category.value`.
    pub category: String,
    /// `status.value`.
    pub status: String,
}

fn truth_record(event: &Event) -> ArmTruthRecord {
    ArmTruthRecord {
        event_data_id: guid_string((event.id_hi, event.id_lo)),
        correlation_id: guid_string(correlation_id(event.op)),
        event_timestamp: from_ns(event.time),
        submission_timestamp: from_ns(event.visible_at),
        category: category_of(event).to_string(),
        status: status_of(event).to_string(),
    }
}

impl crate::Sim {
    /// The ARM root (`ARM_ENDPOINT`): the Graph server's `http://127.0.0.1:<port>`.
    pub fn arm_url(&self) -> String {
        self.graph_url()
    }

    /// The generated subscription ids, in order ([`subscription_id`]`(1..=n)`).
    pub fn arm_subscriptions(&self) -> Vec<String> {
        self.shared
            .arm
            .subscriptions
            .iter()
            .map(|sub| sub.id.clone())
            .collect()
    }

    /// Every event of `subscription` with `start <= eventTimestamp < end` that is visible now,
    /// ascending by time then `eventDataId` (empty for an unknown subscription). Access
    /// (forbidden, not found) does not matter here.
    pub fn arm_truth(
        &self,
        subscription: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<ArmTruthRecord> {
        let now = to_ns(OffsetDateTime::now_utc());
        self.arm_range(subscription, to_ns(start), to_ns(end), Some(now))
    }

    /// Like [`crate::Sim::arm_truth`], visible or not.
    pub fn arm_all_events(
        &self,
        subscription: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Vec<ArmTruthRecord> {
        self.arm_range(subscription, to_ns(start), to_ns(end), None)
    }

    fn arm_range(
        &self,
        subscription: &str,
        start: i64,
        end: i64,
        now: Option<i64>,
    ) -> Vec<ArmTruthRecord> {
        self.shared
            .arm
            .find(subscription)
            .map(|sub| {
                sub.events
                    .range(start, end, now)
                    .into_iter()
                    .map(truth_record)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A snapshot of the ARM counters.
    pub fn arm_counters(&self) -> ArmCounters {
        self.shared
            .arm
            .counters
            .lock()
            .expect("counters lock")
            .clone()
    }

    /// Changes how a subscription id is answered from now on (any id, generated or not).
    pub fn set_arm_access(&self, subscription: &str, access: ArmAccess) {
        self.shared
            .arm
            .access
            .lock()
            .expect("access lock")
            .insert(subscription.to_ascii_lowercase(), access);
    }
}

/// The ARM routes, to merge into the Graph server's router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/subscriptions", any(list_subscriptions))
        .route("/subscriptions/", any(list_subscriptions))
        .route("/subscriptions/{*rest}", any(subscription_scope))
        .route("/_sim/arm/truth", get(truth))
        .route("/_sim/arm/counters", get(counters))
        .route("/_sim/arm/subscriptions", get(subscriptions))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Control endpoints

#[derive(Deserialize)]
struct TruthParams {
    subscription: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

async fn truth(State(shared): State<Arc<Shared>>, Query(params): Query<TruthParams>) -> Response {
    let parse = |value: &Option<String>, default: i64| match value {
        None => Some(default),
        Some(text) => {
            parse_filter_literal(text).or_else(|| crate::timefmt::parse_record_time(text))
        }
    };
    let (Some(start), Some(end)) = (parse(&params.start, i64::MIN), parse(&params.end, i64::MAX))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "start and end must be ISO-8601 instants",
        )
            .into_response();
    };
    let now = to_ns(OffsetDateTime::now_utc());
    let mut out = serde_json::Map::new();
    for sub in &shared.arm.subscriptions {
        if params
            .subscription
            .as_deref()
            .is_some_and(|only| !only.eq_ignore_ascii_case(&sub.id))
        {
            continue;
        }
        let events: Vec<serde_json::Value> = sub
            .events
            .range(start, end, Some(now))
            .into_iter()
            .map(|event| {
                serde_json::json!({
                    "eventDataId": guid_string((event.id_hi, event.id_lo)),
                    "correlationId": guid_string(correlation_id(event.op)),
                    "eventTimestamp": format_timestamp(event.time, 7),
                    "submissionTimestamp": format_timestamp(event.visible_at, 7),
                    "category": category_of(event),
                    "status": status_of(event),
                })
            })
            .collect();
        out.insert(sub.id.clone(), serde_json::Value::Array(events));
    }
    axum::Json(serde_json::Value::Object(out)).into_response()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.arm.counters.lock().expect("counters lock").clone()).into_response()
}

async fn subscriptions(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<serde_json::Value> = shared
        .arm
        .subscriptions
        .iter()
        .map(|sub| {
            let access = shared.arm.access(&sub.id);
            serde_json::json!({
                "subscriptionId": sub.id,
                "displayName": format!("Simulated subscription {}", sub.index),
                "access": match access {
                    ArmAccess::Allowed => "allowed",
                    ArmAccess::Forbidden => "forbidden",
                    ArmAccess::NotFound => "notFound",
                },
                "listed": access != ArmAccess::NotFound,
                "events": sub.events.events.len(),
            })
        })
        .collect();
    axum::Json(list).into_response()
}

// ---------------------------------------------------------------------------------------------
// Replies

/// Ids echoed in every ARM reply, and the rate-limit header once known.
struct Reply {
    request_id: String,
    correlation_id: String,
    client_request_id: Option<String>,
    remaining: Option<(&'static str, u32)>,
}

impl Reply {
    fn new(parts: &Parts) -> Reply {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let request_id = new_guid();
        Reply {
            correlation_id: header("x-ms-correlation-request-id")
                .unwrap_or_else(|| request_id.clone()),
            client_request_id: header("x-ms-client-request-id"),
            request_id,
            remaining: None,
        }
    }

    fn send(&self, status: StatusCode, body: Vec<u8>) -> Response {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        put("content-type", "application/json; charset=utf-8");
        put("cache-control", "no-cache");
        put("pragma", "no-cache");
        put("expires", "-1");
        put("x-content-type-options", "nosniff");
        put("x-ms-request-id", &self.request_id);
        put("x-ms-correlation-request-id", &self.correlation_id);
        put(
            "x-ms-routing-request-id",
            &format!(
                "LOOPBACK:{}:{}",
                format_timestamp(to_ns(OffsetDateTime::now_utc()), 0).replace(['-', ':'], ""),
                self.request_id
            ),
        );
        if let Some(client) = &self.client_request_id {
            put("x-ms-client-request-id", client);
        }
        if let Some((name, remaining)) = self.remaining {
            put(name, &remaining.to_string());
        }
        response
    }

    /// ARM's own error: `{"error":{"code","message"}}`.
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        self.send(status, body.to_string().into_bytes())
    }

    /// A Microsoft.Insights error: `{"code","message"}`, or wrapped when configured.
    fn provider_error(&self, config: &ArmConfig, code: &str, message: &str) -> Response {
        if config.rp_errors_wrapped {
            return self.error(StatusCode::BAD_REQUEST, code, message);
        }
        let body = serde_json::json!({"code": code, "message": message});
        self.send(StatusCode::BAD_REQUEST, body.to_string().into_bytes())
    }
}

fn count_status(arm: &ArmState, subscription: Option<&str>, status: StatusCode) {
    arm.count(subscription, |tally| match status {
        StatusCode::BAD_REQUEST => tally.bad_requests += 1,
        StatusCode::UNAUTHORIZED => tally.unauthorized += 1,
        StatusCode::FORBIDDEN => tally.forbidden += 1,
        StatusCode::NOT_FOUND => tally.not_found += 1,
        StatusCode::TOO_MANY_REQUESTS => tally.throttled += 1,
        _ => {}
    });
}

// ---------------------------------------------------------------------------------------------
// Authentication and throttling

/// The client id of a bearer token ARM accepts, or the 401 (code, message).
fn authorize(shared: &Shared, parts: &Parts) -> Result<String, (&'static str, String)> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err((
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_string(),
        ));
    };
    let token = match value.to_str().unwrap_or("").split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim().to_string()
        }
        _ => {
            return Err((
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format."
                    .to_string(),
            ));
        }
    };
    let tokens = shared.tokens.lock().expect("tokens lock");
    let Some(issued) = tokens.get(&token) else {
        return Err((
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_string(),
        ));
    };
    let audiences = &shared.config.arm.audiences;
    // The simulator's own root (`ARM_ENDPOINT` pointed at it) is its resource URI too, as a
    // private ARM endpoint's is.
    let own = parts
        .headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(|host| format!("http://{host}"));
    if !audiences.contains(&issued.audience) && own.as_deref() != Some(issued.audience.as_str()) {
        let allowed: Vec<String> = audiences.iter().map(|a| format!("'{a}'")).collect();
        return Err((
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences {}.",
                issued.audience,
                allowed.join(",")
            ),
        ));
    }
    let now = to_ns(OffsetDateTime::now_utc());
    if now >= issued.expires_at {
        return Err((
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                dotnet_date(issued.expires_at),
                dotnet_date(now)
            ),
        ));
    }
    Ok(issued.client_id.clone())
}

/// `1/13/2024 2:13:32 PM`, as .NET's invariant general date format writes it.
fn dotnet_date(ns: i64) -> String {
    let instant = from_ns(ns);
    let (hour, suffix) = match instant.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {hour}:{:02}:{:02} {suffix}",
        u8::from(instant.month()),
        instant.day(),
        instant.year(),
        instant.minute(),
        instant.second()
    )
}

/// A token bucket.
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// End of the latest `Retry-After` given for this bucket.
    not_before: Option<Instant>,
}

impl ArmState {
    /// Takes one read from the bucket `(client, scope)`: `Ok(remaining)` or `Err(Retry-After
    /// seconds)`.
    fn admit(
        &self,
        throttle: Option<ArmThrottle>,
        client: &str,
        scope: &str,
        subscription: Option<&str>,
    ) -> Result<u32, u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        let capacity = throttle.map_or(f64::from(UNTHROTTLED_REMAINING) + 1.0, |t| {
            f64::from(t.capacity)
        });
        let bucket = buckets
            .entry((client.to_string(), scope.to_ascii_lowercase()))
            .or_insert(Bucket {
                tokens: capacity,
                updated: now,
                not_before: None,
            });
        if bucket
            .not_before
            .is_some_and(|not_before| now + RETRY_AFTER_TOLERANCE < not_before)
        {
            self.count(subscription, |tally| tally.retry_after_ignored += 1);
        }
        let Some(throttle) = throttle else {
            return Ok(UNTHROTTLED_REMAINING);
        };
        let rate = throttle.refill_per_second.max(1e-9);
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(bucket.tokens.floor() as u32);
        }
        let seconds = ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64;
        let end = now + Duration::from_secs(seconds);
        bucket.not_before = Some(bucket.not_before.map_or(end, |previous| previous.max(end)));
        Err(seconds)
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Counts the request and checks the token; on failure, the 401.
fn begin(
    shared: &Shared,
    parts: &Parts,
    subscription: Option<&str>,
) -> Result<(Reply, String), Box<Response>> {
    let arm = &shared.arm;
    arm.count(subscription, |tally| tally.requests += 1);
    let reply = Reply::new(parts);
    match authorize(shared, parts) {
        Ok(client) => Ok((reply, client)),
        Err((code, message)) => {
            count_status(arm, subscription, StatusCode::UNAUTHORIZED);
            let mut response = reply.error(StatusCode::UNAUTHORIZED, code, &message);
            let challenge = format!(
                r#"Bearer authorization_uri="https://login.microsoftonline.com/{}", error="invalid_token", error_description="{}""#,
                shared.config.tenant,
                message.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            Err(Box::new(response))
        }
    }
}

fn method_not_allowed(reply: &Reply, method: &Method) -> Response {
    reply.error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("The requested resource does not support http method '{method}'."),
    )
}

fn throttled(arm: &ArmState, reply: &Reply, subscription: Option<&str>, seconds: u64) -> Response {
    count_status(arm, subscription, StatusCode::TOO_MANY_REQUESTS);
    let message = match subscription {
        Some(id) => format!(
            "Number of read requests for subscription '{id}' exceeded the limit. Please try again after '{seconds}' seconds."
        ),
        None => format!(
            "Number of read requests for the tenant exceeded the limit. Please try again after '{seconds}' seconds."
        ),
    };
    let code = if subscription.is_some() {
        "SubscriptionRequestsThrottled"
    } else {
        "TenantRequestsThrottled"
    };
    let mut response = reply.error(StatusCode::TOO_MANY_REQUESTS, code, &message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).expect("digits"),
    );
    response
}

fn request_base(shared: &Shared, parts: &Parts) -> String {
    parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_else(|| shared.graph_base.clone())
}

async fn list_subscriptions(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let arm = &shared.arm;
    let config = &shared.config.arm;
    let (mut reply, client) = match begin(&shared, &parts, None) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    arm.count(None, |tally| tally.subscription_list_requests += 1);
    match arm.admit(config.throttle, &client, "tenant", None) {
        Ok(remaining) => {
            reply.remaining = Some(("x-ms-ratelimit-remaining-tenant-reads", remaining))
        }
        Err(seconds) => {
            reply.remaining = Some(("x-ms-ratelimit-remaining-tenant-reads", 0));
            return throttled(arm, &reply, None, seconds);
        }
    }
    if parts.method != Method::GET {
        return method_not_allowed(&reply, &parts.method);
    }
    let params = Params::parse(parts.uri.query().unwrap_or(""));
    if let Err(problem) = check_api_version(&params, SUBSCRIPTIONS_API_VERSIONS) {
        count_status(arm, None, StatusCode::BAD_REQUEST);
        return api_version_error(&reply, problem, SUBSCRIPTIONS_API_VERSIONS);
    }
    let version = params.get("api-version").unwrap_or_default().to_string();
    let offset = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match decode_offset(token) {
            Some(offset) => offset,
            None => {
                count_status(arm, None, StatusCode::BAD_REQUEST);
                return reply.error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "The provided skip token is invalid.",
                );
            }
        },
    };
    let listed: Vec<&Subscription> = arm
        .subscriptions
        .iter()
        .filter(|sub| arm.access(&sub.id) != ArmAccess::NotFound)
        .collect();
    let page_size = config.subscriptions_page_size.max(1);
    let page: Vec<&&Subscription> = listed.iter().skip(offset).take(page_size).collect();
    let mut body = b"{\"value\":[".to_vec();
    for (index, sub) in page.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        render::write_subscription(&mut body, &sub.id, sub.index, &shared.config.tenant);
    }
    body.push(b']');
    if offset + page.len() < listed.len() {
        let query = encode_query(&[
            ("api-version", version.as_str()),
            ("$skiptoken", &encode_offset(offset + page.len())),
        ]);
        let link = format!(
            "{}{}?{query}",
            request_base(&shared, &parts),
            parts.uri.path()
        );
        body.extend_from_slice(b",\"nextLink\":");
        serde_json::to_writer(&mut body, &link).expect("string serialises");
    }
    if version.as_str() >= "2020-01-01" {
        body.extend_from_slice(
            format!(
                ",\"count\":{{\"type\":\"Total\",\"value\":{}}}",
                listed.len()
            )
            .as_bytes(),
        );
    }
    body.push(b'}');
    reply.send(StatusCode::OK, body)
}

fn encode_offset(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("subscriptions:{offset}"))
}

fn decode_offset(token: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("subscriptions:")?
        .parse()
        .ok()
}

fn api_version_error(reply: &Reply, problem: ApiVersionProblem, supported: &[&str]) -> Response {
    let list = supported.join(", ");
    match problem {
        ApiVersionProblem::Missing => reply.error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ),
        ApiVersionProblem::Malformed(version) => reply.error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("The api-version '{version}' is invalid. The supported versions are '{list}'."),
        ),
        ApiVersionProblem::Unsupported(version) if supported == [ACTIVITY_API_VERSION] => reply.error(
            StatusCode::BAD_REQUEST,
            "NoRegisteredProviderFound",
            &format!(
                "No registered resource provider found for location 'global' and API version '{version}' for type 'eventtypes'. The supported api-versions are '{list}'. The supported locations are 'global'."
            ),
        ),
        ApiVersionProblem::Unsupported(version) => reply.error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("The api-version '{version}' is invalid. The supported versions are '{list}'."),
        ),
    }
}

/// What a path below `/subscriptions/{id}` names.
#[derive(PartialEq, Eq)]
enum Target {
    Subscription,
    ActivityLog,
    Other,
}

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

async fn subscription_scope(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let arm = &shared.arm;
    let config = &shared.config.arm;
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .skip(1)
        .filter(|segment| !segment.is_empty())
        .collect();
    let Some(&subscription) = segments.first() else {
        return list_subscriptions(
            State(shared.clone()),
            Request::from_parts(parts, Body::empty()),
        )
        .await;
    };
    let target = match &segments[1..] {
        [] => Target::Subscription,
        [providers, namespace, types, management, values]
            if providers.eq_ignore_ascii_case("providers")
                && namespace.eq_ignore_ascii_case("microsoft.insights")
                && types.eq_ignore_ascii_case("eventtypes")
                && management.eq_ignore_ascii_case("management")
                && values.eq_ignore_ascii_case("values") =>
        {
            Target::ActivityLog
        }
        _ => Target::Other,
    };
    let sub = Some(subscription);
    let (mut reply, client) = match begin(&shared, &parts, sub) {
        Ok(started) => started,
        Err(response) => return *response,
    };
    if target == Target::ActivityLog {
        arm.count(sub, |tally| tally.activity_requests += 1);
    }
    match arm.admit(config.throttle, &client, subscription, sub) {
        Ok(remaining) => {
            reply.remaining = Some(("x-ms-ratelimit-remaining-subscription-reads", remaining))
        }
        Err(seconds) => {
            reply.remaining = Some(("x-ms-ratelimit-remaining-subscription-reads", 0));
            return throttled(arm, &reply, sub, seconds);
        }
    }
    if parts.method != Method::GET {
        return method_not_allowed(&reply, &parts.method);
    }
    let params = Params::parse(parts.uri.query().unwrap_or(""));
    let supported: &[&str] = if target == Target::ActivityLog {
        &[ACTIVITY_API_VERSION]
    } else {
        SUBSCRIPTIONS_API_VERSIONS
    };
    if let Err(problem) = check_api_version(&params, supported) {
        count_status(arm, sub, StatusCode::BAD_REQUEST);
        return api_version_error(&reply, problem, supported);
    }
    if !is_guid(subscription) {
        count_status(arm, sub, StatusCode::BAD_REQUEST);
        return reply.error(
            StatusCode::BAD_REQUEST,
            "InvalidSubscriptionId",
            &format!(
                "The provided subscription identifier '{subscription}' is malformed or invalid."
            ),
        );
    }
    let access = arm.access(subscription);
    if access == ArmAccess::NotFound {
        count_status(arm, sub, StatusCode::NOT_FOUND);
        return reply.error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{subscription}' could not be found."),
        );
    }
    match target {
        Target::Subscription => {
            let mut body = Vec::new();
            let index = arm.find(subscription).map_or(0, |found| found.index);
            render::write_subscription(&mut body, subscription, index, &shared.config.tenant);
            reply.send(StatusCode::OK, body)
        }
        Target::Other => {
            count_status(arm, sub, StatusCode::NOT_FOUND);
            reply.error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("graph-sim does not serve '{path}'; under a subscription it serves only the subscription itself and providers/Microsoft.Insights/eventtypes/management/values."),
            )
        }
        Target::ActivityLog if access == ArmAccess::Forbidden => {
            count_status(arm, sub, StatusCode::FORBIDDEN);
            let object_id = guid_string(render_object_id(&client));
            reply.error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                &format!(
                    "The client '{object_id}' with object id '{object_id}' does not have authorization to perform action 'microsoft.insights/eventtypes/values/read' over scope '/subscriptions/{subscription}/providers/microsoft.insights/eventtypes/management' or the scope is invalid. If access was recently granted, please refresh your credentials."
                ),
            )
        }
        Target::ActivityLog => activity_log(&shared, &parts, &reply, subscription, &params),
    }
}

/// The object id ARM names in a 403: derived from the client id.
fn render_object_id(client: &str) -> (u64, u64) {
    let mut hash = 0x0B1E_C700_0000_0001u64;
    for byte in client.bytes() {
        hash = render::mix64(hash ^ u64::from(byte));
    }
    (
        (hash & !0xF000) | 0x4000,
        (render::mix64(hash) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000,
    )
}

fn activity_log(
    shared: &Shared,
    parts: &Parts,
    reply: &Reply,
    subscription: &str,
    params: &Params,
) -> Response {
    let arm = &shared.arm;
    let config = &shared.config.arm;
    let sub = Some(subscription);
    let bad = |message: String| {
        count_status(arm, sub, StatusCode::BAD_REQUEST);
        reply.provider_error(config, "BadRequest", &message)
    };
    let query = match parse_activity_query(params) {
        Ok(query) => query,
        Err(problem) => return bad(problem.message()),
    };
    let now = to_ns(OffsetDateTime::now_utc());
    let retention_start = now.saturating_sub(crate::store::duration_ns(config.retention));
    if query.lo < retention_start {
        let days = config.retention.as_secs() / 86_400;
        return bad(format!(
            "The start time cannot be more than {days} days in the past."
        ));
    }
    let print = fingerprint(subscription, &query);
    let after = match &query.skiptoken {
        None => None,
        Some(text) => match ActivityToken::decode(text) {
            Some(token) if token.q == print => Some((token.t, token.h, token.l)),
            _ => return bad("The $skiptoken is invalid.".to_string()),
        },
    };
    let (body, records) = activity_page(shared, parts, subscription, &query, after, now, print);
    arm.count(sub, |tally| {
        tally.pages_served += 1;
        tally.records_served += records as u64;
    });
    reply.send(StatusCode::OK, body)
}

fn activity_page(
    shared: &Shared,
    parts: &Parts,
    subscription: &str,
    query: &ActivityQuery,
    after: Option<(i64, u64, u64)>,
    now: i64,
    print: u64,
) -> (Vec<u8>, usize) {
    let arm = &shared.arm;
    let config = &shared.config.arm;
    let page_size = config.page_size.max(1);
    let probability = config.short_page_probability.clamp(0.0, 1.0);
    let limit = {
        let mut random = arm.random.lock().expect("random lock");
        if probability > 0.0 && random.random_bool(probability) {
            random.random_range(0..page_size)
        } else {
            page_size
        }
    };
    let found = arm.find(subscription);
    let (events, more) = match found {
        Some(sub) => sub
            .events
            .select_descending(query.lo, query.hi, after, now, limit),
        None => (Vec::new(), false),
    };
    let context = RenderContext {
        subscription: found.map_or(subscription, |sub| sub.id.as_str()),
        tenant: &shared.config.tenant,
    };
    let mut body = Vec::with_capacity(64 + events.len() * 3000);
    body.extend_from_slice(b"{\"value\":[");
    let mut scratch = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        match &query.select {
            None => render::write_event(&mut body, event, &context),
            Some(names) => {
                scratch.clear();
                render::write_event(&mut scratch, event, &context);
                project(&scratch, names, &mut body);
            }
        }
    }
    body.push(b']');
    if more {
        // An empty short page continues from where the previous one stopped (or the top).
        let cursor = events.last().map(|event| event.key()).or(after);
        let (t, h, l) = cursor.unwrap_or((i64::MAX, u64::MAX, u64::MAX));
        {
            let token = ActivityToken {
                v: 1,
                q: print,
                t,
                h,
                l,
            }
            .encode();
            let version = ACTIVITY_API_VERSION;
            let mut pairs = vec![("api-version", version), ("$filter", query.filter.as_str())];
            let select = query.select.as_ref().map(|names| names.join(","));
            if let Some(select) = &select {
                pairs.push(("$select", select));
            }
            pairs.push(("$skiptoken", &token));
            let link = format!(
                "{}{}?{}",
                request_base(shared, parts),
                parts.uri.path(),
                encode_query(&pairs)
            );
            body.extend_from_slice(b",\"nextLink\":");
            serde_json::to_writer(&mut body, &link).expect("string serialises");
        }
    }
    body.push(b'}');
    (body, events.len())
}

/// Keeps only the selected properties of one rendered event.
fn project(record: &[u8], names: &[String], out: &mut Vec<u8>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(record)
    else {
        out.extend_from_slice(record);
        return;
    };
    let kept: serde_json::Map<String, serde_json::Value> = map
        .into_iter()
        .filter(|(key, _)| names.contains(key))
        .collect();
    serde_json::to_writer(out, &kept).expect("map serialises");
}
