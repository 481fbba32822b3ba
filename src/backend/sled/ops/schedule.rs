//! Schedules: create, toggle, and firing the due ones.

use super::enqueue::create;
use super::Ctx;
use crate::backend::codec::{self, keys};
use crate::backend::rules;
use crate::model::error::{Error, Result};
use crate::model::event::ScheduleChange;
use crate::model::schedule::{NewSchedule, ScheduledJob};

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

pub(super) fn create_schedule(ctx: &mut Ctx<'_>, new: NewSchedule) -> Result<ScheduledJob> {
    let (cron, tz) = new.validate(ctx.cfg.payload_limit)?;
    let existing = schedule(ctx, &new.name)?;
    let st = &mut *ctx.st;
    let now = ctx.now;
    let (s, change) =
        rules::build_schedule(new, &cron, tz, existing.as_ref(), || st.next_id(now), now)?;
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
    ctx.emit(rules::changed_event(&s.name, change, ctx.now));
    Ok(())
}

pub(super) fn toggle_schedule(
    ctx: &mut Ctx<'_>,
    name: &str,
    enabled: bool,
) -> Result<ScheduledJob> {
    let s = schedule(ctx, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    let (s, change) = rules::toggle(s, enabled, ctx.now);
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
            if rules::is_due(&s, ctx.now) {
                due.push(s);
            }
        }
    }
    // Encode every changed schedule before staging anything.
    let mut planned = Vec::with_capacity(due.len());
    for s in due {
        let firing = rules::fire(s, ctx.now, ctx.cfg.payload_limit);
        let record = codec::encode(&firing.schedule)?;
        planned.push((firing, record));
    }
    let mut fired = 0;
    for (firing, record) in planned {
        if let Some(nj) = firing.job {
            let job = create(ctx, nj);
            ctx.emit(rules::triggered_event(&firing.schedule, job.id, ctx.now));
            fired += 1;
        }
        put_schedule(ctx, &firing.schedule.name, record);
    }
    Ok(fired)
}
