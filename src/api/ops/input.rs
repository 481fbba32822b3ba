//! The inputs of the operations: serde types with the contract's field names (camelCase,
//! unknown fields rejected), and their conversion to the model's `NewJob` / `NewSchedule`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::payload::{payload_bytes, payload_json, Payload};

mod schedule;
use crate::model::error::{Error, Result};
use crate::model::job::{JobId, NewJob};
use crate::model::limits;
pub use schedule::ScheduleInput;

/// An op's input type: serde-derived, read from a JSON object (`null` = empty).
pub(super) trait Input: DeserializeOwned + Sized {
    fn parse(op: &str, input: Value) -> Result<Self> {
        from_value(op, input)
    }
}

fn from_value<T: DeserializeOwned>(op: &str, input: Value) -> Result<T> {
    let input = match input {
        Value::Null => Value::Object(serde_json::Map::new()),
        v @ Value::Object(_) => v,
        _ => return Err(Error::invalid(format!("{op}: input must be a JSON object"))),
    };
    serde_json::from_value(input).map_err(|e| Error::invalid(format!("{op}: {e}")))
}

/// The input of ops that take none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}
impl Input for NoInput {}

/// `jobs.enqueue`'s input (and each item of a batch). The wire fields are those of
/// `EnqueueWire` (camelCase; `payload` with `payloadEncoding`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EnqueueWire", into = "EnqueueWire")]
pub struct EnqueueInput {
    /// The job type (`type`).
    pub kind: String,
    /// The payload: `payload`, plus `"payloadEncoding": "base64"` for raw bytes.
    pub payload: Option<Payload>,
    /// Delay before the first attempt, in seconds.
    pub delay_seconds: Option<f64>,
    /// Total attempts.
    pub max_retries: Option<u32>,
    /// Higher first.
    pub priority: Option<i32>,
    /// Attempt time limit in milliseconds.
    pub timeout_ms: Option<u64>,
    /// At most one live job per key.
    pub dedupe_key: Option<String>,
    /// The queue.
    pub queue: Option<String>,
    /// Run no earlier than this RFC 3339 time.
    pub run_at: Option<String>,
    /// Carried through.
    pub tenant_id: Option<String>,
    /// Carried through.
    pub user_id: Option<String>,
    /// Carried through.
    pub trace_id: Option<String>,
    /// Free-form string map.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Job schema version.
    pub version: Option<String>,
}

/// [`EnqueueInput`] as JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnqueueWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dedupe_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

impl TryFrom<EnqueueWire> for EnqueueInput {
    type Error = String;
    fn try_from(w: EnqueueWire) -> std::result::Result<Self, String> {
        Ok(EnqueueInput {
            kind: w.kind,
            payload: Payload::from_wire(w.payload, w.payload_encoding)?,
            delay_seconds: w.delay_seconds,
            max_retries: w.max_retries,
            priority: w.priority,
            timeout_ms: w.timeout_ms,
            dedupe_key: w.dedupe_key,
            queue: w.queue,
            run_at: w.run_at,
            tenant_id: w.tenant_id,
            user_id: w.user_id,
            trace_id: w.trace_id,
            metadata: w.metadata,
            version: w.version,
        })
    }
}

impl From<EnqueueInput> for EnqueueWire {
    fn from(i: EnqueueInput) -> Self {
        let (payload, payload_encoding) = i.payload.map(Payload::into_wire).unwrap_or_default();
        EnqueueWire {
            kind: i.kind,
            payload,
            payload_encoding,
            delay_seconds: i.delay_seconds,
            max_retries: i.max_retries,
            priority: i.priority,
            timeout_ms: i.timeout_ms,
            dedupe_key: i.dedupe_key,
            queue: i.queue,
            run_at: i.run_at,
            tenant_id: i.tenant_id,
            user_id: i.user_id,
            trace_id: i.trace_id,
            metadata: i.metadata,
            version: i.version,
        }
    }
}

impl Input for EnqueueInput {}

impl EnqueueInput {
    /// The job to enqueue. Values are checked by the spool, as for any caller.
    pub(super) fn into_new_job(self, op: &str) -> Result<NewJob> {
        let mut job = NewJob::new(self.kind, payload_bytes(op, self.payload)?);
        job.version = self.version;
        job.queue = self.queue;
        job.priority = self.priority.unwrap_or_default();
        job.delay = self
            .delay_seconds
            .map(|d| limits::delay_from_secs("delaySeconds", d))
            .transpose()?;
        if let Some(at) = self.run_at {
            let t = chrono::DateTime::parse_from_rfc3339(&at).map_err(|e| {
                Error::invalid(format!("runAt {at:?} is not an RFC 3339 time ({e})"))
            })?;
            job.run_at = Some(t.with_timezone(&chrono::Utc));
        }
        job.max_attempts = self.max_retries;
        job.timeout = self.timeout_ms.map(std::time::Duration::from_millis);
        job.dedupe_key = self.dedupe_key;
        job.tenant_id = self.tenant_id;
        job.user_id = self.user_id;
        job.trace_id = self.trace_id;
        job.metadata = self.metadata.unwrap_or_default();
        Ok(job)
    }
}

impl TryFrom<&NewJob> for EnqueueInput {
    type Error = Error;
    /// The input that enqueues `job` through any door: the payload as raw bytes (so it
    /// arrives exactly), the delay in seconds, `runAt` in RFC 3339 with full precision.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a job with a [`Backoff`](crate::Backoff): the contract's
    /// input has no field for it (enqueue such a job on the spool itself).
    fn try_from(job: &NewJob) -> Result<Self> {
        if job.backoff.is_some() {
            return Err(Error::invalid(
                "a job's backoff cannot be sent in jobs.enqueue (the input has no field for \
                 it); leave it unset to use the spool's default",
            ));
        }
        Ok(EnqueueInput {
            kind: job.kind.clone(),
            payload: payload_json(&job.payload),
            delay_seconds: job.delay.map(|d| d.as_secs_f64()),
            max_retries: job.max_attempts,
            priority: (job.priority != 0).then_some(job.priority),
            timeout_ms: job
                .timeout
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            dedupe_key: job.dedupe_key.clone(),
            queue: job.queue.clone(),
            run_at: job
                .run_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            tenant_id: job.tenant_id.clone(),
            user_id: job.user_id.clone(),
            trace_id: job.trace_id.clone(),
            metadata: (!job.metadata.is_empty()).then(|| job.metadata.clone()),
            version: job.version.clone(),
        })
    }
}

/// `jobs.enqueue.batch`'s input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// The jobs, enqueued all or nothing.
    pub jobs: Vec<EnqueueInput>,
}

impl Input for BatchInput {
    /// Item by item, so an error names the item (`jobs[3]: ...`).
    fn parse(op: &str, input: Value) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            jobs: Vec<Value>,
        }
        let raw: Raw = from_value(op, input)?;
        let jobs = raw
            .jobs
            .into_iter()
            .enumerate()
            .map(|(i, v)| from_value(&format!("{op}: jobs[{i}]"), v))
            .collect::<Result<_>>()?;
        Ok(BatchInput { jobs })
    }
}

/// `jobs.get`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobIdInput {
    /// The job.
    pub job_id: JobId,
}
impl Input for JobIdInput {}

/// `jobs.cancel`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelInput {
    /// The job.
    pub job_id: JobId,
    /// Who cancels it (recorded in `job.cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
}
impl Input for CancelInput {}

/// `jobs.list`'s input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    /// Only this status (`pending`, ..., `dead_letter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Only this type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only jobs with exactly this tenant id.
    #[serde(default, rename = "tenantId", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Only jobs with exactly this dedupe key.
    #[serde(default, rename = "dedupeKey", skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    /// Page size, 1..=10000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Start after this job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<JobId>,
}
impl Input for ListInput {}

/// `jobs.dead.list`'s input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadListInput {
    /// Only this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Only this type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Page size, 1..=10000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}
impl Input for DeadListInput {}

/// `jobs.dead.redrive`'s input: `jobId`, or `all: true` with optional `queue` and `type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveInput {
    /// One job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Every dead job (of `queue` / `type` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// With `all`: only this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// With `all`: only this type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}
impl Input for RedriveInput {}

/// `jobs.schedule.toggle`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToggleInput {
    /// The schedule.
    pub name: String,
    /// On or off.
    pub enabled: bool,
}
impl Input for ToggleInput {}

/// `jobs.schedule.delete`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameInput {
    /// The schedule.
    pub name: String,
}
impl Input for NameInput {}

/// `jobs.queue.pause` / `jobs.queue.resume`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    /// The queue.
    pub queue: String,
}
impl Input for QueueInput {}

/// `jobs.events`' input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsInput {
    /// Events with a greater sequence number (default 0: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Most events returned, 1..=10000 (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}
impl Input for EventsInput {}

/// A page size given over the wire: `1..=max`.
pub(super) fn page_limit(op: &str, limit: Option<u64>, max: usize) -> Result<Option<usize>> {
    limit
        .map(|n| limits::check_page_size(&format!("{op}: limit"), n, max))
        .transpose()
}
