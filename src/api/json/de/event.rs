//! Event lines back into [`EventRecord`]s: the inverse of the event view.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{bad, de_ts_opt};
use crate::model::error::Error;
use crate::model::event::{Event, EventRecord, ScheduleChange};
use crate::model::job::JobId;

/// Every field any event line has; which ones an event needs depends on its `name`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFields {
    seq: u64,
    name: String,
    job_id: Option<JobId>,
    #[serde(rename = "type")]
    kind: Option<String>,
    priority: Option<i32>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    enqueued_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    scheduled_at: Option<DateTime<Utc>>,
    tenant_id: Option<String>,
    attempt: Option<u32>,
    attempts: Option<u32>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    started_at: Option<DateTime<Utc>>,
    duration_ms: Option<u64>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    completed_at: Option<DateTime<Utc>>,
    error: Option<String>,
    will_retry: Option<bool>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    failed_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    next_attempt_at: Option<DateTime<Utc>>,
    backoff_ms: Option<u64>,
    last_error: Option<String>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    dead_lettered_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    cancelled_at: Option<DateTime<Utc>>,
    cancelled_by: Option<String>,
    schedule_name: Option<String>,
    job_type: Option<String>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    triggered_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    next_run_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    released_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    redriven_at: Option<DateTime<Utc>>,
    count: Option<u64>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    pruned_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    at: Option<DateTime<Utc>>,
    queue: Option<String>,
}

/// An event line as `jobs.events` prints it; `EventRecord::try_from` reads it back.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct EventJson(Value);

impl TryFrom<EventJson> for EventRecord {
    type Error = Error;
    fn try_from(e: EventJson) -> Result<EventRecord, Error> {
        let f: EventFields = serde_json::from_value(e.0).map_err(|e| bad("event", e))?;
        let name = f.name.clone();
        let event = event_of(f).map_err(|missing| {
            bad(
                "event",
                format!("{name} without {missing} (or not an event this version knows)"),
            )
        })?;
        Ok(event)
    }
}

/// The event a line stands for; `Err(field)` for a missing field (or an unknown name).
fn event_of(f: EventFields) -> Result<EventRecord, &'static str> {
    macro_rules! need {
        ($field:ident, $json:literal) => {
            f.$field.ok_or($json)?
        };
    }
    let change = match f.name.as_str() {
        "schedule.created" => Some(ScheduleChange::Created),
        "schedule.replaced" => Some(ScheduleChange::Replaced),
        "schedule.enabled" => Some(ScheduleChange::Enabled),
        "schedule.disabled" => Some(ScheduleChange::Disabled),
        "schedule.deleted" => Some(ScheduleChange::Deleted),
        _ => None,
    };
    if let Some(change) = change {
        let event = Event::ScheduleChanged {
            name: need!(schedule_name, "scheduleName"),
            change,
            at: need!(at, "at"),
        };
        return Ok(EventRecord { seq: f.seq, event });
    }
    let event = match f.name.as_str() {
        "job.enqueued" => Event::JobEnqueued {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            priority: need!(priority, "priority"),
            enqueued_at: need!(enqueued_at, "enqueuedAt"),
            scheduled_at: f.scheduled_at,
            tenant_id: f.tenant_id,
        },
        "job.started" => Event::JobStarted {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempt: need!(attempt, "attempt"),
            started_at: need!(started_at, "startedAt"),
        },
        "job.completed" => Event::JobCompleted {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempt: need!(attempt, "attempt"),
            duration_ms: need!(duration_ms, "durationMs"),
            completed_at: need!(completed_at, "completedAt"),
        },
        "job.failed" => Event::JobFailed {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempt: need!(attempt, "attempt"),
            error: need!(error, "error"),
            will_retry: need!(will_retry, "willRetry"),
            failed_at: need!(failed_at, "failedAt"),
        },
        "job.retrying" => Event::JobRetrying {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempt: need!(attempt, "attempt"),
            next_attempt_at: need!(next_attempt_at, "nextAttemptAt"),
            backoff_ms: need!(backoff_ms, "backoffMs"),
        },
        "job.dead_lettered" => Event::JobDeadLettered {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempts: need!(attempts, "attempts"),
            last_error: need!(last_error, "lastError"),
            dead_lettered_at: need!(dead_lettered_at, "deadLetteredAt"),
        },
        "job.cancelled" => Event::JobCancelled {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            cancelled_at: need!(cancelled_at, "cancelledAt"),
            cancelled_by: f.cancelled_by,
        },
        "scheduler.job_triggered" => Event::SchedulerJobTriggered {
            schedule_name: need!(schedule_name, "scheduleName"),
            job_id: need!(job_id, "jobId"),
            job_type: need!(job_type, "jobType"),
            triggered_at: need!(triggered_at, "triggeredAt"),
            next_run_at: f.next_run_at,
        },
        "job.released" => Event::JobReleased {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            attempt: need!(attempt, "attempt"),
            released_at: need!(released_at, "releasedAt"),
        },
        "job.redriven" => Event::JobRedriven {
            job_id: need!(job_id, "jobId"),
            kind: need!(kind, "type"),
            redriven_at: need!(redriven_at, "redrivenAt"),
        },
        "jobs.pruned" => Event::JobsPruned {
            count: need!(count, "count"),
            pruned_at: need!(pruned_at, "prunedAt"),
        },
        "queue.paused" | "queue.resumed" => Event::QueuePaused {
            queue: need!(queue, "queue"),
            paused: f.name == "queue.paused",
            at: need!(at, "at"),
        },
        _ => return Err("a known name"),
    };
    Ok(EventRecord { seq: f.seq, event })
}
