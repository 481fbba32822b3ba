//! Retry backoff: how long a failed attempt waits before the next one.

use serde::{Deserialize, Serialize};

use crate::model::error::Error;
use crate::model::limits::MAX_DELAY_MS;

/// Retry backoff: `initial * multiplier^(attempt-1)`, capped at `max`, with ± `jitter`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the second attempt, in milliseconds. Default = 1000.
    pub initial_ms: u64,
    /// Growth factor per attempt. Default = 2.0.
    pub multiplier: f64,
    /// Upper bound of the delay, in milliseconds. Default = 60000.
    pub max_ms: u64,
    /// Relative jitter, 0.0..=1.0 (0.2 = ±20%). Default = 0.2.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 1000,
            multiplier: 2.0,
            max_ms: 60_000,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based) failed, before jitter.
    #[must_use]
    pub fn base_delay_ms(&self, attempt: u32) -> u64 {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let raw = (self.initial_ms as f64) * self.multiplier.powi(exp);
        if raw.is_finite() {
            // Float to int saturates; the cap keeps it in range.
            (raw as u64).min(self.max_ms)
        } else {
            self.max_ms
        }
    }

    /// The delay with jitter applied, `unit` being a uniform sample in `[0, 1)`.
    #[must_use]
    pub fn delay_ms(&self, attempt: u32, unit: f64) -> u64 {
        let base = self.base_delay_ms(attempt) as f64;
        let spread = base * self.jitter * (unit * 2.0 - 1.0);
        (base + spread).max(0.0).round() as u64
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0 && self.multiplier <= 100.0) {
            return Err(Error::invalid(
                "backoff multiplier must be between 1 and 100",
            ));
        }
        if !(self.jitter.is_finite() && (0.0..=1.0).contains(&self.jitter)) {
            return Err(Error::invalid("backoff jitter must be between 0 and 1"));
        }
        if self.max_ms < self.initial_ms {
            return Err(Error::invalid(
                "backoff max must be at least its initial delay",
            ));
        }
        if self.max_ms > MAX_DELAY_MS {
            return Err(Error::invalid("backoff max must be at most 10 years"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_doubles_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.base_delay_ms(1), 1000);
        assert_eq!(b.base_delay_ms(2), 2000);
        assert_eq!(b.base_delay_ms(3), 4000);
        assert_eq!(b.base_delay_ms(7), 60_000);
        assert_eq!(b.base_delay_ms(u32::MAX), 60_000);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.0), 800);
        assert_eq!(b.delay_ms(1, 0.5), 1000);
        assert!(b.delay_ms(1, 0.999_999) <= 1200);
    }
}
