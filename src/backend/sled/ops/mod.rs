//! The queue transitions, applied by the writer thread to one group's staged changes.
//!
//! Every op reads and checks first, then changes: once an op starts staging writes and
//! index moves, nothing in it can fail, so a failed op leaves no trace in the group. That
//! includes reads for the answer (a payload) and encoding (a schedule record): they happen
//! before the first staged write too (`ops::tests` holds the regression tests). Two
//! deliberate exceptions answer an error or stop early after staging: a lease found
//! expired is expired on the spot and the caller gets `STALE_LEASE`; a claim that hits an
//! unreadable job after claiming others keeps those and answers them.
//!
//! `enqueue` (enqueue, cancel), `lease` (claim and the attempt's end: complete, fail,
//! extend, release, expiry), `dead` (redrive, prune), `schedule` (schedules and firing).
//! What each transition does to a job or schedule, and the events it appends, is
//! `backend::rules` (shared with the PostgreSQL backend); these read, check and stage.

mod dead;
mod enqueue;
mod lease;
mod schedule;
#[cfg(test)]
mod tests;

use crate::backend::codec::{self, keys};
use crate::backend::rules::{self, Change};
use crate::backend::sled::overlay::Overlay;
use crate::backend::sled::stage::Staged;
use crate::backend::sled::state::State;
use crate::backend::Completion;
use crate::model::clock::to_datetime;
use crate::model::config::{Config, Retention};
use crate::model::error::{Error, Result};
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::{Job, JobId, JobStatus, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{ClaimRequest, Claimed, Enqueued, RedriveTarget, Retry};

use dead::{prune, redrive};
use enqueue::{cancel, enqueue};
use lease::{claim, complete, complete_unanswered, expire, fail_attempt, leased, release};
use schedule::{create_schedule, fire_due, toggle_schedule};

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
    },
    /// Completions nobody waits for: a stale one is dropped silently.
    CompleteBatch(Vec<Completion>),
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
    Enqueued(Vec<Enqueued>),
    Job(Box<Job>),
    Claimed(Vec<Claimed>),
    Count(u64),
    Schedule(Box<ScheduledJob>),
    Unit,
}

/// Largest number of jobs one maintenance op touches, so groups stay bounded.
const MAINTENANCE_CHUNK: usize = 5_000;

/// Everything an op may touch.
pub(crate) struct Ctx<'a> {
    pub tree: &'a crate::backend::sled::logstore::Base,
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

    /// Stages a rule's [`Change`] of `old`: its events in order, then the new record (see
    /// [`Ctx::put`]); returns the new record.
    fn stage(&mut self, old: Option<&Job>, change: Change) -> Job {
        for e in change.events {
            self.emit(e);
        }
        self.put(old, change.job.clone());
        change.job
    }

    /// [`Ctx::stage`] when nobody needs the new record back (no copy of it is made).
    fn stage_unanswered(&mut self, old: Option<&Job>, change: Change) {
        for e in change.events {
            self.emit(e);
        }
        self.put(old, change.job);
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
        Op::Enqueue(jobs) => enqueue(ctx, jobs).map(Reply::Enqueued),
        Op::Cancel { id, by } => cancel(ctx, id, by).map(|j| Reply::Job(Box::new(j))),
        Op::Claim(req) => claim(ctx, &req).map(Reply::Claimed),
        Op::Complete { id, token, result } => {
            complete(ctx, id, token, result).map(|j| Reply::Job(Box::new(j)))
        }
        Op::CompleteBatch(batch) => {
            for c in batch {
                // A failed completion leaves no trace (see the module docs).
                let _ = complete_unanswered(ctx, c.id, c.token, c.result);
            }
            Ok(Reply::Unit)
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
            let job = rules::extend(old.clone(), ctx.now, token, lease_ms);
            ctx.put(Some(&old), job.clone());
            Ok(Reply::Job(Box::new(job)))
        }
        Op::Release { id, token } => release(ctx, id, token).map(|j| Reply::Job(Box::new(j))),
        Op::ExpireLeases => {
            let ids = ctx.st.expired_leases(ctx.now, MAINTENANCE_CHUNK);
            expire(ctx, &ids, rules::LEASE_EXPIRED).map(Reply::Count)
        }
        Op::Recover => {
            let ids = ctx.st.ids_with_status(JobStatus::Running, None, usize::MAX);
            expire(ctx, &ids, rules::PROCESS_LOST).map(Reply::Count)
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
            ctx.emit(rules::changed_event(
                &name,
                ScheduleChange::Deleted,
                ctx.now,
            ));
            Ok(Reply::Unit)
        }
        Op::FireDueSchedules => fire_due(ctx).map(Reply::Count),
        Op::SetPaused { queue, paused } => {
            crate::model::limits::validate_name("queue", &queue)?;
            // Idempotent: pausing a paused queue or resuming a running one changes nothing
            // and logs nothing, and still succeeds.
            if ctx.st.is_paused(&queue) == paused {
                return Ok(Reply::Unit);
            }
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
