//! The event line: `seq`, `name`, then each event's own fields in the contract's order.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ts, ts_opt};
use crate::model::event::{Event, EventRecord, ScheduleChange};
use crate::model::job::JobId;

/// An event line: `seq`, `name`, then the event's own fields.
#[derive(Serialize)]
pub(crate) struct EventView<'a> {
    seq: u64,
    name: &'static str,
    #[serde(flatten)]
    fields: EventFields<'a>,
}

/// The fields of each event, in the contract's order. Variants map one to one onto
/// [`Event`]'s; the name comes from [`Event::name`].
#[derive(Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
enum EventFields<'a> {
    Enqueued {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        priority: i32,
        #[serde(serialize_with = "ts")]
        enqueued_at: DateTime<Utc>,
        #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
        scheduled_at: Option<DateTime<Utc>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant_id: Option<&'a str>,
    },
    Started {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempt: u32,
        #[serde(serialize_with = "ts")]
        started_at: DateTime<Utc>,
    },
    Completed {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempt: u32,
        duration_ms: u64,
        #[serde(serialize_with = "ts")]
        completed_at: DateTime<Utc>,
    },
    Failed {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempt: u32,
        error: &'a str,
        will_retry: bool,
        #[serde(serialize_with = "ts")]
        failed_at: DateTime<Utc>,
    },
    Retrying {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempt: u32,
        #[serde(serialize_with = "ts")]
        next_attempt_at: DateTime<Utc>,
        backoff_ms: u64,
    },
    DeadLettered {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempts: u32,
        last_error: &'a str,
        #[serde(serialize_with = "ts")]
        dead_lettered_at: DateTime<Utc>,
    },
    Cancelled {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(serialize_with = "ts")]
        cancelled_at: DateTime<Utc>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cancelled_by: Option<&'a str>,
    },
    Triggered {
        schedule_name: &'a str,
        job_id: JobId,
        job_type: &'a str,
        #[serde(serialize_with = "ts")]
        triggered_at: DateTime<Utc>,
        #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
        next_run_at: Option<DateTime<Utc>>,
    },
    Released {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        attempt: u32,
        #[serde(serialize_with = "ts")]
        released_at: DateTime<Utc>,
    },
    Redriven {
        job_id: JobId,
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(serialize_with = "ts")]
        redriven_at: DateTime<Utc>,
    },
    Pruned {
        count: u64,
        #[serde(serialize_with = "ts")]
        pruned_at: DateTime<Utc>,
    },
    Schedule {
        schedule_name: &'a str,
        #[serde(serialize_with = "ts")]
        at: DateTime<Utc>,
    },
    Queue {
        queue: &'a str,
        #[serde(serialize_with = "ts")]
        at: DateTime<Utc>,
    },
}

impl<'a> From<&'a EventRecord> for EventView<'a> {
    fn from(r: &'a EventRecord) -> Self {
        let fields = match &r.event {
            Event::JobEnqueued {
                job_id,
                kind,
                priority,
                enqueued_at,
                scheduled_at,
                tenant_id,
            } => EventFields::Enqueued {
                job_id: *job_id,
                kind,
                priority: *priority,
                enqueued_at: *enqueued_at,
                scheduled_at: *scheduled_at,
                tenant_id: tenant_id.as_deref(),
            },
            Event::JobStarted {
                job_id,
                kind,
                attempt,
                started_at,
            } => EventFields::Started {
                job_id: *job_id,
                kind,
                attempt: *attempt,
                started_at: *started_at,
            },
            Event::JobCompleted {
                job_id,
                kind,
                attempt,
                duration_ms,
                completed_at,
            } => EventFields::Completed {
                job_id: *job_id,
                kind,
                attempt: *attempt,
                duration_ms: *duration_ms,
                completed_at: *completed_at,
            },
            Event::JobFailed {
                job_id,
                kind,
                attempt,
                error,
                will_retry,
                failed_at,
            } => EventFields::Failed {
                job_id: *job_id,
                kind,
                attempt: *attempt,
                error,
                will_retry: *will_retry,
                failed_at: *failed_at,
            },
            Event::JobRetrying {
                job_id,
                kind,
                attempt,
                next_attempt_at,
                backoff_ms,
            } => EventFields::Retrying {
                job_id: *job_id,
                kind,
                attempt: *attempt,
                next_attempt_at: *next_attempt_at,
                backoff_ms: *backoff_ms,
            },
            Event::JobDeadLettered {
                job_id,
                kind,
                attempts,
                last_error,
                dead_lettered_at,
            } => EventFields::DeadLettered {
                job_id: *job_id,
                kind,
                attempts: *attempts,
                last_error,
                dead_lettered_at: *dead_lettered_at,
            },
            Event::JobCancelled {
                job_id,
                kind,
                cancelled_at,
                cancelled_by,
            } => EventFields::Cancelled {
                job_id: *job_id,
                kind,
                cancelled_at: *cancelled_at,
                cancelled_by: cancelled_by.as_deref(),
            },
            Event::SchedulerJobTriggered {
                schedule_name,
                job_id,
                job_type,
                triggered_at,
                next_run_at,
            } => EventFields::Triggered {
                schedule_name,
                job_id: *job_id,
                job_type,
                triggered_at: *triggered_at,
                next_run_at: *next_run_at,
            },
            Event::JobReleased {
                job_id,
                kind,
                attempt,
                released_at,
            } => EventFields::Released {
                job_id: *job_id,
                kind,
                attempt: *attempt,
                released_at: *released_at,
            },
            Event::JobRedriven {
                job_id,
                kind,
                redriven_at,
            } => EventFields::Redriven {
                job_id: *job_id,
                kind,
                redriven_at: *redriven_at,
            },
            Event::JobsPruned { count, pruned_at } => EventFields::Pruned {
                count: *count,
                pruned_at: *pruned_at,
            },
            Event::ScheduleChanged { name, at, change } => {
                // The change is in the event's name (`schedule.created`, ...).
                let _: ScheduleChange = *change;
                EventFields::Schedule {
                    schedule_name: name,
                    at: *at,
                }
            }
            Event::QueuePaused { queue, at, .. } => EventFields::Queue { queue, at: *at },
        };
        EventView {
            seq: r.seq,
            name: r.event.name(),
            fields,
        }
    }
}
