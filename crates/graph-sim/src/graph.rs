//! The Graph server: `GET /{v1.0|beta}/auditLogs/{directoryAudits|signIns|provisioning}` and
//! `GET /{v1.0|beta}/identityProtection/{riskDetections|servicePrincipalRiskDetections}` with
//! bearer-token checks, per-client throttling, per-stream refusals, injected faults and paging,
//! plus the unauthenticated control endpoints `/_sim/counters`, `/_sim/truth`, `/_sim/streams`
//! and `POST /_sim/refusal`.
//!
//! Order of checks for a list request: token (401), throttle (429), query options (400), stream
//! refusal (403), retention (400), skiptoken (400), `$select` (400), injected fault, then the page,
//! after the configured latency. Throttled requests do not consume budget; every request that
//! passes the throttle does, whatever its outcome.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::config::{FaultKind, Refusal, Resource, RetryAfterStyle};
use crate::query::{Endpoint, ListQuery, OrderModel, SkipToken, next_link_query, parse_list_query};
use crate::render::{RenderContext, write_record};
use crate::serve::ConnectionKill;
use crate::store::{Cursor, Item, Selection, compare_items, duration_ns};
use crate::timefmt::{format_timestamp, parse_filter_literal, to_ns};
use crate::{STREAM_FORBIDDEN, STREAM_PAGES, STREAM_RECORDS, STREAM_REQUESTS, Shared, new_guid};

/// Graph's content type for OData JSON responses.
const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A request that arrives this much before its `Retry-After` ends still counts as honouring it
/// (timer and clock granularity).
const RETRY_AFTER_TOLERANCE: Duration = Duration::from_millis(10);

/// The `Retry-After` carried by an injected 503.
const FAULT_503_RETRY_AFTER: Duration = Duration::from_millis(750);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/counters", get(counters))
        .route("/_sim/truth", get(truth))
        .route("/_sim/streams", get(streams))
        .route("/_sim/refusal", post(set_refusal))
        .fallback(dispatch)
        .with_state(shared)
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.counters.snapshot()).into_response()
}

/// The stream names control endpoints accept.
fn stream_names() -> String {
    let names: Vec<&str> = Resource::ALL
        .iter()
        .map(|resource| resource.name())
        .collect();
    names.join(", ")
}

#[derive(Deserialize)]
struct TruthParams {
    resource: Option<String>,
    stream: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

/// `GET /_sim/truth?resource=<stream>&start=<iso>&end=<iso>` (`stream=` works too): the ids,
/// times, visibility and version of one stream's records visible now, by time then id.
async fn truth(State(shared): State<Arc<Shared>>, Query(params): Query<TruthParams>) -> Response {
    let name = params.stream.as_deref().or(params.resource.as_deref());
    let Some(resource) = name.and_then(Resource::from_name) else {
        let message = format!("resource (or stream) must be one of {}", stream_names());
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let parse = |value: &Option<String>, default: i64| match value {
        None => Some(default),
        Some(text) => parse_filter_literal(text),
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
    let records: Vec<serde_json::Value> = shared
        .truth_ns(resource, start, end, Some(now))
        .into_iter()
        .map(|(record, time_ns, visible_ns)| {
            json!({
                "id": record.id,
                "time": format_timestamp(time_ns, 7),
                "visible_at": format_timestamp(visible_ns, 7),
                "version": record.version,
            })
        })
        .collect();
    axum::Json(records).into_response()
}

/// `GET /_sim/streams`: every stream with its request path, type filter, time field, number of
/// generated records and current refusal.
async fn streams(State(shared): State<Arc<Shared>>) -> Response {
    let streams: Vec<serde_json::Value> = Resource::ALL
        .iter()
        .map(|resource| {
            let collection = &shared.collections[resource.index()];
            let injected = collection.injected.read().expect("injected lock").len();
            let filter = match resource {
                Resource::SignIns => None,
                other => other
                    .sign_in_event_type()
                    .map(|kind| format!("signInEventTypes/any(t: t eq '{kind}')")),
            };
            let version = if filter.is_some() { "beta" } else { "v1.0" };
            json!({
                "name": resource.name(),
                "path": format!("/{version}/{}", resource.path()),
                "filter": filter,
                "time_field": resource.time_field(),
                "generated": collection.generated.len(),
                "injected": injected,
                "refusal": shared.refusal(*resource).map(Refusal::name),
            })
        })
        .collect();
    axum::Json(streams).into_response()
}

#[derive(Deserialize)]
struct RefusalParams {
    stream: Option<String>,
    resource: Option<String>,
    refusal: Option<String>,
}

/// `POST /_sim/refusal?stream=<stream>&refusal=licence|permission|none`: makes a stream answer
/// 403 (or serve again) from the next request on.
async fn set_refusal(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<RefusalParams>,
) -> Response {
    let name = params.stream.as_deref().or(params.resource.as_deref());
    let Some(resource) = name.and_then(Resource::from_name) else {
        let message = format!("stream must be one of {}", stream_names());
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let refusal = match params.refusal.as_deref().unwrap_or("licence") {
        "none" | "off" => None,
        other => match Refusal::from_name(other) {
            Some(refusal) => Some(refusal),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    "refusal must be licence, permission or none",
                )
                    .into_response();
            }
        },
    };
    shared.set_refusal(resource, refusal);
    axum::Json(json!({
        "stream": resource.name(),
        "refusal": refusal.map(Refusal::name),
    }))
    .into_response()
}

/// Ids echoed in every Graph response.
struct ReplyIds {
    request_id: String,
    client_request_id: String,
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared
        .counters
        .requests
        .fetch_add(1, AtomicOrdering::Relaxed);
    let (parts, _body) = request.into_parts();
    let request_id = new_guid();
    let ids = ReplyIds {
        client_request_id: parts
            .headers
            .get("client-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone()),
        request_id,
    };
    let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    let beta = match segments.first() {
        Some(version) if version.eq_ignore_ascii_case("v1.0") => false,
        Some(version) if version.eq_ignore_ascii_case("beta") => true,
        other => {
            let message = format!("Invalid version: {}", other.copied().unwrap_or(""));
            return graph_error(
                &shared,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &message,
                &ids,
            );
        }
    };
    let endpoint = match segments.as_slice() {
        [_, group, segment] => Endpoint::from_path(group, segment),
        _ => None,
    };
    let Some(endpoint) = endpoint else {
        let last = segments.last().copied().unwrap_or("");
        let message = format!("Resource not found for the segment '{last}'.");
        return graph_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &message,
            &ids,
        );
    };
    if parts.method != Method::GET {
        return graph_error(
            &shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "The HTTP method is not allowed for this resource.",
            &ids,
        );
    }
    shared
        .counters
        .list_requests
        .fetch_add(1, AtomicOrdering::Relaxed);
    let kill = parts.extensions.get::<ConnectionKill>().cloned();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(|host| format!("http://{host}"))
        .unwrap_or_else(|| shared.graph_base.clone());
    let request = ListRequest {
        beta,
        endpoint,
        path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        base: host,
    };
    list(&shared, &parts.headers, request, &ids, kill).await
}

struct ListRequest {
    beta: bool,
    endpoint: Endpoint,
    path: String,
    raw_query: String,
    base: String,
}

async fn list(
    shared: &Shared,
    headers: &HeaderMap,
    request: ListRequest,
    ids: &ReplyIds,
    kill: Option<ConnectionKill>,
) -> Response {
    let now_wall = OffsetDateTime::now_utc();
    let now = to_ns(now_wall);
    let client = match shared.authorize(headers, now) {
        Ok(client) => client,
        Err(message) => return unauthorized(shared, message, ids),
    };
    if let Err(delay) = shared.admit(&client, Instant::now()) {
        shared
            .counters
            .throttled
            .fetch_add(1, AtomicOrdering::Relaxed);
        let retry_after = shared.retry_after(&client, delay, now_wall);
        return too_many_requests(&retry_after, now_wall, ids);
    }
    let query = match parse_list_query(request.endpoint, request.beta, &request.raw_query) {
        Ok(query) => query,
        Err(error) => {
            return graph_error(
                shared,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &error.message(),
                ids,
            );
        }
    };
    for stream in &query.streams {
        shared.counters.count_stream(*stream, STREAM_REQUESTS, 1);
    }
    let refused = query
        .streams
        .iter()
        .find_map(|stream| shared.refusal(*stream).map(|refusal| (*stream, refusal)));
    if let Some((stream, refusal)) = refused {
        shared.counters.count_stream(stream, STREAM_FORBIDDEN, 1);
        return forbidden(shared, stream, refusal, ids);
    }
    let retention_start = now.saturating_sub(duration_ns(shared.config.retention));
    if query
        .lower_literal
        .is_some_and(|lower| lower < retention_start)
    {
        return graph_error(
            shared,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid filter clause",
            ids,
        );
    }
    let fingerprint = query.fingerprint(request.endpoint, request.beta);
    let token = match &query.skiptoken {
        None => None,
        Some(text) => match SkipToken::decode(text) {
            Some(token)
                if token.query == fingerprint
                    && now.saturating_sub(token.issued)
                        <= duration_ns(shared.config.skiptoken_ttl) =>
            {
                Some(token)
            }
            _ => return invalid_skip_token(shared, ids),
        },
    };
    if let Some(names) = &query.select {
        let shape = query
            .streams
            .first()
            .copied()
            .unwrap_or(request.endpoint.stream());
        let known = shared.known_properties(shape, request.beta);
        if let Some(unknown) = names.iter().find(|name| !known.contains(name)) {
            let error = crate::query::QueryError::Select(unknown.clone());
            return graph_error(
                shared,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &error.message(),
                ids,
            );
        }
    }

    let fault = shared.pick_fault(
        &query.streams,
        query.skiptoken.is_some(),
        query.window_ns(),
        (query.lo, query.hi),
    );
    if fault.is_some() {
        shared
            .counters
            .faults_injected
            .fetch_add(1, AtomicOrdering::Relaxed);
    }
    let mut truncate = false;
    match fault {
        None => {}
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = graph_error(shared, status, "UnknownError", "", ids);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let retry_after = shared.retry_after(&client, FAULT_503_RETRY_AFTER, now_wall);
                insert_header(&mut response, header::RETRY_AFTER, &retry_after);
            }
            return response;
        }
        Some(FaultKind::ExpiredToken) => {
            return unauthorized(
                shared,
                "Lifetime validation failed, the token is expired.",
                ids,
            );
        }
        Some(FaultKind::ExpiredSkiptoken) => return invalid_skip_token(shared, ids),
        Some(FaultKind::LicenceForbidden) => {
            for stream in &query.streams {
                shared.counters.count_stream(*stream, STREAM_FORBIDDEN, 1);
            }
            return graph_error(
                shared,
                StatusCode::FORBIDDEN,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
                ids,
            );
        }
        Some(FaultKind::DropConnection) => {
            if let Some(kill) = kill {
                kill.kill();
                std::future::pending::<()>().await;
            }
            return StatusCode::BAD_GATEWAY.into_response();
        }
        Some(FaultKind::TooManyRequests(retry_after)) => {
            shared
                .counters
                .throttled
                .fetch_add(1, AtomicOrdering::Relaxed);
            return too_many_requests(&retry_after, now_wall, ids);
        }
        Some(FaultKind::Stall(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::TruncatedBody) => truncate = true,
    }

    let page = shared.build_page(&request, &query, token, now, fingerprint);
    let latency = shared.page_latency()
        + shared
            .config
            .per_record_latency
            .saturating_mul(page.records as u32);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    shared
        .counters
        .pages_served
        .fetch_add(1, AtomicOrdering::Relaxed);
    shared
        .counters
        .records_served
        .fetch_add(page.records as u64, AtomicOrdering::Relaxed);
    for (index, stream) in query.streams.iter().enumerate() {
        shared.counters.count_stream(*stream, STREAM_PAGES, 1);
        let records = page.per_stream.get(index).copied().unwrap_or(0);
        shared
            .counters
            .count_stream(*stream, STREAM_RECORDS, records as u64);
    }
    let body = if truncate {
        truncated_body(page.body)
    } else {
        Body::from(page.body)
    };
    let mut response = Response::new(body);
    add_graph_headers(&mut response, ids, ODATA_JSON);
    response
}

/// A 429 with Graph's throttling body and `retry_after` as the `Retry-After` header (none when
/// empty).
fn too_many_requests(retry_after: &str, now_wall: OffsetDateTime, ids: &ReplyIds) -> Response {
    let body = json!({
        "error": {
            "code": "TooManyRequests",
            "innerError": {
                "code": "429",
                "date": inner_error_date(now_wall),
                "message": "Please retry after",
                "request-id": ids.request_id,
                "status": "429",
            },
            "message": "Please retry again later.",
        }
    });
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body, ids);
    if !retry_after.is_empty() {
        insert_header(&mut response, header::RETRY_AFTER, retry_after);
    }
    response
}

/// The first half of `bytes` as one chunk, then a transport error, so hyper closes the
/// connection without the terminating chunk.
fn truncated_body(mut bytes: Vec<u8>) -> Body {
    bytes.truncate(bytes.len() / 2);
    let chunks = futures_util::stream::unfold(Some(bytes), |state| async move {
        match state {
            Some(first) => Some((Ok::<Vec<u8>, std::io::Error>(first), None)),
            None => {
                // Give hyper time to flush the first chunk before the connection is torn down.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((Err(std::io::Error::other("simulated truncation")), None))
            }
        }
    });
    Body::from_stream(chunks)
}

/// A rendered page.
pub(crate) struct Page {
    pub body: Vec<u8>,
    pub records: usize,
    /// Records per stream of the query, in the order of [`ListQuery::streams`].
    pub per_stream: Vec<usize>,
}

impl Shared {
    /// Up to `limit` records of the query's streams after `after`, in the endpoint's order, each
    /// with its stream, and whether more follow.
    fn select_page<'a>(
        &'a self,
        endpoint: Endpoint,
        streams: &[Resource],
        injected: &'a [std::sync::RwLockReadGuard<'a, Vec<crate::store::Injected>>],
        selection: &Selection,
        limit: usize,
    ) -> (Vec<(Resource, Item<'a>)>, bool) {
        let select = |index: usize, wanted: usize| {
            let stream = streams[index];
            let collection = &self.collections[stream.index()];
            let (items, more) = if endpoint.order_model() == OrderModel::Scrambled {
                collection.select_scrambled(&injected[index], selection, wanted)
            } else {
                collection.select(&injected[index], selection, wanted)
            };
            (
                items
                    .into_iter()
                    .map(|item| (stream, item))
                    .collect::<Vec<_>>(),
                more,
            )
        };
        match streams.len() {
            0 => (Vec::new(), false),
            1 => select(0, limit),
            _ => {
                // Several streams (interactive and non-interactive sign-ins): merge their
                // orders; records of different streams compare by time, id and sequence.
                let mut merged: Vec<(Resource, Item<'a>)> = Vec::new();
                for index in 0..streams.len() {
                    merged.extend(select(index, limit + 1).0);
                }
                merged.sort_by(|(a_stream, a), (b_stream, b)| {
                    let order = compare_items(*a_stream, a, *b_stream, b);
                    if selection.descending {
                        order.reverse()
                    } else {
                        order
                    }
                });
                let more = merged.len() > limit;
                merged.truncate(limit);
                (merged, more)
            }
        }
    }

    fn build_page(
        &self,
        request: &ListRequest,
        query: &ListQuery,
        token: Option<SkipToken>,
        now: i64,
        fingerprint: u64,
    ) -> Page {
        let injected: Vec<_> = query
            .streams
            .iter()
            .map(|stream| {
                self.collections[stream.index()]
                    .injected
                    .read()
                    .expect("injected lock")
            })
            .collect();
        let snapshot = token.as_ref().map_or(now, |token| token.snapshot);
        let after = token.and_then(|token| token.after);
        let probability = self.config.short_page_probability.clamp(0.0, 1.0);
        let limit = {
            let mut random = self.random.lock().expect("random lock");
            if probability > 0.0 && random.random_bool(probability) {
                random.random_range(0..query.top)
            } else {
                query.top
            }
        };
        let selection = Selection {
            lo: query.lo,
            hi: query.hi,
            descending: query.descending,
            after: after.as_ref(),
            snapshot,
        };
        let (items, more) = self.select_page(
            request.endpoint,
            &query.streams,
            &injected,
            &selection,
            limit,
        );
        let cursor_of = |(stream, item): &(Resource, Item)| -> Cursor {
            let collection = &self.collections[stream.index()];
            if request.endpoint.order_model() == OrderModel::Scrambled {
                collection.scrambled_cursor_of(item)
            } else {
                collection.cursor_of(item)
            }
        };

        let version = if request.beta { "beta" } else { "v1.0" };
        let mut body = Vec::with_capacity(512 + items.len() * 2800);
        body.extend_from_slice(b"{\"@odata.context\":");
        let mut context = format!(
            "{}/{version}/$metadata#{}",
            request.base,
            request.endpoint.stream().path()
        );
        if let Some(names) = &query.select {
            context.push('(');
            context.push_str(&names.join(","));
            context.push(')');
        }
        serde_json::to_writer(&mut body, &context).expect("string serialises");
        if more {
            let next = SkipToken {
                v: 1,
                issued: now,
                snapshot,
                query: fingerprint,
                after: items.last().map(cursor_of).or(after),
            };
            let link = format!(
                "{}{}?{}",
                request.base,
                request.path,
                next_link_query(&query.params, &next.encode())
            );
            body.extend_from_slice(b",\"@odata.nextLink\":");
            serde_json::to_writer(&mut body, &link).expect("string serialises");
        }
        body.extend_from_slice(b",\"value\":[");
        let context = RenderContext {
            tenant: &self.config.tenant,
            beta: request.beta,
        };
        let mut per_stream = vec![0; query.streams.len()];
        let mut scratch = Vec::new();
        for (index, (stream, item)) in items.iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            if let Some(position) = query.streams.iter().position(|s| s == stream) {
                per_stream[position] += 1;
            }
            let target = if query.select.is_some() {
                scratch.clear();
                &mut scratch
            } else {
                &mut body
            };
            match item {
                Item::Generated(rec) => {
                    write_record(target, *stream, rec, rec.republish_at <= snapshot, &context)
                }
                Item::Injected(rec) => target.extend_from_slice(rec.json.as_bytes()),
            }
            if let Some(names) = &query.select {
                project(&scratch, names, &mut body);
            }
        }
        body.extend_from_slice(b"]}");
        Page {
            body,
            records: items.len(),
            per_stream,
        }
    }

    /// The client id of a valid bearer token, or the 401 message.
    fn authorize(&self, headers: &HeaderMap, now: i64) -> Result<String, &'static str> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err("Access token is empty.");
        };
        let value = value.to_str().unwrap_or("");
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err("Access token validation failure."),
        };
        if token.is_empty() {
            return Err("Access token is empty.");
        }
        let tokens = self.tokens.lock().expect("tokens lock");
        match tokens.get(token) {
            None => Err("Access token validation failure. Invalid audience."),
            Some(issued) if now >= issued.expires_at => {
                Err("Lifetime validation failed, the token is expired.")
            }
            Some(issued) => Ok(issued.client_id.clone()),
        }
    }

    /// Counts an early retry, then applies the throttle; `Err` carries the time until a slot frees.
    fn admit(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients.lock().expect("clients lock");
        let state = clients.entry(client.to_string()).or_default();
        if state
            .not_before
            .is_some_and(|not_before| now + RETRY_AFTER_TOLERANCE < not_before)
        {
            self.counters
                .retry_after_ignored
                .fetch_add(1, AtomicOrdering::Relaxed);
        }
        if let Some(throttle) = self.config.throttle {
            while state
                .window
                .front()
                .is_some_and(|first| now.duration_since(*first) >= throttle.per)
            {
                state.window.pop_front();
            }
            if state.window.len() >= throttle.requests as usize {
                let delay = state.window.front().map_or(throttle.per, |first| {
                    throttle.per.saturating_sub(now.duration_since(*first))
                });
                return Err(delay);
            }
            state.window.push_back(now);
        }
        while state
            .last_ten_seconds
            .front()
            .is_some_and(|first| now.duration_since(*first) >= Duration::from_secs(10))
        {
            state.last_ten_seconds.pop_front();
        }
        state.last_ten_seconds.push_back(now);
        self.counters
            .max_requests_in_any_10s_window
            .fetch_max(state.last_ten_seconds.len() as u64, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// Formats a `Retry-After` of at least `delay` and remembers when it ends for this client.
    fn retry_after(&self, client: &str, delay: Duration, now_wall: OffsetDateTime) -> String {
        let (value, effective) = format_retry_after(self.config.retry_after_style, delay, now_wall);
        let mut clients = self.clients.lock().expect("clients lock");
        let state = clients.entry(client.to_string()).or_default();
        let end = Instant::now() + effective;
        state.not_before = Some(state.not_before.map_or(end, |previous| previous.max(end)));
        value
    }

    fn pick_fault(
        &self,
        streams: &[Resource],
        has_skiptoken: bool,
        window_ns: Option<i64>,
        (lo, hi): (i64, i64),
    ) -> Option<FaultKind> {
        let mut state = self.faults.lock().expect("faults lock");
        let state = &mut *state;
        for (index, fault) in state.faults.iter().enumerate() {
            if fault.resource.is_some_and(|only| !streams.contains(&only)) {
                continue;
            }
            if fault.kind == FaultKind::ExpiredSkiptoken && !has_skiptoken {
                continue;
            }
            if let (Some(minimum), Some(width)) = (fault.min_window, window_ns)
                && width <= duration_ns(minimum)
            {
                continue;
            }
            if let Some(instant) = fault.covering {
                let ns = i64::try_from(instant.unix_timestamp_nanos()).unwrap_or(i64::MAX);
                if ns < lo || ns > hi {
                    continue;
                }
            }
            if fault.first_n.is_some_and(|n| state.matched[index] >= n) {
                continue;
            }
            state.matched[index] += 1;
            let probability = fault.probability.clamp(0.0, 1.0);
            if probability > 0.0 && state.random.random_bool(probability) {
                return Some(fault.kind.clone());
            }
        }
        None
    }
}

/// Per-client throttle state.
#[derive(Default)]
pub(crate) struct ClientState {
    /// Accepted requests inside the throttle window.
    window: VecDeque<Instant>,
    /// Accepted requests inside the last 10 s, for `max_requests_in_any_10s_window`.
    last_ten_seconds: VecDeque<Instant>,
    /// End of the latest `Retry-After` given to this client.
    not_before: Option<Instant>,
}

/// The header value and the delay it actually asks for.
pub(crate) fn format_retry_after(
    style: RetryAfterStyle,
    delay: Duration,
    now_wall: OffsetDateTime,
) -> (String, Duration) {
    match style {
        RetryAfterStyle::Integer => {
            let seconds = delay.as_nanos().div_ceil(1_000_000_000).max(1) as u64;
            (seconds.to_string(), Duration::from_secs(seconds))
        }
        RetryAfterStyle::Fractional => {
            let millis = delay.as_nanos().div_ceil(1_000_000).max(1) as u64;
            (
                format!("{}.{:03}", millis / 1000, millis % 1000),
                Duration::from_millis(millis),
            )
        }
        RetryAfterStyle::HttpDate => {
            let target = now_wall + delay;
            let whole = target.unix_timestamp() + i64::from(target.nanosecond() > 0);
            let system_time = std::time::UNIX_EPOCH + Duration::from_secs(whole.max(0) as u64);
            let effective = Duration::from_nanos(
                (i128::from(whole) * 1_000_000_000 - now_wall.unix_timestamp_nanos()).max(0) as u64,
            );
            (httpdate::fmt_http_date(system_time), effective)
        }
    }
}

/// Keeps only the selected properties of one rendered record.
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

fn inner_error_date(now: OffsetDateTime) -> String {
    let text = format_timestamp(to_ns(now), 0);
    text.trim_end_matches('Z').to_string()
}

fn insert_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn add_graph_headers(response: &mut Response, ids: &ReplyIds, content_type: &str) {
    insert_header(response, header::CONTENT_TYPE, content_type);
    insert_header(response, header::CACHE_CONTROL, "no-cache");
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&ids.client_request_id) {
        headers.insert("client-request-id", value);
    }
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    headers.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(
            r#"{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-sim"}}"#,
        ),
    );
}

fn json_response(status: StatusCode, body: &serde_json::Value, ids: &ReplyIds) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    add_graph_headers(&mut response, ids, "application/json");
    response
}

/// A Graph error body: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
fn graph_error(
    shared: &Shared,
    status: StatusCode,
    code: &str,
    message: &str,
    ids: &ReplyIds,
) -> Response {
    if status == StatusCode::BAD_REQUEST {
        shared
            .counters
            .bad_requests
            .fetch_add(1, AtomicOrdering::Relaxed);
    }
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": inner_error_date(OffsetDateTime::now_utc()),
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id,
            }
        }
    });
    json_response(status, &body, ids)
}

fn invalid_skip_token(shared: &Shared, ids: &ReplyIds) -> Response {
    graph_error(
        shared,
        StatusCode::BAD_REQUEST,
        "",
        "Invalid Skip Token",
        ids,
    )
}

/// The 403 of a refused stream.
fn forbidden(shared: &Shared, stream: Resource, refusal: Refusal, ids: &ReplyIds) -> Response {
    let identity_protection = matches!(
        stream,
        Resource::RiskDetections | Resource::ServicePrincipalRiskDetections
    );
    let (code, message) = match refusal {
        Refusal::Permission => (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
        Refusal::Licence if identity_protection => {
            ("Forbidden", "Your tenant is not licensed for this feature.")
        }
        Refusal::Licence => (
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        ),
    };
    graph_error(shared, StatusCode::FORBIDDEN, code, message, ids)
}

fn unauthorized(shared: &Shared, message: &str, ids: &ReplyIds) -> Response {
    shared
        .counters
        .unauthorized
        .fetch_add(1, AtomicOrdering::Relaxed);
    let mut response = graph_error(
        shared,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
        ids,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_styles() {
        let now = datetime!(2024-01-13 14:13:32.5 UTC);
        let delay = Duration::from_micros(2_127_100);
        assert_eq!(
            format_retry_after(RetryAfterStyle::Fractional, delay, now),
            ("2.128".to_string(), Duration::from_millis(2128))
        );
        assert_eq!(
            format_retry_after(RetryAfterStyle::Integer, delay, now),
            ("3".to_string(), Duration::from_secs(3))
        );
        assert_eq!(
            format_retry_after(RetryAfterStyle::Integer, Duration::from_millis(1), now).0,
            "1"
        );
        assert_eq!(
            format_retry_after(RetryAfterStyle::HttpDate, delay, now),
            (
                "Sat, 13 Jan 2024 14:13:35 GMT".to_string(),
                Duration::from_millis(2500)
            )
        );
    }
}
