//! The contract's query and result types: what operations take and return besides jobs,
//! events and schedules (stats, list queries, claims, retries, redrives, metrics).

use std::collections::BTreeMap;

use crate::model::job::{Job, JobId, JobStatus};

/// What an enqueue did: the job, and whether it was already there (a live job held the
/// dedupe key, so nothing was created). Derefs to the [`Job`].
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The new job, or the live job that holds the dedupe key.
    pub job: Job,
    /// True when nothing was created because a live job holds the dedupe key.
    pub deduplicated: bool,
}

impl Enqueued {
    /// The job.
    #[must_use]
    pub fn into_job(self) -> Job {
        self.job
    }
}

impl std::ops::Deref for Enqueued {
    type Target = Job;
    fn deref(&self) -> &Job {
        &self.job
    }
}

/// Counts of jobs by status (`jobs.stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pending jobs, delayed ones included.
    pub pending: u64,
    /// Running jobs.
    pub running: u64,
    /// Completed jobs still retained.
    pub completed: u64,
    /// Permanently failed jobs still retained.
    pub failed: u64,
    /// Cancelled jobs still retained.
    pub cancelled: u64,
    /// Dead-lettered jobs still retained.
    pub dead_letter: u64,
    /// The pending jobs whose `scheduled_at` is in the future.
    pub delayed: u64,
}

impl Counts {
    /// The count of one status.
    #[must_use]
    pub fn of(&self, status: JobStatus) -> u64 {
        match status {
            JobStatus::Pending => self.pending,
            JobStatus::Running => self.running,
            JobStatus::Completed => self.completed,
            JobStatus::Failed => self.failed,
            JobStatus::Cancelled => self.cancelled,
            JobStatus::DeadLetter => self.dead_letter,
        }
    }

    pub(crate) fn slot(&mut self, status: JobStatus) -> &mut u64 {
        match status {
            JobStatus::Pending => &mut self.pending,
            JobStatus::Running => &mut self.running,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Cancelled => &mut self.cancelled,
            JobStatus::DeadLetter => &mut self.dead_letter,
        }
    }

    pub(crate) fn add(&mut self, other: &Counts) {
        self.pending += other.pending;
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.dead_letter += other.dead_letter;
        self.delayed += other.delayed;
    }
}

/// Stats of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Its counts.
    pub counts: Counts,
    /// Whether the queue is paused.
    pub paused: bool,
}

/// Global and per-queue stats, from counters (never a scan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// All queues together.
    pub total: Counts,
    /// Per queue, by name.
    pub queues: BTreeMap<String, QueueStats>,
}

/// Filters and paging for [`crate::Spool::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this type.
    pub kind: Option<String>,
    /// Only jobs with exactly this tenant id.
    pub tenant_id: Option<String>,
    /// Only jobs with exactly this dedupe key (live or finished).
    pub dedupe_key: Option<String>,
    /// Start after this id (the last id of the previous page).
    pub after: Option<JobId>,
    /// Page size. Default = 100, at most 10000.
    pub limit: Option<usize>,
}

pub use crate::model::limits::MAX_PAGE;

/// What to claim: which queues and types, how many, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Queues to claim from; empty = every queue.
    pub queues: Vec<String>,
    /// Queues not to claim from (e.g. at their concurrency limit).
    pub exclude_queues: Vec<String>,
    /// Job types this worker can run; empty = every type.
    pub kinds: Vec<String>,
    /// Claim up to this many jobs.
    pub max: usize,
    /// Lease duration in milliseconds.
    pub lease_ms: u64,
    /// Recorded in the execution.
    pub worker_id: String,
}

/// A claimed job and its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The job, status `running`, payload included.
    pub job: Job,
    /// The lease this attempt holds; complete, fail, extend and release take it.
    pub lease: Lease,
}

/// The lease on one attempt of a claimed job: the job's id and the fencing token of the
/// attempt. Every outcome of the attempt carries it; once the lease expires or the job is
/// claimed again, it no longer holds and calls with it get `STALE_LEASE` and change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The fencing token (unique per attempt, never reused).
    pub token: u64,
}

impl Lease {
    /// The lease on `job_id` with fencing `token` (as a claim handed it out, or as a worker
    /// in another process was told).
    #[must_use]
    pub fn new(job_id: JobId, token: u64) -> Lease {
        Lease { job_id, token }
    }
}

/// How a failed attempt continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retry with the job's backoff (or dead-letter when attempts are exhausted).
    Backoff,
    /// Retry after exactly this long (capped at 10 years), or dead-letter when exhausted.
    After(std::time::Duration),
    /// Do not retry: the job becomes `failed`.
    Never,
}

/// Which jobs a redrive covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveTarget {
    /// One job (must be `dead_letter` or `failed`).
    One(JobId),
    /// Every `dead_letter` and `failed` job, optionally of one queue / type.
    All {
        /// Only this queue.
        queue: Option<String>,
        /// Only this type.
        kind: Option<String>,
    },
}

/// Counters of the backend's own work, for tests and the bench tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Operations applied by the writer.
    pub ops: u64,
    /// Groups committed (one journal entry each).
    pub groups: u64,
    /// fsync/fdatasync calls made for durability (journal syncs and checkpoints).
    pub fsyncs: u64,
    /// Committed groups not yet moved into the storage engine's own files (they are durable
    /// in the journal; the applier thread is catching up).
    pub unapplied_groups: u64,
    /// Bytes appended to the journal since open, entries and seals (sled; 0 on PostgreSQL).
    /// Divided by the jobs run, what each job writes.
    pub journal_bytes: u64,
    /// Bytes of the values the journal holds that are still current: job records, payloads
    /// and event blocks (sled; 0 on PostgreSQL). The journal's segments can shrink to no
    /// less than this.
    pub live_bytes: u64,
}
