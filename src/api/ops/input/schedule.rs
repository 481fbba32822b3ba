//! `jobs.schedule.create`'s input and its conversions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::payload::{payload_bytes, payload_json, Payload};
use super::Input;
use crate::model::error::Result;
use crate::model::schedule::NewSchedule;

/// `jobs.schedule.create`'s input (wire fields camelCase; `payload` with
/// `payloadEncoding`, as in [`EnqueueInput`](crate::EnqueueInput)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScheduleWire", into = "ScheduleWire")]
pub struct ScheduleInput {
    /// Unique name.
    pub name: String,
    /// The cron expression.
    pub cron_expression: String,
    /// Type of the jobs it enqueues.
    pub job_type: String,
    /// Free text.
    pub description: Option<String>,
    /// IANA zone (default UTC).
    pub timezone: Option<String>,
    /// Payload of the jobs.
    pub payload: Option<Payload>,
    /// maxRetries of the jobs.
    pub max_retries: Option<u32>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Queue of the jobs.
    pub queue: Option<String>,
    /// Priority of the jobs.
    pub priority: Option<i32>,
    /// Replace a schedule of the same name.
    pub replace: Option<bool>,
}

/// [`ScheduleInput`] as JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleWire {
    name: String,
    cron_expression: String,
    job_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replace: Option<bool>,
}

impl TryFrom<ScheduleWire> for ScheduleInput {
    type Error = String;
    fn try_from(w: ScheduleWire) -> std::result::Result<Self, String> {
        Ok(ScheduleInput {
            name: w.name,
            cron_expression: w.cron_expression,
            job_type: w.job_type,
            description: w.description,
            timezone: w.timezone,
            payload: Payload::from_wire(w.payload, w.payload_encoding)?,
            max_retries: w.max_retries,
            enabled: w.enabled,
            queue: w.queue,
            priority: w.priority,
            replace: w.replace,
        })
    }
}

impl From<ScheduleInput> for ScheduleWire {
    fn from(i: ScheduleInput) -> Self {
        let (payload, payload_encoding) = i.payload.map(Payload::into_wire).unwrap_or_default();
        ScheduleWire {
            name: i.name,
            cron_expression: i.cron_expression,
            job_type: i.job_type,
            description: i.description,
            timezone: i.timezone,
            payload,
            payload_encoding,
            max_retries: i.max_retries,
            enabled: i.enabled,
            queue: i.queue,
            priority: i.priority,
            replace: i.replace,
        }
    }
}

impl Input for ScheduleInput {}

impl ScheduleInput {
    pub(in crate::api::ops) fn into_new_schedule(self, op: &str) -> Result<NewSchedule> {
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

impl From<&NewSchedule> for ScheduleInput {
    /// The input that creates `s` through any door (payload as raw bytes).
    fn from(s: &NewSchedule) -> Self {
        ScheduleInput {
            name: s.name.clone(),
            cron_expression: s.cron_expression.clone(),
            job_type: s.job_type.clone(),
            description: s.description.clone(),
            timezone: s.timezone.clone(),
            payload: payload_json(&s.payload),
            max_retries: s.max_attempts,
            enabled: s.enabled,
            queue: s.queue.clone(),
            priority: (s.priority != 0).then_some(s.priority),
            replace: s.replace.then_some(true),
        }
    }
}
