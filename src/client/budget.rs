//! The process-wide budget of bytes held in received Graph pages (`GRAPH_PAGE_BUFFER`).
//!
//! Memory, not the request count, is what parallel slices multiply: a slice holds a page from
//! the moment its body is read until the blob built from its records is stored. Requests
//! waiting on Graph hold nothing, so many slices can keep the throttle budget busy while only a
//! few pages are in memory at once.
//!
//! A page is charged twice its body size (the body, and the blob body built from its records)
//! once its headers have arrived and before its body is read; the charge is clamped to the
//! whole budget, so a page larger than the budget is still admitted, alone. The charge is
//! released when the last [`Bytes`] slice of the body is dropped ([`BudgetedBody`]), so the
//! accounting follows the memory itself, not the code paths that pass it around.
//!
//! A slice must not wait for the budget while it holds an earlier page, or slices holding
//! pages could all wait on each other; `pipeline::fetch` writes each page's records before it
//! asks for the next page.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a reservation waits before a warning is logged.
pub const SLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bytes of pages that may be held at once, shared by every clone.
#[derive(Debug, Clone)]
pub struct PageBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    total: u32,
}

/// A charge against a [`PageBudget`], released on drop.
#[derive(Debug)]
pub struct Hold {
    _permit: OwnedSemaphorePermit,
}

impl PageBudget {
    /// A budget of `total` bytes (at least 1, at most `u32::MAX`).
    pub fn new(total: u64) -> PageBudget {
        let total = total.clamp(1, u64::from(u32::MAX)) as u32;
        PageBudget {
            inner: Arc::new(Inner {
                semaphore: Arc::new(Semaphore::new(total as usize)),
                total,
            }),
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> u64 {
        u64::from(self.inner.total)
    }

    /// Bytes charged now.
    pub fn held(&self) -> u64 {
        self.total() - self.inner.semaphore.available_permits() as u64
    }

    /// Waits until `bytes` (clamped to the whole budget) can be charged, and charges them until
    /// the returned [`Hold`] is dropped. Waiters are served in order. A wait longer than
    /// [`SLOW_WAIT`] is logged once as a warning (pages are being held somewhere).
    pub async fn reserve(&self, bytes: u64) -> Hold {
        let charge = bytes.clamp(1, u64::from(self.inner.total)) as u32;
        let acquire = self.inner.semaphore.clone().acquire_many_owned(charge);
        let mut acquire = std::pin::pin!(acquire);
        let permit = match tokio::time::timeout(SLOW_WAIT, &mut acquire).await {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(
                    page_buffer.bytes = self.total(),
                    page_buffer.held = self.held(),
                    page.charge = charge,
                    "waiting for the page budget for {} s: pages are held longer than expected \
                     (storage slow?) or GRAPH_PAGE_BUFFER is too small",
                    SLOW_WAIT.as_secs()
                );
                acquire.await
            }
        }
        .expect("the page budget's semaphore is never closed");
        Hold { _permit: permit }
    }
}

/// A page body that keeps its [`Hold`] for as long as any slice of it is alive.
#[derive(Debug)]
pub struct BudgetedBody {
    bytes: Vec<u8>,
    _hold: Hold,
}

impl BudgetedBody {
    /// The body as [`Bytes`]: slices of it (`Bytes::slice_ref`) share the hold, which is
    /// released when the last one is dropped.
    pub fn into_bytes(bytes: Vec<u8>, hold: Hold) -> Bytes {
        Bytes::from_owner(BudgetedBody { bytes, _hold: hold })
    }
}

impl AsRef<[u8]> for BudgetedBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_reservation_waits_until_enough_is_released() {
        let budget = PageBudget::new(100);
        let first = budget.reserve(60).await;
        assert_eq!(budget.held(), 60);
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(50).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "50 more bytes do not fit beside 60 of 100"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released bytes admit the waiter")
            .unwrap();
        assert_eq!(budget.held(), 50);
        drop(second);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn a_page_larger_than_the_budget_is_admitted_alone() {
        let budget = PageBudget::new(100);
        let big = tokio::time::timeout(Duration::from_secs(5), budget.reserve(1_000))
            .await
            .expect("clamped to the whole budget, so it cannot wait forever");
        assert_eq!(budget.held(), 100);
        let other = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(1).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!other.is_finished(), "nothing else fits beside it");
        drop(big);
        tokio::time::timeout(Duration::from_secs(5), other)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn the_hold_lives_as_long_as_the_last_slice_of_the_body() {
        let budget = PageBudget::new(1_000);
        let hold = budget.reserve(200).await;
        let body = BudgetedBody::into_bytes(b"{\"value\":[{\"id\":\"a\"}]}".to_vec(), hold);
        let record = body.slice_ref(&body[10..20]);
        assert_eq!(&record[..], b"{\"id\":\"a\"}");
        drop(body);
        assert_eq!(
            budget.held(),
            200,
            "a record slice still points into the page"
        );
        drop(record);
        assert_eq!(budget.held(), 0);
    }
}
