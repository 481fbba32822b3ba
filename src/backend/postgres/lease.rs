//! Claims and the end of an attempt: complete, fail (retry or dead letter), extend, release,
//! and lease expiry. Each runs inside one [`Ctx`] (one transaction).

use super::conn::Pg;
use super::tx::{job_from_row, Ctx};
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Execution, Job, JobId, JobStatus, LeaseState};
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

/// Most delayed jobs one transaction moves to ready.
const STAGE_CHUNK: i64 = 1000;

pub(super) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Moves delayed jobs that are due to ready (state 1 to 0), at most [`STAGE_CHUNK`].
pub(super) fn stage_due(ctx: &mut Ctx<'_, '_>) -> Result<u64> {
    let rows = ctx
        .t
        .query(
            &ctx.sh.sql(
                "UPDATE @.job SET state = 0 WHERE id IN ( \
                   SELECT id FROM @.job WHERE state = 1 AND run_at <= $1 \
                   ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING queue",
            ),
            &[&ctx.now, &STAGE_CHUNK],
        )
        .pg("staging due jobs")?;
    for r in &rows {
        let q: String = r.get(0);
        ctx.count(&q, 1, -1);
        ctx.count(&q, 0, 1);
    }
    if !rows.is_empty() {
        ctx.wake = true;
    }
    Ok(rows.len() as u64)
}

/// The filter of a claim request over `@.job AS j` ($1 queues, $2 excluded, $3 kinds).
pub(super) const REQ_FILTER: &str = "(cardinality($1::text[]) = 0 OR j.queue = ANY($1)) \
     AND NOT (j.queue = ANY($2::text[])) \
     AND (cardinality($3::text[]) = 0 OR j.kind = ANY($3))";

pub(super) fn claim(ctx: &mut Ctx<'_, '_>, req: &ClaimRequest) -> Result<Vec<Claimed>> {
    stage_due(ctx)?;
    let max = i64::try_from(req.max).unwrap_or(i64::MAX);
    // The CTE (materialized: it locks) picks the rows; a token is drawn for each of them.
    let rows = ctx
        .t
        .query_planned(
            &ctx.sh.sql(&format!(
                "WITH c AS (SELECT j.id, j.record, j.payload, j.priority, j.run_at, j.seq \
                   FROM @.job AS j \
                   WHERE j.state = 0 AND {REQ_FILTER} \
                     AND NOT EXISTS (SELECT 1 FROM @.queue AS p \
                                     WHERE p.name = j.queue AND p.paused) \
                   ORDER BY j.priority DESC, j.run_at, j.seq LIMIT $4 \
                   FOR UPDATE OF j SKIP LOCKED) \
                 SELECT id, record, payload, nextval('@.lease_token') AS token FROM c \
                 ORDER BY priority DESC, run_at, seq"
            )),
            &[&req.queues, &req.exclude_queues, &req.kinds, &max],
        )
        .pg("claiming jobs")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let old = job_from_row(row, true)?;
        let token = u64::try_from(row.get::<_, i64>("token")).unwrap_or(0);
        let mut job = old;
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.started_at = Some(ctx.at());
        job.updated_at = ctx.at();
        ctx.emit(Event::JobStarted {
            job_id: job.id,
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
        ctx.put(0, job.clone());
        out.push(Claimed {
            lease: Lease::new(job.id, token),
            job,
        });
    }
    Ok(out)
}

/// Whether `token` holds the lease of `job`: `Ok` when it does; `Err(STALE_LEASE)` when it
/// does not. A lease found expired is expired on the spot (a failed attempt, staged in
/// `ctx`) before `STALE_LEASE` is returned, so the caller must still commit.
pub(super) fn check_lease(ctx: &mut Ctx<'_, '_>, job: &Job, token: u64) -> Result<()> {
    let stale = || Error::StaleLease {
        id: job.id.to_string(),
    };
    let Some(lease) = job
        .lease
        .as_ref()
        .filter(|_| job.status == JobStatus::Running)
    else {
        return Err(stale());
    };
    if lease.token != token {
        return Err(stale());
    }
    if lease.expires_ms <= ctx.now {
        fail_attempt(ctx, job.clone(), "lease expired".into(), Retry::Backoff);
        return Err(stale());
    }
    Ok(())
}

/// The running job `id`, locked, if `token` holds its lease (see [`check_lease`]).
pub(super) fn leased(ctx: &mut Ctx<'_, '_>, id: JobId, token: u64) -> Result<Job> {
    let Some((_, job)) = ctx.load_locked(&[id], false)?.pop() else {
        return Err(Error::StaleLease { id: id.to_string() });
    };
    check_lease(ctx, &job, token)?;
    Ok(job)
}

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

fn attempt_duration(job: &Job, now: i64) -> u64 {
    job.started_at.map_or(0, |s| {
        u64::try_from(now - s.timestamp_millis()).unwrap_or(0)
    })
}

/// Completes running `old` (its lease checked by the caller).
pub(super) fn complete_leased(ctx: &mut Ctx<'_, '_>, old: Job, result: Option<Vec<u8>>) -> Job {
    let mut job = old;
    let duration_ms = attempt_duration(&job, ctx.now);
    end_execution(&mut job, ctx.now, Some(true), None);
    job.status = JobStatus::Completed;
    job.lease = None;
    job.result = result;
    job.updated_at = ctx.at();
    job.completed_at = Some(ctx.at());
    ctx.emit(Event::JobCompleted {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        duration_ms,
        completed_at: ctx.at(),
    });
    ctx.put(2, job.clone());
    job
}

/// Ends the current attempt of running `old` as failed: retry, `failed` or `dead_letter`.
pub(super) fn fail_attempt(ctx: &mut Ctx<'_, '_>, old: Job, error: String, retry: Retry) -> Job {
    let mut job = old;
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
                let b = job.backoff.unwrap_or(ctx.sh.cfg.default_backoff);
                b.delay_ms(job.attempts, ctx.sh.unit())
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
    ctx.put(2, job.clone());
    job
}

pub(super) fn extend(ctx: &mut Ctx<'_, '_>, old: Job, token: u64, lease_ms: u64) -> Job {
    let mut job = old;
    job.lease = Some(LeaseState {
        token,
        expires_ms: ctx.now.saturating_add(ms(lease_ms)),
    });
    ctx.put(2, job.clone());
    job
}

pub(super) fn release(ctx: &mut Ctx<'_, '_>, old: Job) -> Job {
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
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: old.attempts,
        released_at: ctx.at(),
    });
    ctx.put(2, job.clone());
    job
}

/// Fails the attempt of every running job among `rows` (already locked) with `why`.
pub(super) fn expire_rows(ctx: &mut Ctx<'_, '_>, rows: &[postgres::Row], why: &str) -> Result<u64> {
    let mut jobs = Vec::with_capacity(rows.len());
    for r in rows {
        let j = job_from_row(r, false)?;
        if j.status == JobStatus::Running {
            jobs.push(j);
        }
    }
    let n = jobs.len() as u64;
    for j in jobs {
        fail_attempt(ctx, j, why.to_owned(), Retry::Backoff);
    }
    Ok(n)
}
