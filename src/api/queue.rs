//! [`Queue`]: the operations a [`Spool`](crate::Spool) in this process and a
//! [`control::Client`](crate::control::Client) of another process's spool have in common,
//! with the same Rust types in and out, so application code can be generic over "local or
//! remote".

use crate::model::error::Result;
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{Enqueued, ListQuery, Stats};

/// A job queue, open in this process ([`Spool`](crate::Spool)) or reached through the
/// control socket of the process that holds it ([`control::Client`](crate::control::Client)).
/// Errors are the same variants either way (`Error::JobNotFound`, ...).
///
/// ```
/// use jobspool::{control::Client, NewJob, Queue, Spool};
///
/// /// Works on a local spool and on a remote one alike.
/// fn send_welcome(q: &impl Queue, user: u64) -> jobspool::Result<jobspool::JobId> {
///     let payload = format!(r#"{{"user":{user}}}"#);
///     Ok(q.enqueue(NewJob::new("email.welcome", payload).dedupe_key(format!("w{user}")))?.id)
/// }
///
/// # let dir = tempfile::tempdir().unwrap();
/// let db = dir.path().join("queue");
/// let spool = Spool::open(&db)?;
/// let _socket = jobspool::control::serve(&spool)?;
/// let local = send_welcome(&spool, 1)?;
/// let remote = send_welcome(&Client::connect_db(&db)?, 2)?;
/// assert_eq!(spool.get(remote)?.payload, br#"{"user":2}"#);
/// # let _ = local;
/// # Ok::<(), jobspool::Error>(())
/// ```
pub trait Queue {
    /// Enqueues one job; see [`Spool::enqueue`](crate::Spool::enqueue).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `PAYLOAD_TOO_LARGE`, `STORAGE`, `SHUTTING_DOWN`.
    fn enqueue(&self, job: NewJob) -> Result<Enqueued>;

    /// Enqueues many jobs atomically; see [`Spool::enqueue_batch`](crate::Spool::enqueue_batch).
    ///
    /// # Errors
    /// As [`Queue::enqueue`]; one bad job rejects the whole batch.
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;

    /// The job with `id`, payload included.
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `CORRUPTION`, `STORAGE`.
    fn get(&self, id: JobId) -> Result<Job>;

    /// Cancels a pending job.
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `JOB_NOT_PENDING`.
    fn cancel(&self, id: JobId) -> Result<Job>;

    /// Cancels a pending job, recording who did.
    ///
    /// # Errors
    /// As [`Queue::cancel`].
    fn cancel_by(&self, id: JobId, by: impl Into<String>) -> Result<Job>
    where
        Self: Sized;

    /// One page of jobs matching `query`, in id order.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `CORRUPTION`, `STORAGE`.
    fn list(&self, query: &ListQuery) -> Result<Vec<Job>>;

    /// Counts by status, global and per queue.
    ///
    /// # Errors
    /// `STORAGE`, `SHUTTING_DOWN`.
    fn stats(&self) -> Result<Stats>;

    /// One page of `dead_letter` and `failed` jobs.
    ///
    /// # Errors
    /// `STORAGE`, `CORRUPTION`.
    fn dead_letters(&self, query: &ListQuery) -> Result<Vec<Job>>;

    /// Sends a `dead_letter` or `failed` job back to pending.
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `INVALID_ARGUMENT`.
    fn redrive(&self, id: JobId) -> Result<Job>;

    /// Redrives every dead job of `queue` / `kind` (all when `None`).
    ///
    /// # Errors
    /// `STORAGE`.
    fn redrive_all(&self, queue: Option<String>, kind: Option<String>) -> Result<Vec<Job>>;

    /// Creates a cron schedule.
    ///
    /// # Errors
    /// `SCHEDULE_EXISTS`, `INVALID_CRON`, `INVALID_TIMEZONE`, `INVALID_ARGUMENT`.
    fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob>;

    /// Enables or disables a schedule.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob>;

    /// Deletes a schedule.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    fn delete_schedule(&self, name: &str) -> Result<()>;

    /// Every schedule, by name.
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    fn list_schedules(&self) -> Result<Vec<ScheduledJob>>;

    /// Stops claims from `queue` until resumed.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `STORAGE`.
    fn pause_queue(&self, queue: &str) -> Result<()>;

    /// Lets claims from `queue` resume.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `STORAGE`.
    fn resume_queue(&self, queue: &str) -> Result<()>;

    /// Up to `limit` (1..=10000) events with `seq > after_seq`, in order.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (a limit outside 1..=10000), `CORRUPTION`, `STORAGE`.
    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>>;

    /// Removes what the retention settings allow; returns how many jobs went.
    ///
    /// # Errors
    /// `STORAGE`.
    fn prune(&self) -> Result<u64>;
}

/// Implements [`Queue`] for a type whose inherent methods have the trait's names and
/// signatures, by calling them.
macro_rules! impl_queue_by_inherent_methods {
    ($ty:ty) => {
        impl $crate::api::queue::Queue for $ty {
            fn enqueue(&self, job: NewJob) -> Result<$crate::Enqueued> {
                <$ty>::enqueue(self, job)
            }
            fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<$crate::Enqueued>> {
                <$ty>::enqueue_batch(self, jobs)
            }
            fn get(&self, id: JobId) -> Result<Job> {
                <$ty>::get(self, id)
            }
            fn cancel(&self, id: JobId) -> Result<Job> {
                <$ty>::cancel(self, id)
            }
            fn cancel_by(&self, id: JobId, by: impl Into<String>) -> Result<Job> {
                <$ty>::cancel_by(self, id, by)
            }
            fn list(&self, query: &ListQuery) -> Result<Vec<Job>> {
                <$ty>::list(self, query)
            }
            fn stats(&self) -> Result<Stats> {
                <$ty>::stats(self)
            }
            fn dead_letters(&self, query: &ListQuery) -> Result<Vec<Job>> {
                <$ty>::dead_letters(self, query)
            }
            fn redrive(&self, id: JobId) -> Result<Job> {
                <$ty>::redrive(self, id)
            }
            fn redrive_all(&self, queue: Option<String>, kind: Option<String>) -> Result<Vec<Job>> {
                <$ty>::redrive_all(self, queue, kind)
            }
            fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
                <$ty>::create_schedule(self, s)
            }
            fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
                <$ty>::toggle_schedule(self, name, enabled)
            }
            fn delete_schedule(&self, name: &str) -> Result<()> {
                <$ty>::delete_schedule(self, name)
            }
            fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
                <$ty>::list_schedules(self)
            }
            fn pause_queue(&self, queue: &str) -> Result<()> {
                <$ty>::pause_queue(self, queue)
            }
            fn resume_queue(&self, queue: &str) -> Result<()> {
                <$ty>::resume_queue(self, queue)
            }
            fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
                <$ty>::events_since(self, after_seq, limit)
            }
            fn prune(&self) -> Result<u64> {
                <$ty>::prune(self)
            }
        }
    };
}
pub(crate) use impl_queue_by_inherent_methods;

impl_queue_by_inherent_methods!(crate::api::spool::Spool);
