//! Maintenance and the operations on many jobs: lease expiry, recovery of dead processes'
//! jobs, redrive, prune, pause/resume. Every one is safe with many processes running it at
//! once: rows are taken with `SKIP LOCKED`, or the work is idempotent.

use super::conn::Pg;
use super::lease::expire_rows;
use super::tx::{codes_of, job_from_row, Ctx};
use crate::backend::rules::{self, RedrivePicker};
use crate::model::config::Retention;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::job::{Job, JobId};
use crate::model::types::RedriveTarget;

/// Most jobs one maintenance transaction touches, so transactions stay short.
pub(super) const CHUNK: i64 = 5_000;

pub(super) fn expire_leases(ctx: &mut Ctx<'_, '_>) -> Result<u64> {
    let rows = ctx
        .t
        .query(
            &ctx.sh.sql(
                "SELECT id, record FROM @.job WHERE state = 2 AND lease_expires <= $1 \
                 ORDER BY lease_expires, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            ),
            &[&ctx.now, &CHUNK],
        )
        .pg("expiring leases")?;
    expire_rows(ctx, &rows, rules::LEASE_EXPIRED)
}

/// Fails the running attempts of every process whose session is gone: each open spool
/// holds a session advisory lock on its owner id (on its listener connection); an owner
/// row whose lock can be taken belongs to a process that stopped (or closed), so its jobs
/// are recovered at once instead of when their leases expire. Returns how many.
pub(super) fn recover_dead_owners(ctx: &mut Ctx<'_, '_>) -> Result<u64> {
    let me = ctx.sh.owner.unwrap_or(0);
    let owners: Vec<i64> = ctx
        .t
        .query(&ctx.sh.sql("SELECT id FROM @.owner WHERE id <> $1"), &[&me])
        .pg("reading processes")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut n = 0;
    for owner in owners {
        let dead: bool = ctx
            .t
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&owner])
            .pg("checking a process")?
            .get(0);
        if !dead {
            continue;
        }
        let rows = ctx
            .t
            .query(
                &ctx.sh.sql(
                    "SELECT id, record FROM @.job WHERE state = 2 AND lease_owner = $1 \
                     ORDER BY id FOR UPDATE SKIP LOCKED",
                ),
                &[&owner],
            )
            .pg("recovering jobs")?;
        n += expire_rows(ctx, &rows, rules::PROCESS_LOST)?;
        ctx.t
            .execute(&ctx.sh.sql("DELETE FROM @.owner WHERE id = $1"), &[&owner])
            .pg("recovering jobs")?;
    }
    Ok(n)
}

pub(super) fn redrive(ctx: &mut Ctx<'_, '_>, target: RedriveTarget) -> Result<Vec<Job>> {
    let (strict, jobs) = match target {
        RedriveTarget::One(id) => (true, vec![ctx.must_locked(id, true)?]),
        RedriveTarget::All { queue, kind } => {
            if [&queue, &kind]
                .into_iter()
                .flatten()
                .any(|s| s.contains('\0'))
            {
                // No job holds U+0000 in these; the server would refuse the parameter.
                return Ok(Vec::new());
            }
            let rows = ctx
                .t
                .query(
                    &ctx.sh.sql(
                        "SELECT id, state, record, payload FROM @.job \
                         WHERE state IN (4, 6) AND ($1::text IS NULL OR queue = $1) \
                           AND ($2::text IS NULL OR kind = $2) \
                         ORDER BY id FOR UPDATE SKIP LOCKED",
                    ),
                    &[&queue, &kind],
                )
                .pg("reading dead jobs")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in &rows {
                v.push((r.get::<_, i16>("state"), job_from_row(r, true)?));
            }
            (false, v)
        }
    };
    let mut picker = RedrivePicker::new(strict);
    let mut picked = Vec::new();
    for (st, job) in jobs {
        let live_holder = |k: &str| -> Result<Option<JobId>> {
            let held: Option<uuid::Uuid> = ctx
                .t
                .query_opt(
                    &ctx.sh.sql(
                        "SELECT id FROM @.job WHERE dedupe_key = $1 AND state IN (0, 1, 2) \
                         FOR SHARE",
                    ),
                    &[&k],
                )
                .pg("checking a dedupe key")?
                .map(|r| r.get(0));
            Ok(held.map(|u| JobId::from_bytes(*u.as_bytes())))
        };
        if picker.pick(&job, live_holder)? {
            picked.push((st, job));
        }
    }
    let mut out = Vec::with_capacity(picked.len());
    for (st, old) in picked {
        let change = rules::redrive(old, ctx.now);
        out.push(ctx.stage(st, change));
    }
    Ok(out)
}

/// One batch of pruning (at most [`CHUNK`] jobs and [`CHUNK`] events); returns the jobs
/// removed.
pub(super) fn prune(ctx: &mut Ctx<'_, '_>, r: &Retention) -> Result<u64> {
    let (plan, events_before) = rules::prune_cutoffs(r, ctx.now);
    let mut n = 0u64;
    for (status, before) in plan {
        // A finished status has one state code.
        let state = codes_of(status)[0];
        let left = CHUNK - i64::try_from(n).unwrap_or(CHUNK);
        if left <= 0 {
            break;
        }
        let rows = ctx
            .t
            .query(
                &ctx.sh.sql(
                    "DELETE FROM @.job WHERE id IN ( \
                       SELECT id FROM @.job WHERE state = $1 AND finished_at < $2 \
                       ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING queue",
                ),
                &[&state, &before, &left],
            )
            .pg("pruning jobs")?;
        for row in &rows {
            let q: String = row.get(0);
            ctx.count(&q, state, -1);
        }
        n += rows.len() as u64;
    }
    ctx.t
        .execute(
            &ctx.sh.sql(
                "DELETE FROM @.event_log WHERE last_seq IN ( \
                   SELECT last_seq FROM @.event_log WHERE at_ms < $1 \
                   ORDER BY last_seq LIMIT $2)",
            ),
            &[&events_before, &CHUNK],
        )
        .pg("pruning events")?;
    if let Some(e) = rules::pruned_event(n, ctx.now) {
        ctx.emit(e);
    }
    Ok(n)
}

pub(super) fn set_paused(ctx: &mut Ctx<'_, '_>, queue: &str, paused: bool) -> Result<()> {
    crate::model::limits::validate_name("queue", queue)?;
    // The row lock makes two concurrent pauses log one event.
    ctx.t
        .execute(
            &ctx.sh.sql(
                "INSERT INTO @.queue (name, paused) VALUES ($1, false) ON CONFLICT DO NOTHING",
            ),
            &[&queue],
        )
        .pg("pausing a queue")?;
    let was: bool = ctx
        .t
        .query_one(
            &ctx.sh
                .sql("SELECT paused FROM @.queue WHERE name = $1 FOR UPDATE"),
            &[&queue],
        )
        .pg("pausing a queue")?
        .get(0);
    if paused {
        ctx.t
            .execute(
                &ctx.sh
                    .sql("UPDATE @.queue SET paused = true WHERE name = $1"),
                &[&queue],
            )
            .pg("pausing a queue")?;
    } else {
        ctx.t
            .execute(
                &ctx.sh.sql("DELETE FROM @.queue WHERE name = $1"),
                &[&queue],
            )
            .pg("resuming a queue")?;
    }
    if was == paused {
        return Ok(());
    }
    if !paused {
        ctx.wake = true;
    }
    let at = ctx.at();
    ctx.emit(Event::QueuePaused {
        queue: queue.to_owned(),
        paused,
        at,
    });
    Ok(())
}
