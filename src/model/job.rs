//! The job model of the contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use crate::model::backoff::Backoff;
use crate::model::error::Error;
// Re-exported under their old paths for code not yet moved to `limits`.
use crate::model::limits::{
    validate_key, validate_max_attempts, validate_metadata, validate_payload,
};
pub(crate) use crate::model::limits::{validate_name, MAX_DELAY_MS};

/// A job's id: a UUID v7, time-ordered, assigned by the spool at enqueue.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub(crate) uuid::Uuid);

impl JobId {
    /// The 16 big-endian bytes of the UUID (its sort order is creation order).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id from its 16 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        JobId(uuid::Uuid::from_bytes(bytes))
    }

    /// The underlying UUID.
    #[must_use]
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0.hyphenated())
    }
}

impl FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        uuid::Uuid::parse_str(s.trim()).map(JobId).map_err(|e| {
            Error::invalid(format!(
                "{s:?} is not a valid job id (a UUID is expected): {e}"
            ))
        })
    }
}

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting to run; includes delayed jobs whose `scheduled_at` is in the future.
    Pending,
    /// Claimed by a worker under a lease.
    Running,
    /// Finished successfully. Terminal.
    Completed,
    /// The handler reported a permanent failure. Terminal.
    Failed,
    /// Cancelled while pending. Terminal.
    Cancelled,
    /// Attempts exhausted through errors, timeouts or crashes. Terminal.
    DeadLetter,
}

impl JobStatus {
    /// All statuses, in the order stats lists them.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::DeadLetter,
    ];

    /// The contract name: `pending`, `running`, `completed`, `failed`, `cancelled`, `dead_letter`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::DeadLetter => "dead_letter",
        }
    }

    /// True for the statuses a job never leaves on its own.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled | JobStatus::DeadLetter
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown status {s:?}; expected one of pending, running, completed, failed, \
                 cancelled, dead_letter"
                ))
            })
    }
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// 1-based attempt number.
    pub attempt_number: u32,
    /// When the attempt started.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub started_at: DateTime<Utc>,
    /// When it ended, if it has.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// How long it ran, if it has ended.
    pub duration_ms: Option<u64>,
    /// `Some(true)` completed, `Some(false)` failed, `None` still running or released.
    pub success: Option<bool>,
    /// The error of a failed attempt.
    pub error: Option<String>,
    /// The worker that ran it.
    pub worker_id: Option<String>,
    /// True when the attempt was handed back without counting (release, shutdown).
    pub released: bool,
}

/// The lease a running job is held under (internal; the token is the fencing token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LeaseState {
    pub token: u64,
    pub expires_ms: i64,
}

/// A job as stored and returned by the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Time-ordered UUID v7.
    pub id: JobId,
    /// The handler key, e.g. `email.send` (`type` in JSON).
    pub kind: String,
    /// Job schema version. Default = `"1.0.0"`.
    pub version: String,
    /// The queue. Default = `"default"`.
    pub queue: String,
    /// Opaque bytes for the handler.
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Current status.
    pub status: JobStatus,
    /// Higher runs first. Default = 0.
    pub priority: i32,
    /// Attempts started so far (released attempts do not count).
    pub attempts: u32,
    /// Maximum total attempts (`maxRetries` in JSON). Default = 3.
    pub max_attempts: u32,
    /// When it was enqueued.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub updated_at: DateTime<Utc>,
    /// Not claimable before this time (delay, retry backoff).
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When the current or last attempt started.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    #[serde(with = "chrono::serde::ts_milliseconds_option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Attempt time limit (`timeoutMs` in JSON).
    pub timeout: Option<Duration>,
    /// Dedupe key.
    pub dedupe_key: Option<String>,
    /// Carried through untouched.
    pub tenant_id: Option<String>,
    /// Carried through untouched.
    pub user_id: Option<String>,
    /// Carried through untouched.
    pub trace_id: Option<String>,
    /// Free-form string map.
    pub metadata: BTreeMap<String, String>,
    /// What the handler returned.
    pub result: Option<Vec<u8>>,
    /// One entry per attempt, oldest first (at most [`MAX_EXECUTIONS`] kept).
    pub executions: Vec<Execution>,
    /// Retry backoff for this job; `None` = the spool's default.
    pub backoff: Option<Backoff>,
    pub(crate) lease: Option<LeaseState>,
}

/// How many execution entries a job keeps; older ones are dropped first.
pub const MAX_EXECUTIONS: usize = 100;

impl Job {
    /// The lease expiry of a running job.
    #[must_use]
    pub fn lease_expires_at(&self) -> Option<DateTime<Utc>> {
        self.lease
            .as_ref()
            .map(|l| crate::model::clock::to_datetime(l.expires_ms))
    }

    /// The claim-order time: `scheduled_at`, or `created_at` when there is none.
    pub(crate) fn due_ms(&self) -> i64 {
        self.scheduled_at
            .unwrap_or(self.created_at)
            .timestamp_millis()
    }

    pub(crate) fn push_execution(&mut self, e: Execution) {
        if self.executions.len() >= MAX_EXECUTIONS {
            self.executions.remove(0);
        }
        self.executions.push(e);
    }
}

/// A job type with a typed payload: ties a serde payload type to the job type name its
/// handler is registered under, so producers and handlers agree on both.
///
/// ```
/// use jobspool::TypedJob;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl TypedJob for SendEmail {
///     const KIND: &'static str = "email.send";
/// }
/// ```
pub trait TypedJob: serde::Serialize + serde::de::DeserializeOwned {
    /// The job type (the handler key, `type` in JSON), e.g. `email.send`.
    const KIND: &'static str;
}

/// A job to enqueue: its type and payload plus the options of the contract.
///
/// ```
/// use jobspool::NewJob;
/// use std::time::Duration;
/// let job = NewJob::new("email.send", br#"{"to":"a@b.c"}"#.to_vec())
///     .queue("mail")
///     .priority(5)
///     .delay(Duration::from_secs(60))
///     .max_attempts(5)
///     .dedupe_key("welcome-42");
/// # let _ = job;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewJob {
    /// The handler key. Must not be empty.
    pub kind: String,
    /// Opaque payload bytes.
    pub payload: Vec<u8>,
    /// Schema version. Default = `"1.0.0"`.
    pub version: Option<String>,
    /// Queue name. Default = `"default"`.
    pub queue: Option<String>,
    /// Priority, higher first. Default = 0.
    pub priority: i32,
    /// Run no earlier than now + delay. Exclusive with `run_at`.
    pub delay: Option<Duration>,
    /// Run no earlier than this time. Exclusive with `delay`.
    pub run_at: Option<DateTime<Utc>>,
    /// Maximum total attempts, >= 1. Default = the spool's (3).
    pub max_attempts: Option<u32>,
    /// Attempt time limit, 1 ms ..= 10 years (`timeoutMs` in JSON).
    pub timeout: Option<Duration>,
    /// At most one pending or running job per key.
    pub dedupe_key: Option<String>,
    /// Carried through.
    pub tenant_id: Option<String>,
    /// Carried through.
    pub user_id: Option<String>,
    /// Carried through.
    pub trace_id: Option<String>,
    /// Free-form string map.
    pub metadata: BTreeMap<String, String>,
    /// Retry backoff; `None` = the spool's default.
    pub backoff: Option<Backoff>,
}

impl NewJob {
    /// A job of `T`'s type ([`TypedJob::KIND`]) with `payload` encoded as JSON, every
    /// option at its default.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` when `payload` does not encode as JSON (a map with non-string
    /// keys, a failing `Serialize` impl).
    pub fn typed<T: TypedJob>(payload: &T) -> Result<NewJob, Error> {
        let bytes = serde_json::to_vec(payload).map_err(|e| {
            Error::invalid(format!(
                "the payload of a {} job does not encode as JSON: {e}",
                T::KIND
            ))
        })?;
        Ok(NewJob::new(T::KIND, bytes))
    }

    /// A job of type `kind` with `payload`, every option at its default.
    pub fn new(kind: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        NewJob {
            kind: kind.into(),
            payload: payload.into(),
            ..NewJob::default()
        }
    }
    /// Sets the queue. Default = `"default"`.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Sets the priority (higher runs first). Default = 0.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
    /// Delays the first attempt. Default = none.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    /// Runs no earlier than `at`: a [`std::time::SystemTime`] or a
    /// `chrono::DateTime<Utc>` (chrono is re-exported as [`crate::chrono`]). Default = now.
    #[must_use]
    pub fn run_at(mut self, at: impl Into<DateTime<Utc>>) -> Self {
        self.run_at = Some(at.into());
        self
    }
    /// Maximum total attempts (>= 1). Default = 3.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Attempt time limit: past it the handler is told to stop and the attempt fails.
    /// Default = none.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }
    /// Dedupe key. Default = none.
    #[must_use]
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
    /// Tenant id. Default = none.
    #[must_use]
    pub fn tenant_id(mut self, v: impl Into<String>) -> Self {
        self.tenant_id = Some(v.into());
        self
    }
    /// User id. Default = none.
    #[must_use]
    pub fn user_id(mut self, v: impl Into<String>) -> Self {
        self.user_id = Some(v.into());
        self
    }
    /// Trace id. Default = none.
    #[must_use]
    pub fn trace_id(mut self, v: impl Into<String>) -> Self {
        self.trace_id = Some(v.into());
        self
    }
    /// Adds one metadata entry.
    #[must_use]
    pub fn meta(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.metadata.insert(k.into(), v.into());
        self
    }
    /// Sets the retry backoff. Default = the spool's (1 s, x2, max 60 s, ±20%).
    #[must_use]
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = Some(b);
        self
    }
    /// Sets the schema version. Default = `"1.0.0"`.
    #[must_use]
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = Some(v.into());
        self
    }
}

impl NewJob {
    /// [`NewJob::validate`] of each job of a batch; in a batch of several, an
    /// `INVALID_ARGUMENT` says which job (counting from 0) it is about.
    pub(crate) fn validate_all(
        jobs: &[NewJob],
        now_ms: i64,
        payload_limit: usize,
    ) -> Result<(), Error> {
        for (i, j) in jobs.iter().enumerate() {
            j.validate(now_ms, payload_limit).map_err(|e| match e {
                Error::InvalidArgument(m) if jobs.len() > 1 => {
                    Error::InvalidArgument(format!("job {i} of the batch: {m}"))
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// Checks everything that does not depend on the store.
    pub(crate) fn validate(&self, now_ms: i64, payload_limit: usize) -> Result<(), Error> {
        validate_name("kind (type)", &self.kind)?;
        if let Some(q) = &self.queue {
            validate_name("queue", q)?;
        }
        if let Some(v) = &self.version {
            validate_name("version", v)?;
        }
        validate_payload("payload", &self.payload, payload_limit)?;
        validate_max_attempts(self.max_attempts)?;
        if self.delay.is_some() && self.run_at.is_some() {
            return Err(Error::invalid("give a delay or a run_at (runAt), not both"));
        }
        if let Some(d) = self.delay {
            if d.as_millis() > u128::from(MAX_DELAY_MS) {
                return Err(Error::invalid("delay must be at most 10 years"));
            }
        }
        if let Some(at) = self.run_at {
            let max = now_ms.saturating_add(i64::try_from(MAX_DELAY_MS).unwrap_or(i64::MAX));
            if at.timestamp_millis() > max {
                return Err(Error::invalid(
                    "run_at (runAt) must be at most 10 years from now",
                ));
            }
        }
        if let Some(t) = self.timeout {
            if t < Duration::from_millis(1) || t.as_millis() > u128::from(MAX_DELAY_MS) {
                return Err(Error::invalid(
                    "timeout (timeoutMs) must be between 1 ms and 10 years",
                ));
            }
        }
        validate_key("dedupe_key (dedupeKey)", self.dedupe_key.as_ref())?;
        validate_key("tenant_id (tenantId)", self.tenant_id.as_ref())?;
        validate_key("user_id (userId)", self.user_id.as_ref())?;
        validate_key("trace_id (traceId)", self.trace_id.as_ref())?;
        validate_metadata(&self.metadata)?;
        if let Some(b) = &self.backoff {
            b.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
