//! Retry backoff: how long a failed attempt waits before the next one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::error::Error;
use crate::model::limits::MAX_DELAY_MS;

/// Retry backoff: `initial * multiplier^(attempt-1)`, capped at `max`, with ± `jitter`.
///
/// ```
/// use jobspool::Backoff;
/// use std::time::Duration;
/// let b = Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30), ..Backoff::default() };
/// assert_eq!(b.base_delay(3), Duration::from_secs(2));        // 500 ms x 2 x 2
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the second attempt. Default = 1 s.
    pub initial: Duration,
    /// Growth factor per attempt, 1..=100. Default = 2.0.
    pub multiplier: f64,
    /// Upper bound of the delay, at most 10 years. Default = 60 s.
    pub max: Duration,
    /// Relative jitter, 0.0..=1.0 (0.2 = ±20%). Default = 0.2.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based) failed, before jitter.
    #[must_use]
    pub fn base_delay(&self, attempt: u32) -> Duration {
        Duration::from_millis(self.base_delay_ms(attempt))
    }

    /// The delay with jitter applied, `unit` being a uniform sample in `[0, 1)`.
    #[must_use]
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        Duration::from_millis(self.delay_ms(attempt, unit))
    }

    fn base_delay_ms(&self, attempt: u32) -> u64 {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let raw = (millis(self.initial) as f64) * self.multiplier.powi(exp);
        if raw.is_finite() {
            // Float to int saturates; the cap keeps it in range.
            (raw as u64).min(millis(self.max))
        } else {
            millis(self.max)
        }
    }

    pub(crate) fn delay_ms(&self, attempt: u32, unit: f64) -> u64 {
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
        if self.max < self.initial {
            return Err(Error::invalid(
                "backoff max must be at least its initial delay",
            ));
        }
        if millis(self.max) > MAX_DELAY_MS {
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
        assert_eq!(b.base_delay(1), Duration::from_secs(1));
        assert_eq!(b.base_delay(2), Duration::from_secs(2));
        assert_eq!(b.base_delay(3), Duration::from_secs(4));
        assert_eq!(b.base_delay(7), Duration::from_secs(60));
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.0), 800);
        assert_eq!(b.delay_ms(1, 0.5), 1000);
        assert!(b.delay_ms(1, 0.999_999) <= 1200);
    }
}
