//! Claiming with a wait: a claimer that found nothing sleeps until the backend reports
//! work (through the notifier), a delayed job it could claim is due, or its deadline.

use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::model::error::Result;
use crate::model::types::{ClaimRequest, Claimed};

impl Engine {
    /// The work epoch: read it before claiming, and hand it to [`Engine::wait_for_work`]
    /// when the claim found nothing, so work that arrives in between is not missed.
    pub fn work_epoch(&self) -> u64 {
        self.notifier.epoch()
    }

    /// Blocks until work may have become claimable since `epoch` was read, a delayed job
    /// one of `reqs` could claim is due, the engine closes, or `deadline`.
    pub fn wait_for_work(&self, epoch: u64, reqs: &[ClaimRequest], deadline: Instant) {
        let mut until = deadline;
        let now_ms = self.clock.now_ms();
        for req in reqs {
            // An error here shows again on the next claim; wait for the deadline meanwhile.
            if let Ok(Some(due)) = self.backend.next_due_ms(req) {
                let ms = u64::try_from(due.saturating_sub(now_ms))
                    .unwrap_or(0)
                    .max(1);
                until = until.min(Instant::now() + Duration::from_millis(ms));
            }
        }
        self.notifier.wait(epoch, until);
    }

    /// Claims up to `req.max` jobs, waiting up to `timeout` for work to appear; wakes as
    /// soon as a job is enqueued or a delayed one becomes due (no polling).
    ///
    /// # Errors
    /// As the backend's claim.
    pub fn claim_wait(&self, req: &ClaimRequest, timeout: Duration) -> Result<Vec<Claimed>> {
        let deadline = Instant::now() + timeout;
        loop {
            let epoch = self.work_epoch();
            let claimed = self.backend.claim(req)?;
            if !claimed.is_empty() || Instant::now() >= deadline {
                return Ok(claimed);
            }
            self.wait_for_work(epoch, std::slice::from_ref(req), deadline);
        }
    }
}
