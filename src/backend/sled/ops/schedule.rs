//! Schedules: create, toggle, and firing the due ones.

use super::enqueue::create;
use super::Ctx;
use crate::backend::codec::{self, keys};
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::NewJob;
use crate::model::schedule::{Cron, NewSchedule, ScheduledJob};

pub(super) fn schedule(ctx: &Ctx<'_>, name: &str) -> Result<Option<ScheduledJob>> {
    let key = keys::named(keys::SCHEDULE, name);
    match ctx.raw(&key)? {
        None => Ok(None),
        Some(v) => codec::decode("schedules", &key, &v).map(Some),
    }
}

/// Stages a schedule's record, encoded beforehand (encoding can fail; staging must not).
pub(super) fn put_schedule(ctx: &mut Ctx<'_>, name: &str, record: Vec<u8>) {
    ctx.staged
        .put_raw(keys::named(keys::SCHEDULE, name), Some(record.into()));
}

pub(super) fn next_run(s: &ScheduledJob, after_ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = Cron::parse(&s.cron_expression).ok()?;
    let tz = crate::model::schedule::parse_tz(&s.timezone).ok()?;
    cron.next_after(to_datetime(after_ms), tz)
}

pub(super) fn create_schedule(ctx: &mut Ctx<'_>, new: NewSchedule) -> Result<ScheduledJob> {
    let (cron, tz) = new.validate(ctx.cfg.payload_limit)?;
    let existing = schedule(ctx, &new.name)?;
    if existing.is_some() && !new.replace {
        return Err(Error::ScheduleExists(new.name));
    }
    let enabled = new.enabled.unwrap_or(true);
    let id = ctx.st.next_id(ctx.now);
    let s = ScheduledJob {
        id: existing
            .as_ref()
            .map_or_else(|| id.to_string(), |e| e.id.clone()),
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
    store_schedule(ctx, &s, change)?;
    Ok(s)
}

/// Stages a changed schedule with the event that says what changed.
pub(super) fn store_schedule(
    ctx: &mut Ctx<'_>,
    s: &ScheduledJob,
    change: ScheduleChange,
) -> Result<()> {
    let record = codec::encode(s)?;
    put_schedule(ctx, &s.name, record);
    let at = ctx.at();
    ctx.emit(Event::ScheduleChanged {
        name: s.name.clone(),
        change,
        at,
    });
    Ok(())
}

pub(super) fn toggle_schedule(
    ctx: &mut Ctx<'_>,
    name: &str,
    enabled: bool,
) -> Result<ScheduledJob> {
    let mut s = schedule(ctx, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    s.enabled = enabled;
    // Off clears the next run; on recomputes it from now (no catch-up of the off period).
    s.next_run_at = if enabled { next_run(&s, ctx.now) } else { None };
    let change = if enabled {
        ScheduleChange::Enabled
    } else {
        ScheduleChange::Disabled
    };
    store_schedule(ctx, &s, change)?;
    Ok(s)
}

/// Names of every schedule, the ones staged in this group included.
pub(super) fn schedule_names(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for item in ctx
        .overlay
        .scan(ctx.tree, &[keys::SCHEDULE], &[keys::SCHEDULE + 1])
    {
        let (k, _) = item?;
        names.insert(String::from_utf8_lossy(&k[1..]).into_owned());
    }
    for k in ctx
        .staged
        .raw
        .keys()
        .filter(|k| k.first() == Some(&keys::SCHEDULE))
    {
        names.insert(String::from_utf8_lossy(&k[1..]).into_owned());
    }
    Ok(names.into_iter().collect())
}

/// Fires each due schedule once: enqueue its job, set lastRunAt to now and nextRunAt to the
/// first tick after now (ticks missed while down collapse into this one firing).
pub(super) fn fire_due(ctx: &mut Ctx<'_>) -> Result<u64> {
    let mut due = Vec::new();
    for name in schedule_names(ctx)? {
        if let Some(s) = schedule(ctx, &name)? {
            if s.enabled
                && s.next_run_at
                    .is_some_and(|t| t.timestamp_millis() <= ctx.now)
            {
                due.push(s);
            }
        }
    }
    // Encode every changed schedule before staging anything.
    let mut planned = Vec::with_capacity(due.len());
    for mut s in due {
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
        // Settings changed since the schedule was made (a lower payload limit): skip the
        // tick rather than fire a job that could not be enqueued by hand.
        let nj = nj
            .validate(ctx.now, ctx.cfg.payload_limit)
            .is_ok()
            .then_some(nj);
        let record = codec::encode(&s)?;
        planned.push((s, record, nj));
    }
    let mut fired = 0;
    for (s, record, nj) in planned {
        if let Some(nj) = nj {
            let job = create(ctx, nj);
            ctx.emit(Event::SchedulerJobTriggered {
                schedule_name: s.name.clone(),
                job_id: job.id,
                job_type: s.job_type.clone(),
                triggered_at: ctx.at(),
                next_run_at: s.next_run_at,
            });
            fired += 1;
        }
        put_schedule(ctx, &s.name, record);
    }
    Ok(fired)
}
