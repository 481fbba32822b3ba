//! The events of the contract and the records of the append-only event log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::job::JobId;

/// One change, as appended to the event log. The first eight variants are the seed's events
/// with exactly its payloads; the others are this project's additions (see README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// `job.enqueued`
    JobEnqueued {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// Its priority.
        priority: i32,
        /// When it was enqueued.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        enqueued_at: DateTime<Utc>,
        /// When it becomes claimable.
        #[serde(with = "chrono::serde::ts_milliseconds_option")]
        scheduled_at: Option<DateTime<Utc>>,
        /// Its tenant.
        tenant_id: Option<String>,
    },
    /// `job.started`
    JobStarted {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// 1-based attempt number.
        attempt: u32,
        /// When the attempt started.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        started_at: DateTime<Utc>,
    },
    /// `job.completed`
    JobCompleted {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// The attempt that completed.
        attempt: u32,
        /// How long the attempt ran.
        duration_ms: u64,
        /// When it completed.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        completed_at: DateTime<Utc>,
    },
    /// `job.failed`
    JobFailed {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// The attempt that failed.
        attempt: u32,
        /// The error.
        error: String,
        /// Whether another attempt follows.
        will_retry: bool,
        /// When it failed.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        failed_at: DateTime<Utc>,
    },
    /// `job.retrying`
    JobRetrying {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// The attempt that failed.
        attempt: u32,
        /// When the next attempt becomes claimable.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        next_attempt_at: DateTime<Utc>,
        /// The delay chosen.
        backoff_ms: u64,
    },
    /// `job.dead_lettered`
    JobDeadLettered {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last_error: String,
        /// When it was dead-lettered.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        dead_lettered_at: DateTime<Utc>,
    },
    /// `job.cancelled`
    JobCancelled {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// When it was cancelled.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        cancelled_at: DateTime<Utc>,
        /// Who cancelled it, if known.
        cancelled_by: Option<String>,
    },
    /// `scheduler.job_triggered`
    SchedulerJobTriggered {
        /// The schedule's name.
        schedule_name: String,
        /// The job it enqueued.
        job_id: JobId,
        /// The job's type.
        job_type: String,
        /// When it fired.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        triggered_at: DateTime<Utc>,
        /// Its next tick.
        #[serde(with = "chrono::serde::ts_milliseconds_option")]
        next_run_at: Option<DateTime<Utc>>,
    },
    /// `job.released` (beyond the seed): a running job handed back without counting the attempt.
    JobReleased {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// The attempt that was handed back.
        attempt: u32,
        /// When.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        released_at: DateTime<Utc>,
    },
    /// `job.redriven` (beyond the seed): a dead-lettered or failed job sent back to pending.
    JobRedriven {
        /// The job.
        job_id: JobId,
        /// Its type.
        kind: String,
        /// When.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        redriven_at: DateTime<Utc>,
    },
    /// `jobs.pruned` (beyond the seed): finished jobs removed by retention.
    JobsPruned {
        /// How many jobs were removed.
        count: u64,
        /// When.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        pruned_at: DateTime<Utc>,
    },
    /// `schedule.created`, `schedule.replaced`, `schedule.enabled`, `schedule.disabled`,
    /// `schedule.deleted` (beyond the seed).
    ScheduleChanged {
        /// The schedule's name.
        name: String,
        /// What happened.
        change: ScheduleChange,
        /// When.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        at: DateTime<Utc>,
    },
    /// `queue.paused` / `queue.resumed` (beyond the seed).
    QueuePaused {
        /// The queue.
        queue: String,
        /// True = paused, false = resumed.
        paused: bool,
        /// When.
        #[serde(with = "chrono::serde::ts_milliseconds")]
        at: DateTime<Utc>,
    },
}

impl Event {
    /// The event's contract name, e.g. `job.enqueued`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Event::JobEnqueued { .. } => "job.enqueued",
            Event::JobStarted { .. } => "job.started",
            Event::JobCompleted { .. } => "job.completed",
            Event::JobFailed { .. } => "job.failed",
            Event::JobRetrying { .. } => "job.retrying",
            Event::JobDeadLettered { .. } => "job.dead_lettered",
            Event::JobCancelled { .. } => "job.cancelled",
            Event::SchedulerJobTriggered { .. } => "scheduler.job_triggered",
            Event::JobReleased { .. } => "job.released",
            Event::JobRedriven { .. } => "job.redriven",
            Event::JobsPruned { .. } => "jobs.pruned",
            Event::ScheduleChanged { change, .. } => match change {
                ScheduleChange::Created => "schedule.created",
                ScheduleChange::Replaced => "schedule.replaced",
                ScheduleChange::Enabled => "schedule.enabled",
                ScheduleChange::Disabled => "schedule.disabled",
                ScheduleChange::Deleted => "schedule.deleted",
            },
            Event::QueuePaused { paused: true, .. } => "queue.paused",
            Event::QueuePaused { paused: false, .. } => "queue.resumed",
        }
    }

    /// The job this event is about, if it is about one job.
    #[must_use]
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::JobEnqueued { job_id, .. }
            | Event::JobStarted { job_id, .. }
            | Event::JobCompleted { job_id, .. }
            | Event::JobFailed { job_id, .. }
            | Event::JobRetrying { job_id, .. }
            | Event::JobDeadLettered { job_id, .. }
            | Event::JobCancelled { job_id, .. }
            | Event::SchedulerJobTriggered { job_id, .. }
            | Event::JobReleased { job_id, .. }
            | Event::JobRedriven { job_id, .. } => Some(*job_id),
            Event::JobsPruned { .. }
            | Event::QueuePaused { .. }
            | Event::ScheduleChanged { .. } => None,
        }
    }
}

/// What happened to a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleChange {
    /// Created.
    Created,
    /// Replaced by a create with `replace`.
    Replaced,
    /// Toggled on.
    Enabled,
    /// Toggled off.
    Disabled,
    /// Deleted.
    Deleted,
}

/// An event with its position in the log. Sequence numbers start at 1 and have no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the log, from 1, contiguous.
    pub seq: u64,
    /// The event.
    pub event: Event,
}
