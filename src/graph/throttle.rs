//! The process-wide Graph request limiter.
//!
//! Microsoft throttles the reporting APIs per app and tenant (5 requests per 10 s by default),
//! across both jobs together. One [`Limiter`] (in an `Arc`) is shared by every request of the
//! process, retries included, and keeps the request **start times** of any sliding window of
//! `period` at or below the budget, so a lone run never provokes a 429.
//!
//! Policy after Graph throttles anyway (429 or 503, see [`Limiter::penalise`]):
//! - **pause**: when the response carried `Retry-After`, no request of either job starts before
//!   it has elapsed (Graph's limit is shared, so the other job would be throttled too);
//! - **multiplicative decrease**: the budget is halved (never below 1 per period), once per
//!   period: the requests already in flight when Graph first answers 429 are answered 429 too,
//!   and they are one event, not one halving each;
//! - **additive increase**: each full period without another penalty gives back a fifth of the
//!   configured budget (at least one request), until the budget is reached again.
//!
//! Waiters are served first come, first served (a fair async mutex is held while waiting).
//! Each window is widened by [`SAFETY_MARGIN`] so that small delays between our clock and
//! Graph's arrival times cannot put one request too many in Graph's window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The period of Graph's reporting budget.
pub const GRAPH_PERIOD: Duration = Duration::from_secs(10);

/// Added to every window: requests start, but Graph counts arrivals.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(250);

/// Keeps Graph requests within `max` per `period`; shared by every job of the process.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    period: Duration,
    margin: Duration,
    /// Held while waiting for a slot, so waiters are served in order.
    queue: tokio::sync::Mutex<()>,
    state: std::sync::Mutex<State>,
}

#[derive(Debug)]
struct State {
    starts: VecDeque<Instant>,
    limit: u32,
    /// When the limit last changed (penalty or recovery step).
    last_change: Instant,
    /// When the limit was last halved.
    last_penalty: Option<Instant>,
    paused_until: Option<Instant>,
}

/// A snapshot for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterStatus {
    /// Requests currently allowed per period.
    pub limit: u32,
    /// The configured budget.
    pub max: u32,
    /// Starts in the current window.
    pub in_window: usize,
}

impl Limiter {
    /// `max_per_10s` requests in any 10 s window (`GRAPH_MAX_REQUESTS_PER_10S`).
    pub fn new(max_per_10s: u32) -> Limiter {
        Limiter::with_period(max_per_10s, GRAPH_PERIOD)
    }

    /// `max` requests in any window of `period`, for tests with shorter windows. The safety
    /// margin scales with the period (2.5%).
    pub fn with_period(max: u32, period: Duration) -> Limiter {
        let max = max.max(1);
        Limiter {
            max,
            period,
            margin: period.mul_f64(SAFETY_MARGIN.as_secs_f64() / GRAPH_PERIOD.as_secs_f64()),
            queue: tokio::sync::Mutex::new(()),
            state: std::sync::Mutex::new(State {
                starts: VecDeque::with_capacity(max as usize + 1),
                limit: max,
                last_change: Instant::now(),
                last_penalty: None,
                paused_until: None,
            }),
        }
    }

    /// Waits until one more request may start, and records its start.
    pub async fn acquire(&self) {
        let _turn = self.queue.lock().await;
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.slot(now, self) {
                    None => {
                        state.starts.push_back(now);
                        return;
                    }
                    Some(until) => until - now,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Graph throttled a request (429, or 503): halve the budget and, with a `Retry-After`, hold
    /// every request until it has passed.
    pub fn penalise(&self, retry_after: Option<Duration>) {
        let mut state = self.lock();
        let now = Instant::now();
        state.recover(now, self);
        let previous = state.limit;
        if state
            .last_penalty
            .is_none_or(|last| now.duration_since(last) >= self.period)
        {
            state.limit = (state.limit / 2).max(1);
            state.last_penalty = Some(now);
        }
        state.last_change = now;
        if let Some(delay) = retry_after {
            let until = now + delay;
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
        tracing::debug!(
            throttle.limit_before = previous,
            throttle.limit = state.limit,
            throttle.max = self.max,
            retry.after_ms = retry_after.map(|d| d.as_millis() as u64),
            "graph throttled: slowing down"
        );
    }

    /// The current limit and window occupancy.
    pub fn status(&self) -> LimiterStatus {
        let mut state = self.lock();
        let now = Instant::now();
        state.recover(now, self);
        state.prune(now, self);
        LimiterStatus {
            limit: state.limit,
            max: self.max,
            in_window: state.starts.len(),
        }
    }

    fn window(&self) -> Duration {
        self.period + self.margin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every await point, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// `None` when a request may start now, else the instant to try again.
    fn slot(&mut self, now: Instant, limiter: &Limiter) -> Option<Instant> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Some(until);
            }
            self.paused_until = None;
        }
        self.recover(now, limiter);
        self.prune(now, limiter);
        let limit = self.limit as usize;
        if self.starts.len() < limit {
            return None;
        }
        // Enough of the oldest starts must leave the window to get below the limit.
        let index = self.starts.len() - limit;
        Some(self.starts[index] + limiter.window())
    }

    fn prune(&mut self, now: Instant, limiter: &Limiter) {
        while let Some(&oldest) = self.starts.front() {
            if now.duration_since(oldest) >= limiter.window() {
                self.starts.pop_front();
            } else {
                break;
            }
        }
    }

    fn recover(&mut self, now: Instant, limiter: &Limiter) {
        let step = limiter.max.div_ceil(5);
        while self.limit < limiter.max && now.duration_since(self.last_change) >= limiter.period {
            self.limit = (self.limit + step).min(limiter.max);
            self.last_change += limiter.period;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Start times (relative to the test start) of `n` acquisitions.
    async fn starts(limiter: &Limiter, n: usize) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for _ in 0..n {
            limiter.acquire().await;
            out.push(t0.elapsed());
        }
        out
    }

    fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
        times
            .iter()
            .map(|&t| times.iter().filter(|&&u| u >= t && u < t + window).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_in_any_window() {
        let limiter = Limiter::new(5);
        let times = starts(&limiter, 23).await;
        assert_eq!(max_in_any_window(&times, GRAPH_PERIOD), 5);
        // A burst of five, then five every 10.25 s.
        assert_eq!(times[4], Duration::ZERO);
        assert_eq!(times[5], Duration::from_millis(10_250));
        assert_eq!(times[22], Duration::from_millis(41_000));
    }

    #[tokio::test(start_paused = true)]
    async fn shared_between_tasks() {
        let limiter = Arc::new(Limiter::with_period(3, Duration::from_secs(1)));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    for _ in 0..5 {
                        limiter.acquire().await;
                        times.push(t0.elapsed());
                    }
                    times
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort();
        assert_eq!(all.len(), 20);
        assert_eq!(max_in_any_window(&all, Duration::from_secs(1)), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn penalty_pauses_halves_once_per_period_and_recovers_a_fifth_per_period() {
        let limiter = Limiter::new(10);
        limiter.acquire().await;
        limiter.penalise(Some(Duration::from_secs(3)));
        assert_eq!(limiter.status().limit, 5);
        // The other requests in flight are answered 429 too: the same event.
        limiter.penalise(Some(Duration::from_secs(3)));
        limiter.penalise(None);
        assert_eq!(limiter.status().limit, 5, "halved once per period");
        let t0 = Instant::now();
        limiter.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(3), "held for Retry-After");
        tokio::time::sleep(GRAPH_PERIOD).await;
        assert_eq!(
            limiter.status().limit,
            7,
            "a fifth of the budget back per quiet period"
        );
        limiter.penalise(None);
        assert_eq!(limiter.status().limit, 3, "a new period, a new halving");
        tokio::time::sleep(GRAPH_PERIOD * 10).await;
        assert_eq!(limiter.status().limit, 10, "never above the budget");
        let small = Limiter::new(2);
        small.penalise(None);
        tokio::time::sleep(GRAPH_PERIOD).await;
        small.penalise(None);
        assert_eq!(small.status().limit, 1, "never below one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_halved_limit_applies_to_the_current_window() {
        let limiter = Limiter::with_period(4, Duration::from_secs(1));
        let _ = starts(&limiter, 4).await;
        limiter.penalise(None);
        let t0 = Instant::now();
        limiter.acquire().await;
        // Three of the four starts must leave the window first (1 s + 2.5% margin).
        assert_eq!(t0.elapsed(), Duration::from_millis(1025));
    }
}
