//! The operations of the contract as one type, [`Op`]: every door (the control socket, the
//! CLI, an HTTP server) parses its request into an `Op`, runs it on a [`Spool`] and prints
//! the [`Output`]. An op's name, its input fields and its output shape are written once,
//! here, so the doors cannot drift apart.
//!
//! Inputs are serde-derived (camelCase, unknown fields rejected); outputs serialize through
//! the views of [`crate::json`]. Input is only parsed here; every rule about its values
//! (limits, names, ranges) is checked once, by the spool, for every door alike.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::api::json::{self, EventView, JobView, ScheduleView, StatsView};
use crate::api::spool::Spool;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, JobStatus, NewJob};
use crate::model::limits::{self, DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE, MAX_PAGE};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{ListQuery, Stats};

/// Declares [`Op`] from one list of (variant, wire name, input type), so the name table,
/// the parser and the encoder cannot disagree.
macro_rules! ops {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ($input:ty), )*) => {
        /// One operation with its input, as every door receives it.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[$doc])* $variant($input), )*
        }

        impl Op {
            /// Every op's wire name, in the order of the reference table.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The op's wire name, e.g. `jobs.enqueue`.
            #[must_use]
            pub fn name(&self) -> &'static str {
                match self {
                    $( Op::$variant(_) => $name, )*
                }
            }

            /// Parses the op named `name` with its JSON `input` (`null` = no fields).
            ///
            /// # Errors
            /// `INVALID_ARGUMENT` for an unknown op, an input that is not an object, an
            /// unknown field or a field of the wrong type.
            pub fn from_json(name: &str, input: Value) -> Result<Op> {
                match name {
                    $( $name => Ok(Op::$variant(<$input as Input>::parse($name, input)?)), )*
                    _ => Err(Error::invalid(format!(
                        "unknown op {name:?}; known ops: {}",
                        Op::NAMES.join(", ")
                    ))),
                }
            }

            /// The op's input as JSON (what [`Op::from_json`] reads back).
            #[must_use]
            pub fn input_json(&self) -> Value {
                match self {
                    $( Op::$variant(input) => serde_json::to_value(input).unwrap_or(Value::Null), )*
                }
            }
        }
    };
}

ops! {
    /// `jobs.enqueue`: one job. Output: the job.
    Enqueue = "jobs.enqueue" (EnqueueInput),
    /// `jobs.enqueue.batch`: many jobs, all or nothing. Output: `{jobs}`.
    EnqueueBatch = "jobs.enqueue.batch" (BatchInput),
    /// `jobs.cancel`: cancel a pending job. Output: `{success: true}`.
    Cancel = "jobs.cancel" (CancelInput),
    /// `jobs.get`: one job. Output: the job.
    Get = "jobs.get" (JobIdInput),
    /// `jobs.stats`: counts by status, global and per queue.
    Stats = "jobs.stats" (NoInput),
    /// `jobs.list`: one page of jobs. Output: `{jobs}`.
    List = "jobs.list" (ListInput),
    /// `jobs.dead.list`: one page of `dead_letter` and `failed` jobs. Output: `{jobs}`.
    DeadList = "jobs.dead.list" (DeadListInput),
    /// `jobs.dead.redrive`: back to pending. Output: `{redriven, jobIds}`.
    DeadRedrive = "jobs.dead.redrive" (RedriveInput),
    /// `jobs.schedule.create`. Output: the schedule.
    ScheduleCreate = "jobs.schedule.create" (ScheduleInput),
    /// `jobs.schedule.toggle`. Output: the schedule.
    ScheduleToggle = "jobs.schedule.toggle" (ToggleInput),
    /// `jobs.schedule.list`. Output: `{schedules}`.
    ScheduleList = "jobs.schedule.list" (NoInput),
    /// `jobs.schedule.delete`. Output: `{success: true}`.
    ScheduleDelete = "jobs.schedule.delete" (NameInput),
    /// `jobs.queue.pause`. Output: `{queue, paused}`.
    QueuePause = "jobs.queue.pause" (QueueInput),
    /// `jobs.queue.resume`. Output: `{queue, paused}`.
    QueueResume = "jobs.queue.resume" (QueueInput),
    /// `jobs.events`: events after a sequence number. Output: `{events}`.
    Events = "jobs.events" (EventsInput),
    /// `jobs.prune`: remove what retention allows. Output: `{pruned}`.
    Prune = "jobs.prune" (NoInput),
    /// `jobs.ping`: is anyone there. Output: `{pong: true, lastSeq}`.
    Ping = "jobs.ping" (NoInput),
}

/// An op's input type: serde-derived, read from a JSON object (`null` = empty).
trait Input: DeserializeOwned + Sized {
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
    fn into_new_job(self, op: &str) -> Result<NewJob> {
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
        job.timeout_ms = self.timeout_ms;
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
    fn into_new_schedule(self, op: &str) -> Result<NewSchedule> {
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
fn page_limit(op: &str, limit: Option<u64>, max: usize) -> Result<Option<usize>> {
    limit
        .map(|n| limits::check_page_size(&format!("{op}: limit"), n, max))
        .transpose()
}

/// What an op returns. Serializes to the op's contract JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// A job (`jobs.enqueue`, `jobs.get`).
    Job(Box<Job>),
    /// `{jobs}` (`jobs.enqueue.batch`, `jobs.list`, `jobs.dead.list`).
    Jobs(Vec<Job>),
    /// `{success: true}` (`jobs.cancel`, `jobs.schedule.delete`).
    Success,
    /// Counts (`jobs.stats`).
    Stats(Stats),
    /// `{redriven, jobIds}` (`jobs.dead.redrive`).
    Redriven(Vec<Job>),
    /// A schedule (`jobs.schedule.create`, `jobs.schedule.toggle`).
    Schedule(ScheduledJob),
    /// `{schedules}` (`jobs.schedule.list`).
    Schedules(Vec<ScheduledJob>),
    /// `{queue, paused}` (`jobs.queue.pause`, `jobs.queue.resume`).
    Queue {
        /// The queue.
        queue: String,
        /// Whether it is paused now.
        paused: bool,
    },
    /// `{events}` (`jobs.events`).
    Events(Vec<EventRecord>),
    /// `{pruned}` (`jobs.prune`).
    Pruned(u64),
    /// `{pong: true, lastSeq}` (`jobs.ping`).
    Pong {
        /// The newest event's sequence number.
        last_seq: u64,
    },
}

impl Output {
    /// The contract JSON of this output.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Jobs<'a> {
            jobs: Vec<JobView<'a>>,
        }
        #[derive(Serialize)]
        struct Success {
            success: bool,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Redriven {
            redriven: usize,
            job_ids: Vec<JobId>,
        }
        #[derive(Serialize)]
        struct Schedules<'a> {
            schedules: Vec<ScheduleView<'a>>,
        }
        #[derive(Serialize)]
        struct Queue<'a> {
            queue: &'a str,
            paused: bool,
        }
        #[derive(Serialize)]
        struct Events<'a> {
            events: Vec<EventView<'a>>,
        }
        #[derive(Serialize)]
        struct Pruned {
            pruned: u64,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Pong {
            pong: bool,
            last_seq: u64,
        }
        fn jobs(list: &[Job]) -> Vec<JobView<'_>> {
            list.iter().map(JobView::from).collect()
        }
        match self {
            Output::Job(j) => JobView::from(j.as_ref()).serialize(s),
            Output::Jobs(list) => Jobs { jobs: jobs(list) }.serialize(s),
            Output::Success => Success { success: true }.serialize(s),
            Output::Stats(st) => StatsView::from(st).serialize(s),
            Output::Redriven(list) => Redriven {
                redriven: list.len(),
                job_ids: list.iter().map(|j| j.id).collect(),
            }
            .serialize(s),
            Output::Schedule(sc) => ScheduleView::from(sc).serialize(s),
            Output::Schedules(list) => Schedules {
                schedules: list.iter().map(ScheduleView::from).collect(),
            }
            .serialize(s),
            Output::Queue { queue, paused } => Queue {
                queue,
                paused: *paused,
            }
            .serialize(s),
            Output::Events(list) => Events {
                events: list.iter().map(EventView::from).collect(),
            }
            .serialize(s),
            Output::Pruned(n) => Pruned { pruned: *n }.serialize(s),
            Output::Pong { last_seq } => Pong {
                pong: true,
                last_seq: *last_seq,
            }
            .serialize(s),
        }
    }
}

impl Op {
    /// Runs the op on `spool`.
    ///
    /// ```
    /// use jobspool::{Op, Spool};
    /// use serde_json::json;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spool = Spool::open(dir.path().join("q"))?;
    /// let op = Op::from_json("jobs.enqueue", json!({"type": "t", "payload": [1, 2]}))?;
    /// let job = op.run(&spool)?.to_json();
    /// let same = Op::from_json("jobs.get", json!({"jobId": job["id"]}))?.run(&spool)?;
    /// assert_eq!(same.to_json()["payload"], json!([1, 2]));
    /// # Ok::<(), jobspool::Error>(())
    /// ```
    ///
    /// # Errors
    /// What the operation returns; `INVALID_ARGUMENT` for input the spool rejects.
    pub fn run(self, spool: &Spool) -> Result<Output> {
        let op = self.name();
        Ok(match self {
            Op::Enqueue(input) => Output::Job(Box::new(spool.enqueue(input.into_new_job(op)?)?)),
            Op::EnqueueBatch(input) => {
                let jobs = input
                    .jobs
                    .into_iter()
                    .enumerate()
                    .map(|(i, j)| {
                        j.into_new_job(op)
                            .map_err(|e| Error::invalid(format!("jobs[{i}]: {}", e.message())))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Output::Jobs(spool.enqueue_batch(jobs)?)
            }
            Op::Cancel(CancelInput {
                job_id,
                cancelled_by,
            }) => {
                match cancelled_by {
                    Some(by) => spool.cancel_by(job_id, by)?,
                    None => spool.cancel(job_id)?,
                };
                Output::Success
            }
            Op::Get(JobIdInput { job_id }) => Output::Job(Box::new(spool.get(job_id)?)),
            Op::Stats(NoInput {}) => Output::Stats(spool.stats()?),
            Op::List(input) => {
                let status = input.status.map(|s| s.parse::<JobStatus>()).transpose()?;
                let q = ListQuery {
                    status,
                    queue: input.queue,
                    kind: input.kind,
                    after: input.after,
                    limit: page_limit(op, input.limit, MAX_PAGE)?,
                };
                Output::Jobs(spool.list(&q)?)
            }
            Op::DeadList(input) => {
                let q = ListQuery {
                    queue: input.queue,
                    kind: input.kind,
                    limit: page_limit(op, input.limit, MAX_PAGE)?,
                    ..ListQuery::default()
                };
                Output::Jobs(spool.dead_letters(&q)?)
            }
            Op::DeadRedrive(input) => {
                let all = input.all.unwrap_or(false);
                let redriven = match (input.job_id, all) {
                    (Some(id), false) if input.queue.is_none() && input.kind.is_none() => {
                        vec![spool.redrive(id)?]
                    }
                    (None, true) => spool.redrive_all(input.queue, input.kind)?,
                    _ => {
                        return Err(Error::invalid(format!(
                            "{op}: give either jobId, or all: true with optional queue and type"
                        )))
                    }
                };
                Output::Redriven(redriven)
            }
            Op::ScheduleCreate(input) => {
                Output::Schedule(spool.create_schedule(input.into_new_schedule(op)?)?)
            }
            Op::ScheduleToggle(ToggleInput { name, enabled }) => {
                Output::Schedule(spool.toggle_schedule(&name, enabled)?)
            }
            Op::ScheduleList(NoInput {}) => Output::Schedules(spool.list_schedules()?),
            Op::ScheduleDelete(NameInput { name }) => {
                spool.delete_schedule(&name)?;
                Output::Success
            }
            Op::QueuePause(QueueInput { queue }) => {
                spool.pause_queue(&queue)?;
                Output::Queue {
                    queue,
                    paused: true,
                }
            }
            Op::QueueResume(QueueInput { queue }) => {
                spool.resume_queue(&queue)?;
                Output::Queue {
                    queue,
                    paused: false,
                }
            }
            Op::Events(input) => {
                let limit =
                    page_limit(op, input.limit, MAX_EVENTS_PAGE)?.unwrap_or(DEFAULT_EVENTS_PAGE);
                Output::Events(spool.events_since(input.since.unwrap_or(0), limit)?)
            }
            Op::Prune(NoInput {}) => Output::Pruned(spool.prune()?),
            Op::Ping(NoInput {}) => Output::Pong {
                last_seq: spool.last_seq(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_op_round_trips_through_its_json() {
        let id: JobId = "01936b5e-4d2a-7c3e-9f00-000000000001".parse().unwrap();
        let ops = [
            Op::Enqueue(EnqueueInput {
                kind: "t".into(),
                payload: payload_json(b"\xff"),
                delay_seconds: Some(1.5),
                max_retries: Some(2),
                metadata: Some([("k".to_string(), "v".to_string())].into()),
                ..EnqueueInput::default()
            }),
            Op::EnqueueBatch(BatchInput {
                jobs: vec![EnqueueInput {
                    kind: "a".into(),
                    ..EnqueueInput::default()
                }],
            }),
            Op::Cancel(CancelInput {
                job_id: id,
                cancelled_by: Some("me".into()),
            }),
            Op::Get(JobIdInput { job_id: id }),
            Op::Stats(NoInput {}),
            Op::List(ListInput {
                status: Some("pending".into()),
                after: Some(id),
                limit: Some(5),
                ..ListInput::default()
            }),
            Op::DeadRedrive(RedriveInput {
                all: Some(true),
                kind: Some("t".into()),
                ..RedriveInput::default()
            }),
            Op::ScheduleToggle(ToggleInput {
                name: "n".into(),
                enabled: false,
            }),
            Op::Events(EventsInput {
                since: Some(3),
                limit: None,
            }),
        ];
        for op in ops {
            let back = Op::from_json(op.name(), op.input_json()).unwrap();
            assert_eq!(back, op);
        }
    }

    #[test]
    fn names_are_unique_and_unknown_ops_are_rejected() {
        let mut names = Op::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::NAMES.len());
        let e = Op::from_json("jobs.nope", Value::Null).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.message().contains("jobs.enqueue"), "{e}");
    }

    #[test]
    fn bad_input_is_invalid_argument_naming_the_op() {
        for (op, input) in [
            ("jobs.enqueue", json!({"type": "t", "typo": 1})),
            ("jobs.enqueue", json!({"type": "t", "maxRetries": -2})),
            ("jobs.enqueue", json!({"type": "t", "priority": 1.5})),
            ("jobs.enqueue", json!([1])),
            ("jobs.get", json!({})),
            (
                "jobs.enqueue.batch",
                json!({"jobs": [{"type": "a"}, {"tipe": "b"}]}),
            ),
        ] {
            let e = Op::from_json(op, input).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{op}: {e}");
            assert!(e.message().starts_with(op), "{e}");
        }
        let e =
            Op::from_json("jobs.enqueue.batch", json!({"jobs": [{"type": "a"}, {}]})).unwrap_err();
        assert!(e.message().contains("jobs[1]"), "{e}");
    }
}
