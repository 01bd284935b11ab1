//! Graph's clock, read from the `Date` header of its replies.
//!
//! A run never asks for, nor moves its checkpoint past, records newer than "now" minus
//! `QUERY_LAG`. When the host's clock runs ahead of Graph's, the local "now" would be in Graph's
//! future: records Graph has not yet published for that stretch would fall behind the checkpoint
//! and be lost past the replay window. So "now" is bounded by Graph's clock whenever a reply has
//! told it. The header has whole seconds, so Graph's time read here is up to a second early,
//! which errs on the safe side.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::{DATE, HeaderMap};
use time::OffsetDateTime;
use tokio::time::Instant;

/// The latest `Date` Graph sent, and when it arrived by the local monotonic clock.
#[derive(Debug, Default)]
pub struct ServerClock {
    seen: Mutex<Option<(Instant, OffsetDateTime)>>,
}

impl ServerClock {
    /// Notes the `Date` header of a reply, if it has a valid one.
    pub fn observe(&self, headers: &HeaderMap) {
        let Some(date) = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        self.record(Instant::now(), OffsetDateTime::from(date));
    }

    fn record(&self, at: Instant, graph_time: OffsetDateTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        *seen = Some((at, graph_time));
    }

    /// Graph's time at the local instant `at`, if a reply has told it.
    pub fn at(&self, at: Instant) -> Option<OffsetDateTime> {
        let seen = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (observed, graph_time) = seen?;
        let shift = if at >= observed {
            time::Duration::try_from(at - observed).ok()?
        } else {
            -time::Duration::try_from(observed - at).ok()?
        };
        graph_time.checked_add(shift)
    }

    /// Graph's time now, if known.
    pub fn now(&self) -> Option<OffsetDateTime> {
        self.at(Instant::now())
    }

    /// How far the local clock runs ahead of Graph's (negative: behind), if known.
    pub fn local_ahead(&self) -> Option<Duration> {
        let graph = self.now()?;
        let local = OffsetDateTime::from(SystemTime::now());
        (local > graph).then(|| Duration::try_from(local - graph).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use time::macros::datetime;

    #[test]
    fn graphs_time_follows_the_monotonic_clock_from_the_last_date() {
        let clock = ServerClock::default();
        assert_eq!(clock.now(), None);
        let t0 = Instant::now();
        clock.record(t0, datetime!(2026-12-02 10:00 UTC));
        assert_eq!(clock.at(t0), Some(datetime!(2026-12-02 10:00 UTC)));
        assert_eq!(
            clock.at(t0 + Duration::from_secs(90)),
            Some(datetime!(2026-12-02 10:01:30 UTC))
        );
    }

    #[test]
    fn only_valid_date_headers_are_read() {
        let clock = ServerClock::default();
        let mut headers = HeaderMap::new();
        headers.insert(DATE, HeaderValue::from_static("yesterday"));
        clock.observe(&headers);
        assert_eq!(clock.now(), None);
        headers.insert(
            DATE,
            HeaderValue::from_static("Wed, 02 Dec 2026 10:00:00 GMT"),
        );
        clock.observe(&headers);
        let now = clock.now().unwrap();
        assert!(now >= datetime!(2026-12-02 10:00 UTC));
        assert!(now < datetime!(2026-12-02 10:00:05 UTC));
        // This test's local clock is far from that date: a day or more ahead of "Graph".
        assert!(clock.local_ahead().is_some());
    }
}
