//! How many bytes of message data all sessions together may hold in memory while they
//! check and store messages (SMTP DATA, IMAP APPEND).
//!
//! Messages arrive into spool files, so a slow or hostile client costs a small buffer
//! while it sends; only the step that needs the whole message in memory (header and MIME
//! checks, DKIM verification, writing the stored copy) reserves its size here first and
//! waits when the budget is spent. Memory for message data is therefore bounded by the
//! budget, however many connections are open.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The granularity of reservations.
const UNIT: u64 = 64 * 1024;

/// The shared budget. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total_units: u32,
}

/// A reservation; the bytes return to the budget when it is dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let total_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, u32::MAX >> 4);
        Self { units: Arc::new(Semaphore::new(total_units as usize)), total_units }
    }

    /// Reserves `bytes` (at most the whole budget), waiting until they are free.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.total_units);
        match self.units.clone().acquire_many_owned(units).await {
            Ok(permit) => Reservation { _permit: Some(permit) },
            // The semaphore is never closed; should it be, nothing is held back.
            Err(_) => Reservation { _permit: None },
        }
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_the_budget() {
        let budget = MemoryBudget::new(1024 * 1024);
        let a = budget.reserve(700 * 1024).await;
        assert!(budget.available() < 400 * 1024);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(500 * 1024)).await;
        assert!(waiting.is_err(), "must wait while the budget is spent");
        drop(a);
        let _b = budget.reserve(500 * 1024).await;
        // Larger than the whole budget: takes all of it rather than waiting forever.
        drop(_b);
        let _all = budget.reserve(u64::MAX).await;
        assert_eq!(budget.available(), 0);
    }
}
