//! The backend boundary: one trait whose methods are whole queue transitions, each atomic.
//!
//! Nothing sled-specific crosses it, so a SQL backend can implement the same methods with one
//! transaction each. sled ([`sled::SledBackend`]) is the embedded implementation.
//!
//! Nothing that exists only inside one process crosses it either: waiting for work, live
//! event feeds and completions nobody waits for are the engine's (`crate::engine`). A
//! backend tells the engine what happened through the [`Observer`] it is given at open.

pub(crate) mod codec;
pub(crate) mod durable;
pub(crate) mod failpoint;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod records;
pub(crate) mod rules;
pub(crate) mod sled;

use crate::model::config::Retention;
use crate::model::error::Result;
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{
    ClaimRequest, Claimed, Enqueued, ListQuery, Metrics, RedriveTarget, Retry, Stats,
};

/// How a backend reports to the engine. Given to the backend at open; called from the
/// backend's own threads, so every call must be quick and must not call back into it.
pub(crate) trait Observer: Send + Sync {
    /// `events` are durable, in seq order (each committed batch once, batches in order).
    fn committed(&self, events: &[EventRecord]);
    /// Something may have become claimable: an enqueue, a release, a retry, an expired
    /// lease, a resumed queue. Also called when the backend stops or fails, so waiters
    /// look again (and see the error).
    fn work_available(&self);
}

/// One completion of [`Backend::complete_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub id: JobId,
    pub token: u64,
    pub result: Option<Vec<u8>>,
}

/// A queue backend: every method is one whole, atomic transition or a query.
pub(crate) trait Backend: Send + Sync {
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;
    fn get(&self, id: JobId) -> Result<Option<Job>>;
    fn cancel(&self, id: JobId, by: Option<String>) -> Result<Job>;
    fn list(&self, query: &ListQuery) -> Result<Vec<Job>>;
    fn stats(&self) -> Result<Stats>;
    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>>;
    fn last_seq(&self) -> u64;
    /// Claims up to `req.max` ready jobs, in claim order; never waits for work.
    fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>>;
    /// No later than the earliest `scheduled_at` (ms) of a delayed pending job `req` could
    /// claim once due, so a waiting claimer can sleep until then; `None` when there is none.
    /// (It may be earlier: a wake-up that finds nothing costs one more look.)
    fn next_due_ms(&self, req: &ClaimRequest) -> Result<Option<i64>>;
    /// Whether anything `req` could claim is pending (delayed included) or running.
    fn has_work(&self, req: &ClaimRequest) -> bool;
    fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job>;
    /// Completes each job of `batch` whose token still holds its lease, in one transition
    /// (one commit); a completion with a stale token, of a missing job or with a result over
    /// the limit is dropped silently (the engine's completer answers nobody). Returns once
    /// the rest is durable.
    fn complete_batch(&self, batch: Vec<Completion>) -> Result<()>;
    fn fail(&self, id: JobId, token: u64, error: String, retry: Retry) -> Result<Job>;
    fn extend(&self, id: JobId, token: u64, lease_ms: u64) -> Result<Job>;
    fn release(&self, id: JobId, token: u64) -> Result<Job>;
    fn expire_leases(&self) -> Result<usize>;
    fn redrive(&self, target: RedriveTarget) -> Result<Vec<Job>>;
    fn prune(&self, retention: &Retention) -> Result<u64>;
    fn set_paused(&self, queue: &str, paused: bool) -> Result<()>;
    fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob>;
    fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob>;
    fn delete_schedule(&self, name: &str) -> Result<()>;
    fn list_schedules(&self) -> Result<Vec<ScheduledJob>>;
    /// Fires every enabled schedule that is due: enqueue + advance, one atomic step each.
    fn fire_due_schedules(&self) -> Result<u64>;
    /// The earliest `next_run_at` of the enabled schedules, in ms.
    fn next_schedule_due(&self) -> Result<Option<i64>>;
    fn flush(&self) -> Result<()>;
    fn metrics(&self) -> Metrics;
    fn close(&self) -> Result<()>;
}
