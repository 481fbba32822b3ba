//! Schedules: create, toggle, delete, list, and firing. A firing is a compare-and-set of the
//! schedule's `next_run` in the same transaction as the job's insert, so any number of
//! schedulers (processes) fire each tick once.

use postgres::error::SqlState;

use super::conn::Pg;
use super::enqueue::{create, insert};
use super::tx::Ctx;
use crate::backend::codec::{self, keys};
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::NewJob;
use crate::model::schedule::{Cron, NewSchedule, ScheduledJob};

fn decode(name: &str, record: &[u8]) -> Result<ScheduledJob> {
    codec::decode("schedules", &keys::named(keys::SCHEDULE, name), record)
}

fn next_run(s: &ScheduledJob, after_ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = Cron::parse(&s.cron_expression).ok()?;
    let tz = crate::model::schedule::parse_tz(&s.timezone).ok()?;
    cron.next_after(to_datetime(after_ms), tz)
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
    let at = ctx.at();
    ctx.emit(Event::ScheduleChanged {
        name: s.name.clone(),
        change,
        at,
    });
    Ok(())
}

pub(super) fn create_schedule(ctx: &mut Ctx<'_, '_>, new: NewSchedule) -> Result<ScheduledJob> {
    let (cron, tz) = new.validate(ctx.sh.cfg.payload_limit)?;
    let existing = locked(ctx, &new.name)?;
    if existing.is_some() && !new.replace {
        return Err(Error::ScheduleExists(new.name));
    }
    let enabled = new.enabled.unwrap_or(true);
    let s = ScheduledJob {
        id: existing
            .as_ref()
            .map_or_else(|| ctx.sh.next_id(ctx.now).to_string(), |e| e.id.clone()),
        name: new.name,
        cron_expression: new.cron_expression.trim().to_owned(),
        timezone: tz.name().to_owned(),
        job_type: new.job_type,
        enabled,
        created_at: existing.as_ref().map_or_else(|| ctx.at(), |e| e.created_at),
        description: new.description,
        last_run_at: existing.as_ref().and_then(|e| e.last_run_at),
        next_run_at: if enabled {
            cron.next_after(ctx.at(), tz)
        } else {
            None
        },
        payload: new.payload,
        max_attempts: new.max_attempts,
        queue: new.queue,
        priority: new.priority,
    };
    let change = if existing.is_some() {
        ScheduleChange::Replaced
    } else {
        ScheduleChange::Created
    };
    store(ctx, &s, change)?;
    Ok(s)
}

pub(super) fn toggle_schedule(
    ctx: &mut Ctx<'_, '_>,
    name: &str,
    enabled: bool,
) -> Result<ScheduledJob> {
    let mut s = locked(ctx, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    s.enabled = enabled;
    // Off clears the next run; on recomputes it from now (no catch-up of the off period).
    s.next_run_at = if enabled { next_run(&s, ctx.now) } else { None };
    let change = if enabled {
        ScheduleChange::Enabled
    } else {
        ScheduleChange::Disabled
    };
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
    let at = ctx.at();
    ctx.emit(Event::ScheduleChanged {
        name: name.to_owned(),
        change: ScheduleChange::Deleted,
        at,
    });
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
        let mut s = decode(name, r.get(1))?;
        let tick: i64 = r.get(2);
        let nj = NewJob {
            kind: s.job_type.clone(),
            payload: s.payload.clone(),
            queue: s.queue.clone(),
            priority: s.priority,
            max_attempts: s.max_attempts,
            ..NewJob::default()
        };
        s.last_run_at = Some(ctx.at());
        s.next_run_at = next_run(&s, ctx.now);
        let record = codec::encode(&s)?;
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
        // Settings changed since the schedule was made (a lower payload limit): skip the
        // tick rather than fire a job that could not be enqueued by hand.
        if !won || nj.validate(ctx.now, ctx.sh.cfg.payload_limit).is_err() {
            continue;
        }
        let job = create(ctx, nj);
        let id = job.id;
        insert(ctx, vec![job])?;
        ctx.emit(Event::SchedulerJobTriggered {
            schedule_name: s.name.clone(),
            job_id: id,
            job_type: s.job_type.clone(),
            triggered_at: ctx.at(),
            next_run_at: s.next_run_at,
        });
        fired += 1;
    }
    Ok(fired)
}
