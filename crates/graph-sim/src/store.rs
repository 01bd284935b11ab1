//! The records of one collection: generated ones (compact, sorted by time then id) and injected
//! ones (hand-made JSON), and the ordered, visibility-filtered selection that pages are cut from.

use std::cmp::Ordering;
use std::sync::RwLock;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Lateness, Resource, SimConfig};
use crate::render::{IdBuf, mix64, write_audit_id, write_hex_id, write_signin_id};

/// A generated record. Everything not stored here is derived from `bits` when rendered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    /// Event time, nanoseconds since the epoch, already truncated to `precision` digits.
    pub time: i64,
    /// First instant at which the API returns the record.
    pub visible_at: i64,
    /// First instant at which the API returns version 1; `i64::MAX` if never re-published.
    pub republish_at: i64,
    /// Seed of the id and the content; unique within a collection.
    pub bits: u64,
    /// Fraction digits of the rendered time: 0, 3, 6 or 7.
    pub precision: u8,
}

/// A hand-made record added through [`crate::Sim::inject`].
#[derive(Clone, Debug)]
pub(crate) struct Injected {
    /// The record's time field if it parses, else its `visible_at`.
    pub time: i64,
    /// The record's `id` if it is a string, else empty.
    pub id: String,
    /// Distinguishes injected records with equal time and id; generated records have 0.
    pub seq: u64,
    pub visible_at: i64,
    /// The record, serialised once.
    pub json: String,
}

/// A position in the (time, id, seq) order, carried in skiptokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    #[serde(rename = "t")]
    pub time: i64,
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "s")]
    pub seq: u64,
}

/// One collection.
pub(crate) struct Collection {
    pub resource: Resource,
    pub generated: Vec<Rec>,
    pub injected: RwLock<Vec<Injected>>,
}

/// A selected record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Item<'a> {
    Generated(&'a Rec),
    Injected(&'a Injected),
}

/// What to select.
pub(crate) struct Selection<'c> {
    /// Inclusive bounds on the event time.
    pub lo: i64,
    pub hi: i64,
    pub descending: bool,
    /// Select only records after this one (in the selection's order).
    pub after: Option<&'c Cursor>,
    /// Visibility is evaluated at this instant.
    pub snapshot: i64,
}

impl Collection {
    /// Generates `resource`'s records. `shared_ids` are the interactive sign-ins whose ids a
    /// fraction ([`SimConfig::shared_id_fraction`]) of another sign-in stream's records reuse.
    pub(crate) fn new(
        resource: Resource,
        config: &SimConfig,
        start_ns: i64,
        shared_ids: &[Rec],
    ) -> Collection {
        let mut generated = generate(resource, config, start_ns, shared_ids);
        generated.sort_unstable_by(|a, b| compare_generated(resource, a, b));
        Collection {
            resource,
            generated,
            injected: RwLock::new(Vec::new()),
        }
    }

    /// Writes a generated record's id.
    pub(crate) fn id_of(&self, rec: &Rec) -> IdBuf {
        generated_id(self.resource, rec.bits)
    }

    /// Adds a hand-made record, keeping the injected list sorted.
    pub(crate) fn inject(&self, record: Injected) {
        let mut injected = self.injected.write().expect("injected lock");
        let position =
            injected.partition_point(|other| compare_injected(other, &record) == Ordering::Less);
        injected.insert(position, record);
    }

    /// Up to `limit` records of `selection` in order, and whether more follow.
    pub(crate) fn select<'a>(
        &'a self,
        injected: &'a [Injected],
        selection: &Selection,
        limit: usize,
    ) -> (Vec<Item<'a>>, bool) {
        let wanted = limit + 1;
        let resource = self.resource;
        let generated = gather(
            &self.generated,
            selection,
            wanted,
            |rec| rec.time,
            |rec| rec.visible_at,
            |rec, cursor| compare_generated_to_cursor(resource, rec, cursor),
        );
        let hand_made = gather(
            injected,
            selection,
            wanted,
            |rec| rec.time,
            |rec| rec.visible_at,
            compare_injected_to_cursor,
        );
        let mut merged = Vec::with_capacity(wanted.min(generated.len() + hand_made.len()));
        let (mut g, mut h) = (0, 0);
        while merged.len() < wanted && (g < generated.len() || h < hand_made.len()) {
            let take_generated = match (generated.get(g), hand_made.get(h)) {
                (Some(a), Some(b)) => {
                    let order =
                        compare_items(resource, &Item::Generated(a), resource, &Item::Injected(b));
                    (order == Ordering::Less) != selection.descending
                }
                (Some(_), None) => true,
                _ => false,
            };
            if take_generated {
                merged.push(Item::Generated(generated[g]));
                g += 1;
            } else {
                merged.push(Item::Injected(hand_made[h]));
                h += 1;
            }
        }
        let more = merged.len() > limit;
        merged.truncate(limit);
        (merged, more)
    }

    /// Up to `limit` records of `selection` in an order that is neither ascending nor descending
    /// in time (a pseudo-random key per record, then id, then sequence), and whether more follow.
    /// `selection.descending` is ignored; `selection.after` is a cursor from
    /// [`Collection::scrambled_cursor_of`].
    pub(crate) fn select_scrambled<'a>(
        &'a self,
        injected: &'a [Injected],
        selection: &Selection,
        limit: usize,
    ) -> (Vec<Item<'a>>, bool) {
        if selection.lo > selection.hi {
            return (Vec::new(), false);
        }
        let window = |times: &dyn Fn(usize) -> i64, len: usize| {
            let start = partition(len, |i| times(i) < selection.lo);
            let end = partition(len, |i| times(i) <= selection.hi);
            start..end.max(start)
        };
        let generated_range = window(&|i| self.generated[i].time, self.generated.len());
        let injected_range = window(&|i| injected[i].time, injected.len());
        let mut candidates: Vec<(u64, Item<'a>)> = self.generated[generated_range]
            .iter()
            .filter(|rec| rec.visible_at <= selection.snapshot)
            .map(|rec| (scramble_key_of_bits(rec.bits), Item::Generated(rec)))
            .chain(
                injected[injected_range]
                    .iter()
                    .filter(|rec| rec.visible_at <= selection.snapshot)
                    .map(|rec| (scramble_key_of_id(&rec.id), Item::Injected(rec))),
            )
            .collect();
        if let Some(cursor) = selection.after {
            candidates.retain(|(key, item)| {
                self.compare_scrambled(*key, item, cursor) == Ordering::Greater
            });
        }
        candidates.sort_unstable_by(|(a_key, a), (b_key, b)| {
            a_key.cmp(b_key).then_with(|| {
                let b_cursor = self.scrambled_cursor_of(b);
                self.compare_scrambled(*a_key, a, &b_cursor)
            })
        });
        let more = candidates.len() > limit;
        candidates.truncate(limit);
        (candidates.into_iter().map(|(_, item)| item).collect(), more)
    }

    /// The cursor after `item` in the order of [`Collection::select_scrambled`]: its `time`
    /// holds the scramble key.
    pub(crate) fn scrambled_cursor_of(&self, item: &Item) -> Cursor {
        let mut cursor = self.cursor_of(item);
        cursor.time = match item {
            Item::Generated(rec) => scramble_key_of_bits(rec.bits),
            Item::Injected(rec) => scramble_key_of_id(&rec.id),
        } as i64;
        cursor
    }

    fn compare_scrambled(&self, key: u64, item: &Item, cursor: &Cursor) -> Ordering {
        key.cmp(&(cursor.time as u64)).then_with(|| match item {
            Item::Generated(rec) => self
                .id_of(rec)
                .as_bytes()
                .cmp(cursor.id.as_bytes())
                .then(0.cmp(&cursor.seq)),
            Item::Injected(rec) => rec
                .id
                .as_bytes()
                .cmp(cursor.id.as_bytes())
                .then(rec.seq.cmp(&cursor.seq)),
        })
    }

    /// The cursor that selects everything after `item`.
    pub(crate) fn cursor_of(&self, item: &Item) -> Cursor {
        match item {
            Item::Generated(rec) => Cursor {
                time: rec.time,
                id: self.id_of(rec).as_str().to_string(),
                seq: 0,
            },
            Item::Injected(rec) => Cursor {
                time: rec.time,
                id: rec.id.clone(),
                seq: rec.seq,
            },
        }
    }
}

/// The first index in `0..len` for which `before` is false (`before` must be monotone).
fn partition(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

const SALT_SCRAMBLE: u64 = 0x5C4A_3B1E_0000_0001;

fn scramble_key_of_bits(bits: u64) -> u64 {
    mix64(bits ^ SALT_SCRAMBLE)
}

fn scramble_key_of_id(id: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(hash ^ SALT_SCRAMBLE)
}

/// Collects up to `wanted` visible records of a sorted slice in the selection's order.
fn gather<'a, T>(
    records: &'a [T],
    selection: &Selection,
    wanted: usize,
    time: impl Fn(&T) -> i64,
    visible_at: impl Fn(&T) -> i64,
    compare_to_cursor: impl Fn(&T, &Cursor) -> Ordering,
) -> Vec<&'a T> {
    let mut out = Vec::new();
    if selection.lo > selection.hi {
        return out;
    }
    if selection.descending {
        let mut end = records.partition_point(|rec| time(rec) <= selection.hi);
        if let Some(cursor) = selection.after {
            end = end.min(
                records.partition_point(|rec| compare_to_cursor(rec, cursor) == Ordering::Less),
            );
        }
        for rec in records[..end].iter().rev() {
            if time(rec) < selection.lo || out.len() == wanted {
                break;
            }
            if visible_at(rec) <= selection.snapshot {
                out.push(rec);
            }
        }
    } else {
        let mut start = records.partition_point(|rec| time(rec) < selection.lo);
        if let Some(cursor) = selection.after {
            start =
                start
                    .max(records.partition_point(|rec| {
                        compare_to_cursor(rec, cursor) != Ordering::Greater
                    }));
        }
        for rec in &records[start..] {
            if time(rec) > selection.hi || out.len() == wanted {
                break;
            }
            if visible_at(rec) <= selection.snapshot {
                out.push(rec);
            }
        }
    }
    out
}

/// The id of a generated record: a GUID for sign-ins and provisioning events, the audit pattern
/// for directory audits, 64 hex digits for risk detections and 52 for service-principal risk
/// detections (as in Graph's examples).
pub(crate) fn generated_id(resource: Resource, bits: u64) -> IdBuf {
    let mut id = IdBuf::new();
    match resource {
        Resource::SignIns
        | Resource::NonInteractiveSignIns
        | Resource::ServicePrincipalSignIns
        | Resource::ManagedIdentitySignIns
        | Resource::Provisioning => write_signin_id(&mut id, bits),
        Resource::DirectoryAudits => write_audit_id(&mut id, bits),
        Resource::RiskDetections => write_hex_id(&mut id, bits, 64),
        Resource::ServicePrincipalRiskDetections => write_hex_id(&mut id, bits, 52),
    }
    id
}

fn compare_generated(resource: Resource, a: &Rec, b: &Rec) -> Ordering {
    a.time.cmp(&b.time).then_with(|| {
        generated_id(resource, a.bits)
            .as_bytes()
            .cmp(generated_id(resource, b.bits).as_bytes())
    })
}

fn compare_generated_to_cursor(resource: Resource, rec: &Rec, cursor: &Cursor) -> Ordering {
    rec.time
        .cmp(&cursor.time)
        .then_with(|| {
            generated_id(resource, rec.bits)
                .as_bytes()
                .cmp(cursor.id.as_bytes())
        })
        .then(0.cmp(&cursor.seq))
}

fn compare_injected(a: &Injected, b: &Injected) -> Ordering {
    a.time
        .cmp(&b.time)
        .then_with(|| a.id.cmp(&b.id))
        .then(a.seq.cmp(&b.seq))
}

fn compare_injected_to_cursor(rec: &Injected, cursor: &Cursor) -> Ordering {
    rec.time
        .cmp(&cursor.time)
        .then_with(|| rec.id.as_bytes().cmp(cursor.id.as_bytes()))
        .then(rec.seq.cmp(&cursor.seq))
}

/// The total order of a collection: time, then id (bytewise), then injection sequence. Items of
/// two streams compare the same way (each id written as its own stream writes it).
pub(crate) fn compare_items(
    a_resource: Resource,
    a: &Item,
    b_resource: Resource,
    b: &Item,
) -> Ordering {
    let key = |item: &Item| -> (i64, u64) {
        match item {
            Item::Generated(rec) => (rec.time, 0),
            Item::Injected(rec) => (rec.time, rec.seq),
        }
    };
    let (a_time, a_seq) = key(a);
    let (b_time, b_seq) = key(b);
    a_time
        .cmp(&b_time)
        .then_with(|| {
            let a_id;
            let b_id;
            let a_bytes: &[u8] = match a {
                Item::Generated(rec) => {
                    a_id = generated_id(a_resource, rec.bits);
                    a_id.as_bytes()
                }
                Item::Injected(rec) => rec.id.as_bytes(),
            };
            let b_bytes: &[u8] = match b {
                Item::Generated(rec) => {
                    b_id = generated_id(b_resource, rec.bits);
                    b_id.as_bytes()
                }
                Item::Injected(rec) => rec.id.as_bytes(),
            };
            a_bytes.cmp(b_bytes)
        })
        .then(a_seq.cmp(&b_seq))
}

pub(crate) fn duration_ns(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn draw(lateness: &Lateness, rng: &mut ChaCha8Rng) -> i64 {
    match lateness {
        Lateness::None => 0,
        Lateness::Fixed(delay) => duration_ns(*delay),
        Lateness::Uniform { min, max } => {
            let (low, high) = (duration_ns(*min), duration_ns(*max));
            let (low, high) = (low.min(high), low.max(high));
            rng.random_range(low..=high)
        }
        Lateness::Mixed {
            percent,
            late,
            otherwise,
        } => {
            if rng.random_range(0u8..100) < *percent {
                draw(late, rng)
            } else {
                draw(otherwise, rng)
            }
        }
    }
}

pub(crate) fn truncate(time: i64, digits: u8) -> i64 {
    let unit = 10i64.pow(9 - u32::from(digits));
    time - time.rem_euclid(unit)
}

/// Generates a collection's records for `[start - history, start + live_for)`, deterministically
/// from the seed: uniform event times, about 4 % of records sharing the previous record's exact
/// instant, 88 % with 7 fraction digits and 4 % each with 0, 3 and 6.
fn generate(resource: Resource, config: &SimConfig, start_ns: i64, shared_ids: &[Rec]) -> Vec<Rec> {
    let rate = config.per_hour(resource);
    let salt = match resource {
        Resource::DirectoryAudits => 0xA0D1_7000_0000_0001u64,
        Resource::SignIns => 0x5161_1000_0000_0002u64,
        Resource::NonInteractiveSignIns => 0x5161_1000_0000_0003u64,
        Resource::ServicePrincipalSignIns => 0x5161_1000_0000_0004u64,
        Resource::ManagedIdentitySignIns => 0x5161_1000_0000_0005u64,
        Resource::Provisioning => 0x9B0F_1000_0000_0006u64,
        Resource::RiskDetections => 0x415C_1000_0000_0007u64,
        Resource::ServicePrincipalRiskDetections => 0x415C_1000_0000_0008u64,
    };
    let lateness = config.lateness_of(resource);
    let share_fraction = if matches!(
        resource,
        Resource::NonInteractiveSignIns
            | Resource::ServicePrincipalSignIns
            | Resource::ManagedIdentitySignIns
    ) && !shared_ids.is_empty()
    {
        config.shared_id_fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut shared_taken = std::collections::HashSet::new();
    let span = config.history + config.live_for;
    let count = (f64::from(rate) * span.as_secs_f64() / 3600.0).round() as usize;
    let base = start_ns.saturating_sub(duration_ns(config.history));
    let span_ns = duration_ns(span).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ salt);
    let mut times: Vec<i64> = (0..count)
        .map(|_| base.saturating_add(rng.random_range(0..span_ns)))
        .collect();
    times.sort_unstable();
    let key = mix64(config.seed ^ salt);
    let republish_fraction = config.republish_fraction.clamp(0.0, 1.0);
    let mut previous: Option<(i64, u8)> = None;
    let mut records = Vec::with_capacity(count);
    for (index, raw_time) in times.into_iter().enumerate() {
        let (time, precision) = match previous {
            Some(shared) if rng.random_bool(0.04) => shared,
            _ => {
                let precision = match rng.random_range(0..100u32) {
                    0..4 => 0,
                    4..8 => 3,
                    8..12 => 6,
                    _ => 7,
                };
                (truncate(raw_time, precision), precision)
            }
        };
        previous = Some((time, precision));
        let visible_at = time.saturating_add(draw(lateness, &mut rng));
        let republish_at = if resource == Resource::SignIns
            && republish_fraction > 0.0
            && rng.random_bool(republish_fraction)
        {
            visible_at.saturating_add(draw(&config.republish_delay, &mut rng).max(1))
        } else {
            i64::MAX
        };
        // A bijection of distinct inputs: ids never collide within a collection.
        let mut bits = mix64(key.wrapping_add(index as u64));
        if share_fraction > 0.0 && rng.random_bool(share_fraction) {
            // Reuse an interactive sign-in's seed (so its id), each at most once per stream.
            let pick = rng.random_range(0..shared_ids.len());
            if shared_taken.insert(pick) {
                bits = shared_ids[pick].bits;
            }
        }
        records.push(Rec {
            time,
            visible_at,
            republish_at,
            bits,
            precision,
        });
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::NS_PER_SEC;

    fn config() -> SimConfig {
        SimConfig {
            history: Duration::from_secs(6 * 3600),
            live_for: Duration::ZERO,
            signin_per_hour: 2000,
            audit_per_hour: 500,
            ..SimConfig::default()
        }
    }

    #[test]
    fn generation_is_deterministic_and_sorted() {
        let start = 1_700_000_000 * NS_PER_SEC;
        let a = Collection::new(Resource::SignIns, &config(), start, &[]);
        let b = Collection::new(Resource::SignIns, &config(), start, &[]);
        assert_eq!(a.generated.len(), 12_000);
        assert!(
            a.generated
                .iter()
                .zip(&b.generated)
                .all(|(x, y)| x.bits == y.bits && x.time == y.time)
        );
        assert!(a.generated.windows(2).all(|pair| {
            compare_generated(Resource::SignIns, &pair[0], &pair[1]) == Ordering::Less
        }));
    }

    #[test]
    fn generated_data_has_ties_and_mixed_precision() {
        let start = 1_700_000_000 * NS_PER_SEC;
        let audits = Collection::new(Resource::DirectoryAudits, &config(), start, &[]);
        let ties = audits
            .generated
            .windows(2)
            .filter(|pair| pair[0].time == pair[1].time)
            .count();
        assert!(ties > 10, "{ties} ties");
        for digits in [0, 3, 6, 7] {
            assert!(audits.generated.iter().any(|rec| rec.precision == digits));
        }
    }

    #[test]
    fn selection_pages_cover_everything_once_in_both_orders() {
        let start = 1_700_000_000 * NS_PER_SEC;
        let collection = Collection::new(Resource::DirectoryAudits, &config(), start, &[]);
        for descending in [false, true] {
            let mut cursor: Option<Cursor> = None;
            let mut seen = Vec::new();
            loop {
                let selection = Selection {
                    lo: i64::MIN,
                    hi: i64::MAX,
                    descending,
                    after: cursor.as_ref(),
                    snapshot: i64::MAX,
                };
                let (items, more) = collection.select(&[], &selection, 7);
                seen.extend(items.iter().map(|item| match item {
                    Item::Generated(rec) => rec.bits,
                    Item::Injected(_) => unreachable!(),
                }));
                if !more {
                    break;
                }
                cursor = Some(collection.cursor_of(items.last().unwrap()));
            }
            assert_eq!(seen.len(), collection.generated.len());
            let mut expected: Vec<u64> = collection.generated.iter().map(|r| r.bits).collect();
            if descending {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }
    }
}
