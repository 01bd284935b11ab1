//! The ids already written inside the replay window, so that a record seen again is skipped and
//! a late one is written once. Kept between runs in a state blob (too large for the 8 KB of
//! container metadata), guarded by its ETag.
//!
//! Ids are stored as 128-bit xxh3 hashes and contents as 64-bit xxh3 hashes: the state stays
//! small, holds no personal data, and the hashes are stable across versions and machines.

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use super::plan::Leftover;
use super::sweep::Reconcile;

/// The state format version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// What the state remembers of one written record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The record's time, in 100 ns ticks since the Unix epoch.
    pub ticks: i64,
    /// The hash of the record's bytes as last written.
    pub content: u64,
}

/// What to do with a fetched record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Never written: write it.
    New,
    /// Written before with this content (or updates are not wanted): skip it.
    Duplicate,
    /// Written before with other content, and `REPUBLISH_UPDATES=true`: write the new version.
    Updated,
}

/// Why a state blob could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not the JSON this build writes.
    #[error(
        "the state blob is not valid ({reason}); delete it to start over, at the price of re-writing the replay window once"
    )]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// Written by a newer build.
    #[error(
        "the state blob has version {found}, this build reads version {STATE_VERSION}: upgrade entra-export"
    )]
    Version {
        /// The version found.
        found: u32,
    },
}

/// The set of written records, by id hash.
#[derive(Debug, Clone, Default)]
pub struct WrittenIds {
    /// Keyed by xxh3 hashes already: a cheap hasher is enough (and no input is adversarial).
    entries: FxHashMap<u128, Entry>,
    /// Records per hour of event time seen by the last run, for the next run's plan.
    density_per_hour: Option<f64>,
    /// The windows the last run left open, for the next run to resume.
    leftover: Option<Leftover>,
    /// Where the reconciliation sweep stands (absent when `RECONCILE_WINDOW=0`).
    reconcile: Option<Reconcile>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// `[id hash (32 hex), time ticks, content hash (16 hex)]`.
    entries: Vec<(String, i64, String)>,
    /// Records per hour of event time seen by the last run (absent in older state blobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    density_per_hour: Option<f64>,
    /// The windows the last run left open (absent in older state blobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leftover: Option<LeftoverFile>,
    /// Where the reconciliation sweep stands (absent in older state blobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reconcile: Option<Reconcile>,
}

/// [`Leftover`] in 100 ns ticks since the Unix epoch.
#[derive(Serialize, Deserialize)]
struct LeftoverFile {
    from: i64,
    end: i64,
    /// `[start, end, progress]` of each open window.
    open: Vec<(i64, i64, i64)>,
}

pub(super) fn from_ticks(value: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 100).ok()
}

impl LeftoverFile {
    fn new(leftover: &Leftover) -> LeftoverFile {
        LeftoverFile {
            from: ticks(leftover.from),
            end: ticks(leftover.end),
            open: leftover
                .open
                .iter()
                .map(|(a, b, p)| (ticks(*a), ticks(*b), ticks(*p)))
                .collect(),
        }
    }

    /// The leftover, or `None` when any instant is out of range or out of order (the next run
    /// then plans its range afresh, which costs requests but loses nothing).
    fn decode(&self) -> Option<Leftover> {
        let (from, end) = (from_ticks(self.from)?, from_ticks(self.end)?);
        let mut open = Vec::with_capacity(self.open.len());
        let mut cursor = from;
        for &(a, b, p) in &self.open {
            let (a, b, p) = (from_ticks(a)?, from_ticks(b)?, from_ticks(p)?);
            if a < cursor || b <= a || b > end || p < a || p > b {
                return None;
            }
            open.push((a, b, p));
            cursor = b;
        }
        (from < end).then_some(Leftover { from, end, open })
    }
}

/// The key of a record id.
pub fn id_key(id: &str) -> u128 {
    xxh3_128(id.as_bytes())
}

/// The hash of a record's bytes.
pub fn content_key(raw: &[u8]) -> u64 {
    xxh3_64(raw)
}

/// A time as 100 ns ticks since the Unix epoch.
pub fn ticks(time: OffsetDateTime) -> i64 {
    (time.unix_timestamp_nanos() / 100) as i64
}

impl WrittenIds {
    /// Reads a state blob.
    pub fn decode(bytes: &[u8]) -> Result<WrittenIds, StateError> {
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| StateError::Invalid {
            reason: e.to_string(),
        })?;
        if file.version != STATE_VERSION {
            return Err(StateError::Version {
                found: file.version,
            });
        }
        let mut entries =
            FxHashMap::with_capacity_and_hasher(file.entries.len(), Default::default());
        for (id, ticks, content) in file.entries {
            let key = u128::from_str_radix(&id, 16).map_err(|_| StateError::Invalid {
                reason: format!("bad id hash `{id}`"),
            })?;
            let content = u64::from_str_radix(&content, 16).map_err(|_| StateError::Invalid {
                reason: format!("bad content hash `{content}`"),
            })?;
            entries.insert(key, Entry { ticks, content });
        }
        let density_per_hour = file.density_per_hour.filter(|d| d.is_finite() && *d >= 0.0);
        let leftover = file.leftover.as_ref().and_then(LeftoverFile::decode);
        let reconcile = file.reconcile.filter(Reconcile::is_valid);
        Ok(WrittenIds {
            entries,
            density_per_hour,
            leftover,
            reconcile,
        })
    }

    /// The windows the last run left open.
    pub fn leftover(&self) -> Option<&Leftover> {
        self.leftover.as_ref()
    }

    /// Replaces the windows left open for the next run.
    pub fn set_leftover(&mut self, leftover: Option<Leftover>) {
        self.leftover = leftover;
    }

    /// Forgets the records whose time lies in one of `spans` (sorted, `[start, end)`): no run
    /// reads them again (see `Planner::forgettable`). Returns what was forgotten.
    pub fn forget(&mut self, spans: &[(OffsetDateTime, OffsetDateTime)]) -> Vec<(u128, Entry)> {
        if spans.is_empty() {
            return Vec::new();
        }
        let spans: Vec<(i64, i64)> = spans.iter().map(|(a, b)| (ticks(*a), ticks(*b))).collect();
        self.remove_where(|entry| {
            let at = spans.partition_point(|(_, end)| *end <= entry.ticks);
            spans
                .get(at)
                .is_some_and(|(start, _)| *start <= entry.ticks)
        })
    }

    fn remove_where(&mut self, doomed: impl Fn(&Entry) -> bool) -> Vec<(u128, Entry)> {
        self.entries.extract_if(|_, entry| doomed(entry)).collect()
    }

    /// The records whose time lies in `[from, to)`.
    pub fn between(&self, from: OffsetDateTime, to: OffsetDateTime) -> Vec<(u128, Entry)> {
        let (from, to) = (ticks(from), ticks(to));
        self.entries
            .iter()
            .filter(|(_, entry)| (from..to).contains(&entry.ticks))
            .map(|(key, entry)| (*key, *entry))
            .collect()
    }

    /// A set holding just `entries` (the ids known over a sweep's chunk).
    pub fn from_entries(entries: Vec<(u128, Entry)>) -> WrittenIds {
        WrittenIds {
            entries: entries.into_iter().collect(),
            ..WrittenIds::default()
        }
    }

    /// Where the reconciliation sweep stands.
    pub fn reconcile(&self) -> Option<&Reconcile> {
        self.reconcile.as_ref()
    }

    /// Replaces where the reconciliation sweep stands.
    pub fn set_reconcile(&mut self, reconcile: Option<Reconcile>) {
        self.reconcile = reconcile;
    }

    /// Records per hour of event time that the last run saw, if known.
    pub fn density_per_hour(&self) -> Option<f64> {
        self.density_per_hour
    }

    /// Remembers the density of a run that fetched `records` over `span` of event time.
    pub fn learn_density(&mut self, records: u64, span: time::Duration) {
        let hours = span.as_seconds_f64() / 3600.0;
        if hours >= 1.0 / 60.0 {
            self.density_per_hour = Some(records as f64 / hours);
        }
    }

    /// Writes a state blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<(String, i64, String)> = self
            .entries
            .iter()
            .map(|(key, entry)| {
                (
                    format!("{key:032x}"),
                    entry.ticks,
                    format!("{:016x}", entry.content),
                )
            })
            .collect();
        entries.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        serde_json::to_vec(&StateFile {
            version: STATE_VERSION,
            entries,
            density_per_hour: self.density_per_hour,
            leftover: self.leftover.as_ref().map(LeftoverFile::new),
            reconcile: self.reconcile.clone(),
        })
        .expect("the state serialises")
    }

    /// Decides what to do with a record, given whether updated versions are wanted.
    pub fn decide(&self, key: u128, content: u64, republish_updates: bool) -> Decision {
        match self.entries.get(&key) {
            None => Decision::New,
            Some(entry) if republish_updates && entry.content != content => Decision::Updated,
            Some(_) => Decision::Duplicate,
        }
    }

    /// Remembers a written record (replacing an older version).
    pub fn insert(&mut self, key: u128, entry: Entry) {
        self.entries.insert(key, entry);
    }

    /// Forgets records older than `threshold`: no run will fetch them again. Returns what was
    /// forgotten.
    pub fn prune_before(&mut self, threshold: OffsetDateTime) -> Vec<(u128, Entry)> {
        let limit = ticks(threshold);
        self.remove_where(|entry| entry.ticks < limit)
    }

    /// How many records are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_record_seen_again_is_a_duplicate_unless_updates_are_wanted_and_it_changed() {
        let mut ids = WrittenIds::default();
        let key = id_key("66ea54eb-6301-4ee5-be62-ff5a759b0100");
        assert_eq!(ids.decide(key, 1, false), Decision::New);
        ids.insert(
            key,
            Entry {
                ticks: 0,
                content: 1,
            },
        );
        assert_eq!(ids.decide(key, 1, false), Decision::Duplicate);
        assert_eq!(ids.decide(key, 2, false), Decision::Duplicate);
        assert_eq!(ids.decide(key, 1, true), Decision::Duplicate);
        assert_eq!(ids.decide(key, 2, true), Decision::Updated);
    }

    #[test]
    fn the_state_round_trips_and_prunes_by_time() {
        let mut ids = WrittenIds::default();
        let old = datetime!(2026-11-25 09:00 UTC);
        let new = datetime!(2026-11-25 11:00 UTC);
        ids.insert(
            id_key("old"),
            Entry {
                ticks: ticks(old),
                content: 7,
            },
        );
        ids.insert(
            id_key("Authentication Methods_x y"),
            Entry {
                ticks: ticks(new),
                content: u64::MAX,
            },
        );
        let decoded = WrittenIds::decode(&ids.encode()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded.decide(id_key("Authentication Methods_x y"), u64::MAX, true),
            Decision::Duplicate
        );
        let mut pruned = decoded;
        pruned.prune_before(datetime!(2026-11-25 10:00 UTC));
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned.decide(id_key("old"), 7, false), Decision::New);
    }

    #[test]
    fn the_leftover_and_density_round_trip_and_spans_are_forgotten() {
        let mut ids = WrittenIds::default();
        for (n, minute) in [0i64, 10, 20, 30, 40].into_iter().enumerate() {
            let at = datetime!(2026-11-25 09:00 UTC) + time::Duration::minutes(minute);
            ids.insert(
                id_key(&n.to_string()),
                Entry {
                    ticks: ticks(at),
                    content: 0,
                },
            );
        }
        let leftover = Leftover {
            from: datetime!(2026-11-25 09:00 UTC),
            end: datetime!(2026-11-25 12:00 UTC),
            open: vec![(
                datetime!(2026-11-25 10:00 UTC),
                datetime!(2026-11-25 11:00 UTC),
                datetime!(2026-11-25 10:15 UTC),
            )],
        };
        ids.set_leftover(Some(leftover.clone()));
        ids.learn_density(600, time::Duration::hours(2));
        let decoded = WrittenIds::decode(&ids.encode()).unwrap();
        assert_eq!(decoded.leftover(), Some(&leftover));
        assert_eq!(decoded.density_per_hour(), Some(300.0));
        let mut ids = decoded;
        ids.forget(&[
            (
                datetime!(2026-11-25 09:05 UTC),
                datetime!(2026-11-25 09:20 UTC),
            ),
            (
                datetime!(2026-11-25 09:30 UTC),
                datetime!(2026-11-25 09:31 UTC),
            ),
        ]);
        // 09:10 and 09:30 are forgotten; 09:00, 09:20 (an end is exclusive) and 09:40 stay.
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.decide(id_key("1"), 0, false), Decision::New);
        assert_eq!(ids.decide(id_key("2"), 0, false), Decision::Duplicate);
        assert_eq!(ids.decide(id_key("3"), 0, false), Decision::New);
    }

    #[test]
    fn what_is_pruned_or_forgotten_is_returned_and_the_sweep_state_round_trips() {
        let at = |minute: i64| datetime!(2026-11-25 09:00 UTC) + time::Duration::minutes(minute);
        let mut ids = WrittenIds::default();
        for minute in [0i64, 10, 20, 30] {
            ids.insert(
                id_key(&minute.to_string()),
                Entry {
                    ticks: ticks(at(minute)),
                    content: 0,
                },
            );
        }
        assert_eq!(ids.between(at(10), at(30)).len(), 2);
        let pruned = ids.prune_before(at(5));
        assert_eq!(
            pruned,
            vec![(
                id_key("0"),
                Entry {
                    ticks: ticks(at(0)),
                    content: 0
                }
            )]
        );
        let forgotten = ids.forget(&[(at(20), at(25))]);
        assert_eq!(forgotten.len(), 1);
        assert_eq!(forgotten[0].0, id_key("20"));
        assert_eq!(ids.len(), 2);
        let reconcile = Reconcile {
            since: Some(7),
            last: 9,
            sweep: Some(super::super::sweep::Span {
                from: 1,
                to: 3,
                reached: 2,
            }),
        };
        ids.set_reconcile(Some(reconcile.clone()));
        let decoded = WrittenIds::decode(&ids.encode()).unwrap();
        assert_eq!(decoded.reconcile(), Some(&reconcile));
        let rebuilt = WrittenIds::from_entries(decoded.between(at(0), at(60)));
        assert_eq!(rebuilt.len(), 2);
        assert_eq!(rebuilt.decide(id_key("30"), 0, false), Decision::Duplicate);
    }

    #[test]
    fn a_leftover_out_of_order_is_dropped_not_trusted() {
        let file = LeftoverFile {
            from: 10,
            end: 100,
            open: vec![(50, 60, 55), (40, 45, 40)],
        };
        assert_eq!(file.decode(), None);
        let file = LeftoverFile {
            from: 10,
            end: 100,
            open: vec![(50, 60, 70)],
        };
        assert_eq!(file.decode(), None);
    }

    #[test]
    fn a_bad_or_newer_state_is_an_error_that_says_what_to_do() {
        let error = WrittenIds::decode(b"{\"version\":1,").unwrap_err();
        assert!(error.to_string().contains("delete it"), "{error}");
        let error = WrittenIds::decode(br#"{"version":9,"entries":[]}"#).unwrap_err();
        assert!(matches!(error, StateError::Version { found: 9 }));
        let error = WrittenIds::decode(br#"{"version":1,"entries":[["zz",1,"00"]]}"#).unwrap_err();
        assert!(error.to_string().contains("bad id hash"), "{error}");
    }
}
