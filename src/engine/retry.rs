//! How background loops (maintenance, the scheduler, a worker pool's dispatcher) live
//! through failures: a failed pass is logged as a `tracing` warning and retried after a
//! wait that doubles from [`FIRST`] to [`LAST`], and a pass that succeeds resets it.
//!
//! A loop stops only when it is told to (or its spool is closing): a storage error may be
//! passing (a PostgreSQL server restarting, a dropped connection), and a backend that failed
//! for good (sled after a failed write) keeps answering the same error, cheaply, to every
//! caller, so retrying it every few seconds costs nothing and hides nothing.

use std::time::Duration;

use crate::model::error::Error;

/// The wait after the first failure.
pub(crate) const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub(crate) const LAST: Duration = Duration::from_secs(5);

/// The wait before a background loop's next attempt.
#[derive(Debug)]
pub(crate) struct ErrorBackoff {
    next: Duration,
}

impl Default for ErrorBackoff {
    fn default() -> Self {
        ErrorBackoff { next: FIRST }
    }
}

impl ErrorBackoff {
    /// A pass succeeded: the next failure waits [`FIRST`] again.
    pub(crate) fn succeeded(&mut self) {
        self.next = FIRST;
    }

    /// A pass of `task` failed with `e`: logs it and returns how long to wait before the
    /// next attempt.
    pub(crate) fn failed(&mut self, task: &'static str, e: &Error) -> Duration {
        let wait = self.next;
        tracing::warn!(task, error = %e, retry_in_ms = wait.as_millis() as u64, "jobspool: background task failed; retrying");
        self.next = (self.next * 2).min(LAST);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_a_success_resets_them() {
        let mut b = ErrorBackoff::default();
        let e = Error::ShuttingDown;
        let waits: Vec<_> = (0..8).map(|_| b.failed("test", &e)).collect();
        assert_eq!(waits[0], FIRST);
        assert_eq!(waits[1], FIRST * 2);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), LAST);
        b.succeeded();
        assert_eq!(b.failed("test", &e), FIRST);
    }
}
