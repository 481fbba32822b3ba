//! Claims and the end of an attempt: complete, fail (retry or dead-letter), release, and
//! lease expiry.

use super::{ms, Ctx};
use crate::backend::codec::{self, keys};
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Execution, Job, JobId, JobStatus, LeaseState};
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

pub(super) fn claim(ctx: &mut Ctx<'_>, req: &ClaimRequest) -> Result<Vec<Claimed>> {
    ctx.st.promote(ctx.now);
    let mut out = Vec::new();
    while out.len() < req.max {
        let Some(id) = ctx.st.peek_claimable(req) else {
            break;
        };
        let loaded = ctx.job(id).and_then(|j| Ok((j, ctx.payload(id)?)));
        let (old, payload) = match loaded {
            Ok((Some(j), p)) if j.status == JobStatus::Pending => (j, p),
            // The index and the records disagree: stop here rather than loop. Already
            // claimed jobs are kept; an error is reported only if there are none.
            Ok(_) if !out.is_empty() => break,
            Ok(_) => {
                return Err(Error::Corruption {
                    tree: "jobs",
                    key: codec::show_key(&keys::job(&id)),
                    detail: "indexed as pending but the record is missing or not pending".into(),
                })
            }
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(e),
        };
        let mut job = old.clone();
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.started_at = Some(ctx.at());
        job.updated_at = ctx.at();
        let token = ctx.emit(Event::JobStarted {
            job_id: id,
            kind: job.kind.clone(),
            attempt: job.attempts,
            started_at: ctx.at(),
        });
        job.lease = Some(LeaseState {
            token,
            expires_ms: ctx.now.saturating_add(ms(req.lease_ms)),
        });
        job.push_execution(Execution {
            attempt_number: job.attempts,
            started_at: ctx.at(),
            completed_at: None,
            duration_ms: None,
            success: None,
            error: None,
            worker_id: Some(req.worker_id.clone()),
            released: false,
        });
        ctx.put(Some(&old), job.clone());
        job.payload = payload;
        out.push(Claimed {
            lease: Lease::new(job.id, token),
            job,
        });
    }
    Ok(out)
}

/// The running job `id` if `token` still holds its lease. A lease found expired is expired
/// on the spot (a failed attempt), and the caller gets `STALE_LEASE`.
pub(super) fn leased(ctx: &mut Ctx<'_>, id: JobId, token: u64) -> Result<Job> {
    let job = ctx.job_to_change(id)?;
    let Some(lease) = job
        .lease
        .as_ref()
        .filter(|_| job.status == JobStatus::Running)
    else {
        return Err(Error::StaleLease { id: id.to_string() });
    };
    if lease.token != token {
        return Err(Error::StaleLease { id: id.to_string() });
    }
    if lease.expires_ms <= ctx.now {
        fail_attempt(ctx, job, "lease expired".into(), Retry::Backoff);
        return Err(Error::StaleLease { id: id.to_string() });
    }
    Ok(job)
}

pub(super) fn end_execution(job: &mut Job, now: i64, success: Option<bool>, error: Option<String>) {
    if let Some(e) = job.executions.last_mut() {
        if e.completed_at.is_none() {
            e.completed_at = Some(to_datetime(now));
            e.duration_ms = Some(u64::try_from(now - e.started_at.timestamp_millis()).unwrap_or(0));
            e.success = success;
            e.error = error;
        }
    }
}

pub(super) fn attempt_duration(job: &Job, now: i64) -> u64 {
    job.started_at.map_or(0, |s| {
        u64::try_from(now - s.timestamp_millis()).unwrap_or(0)
    })
}

pub(super) fn complete(
    ctx: &mut Ctx<'_>,
    id: JobId,
    token: u64,
    result: Option<Vec<u8>>,
) -> Result<Job> {
    if let Some(r) = &result {
        if r.len() > ctx.cfg.payload_limit {
            return Err(Error::PayloadTooLarge {
                what: "result",
                size: r.len(),
                limit: ctx.cfg.payload_limit,
            });
        }
    }
    let old = leased(ctx, id, token)?;
    let mut job = old.clone();
    let duration_ms = attempt_duration(&job, ctx.now);
    end_execution(&mut job, ctx.now, Some(true), None);
    job.status = JobStatus::Completed;
    job.lease = None;
    job.result = result;
    job.updated_at = ctx.at();
    job.completed_at = Some(ctx.at());
    ctx.emit(Event::JobCompleted {
        job_id: id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        duration_ms,
        completed_at: ctx.at(),
    });
    ctx.put(Some(&old), job.clone());
    Ok(job)
}

/// Ends the current attempt of running `old` as failed: retry, `failed` or `dead_letter`.
pub(super) fn fail_attempt(ctx: &mut Ctx<'_>, old: Job, error: String, retry: Retry) -> Job {
    let mut job = old.clone();
    let now = ctx.now;
    end_execution(&mut job, now, Some(false), Some(error.clone()));
    job.lease = None;
    job.updated_at = ctx.at();
    job.last_error = Some(error.clone());
    let exhausted = job.attempts >= job.max_attempts;
    let will_retry = retry != Retry::Never && !exhausted;
    ctx.emit(Event::JobFailed {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        error: error.clone(),
        will_retry,
        failed_at: ctx.at(),
    });
    if will_retry {
        let backoff_ms = match retry {
            Retry::After(d) => u64::try_from(d.as_millis())
                .unwrap_or(u64::MAX)
                .min(crate::model::limits::MAX_DELAY_MS),
            _ => {
                let b = job.backoff.unwrap_or(ctx.cfg.default_backoff);
                let unit = ctx.st.unit();
                b.delay_ms(job.attempts, unit)
            }
        };
        let next = now.saturating_add(ms(backoff_ms));
        job.status = JobStatus::Pending;
        job.scheduled_at = Some(to_datetime(next));
        ctx.emit(Event::JobRetrying {
            job_id: job.id,
            kind: job.kind.clone(),
            attempt: job.attempts,
            next_attempt_at: to_datetime(next),
            backoff_ms,
        });
    } else {
        job.completed_at = Some(ctx.at());
        if retry == Retry::Never {
            job.status = JobStatus::Failed;
        } else {
            job.status = JobStatus::DeadLetter;
            ctx.emit(Event::JobDeadLettered {
                job_id: job.id,
                kind: job.kind.clone(),
                attempts: job.attempts,
                last_error: error,
                dead_lettered_at: ctx.at(),
            });
        }
    }
    ctx.put(Some(&old), job.clone());
    job
}

pub(super) fn expire(ctx: &mut Ctx<'_>, ids: &[JobId], why: &str) -> Result<u64> {
    // Load all first so a read failure leaves the group untouched.
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(j) = ctx.job(*id)?.filter(|j| j.status == JobStatus::Running) {
            jobs.push(j);
        }
    }
    let n = jobs.len() as u64;
    for job in jobs {
        fail_attempt(ctx, job, why.to_owned(), Retry::Backoff);
    }
    Ok(n)
}

pub(super) fn release(ctx: &mut Ctx<'_>, id: JobId, token: u64) -> Result<Job> {
    let old = leased(ctx, id, token)?;
    let mut job = old.clone();
    if let Some(e) = job.executions.last_mut() {
        e.completed_at = Some(ctx.at());
        e.duration_ms = Some(attempt_duration(&old, ctx.now));
        e.released = true;
    }
    job.status = JobStatus::Pending;
    job.attempts = job.attempts.saturating_sub(1);
    job.lease = None;
    job.updated_at = ctx.at();
    ctx.emit(Event::JobReleased {
        job_id: id,
        kind: job.kind.clone(),
        attempt: old.attempts,
        released_at: ctx.at(),
    });
    ctx.put(Some(&old), job.clone());
    Ok(job)
}
