//! The in-memory indexes of the sled backend: ready order, delayed timers, leases, status
//! sets and counters. Derived from the job records, rebuilt on open, and changed only by the
//! writer through [`State::apply`], in the same step that stages the record.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::job::{Job, JobId, JobStatus};
use crate::model::types::{ClaimRequest, Counts};
#[cfg(test)]
use crate::model::types::{QueueStats, Stats};

type ReadyKey = (Reverse<i32>, i64, JobId);

/// Pending jobs of one (queue, type), in claim order.
#[derive(Debug, Default)]
struct Partition {
    queue: String,
    kind: String,
    ready: BTreeSet<ReadyKey>,
    /// Pending (delayed included) plus running jobs of this partition.
    live: u64,
    /// Running jobs of this partition.
    running: u64,
}

#[derive(Debug, Default)]
struct QueueMem {
    counts: Counts,
    paused: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct State {
    parts: Vec<Partition>,
    part_ix: HashMap<String, HashMap<String, u32>>,
    /// Delayed pending jobs: (due, id) -> (priority, partition).
    delayed: BTreeMap<(i64, JobId), (i32, u32)>,
    queues: BTreeMap<String, QueueMem>,
    by_status: [BTreeSet<JobId>; 6],
    /// Terminal jobs by completion time, per status, for pruning.
    finished: [BTreeSet<(i64, JobId)>; 6],
    /// Running jobs by lease expiry.
    leases: BTreeSet<(i64, JobId)>,
    /// Next event sequence number (also the source of fencing tokens).
    pub next_seq: u64,
    /// Highest job id handed out, so ids stay strictly increasing.
    pub last_id: u128,
    /// Moves whenever a job may have become claimable; waiting workers watch it.
    pub epoch: u64,
    rng: u64,
    /// The records of jobs this process claimed and that still run (as last written), so
    /// completing one needs no read and decode. Bounded by the number of running jobs.
    pub running: fxhash::FxHashMap<JobId, crate::model::job::Job>,
    /// Which job records exist (count and order-free hash), kept as jobs are created and
    /// deleted, so a clean close can record what sled holds without scanning it.
    pub digest: crate::backend::sled::sledcheck::Digest,
    /// The counter changes of groups not yet durable, undone for readers (see `undo`).
    pub unsynced: undo::Unsynced,
}

impl State {
    pub fn new(seed: u64) -> Self {
        State {
            parts: Vec::new(),
            part_ix: HashMap::new(),
            delayed: BTreeMap::new(),
            queues: BTreeMap::new(),
            by_status: Default::default(),
            finished: Default::default(),
            leases: BTreeSet::new(),
            next_seq: 1,
            last_id: 0,
            epoch: 0,
            rng: seed | 1,
            running: fxhash::FxHashMap::default(),
            digest: crate::backend::sled::sledcheck::Digest::default(),
            unsynced: undo::Unsynced::default(),
        }
    }

    /// A uniform sample in `[0, 1)` (xorshift64*; only used for backoff jitter).
    pub fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh UUID v7 for `now_ms`, strictly greater than every id handed out before.
    pub fn next_id(&mut self, now_ms: i64) -> JobId {
        let mut rand = [0u8; 10];
        for chunk in rand.chunks_mut(5) {
            let bits = (self.unit() * (1u64 << 40) as f64) as u64;
            chunk.copy_from_slice(&bits.to_be_bytes()[3..8]);
        }
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(ms, &rand)
            .into_uuid()
            .as_u128();
        let id = if id <= self.last_id {
            self.last_id + 1
        } else {
            id
        };
        self.last_id = id;
        JobId(uuid::Uuid::from_u128(id))
    }

    fn part(&mut self, queue: &str, kind: &str) -> u32 {
        if let Some(ix) = self.part_ix.get(queue).and_then(|m| m.get(kind)) {
            return *ix;
        }
        let ix = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
        self.parts.push(Partition {
            queue: queue.into(),
            kind: kind.into(),
            ready: BTreeSet::new(),
            live: 0,
            running: 0,
        });
        self.part_ix
            .entry(queue.into())
            .or_default()
            .insert(kind.into(), ix);
        ix
    }

    fn queue_mut(&mut self, queue: &str) -> &mut QueueMem {
        if !self.queues.contains_key(queue) {
            self.queues.insert(queue.to_owned(), QueueMem::default());
        }
        self.queues.get_mut(queue).expect("inserted above")
    }

    /// Drops `queue`'s entry when it has no jobs and no setting, so the map holds only
    /// queues with something to report (as after a reopen, which knows queues only from
    /// their jobs and settings).
    fn forget_if_idle(&mut self, queue: &str) {
        if self
            .queues
            .get(queue)
            .is_some_and(|q| q.counts == Counts::default() && !q.paused)
        {
            self.queues.remove(queue);
        }
    }

    /// Moves a job's index entries from its `old` version to its `new` one.
    pub fn apply(&mut self, old: Option<&Job>, new: Option<&Job>, now_ms: i64) {
        match (old, new) {
            (None, Some(new)) => self.digest.add(new.id.as_bytes()),
            (Some(old), None) => self.digest.remove(old.id.as_bytes()),
            _ => {}
        }
        if let Some(old) = old {
            self.remove(old);
        }
        if let Some(new) = new {
            self.insert(new, now_ms);
        }
        if let Some(old) = old {
            self.forget_if_idle(&old.queue);
        }
    }

    fn remove(&mut self, job: &Job) {
        let id = job.id;
        self.by_status[job.status.index()].remove(&id);
        let q = self.queue_mut(&job.queue);
        let slot = q.counts.slot(job.status);
        *slot = slot.saturating_sub(1);
        self.note_status(&job.queue, job.status.index(), -1);
        if !job.status.is_terminal() {
            let p = self.part(&job.queue, &job.kind) as usize;
            self.parts[p].live = self.parts[p].live.saturating_sub(1);
            if job.status == JobStatus::Running {
                self.parts[p].running = self.parts[p].running.saturating_sub(1);
            }
        }
        match job.status {
            JobStatus::Pending => {
                if self.delayed.remove(&(job.due_ms(), id)).is_some() {
                    let q = self.queue_mut(&job.queue);
                    q.counts.delayed = q.counts.delayed.saturating_sub(1);
                    self.note_delayed(&job.queue, -1);
                } else {
                    let p = self.part(&job.queue, &job.kind) as usize;
                    self.parts[p]
                        .ready
                        .remove(&(Reverse(job.priority), job.due_ms(), id));
                }
            }
            JobStatus::Running => {
                if let Some(l) = &job.lease {
                    self.leases.remove(&(l.expires_ms, id));
                }
            }
            s => {
                let at = job
                    .completed_at
                    .unwrap_or(job.updated_at)
                    .timestamp_millis();
                self.finished[s.index()].remove(&(at, id));
            }
        }
    }

    fn insert(&mut self, job: &Job, now_ms: i64) {
        let id = job.id;
        self.by_status[job.status.index()].insert(id);
        *self.queue_mut(&job.queue).counts.slot(job.status) += 1;
        self.note_status(&job.queue, job.status.index(), 1);
        if !job.status.is_terminal() {
            let p = self.part(&job.queue, &job.kind) as usize;
            self.parts[p].live += 1;
            if job.status == JobStatus::Running {
                self.parts[p].running += 1;
            }
        }
        match job.status {
            JobStatus::Pending => {
                let p = self.part(&job.queue, &job.kind);
                if job.due_ms() > now_ms {
                    self.delayed.insert((job.due_ms(), id), (job.priority, p));
                    self.queue_mut(&job.queue).counts.delayed += 1;
                    self.note_delayed(&job.queue, 1);
                } else {
                    self.parts[p as usize]
                        .ready
                        .insert((Reverse(job.priority), job.due_ms(), id));
                    self.epoch += 1;
                }
            }
            JobStatus::Running => {
                if let Some(l) = &job.lease {
                    self.leases.insert((l.expires_ms, id));
                }
            }
            s => {
                let at = job
                    .completed_at
                    .unwrap_or(job.updated_at)
                    .timestamp_millis();
                self.finished[s.index()].insert((at, id));
            }
        }
    }

    /// Moves delayed jobs that are due into ready order.
    pub fn promote(&mut self, now_ms: i64) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let ((due, id), (prio, p)) = entry.remove_entry();
            let part = &mut self.parts[p as usize];
            part.ready.insert((Reverse(prio), due, id));
            let queue = part.queue.clone();
            let q = self.queue_mut(&queue);
            q.counts.delayed = q.counts.delayed.saturating_sub(1);
            self.epoch += 1;
        }
    }

    /// No later than when the next delayed job `req` could claim becomes due: the first
    /// one in due order that it could claim, or, after `DUE_SCAN` it could not, the due
    /// time of the last of those (an early answer, so the scan stays short).
    pub fn next_due_for(&self, req: &ClaimRequest) -> Option<i64> {
        /// Delayed jobs looked at, at most, per question.
        const DUE_SCAN: usize = 1024;
        self.delayed
            .iter()
            .take(DUE_SCAN)
            .enumerate()
            .find(|(i, (_, (_, p)))| {
                i + 1 == DUE_SCAN || self.serves(&self.parts[*p as usize], req)
            })
            .map(|(_, ((due, _), _))| *due)
    }

    /// Whether `req` may claim from `part` (its queues, types, and the queue not paused).
    fn serves(&self, part: &Partition, req: &ClaimRequest) -> bool {
        (req.queues.is_empty() || req.queues.contains(&part.queue))
            && (req.kinds.is_empty() || req.kinds.contains(&part.kind))
            && !req.exclude_queues.contains(&part.queue)
            && !self.queues.get(&part.queue).is_some_and(|q| q.paused)
    }

    /// The next job `req` may claim, in claim order (priority, due time, id), not removed.
    pub fn peek_claimable(&self, req: &ClaimRequest) -> Option<JobId> {
        let mut best: Option<&ReadyKey> = None;
        for part in &self.parts {
            if !req.queues.is_empty() && !req.queues.contains(&part.queue) {
                continue;
            }
            if !req.kinds.is_empty() && !req.kinds.contains(&part.kind) {
                continue;
            }
            if req.exclude_queues.contains(&part.queue) {
                continue;
            }
            if self.queues.get(&part.queue).is_some_and(|q| q.paused) {
                continue;
            }
            if let Some(first) = part.ready.first() {
                if best.map_or(true, |b| first < b) {
                    best = Some(first);
                }
            }
        }
        best.map(|k| k.2)
    }

    /// Whether anything `req` could claim is pending or running (delayed included). Pending
    /// jobs of a paused queue do not count: they cannot be claimed until it resumes.
    pub fn has_work_for(&self, req: &ClaimRequest) -> bool {
        self.parts.iter().any(|p| {
            let paused = self.queues.get(&p.queue).is_some_and(|q| q.paused);
            (if paused { p.running } else { p.live }) > 0
                && (req.queues.is_empty() || req.queues.contains(&p.queue))
                && (req.kinds.is_empty() || req.kinds.contains(&p.kind))
        })
    }

    /// Running jobs whose lease expired at `now_ms`, oldest first, at most `max`.
    pub fn expired_leases(&self, now_ms: i64, max: usize) -> Vec<JobId> {
        self.leases
            .iter()
            .take_while(|(exp, _)| *exp <= now_ms)
            .take(max)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Ids with `status`, after `after`, in id order, at most `max`.
    pub fn ids_with_status(
        &self,
        status: JobStatus,
        after: Option<JobId>,
        max: usize,
    ) -> Vec<JobId> {
        let set = &self.by_status[status.index()];
        match after {
            Some(a) => set
                .range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                .take(max)
                .copied()
                .collect(),
            None => set.iter().take(max).copied().collect(),
        }
    }

    /// Terminal jobs of `status` that finished before `cutoff_ms`, at most `max`.
    pub fn finished_before(&self, status: JobStatus, cutoff_ms: i64, max: usize) -> Vec<JobId> {
        self.finished[status.index()]
            .iter()
            .take_while(|(at, _)| *at < cutoff_ms)
            .take(max)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Whether `queue` is paused.
    pub fn is_paused(&self, queue: &str) -> bool {
        self.queues.get(queue).is_some_and(|q| q.paused)
    }

    /// Pauses or resumes `queue`. Resuming a queue that has no jobs drops its entry (and
    /// resuming one that has none never creates it).
    pub fn set_paused(&mut self, queue: &str, paused: bool) {
        self.note_paused(queue, self.is_paused(queue));
        if paused {
            self.queue_mut(queue).paused = true;
        } else {
            if let Some(q) = self.queues.get_mut(queue) {
                q.paused = false;
            }
            self.forget_if_idle(queue);
            self.epoch += 1;
        }
    }

    /// The live counters (the writer's view; readers get [`State::durable_stats`]).
    #[cfg(test)]
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for (name, q) in &self.queues {
            // A queue with no jobs and no setting is not listed (as after a reopen, which
            // only knows queues from their jobs and settings).
            if q.counts == Counts::default() && !q.paused {
                continue;
            }
            s.total.add(&q.counts);
            s.queues.insert(
                name.clone(),
                QueueStats {
                    counts: q.counts,
                    paused: q.paused,
                },
            );
        }
        s
    }
}

mod bulk;
#[cfg(test)]
mod tests;
mod undo;

pub(crate) use bulk::{Batch, Indexer};
