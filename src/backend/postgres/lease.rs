//! Claims and the end of an attempt: complete, fail (retry or dead letter), extend, release,
//! and lease expiry. Each runs inside one [`Ctx`] (one transaction).

use super::conn::Pg;
use super::tx::{job_from_row, Ctx};
use crate::backend::rules::{self, LeaseCheck};
use crate::model::error::{Error, Result};
use crate::model::job::{Job, JobId, JobStatus};
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

/// Most delayed jobs one transaction moves to ready.
pub(super) const STAGE_CHUNK: u64 = 1000;

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
            &[&ctx.now, &(STAGE_CHUNK as i64)],
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

/// A claim request's lists as [`REQ_FILTER`]'s parameters ($1 queues, $2 excluded, $3
/// kinds), or `None` when the request matches no row. A name holding U+0000 matches no job
/// (PostgreSQL's text cannot hold one, and it would refuse the parameter), so it is left
/// out of its list; a list of such names only matches nothing.
pub(super) struct ReqLists<'a> {
    pub queues: Vec<&'a str>,
    pub exclude: Vec<&'a str>,
    pub kinds: Vec<&'a str>,
}

impl<'a> ReqLists<'a> {
    pub fn of(req: &'a ClaimRequest) -> Option<Self> {
        let keep = |v: &'a [String]| -> Option<Vec<&'a str>> {
            let kept: Vec<&str> = v
                .iter()
                .map(String::as_str)
                .filter(|s| !s.contains('\0'))
                .collect();
            (kept.is_empty() == v.is_empty()).then_some(kept)
        };
        Some(ReqLists {
            queues: keep(&req.queues)?,
            exclude: keep(&req.exclude_queues).unwrap_or_default(),
            kinds: keep(&req.kinds)?,
        })
    }
}

pub(super) fn claim(ctx: &mut Ctx<'_, '_>, req: &ClaimRequest) -> Result<Vec<Claimed>> {
    stage_due(ctx)?;
    let Some(lists) = ReqLists::of(req) else {
        return Ok(Vec::new());
    };
    let max = i64::try_from(req.max).unwrap_or(i64::MAX);
    // The claim must read the claim index in order and stop after `max` rows, whatever the
    // table's statistics say. A table that filled faster than autovacuum analyzes it (a
    // backlog arriving in seconds) has estimates of a few hundred rows, and the planner then
    // sorts every ready row instead: 118 ms instead of 6 ms for 1,500 of 50,000 rows, on
    // every claim until the next ANALYZE. (Reset after the statement. JIT off: the
    // settings raise the plan's cost estimate past `jit_above_cost`, and compiling it took
    // 209 ms.)
    ctx.t
        .batch_execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
             SET LOCAL enable_sort = off; SET LOCAL jit = off",
        )
        .pg("claiming jobs")?;
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
            &[&lists.queues, &lists.exclude, &lists.kinds, &max],
        )
        .pg("claiming jobs")?;
    ctx.t
        .batch_execute(
            "SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT; \
             SET LOCAL enable_sort TO DEFAULT",
        )
        .pg("claiming jobs")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let old = job_from_row(row, true)?;
        let token = u64::try_from(row.get::<_, i64>("token")).unwrap_or(0);
        let change = rules::claim(old, ctx.now, token, req.lease_ms, &req.worker_id);
        let job = ctx.stage(0, change);
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
    match rules::check_lease(job, token, ctx.now) {
        LeaseCheck::Held => Ok(()),
        LeaseCheck::Stale => Err(stale()),
        LeaseCheck::Expired => {
            fail_attempt(
                ctx,
                job.clone(),
                rules::LEASE_EXPIRED.into(),
                Retry::Backoff,
            );
            Err(stale())
        }
    }
}

/// The running job `id`, locked, if `token` holds its lease (see [`check_lease`]);
/// `JOB_NOT_FOUND` when there is no such job, as on sled.
pub(super) fn leased(ctx: &mut Ctx<'_, '_>, id: JobId, token: u64) -> Result<Job> {
    let (_, job) = ctx.must_locked(id, false)?;
    check_lease(ctx, &job, token)?;
    Ok(job)
}

/// Completes running `old` (its lease checked by the caller).
pub(super) fn complete_leased(ctx: &mut Ctx<'_, '_>, old: Job, result: Option<Vec<u8>>) -> Job {
    let change = rules::complete(old, ctx.now, result);
    ctx.stage(2, change)
}

/// Ends the current attempt of running `old` as failed: retry, `failed` or `dead_letter`.
pub(super) fn fail_attempt(ctx: &mut Ctx<'_, '_>, old: Job, error: String, retry: Retry) -> Job {
    let sh = ctx.sh;
    let change = rules::fail(old, ctx.now, error, retry, &sh.cfg.default_backoff, || {
        sh.unit()
    });
    ctx.stage(2, change)
}

pub(super) fn extend(ctx: &mut Ctx<'_, '_>, old: Job, token: u64, lease_ms: u64) -> Job {
    let job = rules::extend(old, ctx.now, token, lease_ms);
    ctx.put(2, job.clone());
    job
}

pub(super) fn release(ctx: &mut Ctx<'_, '_>, old: Job) -> Job {
    let change = rules::release(old, ctx.now);
    ctx.stage(2, change)
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
