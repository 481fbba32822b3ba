//! jobspool: a durable, crash-safe, embedded background-job queue for synchronous Rust.
//!
//! ```
//! use jobspool::{JobError, JobStatus, NewJob, Spool, TypedJob, WorkerPool};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl TypedJob for SendEmail { const KIND: &'static str = "email.send"; }
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let spool = Spool::open(dir.path().join("queue"))?;          // a directory on disk
//! let job = spool.enqueue(NewJob::typed(&SendEmail { to: "a@b.c".into() })?.max_attempts(5))?;
//!
//! let pool = WorkerPool::builder(&spool)
//!     .concurrency(8)
//!     .handle(|_ctx, email: SendEmail| {
//!         if email.to.is_empty() { return Err(JobError::permanent("no recipient")); }
//!         Ok(format!("sent to {}", email.to))                  // stored as the JSON result
//!     })
//!     .start()?;
//! # while spool.get(job.id)?.status != JobStatus::Completed {
//! #     std::thread::sleep(Duration::from_millis(5));
//! # }
//! assert_eq!(spool.get(job.id)?.result.as_deref(), Some(&br#""sent to a@b.c""#[..]));
//! pool.shutdown(Duration::from_secs(30));                        // graceful
//! # Ok::<(), jobspool::Error>(())
//! ```
//!
//! Every change is one atomic step (record, indexes and event-log entry together); under
//! [`Durability::Immediate`] (the default) it is fsync'd before the call returns, with
//! concurrent callers sharing fsyncs. A second process reaches the same queue through
//! [`control::Client`] (the [`Queue`] trait is common to both). The pull API
//! ([`Spool::claim`], then [`Spool::complete`] with the claim's [`Lease`]) is there for
//! workers of your own. See `ARCHITECTURE.md` for how it works.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod api;
mod backend;
pub mod control;
mod engine;
#[cfg(feature = "failpoints")]
#[doc(hidden)]
pub mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "http")]
pub mod http;
mod model;

pub use api::builder::{repair, Builder};
pub use api::json;
pub use api::ops::{
    payload_json, BatchInput, CancelInput, DeadListInput, EnqueueInput, EventsInput, JobIdInput,
    ListInput, NameInput, NoInput, Op, Output, Payload, QueueInput, RedriveInput, ScheduleInput,
    ToggleInput,
};
pub use api::queue::Queue;
pub use api::spool::{is_postgres_url, Spool, WeakSpool};
pub use api::subscription::{Events, Subscription, SubscriptionError};
pub use api::worker::{
    HandlerResult, JobContext, JobError, PoolStats, RunningJob, TypedJob, WorkerPool,
    WorkerPoolBuilder,
};
/// The date-time library of the public types (`Job::created_at`, `NewJob::run_at`, ...),
/// re-exported so applications need not depend on it themselves.
pub use chrono;
pub use model::activity::{Activity, Histogram, HANDLER_BUCKETS};
pub use model::clock::{Clock, ManualClock, SystemClock};
pub use model::config::{Durability, Retention};
pub use model::error::{Error, ErrorCode, Result};
pub use model::event::{Event, EventRecord, ScheduleChange};
pub use model::job::{Backoff, Execution, Job, JobId, JobStatus, NewJob, MAX_EXECUTIONS};
pub use model::limits;
pub use model::repair::{DroppedRange, RepairReport};
pub use model::schedule::{NewSchedule, ScheduledJob};
pub use model::types::{
    ClaimRequest, Claimed, Counts, Enqueued, Lease, ListQuery, Metrics, QueueStats, RedriveTarget,
    Retry, Stats, MAX_PAGE,
};
