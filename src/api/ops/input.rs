//! The inputs of the operations: serde types with the contract's field names (camelCase,
//! unknown fields rejected), and their conversion to the model's `NewJob` / `NewSchedule`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::json;
use crate::model::error::{Error, Result};
use crate::model::job::{JobId, NewJob};
use crate::model::limits;
use crate::model::schedule::NewSchedule;

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

/// A payload in JSON: `{"base64": ".."}` for raw bytes, any other JSON value for itself
/// (stored as its JSON text); absent or `null` for none.
fn payload_bytes(op: &str, v: Option<Value>) -> Result<Vec<u8>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) if m.len() == 1 && m.contains_key("base64") => {
            match m.get("base64") {
                Some(Value::String(s)) => json::decode_base64(s).ok_or_else(|| {
                    Error::invalid(format!("{op}: payload.base64 is not valid base64"))
                }),
                _ => Err(Error::invalid(format!(
                    "{op}: payload.base64 must be a base64 string"
                ))),
            }
        }
        Some(v) => serde_json::to_vec(&v)
            .map_err(|e| Error::invalid(format!("{op}: payload cannot be encoded: {e}"))),
    }
}

/// Bytes as a JSON payload: base64, so they arrive exactly as given.
#[must_use]
pub fn payload_json(bytes: &[u8]) -> Option<Value> {
    (!bytes.is_empty()).then(|| serde_json::json!({ "base64": json::base64(bytes) }))
}

/// `jobs.enqueue`'s input (and each item of a batch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnqueueInput {
    /// The job type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload (see the module docs for how bytes are written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Delay before the first attempt, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    /// Total attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Higher first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Attempt time limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// At most one live job per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    /// The queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Run no earlier than this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// Carried through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Carried through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Carried through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Free-form string map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Job schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
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

/// `jobs.schedule.create`'s input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    /// Unique name.
    pub name: String,
    /// The cron expression.
    pub cron_expression: String,
    /// Type of the jobs it enqueues.
    pub job_type: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// IANA zone (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Payload of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// maxRetries of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Queue of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Priority of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Replace a schedule of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
}
impl Input for ScheduleInput {}

impl ScheduleInput {
    pub(super) fn into_new_schedule(self, op: &str) -> Result<NewSchedule> {
        let mut s = NewSchedule::new(self.name, self.cron_expression, self.job_type);
        s.description = self.description;
        s.timezone = self.timezone;
        s.payload = payload_bytes(op, self.payload)?;
        s.max_attempts = self.max_retries;
        s.enabled = self.enabled;
        s.queue = self.queue;
        s.priority = self.priority.unwrap_or_default();
        s.replace = self.replace.unwrap_or(false);
        Ok(s)
    }
}

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
