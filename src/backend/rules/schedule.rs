//! Schedules: built from their input, toggled, and fired.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::{JobId, NewJob};
use crate::model::schedule::{parse_tz, Cron, NewSchedule, ScheduledJob};

/// The first tick of `s` after `after_ms` (none when its expression or time zone no longer
/// parse).
pub(crate) fn next_run(s: &ScheduledJob, after_ms: i64) -> Option<DateTime<Utc>> {
    let cron = Cron::parse(&s.cron_expression).ok()?;
    let tz = parse_tz(&s.timezone).ok()?;
    cron.next_after(to_datetime(after_ms), tz)
}

/// The schedule `new` makes at `now` (its expression and zone already validated into
/// `cron` and `tz`), over the `existing` one of that name if any, and whether that is a
/// creation or a replacement. An existing schedule is replaced only when `new.replace`
/// (`SCHEDULE_EXISTS` otherwise) and keeps its id, creation time and last run;
/// `fresh_id` gives a new schedule its id.
pub(crate) fn build_schedule(
    new: NewSchedule,
    cron: &Cron,
    tz: Tz,
    existing: Option<&ScheduledJob>,
    fresh_id: impl FnOnce() -> JobId,
    now: i64,
) -> Result<(ScheduledJob, ScheduleChange)> {
    if existing.is_some() && !new.replace {
        return Err(Error::ScheduleExists(new.name));
    }
    let at = to_datetime(now);
    let enabled = new.enabled.unwrap_or(true);
    let s = ScheduledJob {
        id: existing.map_or_else(|| fresh_id().to_string(), |e| e.id.clone()),
        name: new.name,
        cron_expression: new.cron_expression.trim().to_owned(),
        timezone: tz.name().to_owned(),
        job_type: new.job_type,
        enabled,
        created_at: existing.map_or(at, |e| e.created_at),
        description: new.description,
        last_run_at: existing.and_then(|e| e.last_run_at),
        next_run_at: if enabled {
            cron.next_after(at, tz)
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
    Ok((s, change))
}

/// `s` turned on or off at `now`: off clears the next run; on recomputes it from now (no
/// catch-up of the off period).
pub(crate) fn toggle(
    mut s: ScheduledJob,
    enabled: bool,
    now: i64,
) -> (ScheduledJob, ScheduleChange) {
    s.enabled = enabled;
    s.next_run_at = if enabled { next_run(&s, now) } else { None };
    let change = if enabled {
        ScheduleChange::Enabled
    } else {
        ScheduleChange::Disabled
    };
    (s, change)
}

/// The `schedule.changed` event of schedule `name` at `now`.
pub(crate) fn changed_event(name: &str, change: ScheduleChange, now: i64) -> Event {
    Event::ScheduleChanged {
        name: name.to_owned(),
        change,
        at: to_datetime(now),
    }
}

/// Whether `s` is due at `now`: enabled, with a next run at or before it.
pub(crate) fn is_due(s: &ScheduledJob, now: i64) -> bool {
    s.enabled && s.next_run_at.is_some_and(|t| t.timestamp_millis() <= now)
}

/// One firing of a due schedule (see [`fire`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Firing {
    /// The schedule after the firing: last run now, next run the first tick after now.
    pub schedule: ScheduledJob,
    /// The job to enqueue; `None` when it is no longer valid input (the settings changed
    /// since the schedule was made, e.g. a lower payload limit): the tick is skipped rather
    /// than fire a job that could not be enqueued by hand.
    pub job: Option<NewJob>,
}

/// Due schedule `s` fires at `now`: ticks missed while nothing fired collapse into this
/// one. The backend enqueues the job (a new job record, `job.enqueued`), then appends
/// [`triggered_event`], in the same transaction as the schedule's new record.
pub(crate) fn fire(mut s: ScheduledJob, now: i64, payload_limit: usize) -> Firing {
    let nj = NewJob {
        kind: s.job_type.clone(),
        payload: s.payload.clone(),
        queue: s.queue.clone(),
        priority: s.priority,
        max_attempts: s.max_attempts,
        ..NewJob::default()
    };
    s.last_run_at = Some(to_datetime(now));
    s.next_run_at = next_run(&s, now);
    let job = nj.validate(now, payload_limit).is_ok().then_some(nj);
    Firing { schedule: s, job }
}

/// The `scheduler.job_triggered` event of fired schedule `s` (as [`fire`] left it) that
/// enqueued job `job_id` at `now`.
pub(crate) fn triggered_event(s: &ScheduledJob, job_id: JobId, now: i64) -> Event {
    Event::SchedulerJobTriggered {
        schedule_name: s.name.clone(),
        job_id,
        job_type: s.job_type.clone(),
        triggered_at: to_datetime(now),
        next_run_at: s.next_run_at,
    }
}
