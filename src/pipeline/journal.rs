//! The written-ids journal: after every stored page its ids are appended to a journal, so a run
//! killed between two commits (the host's timeout, a deploy, an out-of-memory kill) leaves
//! behind what it wrote, and its successor writes again at most the pages that were in flight.
//!
//! Two journals take turns. A commit resets the older one and sends later appends to it, then
//! saves the state, which holds everything appended to the other one before. A run starts from
//! the state plus both journals, so an append that lands on either side of a commit is found.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

use super::dedup::Entry;
use crate::storage::Storage;

/// Bytes of one entry: id hash (16), time ticks (8), content hash (8), little-endian.
const ENTRY_BYTES: usize = 32;

/// A job's two journals in the state container.
pub struct Journal {
    storage: Storage,
    names: [String; 2],
    active: AtomicUsize,
    /// The state was saved since the last turn (true before the first).
    saved: AtomicBool,
}

impl Journal {
    /// The journals of the job whose state blob is `<container>/written-ids.json`.
    pub fn new(storage: Storage, container: &str) -> Journal {
        Journal {
            storage,
            names: [0, 1].map(|n| format!("{container}/written-ids.journal-{n}")),
            active: AtomicUsize::new(0),
            saved: AtomicBool::new(true),
        }
    }

    /// Every entry in both journals (left by runs that did not reach their next commit).
    pub async fn load(&self) -> Result<Vec<(u128, Entry)>, crate::storage::Error> {
        let mut entries = Vec::new();
        for name in &self.names {
            if let Some(bytes) = self.storage.load_journal(name).await? {
                entries.extend(decode(&bytes));
            }
        }
        Ok(entries)
    }

    /// Appends the ids of a stored page.
    pub async fn append(&self, entries: &[(u128, Entry)]) -> Result<(), crate::storage::Error> {
        let name = &self.names[self.active.load(Ordering::Acquire)];
        for chunk in entries.chunks(100_000) {
            self.storage.append_journal(name, encode(chunk)).await?;
        }
        Ok(())
    }

    /// Before a commit saves the state: empties the older journal and sends later appends to
    /// it. What was appended to the other one is in memory now, so in the state being saved.
    /// When the state save after the previous turn failed, the older journal still holds ids
    /// no saved state has: nothing is emptied, and appends stay where they go.
    pub async fn turn(&self) -> Result<(), crate::storage::Error> {
        if !self.saved.load(Ordering::Acquire) {
            return Ok(());
        }
        let next = 1 - self.active.load(Ordering::Acquire);
        self.storage.reset_journal(&self.names[next]).await?;
        self.active.store(next, Ordering::Release);
        self.saved.store(false, Ordering::Release);
        Ok(())
    }

    /// After a commit saved the state: everything appended before the last turn is in it.
    pub fn saved(&self) {
        self.saved.store(true, Ordering::Release);
    }
}

pub(super) fn encode(entries: &[(u128, Entry)]) -> Bytes {
    let mut out = BytesMut::with_capacity(entries.len() * ENTRY_BYTES);
    for (key, entry) in entries {
        out.put_u128_le(*key);
        out.put_i64_le(entry.ticks);
        out.put_u64_le(entry.content);
    }
    out.freeze()
}

/// The entries of a journal; a trailing partial entry (never written by this build) is ignored.
pub(super) fn decode(bytes: &[u8]) -> impl Iterator<Item = (u128, Entry)> + '_ {
    bytes.chunks_exact(ENTRY_BYTES).map(|chunk| {
        let (key, rest) = chunk.split_at(16);
        let (ticks, content) = rest.split_at(8);
        (
            u128::from_le_bytes(key.try_into().unwrap_or_default()),
            Entry {
                ticks: i64::from_le_bytes(ticks.try_into().unwrap_or_default()),
                content: u64::from_le_bytes(content.try_into().unwrap_or_default()),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_tail_is_ignored() {
        let entries = vec![
            (
                u128::MAX - 7,
                Entry {
                    ticks: -5,
                    content: 9,
                },
            ),
            (
                42,
                Entry {
                    ticks: i64::MAX,
                    content: u64::MAX,
                },
            ),
        ];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 64);
        assert_eq!(decode(&bytes).collect::<Vec<_>>(), entries);
        assert_eq!(decode(&bytes[..40]).count(), 1);
    }
}
