//! The queue transitions, applied by the writer thread to one group's staged changes.
//!
//! Every op reads and checks first, then changes: once an op starts staging writes and
//! index moves, nothing in it can fail, so a failed op leaves no trace in the group.

use std::collections::HashMap;

use crate::backend::codec::{self, keys};
use crate::backend::sled::overlay::Overlay;
use crate::backend::sled::stage::{Staged, StoredEvent};
use crate::backend::sled::state::State;
use crate::model::clock::to_datetime;
use crate::model::config::{Config, Retention};
use crate::model::error::{Error, Result};
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::{Execution, Job, JobId, JobStatus, LeaseState, NewJob};
use crate::model::schedule::{Cron, NewSchedule, ScheduledJob};
use crate::model::types::{ClaimRequest, Claimed, RedriveTarget, Retry};

/// One request to the writer.
#[derive(Debug)]
pub(crate) enum Op {
    Enqueue(Vec<NewJob>),
    Cancel {
        id: JobId,
        by: Option<String>,
    },
    Claim(ClaimRequest),
    Complete {
        id: JobId,
        token: u64,
        result: Option<Vec<u8>>,
        /// False when nobody waits for the answer (the pool's completions).
        reply: bool,
    },
    Fail {
        id: JobId,
        token: u64,
        error: String,
        retry: Retry,
    },
    Extend {
        id: JobId,
        token: u64,
        lease_ms: u64,
    },
    Release {
        id: JobId,
        token: u64,
    },
    ExpireLeases,
    Recover,
    Redrive(RedriveTarget),
    Prune(Retention),
    SetPaused {
        queue: String,
        paused: bool,
    },
    CreateSchedule(NewSchedule),
    ToggleSchedule {
        name: String,
        enabled: bool,
    },
    DeleteSchedule(String),
    FireDueSchedules,
}

/// What an op answers.
#[derive(Debug)]
pub(crate) enum Reply {
    Jobs(Vec<Job>),
    Job(Box<Job>),
    Claimed(Vec<Claimed>, u64),
    Count(u64),
    Schedule(Box<ScheduledJob>),
    Unit,
}

/// Largest number of jobs one maintenance op touches, so groups stay bounded.
const MAINTENANCE_CHUNK: usize = 5_000;

/// Everything an op may touch.
pub(crate) struct Ctx<'a> {
    pub tree: &'a sled::Tree,
    pub overlay: &'a Overlay,
    pub st: &'a mut State,
    pub staged: &'a mut Staged,
    pub cfg: &'a Config,
    pub now: i64,
}

impl Ctx<'_> {
    fn job(&self, id: JobId) -> Result<Option<Job>> {
        if let Some(j) = self.staged.jobs.get(&id) {
            return Ok(j.clone());
        }
        let key = keys::job(&id);
        match self.overlay.read(self.tree, &key)? {
            None => Ok(None),
            Some(bytes) => codec::decode("jobs", &key, &bytes).map(Some),
        }
    }

    fn must_job(&self, id: JobId) -> Result<Job> {
        self.job(id)?.ok_or_else(|| Error::not_found(id))
    }

    /// [`Ctx::must_job`] for a job about to change: a running job's record comes out of the
    /// in-memory cache (its change puts it back while it still runs).
    fn job_to_change(&mut self, id: JobId) -> Result<Job> {
        if !self.staged.jobs.contains_key(&id) {
            if let Some(j) = self.st.running.remove(&id) {
                return Ok(j);
            }
        }
        self.must_job(id)
    }

    fn raw(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        if let Some(v) = self.staged.raw.get(key) {
            return Ok(v.clone());
        }
        self.overlay.read(self.tree, key)
    }

    fn payload(&self, id: JobId) -> Result<Vec<u8>> {
        Ok(self
            .raw(&keys::payload(&id))?
            .map(|v| v.to_vec())
            .unwrap_or_default())
    }

    /// The live job holding dedupe `key`, if any.
    fn dedupe_holder(&self, key: &str) -> Result<Option<Job>> {
        let Some(idb) = self.raw(&keys::named(keys::DEDUPE, key))? else {
            return Ok(None);
        };
        let Some(id) = keys::id_of(&[&[keys::DEDUPE][..], &idb].concat()) else {
            return Err(Error::Corruption {
                tree: "dedupe",
                key: codec::show_key(&keys::named(keys::DEDUPE, key)),
                detail: "value is not a job id".into(),
            });
        };
        Ok(self.job(id)?.filter(|j| !j.status.is_terminal()))
    }

    /// Stages `new` (replacing `old`) and moves its index entries and dedupe key.
    fn put(&mut self, old: Option<&Job>, new: Job) {
        self.st.apply(old, Some(&new), self.now);
        if new.status == JobStatus::Running {
            self.st.running.insert(new.id, new.clone());
        } else {
            self.st.running.remove(&new.id);
        }
        let was_live = old.is_some_and(|o| !o.status.is_terminal());
        let live = !new.status.is_terminal();
        if let Some(k) = &new.dedupe_key {
            if live && !was_live {
                self.staged.put_raw(
                    keys::named(keys::DEDUPE, k),
                    Some(new.id.as_bytes().to_vec().into()),
                );
            } else if !live && was_live {
                self.staged.put_raw(keys::named(keys::DEDUPE, k), None);
            }
        }
        self.staged.jobs.insert(new.id, Some(new));
    }

    fn delete(&mut self, old: &Job) {
        self.st.apply(Some(old), None, self.now);
        self.st.running.remove(&old.id);
        if let (Some(k), false) = (&old.dedupe_key, old.status.is_terminal()) {
            self.staged.put_raw(keys::named(keys::DEDUPE, k), None);
        }
        self.staged.put_raw(keys::payload(&old.id).to_vec(), None);
        self.staged.jobs.insert(old.id, None);
    }

    /// Appends `event` to the log; returns its sequence number.
    fn emit(&mut self, event: Event) -> u64 {
        let seq = self.st.next_seq;
        self.st.next_seq += 1;
        self.staged.push_event(seq, self.now, event);
        seq
    }

    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        to_datetime(self.now)
    }
}

pub(crate) fn apply(ctx: &mut Ctx<'_>, op: Op) -> Result<Reply> {
    match op {
        Op::Enqueue(jobs) => enqueue(ctx, jobs).map(Reply::Jobs),
        Op::Cancel { id, by } => cancel(ctx, id, by).map(|j| Reply::Job(Box::new(j))),
        Op::Claim(req) => claim(ctx, &req).map(|c| Reply::Claimed(c, ctx.st.epoch)),
        Op::Complete {
            id,
            token,
            result,
            reply,
        } => {
            let job = complete(ctx, id, token, result)?;
            Ok(if reply {
                Reply::Job(Box::new(job))
            } else {
                Reply::Unit
            })
        }
        Op::Fail {
            id,
            token,
            error,
            retry,
        } => {
            let job = leased(ctx, id, token)?;
            Ok(Reply::Job(Box::new(fail_attempt(ctx, job, error, retry))))
        }
        Op::Extend {
            id,
            token,
            lease_ms,
        } => {
            let old = leased(ctx, id, token)?;
            let mut job = old.clone();
            job.lease = Some(LeaseState {
                token,
                expires_ms: ctx.now.saturating_add(ms(lease_ms)),
            });
            ctx.put(Some(&old), job.clone());
            Ok(Reply::Job(Box::new(job)))
        }
        Op::Release { id, token } => release(ctx, id, token).map(|j| Reply::Job(Box::new(j))),
        Op::ExpireLeases => {
            let ids = ctx.st.expired_leases(ctx.now, MAINTENANCE_CHUNK);
            expire(ctx, &ids, "lease expired").map(Reply::Count)
        }
        Op::Recover => {
            let ids = ctx.st.ids_with_status(JobStatus::Running, None, usize::MAX);
            expire(ctx, &ids, "lost when the process stopped").map(Reply::Count)
        }
        Op::Redrive(target) => redrive(ctx, target).map(Reply::Jobs),
        Op::Prune(retention) => prune(ctx, &retention).map(Reply::Count),
        Op::CreateSchedule(new) => create_schedule(ctx, new).map(|s| Reply::Schedule(Box::new(s))),
        Op::ToggleSchedule { name, enabled } => {
            toggle_schedule(ctx, &name, enabled).map(|s| Reply::Schedule(Box::new(s)))
        }
        Op::DeleteSchedule(name) => {
            let key = keys::named(keys::SCHEDULE, &name);
            if ctx.raw(&key)?.is_none() {
                return Err(Error::ScheduleNotFound(name));
            }
            ctx.staged.put_raw(key, None);
            let at = ctx.at();
            ctx.emit(Event::ScheduleChanged {
                name,
                change: ScheduleChange::Deleted,
                at,
            });
            Ok(Reply::Unit)
        }
        Op::FireDueSchedules => fire_due(ctx).map(Reply::Count),
        Op::SetPaused { queue, paused } => {
            crate::model::job::validate_name("queue", &queue)?;
            let value = if paused {
                Some(codec::encode(&true)?.into())
            } else {
                None
            };
            ctx.st.set_paused(&queue, paused);
            ctx.staged.put_raw(keys::named(keys::QUEUE, &queue), value);
            let at = ctx.at();
            ctx.emit(Event::QueuePaused { queue, paused, at });
            Ok(Reply::Unit)
        }
    }
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

enum Plan {
    New(NewJob),
    Existing(Job),
    SameAs(usize),
}

fn enqueue(ctx: &mut Ctx<'_>, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
    // Read and check everything first: a batch is all or nothing.
    let mut plans = Vec::with_capacity(jobs.len());
    let mut keys_in_batch: HashMap<String, usize> = HashMap::new();
    // Each job was validated on the caller's thread (`SledBackend::enqueue`); the writer,
    // the bottleneck, does not check it again.
    for (i, nj) in jobs.into_iter().enumerate() {
        if let Some(key) = &nj.dedupe_key {
            if let Some(first) = keys_in_batch.get(key) {
                plans.push(Plan::SameAs(*first));
                continue;
            }
            if let Some(holder) = ctx.dedupe_holder(key)? {
                plans.push(Plan::Existing(holder));
                continue;
            }
            keys_in_batch.insert(key.clone(), i);
        }
        plans.push(Plan::New(nj));
    }
    let mut out: Vec<Job> = Vec::with_capacity(plans.len());
    for plan in plans {
        let job = match plan {
            Plan::SameAs(i) => out[i].clone(),
            Plan::Existing(mut j) => {
                j.payload = ctx.payload(j.id)?;
                j
            }
            Plan::New(nj) => create(ctx, nj),
        };
        out.push(job);
    }
    Ok(out)
}

fn create(ctx: &mut Ctx<'_>, nj: NewJob) -> Job {
    let now = ctx.now;
    let id = ctx.st.next_id(now);
    let due = match (nj.delay, nj.run_at) {
        (Some(d), _) => now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        (None, Some(at)) => at.timestamp_millis(),
        (None, None) => now,
    };
    let job = Job {
        id,
        kind: nj.kind,
        version: nj.version.unwrap_or_else(|| "1.0.0".into()),
        queue: nj.queue.unwrap_or_else(|| "default".into()),
        payload: nj.payload,
        status: JobStatus::Pending,
        priority: nj.priority,
        attempts: 0,
        max_attempts: nj.max_attempts.unwrap_or(ctx.cfg.default_max_attempts),
        created_at: to_datetime(now),
        updated_at: to_datetime(now),
        scheduled_at: Some(to_datetime(due)),
        started_at: None,
        completed_at: None,
        last_error: None,
        timeout_ms: nj.timeout_ms,
        dedupe_key: nj.dedupe_key,
        tenant_id: nj.tenant_id,
        user_id: nj.user_id,
        trace_id: nj.trace_id,
        metadata: nj.metadata,
        result: None,
        executions: Vec::new(),
        backoff: nj.backoff,
        lease: None,
    };
    ctx.staged.put_raw(
        keys::payload(&id).to_vec(),
        Some(sled::IVec::from(&job.payload[..])),
    );
    ctx.emit(Event::JobEnqueued {
        job_id: id,
        kind: job.kind.clone(),
        priority: job.priority,
        enqueued_at: job.created_at,
        scheduled_at: job.scheduled_at,
        tenant_id: job.tenant_id.clone(),
    });
    // The record is stored without the payload (it has its own key): clone the job
    // without copying the payload a second time.
    let mut job = job;
    let payload = std::mem::take(&mut job.payload);
    ctx.put(None, job.clone());
    job.payload = payload;
    job
}

fn cancel(ctx: &mut Ctx<'_>, id: JobId, by: Option<String>) -> Result<Job> {
    let old = ctx.must_job(id)?;
    if old.status != JobStatus::Pending {
        return Err(Error::JobNotPending {
            id: id.to_string(),
            status: old.status.to_string(),
        });
    }
    let mut job = old.clone();
    job.status = JobStatus::Cancelled;
    job.updated_at = ctx.at();
    job.completed_at = Some(ctx.at());
    ctx.emit(Event::JobCancelled {
        job_id: id,
        kind: job.kind.clone(),
        cancelled_at: ctx.at(),
        cancelled_by: by,
    });
    ctx.put(Some(&old), job.clone());
    job.payload = ctx.payload(id)?;
    Ok(job)
}

fn claim(ctx: &mut Ctx<'_>, req: &ClaimRequest) -> Result<Vec<Claimed>> {
    ctx.st.promote(ctx.now);
    let mut out = Vec::new();
    while out.len() < req.max {
        let Some(id) = ctx.st.peek_claimable(req) else {
            break;
        };
        let loaded = ctx.job(id).and_then(|j| Ok((j, ctx.payload(id)?)));
        let (old, payload) = match loaded {
            Ok((Some(j), p)) if j.status == JobStatus::Pending => (j, p),
            // The index and the records disagree: stop here rather than loop. Already
            // claimed jobs are kept; an error is reported only if there are none.
            Ok(_) if !out.is_empty() => break,
            Ok(_) => {
                return Err(Error::Corruption {
                    tree: "jobs",
                    key: codec::show_key(&keys::job(&id)),
                    detail: "indexed as pending but the record is missing or not pending".into(),
                })
            }
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(e),
        };
        let mut job = old.clone();
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.started_at = Some(ctx.at());
        job.updated_at = ctx.at();
        let token = ctx.emit(Event::JobStarted {
            job_id: id,
            kind: job.kind.clone(),
            attempt: job.attempts,
            started_at: ctx.at(),
        });
        job.lease = Some(LeaseState {
            token,
            expires_ms: ctx.now.saturating_add(ms(req.lease_ms)),
        });
        job.push_execution(Execution {
            attempt_number: job.attempts,
            started_at: ctx.at(),
            completed_at: None,
            duration_ms: None,
            success: None,
            error: None,
            worker_id: Some(req.worker_id.clone()),
            released: false,
        });
        ctx.put(Some(&old), job.clone());
        job.payload = payload;
        out.push(Claimed { job, token });
    }
    Ok(out)
}

/// The running job `id` if `token` still holds its lease. A lease found expired is expired
/// on the spot (a failed attempt), and the caller gets `STALE_LEASE`.
fn leased(ctx: &mut Ctx<'_>, id: JobId, token: u64) -> Result<Job> {
    let job = ctx.job_to_change(id)?;
    let Some(lease) = job
        .lease
        .as_ref()
        .filter(|_| job.status == JobStatus::Running)
    else {
        return Err(Error::StaleLease { id: id.to_string() });
    };
    if lease.token != token {
        return Err(Error::StaleLease { id: id.to_string() });
    }
    if lease.expires_ms <= ctx.now {
        fail_attempt(ctx, job, "lease expired".into(), Retry::Backoff);
        return Err(Error::StaleLease { id: id.to_string() });
    }
    Ok(job)
}

fn end_execution(job: &mut Job, now: i64, success: Option<bool>, error: Option<String>) {
    if let Some(e) = job.executions.last_mut() {
        if e.completed_at.is_none() {
            e.completed_at = Some(to_datetime(now));
            e.duration_ms = Some(u64::try_from(now - e.started_at.timestamp_millis()).unwrap_or(0));
            e.success = success;
            e.error = error;
        }
    }
}

fn attempt_duration(job: &Job, now: i64) -> u64 {
    job.started_at.map_or(0, |s| {
        u64::try_from(now - s.timestamp_millis()).unwrap_or(0)
    })
}

fn complete(ctx: &mut Ctx<'_>, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job> {
    if let Some(r) = &result {
        if r.len() > ctx.cfg.payload_limit {
            return Err(Error::PayloadTooLarge {
                what: "result",
                size: r.len(),
                limit: ctx.cfg.payload_limit,
            });
        }
    }
    let old = leased(ctx, id, token)?;
    let mut job = old.clone();
    let duration_ms = attempt_duration(&job, ctx.now);
    end_execution(&mut job, ctx.now, Some(true), None);
    job.status = JobStatus::Completed;
    job.lease = None;
    job.result = result;
    job.updated_at = ctx.at();
    job.completed_at = Some(ctx.at());
    ctx.emit(Event::JobCompleted {
        job_id: id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        duration_ms,
        completed_at: ctx.at(),
    });
    ctx.put(Some(&old), job.clone());
    Ok(job)
}

/// Ends the current attempt of running `old` as failed: retry, `failed` or `dead_letter`.
fn fail_attempt(ctx: &mut Ctx<'_>, old: Job, error: String, retry: Retry) -> Job {
    let mut job = old.clone();
    let now = ctx.now;
    end_execution(&mut job, now, Some(false), Some(error.clone()));
    job.lease = None;
    job.updated_at = ctx.at();
    job.last_error = Some(error.clone());
    let exhausted = job.attempts >= job.max_attempts;
    let will_retry = retry != Retry::Never && !exhausted;
    ctx.emit(Event::JobFailed {
        job_id: job.id,
        kind: job.kind.clone(),
        attempt: job.attempts,
        error: error.clone(),
        will_retry,
        failed_at: ctx.at(),
    });
    if will_retry {
        let backoff_ms = match retry {
            Retry::After(ms) => ms.min(crate::model::job::MAX_DELAY_MS),
            _ => {
                let b = job.backoff.unwrap_or(ctx.cfg.default_backoff);
                let unit = ctx.st.unit();
                b.delay_ms(job.attempts, unit)
            }
        };
        let next = now.saturating_add(ms(backoff_ms));
        job.status = JobStatus::Pending;
        job.scheduled_at = Some(to_datetime(next));
        ctx.emit(Event::JobRetrying {
            job_id: job.id,
            kind: job.kind.clone(),
            attempt: job.attempts,
            next_attempt_at: to_datetime(next),
            backoff_ms,
        });
    } else {
        job.completed_at = Some(ctx.at());
        if retry == Retry::Never {
            job.status = JobStatus::Failed;
        } else {
            job.status = JobStatus::DeadLetter;
            ctx.emit(Event::JobDeadLettered {
                job_id: job.id,
                kind: job.kind.clone(),
                attempts: job.attempts,
                last_error: error,
                dead_lettered_at: ctx.at(),
            });
        }
    }
    ctx.put(Some(&old), job.clone());
    job
}

fn expire(ctx: &mut Ctx<'_>, ids: &[JobId], why: &str) -> Result<u64> {
    // Load all first so a read failure leaves the group untouched.
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(j) = ctx.job(*id)?.filter(|j| j.status == JobStatus::Running) {
            jobs.push(j);
        }
    }
    let n = jobs.len() as u64;
    for job in jobs {
        fail_attempt(ctx, job, why.to_owned(), Retry::Backoff);
    }
    Ok(n)
}

fn release(ctx: &mut Ctx<'_>, id: JobId, token: u64) -> Result<Job> {
    let old = leased(ctx, id, token)?;
    let mut job = old.clone();
    if let Some(e) = job.executions.last_mut() {
        e.completed_at = Some(ctx.at());
        e.duration_ms = Some(attempt_duration(&old, ctx.now));
        e.released = true;
    }
    job.status = JobStatus::Pending;
    job.attempts = job.attempts.saturating_sub(1);
    job.lease = None;
    job.updated_at = ctx.at();
    ctx.emit(Event::JobReleased {
        job_id: id,
        kind: job.kind.clone(),
        attempt: old.attempts,
        released_at: ctx.at(),
    });
    ctx.put(Some(&old), job.clone());
    Ok(job)
}

fn redrive(ctx: &mut Ctx<'_>, target: RedriveTarget) -> Result<Vec<Job>> {
    let (ids, strict, queue, kind) = match target {
        RedriveTarget::One(id) => (vec![id], true, None, None),
        RedriveTarget::All { queue, kind } => {
            let mut ids = ctx
                .st
                .ids_with_status(JobStatus::DeadLetter, None, usize::MAX);
            ids.extend(ctx.st.ids_with_status(JobStatus::Failed, None, usize::MAX));
            ids.sort();
            (ids, false, queue, kind)
        }
    };
    let mut picked = Vec::new();
    let mut keys_taken: HashMap<String, JobId> = HashMap::new();
    for id in ids {
        let job = ctx.must_job(id)?;
        if queue.as_ref().is_some_and(|q| *q != job.queue)
            || kind.as_ref().is_some_and(|k| *k != job.kind)
        {
            continue;
        }
        if !matches!(job.status, JobStatus::DeadLetter | JobStatus::Failed) {
            if strict {
                return Err(Error::invalid(format!(
                    "job {id} is {}; only dead_letter and failed jobs can be redriven",
                    job.status
                )));
            }
            continue;
        }
        if let Some(k) = &job.dedupe_key {
            let held = ctx
                .dedupe_holder(k)?
                .map(|h| h.id)
                .or_else(|| keys_taken.get(k).copied());
            if let Some(holder) = held {
                if strict {
                    return Err(Error::invalid(format!(
                        "job {id} cannot be redriven: its dedupeKey {k:?} is held by live job {holder}"
                    )));
                }
                continue;
            }
            keys_taken.insert(k.clone(), id);
        }
        picked.push(job);
    }
    let mut out = Vec::with_capacity(picked.len());
    for old in picked {
        let mut job = old.clone();
        job.status = JobStatus::Pending;
        job.attempts = 0;
        job.last_error = None;
        job.completed_at = None;
        job.result = None;
        job.scheduled_at = Some(ctx.at());
        job.updated_at = ctx.at();
        ctx.emit(Event::JobRedriven {
            job_id: job.id,
            kind: job.kind.clone(),
            redriven_at: ctx.at(),
        });
        ctx.put(Some(&old), job.clone());
        out.push(job);
    }
    Ok(out)
}

fn prune(ctx: &mut Ctx<'_>, r: &Retention) -> Result<u64> {
    let cutoff = |d: std::time::Duration| {
        ctx.now
            .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let plan = [
        (JobStatus::Completed, cutoff(r.completed)),
        (JobStatus::Cancelled, cutoff(r.cancelled)),
        (JobStatus::Failed, cutoff(r.failed)),
        (JobStatus::DeadLetter, cutoff(r.dead_letter)),
    ];
    let mut jobs = Vec::new();
    for (status, before) in plan {
        for id in ctx
            .st
            .finished_before(status, before, MAINTENANCE_CHUNK - jobs.len())
        {
            if let Some(j) = ctx.job(id)? {
                jobs.push(j);
            }
        }
    }
    // Old events: the log is in time order, so stop at the first block to keep (a block
    // goes when its newest event is past retention).
    let events_before = cutoff(r.events);
    let mut old_events = Vec::new();
    for item in ctx
        .overlay
        .scan(ctx.tree, &[keys::EVENT], &[keys::EVENT + 1])
        .take(MAINTENANCE_CHUNK)
    {
        let (k, v) = item?;
        let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
        if block.last().is_some_and(|e| e.at_ms >= events_before) {
            break;
        }
        old_events.push(k);
    }
    let n = jobs.len() as u64;
    for job in &jobs {
        ctx.delete(job);
    }
    for k in old_events {
        ctx.staged.put_raw(k.to_vec(), None);
    }
    if n > 0 {
        let at = ctx.at();
        ctx.emit(Event::JobsPruned {
            count: n,
            pruned_at: at,
        });
    }
    Ok(n)
}

fn schedule(ctx: &Ctx<'_>, name: &str) -> Result<Option<ScheduledJob>> {
    let key = keys::named(keys::SCHEDULE, name);
    match ctx.raw(&key)? {
        None => Ok(None),
        Some(v) => codec::decode("schedules", &key, &v).map(Some),
    }
}

/// Stages a schedule's record, encoded beforehand (encoding can fail; staging must not).
fn put_schedule(ctx: &mut Ctx<'_>, name: &str, record: Vec<u8>) {
    ctx.staged
        .put_raw(keys::named(keys::SCHEDULE, name), Some(record.into()));
}

fn next_run(s: &ScheduledJob, after_ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = Cron::parse(&s.cron_expression).ok()?;
    let tz = crate::model::schedule::parse_tz(&s.timezone).ok()?;
    cron.next_after(to_datetime(after_ms), tz)
}

fn create_schedule(ctx: &mut Ctx<'_>, new: NewSchedule) -> Result<ScheduledJob> {
    let (cron, tz) = new.validate(ctx.cfg.payload_limit)?;
    let existing = schedule(ctx, &new.name)?;
    if existing.is_some() && !new.replace {
        return Err(Error::ScheduleExists(new.name));
    }
    let enabled = new.enabled.unwrap_or(true);
    let id = ctx.st.next_id(ctx.now);
    let s = ScheduledJob {
        id: existing
            .as_ref()
            .map_or_else(|| id.to_string(), |e| e.id.clone()),
        name: new.name,
        cron_expression: new.cron_expression.trim().to_owned(),
        timezone: tz.name().to_owned(),
        job_type: new.job_type,
        enabled,
        created_at: existing.as_ref().map_or_else(|| ctx.at(), |e| e.created_at),
        description: new.description,
        last_run_at: existing.as_ref().and_then(|e| e.last_run_at),
        next_run_at: if enabled {
            cron.next_after(ctx.at(), tz)
        } else {
            None
        },
        payload: new.payload,
        max_attempts: new.max_attempts,
        queue: new.queue,
        priority: new.priority,
    };
    let change = if existing.is_some() {
        ScheduleChange::Replaced
    } else {
        ScheduleChange::Created
    };
    store_schedule(ctx, &s, change)?;
    Ok(s)
}

/// Stages a changed schedule with the event that says what changed.
fn store_schedule(ctx: &mut Ctx<'_>, s: &ScheduledJob, change: ScheduleChange) -> Result<()> {
    let record = codec::encode(s)?;
    put_schedule(ctx, &s.name, record);
    let at = ctx.at();
    ctx.emit(Event::ScheduleChanged {
        name: s.name.clone(),
        change,
        at,
    });
    Ok(())
}

fn toggle_schedule(ctx: &mut Ctx<'_>, name: &str, enabled: bool) -> Result<ScheduledJob> {
    let mut s = schedule(ctx, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))?;
    s.enabled = enabled;
    // Off clears the next run; on recomputes it from now (no catch-up of the off period).
    s.next_run_at = if enabled { next_run(&s, ctx.now) } else { None };
    let change = if enabled {
        ScheduleChange::Enabled
    } else {
        ScheduleChange::Disabled
    };
    store_schedule(ctx, &s, change)?;
    Ok(s)
}

/// Names of every schedule, the ones staged in this group included.
fn schedule_names(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for item in ctx
        .overlay
        .scan(ctx.tree, &[keys::SCHEDULE], &[keys::SCHEDULE + 1])
    {
        let (k, _) = item?;
        names.insert(String::from_utf8_lossy(&k[1..]).into_owned());
    }
    for k in ctx
        .staged
        .raw
        .keys()
        .filter(|k| k.first() == Some(&keys::SCHEDULE))
    {
        names.insert(String::from_utf8_lossy(&k[1..]).into_owned());
    }
    Ok(names.into_iter().collect())
}

/// Fires each due schedule once: enqueue its job, set lastRunAt to now and nextRunAt to the
/// first tick after now (ticks missed while down collapse into this one firing).
fn fire_due(ctx: &mut Ctx<'_>) -> Result<u64> {
    let mut due = Vec::new();
    for name in schedule_names(ctx)? {
        if let Some(s) = schedule(ctx, &name)? {
            if s.enabled
                && s.next_run_at
                    .is_some_and(|t| t.timestamp_millis() <= ctx.now)
            {
                due.push(s);
            }
        }
    }
    // Encode every changed schedule before staging anything.
    let mut planned = Vec::with_capacity(due.len());
    for mut s in due {
        let nj = NewJob {
            kind: s.job_type.clone(),
            payload: s.payload.clone(),
            queue: s.queue.clone(),
            priority: s.priority,
            max_attempts: s.max_attempts,
            ..NewJob::default()
        };
        s.last_run_at = Some(ctx.at());
        s.next_run_at = next_run(&s, ctx.now);
        // Settings changed since the schedule was made (a lower payload limit): skip the
        // tick rather than fire a job that could not be enqueued by hand.
        let nj = nj
            .validate(ctx.now, ctx.cfg.payload_limit)
            .is_ok()
            .then_some(nj);
        let record = codec::encode(&s)?;
        planned.push((s, record, nj));
    }
    let mut fired = 0;
    for (s, record, nj) in planned {
        if let Some(nj) = nj {
            let job = create(ctx, nj);
            ctx.emit(Event::SchedulerJobTriggered {
                schedule_name: s.name.clone(),
                job_id: job.id,
                job_type: s.job_type.clone(),
                triggered_at: ctx.at(),
                next_run_at: s.next_run_at,
            });
            fired += 1;
        }
        put_schedule(ctx, &s.name, record);
    }
    Ok(fired)
}
