//! Retry policy: how long to wait and how often to try again, per failure class.
//!
//! | Failure | Reaction |
//! |---|---|
//! | 429, 503 | wait exactly `Retry-After` (integer, fractional or HTTP date; keyed on the status, not the error code; a single wait at most `max_retry_after`), or our own backoff without it; up to `throttle_attempts`; the shared limiter slows down and pauses for the `Retry-After` (one response pauses it at most an hour, [`super::throttle::MAX_PAUSE`]). **With a deadline**, a `Retry-After` (or a limiter pause) that ends after it ends the stream at once with `Throttled` carrying the full `Retry-After` |
//! | 500, 502, 504 (any other 5xx), timeouts, dropped connections, truncated or unparseable bodies | exponential backoff with jitter (backon), up to `max_attempts` per page; then the window is split |
//! | 401 | a token refresh, then the same URL again at once; a 401 after that is retried with backoff and a forced refresh each time (consent and new credentials take minutes to reach every Graph front end) while `unauthorized_grace` (5 min) has not passed since the first 401 of the streak (the streak is the process's: it ends with any page received) and, under a deadline, within the page's time; then permanent (`Unauthorized`) |
//! | 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant` | intermittent on licensed tenants: `licence_attempts` tries in all |
//! | 400 naming the skip token, on a nextLink | the window restarts from its first page, up to `window_restarts` times |
//! | other 400, other 403, 404, other 4xx | permanent, explained |
//!
//! **Deadline** ([`super::FetchLimits::deadline`], the end of the caller's run budget). Without
//! one, the table is the whole story. With one, besides the `Retry-After` rule above:
//! - each attempt's timeout is `GRAPH_REQUEST_TIMEOUT`, or the time left to the deadline when
//!   that is shorter, but at least [`MIN_ATTEMPT_TIMEOUT`];
//! - the retries of one page, whatever their class, stop when the next one (its delay plus an
//!   attempt as long as the longest so far) would end more than
//!   `max(GRAPH_REQUEST_TIMEOUT, (deadline - first attempt) / 4)` after the page's first
//!   attempt was sent (the wait in the limiter before it does not count): the page fails with
//!   `Exhausted` as if its attempts had run out (401s: `Unauthorized`), so a window of timeouts
//!   or server errors is split while the run still has time to fetch both halves.
//!
//! Every attempt, retries included, takes the token only once the limiter has admitted it: no
//! wait (limiter, `Retry-After`, backoff) can make a short-lived token expire on its way.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::config::GraphConfig;

/// Attempts and delays; see the module documentation for the classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per page for transient failures (`GRAPH_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// First backoff delay; each further one doubles, plus up to as much jitter.
    pub min_delay: Duration,
    /// Largest backoff delay (before jitter).
    pub max_delay: Duration,
    /// 429/503 responses tolerated for one page before giving up.
    pub throttle_attempts: u32,
    /// Longest single `Retry-After` wait honoured; longer values are shortened to this.
    pub max_retry_after: Duration,
    /// Tries in all for the intermittent licence 403.
    pub licence_attempts: u32,
    /// Restarts of one window after expired skip tokens.
    pub window_restarts: u32,
    /// How long 401s are retried (with backoff and a forced token refresh each time) after the
    /// first 401 of a streak, before `Unauthorized`.
    pub unauthorized_grace: Duration,
}

/// The shortest timeout an attempt gets, however close the deadline.
pub const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// A page's retries may use `1 / PAGE_SHARE` of the time left to the deadline at its first
/// attempt (or `GRAPH_REQUEST_TIMEOUT`, when longer).
pub const PAGE_SHARE: u32 = 4;

impl RetryPolicy {
    /// Production delays: 1 s doubling to 60 s, 20 throttled responses per page, Retry-After up
    /// to 5 min, 3 licence tries, 3 window restarts, 401s retried for 5 min.
    pub fn from_config(config: &GraphConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            throttle_attempts: 20,
            max_retry_after: Duration::from_secs(300),
            licence_attempts: 3,
            window_restarts: 3,
            unauthorized_grace: Duration::from_secs(300),
        }
    }

    /// The same classes with millisecond delays (401s retried for 1 s), for tests.
    pub fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            throttle_attempts: 20,
            max_retry_after: Duration::from_secs(30),
            licence_attempts: 3,
            window_restarts: 3,
            unauthorized_grace: Duration::from_secs(1),
        }
    }

    /// Backoff delays for at most `retries` retries: exponential with jitter.
    pub(crate) fn backoff(&self, retries: u32) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(retries as usize)
            .build()
    }
}

/// Parses a `Retry-After` value: a decimal number of seconds (`10`, `2.128`) or an HTTP date
/// (a date in the past means now). A number too large for a `Duration`
/// (`99999999999999999999`) saturates at `Duration::MAX`: Graph asked to wait, and far longer
/// than anyone will. `None` for anything else (negative numbers, exponents, text).
///
/// The result can be that large: callers add it to an instant only with `checked_add` (the
/// limiter caps the pause at [`super::throttle::MAX_PAUSE`]).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let is_decimal = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if is_decimal {
        let seconds: f64 = value.parse().ok()?;
        // Digits and one dot: never negative or NaN; too large (or infinite) saturates.
        return Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_integer_fractional_and_date_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        assert_eq!(parse_retry_after("10", now), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(".5", now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        let now = SystemTime::now();
        for bad in [
            "", " ", "-1", "1e3", "1.2.3", ".", "soon", "NaN", "inf", "+5",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn absurd_values_saturate_without_overflow() {
        let now = SystemTime::now();
        for huge in [
            "99999999999999999999",
            "18446744073709551616",
            &"9".repeat(400),
        ] {
            assert_eq!(parse_retry_after(huge, now), Some(Duration::MAX), "{huge}");
        }
        // Large but representable: the exact value.
        assert_eq!(
            parse_retry_after("4000000000", now),
            Some(Duration::from_secs(4_000_000_000))
        );
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).unwrap();
        assert!(far > Duration::from_secs(7900 * 365 * 86400), "{far:?}");
        assert!(
            tokio::time::Instant::now()
                .checked_add(Duration::MAX)
                .is_none()
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops() {
        let policy = RetryPolicy::fast(4);
        let delays: Vec<_> = policy.backoff(3).collect();
        assert_eq!(delays.len(), 3);
        for (n, delay) in delays.iter().enumerate() {
            let base = policy.min_delay * 2u32.pow(n as u32);
            assert!(*delay >= base && *delay <= base * 2, "{n}: {delay:?}");
        }
    }

    proptest! {
        #[test]
        fn retry_after_never_panics(value in ".{0,40}", secs in 0u64..4_000_000_000) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let _ = parse_retry_after(&value, now);
        }

        #[test]
        fn retry_after_decimal_round_trips(millis in 0u64..10_000_000) {
            let text = format!("{}.{:03}", millis / 1000, millis % 1000);
            let parsed = parse_retry_after(&text, SystemTime::now()).unwrap();
            prop_assert!((parsed.as_secs_f64() - millis as f64 / 1000.0).abs() < 1e-6);
        }
    }
}
