//! The process-wide Graph request limiter.
//!
//! Microsoft throttles the reporting APIs per app and tenant (5 requests per 10 s by default),
//! across both jobs together. One [`Limiter`] (in an `Arc`) is shared by every request of the
//! process, retries included, and keeps the request **start times** of any sliding window of
//! `period` at or below the budget, so a lone run never provokes a 429.
//!
//! Policy after Graph throttles anyway (429 or 503, see [`Limiter::penalise`]):
//! - **pause**: when the response carried `Retry-After`, no request of either job starts before
//!   it has elapsed (Graph's limit is shared, so the other job would be throttled too); one
//!   `Retry-After` pauses the limiter for at most [`MAX_PAUSE`] (an absurd or hostile value,
//!   `99999999999999999999` or a date in the year 9999, cannot stop the process for ever);
//! - **multiplicative decrease**: the budget is halved (never below 1 per period), once per
//!   period: the requests already in flight when Graph first answers 429 are answered 429 too,
//!   and they are one event, not one halving each;
//! - **additive increase**: each full period without another penalty gives back a fifth of the
//!   configured budget (at least one request), until the budget is reached again.
//!
//! Waiters are served first come, first served (a fair async mutex is held while waiting).
//! A waiter with a deadline ([`Limiter::acquire_before`]) does not wait for a pause that ends
//! after it: it is told at once (and woken when a new pause starts while it waits), so that a
//! fetch whose run budget cannot outlast Graph's `Retry-After` ends instead of sleeping.
//! Each window is widened by [`SAFETY_MARGIN`] so that small delays between our clock and
//! Graph's arrival times cannot put one request too many in Graph's window.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The period of Graph's reporting budget.
pub const GRAPH_PERIOD: Duration = Duration::from_secs(10);

/// Added to every window: requests start, but Graph counts arrivals.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(250);

/// The longest pause one `Retry-After` can impose on the limiter.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// Keeps Graph requests within `max` per `period`; shared by every job of the process.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    period: Duration,
    margin: Duration,
    /// The longest pause one `Retry-After` imposes ([`MAX_PAUSE`] unless set for tests).
    max_pause: Duration,
    /// Held while waiting for a slot, so waiters are served in order.
    queue: tokio::sync::Mutex<()>,
    /// Woken when a pause starts or is extended, so that waiters with a deadline re-check.
    pause_changed: tokio::sync::Notify,
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
    /// No request starts before this (the `Retry-After` in force, capped at `max_pause`).
    paused_until: Option<Instant>,
    /// The `Retry-After` that ends last as Graph asked for it (not capped), for [`Paused`].
    asked: Option<Asked>,
}

/// One `Retry-After` as Graph sent it.
#[derive(Debug, Clone, Copy)]
struct Asked {
    status: u16,
    at: Instant,
    wait: Duration,
}

impl Asked {
    /// When it ends; `None` when that is beyond what an `Instant` can hold.
    fn end(&self) -> Option<Instant> {
        self.at.checked_add(self.wait)
    }

    /// Whether it ends after `other` (an end beyond an `Instant`'s range is the latest).
    fn ends_after(&self, other: &Asked) -> bool {
        match (self.end(), other.end()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a > b,
        }
    }
}

/// [`Limiter::acquire_before`] refused: the limiter is paused past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    /// The status that paused it (429 or 503).
    pub status: u16,
    /// What is left of the `Retry-After` Graph asked for, as Graph asked it (not capped at
    /// [`MAX_PAUSE`]).
    pub retry_after: Duration,
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
            max_pause: MAX_PAUSE,
            queue: tokio::sync::Mutex::new(()),
            pause_changed: tokio::sync::Notify::new(),
            state: std::sync::Mutex::new(State {
                starts: VecDeque::with_capacity(max as usize + 1),
                limit: max,
                last_change: Instant::now(),
                last_penalty: None,
                paused_until: None,
                asked: None,
            }),
        }
    }

    /// The same limiter with another cap on the pause one `Retry-After` imposes (tests).
    pub fn with_max_pause(mut self, max_pause: Duration) -> Limiter {
        self.max_pause = max_pause;
        self
    }

    /// Waits until one more request may start, and records its start.
    pub async fn acquire(&self) {
        // Without a deadline no pause is refused.
        let _ = self.acquire_before(None).await;
    }

    /// Like [`Limiter::acquire`], but refuses at once, without waiting, when the limiter is
    /// paused (Graph's `Retry-After`) until after `deadline`, also when that pause starts while
    /// this call waits. Waiting for a free slot of the budget is never refused. `None` waits
    /// like [`Limiter::acquire`].
    pub async fn acquire_before(&self, deadline: Option<Instant>) -> Result<(), Paused> {
        let _turn = loop {
            let notified = self.pause_changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            self.lock().check_pause(Instant::now(), deadline)?;
            let turn = tokio::select! {
                turn = self.queue.lock() => Some(turn),
                () = &mut notified, if deadline.is_some() => None,
            };
            if let Some(turn) = turn {
                break turn;
            }
        };
        loop {
            let notified = self.pause_changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let until = {
                let mut state = self.lock();
                let now = Instant::now();
                state.check_pause(now, deadline)?;
                match state.slot(now, self) {
                    None => {
                        state.starts.push_back(now);
                        return Ok(());
                    }
                    Some(until) => until,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut notified, if deadline.is_some() => {}
            }
        }
    }

    /// Graph throttled a request (429, or 503): halve the budget and, with a `Retry-After`, hold
    /// every request until it has passed (at most [`MAX_PAUSE`] for one `Retry-After`).
    pub fn penalise(&self, retry_after: Option<Duration>) {
        self.penalise_status(429, retry_after);
    }

    /// [`Limiter::penalise`] for a response with `status` (429 or 503), which
    /// [`Limiter::acquire_before`] reports when the pause outlasts a deadline.
    pub fn penalise_status(&self, status: u16, retry_after: Option<Duration>) {
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
        let limit = state.limit;
        let mut extended = false;
        if let Some(delay) = retry_after {
            let pause = delay.min(self.max_pause);
            let until = now
                .checked_add(pause)
                .or_else(|| now.checked_add(MAX_PAUSE))
                .unwrap_or(now);
            let over = state.paused_until.is_none_or(|p| p <= now);
            let asked = Asked {
                status,
                at: now,
                wait: delay,
            };
            if over || state.asked.is_none_or(|a| asked.ends_after(&a)) {
                state.asked = Some(asked);
            }
            if state.paused_until.is_none_or(|p| until > p) {
                state.paused_until = Some(until);
                extended = true;
            }
        }
        drop(state);
        if extended {
            self.pause_changed.notify_waiters();
        }
        tracing::debug!(
            throttle.limit_before = previous,
            throttle.limit = limit,
            throttle.max = self.max,
            http.status = status,
            retry.after_ms = retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
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
    /// `Err` when a pause in force ends after `deadline`.
    fn check_pause(&self, now: Instant, deadline: Option<Instant>) -> Result<(), Paused> {
        let (Some(deadline), Some(until)) = (deadline, self.paused_until) else {
            return Ok(());
        };
        if until <= now || until <= deadline {
            return Ok(());
        }
        let (status, retry_after) = match self.asked {
            Some(asked) => (
                asked.status,
                asked
                    .wait
                    .saturating_sub(now.saturating_duration_since(asked.at)),
            ),
            None => (429, until.saturating_duration_since(now)),
        };
        Err(Paused {
            status,
            retry_after: retry_after.max(until.saturating_duration_since(now)),
        })
    }

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

    #[tokio::test(start_paused = true)]
    async fn one_retry_after_pauses_at_most_an_hour_whatever_it_asks() {
        let limiter = Limiter::new(5);
        limiter.penalise(Some(Duration::MAX));
        let t0 = Instant::now();
        limiter.acquire().await;
        assert_eq!(t0.elapsed(), MAX_PAUSE);
        let short = Limiter::new(5).with_max_pause(Duration::from_secs(2));
        short.penalise_status(503, Some(Duration::from_secs(u64::MAX)));
        let t0 = Instant::now();
        short.acquire().await;
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_past_the_deadline_is_refused_at_once_with_what_graph_asked() {
        let limiter = Limiter::new(5);
        limiter.penalise_status(503, Some(Duration::from_secs(7200)));
        let t0 = Instant::now();
        let refused = limiter
            .acquire_before(Some(t0 + Duration::from_secs(60)))
            .await
            .unwrap_err();
        assert_eq!(t0.elapsed(), Duration::ZERO, "no waiting");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.retry_after, Duration::from_secs(7200), "not capped");
        // A pause that ends before the deadline is waited for.
        let deadline = t0 + MAX_PAUSE + Duration::from_secs(1);
        limiter.acquire_before(Some(deadline)).await.unwrap();
        assert_eq!(t0.elapsed(), MAX_PAUSE);
        // A later, shorter Retry-After replaces the expired one.
        limiter.penalise(Some(Duration::from_secs(30)));
        let refused = limiter
            .acquire_before(Some(Instant::now() + Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_told_when_a_pause_starts_while_they_wait() {
        // One slot per period: the second waiter sleeps for the slot, the third waits its turn.
        let limiter = Arc::new(Limiter::with_period(1, Duration::from_secs(10)));
        limiter.acquire().await;
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(60);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let result = limiter.acquire_before(Some(deadline)).await;
                    (result, t0.elapsed())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.penalise(Some(Duration::from_secs(600)));
        for waiter in waiters {
            let (result, elapsed) = waiter.await.unwrap();
            let refused = result.unwrap_err();
            assert_eq!(
                elapsed,
                Duration::from_secs(1),
                "refused as the pause started"
            );
            assert_eq!(refused.retry_after, Duration::from_secs(600));
        }
        // Without a deadline the pause is waited out.
        let t1 = Instant::now();
        limiter.acquire().await;
        assert_eq!(t1.elapsed(), Duration::from_secs(600));
    }
}
