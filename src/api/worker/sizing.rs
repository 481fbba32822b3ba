//! How many jobs a pool holds: the running ones plus those claimed ahead of a free worker.
//!
//! A claim is one writer round (one fsync on sled, one transaction on PostgreSQL), so a pool
//! of fast handlers that claims only for its free slots spends its time waiting on claims.
//! Unless the user fixes a prefetch, the pool sizes it from two running averages it
//! measures: how long a claim takes and how long a handler runs. It keeps enough jobs ahead
//! for every worker to stay busy through two claim rounds, and never fewer than one per
//! worker nor more than [`MAX_PREFETCH`]. Slow handlers therefore hold about two jobs per
//! worker (1 s handlers and 2 ms claims: `concurrency` ahead), fast ones up to the cap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most jobs a pool claims ahead of its workers when it sizes the prefetch itself.
pub(crate) const MAX_PREFETCH: usize = 2048;

/// The pool's capacity, fixed or measured.
pub(super) struct Sizing {
    concurrency: usize,
    fixed_prefetch: Option<usize>,
    /// Running average of a handler's run time, in ns (0 until the first one returns).
    handler_ns: AtomicU64,
    /// Running average of one claim call, in ns (0 until the first one returns).
    claim_ns: AtomicU64,
}

impl Sizing {
    pub(super) fn new(concurrency: usize, fixed_prefetch: Option<usize>) -> Self {
        Self {
            concurrency,
            fixed_prefetch,
            handler_ns: AtomicU64::new(0),
            claim_ns: AtomicU64::new(0),
        }
    }

    /// The most jobs the pool may hold at any time.
    pub(super) fn max_capacity(&self) -> usize {
        self.concurrency + self.fixed_prefetch.unwrap_or(MAX_PREFETCH)
    }

    /// Running plus claimed-ahead jobs the pool may hold now.
    pub(super) fn capacity(&self) -> usize {
        let prefetch = self.fixed_prefetch.unwrap_or_else(|| {
            prefetch_for(
                self.concurrency,
                self.handler_ns.load(Ordering::Relaxed),
                self.claim_ns.load(Ordering::Relaxed),
            )
        });
        self.concurrency + prefetch
    }

    pub(super) fn observe_handler(&self, took: Duration) {
        average_in(&self.handler_ns, took);
    }

    pub(super) fn observe_claim(&self, took: Duration) {
        average_in(&self.claim_ns, took);
    }
}

/// Moves a running average an eighth of the way toward `sample` (races between threads lose
/// a sample at worst).
fn average_in(avg: &AtomicU64, sample: Duration) {
    let x = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
    let old = avg.load(Ordering::Relaxed);
    let new = if old == 0 { x } else { old - old / 8 + x / 8 };
    avg.store(new.max(1), Ordering::Relaxed);
}

/// Jobs to hold ahead of `concurrency` workers whose handlers take `handler_ns` on average
/// when one claim takes `claim_ns`: enough for two claim rounds, between `concurrency` and
/// [`MAX_PREFETCH`]. Before anything was measured: `concurrency`.
pub(super) fn prefetch_for(concurrency: usize, handler_ns: u64, claim_ns: u64) -> usize {
    let floor = concurrency.min(MAX_PREFETCH);
    if handler_ns == 0 || claim_ns == 0 {
        return floor;
    }
    let want = concurrency as u128 * 2 * u128::from(claim_ns) / u128::from(handler_ns);
    usize::try_from(want)
        .unwrap_or(MAX_PREFETCH)
        .clamp(floor, MAX_PREFETCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_pools_claim_one_job_ahead_per_worker() {
        assert_eq!(prefetch_for(32, 0, 0), 32);
        assert_eq!(prefetch_for(2, 0, 2_000_000), 2);
        assert_eq!(Sizing::new(8, None).capacity(), 16);
    }

    #[test]
    fn slow_handlers_do_not_hoard_jobs() {
        // 1 s handlers, 2 ms claims, 32 workers: 64 jobs held at most.
        assert_eq!(prefetch_for(32, 1_000_000_000, 2_000_000), 32);
        let s = Sizing::new(32, None);
        for _ in 0..50 {
            s.observe_handler(Duration::from_secs(1));
            s.observe_claim(Duration::from_millis(2));
        }
        assert_eq!(s.capacity(), 64);
    }

    #[test]
    fn fast_handlers_get_enough_ahead_for_two_claim_rounds() {
        // 10 us handlers, 1 ms claims, 2 workers: 2 * 2 * 100 = 400 ahead.
        assert_eq!(prefetch_for(2, 10_000, 1_000_000), 400);
        // No-op handlers: capped.
        assert_eq!(prefetch_for(32, 1_000, 3_000_000), MAX_PREFETCH);
        assert_eq!(prefetch_for(4096, 1, 1), MAX_PREFETCH);
    }

    #[test]
    fn a_fixed_prefetch_is_kept() {
        let s = Sizing::new(4, Some(0));
        s.observe_handler(Duration::from_micros(1));
        s.observe_claim(Duration::from_millis(5));
        assert_eq!(s.capacity(), 4);
        assert_eq!(s.max_capacity(), 4);
        assert_eq!(Sizing::new(4, None).max_capacity(), 4 + MAX_PREFETCH);
    }

    #[test]
    fn the_average_follows_the_samples() {
        let s = Sizing::new(2, None);
        s.observe_handler(Duration::from_millis(8));
        assert_eq!(s.handler_ns.load(Ordering::Relaxed), 8_000_000);
        for _ in 0..100 {
            s.observe_handler(Duration::from_micros(10));
        }
        let h = s.handler_ns.load(Ordering::Relaxed);
        assert!((10_000..12_000).contains(&h), "{h}");
    }
}
