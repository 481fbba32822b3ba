//! jobspool: a durable, crash-safe, embedded background-job queue for synchronous Rust.
//!
//! ```
//! use jobspool::{NewJob, Retry, Spool};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let spool = Spool::open(dir.path().join("queue"))?;           // sled database directory
//! let job = spool.enqueue(NewJob::new("email.send", br#"{"to":"a@b.c"}"#.to_vec()))?;
//!
//! // A worker claims the job under a lease, runs it and reports the outcome.
//! let claimed = spool.claim(&spool.claim_request(1))?;
//! let c = &claimed[0];
//! assert_eq!(c.job.id, job.id);
//! spool.complete(Lease::new(c.job.id, c.token), Some(b"sent".to_vec()))?;
//!
//! assert_eq!(spool.get(job.id)?.status, jobspool::JobStatus::Completed);
//! assert_eq!(spool.stats()?.total.completed, 1);
//! # let _ = Retry::Backoff;
//! # Ok::<(), jobspool::Error>(())
//! ```
//!
//! Every change is one atomic step (record, indexes and event-log entry together); under
//! [`Durability::Immediate`] (the default) it is fsync'd before the call returns, with
//! concurrent callers sharing fsyncs. See `ARCHITECTURE.md` for how.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod api;
mod backend;
pub mod control;
mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod model;

pub use api::builder::Builder;
pub use api::json;
pub use api::ops::{
    payload_json, BatchInput, CancelInput, DeadListInput, EnqueueInput, EventsInput, JobIdInput,
    ListInput, NameInput, NoInput, Op, Output, Payload, QueueInput, RedriveInput, ScheduleInput,
    ToggleInput,
};
pub use api::queue::Queue;
pub use api::spool::{Spool, WeakSpool};
pub use api::worker::{
    HandlerResult, JobContext, JobError, PoolStats, RunningJob, TypedJob, WorkerPool,
    WorkerPoolBuilder,
};
pub use model::clock::{Clock, ManualClock, SystemClock};
pub use model::config::{Durability, Retention};
pub use model::error::{Error, ErrorCode, Result};
pub use model::event::{Event, EventRecord, ScheduleChange};
pub use model::job::{Backoff, Execution, Job, JobId, JobStatus, NewJob, MAX_EXECUTIONS};
pub use model::limits;
pub use model::schedule::{NewSchedule, ScheduledJob};
pub use model::types::{
    ClaimRequest, Claimed, Counts, Enqueued, Lease, ListQuery, Metrics, QueueStats, RedriveTarget,
    Retry, Stats, MAX_PAGE,
};
