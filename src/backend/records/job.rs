//! The job record (`j` + id): a job without its payload (stored raw under `p` + id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ms, ms_opt, time, time_opt, IdRecord};
use crate::backend::codec::Stored;
use crate::model::job::{Backoff, Execution, Job, JobStatus, LeaseState};

#[derive(Serialize, Deserialize)]
pub(crate) struct JobRecord {
    id: IdRecord,
    kind: String,
    version: String,
    queue: String,
    status: StatusRecord,
    priority: i32,
    attempts: u32,
    max_attempts: u32,
    created_at: i64,
    updated_at: i64,
    scheduled_at: Option<i64>,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    last_error: Option<String>,
    timeout_ms: Option<u64>,
    dedupe_key: Option<String>,
    tenant_id: Option<String>,
    user_id: Option<String>,
    trace_id: Option<String>,
    metadata: BTreeMap<String, String>,
    result: Option<Vec<u8>>,
    executions: Vec<ExecutionRecord>,
    backoff: Option<BackoffRecord>,
    lease: Option<LeaseRecord>,
}

/// A status: the variant's index (u32), in this order.
#[derive(Serialize, Deserialize)]
pub(super) enum StatusRecord {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    DeadLetter,
}

#[derive(Serialize, Deserialize)]
struct ExecutionRecord {
    attempt_number: u32,
    started_at: i64,
    completed_at: Option<i64>,
    duration_ms: Option<u64>,
    success: Option<bool>,
    error: Option<String>,
    worker_id: Option<String>,
    released: bool,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BackoffRecord {
    initial_ms: u64,
    multiplier: f64,
    max_ms: u64,
    jitter: f64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct LeaseRecord {
    token: u64,
    pub(super) expires_ms: i64,
}

impl From<JobStatus> for StatusRecord {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Pending => StatusRecord::Pending,
            JobStatus::Running => StatusRecord::Running,
            JobStatus::Completed => StatusRecord::Completed,
            JobStatus::Failed => StatusRecord::Failed,
            JobStatus::Cancelled => StatusRecord::Cancelled,
            JobStatus::DeadLetter => StatusRecord::DeadLetter,
        }
    }
}

impl From<StatusRecord> for JobStatus {
    fn from(s: StatusRecord) -> Self {
        match s {
            StatusRecord::Pending => JobStatus::Pending,
            StatusRecord::Running => JobStatus::Running,
            StatusRecord::Completed => JobStatus::Completed,
            StatusRecord::Failed => JobStatus::Failed,
            StatusRecord::Cancelled => JobStatus::Cancelled,
            StatusRecord::DeadLetter => JobStatus::DeadLetter,
        }
    }
}

impl From<&Execution> for ExecutionRecord {
    fn from(e: &Execution) -> Self {
        ExecutionRecord {
            attempt_number: e.attempt_number,
            started_at: ms(e.started_at),
            completed_at: ms_opt(e.completed_at),
            duration_ms: e.duration_ms,
            success: e.success,
            error: e.error.clone(),
            worker_id: e.worker_id.clone(),
            released: e.released,
        }
    }
}

impl TryFrom<ExecutionRecord> for Execution {
    type Error = String;
    fn try_from(e: ExecutionRecord) -> Result<Self, String> {
        Ok(Execution {
            attempt_number: e.attempt_number,
            started_at: time(e.started_at)?,
            completed_at: time_opt(e.completed_at)?,
            duration_ms: e.duration_ms,
            success: e.success,
            error: e.error,
            worker_id: e.worker_id,
            released: e.released,
        })
    }
}

impl From<&Backoff> for BackoffRecord {
    fn from(b: &Backoff) -> Self {
        BackoffRecord {
            initial_ms: u64::try_from(b.initial.as_millis()).unwrap_or(u64::MAX),
            multiplier: b.multiplier,
            max_ms: u64::try_from(b.max.as_millis()).unwrap_or(u64::MAX),
            jitter: b.jitter,
        }
    }
}

impl From<BackoffRecord> for Backoff {
    fn from(b: BackoffRecord) -> Self {
        Backoff {
            initial: std::time::Duration::from_millis(b.initial_ms),
            multiplier: b.multiplier,
            max: std::time::Duration::from_millis(b.max_ms),
            jitter: b.jitter,
        }
    }
}

impl From<&Job> for JobRecord {
    fn from(j: &Job) -> Self {
        JobRecord {
            id: j.id.into(),
            kind: j.kind.clone(),
            version: j.version.clone(),
            queue: j.queue.clone(),
            status: j.status.into(),
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: ms(j.created_at),
            updated_at: ms(j.updated_at),
            scheduled_at: ms_opt(j.scheduled_at),
            started_at: ms_opt(j.started_at),
            completed_at: ms_opt(j.completed_at),
            last_error: j.last_error.clone(),
            timeout_ms: j
                .timeout
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            dedupe_key: j.dedupe_key.clone(),
            tenant_id: j.tenant_id.clone(),
            user_id: j.user_id.clone(),
            trace_id: j.trace_id.clone(),
            metadata: j.metadata.clone(),
            result: j.result.clone(),
            executions: j.executions.iter().map(ExecutionRecord::from).collect(),
            backoff: j.backoff.as_ref().map(BackoffRecord::from),
            lease: j.lease.as_ref().map(|l| LeaseRecord {
                token: l.token,
                expires_ms: l.expires_ms,
            }),
        }
    }
}

impl TryFrom<JobRecord> for Job {
    type Error = String;
    fn try_from(j: JobRecord) -> Result<Self, String> {
        Ok(Job {
            id: j.id.into(),
            kind: j.kind,
            version: j.version,
            queue: j.queue,
            // Stored under its own key; the reader fills it in when it wants it.
            payload: Vec::new(),
            status: j.status.into(),
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: time(j.created_at)?,
            updated_at: time(j.updated_at)?,
            scheduled_at: time_opt(j.scheduled_at)?,
            started_at: time_opt(j.started_at)?,
            completed_at: time_opt(j.completed_at)?,
            last_error: j.last_error,
            timeout: j.timeout_ms.map(std::time::Duration::from_millis),
            dedupe_key: j.dedupe_key,
            tenant_id: j.tenant_id,
            user_id: j.user_id,
            trace_id: j.trace_id,
            metadata: j.metadata,
            result: j.result,
            executions: j
                .executions
                .into_iter()
                .map(Execution::try_from)
                .collect::<Result<_, _>>()?,
            backoff: j.backoff.map(Backoff::from),
            lease: j.lease.map(|l| LeaseState {
                token: l.token,
                expires_ms: l.expires_ms,
            }),
        })
    }
}

impl Stored for Job {
    type Record = JobRecord;
    fn to_record(&self) -> JobRecord {
        JobRecord::from(self)
    }
    fn from_record(r: JobRecord) -> Result<Self, String> {
        Job::try_from(r)
    }
}
