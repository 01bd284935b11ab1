//! The written ids kept for the reconciliation sweep, one append blob per hour of event time
//! (`<container>/ids/<YYYY-MM-DDTHH>` in `STATE_CONTAINER`).
//!
//! The state blob holds the ids of the replay window only. Before a commit saves a state from
//! which ids were pruned, the pruned ids younger than `RECONCILE_WINDOW` are appended to the
//! shard of their hour, so the sweep can tell, an hour at a time, which records were written,
//! without holding a day of ids in memory. An id may be appended twice (a run killed after the
//! append and before the state save prunes it again): a shard is a set, read into a map.
//! Shards are never deleted by the service (its identity may not delete); a lifecycle rule
//! removes those older than `RECONCILE_WINDOW` (infra/).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::dedup::{Entry, from_ticks, ticks};
use super::journal::{decode, encode};
use crate::storage::Storage;

/// Entries per appended block (32 bytes each: 3.2 MB, below the 4 MiB block limit).
const BLOCK_ENTRIES: usize = 100_000;

/// 100 ns ticks per hour.
const HOUR_TICKS: i64 = 3600 * 10_000_000;

/// A job's id shards.
#[derive(Clone)]
pub struct IdShards {
    storage: Storage,
    prefix: String,
}

impl IdShards {
    /// The shards of the job writing to `container`.
    pub fn new(storage: Storage, container: &str) -> IdShards {
        IdShards {
            storage,
            prefix: format!("{container}/ids/"),
        }
    }

    /// The shard of the hour starting `hour_ticks`.
    fn name(&self, hour_ticks: i64) -> String {
        let hour = from_ticks(hour_ticks).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{}{:04}-{:02}-{:02}T{:02}",
            self.prefix,
            hour.year(),
            u8::from(hour.month()),
            hour.day(),
            hour.hour()
        )
    }

    /// Appends entries to the shards of their hours.
    pub async fn append(&self, entries: &[(u128, Entry)]) -> Result<(), crate::storage::Error> {
        let mut by_hour: BTreeMap<i64, Vec<(u128, Entry)>> = BTreeMap::new();
        for (key, entry) in entries {
            by_hour
                .entry(hour_of(entry.ticks))
                .or_default()
                .push((*key, *entry));
        }
        for (hour, entries) in by_hour {
            let name = self.name(hour);
            for block in entries.chunks(BLOCK_ENTRIES) {
                self.storage.append_journal(&name, encode(block)).await?;
            }
        }
        Ok(())
    }

    /// Every entry whose time lies in `[from, to)`, from the shards of the hours it touches.
    pub async fn load(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(u128, Entry)>, crate::storage::Error> {
        let (from, to) = (ticks(from), ticks(to));
        let mut entries = Vec::new();
        let mut hour = hour_of(from);
        while hour < to {
            if let Some(bytes) = self.storage.load_journal(&self.name(hour)).await? {
                entries.extend(decode(&bytes).filter(|(_, e)| (from..to).contains(&e.ticks)));
            }
            hour += HOUR_TICKS;
        }
        Ok(entries)
    }
}

/// The start of the UTC hour holding `ticks`.
fn hour_of(ticks: i64) -> i64 {
    ticks - ticks.rem_euclid(HOUR_TICKS)
}

/// The start of the UTC hour holding `time`.
pub fn hour_start(time: OffsetDateTime) -> OffsetDateTime {
    from_ticks(hour_of(ticks(time))).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hours_are_utc_grid_cells() {
        assert_eq!(
            hour_start(datetime!(2026-11-25 10:59:59.9999999 UTC)),
            datetime!(2026-11-25 10:00 UTC)
        );
        assert_eq!(
            hour_start(datetime!(2026-11-25 11:00 UTC)),
            datetime!(2026-11-25 11:00 UTC)
        );
        assert_eq!(
            hour_start(datetime!(1969-12-31 23:30 UTC)),
            datetime!(1969-12-31 23:00 UTC)
        );
    }
}
