//! The event-log record (`e` + first seq): a block of events, each with the time it was
//! appended.

use serde::{Deserialize, Serialize};

use crate::backend::codec::Stored;
use crate::backend::records::{ms, ms_opt, time, time_opt, IdRecord};
use crate::backend::sled::stage::{StoredEvent, StoredEventBlock};
use crate::model::event::{Event, ScheduleChange};

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredEventRecord {
    at_ms: i64,
    event: EventBody,
}

/// An event: the variant's index (u32), then its fields, in this order.
#[derive(Serialize, Deserialize)]
enum EventBody {
    JobEnqueued {
        job_id: IdRecord,
        kind: String,
        priority: i32,
        enqueued_at: i64,
        scheduled_at: Option<i64>,
        tenant_id: Option<String>,
    },
    JobStarted {
        job_id: IdRecord,
        kind: String,
        attempt: u32,
        started_at: i64,
    },
    JobCompleted {
        job_id: IdRecord,
        kind: String,
        attempt: u32,
        duration_ms: u64,
        completed_at: i64,
    },
    JobFailed {
        job_id: IdRecord,
        kind: String,
        attempt: u32,
        error: String,
        will_retry: bool,
        failed_at: i64,
    },
    JobRetrying {
        job_id: IdRecord,
        kind: String,
        attempt: u32,
        next_attempt_at: i64,
        backoff_ms: u64,
    },
    JobDeadLettered {
        job_id: IdRecord,
        kind: String,
        attempts: u32,
        last_error: String,
        dead_lettered_at: i64,
    },
    JobCancelled {
        job_id: IdRecord,
        kind: String,
        cancelled_at: i64,
        cancelled_by: Option<String>,
    },
    SchedulerJobTriggered {
        schedule_name: String,
        job_id: IdRecord,
        job_type: String,
        triggered_at: i64,
        next_run_at: Option<i64>,
    },
    JobReleased {
        job_id: IdRecord,
        kind: String,
        attempt: u32,
        released_at: i64,
    },
    JobRedriven {
        job_id: IdRecord,
        kind: String,
        redriven_at: i64,
    },
    JobsPruned {
        count: u64,
        pruned_at: i64,
    },
    ScheduleChanged {
        name: String,
        change: ChangeRecord,
        at: i64,
    },
    QueuePaused {
        queue: String,
        paused: bool,
        at: i64,
    },
}

/// What happened to a schedule: the variant's index (u32), in this order.
#[derive(Serialize, Deserialize)]
enum ChangeRecord {
    Created,
    Replaced,
    Enabled,
    Disabled,
    Deleted,
}

impl From<ScheduleChange> for ChangeRecord {
    fn from(c: ScheduleChange) -> Self {
        match c {
            ScheduleChange::Created => ChangeRecord::Created,
            ScheduleChange::Replaced => ChangeRecord::Replaced,
            ScheduleChange::Enabled => ChangeRecord::Enabled,
            ScheduleChange::Disabled => ChangeRecord::Disabled,
            ScheduleChange::Deleted => ChangeRecord::Deleted,
        }
    }
}

impl From<ChangeRecord> for ScheduleChange {
    fn from(c: ChangeRecord) -> Self {
        match c {
            ChangeRecord::Created => ScheduleChange::Created,
            ChangeRecord::Replaced => ScheduleChange::Replaced,
            ChangeRecord::Enabled => ScheduleChange::Enabled,
            ChangeRecord::Disabled => ScheduleChange::Disabled,
            ChangeRecord::Deleted => ScheduleChange::Deleted,
        }
    }
}

impl From<&Event> for EventBody {
    #[allow(clippy::too_many_lines)]
    fn from(e: &Event) -> Self {
        match e.clone() {
            Event::JobEnqueued {
                job_id,
                kind,
                priority,
                enqueued_at,
                scheduled_at,
                tenant_id,
            } => EventBody::JobEnqueued {
                job_id: job_id.into(),
                kind,
                priority,
                enqueued_at: ms(enqueued_at),
                scheduled_at: ms_opt(scheduled_at),
                tenant_id,
            },
            Event::JobStarted {
                job_id,
                kind,
                attempt,
                started_at,
            } => EventBody::JobStarted {
                job_id: job_id.into(),
                kind,
                attempt,
                started_at: ms(started_at),
            },
            Event::JobCompleted {
                job_id,
                kind,
                attempt,
                duration_ms,
                completed_at,
            } => EventBody::JobCompleted {
                job_id: job_id.into(),
                kind,
                attempt,
                duration_ms,
                completed_at: ms(completed_at),
            },
            Event::JobFailed {
                job_id,
                kind,
                attempt,
                error,
                will_retry,
                failed_at,
            } => EventBody::JobFailed {
                job_id: job_id.into(),
                kind,
                attempt,
                error,
                will_retry,
                failed_at: ms(failed_at),
            },
            Event::JobRetrying {
                job_id,
                kind,
                attempt,
                next_attempt_at,
                backoff_ms,
            } => EventBody::JobRetrying {
                job_id: job_id.into(),
                kind,
                attempt,
                next_attempt_at: ms(next_attempt_at),
                backoff_ms,
            },
            Event::JobDeadLettered {
                job_id,
                kind,
                attempts,
                last_error,
                dead_lettered_at,
            } => EventBody::JobDeadLettered {
                job_id: job_id.into(),
                kind,
                attempts,
                last_error,
                dead_lettered_at: ms(dead_lettered_at),
            },
            Event::JobCancelled {
                job_id,
                kind,
                cancelled_at,
                cancelled_by,
            } => EventBody::JobCancelled {
                job_id: job_id.into(),
                kind,
                cancelled_at: ms(cancelled_at),
                cancelled_by,
            },
            Event::SchedulerJobTriggered {
                schedule_name,
                job_id,
                job_type,
                triggered_at,
                next_run_at,
            } => EventBody::SchedulerJobTriggered {
                schedule_name,
                job_id: job_id.into(),
                job_type,
                triggered_at: ms(triggered_at),
                next_run_at: ms_opt(next_run_at),
            },
            Event::JobReleased {
                job_id,
                kind,
                attempt,
                released_at,
            } => EventBody::JobReleased {
                job_id: job_id.into(),
                kind,
                attempt,
                released_at: ms(released_at),
            },
            Event::JobRedriven {
                job_id,
                kind,
                redriven_at,
            } => EventBody::JobRedriven {
                job_id: job_id.into(),
                kind,
                redriven_at: ms(redriven_at),
            },
            Event::JobsPruned { count, pruned_at } => EventBody::JobsPruned {
                count,
                pruned_at: ms(pruned_at),
            },
            Event::ScheduleChanged { name, change, at } => EventBody::ScheduleChanged {
                name,
                change: change.into(),
                at: ms(at),
            },
            Event::QueuePaused { queue, paused, at } => EventBody::QueuePaused {
                queue,
                paused,
                at: ms(at),
            },
        }
    }
}

impl TryFrom<EventBody> for Event {
    type Error = String;
    #[allow(clippy::too_many_lines)]
    fn try_from(e: EventBody) -> Result<Self, String> {
        Ok(match e {
            EventBody::JobEnqueued {
                job_id,
                kind,
                priority,
                enqueued_at,
                scheduled_at,
                tenant_id,
            } => Event::JobEnqueued {
                job_id: job_id.into(),
                kind,
                priority,
                enqueued_at: time(enqueued_at)?,
                scheduled_at: time_opt(scheduled_at)?,
                tenant_id,
            },
            EventBody::JobStarted {
                job_id,
                kind,
                attempt,
                started_at,
            } => Event::JobStarted {
                job_id: job_id.into(),
                kind,
                attempt,
                started_at: time(started_at)?,
            },
            EventBody::JobCompleted {
                job_id,
                kind,
                attempt,
                duration_ms,
                completed_at,
            } => Event::JobCompleted {
                job_id: job_id.into(),
                kind,
                attempt,
                duration_ms,
                completed_at: time(completed_at)?,
            },
            EventBody::JobFailed {
                job_id,
                kind,
                attempt,
                error,
                will_retry,
                failed_at,
            } => Event::JobFailed {
                job_id: job_id.into(),
                kind,
                attempt,
                error,
                will_retry,
                failed_at: time(failed_at)?,
            },
            EventBody::JobRetrying {
                job_id,
                kind,
                attempt,
                next_attempt_at,
                backoff_ms,
            } => Event::JobRetrying {
                job_id: job_id.into(),
                kind,
                attempt,
                next_attempt_at: time(next_attempt_at)?,
                backoff_ms,
            },
            EventBody::JobDeadLettered {
                job_id,
                kind,
                attempts,
                last_error,
                dead_lettered_at,
            } => Event::JobDeadLettered {
                job_id: job_id.into(),
                kind,
                attempts,
                last_error,
                dead_lettered_at: time(dead_lettered_at)?,
            },
            EventBody::JobCancelled {
                job_id,
                kind,
                cancelled_at,
                cancelled_by,
            } => Event::JobCancelled {
                job_id: job_id.into(),
                kind,
                cancelled_at: time(cancelled_at)?,
                cancelled_by,
            },
            EventBody::SchedulerJobTriggered {
                schedule_name,
                job_id,
                job_type,
                triggered_at,
                next_run_at,
            } => Event::SchedulerJobTriggered {
                schedule_name,
                job_id: job_id.into(),
                job_type,
                triggered_at: time(triggered_at)?,
                next_run_at: time_opt(next_run_at)?,
            },
            EventBody::JobReleased {
                job_id,
                kind,
                attempt,
                released_at,
            } => Event::JobReleased {
                job_id: job_id.into(),
                kind,
                attempt,
                released_at: time(released_at)?,
            },
            EventBody::JobRedriven {
                job_id,
                kind,
                redriven_at,
            } => Event::JobRedriven {
                job_id: job_id.into(),
                kind,
                redriven_at: time(redriven_at)?,
            },
            EventBody::JobsPruned { count, pruned_at } => Event::JobsPruned {
                count,
                pruned_at: time(pruned_at)?,
            },
            EventBody::ScheduleChanged { name, change, at } => Event::ScheduleChanged {
                name,
                change: change.into(),
                at: time(at)?,
            },
            EventBody::QueuePaused { queue, paused, at } => Event::QueuePaused {
                queue,
                paused,
                at: time(at)?,
            },
        })
    }
}

impl Stored for StoredEventBlock {
    type Record = Vec<StoredEventRecord>;
    fn to_record(&self) -> Vec<StoredEventRecord> {
        self.iter()
            .map(|e| StoredEventRecord {
                at_ms: e.at_ms,
                event: EventBody::from(&e.event),
            })
            .collect()
    }
    fn from_record(r: Vec<StoredEventRecord>) -> Result<Self, String> {
        r.into_iter()
            .map(|e| {
                Ok(StoredEvent {
                    at_ms: e.at_ms,
                    event: Event::try_from(e.event)?,
                })
            })
            .collect()
    }
}
