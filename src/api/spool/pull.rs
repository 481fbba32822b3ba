//! The pull API of [`Spool`]: claim jobs under a [`Lease`] and report each attempt's outcome
//! with it. The worker pool is built on the same calls.

use std::time::Duration;

use super::Spool;
use crate::model::error::Result;
use crate::model::job::Job;
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

impl Spool {
    /// Claims up to `req.max` ready jobs, in claim order, each under a lease (pull API).
    ///
    /// # Errors
    /// `STORAGE`, `SHUTTING_DOWN`.
    pub fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        self.inner.backend().claim(req)
    }

    /// As [`Spool::claim`], but waits up to `timeout` for work to appear; wakes as soon as a
    /// job is enqueued or a delayed one becomes due (no polling).
    ///
    /// # Errors
    /// As [`Spool::claim`].
    pub fn claim_wait(&self, req: &ClaimRequest, timeout: Duration) -> Result<Vec<Claimed>> {
        self.inner.engine.claim_wait(req, timeout)
    }

    /// A claim request for `max` jobs of any queue and type with the default lease.
    #[must_use]
    pub fn claim_request(&self, max: usize) -> ClaimRequest {
        ClaimRequest {
            queues: Vec::new(),
            exclude_queues: Vec::new(),
            kinds: Vec::new(),
            max,
            lease_ms: u64::try_from(self.inner.cfg.default_lease.as_millis()).unwrap_or(u64::MAX),
            worker_id: format!("pid-{}", std::process::id()),
        }
    }

    /// Whether anything `req` could claim (its queues and types, delayed jobs included) is
    /// pending or running.
    #[must_use]
    pub fn has_work(&self, req: &ClaimRequest) -> bool {
        self.inner.backend().has_work(req)
    }

    /// Marks a claimed job completed, storing `result`.
    ///
    /// # Errors
    /// `STALE_LEASE` when `lease` no longer holds (nothing changes), `PAYLOAD_TOO_LARGE`
    /// for a result over the limit, `JOB_NOT_FOUND`.
    pub fn complete(&self, lease: Lease, result: Option<Vec<u8>>) -> Result<Job> {
        self.inner
            .backend()
            .complete(lease.job_id, lease.token, result)
    }

    /// Ends a claimed job's attempt as failed: retried per `retry` and the job's backoff,
    /// dead-lettered when attempts are exhausted, `failed` for [`Retry::Never`].
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn fail(&self, lease: Lease, error: impl Into<String>, retry: Retry) -> Result<Job> {
        self.inner
            .backend()
            .fail(lease.job_id, lease.token, error.into(), retry)
    }

    /// Extends a claimed job's lease to now + `by`.
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn extend_lease(&self, lease: Lease, by: Duration) -> Result<Job> {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.inner.backend().extend(lease.job_id, lease.token, ms)
    }

    /// Hands a claimed job back to pending without counting the attempt.
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn release(&self, lease: Lease) -> Result<Job> {
        self.inner.backend().release(lease.job_id, lease.token)
    }

    /// Fails every attempt whose lease expired (the maintenance thread calls this each tick).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn expire_leases(&self) -> Result<usize> {
        let n = self.inner.backend().expire_leases()?;
        self.inner.engine.count_lease_expiries(n);
        Ok(n)
    }
}
