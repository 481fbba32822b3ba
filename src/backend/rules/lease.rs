//! Claims and the end of an attempt: complete, fail (retry or dead letter), extend, release,
//! and expiry.

use super::{ms, Change};
use crate::model::backoff::Backoff;
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Execution, Job, JobStatus, LeaseState};
use crate::model::types::Retry;

/// The error of an attempt whose lease ran out.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";
/// The error of an attempt lost with the process that ran it (crash recovery).
pub(crate) const PROCESS_LOST: &str = "lost when the process stopped";

/// A result is stored with the job: it obeys the payload limit.
pub(crate) fn check_result(payload_limit: usize, result: Option<&Vec<u8>>) -> Result<()> {
    match result {
        Some(r) if r.len() > payload_limit => Err(Error::PayloadTooLarge {
            what: "result",
            size: r.len(),
            limit: payload_limit,
        }),
        _ => Ok(()),
    }
}

/// Whether a token holds a job's lease (see [`check_lease`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseCheck {
    /// The token holds the lease: the outcome may proceed.
    Held,
    /// The job is not running or another token holds it: `STALE_LEASE`, nothing changes.
    Stale,
    /// The token held a lease that has run out at `now`: the backend fails the attempt
    /// ([`fail`] with [`LEASE_EXPIRED`] and [`Retry::Backoff`]), commits that, and answers
    /// `STALE_LEASE`.
    Expired,
}

/// Checks `token` against `job`'s lease at `now`.
pub(crate) fn check_lease(job: &Job, token: u64, now: i64) -> LeaseCheck {
    match job
        .lease
        .as_ref()
        .filter(|_| job.status == JobStatus::Running)
    {
        Some(l) if l.token != token => LeaseCheck::Stale,
        Some(l) if l.expires_ms <= now => LeaseCheck::Expired,
        Some(_) => LeaseCheck::Held,
        None => LeaseCheck::Stale,
    }
}

/// Pending `old` claimed at `now` by `worker_id` with fencing token `token` for `lease_ms`:
/// running, one more attempt, a new execution entry; appends `job.started`.
pub(crate) fn claim(old: Job, now: i64, token: u64, lease_ms: u64, worker_id: &str) -> Change {
    let at = to_datetime(now);
    let mut job = old;
    job.status = JobStatus::Running;
    job.attempts = job.attempts.saturating_add(1);
    job.started_at = Some(at);
    job.updated_at = at;
    job.lease = Some(LeaseState {
        token,
        expires_ms: now.saturating_add(ms(lease_ms)),
    });
    job.push_execution(Execution {
        attempt_number: job.attempts,
        started_at: at,
        completed_at: None,
        duration_ms: None,
        success: None,
        error: None,
        worker_id: Some(worker_id.to_owned()),
        released: false,
    });
    let started = Event::JobStarted {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        started_at: at,
    };
    Change {
        job,
        events: vec![started],
    }
}

/// Closes the current execution entry (if still open) at `now`.
fn end_execution(job: &mut Job, now: i64, success: Option<bool>, error: Option<String>) {
    if let Some(e) = job.executions.last_mut() {
        if e.completed_at.is_none() {
            e.completed_at = Some(to_datetime(now));
            e.duration_ms = Some(u64::try_from(now - e.started_at.timestamp_millis()).unwrap_or(0));
            e.success = success;
            e.error = error;
        }
    }
}

/// How long the current attempt has run at `now` (0 before it started).
fn attempt_duration(job: &Job, now: i64) -> u64 {
    job.started_at.map_or(0, |s| {
        u64::try_from(now - s.timestamp_millis()).unwrap_or(0)
    })
}

/// Running `old` (its lease checked) completes at `now` with `result`; appends
/// `job.completed`.
pub(crate) fn complete(old: Job, now: i64, result: Option<Vec<u8>>) -> Change {
    let at = to_datetime(now);
    let mut job = old;
    let duration_ms = attempt_duration(&job, now);
    end_execution(&mut job, now, Some(true), None);
    job.status = JobStatus::Completed;
    job.lease = None;
    job.result = result;
    job.updated_at = at;
    job.completed_at = Some(at);
    let completed = Event::JobCompleted {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        duration_ms,
        completed_at: at,
    };
    Change {
        job,
        events: vec![completed],
    }
}

/// The current attempt of running `old` fails at `now` with `error`: `job.failed`, then
/// either a retry (pending again after the backoff, `job.retrying`) or, with no attempt
/// left, `dead_letter` (`job.dead_lettered`); [`Retry::Never`] makes it `failed` at once.
///
/// The backoff is the job's own (else `default_backoff`) for its attempt count; `unit`
/// draws the jitter sample in `[0, 1)`, only when a backoff is computed.
pub(crate) fn fail(
    old: Job,
    now: i64,
    error: String,
    retry: Retry,
    default_backoff: &Backoff,
    unit: impl FnOnce() -> f64,
) -> Change {
    let at = to_datetime(now);
    let mut job = old;
    end_execution(&mut job, now, Some(false), Some(error.clone()));
    job.lease = None;
    job.updated_at = at;
    job.last_error = Some(error.clone());
    let exhausted = job.attempts >= job.max_attempts;
    let will_retry = retry != Retry::Never && !exhausted;
    let mut events = vec![Event::JobFailed {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        error: error.clone(),
        will_retry,
        failed_at: at,
    }];
    if will_retry {
        let backoff_ms = match retry {
            Retry::After(d) => u64::try_from(d.as_millis())
                .unwrap_or(u64::MAX)
                .min(crate::model::limits::MAX_DELAY_MS),
            _ => job
                .backoff
                .unwrap_or(*default_backoff)
                .delay_ms(job.attempts, unit()),
        };
        let next = to_datetime(now.saturating_add(ms(backoff_ms)));
        job.status = JobStatus::Pending;
        job.scheduled_at = Some(next);
        events.push(Event::JobRetrying {
            job_id: job.id,
            kind: job.kind.clone(),
            attempt: job.attempts,
            next_attempt_at: next,
            backoff_ms,
        });
    } else {
        job.completed_at = Some(at);
        if retry == Retry::Never {
            job.status = JobStatus::Failed;
        } else {
            job.status = JobStatus::DeadLetter;
            events.push(Event::JobDeadLettered {
                job_id: job.id,
                kind: job.kind.clone(),
                attempts: job.attempts,
                last_error: error,
                dead_lettered_at: at,
            });
        }
    }
    Change { job, events }
}

/// Running `old` (its lease checked) keeps its lease `lease_ms` from `now`; no event.
pub(crate) fn extend(old: Job, now: i64, token: u64, lease_ms: u64) -> Job {
    let mut job = old;
    job.lease = Some(LeaseState {
        token,
        expires_ms: now.saturating_add(ms(lease_ms)),
    });
    job
}

/// Running `old` (its lease checked) gives its job back at `now`: pending again, the
/// attempt not counted, its execution entry marked released; appends `job.released`.
pub(crate) fn release(old: Job, now: i64) -> Change {
    let at = to_datetime(now);
    let attempt = old.attempts;
    let duration_ms = attempt_duration(&old, now);
    let mut job = old;
    if let Some(e) = job.executions.last_mut() {
        e.completed_at = Some(at);
        e.duration_ms = Some(duration_ms);
        e.released = true;
    }
    job.status = JobStatus::Pending;
    job.attempts = job.attempts.saturating_sub(1);
    job.lease = None;
    job.updated_at = at;
    let released = Event::JobReleased {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt,
        released_at: at,
    };
    Change {
        job,
        events: vec![released],
    }
}
