//! A job's life outside its attempts: built from its input, cancelled, redriven, pruned.

use std::collections::HashMap;

use super::Change;
use crate::model::clock::to_datetime;
use crate::model::config::Retention;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Job, JobId, JobStatus, NewJob};

/// The record of a new job `id` built from its (validated) input at `now`: pending, due
/// after its delay or at its run time, defaults filled in (`default_max_attempts` from the
/// spool's settings).
pub(crate) fn new_job(nj: NewJob, id: JobId, now: i64, default_max_attempts: u32) -> Job {
    let due = match (nj.delay, nj.run_at) {
        (Some(d), _) => now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        (None, Some(at)) => at.timestamp_millis(),
        (None, None) => now,
    };
    Job {
        id,
        kind: nj.kind,
        version: nj.version.unwrap_or_else(|| "1.0.0".into()),
        queue: nj.queue.unwrap_or_else(|| "default".into()),
        payload: nj.payload,
        status: JobStatus::Pending,
        priority: nj.priority,
        attempts: 0,
        max_attempts: nj.max_attempts.unwrap_or(default_max_attempts),
        created_at: to_datetime(now),
        updated_at: to_datetime(now),
        scheduled_at: Some(to_datetime(due)),
        started_at: None,
        completed_at: None,
        last_error: None,
        timeout: nj.timeout,
        dedupe_key: nj.dedupe_key,
        tenant_id: nj.tenant_id,
        user_id: nj.user_id,
        trace_id: nj.trace_id,
        metadata: nj.metadata,
        result: None,
        executions: Vec::new(),
        backoff: nj.backoff,
        lease: None,
    }
}

/// The `job.enqueued` event of a new job (appended only when it was not deduplicated).
pub(crate) fn enqueued_event(job: &Job) -> Event {
    Event::JobEnqueued {
        job_id: job.id,
        kind: job.kind.clone(),
        priority: job.priority,
        enqueued_at: job.created_at,
        scheduled_at: job.scheduled_at,
        tenant_id: job.tenant_id.clone(),
    }
}

/// `old` cancelled at `now` by `by`; appends `job.cancelled`. Only a pending job can be
/// cancelled (`JOB_NOT_PENDING` otherwise).
pub(crate) fn cancel(old: Job, now: i64, by: Option<String>) -> Result<Change> {
    if old.status != JobStatus::Pending {
        return Err(Error::JobNotPending {
            id: old.id.to_string(),
            status: old.status.to_string(),
        });
    }
    let at = to_datetime(now);
    let mut job = old;
    job.status = JobStatus::Cancelled;
    job.updated_at = at;
    job.completed_at = Some(at);
    let cancelled = Event::JobCancelled {
        job_id: job.id,
        kind: job.kind.clone(),
        cancelled_at: at,
        cancelled_by: by,
    };
    Ok(Change {
        job,
        events: vec![cancelled],
    })
}

/// Which of the candidates of one redrive go: only `dead_letter` and `failed` jobs, and not
/// one whose dedupe key a live job (or a job picked before it in the same redrive) holds.
/// A redrive of one job (`strict`) answers `INVALID_INPUT` saying why; a redrive of many
/// skips the job.
pub(crate) struct RedrivePicker {
    strict: bool,
    keys_taken: HashMap<String, JobId>,
}

impl RedrivePicker {
    /// A picker for one redrive; `strict` for a redrive of one job.
    pub(crate) fn new(strict: bool) -> Self {
        RedrivePicker {
            strict,
            keys_taken: HashMap::new(),
        }
    }

    /// Whether `job` goes (`Ok(true)`) or is skipped (`Ok(false)`). `live_holder(key)`
    /// reads the live job holding a dedupe key, if any; it is called only for a job that
    /// is otherwise redrivable and has a key.
    pub(crate) fn pick(
        &mut self,
        job: &Job,
        live_holder: impl FnOnce(&str) -> Result<Option<JobId>>,
    ) -> Result<bool> {
        if !matches!(job.status, JobStatus::DeadLetter | JobStatus::Failed) {
            if self.strict {
                return Err(Error::invalid(format!(
                    "job {} is {}; only dead_letter and failed jobs can be redriven",
                    job.id, job.status
                )));
            }
            return Ok(false);
        }
        if let Some(k) = &job.dedupe_key {
            let held = live_holder(k)?.or_else(|| self.keys_taken.get(k).copied());
            if let Some(holder) = held {
                if self.strict {
                    return Err(Error::invalid(format!(
                        "job {} cannot be redriven: its dedupeKey {k:?} is held by live job {holder}",
                        job.id
                    )));
                }
                return Ok(false);
            }
            self.keys_taken.insert(k.clone(), job.id);
        }
        Ok(true)
    }
}

/// `old` (picked by a [`RedrivePicker`]) redriven at `now`: pending and due now, attempts,
/// last error, result and completion cleared (its execution history kept); appends
/// `job.redriven`.
pub(crate) fn redrive(old: Job, now: i64) -> Change {
    let at = to_datetime(now);
    let mut job = old;
    job.status = JobStatus::Pending;
    job.attempts = 0;
    job.last_error = None;
    job.completed_at = None;
    job.result = None;
    job.scheduled_at = Some(at);
    job.updated_at = at;
    let redriven = Event::JobRedriven {
        job_id: job.id,
        kind: job.kind.clone(),
        redriven_at: at,
    };
    Change {
        job,
        events: vec![redriven],
    }
}

/// What pruning removes at `now`: finished jobs of each status whose completion is before
/// the returned time (ms), in this order, and events older than the last value.
pub(crate) fn prune_cutoffs(r: &Retention, now: i64) -> ([(JobStatus, i64); 4], i64) {
    let cutoff = |d: std::time::Duration| {
        now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    (
        [
            (JobStatus::Completed, cutoff(r.completed)),
            (JobStatus::Cancelled, cutoff(r.cancelled)),
            (JobStatus::Failed, cutoff(r.failed)),
            (JobStatus::DeadLetter, cutoff(r.dead_letter)),
        ],
        cutoff(r.events),
    )
}

/// The `jobs.pruned` event of a prune that removed `count` jobs at `now` (none when it
/// removed none).
pub(crate) fn pruned_event(count: u64, now: i64) -> Option<Event> {
    (count > 0).then(|| Event::JobsPruned {
        count,
        pruned_at: to_datetime(now),
    })
}
