//! The contract JSON read back into model values: the inverse of the views, for clients of
//! a door (the typed control-socket client above all). Each type here deserializes one
//! shape and converts into the model type with `TryFrom`; unknown fields are ignored, so a
//! newer server's additions do not break an older client.
//!
//! What the JSON does not carry comes back at its default: a job's `backoff` (`None`) and
//! its lease's fencing token (0, with `leaseExpiresAt` kept); a schedule's queue `default`
//! reads as `None`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::payload::decode;

mod event;
use crate::model::error::Error;
use crate::model::job::{Execution, Job, JobId, LeaseState};
use crate::model::schedule::ScheduledJob;
use crate::model::types::{Counts, QueueStats, Stats};
pub use event::EventJson;

/// A time as the contract prints it (RFC 3339).
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))
}

fn de_ts<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s).map_err(serde::de::Error::custom)
}

fn de_ts_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_time(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// A field that is present (even as `null`): `Some(value)`; absent ones get the default
/// `None` from `#[serde(default)]`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn bad(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Storage {
        context: format!("the {what} JSON does not decode: {detail}"),
        source: None,
    }
}

/// One attempt, as in a job's `executions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionJson {
    attempt_number: u32,
    #[serde(deserialize_with = "de_ts")]
    started_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    worker_id: Option<String>,
    #[serde(default)]
    released: bool,
}

impl From<ExecutionJson> for Execution {
    fn from(e: ExecutionJson) -> Self {
        Execution {
            attempt_number: e.attempt_number,
            started_at: e.started_at,
            completed_at: e.completed_at,
            duration_ms: e.duration_ms,
            success: e.success,
            error: e.error,
            worker_id: e.worker_id,
            released: e.released,
        }
    }
}

/// A job as `jobs.get` prints it; `Job::try_from` reads it back.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobJson {
    id: JobId,
    #[serde(rename = "type")]
    kind: String,
    version: String,
    queue: String,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    payload_encoding: Option<String>,
    status: String,
    priority: i32,
    attempts: u32,
    #[serde(rename = "maxRetries")]
    max_attempts: u32,
    #[serde(deserialize_with = "de_ts")]
    created_at: DateTime<Utc>,
    #[serde(deserialize_with = "de_ts")]
    updated_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    scheduled_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    started_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    dedupe_key: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Option<Box<RawValue>>>,
    #[serde(default)]
    result_encoding: Option<String>,
    #[serde(default)]
    executions: Vec<ExecutionJson>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    lease_expires_at: Option<DateTime<Utc>>,
    /// Only in `jobs.enqueue` outputs: a live job held the dedupe key.
    #[serde(default)]
    deduplicated: bool,
}

impl JobJson {
    /// Whether this is an enqueue's answer for a dedupe hit.
    #[must_use]
    pub fn deduplicated(&self) -> bool {
        self.deduplicated
    }
}

impl TryFrom<JobJson> for Job {
    type Error = Error;
    fn try_from(j: JobJson) -> Result<Job, Error> {
        let payload = decode(
            "payload",
            j.payload.as_deref(),
            j.payload_encoding.as_deref(),
        )
        .map_err(|e| bad("job", e))?;
        let result = match j.result {
            None => None,
            Some(r) => Some(
                decode("result", r.as_deref(), j.result_encoding.as_deref())
                    .map_err(|e| bad("job", e))?,
            ),
        };
        Ok(Job {
            id: j.id,
            kind: j.kind,
            version: j.version,
            queue: j.queue,
            payload,
            status: j.status.parse().map_err(|e: Error| bad("job", e))?,
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: j.created_at,
            updated_at: j.updated_at,
            scheduled_at: j.scheduled_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
            last_error: j.last_error,
            timeout: j.timeout_ms.map(std::time::Duration::from_millis),
            dedupe_key: j.dedupe_key,
            tenant_id: j.tenant_id,
            user_id: j.user_id,
            trace_id: j.trace_id,
            metadata: j.metadata,
            result,
            executions: j.executions.into_iter().map(Execution::from).collect(),
            backoff: None,
            lease: j.lease_expires_at.map(|t| LeaseState {
                token: 0,
                expires_ms: t.timestamp_millis(),
            }),
        })
    }
}

/// Counts by status, as in `jobs.stats`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountsJson {
    pending: u64,
    running: u64,
    completed: u64,
    failed: u64,
    dead_letter: u64,
    cancelled: u64,
    delayed: u64,
}

impl From<CountsJson> for Counts {
    fn from(c: CountsJson) -> Self {
        Counts {
            pending: c.pending,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            dead_letter: c.dead_letter,
            delayed: c.delayed,
        }
    }
}

#[derive(Debug, Deserialize)]
struct QueueJson {
    #[serde(flatten)]
    counts: CountsJson,
    paused: bool,
}

/// Stats as `jobs.stats` prints them; `Stats::from` reads them back.
#[derive(Debug, Deserialize)]
pub struct StatsJson {
    #[serde(flatten)]
    total: CountsJson,
    #[serde(default)]
    queues: BTreeMap<String, QueueJson>,
}

impl From<StatsJson> for Stats {
    fn from(s: StatsJson) -> Self {
        Stats {
            total: s.total.into(),
            queues: s
                .queues
                .into_iter()
                .map(|(name, q)| {
                    let q = QueueStats {
                        counts: q.counts.into(),
                        paused: q.paused,
                    };
                    (name, q)
                })
                .collect(),
        }
    }
}

/// A schedule as `jobs.schedule.list` prints it; `ScheduledJob::try_from` reads it back.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleJson {
    id: String,
    name: String,
    cron_expression: String,
    timezone: String,
    job_type: String,
    enabled: bool,
    #[serde(deserialize_with = "de_ts")]
    created_at: DateTime<Utc>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    last_run_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de_ts_opt")]
    next_run_at: Option<DateTime<Utc>>,
    queue: String,
    #[serde(default)]
    priority: i32,
    #[serde(default, rename = "maxRetries")]
    max_attempts: Option<u32>,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    payload_encoding: Option<String>,
}

impl TryFrom<ScheduleJson> for ScheduledJob {
    type Error = Error;
    fn try_from(s: ScheduleJson) -> Result<ScheduledJob, Error> {
        let payload = decode(
            "payload",
            s.payload.as_deref(),
            s.payload_encoding.as_deref(),
        )
        .map_err(|e| bad("schedule", e))?;
        Ok(ScheduledJob {
            id: s.id,
            name: s.name,
            cron_expression: s.cron_expression,
            timezone: s.timezone,
            job_type: s.job_type,
            enabled: s.enabled,
            created_at: s.created_at,
            description: s.description,
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
            payload,
            max_attempts: s.max_attempts,
            queue: (s.queue != "default").then_some(s.queue),
            priority: s.priority,
        })
    }
}

#[cfg(test)]
mod tests;
