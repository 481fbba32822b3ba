//! [`Activity`]: what one process's spool has done since it opened, for metrics endpoints.

use std::collections::BTreeMap;

/// Upper bounds, in seconds, of the buckets of [`Activity::handler_seconds`] (the last
/// bucket, `+Inf`, is implicit).
pub const HANDLER_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Counters since this process opened the spool (they start at zero in each process; the
/// queue's totals are in [`crate::Stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Activity {
    /// Durable events seen, by event name (`job.enqueued`, `job.completed`, `job.failed`,
    /// `job.retrying`, `job.dead_lettered`, ...).
    pub events: BTreeMap<&'static str, u64>,
    /// Attempts failed because their lease expired (their worker stopped renewing it).
    pub lease_expiries: u64,
    /// How long the worker pool's handlers ran, by outcome (`completed`, `failed`,
    /// `panicked`).
    pub handler_seconds: BTreeMap<&'static str, Histogram>,
}

/// Observations in buckets, as a Prometheus histogram counts them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Histogram {
    /// Observations at most each bound of [`HANDLER_BUCKETS`] (cumulative, one per bound).
    pub buckets: Vec<u64>,
    /// All observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl Histogram {
    /// Adds one observation of `value`.
    pub fn observe(&mut self, value: f64) {
        if self.buckets.len() != HANDLER_BUCKETS.len() {
            self.buckets = vec![0; HANDLER_BUCKETS.len()];
        }
        for (n, bound) in self.buckets.iter_mut().zip(HANDLER_BUCKETS) {
            if value <= bound {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(100.0);
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], 0);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[6], 2);
        assert_eq!(h.buckets[11], 2);
        assert!((h.sum - 100.203).abs() < 1e-9);
    }
}
