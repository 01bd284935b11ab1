//! Generated Activity Log events of one subscription: compact, sorted by (`eventTimestamp`,
//! `eventDataId`), selected newest first with visibility evaluated at the request.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::ArmConfig;
use super::render::{Kind, Phase, event_id, kind_of};
use crate::store::{draw, duration_ns, truncate};

/// One event. Everything not stored here is derived from `op` and `phase` when rendered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// `eventTimestamp`, nanoseconds since the epoch, already truncated to `precision` digits.
    pub time: i64,
    /// `submissionTimestamp`: the first instant at which the API returns the event.
    pub visible_at: i64,
    /// Seed of the operation; shared by every phase (same `correlationId`).
    pub op: u64,
    /// `eventDataId` as two halves; the GUID's text order is the order of `(id_hi, id_lo)`.
    pub id_hi: u64,
    pub id_lo: u64,
    pub phase: Phase,
    /// Fraction digits of the rendered `eventTimestamp`: 2, 3, 6 or 7.
    pub precision: u8,
}

impl Event {
    /// The position of the event in the ascending order.
    pub(crate) fn key(&self) -> (i64, u64, u64) {
        (self.time, self.id_hi, self.id_lo)
    }
}

/// The events of one subscription, ascending by [`Event::key`].
pub(crate) struct Events {
    pub events: Vec<Event>,
}

const SALT_EVENTS: u64 = 0xA3A0_0000_0000_0001;

impl Events {
    /// Generates subscription `index`'s events for `[start - history, start + live_for)`.
    pub(crate) fn generate(config: &ArmConfig, seed: u64, index: u32, start_ns: i64) -> Events {
        let span = config.history + config.live_for;
        let target = (f64::from(config.events_per_hour) * span.as_secs_f64() / 3600.0).round();
        let target = target as usize;
        let base = start_ns.saturating_sub(duration_ns(config.history));
        let span_ns = duration_ns(span).max(1);
        let salt = SALT_EVENTS ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ salt);
        let key = super::render::mix64(seed ^ salt);
        let straggler_fraction = config.straggler_fraction.clamp(0.0, 1.0);
        let mut events = Vec::with_capacity(target + 4);
        let mut previous: Option<(i64, u8)> = None;
        let mut op_index = 0u64;
        while events.len() < target {
            let op = super::render::mix64(key.wrapping_add(op_index));
            op_index += 1;
            let (start, precision) = match previous {
                // About 3 % of operations start at exactly the previous one's instant.
                Some(tie) if rng.random_bool(0.03) => tie,
                _ => {
                    let precision = match rng.random_range(0..100u32) {
                        0..5 => 3,
                        5..8 => 6,
                        8..10 => 2,
                        _ => 7,
                    };
                    let raw = base.saturating_add(rng.random_range(0..span_ns));
                    (truncate(raw, precision), precision)
                }
            };
            previous = Some((start, precision));
            for (phase, offset) in phases(op) {
                let time = truncate(start.saturating_add(offset), precision);
                let mut delay = draw(&config.publication_delay, &mut rng);
                if straggler_fraction > 0.0 && rng.random_bool(straggler_fraction) {
                    delay = delay.saturating_add(draw(&config.straggler_delay, &mut rng));
                }
                let (id_hi, id_lo) = event_id(op, phase);
                events.push(Event {
                    time,
                    visible_at: time.saturating_add(delay),
                    op,
                    id_hi,
                    id_lo,
                    phase,
                    precision,
                });
            }
        }
        events.sort_unstable_by_key(Event::key);
        Events { events }
    }

    /// Up to `limit` events with `lo <= time <= hi`, visible at `now`, newest first, strictly
    /// after `after` in that order; and whether more follow.
    pub(crate) fn select_descending(
        &self,
        lo: i64,
        hi: i64,
        after: Option<(i64, u64, u64)>,
        now: i64,
        limit: usize,
    ) -> (Vec<&Event>, bool) {
        let mut out = Vec::new();
        if lo > hi {
            return (out, false);
        }
        let mut end = self.events.partition_point(|event| event.time <= hi);
        if let Some(cursor) = after {
            end = end.min(self.events.partition_point(|event| event.key() < cursor));
        }
        for event in self.events[..end].iter().rev() {
            if event.time < lo {
                break;
            }
            if event.visible_at <= now {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(event);
            }
        }
        (out, false)
    }

    /// Every event with `start <= time < end` visible at `now` (all when `None`), ascending.
    pub(crate) fn range(&self, start: i64, end: i64, now: Option<i64>) -> Vec<&Event> {
        let first = self.events.partition_point(|event| event.time < start);
        let last = self.events.partition_point(|event| event.time < end);
        if first >= last {
            return Vec::new();
        }
        self.events[first..last]
            .iter()
            .filter(|event| now.is_none_or(|now| event.visible_at <= now))
            .collect()
    }
}

/// The phases of an operation and their offsets from its start, in nanoseconds.
fn phases(op: u64) -> Vec<(Phase, i64)> {
    const MS: i64 = 1_000_000;
    let mut mixer = super::render::Mixer::new(op ^ 0x0FF5_E700_0000_0001);
    match kind_of(op) {
        Kind::Admin { policy, .. } => {
            // Most operations end within seconds; a long tail takes minutes.
            let duration = if mixer.percent(85) {
                300 * MS + mixer.below(20_000) as i64 * MS
            } else {
                30_000 * MS + mixer.below(300_000) as i64 * MS
            };
            let mut out = vec![(Phase::Started, 0)];
            if policy.is_some() {
                out.push((Phase::Policy, 5 * MS + mixer.below(1_500) as i64 * MS));
            }
            out.push((Phase::Ended, duration));
            out
        }
        Kind::ServiceHealth { resolved } | Kind::ResourceHealth { resolved } => {
            let mut out = vec![(Phase::Active, 0)];
            if resolved {
                let minutes = 1 + mixer.below(180) as i64;
                out.push((Phase::Resolved, minutes * 60_000 * MS));
            }
            out
        }
        Kind::Autoscale => vec![
            (Phase::Started, 0),
            (Phase::Ended, 20_000 * MS + mixer.below(100_000) as i64 * MS),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::NS_PER_SEC;
    use std::time::Duration;

    fn config() -> ArmConfig {
        ArmConfig {
            events_per_hour: 600,
            history: Duration::from_secs(6 * 3600),
            live_for: Duration::ZERO,
            ..ArmConfig::default()
        }
    }

    #[test]
    fn generation_is_deterministic_sorted_and_unique() {
        let start = 1_700_000_000 * NS_PER_SEC;
        let a = Events::generate(&config(), 7, 1, start);
        let b = Events::generate(&config(), 7, 1, start);
        let other = Events::generate(&config(), 7, 2, start);
        assert!(a.events.len() >= 3600 && a.events.len() < 3604);
        assert!(
            a.events
                .iter()
                .zip(&b.events)
                .all(|(x, y)| x.key() == y.key())
        );
        assert!(
            a.events
                .windows(2)
                .all(|pair| pair[0].key() < pair[1].key())
        );
        assert_ne!(a.events[0].key(), other.events[0].key());
        let ties = a
            .events
            .windows(2)
            .filter(|p| p[0].time == p[1].time)
            .count();
        assert!(ties > 10, "{ties} ties");
        let started = a
            .events
            .iter()
            .filter(|e| e.phase == Phase::Started)
            .count();
        let ended = a.events.iter().filter(|e| e.phase == Phase::Ended).count();
        assert!(
            started > 1000 && started.abs_diff(ended) <= 1,
            "{started} {ended}"
        );
    }

    #[test]
    fn descending_pages_cover_everything_once() {
        let start = 1_700_000_000 * NS_PER_SEC;
        let events = Events::generate(&config(), 3, 1, start);
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let (page, more) = events.select_descending(i64::MIN, i64::MAX, cursor, i64::MAX, 97);
            seen.extend(page.iter().map(|event| event.key()));
            cursor = page.last().map(|event| event.key());
            if !more {
                break;
            }
        }
        let mut expected: Vec<_> = events.events.iter().map(Event::key).collect();
        expected.reverse();
        assert_eq!(seen, expected);
    }
}
