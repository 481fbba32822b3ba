//! The writer thread's work on one group: apply its ops to a fresh staging area, then
//! append the staged changes to the journal as one entry.

use std::sync::atomic::Ordering;

use super::space::check_space;
use super::{Answer, AnswerTx, Command, Written};
use crate::backend::codec::{self, keys};
use crate::backend::sled::journal::{self, Change, Journal};
use crate::backend::sled::ops::{self, Ctx, Op, Reply};
use crate::backend::sled::stage::{Meta, Staged, StoredEvent};
use crate::backend::sled::Shared;
use crate::model::config::Durability;
use crate::model::error::{Error, Result};
use crate::model::job::{Job, JobId};

/// Most events in one log block (~130 bytes each). sled leaves hold up to 17 items and a
/// leaf over a quarter segment becomes a blob file: small blocks keep leaves inline.
const EVENTS_PER_BLOCK: usize = 24;

/// Most bytes of changes waiting for sled (journaled, not yet applied) before an op that
/// adds in bulk waits in its caller's thread (see [`admit`]). The writer itself waits only
/// at twice this: heartbeats and the other small writes go on while sled catches up.
const OVERLAY_LIMIT: usize = 64 * 1024 * 1024;

/// Backpressure on producers: while sled lags more than `OVERLAY_LIMIT` behind the journal,
/// an op that adds in bulk (an enqueue, a redrive, a prune, schedules firing) waits here,
/// in its caller's thread, before it reaches the writer. The writer never stops for the
/// applier on its behalf, so a heartbeat queued behind a batch is not held up by it.
pub(crate) fn admit(shared: &Shared, op: &Op) {
    if matches!(
        op,
        Op::Enqueue(_) | Op::Redrive(_) | Op::Prune(_) | Op::FireDueSchedules
    ) {
        shared
            .overlay
            .wait_below(shared.overlay.limit(OVERLAY_LIMIT), || {
                shared.poisoned_error().is_some()
            });
    }
}

/// Applies and writes one group, staged in `staged` (emptied first; the writer passes the
/// same one for every group, so its maps keep their capacity). Returns what the syncer
/// needs, and whether to stop.
pub(super) fn apply_group(
    shared: &Shared,
    journal: &mut Journal,
    staged: &mut Staged,
    group: Vec<Command>,
) -> (Written, Option<AnswerTx<Result<Reply>>>) {
    staged.clear();
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut sync = matches!(shared.cfg.durability, Durability::Immediate);
    let mut shutdown = None;
    let mut meta = None;
    let epoch_before;
    {
        let mut st = shared.state.lock();
        st.unsynced.begin(shared.overlay.synced());
        epoch_before = st.epoch;
        let seq_before = st.next_seq;
        let now = shared.cfg.clock.now_ms();
        for cmd in group {
            match cmd {
                Command::Apply(op, reply) => {
                    let result = if let Some(e) = shared.poisoned_error() {
                        Err(e)
                    } else {
                        let mut ctx = Ctx {
                            tree: &shared.base,
                            overlay: &shared.overlay,
                            st: &mut st,
                            staged: &mut *staged,
                            cfg: &shared.cfg,
                            now,
                        };
                        ops::apply(&mut ctx, op)
                    };
                    answers.push((reply, result));
                }
                Command::Sync(reply) => {
                    sync = true;
                    answers.push((reply, Ok(Reply::Unit)));
                }
                Command::Compact(keys, seg, last) => {
                    if shared.poisoned_error().is_none() {
                        compact(shared, staged, &keys, seg);
                    }
                    if last {
                        shared.log.compacting.store(false, Ordering::Release);
                    }
                }
                Command::Shutdown(reply) => {
                    // Answered by `run` once the final checkpoint is done.
                    sync = true;
                    shutdown = Some(reply);
                }
            }
        }
        shared
            .metrics
            .ops
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
        if st.next_seq != seq_before {
            meta = Some(Meta {
                next_seq: st.next_seq,
            });
        }
        // The group becomes the next journal entry (if it wrote anything): until that is
        // durable, readers see the counters without its changes.
        st.unsynced.end(journal.next_lsn());
    }
    let wrote = !staged.is_empty();
    let appended = match write(shared, journal, staged, meta) {
        Ok(a) => a,
        Err(e) => {
            shared.poison(&e);
            for (_, answer) in &mut answers {
                *answer = Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown));
            }
            None
        }
    };
    let (segments, new_segment, changes) = match appended {
        Some((a, lsn, changes)) => (a.segments, a.new_segment, Some((lsn, changes))),
        None => (Vec::new(), false, None),
    };
    if shared.state.lock().epoch != epoch_before {
        shared.observer.work_available();
    }
    // The events go to the syncer; the next group's vector starts at this one's size (a
    // pool's claim of 2048 jobs appends 2048 events: growing from empty copied them over
    // and over).
    let capacity = staged.events.len();
    let events = std::mem::replace(&mut staged.events, Vec::with_capacity(capacity));
    if !sync {
        // Buffered: answer now; the syncer makes it durable within max_delay.
        for (reply, answer) in answers.drain(..) {
            reply.send(answer);
        }
    }
    (
        Written {
            wrote,
            segments,
            new_segment,
            changes,
            events,
            answers,
            sync,
        },
        shutdown,
    )
}

/// Stages a copy of each of `keys` whose value is still in segment `seg` and has no newer
/// version pending (in the overlay or this group): the same value, appended again.
fn compact(shared: &Shared, staged: &mut Staged, keys: &[sled::IVec], seg: u64) {
    // A compaction that cannot fit is skipped (the segments stay), never a failed write:
    // it is what frees the space.
    let bytes: u64 = keys
        .iter()
        .filter_map(|k| shared.log.loc(k))
        .map(|l| u64::from(l.len) + 64)
        .sum();
    if !super::space::room_for(shared, 2 * bytes) {
        return;
    }
    let already: std::collections::HashSet<sled::IVec> =
        staged.compact.iter().map(|(k, _)| k.clone()).collect();
    for key in keys {
        let changed_in_group = keys::id_of(key).is_some_and(|id| staged.jobs.contains_key(&id))
            || staged.raw.contains_key(key.as_ref())
            || already.contains(key);
        if changed_in_group || shared.overlay.pending(key) {
            continue;
        }
        match shared.log.loc(key) {
            Some(loc) if loc.seg == seg => match shared.log.read(key, loc) {
                Ok(v) => staged.compact.push((key.clone(), v)),
                // Damage: reported (the handle stops; reopening checks the journal), never
                // left to pin the oldest segment and every one after it.
                Err(e) => {
                    shared.poison(&e);
                    return;
                }
            },
            _ => {}
        }
    }
}

/// A written group: what the journal append touched, the entry's lsn, its changes.
type WrittenGroup = (journal::Appended, u64, Vec<Change>);

/// Writes one group as a journal entry (fsync'd later by the syncer), with the counters in
/// `meta` when they moved, and makes its changes visible through the overlay until they
/// reach sled (to the writer's own reads at once, to readers once the entry is durable).
fn write(
    shared: &Shared,
    journal: &mut Journal,
    staged: &mut Staged,
    meta: Option<Meta>,
) -> Result<Option<WrittenGroup>> {
    if staged.is_empty() {
        return Ok(None);
    }
    if let Some(meta) = meta {
        staged.put_raw(
            keys::META_STATE.to_vec(),
            Some(codec::encode(&meta)?.into()),
        );
    }
    check_space(shared, staged)?;
    // The last resort when small writes alone outrun sled (bulk ones wait in `admit`):
    // while sled lags twice the producers' limit behind, wait for the applier.
    shared
        .overlay
        .wait_below(2 * shared.overlay.limit(OVERLAY_LIMIT), || {
            shared.poisoned_error().is_some()
        });
    let mut changes: Vec<Change> = Vec::with_capacity(
        staged.compact.len()
            + staged.jobs.len()
            + staged.raw.len()
            + staged.events.len() / EVENTS_PER_BLOCK
            + 2,
    );
    for (k, v) in staged.compact.drain(..) {
        changes.push((k, Some(v)));
    }
    // In id order (ids grow with time): the journal then holds job records nearly sorted,
    // which open's index builds take in one pass (see `open/jobs.rs`).
    let mut jobs: Vec<(JobId, Option<Job>)> = staged.jobs.drain().collect();
    jobs.sort_unstable_by_key(|(id, _)| id.0.as_u128());
    for (id, job) in jobs {
        let key = sled::IVec::from(&keys::job(&id)[..]);
        let value = match job {
            Some(j) => Some(codec::encode(&j)?.into()),
            None => None,
        };
        changes.push((key, value));
    }
    for (k, v) in staged.raw.drain() {
        changes.push((k.into(), v));
    }
    // The group's events are contiguous: log blocks of at most EVENTS_PER_BLOCK, each keyed
    // by its first sequence number (small enough to stay inline in a sled segment).
    for (recs, times) in staged
        .events
        .chunks(EVENTS_PER_BLOCK)
        .zip(staged.event_times.chunks(EVENTS_PER_BLOCK))
    {
        let block: Vec<StoredEvent> = recs
            .iter()
            .zip(times)
            .map(|(rec, at_ms)| StoredEvent {
                at_ms: *at_ms,
                event: rec.event.clone(),
            })
            .collect();
        changes.push((
            sled::IVec::from(&keys::event(recs[0].seq)[..]),
            Some(codec::encode(&block)?.into()),
        ));
    }
    let lsn = journal.next_lsn();
    let appended = journal.append(&changes)?;
    shared
        .metrics
        .journal_bytes
        .fetch_add(appended.bytes, Ordering::Relaxed);
    shared.overlay.insert(lsn, &changes);
    shared.metrics.groups.fetch_add(1, Ordering::Relaxed);
    shared.metrics.unapplied.fetch_add(1, Ordering::Relaxed);
    Ok(Some((appended, lsn, changes)))
}
