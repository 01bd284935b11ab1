//! Retry policy: how long to wait and how often to try again, per failure class.
//!
//! | Failure | Reaction |
//! |---|---|
//! | 429, 503 | wait exactly `Retry-After` (integer, fractional or HTTP date; keyed on the status, not the error code), or our own backoff without it; up to `throttle_attempts`; the shared limiter slows down |
//! | 500, 502, 504 (any other 5xx), timeouts, dropped connections, truncated or unparseable bodies | exponential backoff with jitter (backon), up to `max_attempts` per page; then the window is split |
//! | 401 | one token refresh, then the same URL again; a second 401 is permanent |
//! | 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant` | intermittent on licensed tenants: `licence_attempts` tries in all |
//! | 400 naming the skip token, on a nextLink | the window restarts from its first page, up to `window_restarts` times |
//! | other 400, other 403, 404, other 4xx | permanent, explained |

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
}

impl RetryPolicy {
    /// Production delays: 1 s doubling to 60 s, 20 throttled responses per page, Retry-After up
    /// to 5 min, 3 licence tries, 3 window restarts.
    pub fn from_config(config: &GraphConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            throttle_attempts: 20,
            max_retry_after: Duration::from_secs(300),
            licence_attempts: 3,
            window_restarts: 3,
        }
    }

    /// The same classes with millisecond delays, for tests.
    pub fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            throttle_attempts: 20,
            max_retry_after: Duration::from_secs(30),
            licence_attempts: 3,
            window_restarts: 3,
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
/// (a date in the past means now). `None` for anything else, negative or absurd values included.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let is_decimal = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    if is_decimal {
        let seconds: f64 = value.parse().ok()?;
        return Duration::try_from_secs_f64(seconds).ok();
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
        assert_eq!(parse_retry_after(&"9".repeat(400), now), None);
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
