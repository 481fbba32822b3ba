//! The backend boundary: one trait whose methods are whole queue transitions, each atomic.
//!
//! Nothing sled-specific crosses it, so a SQL backend can implement the same methods with one
//! transaction each. sled ([`sled::SledBackend`]) is the embedded implementation.

pub(crate) mod codec;
pub(crate) mod sled;

use std::time::Instant;

use crossbeam_channel::Receiver;

use crate::model::config::Retention;
use crate::model::error::Result;
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{ClaimRequest, Claimed, ListQuery, Metrics, RedriveTarget, Retry, Stats};

/// A queue backend: every method is one whole, atomic transition.
pub(crate) trait Backend: Send + Sync {
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>>;
    fn get(&self, id: JobId) -> Result<Option<Job>>;
    fn cancel(&self, id: JobId, by: Option<String>) -> Result<Job>;
    fn list(&self, query: &ListQuery) -> Result<Vec<Job>>;
    fn stats(&self) -> Result<Stats>;
    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>>;
    fn last_seq(&self) -> u64;
    fn subscribe(&self) -> Receiver<EventRecord>;
    fn claim(&self, req: &ClaimRequest) -> Result<(Vec<Claimed>, u64)>;
    /// Blocks until work may be claimable (the epoch moved) or `deadline`.
    fn wait_for_work(&self, epoch: u64, deadline: Instant);
    /// Whether anything `req` could claim is pending (delayed included) or running.
    fn has_work(&self, req: &ClaimRequest) -> bool;
    fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job>;
    /// Queues a completion without waiting for it: the job counts as completed once the
    /// change is durable; a stale token is dropped the same way, silently.
    fn complete_nowait(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<()>;
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
