//! Claims and the end of an attempt: complete, fail (retry or dead-letter), release, and
//! lease expiry. What each does to the job is `backend::rules`; this reads and stages.

use super::Ctx;
use crate::backend::codec::{self, keys};
use crate::backend::rules::{self, LeaseCheck};
use crate::model::error::{Error, Result};
use crate::model::job::{Job, JobId, JobStatus};
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

/// Most claim answers allocated up front (a larger `max` grows as jobs are found).
const CLAIM_PREALLOC: usize = 2048;

pub(super) fn claim(ctx: &mut Ctx<'_>, req: &ClaimRequest) -> Result<Vec<Claimed>> {
    ctx.st.promote(ctx.now);
    // Sized up front: each `Claimed` carries a whole job, and a pool claims up to 2048 at
    // once (growing the vector would copy them over and over).
    let mut out = Vec::with_capacity(req.max.min(CLAIM_PREALLOC));
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
        // The fencing token is the sequence number of the claim's `job.started` event,
        // the first (and only) event it appends.
        let token = ctx.st.next_seq;
        let change = rules::claim(old.clone(), ctx.now, token, req.lease_ms, &req.worker_id);
        let mut job = ctx.stage(Some(&old), change);
        debug_assert_eq!(ctx.st.next_seq, token + 1, "a claim appends one event");
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
    match rules::check_lease(&job, token, ctx.now) {
        LeaseCheck::Held => Ok(job),
        LeaseCheck::Stale => Err(Error::StaleLease { id: id.to_string() }),
        LeaseCheck::Expired => {
            fail_attempt(ctx, job, rules::LEASE_EXPIRED.into(), Retry::Backoff);
            Err(Error::StaleLease { id: id.to_string() })
        }
    }
}

pub(super) fn complete(
    ctx: &mut Ctx<'_>,
    id: JobId,
    token: u64,
    result: Option<Vec<u8>>,
) -> Result<Job> {
    let (old, change) = completion(ctx, id, token, result)?;
    Ok(ctx.stage(Some(&old), change))
}

/// [`complete`] for a completion nobody waits for (the pool's batches): the new record is
/// staged without a copy for an answer.
pub(super) fn complete_unanswered(
    ctx: &mut Ctx<'_>,
    id: JobId,
    token: u64,
    result: Option<Vec<u8>>,
) -> Result<()> {
    let (old, change) = completion(ctx, id, token, result)?;
    ctx.stage_unanswered(Some(&old), change);
    Ok(())
}

/// The running job `id` (its lease checked) and its completion, not staged yet.
fn completion(
    ctx: &mut Ctx<'_>,
    id: JobId,
    token: u64,
    result: Option<Vec<u8>>,
) -> Result<(Job, rules::Change)> {
    rules::check_result(ctx.cfg.payload_limit, result.as_ref())?;
    let old = leased(ctx, id, token)?;
    let change = rules::complete(old.clone(), ctx.now, result);
    Ok((old, change))
}

/// Ends the current attempt of running `old` as failed: retry, `failed` or `dead_letter`.
pub(super) fn fail_attempt(ctx: &mut Ctx<'_>, old: Job, error: String, retry: Retry) -> Job {
    let st = &mut *ctx.st;
    let change = rules::fail(
        old.clone(),
        ctx.now,
        error,
        retry,
        &ctx.cfg.default_backoff,
        || st.unit(),
    );
    ctx.stage(Some(&old), change)
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
    let change = rules::release(old.clone(), ctx.now);
    Ok(ctx.stage(Some(&old), change))
}
