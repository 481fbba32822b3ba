//! The typed client: [`Client`]'s methods with [`Spool`](crate::Spool)'s names, inputs and
//! outputs (and [`Queue`](crate::Queue) over them). Each builds an [`Op`], sends it and
//! reads the output back into the model types through [`crate::json`]'s deserializable
//! shapes; errors come back as their own variants.

use serde::Deserialize;

use super::Client;
use crate::api::queue::impl_queue_by_inherent_methods;
use crate::json::{EventJson, JobJson, ScheduleJson, StatsJson};
use crate::{
    CancelInput, DeadListInput, EnqueueInput, Enqueued, Error, EventRecord, EventsInput, Job,
    JobId, JobIdInput, ListInput, ListQuery, NameInput, NewJob, NewSchedule, NoInput, Op,
    QueueInput, RedriveInput, Result, ScheduleInput, ScheduledJob, Stats, ToggleInput,
};

#[derive(Deserialize)]
struct Jobs {
    jobs: Vec<JobJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Redriven {
    job_ids: Vec<JobId>,
}

#[derive(Deserialize)]
struct Schedules {
    schedules: Vec<ScheduleJson>,
}

#[derive(Deserialize)]
struct Events {
    events: Vec<EventJson>,
}

#[derive(Deserialize)]
struct Pruned {
    pruned: u64,
}

fn enqueued(out: JobJson) -> Result<Enqueued> {
    let deduplicated = out.deduplicated();
    Ok(Enqueued {
        job: Job::try_from(out)?,
        deduplicated,
    })
}

fn jobs(list: Vec<JobJson>) -> Result<Vec<Job>> {
    list.into_iter().map(Job::try_from).collect()
}

fn page(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Typed operations, as on [`Spool`](crate::Spool). A few take more than one request:
/// `cancel`, `cancel_by`, `redrive` and `redrive_all` fetch the jobs they changed with
/// `jobs.get` afterwards (the socket answers them with ids only).
impl Client {
    /// Enqueues one job (`jobs.enqueue`); the payload travels as base64, byte for byte.
    ///
    /// # Errors
    /// As [`Spool::enqueue`](crate::Spool::enqueue); `INVALID_ARGUMENT` for a job with a
    /// `backoff` (the input has no field for it).
    pub fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let out: JobJson = self.run(&Op::Enqueue(EnqueueInput::try_from(&job)?))?;
        enqueued(out)
    }

    /// Enqueues many jobs atomically (`jobs.enqueue.batch`).
    ///
    /// # Errors
    /// As [`Client::enqueue`]; one bad job rejects the whole batch.
    pub fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let jobs_in = jobs
            .iter()
            .map(EnqueueInput::try_from)
            .collect::<Result<Vec<_>>>()?;
        let out: Jobs = self.run(&Op::EnqueueBatch(crate::BatchInput { jobs: jobs_in }))?;
        out.jobs.into_iter().map(enqueued).collect()
    }

    /// The job with `id`, payload included (`jobs.get`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND` (as `Error::JobNotFound`), `CORRUPTION`, `STORAGE`.
    pub fn get(&self, id: JobId) -> Result<Job> {
        let out: JobJson = self.run(&Op::Get(JobIdInput { job_id: id }))?;
        Job::try_from(out)
    }

    /// Cancels a pending job (`jobs.cancel`), then returns it (`jobs.get`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `JOB_NOT_PENDING`.
    pub fn cancel(&self, id: JobId) -> Result<Job> {
        self.cancel_with(id, None)
    }

    /// Cancels a pending job, recording who did.
    ///
    /// # Errors
    /// As [`Client::cancel`].
    pub fn cancel_by(&self, id: JobId, by: impl Into<String>) -> Result<Job> {
        self.cancel_with(id, Some(by.into()))
    }

    fn cancel_with(&self, id: JobId, cancelled_by: Option<String>) -> Result<Job> {
        let op = Op::Cancel(CancelInput {
            job_id: id,
            cancelled_by,
        });
        let _: serde::de::IgnoredAny = self.run(&op)?;
        self.get(id)
    }

    /// One page of jobs matching `query` (`jobs.list`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (a limit outside 1..=10000), `CORRUPTION`, `STORAGE`.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Job>> {
        let op = Op::List(ListInput {
            status: query.status.map(|s| s.as_str().to_owned()),
            queue: query.queue.clone(),
            kind: query.kind.clone(),
            tenant_id: query.tenant_id.clone(),
            dedupe_key: query.dedupe_key.clone(),
            limit: query.limit.map(page),
            after: query.after,
        });
        jobs(self.run::<Jobs>(&op)?.jobs)
    }

    /// Counts by status, global and per queue (`jobs.stats`).
    ///
    /// # Errors
    /// `STORAGE`, `SHUTTING_DOWN`.
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.run::<StatsJson>(&Op::Stats(NoInput {}))?.into())
    }

    /// One page of `dead_letter` and `failed` jobs (`jobs.dead.list`); `query.status` is
    /// ignored, as by the spool.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for `query.after` (the op pages by limit only), `STORAGE`.
    pub fn dead_letters(&self, query: &ListQuery) -> Result<Vec<Job>> {
        if query.after.is_some() {
            return Err(Error::InvalidArgument(
                "jobs.dead.list takes no `after`; list dead jobs page by page with \
                 list(status: dead_letter / failed, after)"
                    .into(),
            ));
        }
        let op = Op::DeadList(DeadListInput {
            queue: query.queue.clone(),
            kind: query.kind.clone(),
            limit: query.limit.map(page),
        });
        jobs(self.run::<Jobs>(&op)?.jobs)
    }

    /// Sends a `dead_letter` or `failed` job back to pending (`jobs.dead.redrive`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`; `INVALID_ARGUMENT` when the job is not dead.
    pub fn redrive(&self, id: JobId) -> Result<Job> {
        let op = Op::DeadRedrive(RedriveInput {
            job_id: Some(id),
            ..RedriveInput::default()
        });
        let _: Redriven = self.run(&op)?;
        self.get(id)
    }

    /// Redrives every dead job of `queue` / `kind` (all when `None`).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn redrive_all(&self, queue: Option<String>, kind: Option<String>) -> Result<Vec<Job>> {
        let op = Op::DeadRedrive(RedriveInput {
            all: Some(true),
            queue,
            kind,
            job_id: None,
        });
        let out: Redriven = self.run(&op)?;
        out.job_ids.into_iter().map(|id| self.get(id)).collect()
    }

    /// Creates a cron schedule (`jobs.schedule.create`).
    ///
    /// # Errors
    /// `SCHEDULE_EXISTS`, `INVALID_CRON`, `INVALID_TIMEZONE`, `INVALID_ARGUMENT`.
    pub fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        let out: ScheduleJson = self.run(&Op::ScheduleCreate(ScheduleInput::from(&s)))?;
        ScheduledJob::try_from(out)
    }

    /// Enables or disables a schedule (`jobs.schedule.toggle`).
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        let op = Op::ScheduleToggle(ToggleInput {
            name: name.to_owned(),
            enabled,
        });
        ScheduledJob::try_from(self.run::<ScheduleJson>(&op)?)
    }

    /// Deletes a schedule (`jobs.schedule.delete`).
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn delete_schedule(&self, name: &str) -> Result<()> {
        let op = Op::ScheduleDelete(NameInput {
            name: name.to_owned(),
        });
        let _: serde::de::IgnoredAny = self.run(&op)?;
        Ok(())
    }

    /// Every schedule, by name (`jobs.schedule.list`).
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    pub fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        let out: Schedules = self.run(&Op::ScheduleList(NoInput {}))?;
        out.schedules
            .into_iter()
            .map(ScheduledJob::try_from)
            .collect()
    }

    /// Stops claims from `queue` until resumed (`jobs.queue.pause`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `STORAGE`.
    pub fn pause_queue(&self, queue: &str) -> Result<()> {
        let op = Op::QueuePause(QueueInput {
            queue: queue.to_owned(),
        });
        let _: serde::de::IgnoredAny = self.run(&op)?;
        Ok(())
    }

    /// Lets claims from `queue` resume (`jobs.queue.resume`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `STORAGE`.
    pub fn resume_queue(&self, queue: &str) -> Result<()> {
        let op = Op::QueueResume(QueueInput {
            queue: queue.to_owned(),
        });
        let _: serde::de::IgnoredAny = self.run(&op)?;
        Ok(())
    }

    /// Up to `limit` (1..=10000) events with `seq > after_seq` (`jobs.events`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a limit out of range, `CORRUPTION`, `STORAGE`.
    pub fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let op = Op::Events(EventsInput {
            since: Some(after_seq),
            limit: Some(page(limit)),
        });
        let out: Events = self.run(&op)?;
        out.events.into_iter().map(EventRecord::try_from).collect()
    }

    /// Removes what the serving spool's retention allows (`jobs.prune`).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn prune(&self) -> Result<u64> {
        Ok(self.run::<Pruned>(&Op::Prune(NoInput {}))?.pruned)
    }
}

impl_queue_by_inherent_methods!(Client);
