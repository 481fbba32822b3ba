//! The contract's JSON shapes: camelCase field names, RFC 3339 UTC times with milliseconds,
//! payloads verbatim when they are JSON (else a base64 string with
//! `"payloadEncoding": "base64"`; see [`bytes`]).
//!
//! Each shape is a serde-derived view over a model type, so the field list of a shape is
//! written once, here; every door (the control socket, the CLI's `--json`) serializes
//! through these views. The functions return `serde_json::Value` for callers that want a
//! document to inspect.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::model::error::Error;
use crate::model::event::EventRecord;
use crate::model::job::{Execution, Job, JobId};

mod de;
mod event;
pub use de::{EventJson, JobJson, ScheduleJson, StatsJson};
mod payload;
pub use payload::{base64, bytes, bytes_encoding, BASE64};
pub(crate) use payload::{decode_value, Shown};
mod error;
use crate::model::schedule::ScheduledJob;
use crate::model::types::{Counts, Stats};
pub use error::ErrorJson;
pub(crate) use error::ErrorView;
pub(crate) use event::EventView;

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-28T20:00:00.123Z`.
#[must_use]
pub fn time(t: DateTime<Utc>) -> String {
    crate::model::clock::rfc3339_ms(t)
}

/// A view as a `Value` (views hold only strings, numbers and maps: this cannot fail).
fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(super) fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time(*t))
}

#[allow(clippy::ref_option)] // serde's serialize_with hands over `&Option<T>`
pub(super) fn ts_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time(*t)),
        None => s.serialize_none(),
    }
}

fn raw<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    Shown::of(b).serialize(s)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One attempt, as in a job's `executions`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionView<'a> {
    attempt_number: u32,
    #[serde(serialize_with = "ts")]
    started_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
    completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_id: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    released: bool,
}

impl<'a> From<&'a Execution> for ExecutionView<'a> {
    fn from(e: &'a Execution) -> Self {
        ExecutionView {
            attempt_number: e.attempt_number,
            started_at: e.started_at,
            completed_at: e.completed_at,
            duration_ms: e.duration_ms,
            success: e.success,
            error: e.error.as_deref(),
            worker_id: e.worker_id.as_deref(),
            released: e.released,
        }
    }
}

/// A job as `jobs.get` returns it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobView<'a> {
    id: JobId,
    #[serde(rename = "type")]
    kind: &'a str,
    version: &'a str,
    queue: &'a str,
    #[serde(serialize_with = "raw")]
    payload: &'a [u8],
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_encoding: Option<&'static str>,
    status: &'static str,
    priority: i32,
    attempts: u32,
    #[serde(rename = "maxRetries")]
    max_attempts: u32,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    updated_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
    scheduled_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
    started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
    completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedupe_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    metadata: &'a std::collections::BTreeMap<String, String>,
    #[serde(
        serialize_with = "result_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    result: Option<&'a [u8]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_encoding: Option<&'static str>,
    executions: Vec<ExecutionView<'a>>,
    #[serde(serialize_with = "ts_opt", skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<DateTime<Utc>>,
}

#[allow(clippy::ref_option)] // serde's serialize_with hands over `&Option<T>`
fn result_bytes<S: Serializer>(r: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    Shown::of(r.unwrap_or_default()).serialize(s)
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(j: &'a Job) -> Self {
        JobView {
            id: j.id,
            kind: &j.kind,
            version: &j.version,
            queue: &j.queue,
            payload: &j.payload,
            payload_encoding: bytes_encoding(&j.payload),
            status: j.status.as_str(),
            priority: j.priority,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            created_at: j.created_at,
            updated_at: j.updated_at,
            scheduled_at: j.scheduled_at,
            started_at: j.started_at,
            completed_at: j.completed_at,
            last_error: j.last_error.as_deref(),
            timeout_ms: j
                .timeout
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            dedupe_key: j.dedupe_key.as_deref(),
            tenant_id: j.tenant_id.as_deref(),
            user_id: j.user_id.as_deref(),
            trace_id: j.trace_id.as_deref(),
            metadata: &j.metadata,
            result: j.result.as_deref(),
            result_encoding: j.result.as_deref().and_then(bytes_encoding),
            executions: j.executions.iter().map(ExecutionView::from).collect(),
            lease_expires_at: j.lease_expires_at(),
        }
    }
}

/// A job as in `jobs.get`.
#[must_use]
pub fn job(j: &Job) -> Value {
    value(JobView::from(j))
}

/// Counts by status, as in `jobs.stats` (global and per queue).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsView {
    pending: u64,
    running: u64,
    completed: u64,
    failed: u64,
    dead_letter: u64,
    cancelled: u64,
    delayed: u64,
}

impl From<&Counts> for CountsView {
    fn from(c: &Counts) -> Self {
        CountsView {
            pending: c.pending,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            dead_letter: c.dead_letter,
            cancelled: c.cancelled,
            delayed: c.delayed,
        }
    }
}

#[derive(Serialize)]
struct QueueView {
    #[serde(flatten)]
    counts: CountsView,
    paused: bool,
}

/// Stats as `jobs.stats` returns them: the global counts, then `queues`.
#[derive(Serialize)]
pub(crate) struct StatsView<'a> {
    #[serde(flatten)]
    total: CountsView,
    queues: std::collections::BTreeMap<&'a str, QueueView>,
}

impl<'a> From<&'a Stats> for StatsView<'a> {
    fn from(s: &'a Stats) -> Self {
        StatsView {
            total: CountsView::from(&s.total),
            queues: s
                .queues
                .iter()
                .map(|(name, q)| {
                    let view = QueueView {
                        counts: CountsView::from(&q.counts),
                        paused: q.paused,
                    };
                    (name.as_str(), view)
                })
                .collect(),
        }
    }
}

/// Stats as in `jobs.stats`, with a `queues` object.
#[must_use]
pub fn stats(s: &Stats) -> Value {
    value(StatsView::from(s))
}

/// An event line: `seq`, `name`, then the payload fields of the event.
#[must_use]
pub fn event(r: &EventRecord) -> Value {
    value(EventView::from(r))
}

/// A schedule as `jobs.schedule.list` returns it, plus the settings of the jobs it makes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScheduleView<'a> {
    id: &'a str,
    name: &'a str,
    cron_expression: &'a str,
    timezone: &'a str,
    job_type: &'a str,
    enabled: bool,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(serialize_with = "ts_opt")]
    last_run_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt")]
    next_run_at: Option<DateTime<Utc>>,
    queue: &'a str,
    priority: i32,
    #[serde(rename = "maxRetries", skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(serialize_with = "raw", skip_serializing_if = "<[u8]>::is_empty")]
    payload: &'a [u8],
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_encoding: Option<&'static str>,
}

impl<'a> From<&'a ScheduledJob> for ScheduleView<'a> {
    fn from(s: &'a ScheduledJob) -> Self {
        ScheduleView {
            id: &s.id,
            name: &s.name,
            cron_expression: &s.cron_expression,
            timezone: &s.timezone,
            job_type: &s.job_type,
            enabled: s.enabled,
            created_at: s.created_at,
            description: s.description.as_deref(),
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
            queue: s.queue.as_deref().unwrap_or("default"),
            priority: s.priority,
            max_attempts: s.max_attempts,
            payload: &s.payload,
            payload_encoding: bytes_encoding(&s.payload),
        }
    }
}

/// A schedule as in `jobs.schedule.list`, plus the job settings.
#[must_use]
pub fn schedule(s: &ScheduledJob) -> Value {
    value(ScheduleView::from(s))
}

/// The schedule list: `{"schedules": [...]}`.
#[must_use]
pub fn schedules(list: &[ScheduledJob]) -> Value {
    json!({ "schedules": list.iter().map(schedule).collect::<Vec<_>>() })
}

/// An error as `{"error":{"code":..,"message":..}}` plus the variant's details
/// (`jobId`, `name`, ...; see [`ErrorJson`]).
#[must_use]
pub fn error(e: &Error) -> Value {
    json!({ "error": ErrorView::from(e) })
}
