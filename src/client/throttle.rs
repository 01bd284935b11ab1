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
//! - **multiplicative decrease**: the limit in use (within the process's share, below) is
//!   halved (never below 1 per period), once per period: the requests already in flight when
//!   Graph first answers 429 are answered 429 too, and they are one event, not one halving each;
//! - **additive increase**: each full period without another penalty gives back a fifth of the
//!   configured budget (at least one request), until the budget is reached again.
//!
//! Waiters are served first come, first served (a fair async mutex is held while waiting).
//! A waiter with a deadline ([`Limiter::acquire_before`]) does not wait for a pause that ends
//! after it: it is told at once (and woken when a new pause starts while it waits), so that a
//! fetch whose run budget cannot outlast Graph's `Retry-After` ends instead of sleeping.
//! Each window is widened by [`SAFETY_MARGIN`] so that small delays between our clock and
//! Graph's arrival times cannot put one request too many in Graph's window.
//!
//! **Several processes, one budget.** On Flex Consumption each timer function runs in its own
//! process, and Graph counts the requests of all of them against one budget. The limiter knows
//! nothing about other processes; its *share* ([`Limiter::set_share`]) is the part of the budget
//! this process may use, and `crate::pipeline::share` sets it from heartbeats in storage: with
//! `s` processes, the one at position `i` gets [`share_of`]`(max, i, s)` requests per window
//! (5 split as 3 + 2), so the sum over the processes never exceeds the budget and no 10 s window
//! of Graph's holds more than `max` requests, whatever the clocks of the hosts say. A lower share
//! applies at once, to the current window (like a halving); a higher one only from a given
//! instant, when the starts that the other processes made under their former, higher shares
//! have left the window ([`Limiter::settle`] is what a process tells the others). A share of 0
//! holds every request until it is raised. The halving and the `Retry-After` pause apply on top
//! of the share, whose default is the whole budget: a lone process behaves as if there were no
//! share at all.

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
    /// Woken when a pause starts or is extended (waiters with a deadline re-check) and when the
    /// share changes (the waiter for a slot re-computes it).
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
    /// This process's part of the budget, at most `max` ([`Limiter::set_share`]).
    share: u32,
    /// A higher share and the instant it applies from.
    raise: Option<(u32, Instant)>,
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
    /// This process's share of the budget ([`Limiter::set_share`]); `max` unless shared.
    pub share: u32,
}

/// The share of `max` requests per window of the process at position `index` (0-based) among
/// `count` processes: `max / count`, the remainder going one each to the first positions, so
/// that the shares add up to `max` exactly (5 among 2: 3 and 2). Every share is at least 1:
/// with more processes than requests per window, the sum exceeds the budget and the halving
/// after Graph's 429 does the rest.
pub fn share_of(max: u32, index: usize, count: usize) -> u32 {
    let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let index = u32::try_from(index).unwrap_or(u32::MAX).min(count - 1);
    let extra = u32::from(index < max % count);
    (max / count + extra).max(1)
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
                share: max,
                raise: None,
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
            // Also woken when a pause starts (a waiter with a deadline may have to give up) or
            // the share changes (the slot moves).
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut notified => {}
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
            state.limit = (state.effective_limit().max(1) / 2).max(1);
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
            share: state.share,
        }
    }

    /// The configured budget (requests per period).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// From now on this process may start at most `share` requests (capped at the budget) in
    /// any window, the other processes sharing the budget using the rest. A lower share than
    /// the one in force applies at once, to the current window: no request starts until the
    /// starts in the window are below it. A higher one applies from `not_before` (at once if
    /// that has passed): the instant the other processes' starts under their former, higher
    /// shares have left the window (what their [`Limiter::settle`] said). A share of 0 holds
    /// every request until a later call raises it. Replaces any raise still pending.
    pub fn set_share(&self, share: u32, not_before: Instant) {
        let share = share.min(self.max);
        let mut state = self.lock();
        let now = Instant::now();
        state.recover(now, self);
        let before = (state.share, state.raise);
        if share <= state.share || not_before <= now {
            state.share = share;
            state.raise = None;
        } else {
            state.raise = Some((share, not_before));
        }
        let changed = before != (state.share, state.raise);
        // A pending raise moved in time only is not worth a line.
        let new_target =
            (before.0, before.1.map(|r| r.0)) != (state.share, state.raise.map(|r| r.0));
        drop(state);
        if new_target {
            tracing::debug!(
                throttle.share = share,
                throttle.max = self.max,
                throttle.share_from_ms =
                    u64::try_from(not_before.saturating_duration_since(now).as_millis())
                        .unwrap_or(u64::MAX),
                "graph budget share set"
            );
        }
        if changed {
            self.pause_changed.notify_waiters();
        }
    }

    /// How long until the starts of this process in the current window are at most `share`:
    /// after that, no window of Graph's that holds a later request of another process holds
    /// more than `share` of ours. What a process whose share drops to `share` (0 when it stops
    /// sending requests) tells the others, who raise theirs only after it; zero when the starts
    /// in the window already fit.
    pub fn settle(&self, share: u32) -> Duration {
        let mut state = self.lock();
        let now = Instant::now();
        state.prune(now, self);
        let share = share as usize;
        let n = state.starts.len();
        if n <= share {
            return Duration::ZERO;
        }
        // The oldest `n - share` starts must leave the window.
        (state.starts[n - share - 1] + self.window()).saturating_duration_since(now)
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
        let limit = self.effective_limit() as usize;
        if self.starts.len() < limit {
            return None;
        }
        // Enough of the oldest starts must leave the window to get below the limit; with a
        // share of 0, only a raise (pending, or a later `set_share`, which wakes the waiter)
        // lets a request start.
        let until = match limit {
            0 => now + limiter.window().max(MAX_PAUSE),
            _ => self.starts[self.starts.len() - limit] + limiter.window(),
        };
        Some(match self.raise {
            Some((_, from)) => until.min(from),
            None => until,
        })
    }

    /// The AIMD limit within this process's share.
    fn effective_limit(&self) -> u32 {
        self.limit.min(self.share)
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
        if let Some((share, from)) = self.raise
            && from <= now
        {
            self.share = share;
            self.raise = None;
        }
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

    /// `tasks` tasks taking `n` starts each from `limiter`, as instants relative to `t0`.
    fn spawn_takers(
        limiter: &Arc<Limiter>,
        tasks: usize,
        n: usize,
        t0: Instant,
    ) -> Vec<tokio::task::JoinHandle<Vec<Duration>>> {
        (0..tasks)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    for _ in 0..n {
                        limiter.acquire().await;
                        times.push(t0.elapsed());
                    }
                    times
                })
            })
            .collect()
    }

    async fn joined(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort();
        all
    }

    #[test]
    fn shares_add_up_to_the_budget() {
        assert_eq!(share_of(5, 0, 1), 5);
        assert_eq!((share_of(5, 0, 2), share_of(5, 1, 2)), (3, 2));
        assert_eq!(
            (share_of(5, 0, 3), share_of(5, 1, 3), share_of(5, 2, 3)),
            (2, 2, 1)
        );
        for max in 1..40 {
            for count in 1..=max as usize {
                let sum: u32 = (0..count).map(|i| share_of(max, i, count)).sum();
                assert_eq!(sum, max, "{max} among {count}");
            }
        }
        // More processes than requests: everyone keeps one (the halving does the rest).
        assert_eq!(share_of(1, 1, 2), 1);
        assert_eq!(share_of(5, 9, 2), 2, "an index past the end is the last");
        assert_eq!(share_of(5, 0, 0), 5, "no count is one process");
    }

    #[tokio::test(start_paused = true)]
    async fn two_processes_with_their_shares_never_exceed_the_budget_together() {
        // Two processes (two limiters), each with more waiters than its share can serve.
        let a = Arc::new(Limiter::new(5));
        let b = Arc::new(Limiter::new(5));
        let t0 = Instant::now();
        a.set_share(share_of(5, 0, 2), t0);
        b.set_share(share_of(5, 1, 2), t0);
        assert_eq!((a.status().share, b.status().share), (3, 2));
        let mut tasks = spawn_takers(&a, 4, 6, t0);
        tasks.extend(spawn_takers(&b, 4, 4, t0));
        let all = joined(tasks).await;
        assert_eq!(all.len(), 40);
        assert_eq!(max_in_any_window(&all, GRAPH_PERIOD + SAFETY_MARGIN), 5);
        // The whole budget is used: five starts per 10.25 s.
        assert_eq!(all[39], Duration::from_millis(7 * 10_250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_share_applies_at_once_a_higher_one_after_the_others_settle() {
        // A runs alone with the whole budget and bursts; B joins: A drops to 3 at once and
        // tells B when its burst has left the window; B, which waited with a share of 0, may
        // use 2 from then on. Later B stops and A takes the whole budget back after B's last
        // starts have left the window.
        let a = Arc::new(Limiter::new(5));
        let b = Arc::new(Limiter::new(5));
        let t0 = Instant::now();
        b.set_share(0, t0);
        let mut tasks = spawn_takers(&a, 3, 8, t0);
        tasks.extend(spawn_takers(&b, 2, 5, t0));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(a.status().in_window, 5, "A burst alone");
        assert_eq!(b.status().in_window, 0, "B waits for its share");
        a.set_share(3, Instant::now());
        let settle = a.settle(3);
        assert_eq!(
            settle,
            Duration::from_millis(6_250),
            "A's burst leaves at 10.25 s"
        );
        b.set_share(2, Instant::now() + settle);
        let all = joined(tasks).await;
        assert_eq!(all.len(), 34);
        assert_eq!(max_in_any_window(&all, GRAPH_PERIOD + SAFETY_MARGIN), 5);
        assert_eq!(max_in_any_window(&all, GRAPH_PERIOD), 5);
        // B makes one more request and stops: that start must leave the window before A may
        // use the whole budget.
        b.acquire().await;
        let stop = Instant::now();
        let b_settle = b.settle(0);
        assert_eq!(b_settle, GRAPH_PERIOD + SAFETY_MARGIN);
        a.set_share(5, stop + b_settle);
        assert_eq!(a.status().share, 3, "not before B settled");
        tokio::time::sleep(b_settle).await;
        assert_eq!(a.status().share, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_share_of_zero_holds_requests_until_raised() {
        let limiter = Arc::new(Limiter::new(5));
        let t0 = Instant::now();
        limiter.set_share(0, t0);
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .acquire_before(Some(t0 + Duration::from_secs(60)))
                    .await
                    .unwrap();
                t0.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiter.is_finished(),
            "a share of 0 is not a pause: no refusal"
        );
        // A raise pending for 3 s more, then replaced by a later call that applies at once.
        limiter.set_share(2, Instant::now() + Duration::from_secs(3));
        assert_eq!(waiter.await.unwrap(), Duration::from_secs(8));
        limiter.set_share(0, Instant::now());
        let later = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let t1 = Instant::now();
                limiter.acquire().await;
                t1.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The start at 8 s is still in the window: a share of 2 lets one more start now.
        limiter.set_share(2, Instant::now());
        assert_eq!(later.await.unwrap(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_whole_budget_as_share_changes_nothing() {
        // A lone process: share = budget, set again and again, bursts as before.
        let limiter = Limiter::new(5);
        limiter.set_share(5, Instant::now());
        limiter.set_share(9, Instant::now() + Duration::from_secs(100));
        assert_eq!(
            limiter.status().share,
            5,
            "capped at the budget, no raise pending"
        );
        let times = starts(&limiter, 11).await;
        assert_eq!(times[4], Duration::ZERO);
        assert_eq!(times[5], Duration::from_millis(10_250));
        assert_eq!(times[10], Duration::from_millis(20_500));
        assert_eq!(limiter.settle(5), Duration::ZERO);
        assert_eq!(limiter.settle(0), Duration::from_millis(10_250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_halving_applies_within_the_share() {
        let limiter = Limiter::new(10);
        limiter.set_share(4, Instant::now());
        limiter.penalise(None);
        let status = limiter.status();
        assert_eq!(
            (status.limit, status.share),
            (2, 4),
            "half of what was in use"
        );
        tokio::time::sleep(GRAPH_PERIOD * 10).await;
        assert_eq!(limiter.status().limit, 10);
        let times = starts(&limiter, 5).await;
        assert_eq!(times[3], Duration::ZERO);
        assert_eq!(
            times[4],
            Duration::from_millis(10_250),
            "the share still caps it"
        );
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
