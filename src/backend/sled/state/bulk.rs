//! Building the indexes from every job record at once, as open does.
//!
//! Adding the jobs one by one through [`State::apply`] costs a few map lookups by name and
//! an ordered-set insert per index per job. Here the records are first gathered into
//! [`Batch`]es (on several threads: a batch needs no `State`), each holding the index fields
//! of a run of records and the (queue, type) pairs they use, named once. Then
//! [`State::index_batch`] counts them per partition and gathers them into sorted vectors,
//! and [`State::finish_index`] builds each ordered set from its vector in one go. The result is the same state `apply` gives (a test compares
//! them), without the per-job notes for the durable view (open happens outside a group).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use super::{ReadyKey, State};
use crate::backend::records::JobIndex;
use crate::model::job::{JobId, JobStatus};

/// The index fields of one job, its partition by number in its batch (40 bytes: a
/// million jobs are loaded at once).
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// What this version of the job's record is (see [`Batch::keep_latest`]).
    version: Version,
    id: JobId,
    /// Pending: when it is due; running: when its lease expires (if `leased`); terminal:
    /// when it finished.
    at_ms: i64,
    priority: i32,
    part: u32,
    status: JobStatus,
    leased: bool,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 40);

/// A job record version in a batch gathered from the journal in write order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Live,
    /// The record was removed (pruned): earlier versions are gone with it.
    Removed,
    /// The record did not decode: its error is in [`Batch::damaged`].
    Damaged,
}

/// The index fields of a run of job records (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The (queue, type) pairs of the entries, by number.
    parts: Vec<(String, String)>,
    lookup: HashMap<String, HashMap<String, u32>>,
    /// The number of the last pair used (records of one pair come in runs).
    last: Option<u32>,
    entries: Vec<Entry>,
    /// Why each damaged version failed, by job (the latest failure).
    damaged: HashMap<JobId, crate::model::error::Error>,
}

impl Batch {
    /// Adds one job.
    pub fn push(&mut self, ix: &JobIndex<'_>) {
        let part = self.part(ix.queue, ix.kind);
        self.entries.push(Entry {
            version: Version::Live,
            id: ix.id,
            part,
            status: ix.status,
            priority: ix.priority,
            at_ms: match ix.status {
                JobStatus::Pending => ix.due_ms,
                JobStatus::Running => ix.lease_expires_ms.unwrap_or_default(),
                _ => ix.finished_ms,
            },
            leased: ix.lease_expires_ms.is_some(),
        });
    }

    /// Records that job `id`'s record was removed after the versions pushed so far.
    pub fn push_removed(&mut self, id: JobId) {
        self.entries.push(Entry::gone(id, Version::Removed));
    }

    /// Records a version of job `id`'s record that failed to decode with `err`: the
    /// error [`Batch::keep_latest`] returns unless a later version supersedes it.
    pub fn push_damaged(&mut self, id: JobId, err: crate::model::error::Error) {
        self.entries.push(Entry::gone(id, Version::Damaged));
        self.damaged.insert(id, err);
    }

    /// The number of versions held (live, removed or damaged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps each job's latest version, given versions pushed in write order, and drops
    /// removed jobs; leaves the entries in id order. Calling it midway (to bound memory)
    /// and pushing on gives the same result as not: a removal only cancels the versions
    /// before it, which this drops.
    pub fn compact(&mut self) {
        // (Stable: a job's versions stay in write order, the latest last.)
        self.entries.sort_by_key(|e| e.id.0.as_u128());
        let mut keep = 0;
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            let superseded = self.entries.get(i + 1).is_some_and(|n| n.id == e.id);
            if !superseded && e.version != Version::Removed {
                self.entries[keep] = e;
                keep += 1;
            }
        }
        self.entries.truncate(keep);
    }

    /// [`Batch::compact`], once every version is in: a job whose latest version is a
    /// damaged one is that version's error.
    pub fn keep_latest(&mut self) -> crate::model::error::Result<()> {
        self.compact();
        if let Some(e) = self.entries.iter().find(|e| e.version == Version::Damaged) {
            if let Some(err) = self.damaged.remove(&e.id) {
                return Err(err);
            }
        }
        self.damaged = HashMap::new();
        self.entries.shrink_to_fit();
        Ok(())
    }

    /// An empty batch with room for `jobs` jobs.
    pub fn with_capacity(jobs: usize) -> Self {
        Batch {
            entries: Vec::with_capacity(jobs),
            ..Batch::default()
        }
    }

    fn part(&mut self, queue: &str, kind: &str) -> u32 {
        if let Some(last) = self.last {
            let (q, k) = &self.parts[last as usize];
            if q == queue && k == kind {
                return last;
            }
        }
        let ix = match self.lookup.get(queue).and_then(|m| m.get(kind)) {
            Some(ix) => *ix,
            None => {
                let ix = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
                self.parts.push((queue.to_owned(), kind.to_owned()));
                self.lookup
                    .entry(queue.to_owned())
                    .or_default()
                    .insert(kind.to_owned(), ix);
                ix
            }
        };
        self.last = Some(ix);
        ix
    }
}

impl Entry {
    /// A removed or damaged version of job `id` (only its id and version count).
    fn gone(id: JobId, version: Version) -> Entry {
        Entry {
            version,
            id,
            at_ms: 0,
            priority: 0,
            part: 0,
            status: JobStatus::Pending,
            leased: false,
        }
    }
}

/// Per partition: counts by status slot (six statuses, then delayed).
type PartCounts = [u64; 7];

/// What [`State::index_batch`] gathered so far, for [`State::finish_index`].
#[derive(Debug, Default)]
pub(crate) struct Indexer {
    by_status: [Vec<JobId>; 6],
    ready: HashMap<u32, Vec<ReadyKey>>,
    delayed: Vec<((i64, JobId), (i32, u32))>,
    leases: Vec<(i64, JobId)>,
    finished: [Vec<(i64, JobId)>; 6],
    /// Counts per (queue, type) pair (terminal jobs have no partition).
    counts: HashMap<(String, String), PartCounts>,
}

impl State {
    /// Indexes every job of `batches` (given in id order, for the cheapest set builds), as
    /// many `apply(None, Some(job), now_ms)` would, minus the notes for the durable view.
    #[cfg(test)]
    pub fn index_batches(&mut self, batches: Vec<Batch>, now_ms: i64) {
        let mut ix = Indexer::default();
        for b in batches {
            self.index_batch(&mut ix, b, now_ms);
        }
        self.finish_index(ix);
    }

    /// Gathers the jobs of `batch` into `ix` (batches in id order make the cheapest set
    /// builds); partition numbers and their live and running counts are set now, the rest
    /// by [`State::finish_index`].
    pub fn index_batch(&mut self, ix: &mut Indexer, batch: Batch, now_ms: i64) {
        // This batch's pairs: their global partition, made only for unfinished jobs (as
        // `apply` does), and their counts.
        let mut global: Vec<Option<u32>> = vec![None; batch.parts.len()];
        let mut local: Vec<PartCounts> = vec![[0; 7]; batch.parts.len()];
        for e in &batch.entries {
            debug_assert_eq!(
                e.version,
                Version::Live,
                "a batch indexed before keep_latest"
            );
            let s = e.status.index();
            ix.by_status[s].push(e.id);
            self.digest.add(e.id.as_bytes());
            self.last_id = self.last_id.max(e.id.0.as_u128());
            local[e.part as usize][s] += 1;
            if e.status.is_terminal() {
                ix.finished[s].push((e.at_ms, e.id));
                continue;
            }
            let p = *global[e.part as usize].get_or_insert_with(|| {
                let (q, k) = &batch.parts[e.part as usize];
                self.part(q, k)
            });
            let part = &mut self.parts[p as usize];
            part.live += 1;
            match e.status {
                JobStatus::Running => {
                    part.running += 1;
                    if e.leased {
                        ix.leases.push((e.at_ms, e.id));
                    }
                }
                _ if e.at_ms > now_ms => {
                    ix.delayed.push(((e.at_ms, e.id), (e.priority, p)));
                    local[e.part as usize][6] += 1;
                }
                _ => {
                    ix.ready
                        .entry(p)
                        .or_default()
                        .push((Reverse(e.priority), e.at_ms, e.id));
                    self.epoch += 1;
                }
            }
        }
        drop(batch.entries);
        for (pair, c) in batch.parts.into_iter().zip(local) {
            // (A pair only superseded or removed versions used names no queue.)
            if c.iter().all(|n| *n == 0) {
                continue;
            }
            let sum = ix.counts.entry(pair).or_insert([0; 7]);
            sum.iter_mut().zip(c).for_each(|(s, c)| *s += c);
        }
    }

    /// Builds the indexes from what `ix` gathered.
    pub fn finish_index(&mut self, ix: Indexer) {
        for ((queue, _), c) in ix.counts {
            let q = self.queue_mut(&queue);
            for (i, status) in JobStatus::ALL.into_iter().enumerate() {
                *q.counts.slot(status) += c[i];
            }
            q.counts.delayed += c[6];
        }
        for (set, ids) in self.by_status.iter_mut().zip(ix.by_status) {
            extend_sorted(set, ids);
        }
        for (p, keys) in ix.ready {
            extend_sorted(&mut self.parts[p as usize].ready, keys);
        }
        for (set, keys) in self.finished.iter_mut().zip(ix.finished) {
            extend_sorted(set, keys);
        }
        extend_sorted(&mut self.leases, ix.leases);
        if self.delayed.is_empty() {
            self.delayed = ix.delayed.into_iter().collect();
        } else {
            self.delayed.extend(ix.delayed);
        }
    }
}

/// Adds `items` to `set`: an empty set is built from them in one pass (`collect` sorts
/// them first; they mostly come sorted already, which the sort notices), with full nodes.
fn extend_sorted<T: Ord>(set: &mut BTreeSet<T>, items: Vec<T>) {
    if set.is_empty() {
        *set = items.into_iter().collect();
    } else {
        set.extend(items);
    }
}
