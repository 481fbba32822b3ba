//! The [`Backend`] trait over sled: each transition is one writer op (one journal entry,
//! group-committed); reads go to the overlay of unapplied changes, then sled, and see only
//! groups whose journal entry is durable (the writer's own reads, in ops, see every staged
//! group). Under `Durability::Buffered` a change is seen once the journal is flushed (within
//! `max_delay`), which may be after its caller was answered.

use std::sync::atomic::Ordering;

use super::ops::{Op, Reply};
use super::stage::StoredEvent;
use super::writer::Command;
use super::{unexpected, SledBackend};
use crate::backend::codec::{self, keys};
use crate::backend::{Backend, Completion};
use crate::model::config::Retention;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{
    ClaimRequest, Claimed, Enqueued, ListQuery, Metrics, RedriveTarget, Retry, Stats,
};

impl Backend for SledBackend {
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let sh = self.sh()?;
        // Checks that need no state run here, off the writer thread.
        let now = sh.cfg.clock.now_ms();
        NewJob::validate_all(&jobs, now, sh.cfg.payload_limit)?;
        match self.call(Op::Enqueue(jobs))? {
            Reply::Enqueued(j) => Ok(j),
            other => Err(unexpected(&other)),
        }
    }

    fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.read_job(id, true)
    }

    fn cancel(&self, id: JobId, by: Option<String>) -> Result<Job> {
        self.call_job(Op::Cancel { id, by })
    }

    fn list(&self, q: &ListQuery) -> Result<Vec<Job>> {
        self.named(self.list_records(q))
    }

    fn stats(&self) -> Result<Stats> {
        let sh = self.sh()?;
        // After a failed write the counters may hold changes that never reached the disk.
        if let Some(e) = sh.poisoned_error() {
            return Err(e);
        }
        // The live counters minus the groups not yet durable.
        let now = sh.cfg.clock.now_ms();
        let mut st = sh.state.lock();
        st.promote(now);
        Ok(st.durable_stats(sh.overlay.synced()))
    }

    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        self.named(self.read_events(after_seq, limit))
    }

    fn last_seq(&self) -> u64 {
        self.sh()
            .map_or(0, |sh| sh.durable_seq.load(Ordering::Acquire))
    }

    fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        match self.call(Op::Claim(req.clone()))? {
            Reply::Claimed(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    fn next_due_ms(&self, req: &ClaimRequest) -> Result<Option<i64>> {
        let sh = self.sh()?;
        let now = sh.cfg.clock.now_ms();
        let mut st = sh.state.lock();
        // Due ones become ready (and the next claim takes them): the answer is in the future.
        st.promote(now);
        Ok(st.next_due_for(req))
    }

    fn has_work(&self, req: &ClaimRequest) -> bool {
        self.sh().is_ok_and(|sh| sh.state.lock().has_work_for(req))
    }

    fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job> {
        self.call_job(Op::Complete { id, token, result })
    }

    fn complete_batch(&self, batch: Vec<Completion>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.call(Op::CompleteBatch(batch)).map(|_| ())
    }

    fn fail(&self, id: JobId, token: u64, error: String, retry: Retry) -> Result<Job> {
        self.call_job(Op::Fail {
            id,
            token,
            error,
            retry,
        })
    }

    fn extend(&self, id: JobId, token: u64, lease_ms: u64) -> Result<Job> {
        self.call_job(Op::Extend {
            id,
            token,
            lease_ms,
        })
    }

    fn release(&self, id: JobId, token: u64) -> Result<Job> {
        self.call_job(Op::Release { id, token })
    }

    fn expire_leases(&self) -> Result<usize> {
        match self.call(Op::ExpireLeases)? {
            Reply::Count(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(unexpected(&other)),
        }
    }

    fn redrive(&self, target: RedriveTarget) -> Result<Vec<Job>> {
        match self.call(Op::Redrive(target))? {
            Reply::Jobs(j) => Ok(j),
            other => Err(unexpected(&other)),
        }
    }

    fn prune(&self, retention: &Retention) -> Result<u64> {
        let mut total = 0;
        loop {
            match self.call(Op::Prune(*retention))? {
                Reply::Count(0) => return Ok(total),
                Reply::Count(n) => total += n,
                other => return Err(unexpected(&other)),
            }
        }
    }

    fn set_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.call(Op::SetPaused {
            queue: queue.to_owned(),
            paused,
        })
        .map(|_| ())
    }

    fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        let sh = self.sh()?;
        s.validate(sh.cfg.payload_limit)?;
        match self.call(Op::CreateSchedule(s))? {
            Reply::Schedule(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        match self.call(Op::ToggleSchedule {
            name: name.to_owned(),
            enabled,
        })? {
            Reply::Schedule(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    fn delete_schedule(&self, name: &str) -> Result<()> {
        self.call(Op::DeleteSchedule(name.to_owned())).map(|_| ())
    }

    fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        self.named(self.read_schedules())
    }

    fn fire_due_schedules(&self) -> Result<u64> {
        match self.call(Op::FireDueSchedules)? {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    fn next_schedule_due(&self) -> Result<Option<i64>> {
        Ok(self
            .list_schedules()?
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| s.next_run_at.map(|t| t.timestamp_millis()))
            .min())
    }

    fn flush(&self) -> Result<()> {
        let (rtx, rrx) = super::writer::answer_slot();
        self.send(Command::Sync(rtx))?;
        self.wait(&rrx)?.map(|_| ())
    }

    fn metrics(&self) -> Metrics {
        let m = &self.counters;
        Metrics {
            ops: m.ops.load(Ordering::Relaxed),
            groups: m.groups.load(Ordering::Relaxed),
            fsyncs: m.fsyncs.load(Ordering::Relaxed),
            unapplied_groups: m.unapplied.load(Ordering::Relaxed),
            journal_bytes: m.journal_bytes.load(Ordering::Relaxed),
            live_bytes: self
                .live
                .read()
                .as_ref()
                .map_or(0, |shared| shared.log.live_bytes()),
        }
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut result = Ok(());
        if let Some(tx) = self.tx.lock().take() {
            let (rtx, rrx) = super::writer::answer_slot();
            if tx.send(Command::Shutdown(rtx)).is_ok() {
                result = self.wait(&rrx).and_then(|r| r.map(|_| ()));
            }
        }
        if let Some(h) = self.writer.lock().take() {
            if h.join().is_err() && result.is_ok() {
                result = Err(Error::Storage {
                    context: "the writer thread panicked".into(),
                    source: None,
                });
            }
        }
        if let Some(sh) = self.live.write().take() {
            super::holder::remove(&sh.path); // while the lock is still held
                                             // Waiting claimers look again and find the handle closed.
            sh.observer.work_available();
            // sled writes its buffers as its last handle drops, and panics when it cannot (a
            // filesystem gone read-only): report that as STORAGE, not as a panic.
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(sh)));
            if dropped.is_err() && result.is_ok() {
                result = Err(Error::Storage {
                    context: "sled could not write its files as the database closed (a \
                              read-only or failing filesystem?); reopen it once the \
                              filesystem is writable: the journal holds every acknowledged \
                              change"
                        .into(),
                    source: None,
                });
            }
        }
        result
    }
}

#[cfg(test)]
mod tests;

/// The reads behind the trait's methods, whose errors [`SledBackend::named`] gives the
/// database's path.
impl SledBackend {
    fn list_records(&self, q: &ListQuery) -> Result<Vec<Job>> {
        let sh = self.sh()?;
        let limit = crate::model::limits::page_size(q.limit);
        // Queue, type, tenant and dedupe key are checked on each record read: a page costs
        // the records walked until it fills (in the status index when a status is given,
        // else every record in id order), not only the page's own.
        let matches = |j: &Job| {
            q.queue.as_ref().map_or(true, |x| *x == j.queue)
                && q.kind.as_ref().map_or(true, |x| *x == j.kind)
                && q.tenant_id
                    .as_ref()
                    .map_or(true, |x| j.tenant_id.as_ref() == Some(x))
                && q.dedupe_key
                    .as_ref()
                    .map_or(true, |x| j.dedupe_key.as_ref() == Some(x))
        };
        let mut out = Vec::new();
        if let Some(status) = q.status {
            // The status index is the writer's view (ahead of the durable one by the groups
            // in flight): each hit is read through its durable record and kept only if that
            // has the status; the jobs those groups changed are looked at too, since their
            // durable status may be this one while the index already moved them.
            let mut changed: Vec<JobId> = sh
                .overlay
                .unsynced_keys(&[keys::JOB], &[keys::JOB + 1])
                .iter()
                .filter_map(|k| keys::id_of(k))
                .filter(|id| q.after.map_or(true, |a| *id > a))
                .collect();
            changed.reverse(); // popped in id order
            let mut after = q.after;
            loop {
                let mut ids = sh.state.lock().ids_with_status(status, after, 512);
                let last = (ids.len() == 512).then(|| ids[511]);
                while changed
                    .last()
                    .is_some_and(|id| last.map_or(true, |l| *id <= l))
                {
                    ids.extend(changed.pop());
                }
                ids.sort_unstable();
                ids.dedup();
                for id in ids {
                    if let Some(j) = self.read_job(id, true)? {
                        if j.status == status && matches(&j) {
                            out.push(j);
                            if out.len() == limit {
                                return Ok(out);
                            }
                        }
                    }
                }
                match last {
                    Some(l) => after = Some(l),
                    None => break,
                }
            }
        } else {
            let start = q.after.map_or_else(
                || vec![keys::JOB],
                |a| {
                    let mut k = keys::job(&a).to_vec();
                    k.push(0);
                    k
                },
            );
            for item in sh.overlay.scan_durable(&sh.base, &start, &[keys::JOB + 1]) {
                let (k, v) = item?;
                let mut j: Job = codec::decode("jobs", &k, &v)?;
                if matches(&j) {
                    if let Some(p) = sh.overlay.read_durable(&sh.base, &keys::payload(&j.id))? {
                        j.payload = p.to_vec();
                    }
                    out.push(j);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn read_events(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let sh = self.sh()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let want = after_seq.saturating_add(1);
        // The block holding `want` starts at or before it: step back to it, then forward.
        // (Durable blocks pending in the overlay count: they are the newest; blocks not yet
        // durable are not shown.)
        let mut upto = keys::event(want).to_vec();
        let in_log = sh.log.last_key_upto(&[keys::EVENT], &upto);
        upto.push(0);
        let pending = sh.overlay.last_key_durable(&[keys::EVENT], &upto);
        let from = match in_log.max(pending) {
            Some(k) => k.to_vec(),
            None => keys::event(want).to_vec(),
        };
        let mut out = Vec::new();
        for item in sh.overlay.scan_durable(&sh.base, &from, &[keys::EVENT + 1]) {
            let (k, v) = item?;
            let first = keys::seq_of(&k).unwrap_or(0);
            let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
            for (i, stored) in block.into_iter().enumerate() {
                let seq = first + i as u64;
                if seq >= want {
                    out.push(EventRecord {
                        seq,
                        event: stored.event,
                    });
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn read_schedules(&self) -> Result<Vec<ScheduledJob>> {
        let sh = self.sh()?;
        let mut out = Vec::new();
        for item in sh
            .overlay
            .scan_durable(&sh.base, &[keys::SCHEDULE], &[keys::SCHEDULE + 1])
        {
            let (k, v) = item?;
            out.push(codec::decode("schedules", &k, &v)?);
        }
        Ok(out)
    }
}
