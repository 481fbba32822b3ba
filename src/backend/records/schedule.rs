//! The schedule record (`s` + name).

use serde::{Deserialize, Serialize};

use super::{ms, ms_opt, time, time_opt};
use crate::backend::codec::Stored;
use crate::model::schedule::ScheduledJob;

#[derive(Serialize, Deserialize)]
pub(crate) struct ScheduleRecord {
    id: String,
    name: String,
    cron_expression: String,
    timezone: String,
    job_type: String,
    enabled: bool,
    created_at: i64,
    description: Option<String>,
    last_run_at: Option<i64>,
    next_run_at: Option<i64>,
    payload: Vec<u8>,
    max_attempts: Option<u32>,
    queue: Option<String>,
    priority: i32,
}

impl From<&ScheduledJob> for ScheduleRecord {
    fn from(s: &ScheduledJob) -> Self {
        ScheduleRecord {
            id: s.id.clone(),
            name: s.name.clone(),
            cron_expression: s.cron_expression.clone(),
            timezone: s.timezone.clone(),
            job_type: s.job_type.clone(),
            enabled: s.enabled,
            created_at: ms(s.created_at),
            description: s.description.clone(),
            last_run_at: ms_opt(s.last_run_at),
            next_run_at: ms_opt(s.next_run_at),
            payload: s.payload.clone(),
            max_attempts: s.max_attempts,
            queue: s.queue.clone(),
            priority: s.priority,
        }
    }
}

impl TryFrom<ScheduleRecord> for ScheduledJob {
    type Error = String;
    fn try_from(s: ScheduleRecord) -> Result<Self, String> {
        Ok(ScheduledJob {
            id: s.id,
            name: s.name,
            cron_expression: s.cron_expression,
            timezone: s.timezone,
            job_type: s.job_type,
            enabled: s.enabled,
            created_at: time(s.created_at)?,
            description: s.description,
            last_run_at: time_opt(s.last_run_at)?,
            next_run_at: time_opt(s.next_run_at)?,
            payload: s.payload,
            max_attempts: s.max_attempts,
            queue: s.queue,
            priority: s.priority,
        })
    }
}

impl Stored for ScheduledJob {
    type Record = ScheduleRecord;
    fn to_record(&self) -> ScheduleRecord {
        ScheduleRecord::from(self)
    }
    fn from_record(r: ScheduleRecord) -> Result<Self, String> {
        ScheduledJob::try_from(r)
    }
}
