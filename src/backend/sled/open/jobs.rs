//! Indexing the job records at open: while the journal is checked and the directory built
//! from it ([`scan_jobs`], on a second thread, from the same bytes), or afterwards through
//! the directory ([`load_jobs`], when the records were just moved there).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::journal;
use super::super::logstore::{self, LogStore};
use super::super::state::{Batch, Indexer, State};
use crate::backend::codec::keys;
use crate::backend::records::JobIndex;
use crate::model::error::{Error, Result};
use crate::model::job::JobId;

/// The index fields of every live job record in the journal's checked segments, in write
/// order (each job's latest version counts; a removal cancels the ones before it), for
/// [`State::index_batch`]. Run beside the directory's build, on the segments the plan
/// reads and checks (see [`journal::scan::plan_each`]): together they take the two cores a
/// million records need to open within a second. A record that does not decode is
/// `CORRUPTION` when it is its job's latest version.
pub(in crate::backend::sled) fn scan_jobs(
    segments: impl IntoIterator<Item = journal::scan::Checked>,
) -> Result<Batch> {
    scan_jobs_compacting_at(segments, COMPACT_AT)
}

/// A new [`State`] indexing what [`scan_jobs`] gathers (on the same thread, while the
/// directory's build goes on).
pub(in crate::backend::sled) fn index_jobs(
    segments: impl IntoIterator<Item = journal::scan::Checked>,
    index: super::Index,
) -> Result<State> {
    let batch = scan_jobs(segments)?;
    let mut st = State::new(index.seed);
    let mut ix = Indexer::default();
    st.index_batch(&mut ix, batch, index.now);
    st.finish_index(ix);
    Ok(st)
}

/// [`scan_jobs`], dropping superseded versions once `compact_at` are gathered, and again
/// whenever the batch doubles since the last time: it holds at most about twice the
/// larger of `compact_at` and the number of live jobs (40 bytes each), and what it
/// returns is shrunk to the live jobs.
pub(in crate::backend::sled) fn scan_jobs_compacting_at(
    segments: impl IntoIterator<Item = journal::scan::Checked>,
    compact_at: usize,
) -> Result<Batch> {
    let mut batch = Batch::default();
    let mut bound = compact_at;
    for seg in segments {
        for (_, body) in seg.bodies() {
            for op in journal::raw_ops(body) {
                let Some((keys::JOB, id)) = logstore::fixed(op.key) else {
                    continue;
                };
                let id = JobId(uuid::Uuid::from_u128(id));
                match op.value {
                    None => batch.push_removed(id),
                    Some((_, v)) => match decode_record(id, op.key, v) {
                        Ok(ix) => batch.push(&ix),
                        Err(e) => batch.push_damaged(id, e),
                    },
                }
            }
            if batch.len() >= bound {
                batch.compact();
                bound = (2 * batch.len()).max(compact_at);
            }
        }
    }
    batch.keep_latest()?;
    Ok(batch)
}

/// The index fields of job `id`'s record `bytes` (stored under `key`): a record that does
/// not decode, or that is another job's, is `CORRUPTION`.
fn decode_record<'a>(id: JobId, key: &[u8], bytes: &'a [u8]) -> Result<JobIndex<'a>> {
    let ix = JobIndex::decode("jobs", key, bytes)?;
    if ix.id != id {
        return Err(Error::Corruption {
            tree: "jobs",
            key: crate::backend::codec::show_key(key),
            detail: format!(
                "the record under this key is job {}'s; restore from a backup",
                ix.id
            ),
        });
    }
    Ok(ix)
}

/// Versions gathered before [`scan_jobs`] first drops superseded ones.
const COMPACT_AT: usize = 1 << 20;

/// Indexes every job record, reading each segment that holds any once, whole. Segments
/// are read and their records decoded on two threads (this one and a second) taking them
/// in turn; this thread also gathers the batches into the indexes. A damaged record stops
/// the reading; the error of the first segment (in order) holding one is returned.
pub(in crate::backend::sled) fn load_jobs(log: &LogStore, st: &mut State, now: i64) -> Result<()> {
    let mut locs = log.job_locs();
    // (Ids are time-ordered and so mostly written in order: a stable sort finds the runs.)
    locs.sort_by_key(|(_, l)| (l.seg, l.off));
    let mut runs = Vec::new();
    let mut i = 0;
    while i < locs.len() {
        let seg = locs[i].1.seg;
        let n = locs[i..].partition_point(|(_, l)| l.seg == seg);
        runs.push(i..i + n);
        i += n;
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(usize::MAX);
    let take = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        (i < runs.len() && i < failed.load(Ordering::Relaxed)).then_some(i)
    };
    let read = |i: usize| -> Result<Batch> {
        let run = &locs[runs[i].clone()];
        let bytes = log.read_segment(run[0].1.seg)?;
        let mut batch = Batch::with_capacity(run.len());
        for (k, loc) in run {
            let key = logstore::unfixed(k);
            let id = JobId(uuid::Uuid::from_u128(k.1));
            batch.push(&decode_record(id, &key, log.slice(&bytes, &key, *loc)?)?);
        }
        Ok(batch)
    };
    let read = |i: usize| {
        let r = read(i);
        if r.is_err() {
            failed.fetch_min(i, Ordering::Relaxed);
        }
        (i, r)
    };
    let mut ix = Indexer::default();
    let mut first_err: Option<(usize, Error)> = None;
    let mut gather = |(i, r): (usize, Result<Batch>)| match r {
        Ok(batch) => st.index_batch(&mut ix, batch, now),
        Err(e) => {
            if first_err.as_ref().map_or(true, |(j, _)| i < *j) {
                first_err = Some((i, e));
            }
        }
    };
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let other = scope.spawn(|| {
            while let Some(i) = take() {
                if tx.send(read(i)).is_err() {
                    break;
                }
            }
            drop(tx);
        });
        while let Some(i) = take() {
            gather(read(i));
            rx.try_iter().for_each(&mut gather);
        }
        rx.iter().for_each(&mut gather);
        if let Err(panic) = other.join() {
            std::panic::resume_unwind(panic);
        }
    });
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    st.finish_index(ix);
    Ok(())
}
