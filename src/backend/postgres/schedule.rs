//! Schedules: create, toggle, delete, list, and firing. A firing is a compare-and-set of the
//! schedule's `next_run` in the same transaction as the job's insert, so any number of
//! schedulers (processes) fire each tick once.

use postgres::error::SqlState;

use super::conn::Pg;
use super::enqueue::{create, insert};
use super::tx::Ctx;
use crate::backend::codec::{self, keys};
use crate::backend::rules;
use crate::model::error::{Error, Result};
use crate::model::event::ScheduleChange;
use crate::model::schedule::{NewSchedule, ScheduledJob};

fn decode(name: &str, record: &[u8]) -> Result<ScheduledJob> {
    codec::decode("schedules", &keys::named(keys::SCHEDULE, name), record)
}

fn locked(ctx: &mut Ctx<'_, '_>, name: &str) -> Result<Option<ScheduledJob>> {
    let row = ctx
        .t
        .query_opt(
            &ctx.sh
                .sql("SELECT record FROM @.schedule WHERE name = $1 FOR UPDATE"),
            &[&name],
        )
        .pg("reading a schedule")?;
    row.map(|r| decode(name, r.get(0))).transpose()
}

/// Writes `s` (insert or update) and logs `change`.
fn store(ctx: &mut Ctx<'_, '_>, s: &ScheduledJob, change: ScheduleChange) -> Result<()> {
    let record = codec::encode(s)?;
    let next = s.next_run_at.map(|t| t.timestamp_millis());
    let r = ctx.t.execute(
        &ctx.sh.sql(if change == ScheduleChange::Created {
            "INSERT INTO @.schedule (name, enabled, next_run, record) VALUES ($1, $2, $3, $4)"
        } else {
            "UPDATE @.schedule SET enabled = $2, next_run = $3, record = $4 WHERE name = $1"
        }),
        &[&s.name, &s.enabled, &next, &record],
    );
    match r {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(Error::ScheduleExists(s.name.clone()))
        }
        other => {
            other.pg("writing a schedule")?;
        }
    }
    ctx.emit(rules::changed_event(&s.name, change, ctx.now));
    Ok(())
}

pub(super) fn create_schedule(ctx: &mut Ctx<'_, '_>, new: NewSchedule) -> Result<ScheduledJob> {
    let (cron, tz) = new.validate(ctx.sh.cfg.payload_limit)?;
    let existing = locked(ctx, &new.name)?;
    let (sh, now) = (ctx.sh, ctx.now);
    let (s, change) =
        rules::build_schedule(new, &cron, tz, existing.as_ref(), || sh.next_id(now), now)?;
    store(ctx, &s, change)?;
    Ok(s)
}

pub(super) fn toggle_schedule(
    ctx: &mut Ctx<'_, '_>,
    name: &str,
    enabled: bool,
) -> Result<ScheduledJob> {
    let s = locked(ctx, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    let (s, change) = rules::toggle(s, enabled, ctx.now);
    store(ctx, &s, change)?;
    Ok(s)
}

pub(super) fn delete_schedule(ctx: &mut Ctx<'_, '_>, name: &str) -> Result<()> {
    let n = ctx
        .t
        .execute(
            &ctx.sh.sql("DELETE FROM @.schedule WHERE name = $1"),
            &[&name],
        )
        .pg("deleting a schedule")?;
    if n == 0 {
        return Err(Error::ScheduleNotFound(name.to_owned()));
    }
    ctx.emit(rules::changed_event(name, ScheduleChange::Deleted, ctx.now));
    Ok(())
}

/// Every schedule, by name.
pub(super) fn list(sh: &super::Shared) -> Result<Vec<ScheduledJob>> {
    let sql = sh.sql("SELECT name, record FROM @.schedule ORDER BY name");
    let rows = sh.pool.with_client(|c| c.query(&sql, &[]))?;
    rows.iter()
        .map(|r| decode(r.get::<_, &str>(0), r.get(1)))
        .collect()
}

/// Fires each due schedule once: enqueue its job, set lastRunAt to now and nextRunAt to the
/// first tick after now (ticks missed while down collapse into this one firing). Schedules
/// another scheduler is firing right now are skipped (it fires them).
pub(super) fn fire_due(ctx: &mut Ctx<'_, '_>) -> Result<u64> {
    let rows = ctx
        .t
        .query(
            &ctx.sh.sql(
                "SELECT name, record, next_run FROM @.schedule \
                 WHERE enabled AND next_run <= $1 ORDER BY name FOR UPDATE SKIP LOCKED",
            ),
            &[&ctx.now],
        )
        .pg("reading due schedules")?;
    let mut fired = 0;
    for r in &rows {
        let name: &str = r.get(0);
        let tick: i64 = r.get(2);
        let firing = rules::fire(decode(name, r.get(1))?, ctx.now, ctx.sh.cfg.payload_limit);
        let s = &firing.schedule;
        let record = codec::encode(s)?;
        let next = s.next_run_at.map(|t| t.timestamp_millis());
        // Compare-and-set: only the transaction that moves `next_run` off this tick fires it.
        let won = ctx
            .t
            .execute(
                &ctx.sh.sql(
                    "UPDATE @.schedule SET next_run = $2, record = $3 \
                     WHERE name = $1 AND enabled AND next_run = $4",
                ),
                &[&name, &next, &record, &tick],
            )
            .pg("advancing a schedule")?
            == 1;
        // Another scheduler fired this tick, or its job is no longer valid input (the
        // tick is skipped, see `rules::fire`).
        let (true, Some(nj)) = (won, firing.job) else {
            continue;
        };
        let job = create(ctx, nj);
        let id = job.id;
        insert(ctx, vec![job])?;
        ctx.emit(rules::triggered_event(&firing.schedule, id, ctx.now));
        fired += 1;
    }
    Ok(fired)
}
