//! What a handler sees and returns: its [`JobContext`], and a [`JobError`] that says whether
//! the attempt is retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::model::job::TypedJob;
use crate::model::job::{Job, JobId};
use crate::model::types::Retry;

/// Why a handler's attempt failed, and whether to retry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub(super) message: String,
    pub(super) retry: Retry,
}

impl JobError {
    /// A failure worth retrying with the job's backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retry: Retry::Backoff,
        }
    }
    /// A failure to retry after exactly `after`.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        JobError {
            message: message.into(),
            retry: Retry::After(after),
        }
    }
    /// A permanent failure: the job becomes `failed` and is not retried.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retry: Retry::Never,
        }
    }
    /// The error text stored as `lastError`.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `?` on any error type in a handler: `std::error::Error` types, `anyhow::Error`, `String`
/// and `&str` (everything that converts into a boxed error). Such an error is retried with
/// the job's backoff; return [`JobError::permanent`] for one that retrying cannot fix.
impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for JobError {
    fn from(e: E) -> Self {
        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
        JobError::retry(e.to_string())
    }
}

/// What a handler returns: an optional result (stored on the job) or an error.
pub type HandlerResult = std::result::Result<Option<Vec<u8>>, JobError>;

pub(super) type HandlerFn = dyn Fn(&JobContext) -> HandlerResult + Send + Sync;

/// What a handler gets: the job (payload included), its attempt, a cancellation flag and a
/// way to report progress.
///
/// ```
/// use jobspool::{JobContext, JobError};
///
/// fn import(ctx: &JobContext) -> jobspool::HandlerResult {
///     let rows: Vec<String> = ctx.payload_as()?;          // undecodable: failed, no retry
///     for (i, row) in rows.iter().enumerate() {
///         if ctx.is_cancelled() {
///             return Err(JobError::retry("stopped: timed out or shutting down"));
///         }
///         ctx.report_progress(format!("{i}/{} rows", rows.len()));
///         let _ = row;                                       // ... import the row
///     }
///     Ok(Some(format!("{} rows", rows.len()).into_bytes()))
/// }
/// # let _ = import;
/// ```
pub struct JobContext {
    pub(super) job: Job,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) progress: Arc<Mutex<Option<String>>>,
}

impl JobContext {
    /// The job, status `running`.
    #[must_use]
    pub fn job(&self) -> &Job {
        &self.job
    }
    /// The payload bytes.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.job.payload
    }
    /// The payload decoded from JSON as `T`. A payload that does not decode is a permanent
    /// failure: retrying cannot fix it, so the job ends `failed` at once.
    ///
    /// # Errors
    /// A permanent [`JobError`] naming `T` and what did not decode.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_slice(&self.job.payload).map_err(|e| {
            JobError::permanent(format!(
                "payload of job {} does not decode as {}: {e}",
                self.job.id,
                std::any::type_name::<T>()
            ))
        })
    }
    /// 1-based attempt number.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }
    /// True once the attempt timed out or the pool is shutting down past its grace period:
    /// stop work and return; the result will be discarded.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
    /// The cancellation flag itself, to hand to code that polls it.
    #[must_use]
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
    /// Records a progress note, visible through [`WorkerPool::running`](crate::WorkerPool::running).
    pub fn report_progress(&self, note: impl Into<String>) {
        *self.progress.lock() = Some(note.into());
    }
}

/// A job the pool is running, as [`WorkerPool::running`](crate::WorkerPool::running) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its type.
    pub kind: String,
    /// The last progress note its handler reported.
    pub progress: Option<String>,
}
