//! The shared HTTP plumbing of every paged JSON source: an authenticated, throttle-aware client
//! that streams the pages of one time window. It knows HTTP, tokens, throttling, retries and the
//! `{"value": [...], "@odata.nextLink"|"nextLink": ...}` envelope; what differs between sources
//! (the first page's URL, what a 403 means) comes from a [`Dialect`]. The Graph dialect lives in
//! `crate::graph`; the pipeline sees this client only through `crate::source::Source`.
//!
//! - [`PagedClient::fetch_window`] streams the pages of one time window (`[start, end)`),
//!   following the next link verbatim ([`paging`]), within [`FetchLimits`] (the deadline of
//!   the caller's run).
//! - Every request passes the process-wide [`throttle::Limiter`] first, then takes the current
//!   token, and its failures are handled by the [`retry::RetryPolicy`] (Retry-After, backoff,
//!   token refresh and a grace for new credentials on 401, the deadline's time rules).
//! - Pages keep the server's bytes; [`page::parse_page`] reads only each record's id and time.
//! - Nothing here logs a token, a secret or record content: logs carry the URL path (never the
//!   query), statuses, error codes, request ids, counts and record ids.

pub mod budget;
pub mod clock;
pub mod error;
pub mod page;
pub mod paging;
pub mod retry;
pub mod throttle;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use crate::auth::TokenCache;
use crate::config::GraphConfig;
use crate::job::JobSpec;
use crate::redact::shorten;

pub use error::{Error, PageRef};
pub use page::{Page, ParsedPage, RecordRef, parse_page, parse_page_at};
pub use retry::{RetryPolicy, parse_retry_after};

/// What differs between the sources served by [`PagedClient`]: how a window is asked for and
/// how some answers are read. One implementation per API (Graph: `crate::graph::Graph`).
pub trait Dialect: Send + Sync + std::fmt::Debug {
    /// The root every request and next link must stay on (scheme, host and port).
    fn endpoint(&self) -> &Url;
    /// The URL of the first page of the records of `stream` with `start <= time < end`,
    /// oldest first where `stream.ordered`.
    fn window_url(&self, stream: &JobSpec, start: OffsetDateTime, end: OffsetDateTime) -> Url;
    /// Whether a 403 with this error code is a passing refusal worth a few slow retries (Graph's
    /// intermittent licence 403), rather than a missing permission.
    fn forbidden_is_passing(&self, code: &str) -> bool;
}

/// Request statistics of one run (or fetch), for the run report. Shared by the caller.
#[derive(Debug, Default)]
pub struct FetchStats {
    /// HTTP requests sent to Graph (every attempt).
    pub requests: AtomicU64,
    /// 429 responses.
    pub throttled: AtomicU64,
    /// Requests that repeated an earlier request for the same page.
    pub retries: AtomicU64,
    /// Windows restarted from their first page (expired skip token).
    pub window_restarts: AtomicU64,
    /// Windows split in half after persistent timeouts or server errors.
    pub window_splits: AtomicU64,
}

impl FetchStats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Limits on one [`PagedClient::fetch_window`] stream. The default has none: the stream retries
/// and waits as the [`RetryPolicy`] says, however long that takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchLimits {
    /// When the caller's run budget ends. With one:
    /// - a `Retry-After` (429, 503), or a pause of the shared limiter, that ends after it ends
    ///   the stream at once with [`Error::Throttled`] carrying the full `Retry-After` (what is
    ///   left of it, for a limiter pause), instead of sleeping through the run;
    /// - each attempt's timeout is `GRAPH_REQUEST_TIMEOUT`, or the time left when that is
    ///   shorter, but at least [`retry::MIN_ATTEMPT_TIMEOUT`];
    /// - one page's retries stop (with [`Error::Exhausted`], so that a failing window is split)
    ///   when the next retry would end more than `max(GRAPH_REQUEST_TIMEOUT, a quarter of the
    ///   time left at the page's first attempt)` after that first attempt.
    ///
    /// No request is sent after the deadline: a page not yet requested when it passes ends
    /// the stream with [`Error::DeadlinePassed`] (a request waiting for the limiter gives up at
    /// the deadline). A request sent before it is answered within its timeout.
    pub deadline: Option<Instant>,
}

impl FetchLimits {
    /// Limits with this deadline.
    pub fn until(deadline: Instant) -> FetchLimits {
        FetchLimits {
            deadline: Some(deadline),
        }
    }
}

/// The time rules of one page's attempts under [`FetchLimits`] (see [`retry`]).
#[derive(Debug, Clone, Copy)]
struct PageClock {
    deadline: Option<Instant>,
    request_timeout: Duration,
    /// When the first attempt was sent, and how long the page's attempts may take from then.
    first: Option<(Instant, Duration)>,
    /// The longest attempt so far: what the next one is expected to take at most.
    longest: Duration,
}

impl PageClock {
    fn new(limits: FetchLimits, request_timeout: Duration) -> PageClock {
        PageClock {
            deadline: limits.deadline,
            request_timeout,
            first: None,
            longest: Duration::ZERO,
        }
    }

    /// The timeout of an attempt sent at `now`.
    fn attempt_timeout(&self, now: Instant) -> Duration {
        match self.deadline {
            None => self.request_timeout,
            Some(deadline) => self.request_timeout.min(
                deadline
                    .saturating_duration_since(now)
                    .max(retry::MIN_ATTEMPT_TIMEOUT),
            ),
        }
    }

    /// An attempt is sent at `now`.
    fn sent(&mut self, now: Instant) {
        if self.first.is_none() {
            let left = self
                .deadline
                .map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
            let budget = self.request_timeout.max(left / retry::PAGE_SHARE);
            self.first = Some((now, budget));
        }
    }

    /// An attempt took `took`.
    fn finished(&mut self, took: Duration) {
        self.longest = self.longest.max(took);
    }

    /// Whether a retry after `delay` from now fits in the page's time (always without a
    /// deadline).
    fn allows(&self, delay: Duration) -> bool {
        self.allows_at(Instant::now(), delay)
    }

    fn allows_at(&self, now: Instant, delay: Duration) -> bool {
        let (Some(_), Some((first, budget))) = (self.deadline, self.first) else {
            return true;
        };
        let attempt = match now.checked_add(delay) {
            Some(next) => self.longest.min(self.attempt_timeout(next)),
            None => return false,
        };
        now.saturating_duration_since(first)
            .saturating_add(delay)
            .saturating_add(attempt)
            <= budget
    }
}

/// The process's current streak of 401s (shared by every clone of the client): when it started.
/// Any page received ends it.
#[derive(Debug, Default)]
struct UnauthorizedStreak(std::sync::Mutex<Option<Instant>>);

impl UnauthorizedStreak {
    /// A 401 arrived: the start of the streak it belongs to.
    fn started(&self) -> Instant {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now)
    }

    fn ended(&self) {
        let mut since = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_some() {
            *since = None;
        }
    }
}

/// The paged client of one API (its [`Dialect`]). Cheap to clone; every clone shares the token
/// cache, the HTTP pool and the limiter.
#[derive(Clone, Debug)]
pub struct PagedClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dialect: Arc<dyn Dialect>,
    request_timeout: Duration,
    min_window: Duration,
    policy: RetryPolicy,
    tokens: Arc<TokenCache>,
    http: reqwest::Client,
    limiter: Arc<throttle::Limiter>,
    budget: budget::PageBudget,
    /// The largest page body seen, the charge for a body of unknown length.
    largest_body: Arc<AtomicU64>,
    /// Since when the server refuses our tokens (401), if it does.
    unauthorized: Arc<UnauthorizedStreak>,
    /// The server's time, from the `Date` of its replies.
    clock: Arc<clock::ServerClock>,
}

/// The charge for a page body of unknown length before any page was seen.
const FIRST_BODY_ESTIMATE: u64 = 2 * 1024 * 1024;

impl PagedClient {
    /// A client speaking `dialect`, with the timeouts, retries and page buffer of `config`,
    /// authenticating with `tokens`, sending through `http` and pacing every request through
    /// `limiter` (one per process and API, shared by all jobs). Page bodies are held within
    /// `config.page_buffer` bytes, shared by every clone.
    pub fn new(
        config: &GraphConfig,
        dialect: Arc<dyn Dialect>,
        tokens: Arc<TokenCache>,
        http: reqwest::Client,
        limiter: Arc<throttle::Limiter>,
    ) -> PagedClient {
        PagedClient {
            inner: Arc::new(Inner {
                dialect,
                request_timeout: config.request_timeout,
                min_window: config.min_window,
                policy: RetryPolicy::from_config(config),
                tokens,
                http,
                limiter,
                budget: budget::PageBudget::new(config.page_buffer),
                largest_body: Arc::new(AtomicU64::new(FIRST_BODY_ESTIMATE)),
                unauthorized: Arc::default(),
                clock: Arc::default(),
            }),
        }
    }

    /// The same client with another retry policy (tests use [`RetryPolicy::fast`]).
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> PagedClient {
        let inner = &self.inner;
        PagedClient {
            inner: Arc::new(Inner {
                dialect: inner.dialect.clone(),
                request_timeout: inner.request_timeout,
                min_window: inner.min_window,
                policy,
                tokens: inner.tokens.clone(),
                http: inner.http.clone(),
                limiter: inner.limiter.clone(),
                budget: inner.budget.clone(),
                largest_body: inner.largest_body.clone(),
                unauthorized: inner.unauthorized.clone(),
                clock: inner.clock.clone(),
            }),
        }
    }

    /// The server's clock, as its replies tell it.
    pub fn clock(&self) -> &clock::ServerClock {
        &self.inner.clock
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Streams every record of `job` with `start <= time < end`, page by page.
    ///
    /// **Contract: every record of `[start, end)` at least once.** A page that keeps failing
    /// transiently makes its window restart (expired skip token) or split in half (timeouts,
    /// server errors; down to `GRAPH_MIN_WINDOW`), and the restarted or split windows are fetched
    /// from their first page, so records already yielded can be yielded again. **The consumer
    /// de-duplicates by id.** Pages can be empty. Bounds are rounded up to Graph's 100 ns grid
    /// (which no record time lies off); `start >= end` yields nothing.
    ///
    /// The stream ends after the first error; records of pages yielded before it are valid.
    /// Every request is counted in `stats`.
    ///
    /// **`limits`** bound the time the stream spends waiting and retrying
    /// ([`FetchLimits::deadline`]): when Graph (or the shared limiter, paused by an earlier
    /// answer) asks to wait past the deadline, the stream ends at once with
    /// [`Error::Throttled`] (whose `retry_after` is Graph's full `Retry-After`; a `Throttled`
    /// error is returned only then, other throttling ends in [`Error::Exhausted`]); a page whose
    /// retries would take too large a share of the time left gives up early with
    /// [`Error::Exhausted`], so that a window of timeouts or server errors is split in time.
    /// [`FetchLimits::default()`] has no deadline.
    ///
    /// **Pages hold the page budget** (`GRAPH_PAGE_BUFFER`, [`budget`]) until their body and
    /// every slice of it are dropped: a consumer that keeps more pages than the budget admits
    /// waits for ever for the next one (a warning is logged after 30 s).
    pub fn fetch_window(
        &self,
        job: &JobSpec,
        start: OffsetDateTime,
        end: OffsetDateTime,
        stats: Arc<FetchStats>,
        limits: FetchLimits,
    ) -> impl futures::Stream<Item = Result<Page, Error>> + Send + 'static {
        paging::window_stream(self.clone(), job.clone(), start, end, stats, limits)
    }

    /// The first page's URL of a window (see [`Dialect::window_url`]).
    pub fn window_url(&self, job: &JobSpec, start: OffsetDateTime, end: OffsetDateTime) -> Url {
        self.inner.dialect.window_url(job, start, end)
    }

    /// Checks that a nextLink stays on the configured endpoint (scheme, host and port).
    fn check_next_link(&self, link: &str, at: &PageRef) -> Result<Url, Error> {
        let url = Url::parse(link).map_err(|e| Error::InvalidPage {
            page: at.clone(),
            reason: format!("its nextLink is not a URL: {e}"),
        })?;
        let endpoint = self.inner.dialect.endpoint();
        let same = url.scheme() == endpoint.scheme()
            && url.host_str() == endpoint.host_str()
            && url.port_or_known_default() == endpoint.port_or_known_default();
        if same {
            Ok(url)
        } else {
            Err(Error::ForeignNextLink {
                page: at.clone(),
                link_host: format!(
                    "{}://{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ),
            })
        }
    }

    /// Fetches and parses one page, retrying as the [`RetryPolicy`] says, within `limits`.
    async fn fetch_page(
        &self,
        url: &Url,
        job: &JobSpec,
        at: &PageRef,
        stats: &FetchStats,
        via_next_link: bool,
        limits: FetchLimits,
    ) -> Result<ParsedPage, Error> {
        let inner = &*self.inner;
        let policy = &inner.policy;
        let path = url.path().to_owned();
        let mut backoff = policy.backoff(policy.max_attempts.saturating_sub(1));
        let mut throttle_backoff = policy.backoff(policy.throttle_attempts);
        let mut licence_backoff = policy.backoff(policy.licence_attempts.saturating_sub(1));
        let mut auth_backoff = policy.backoff(u32::MAX);
        let mut clock = PageClock::new(limits, inner.request_timeout);
        let (mut attempts, mut throttles, mut refreshed) = (0u32, 0u32, false);
        loop {
            attempts += 1;
            if attempts > 1 {
                FetchStats::add(&stats.retries);
            }
            // No request starts after the deadline: its page would arrive when the run is
            // winding down, and its share of the throttle budget would be spent for nothing.
            let acquired = match limits.deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(
                        deadline,
                        inner.limiter.acquire_before(Some(deadline)),
                    )
                    .await
                    {
                        Ok(acquired) if Instant::now() < deadline => acquired,
                        _ => return Err(Error::DeadlinePassed { path }),
                    }
                }
                None => inner.limiter.acquire_before(None).await,
            };
            if let Err(paused) = acquired {
                let error = Error::Throttled {
                    path,
                    status: paused.status,
                    retry_after: Some(paused.retry_after),
                };
                beyond_deadline_log(at, &error);
                return Err(error);
            }
            // Taken once the limiter admits the request, so that no wait (limiter, Retry-After,
            // backoff) can age it: the cache hands out the same token until it is due.
            let token = inner.tokens.token().await.map_err(Error::Token)?;
            FetchStats::add(&stats.requests);
            let started = Instant::now();
            let timeout = clock.attempt_timeout(started);
            clock.sent(started);
            let response = self.send(url, &token, &path, timeout).await;
            clock.finished(started.elapsed());
            let (status, headers, body) = match response {
                Ok(parts) => parts,
                Err(error) => {
                    // Timeouts and dropped connections.
                    let Some(delay) = backoff.next().filter(|d| clock.allows(*d)) else {
                        return Err(exhausted(path, attempts, error));
                    };
                    retry_log(at, attempts, None, &error, delay, None);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let request_id = header_text(&headers, "request-id");
            if status == StatusCode::OK {
                match page::parse_page_at(body, job, at) {
                    Ok(parsed) => {
                        inner.unauthorized.ended();
                        tracing::debug!(
                            url.path = %path,
                            page.index = at.index,
                            page.items = parsed.page.len(),
                            page.bytes = parsed.page.body_len(),
                            http.duration_ms = started.elapsed().as_millis() as u64,
                            retry.attempt = attempts,
                            "graph page received"
                        );
                        return Ok(parsed);
                    }
                    Err(error) if error.is_transient() => {
                        let Some(delay) = backoff.next().filter(|d| clock.allows(*d)) else {
                            return Err(exhausted(path, attempts, error));
                        };
                        retry_log(
                            at,
                            attempts,
                            Some(200),
                            &error,
                            delay,
                            request_id.as_deref(),
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            let graph_error = ErrorBody::parse(&body);
            match status.as_u16() {
                401 => {
                    let since = inner.unauthorized.started();
                    if !refreshed {
                        tracing::warn!(
                            url.path = %path,
                            page.index = at.index,
                            http.status = 401,
                            graph.code = %graph_error.code,
                            graph.request_id = request_id.as_deref().unwrap_or(""),
                            "graph refused the token: refreshing it"
                        );
                        refreshed = true;
                        inner
                            .tokens
                            .refresh_after_rejection(&token)
                            .await
                            .map_err(Error::Token)?;
                        continue;
                    }
                    // Refused again with a new token: new credentials and admin consent take
                    // minutes to reach every Graph front end, so keep trying for a while (the
                    // grace since the streak's first 401, within the page's time).
                    let error = Error::Unauthorized { path: path.clone() };
                    let delay = auth_backoff.next().filter(|d| {
                        since.elapsed().saturating_add(*d) < policy.unauthorized_grace
                            && clock.allows(*d)
                    });
                    let Some(delay) = delay else {
                        return Err(error);
                    };
                    retry_log(
                        at,
                        attempts,
                        Some(401),
                        &error,
                        delay,
                        request_id.as_deref(),
                    );
                    tokio::time::sleep(delay).await;
                    inner
                        .tokens
                        .refresh_after_rejection(&token)
                        .await
                        .map_err(Error::Token)?;
                }
                status @ (429 | 503) => {
                    if status == 429 {
                        FetchStats::add(&stats.throttled);
                    }
                    let retry_after = headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    inner.limiter.penalise_status(status, retry_after);
                    let error = Error::Throttled {
                        path: path.clone(),
                        status,
                        retry_after,
                    };
                    if let (Some(deadline), Some(wait)) = (limits.deadline, retry_after) {
                        // Graph asks to wait past the end of the caller's run: say so now.
                        let ends = Instant::now().checked_add(wait);
                        if ends.is_none_or(|ends| ends > deadline) {
                            beyond_deadline_log(at, &error);
                            return Err(error);
                        }
                    }
                    throttles += 1;
                    let delay = match retry_after {
                        _ if throttles > policy.throttle_attempts => None,
                        Some(wait) => Some(wait.min(policy.max_retry_after)),
                        None => throttle_backoff.next(),
                    };
                    let Some(delay) = delay.filter(|d| clock.allows(*d)) else {
                        return Err(exhausted(path, attempts, error));
                    };
                    retry_log(
                        at,
                        attempts,
                        Some(status),
                        &error,
                        delay,
                        request_id.as_deref(),
                    );
                    tokio::time::sleep(delay).await;
                }
                403 if inner.dialect.forbidden_is_passing(&graph_error.code) => {
                    let error = forbidden(path.clone(), &graph_error, job);
                    let Some(delay) = licence_backoff.next() else {
                        return Err(error);
                    };
                    if !clock.allows(delay) {
                        // Out of time for this page, not out of tries: another run may do.
                        return Err(exhausted(path, attempts, error));
                    }
                    retry_log(
                        at,
                        attempts,
                        Some(403),
                        &error,
                        delay,
                        request_id.as_deref(),
                    );
                    tokio::time::sleep(delay).await;
                }
                403 => return Err(forbidden(path, &graph_error, job)),
                400 if via_next_link && graph_error.mentions_skip_token() => {
                    return Err(Error::SkipTokenExpired {
                        page: at.clone(),
                        message: shorten(&graph_error.message, 300),
                    });
                }
                400 => {
                    return Err(Error::BadRequest {
                        query: describe_query(url),
                        code: graph_error.code,
                        message: shorten(&graph_error.message, 300),
                    });
                }
                404 => return Err(Error::NotFound { path }),
                status if status >= 500 => {
                    let error = Error::Status {
                        path: path.clone(),
                        status,
                        code: graph_error.code,
                    };
                    let Some(delay) = backoff.next().filter(|d| clock.allows(*d)) else {
                        return Err(exhausted(path, attempts, error));
                    };
                    retry_log(
                        at,
                        attempts,
                        Some(status),
                        &error,
                        delay,
                        request_id.as_deref(),
                    );
                    tokio::time::sleep(delay).await;
                }
                status => {
                    return Err(Error::Status {
                        path,
                        status,
                        code: graph_error.code,
                    });
                }
            }
        }
    }

    /// One request: status, headers and the whole body within `timeout`. A `200` body is read
    /// only once the page budget admits it (the wait is not counted in the timeout), and holds
    /// its charge for as long as any slice of it lives.
    async fn send(
        &self,
        url: &Url,
        token: &azure_core::credentials::Secret,
        path: &str,
        timeout: Duration,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        let inner = &*self.inner;
        let request = inner
            .http
            .get(url.clone())
            .bearer_auth(token.secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .header("client-request-id", uuid::Uuid::new_v4().to_string());
        let timed_out = || Error::Timeout {
            path: path.to_owned(),
            timeout,
        };
        let failed = |source: reqwest::Error| {
            if source.is_timeout() {
                timed_out()
            } else {
                Error::Transport {
                    path: path.to_owned(),
                    source: source.without_url(),
                }
            }
        };
        let deadline = later(Instant::now(), timeout);
        let mut response = tokio::time::timeout_at(deadline, request.send())
            .await
            .map_err(|_| timed_out())?
            .map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        inner.clock.observe(&headers);
        let length = response.content_length();
        let (hold, deadline) = if status == StatusCode::OK {
            let waiting = Instant::now();
            let estimate = length.unwrap_or_else(|| inner.largest_body.load(Ordering::Relaxed));
            let hold = inner.budget.reserve(estimate.saturating_mul(2)).await;
            (Some(hold), later(deadline, waiting.elapsed()))
        } else {
            (None, deadline)
        };
        let read = async {
            // One allocation of the announced size (capped: the header is the server's word).
            let capacity = length.unwrap_or(0).min(64 * 1024 * 1024) as usize;
            let mut body = Vec::with_capacity(capacity);
            while let Some(chunk) = response.chunk().await? {
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(body)
        };
        let body = tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| timed_out())?
            .map_err(failed)?;
        let body = match hold {
            Some(hold) => {
                inner
                    .largest_body
                    .fetch_max(body.len() as u64, Ordering::Relaxed);
                budget::BudgetedBody::into_bytes(body, hold)
            }
            None => Bytes::from(body),
        };
        Ok((status, headers, body))
    }
}

/// `at + wait`, or about 30 years after `at` when that overflows (absurd configured timeouts).
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 86_400))
}

fn exhausted(path: String, attempts: u32, last: Error) -> Error {
    Error::Exhausted {
        path,
        attempts,
        last: Box::new(last),
    }
}

fn forbidden(path: String, graph_error: &ErrorBody, job: &JobSpec) -> Error {
    Error::Forbidden {
        path,
        code: graph_error.code.clone(),
        hint: job.forbidden_hint.to_owned(),
    }
}

fn beyond_deadline_log(at: &PageRef, error: &Error) {
    tracing::warn!(
        url.path = %at.path,
        page.index = at.index,
        retry.after_ms = error.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        error = %error,
        "graph asks to wait past the deadline: giving up on this window"
    );
}

fn retry_log(
    at: &PageRef,
    attempt: u32,
    status: Option<u16>,
    error: &Error,
    delay: Duration,
    request_id: Option<&str>,
) {
    tracing::warn!(
        url.path = %at.path,
        page.index = at.index,
        http.status = status,
        retry.attempt = attempt,
        retry.delay_ms = delay.as_millis() as u64,
        graph.request_id = request_id.unwrap_or(""),
        error = %ErrorChain(error),
        "graph request failed: retrying"
    );
}

/// An error and its causes, `outer: inner: innermost`, for log fields.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| shorten(v, 80))
}

/// `` `<path>` with $filter `<decoded filter>` `` (never the skip token or the token).
fn describe_query(url: &Url) -> String {
    let filter = url
        .query_pairs()
        .find(|(key, _)| key == "$filter")
        .map(|(_, value)| value.into_owned());
    match filter {
        Some(filter) => format!("`{}` with $filter `{}`", url.path(), shorten(&filter, 300)),
        None => format!("`{}` without $filter", url.path()),
    }
}

/// The parts of an error body we use: `{"error":{"code","message"}}` (Graph, ARM), or
/// `{"code","message"}` (some ARM front ends).
#[derive(Debug, Default)]
struct ErrorBody {
    code: String,
    message: String,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> ErrorBody {
        #[derive(serde::Deserialize)]
        struct Outer {
            error: Option<Inner>,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        match serde_json::from_slice::<Outer>(body) {
            Ok(Outer { error: Some(e), .. }) => ErrorBody {
                code: e.code.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            },
            Ok(Outer {
                error: None,
                code: Some(code),
                message,
            }) => ErrorBody {
                code,
                message: message.unwrap_or_default(),
            },
            _ => ErrorBody::default(),
        }
    }

    fn mentions_skip_token(&self) -> bool {
        let text = format!("{} {}", self.code, self.message).to_ascii_lowercase();
        text.contains("skip token") || text.contains("skiptoken")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dialect that asks for `<endpoint>/items?from=..&to=..`.
    #[derive(Debug)]
    struct Plain(Url);

    impl Dialect for Plain {
        fn endpoint(&self) -> &Url {
            &self.0
        }
        fn window_url(&self, _: &JobSpec, start: OffsetDateTime, end: OffsetDateTime) -> Url {
            let mut url = self.0.join("items").unwrap();
            url.query_pairs_mut()
                .append_pair("from", &crate::timestamp::format(start))
                .append_pair("to", &crate::timestamp::format(end));
            url
        }
        fn forbidden_is_passing(&self, _: &str) -> bool {
            false
        }
    }

    fn client(endpoint: &str) -> PagedClient {
        let config = crate::config::Config::from_vars([
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
            ("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true"),
            ("AUTH_MODE", "azure_cli"),
        ])
        .unwrap();
        crate::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let credential = crate::auth::build_credentials(&config, http.clone())
            .unwrap()
            .graph;
        let tokens = Arc::new(TokenCache::new(credential, config.graph.scope.clone()));
        PagedClient::new(
            &config.graph,
            Arc::new(Plain(Url::parse(endpoint).unwrap())),
            tokens,
            http,
            Arc::new(throttle::Limiter::new(5)),
        )
    }

    #[test]
    fn the_first_page_url_is_the_dialects() {
        let client = client("http://127.0.0.1:9/api/");
        let url = client.window_url(
            crate::job::JobKind::SignIn.spec_template(),
            time::macros::datetime!(2024-01-13 00:00 UTC),
            time::macros::datetime!(2024-01-14 00:00 UTC),
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/api/items?from=2024-01-13T00%3A00%3A00.0000000Z&to=2024-01-14T00%3A00%3A00.0000000Z"
        );
        assert_eq!(describe_query(&url), "`/api/items` without $filter");
    }

    #[test]
    fn next_links_must_stay_on_the_endpoint() {
        let graph = client("https://graph.microsoft.us/");
        let at = PageRef {
            path: "/v1.0/auditLogs/signIns".into(),
            index: 1,
        };
        // Path case and filter encoding may change: followed verbatim.
        let same = "https://GRAPH.microsoft.us:443/v1.0/auditLogs/signins?$filter=startsWith(appDisplayName%2c%27Graph%27)&$skiptoken=x";
        assert_eq!(
            graph.check_next_link(same, &at).unwrap().as_str(),
            "https://graph.microsoft.us/v1.0/auditLogs/signins?$filter=startsWith(appDisplayName%2c%27Graph%27)&$skiptoken=x"
        );
        for (foreign, host) in [
            (
                "https://graph.microsoft.com/v1.0/x?$skiptoken=1",
                "https://graph.microsoft.com",
            ),
            (
                "http://graph.microsoft.us/v1.0/x",
                "http://graph.microsoft.us",
            ),
            (
                "https://graph.microsoft.us:8443/v1.0/x",
                "https://graph.microsoft.us:8443",
            ),
            (
                "https://graph.microsoft.us.evil.example/v1.0/x",
                "https://graph.microsoft.us.evil.example",
            ),
        ] {
            let error = graph.check_next_link(foreign, &at).unwrap_err();
            match &error {
                Error::ForeignNextLink { link_host, .. } => assert_eq!(link_host, host),
                other => panic!("{foreign}: {other:?}"),
            }
            assert!(!error.is_transient());
        }
        assert!(matches!(
            graph.check_next_link("not a url", &at),
            Err(Error::InvalidPage { .. })
        ));
    }

    #[test]
    fn without_a_deadline_pages_keep_todays_timeout_and_retries() {
        let mut clock = PageClock::new(FetchLimits::default(), Duration::from_secs(120));
        let t0 = Instant::now();
        assert_eq!(clock.attempt_timeout(t0), Duration::from_secs(120));
        clock.sent(t0);
        clock.finished(Duration::from_secs(120));
        assert!(clock.allows_at(t0 + Duration::from_secs(3600), Duration::from_secs(300)));
    }

    #[test]
    fn under_a_deadline_a_page_retries_within_a_quarter_of_the_time_left() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let limits = FetchLimits::until(t0 + secs(20));
        let mut clock = PageClock::new(limits, secs(2));
        assert_eq!(clock.attempt_timeout(t0), secs(2));
        clock.sent(t0);
        // The first attempt timed out after 2 s: a second fits in max(2 s, 20 s / 4).
        clock.finished(secs(2));
        let backoff = Duration::from_millis(10);
        assert!(clock.allows_at(t0 + secs(2), backoff));
        // The second timed out too: a third would end after 6 s.
        clock.sent(t0 + secs(2) + backoff);
        clock.finished(secs(2));
        assert!(!clock.allows_at(t0 + secs(4) + backoff, backoff));
        // Later attempts do not move the page's start or budget.
        assert_eq!(clock.first, Some((t0, secs(5))));

        // Quick failures are retried for as long as the budget lasts.
        let mut clock = PageClock::new(FetchLimits::until(t0 + secs(480)), secs(120));
        clock.sent(t0);
        clock.finished(Duration::from_millis(50));
        assert!(clock.allows_at(t0 + secs(100), secs(16)));
        assert!(!clock.allows_at(t0 + secs(100), secs(20)));
        // A retry after an absurd delay never fits.
        assert!(!clock.allows_at(t0, Duration::MAX));
    }

    #[test]
    fn attempts_near_the_deadline_get_what_is_left_but_at_least_a_second() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let clock = PageClock::new(FetchLimits::until(t0 + secs(30)), secs(120));
        assert_eq!(clock.attempt_timeout(t0), secs(30));
        assert_eq!(
            clock.attempt_timeout(t0 + secs(29) + Duration::from_millis(500)),
            secs(1)
        );
        assert_eq!(clock.attempt_timeout(t0 + secs(60)), secs(1));
        // Never longer than GRAPH_REQUEST_TIMEOUT, even when that is under a second.
        let short = PageClock::new(FetchLimits::until(t0), Duration::from_millis(300));
        assert_eq!(short.attempt_timeout(t0), Duration::from_millis(300));
        // The page's budget is GRAPH_REQUEST_TIMEOUT when a quarter of what is left is less.
        let mut late = PageClock::new(FetchLimits::until(t0 + secs(30)), secs(120));
        late.sent(t0);
        assert_eq!(late.first, Some((t0, secs(120))));
    }

    #[test]
    fn graph_error_bodies_are_read_from_the_fixtures() {
        let skip = ErrorBody::parse(&page::tests::fixture(
            "error-400-invalid-skip-token-users.json",
        ));
        assert!(skip.mentions_skip_token());
        let filter = ErrorBody::parse(&page::tests::fixture(
            "error-400-invalid-filter-clause.json",
        ));
        assert_eq!(filter.code, "BadRequest");
        assert_eq!(filter.message, "Invalid filter clause");
        assert!(!filter.mentions_skip_token());
        let licence = ErrorBody::parse(&page::tests::fixture("error-403-nonpremium-tenant.json"));
        assert_eq!(
            licence.code,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        );
        let throttled = ErrorBody::parse(&page::tests::fixture("graph-429-throttled.body.json"));
        assert_eq!(throttled.code, "TooManyRequests");
        assert_eq!(ErrorBody::parse(b"<html>").code, "");
        // Some ARM front ends answer without the `error` wrapper.
        let bare = ErrorBody::parse(br#"{"code":"AuthorizationFailed","message":"no"}"#);
        assert_eq!(
            (bare.code.as_str(), bare.message.as_str()),
            ("AuthorizationFailed", "no")
        );
    }
}
