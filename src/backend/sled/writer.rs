//! The single writer: applies requests in groups and appends each group's changes to the
//! journal as one entry; a syncer fsyncs the journal (once for every group written since
//! its last fsync), answers the callers (group commit) and then moves the changes into sled;
//! a checkpointer makes sled itself durable once a second so the journal can be trimmed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::backend::codec::{self, keys};
use crate::backend::sled::journal::{self, Change, Journal, Segment};
use crate::backend::sled::ops::{self, Ctx, Op, Reply};
use crate::backend::sled::stage::{Meta, Staged, StoredEvent};
use crate::backend::sled::Shared;
use crate::model::config::Durability;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;

/// Most events in one log block (~130 bytes each). sled leaves hold up to 17 items and a
/// leaf over a quarter segment becomes a blob file: small blocks keep leaves inline.
const EVENTS_PER_BLOCK: usize = 24;

/// Most requests applied in one group.
const MAX_GROUP: usize = 1024;

/// A request and where to send its answer.
pub(crate) enum Command {
    Apply(Op, Sender<Result<Reply>>),
    /// Make everything applied so far durable, then answer.
    Sync(Sender<Result<Reply>>),
    /// Make everything durable and stop.
    Shutdown(Sender<Result<Reply>>),
}

type Answer = (Sender<Result<Reply>>, Result<Reply>);

/// Longest the syncer waits for the writer's next group before an fsync (about a third of
/// an fsync here).
const GATHER: Duration = Duration::from_micros(100);

/// Most bytes of changes waiting for sled (in the overlay) before the writer waits.
const OVERLAY_LIMIT: usize = 64 * 1024 * 1024;

/// How long the applier lets durable groups collect before writing them to sled.
const APPLY_LAG: Duration = Duration::from_millis(10);

/// Most groups the applier writes at once.
const APPLY_MAX_GROUPS: usize = 4096;

/// How often the checkpointer makes sled durable and trims the journal.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// What the writer hands the syncer after writing a group.
struct Written {
    /// The batch was not empty (there is something to fsync).
    wrote: bool,
    /// Journal segments the group was appended to (to fsync), and whether one is new.
    segments: Vec<Arc<Segment>>,
    new_segment: bool,
    /// The group's journal lsn and changes, for sled once durable.
    changes: Option<(u64, Vec<Change>)>,
    /// Events of the group, published once durable.
    events: Vec<EventRecord>,
    /// Answers to send once durable (empty when the caller was answered already:
    /// `Buffered` without an explicit sync).
    answers: Vec<Answer>,
    /// The answers wait for an fsync (Immediate, or an explicit sync or shutdown).
    sync: bool,
}

/// The writer: applies groups and appends each to the journal; the syncer makes them
/// durable and answers. While the syncer waits on the disk the writer already applies the
/// next group, and one fsync covers every group written before it (group commit across
/// groups as well as within one). When nothing else waits, the writer commits a group
/// itself. Also starts the applier and the checkpointer, and stops them all in order.
pub(crate) fn run(shared: Arc<Shared>, mut journal: Journal, rx: Receiver<Command>) {
    let _guard = PoisonOnPanic::new(&shared, "writer");
    let (sync_tx, sync_rx) = crossbeam_channel::bounded::<Written>(64);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    // The applier moves durable groups into sled, so the next fsync need not wait for it.
    let (apply_tx, apply_rx) = crossbeam_channel::bounded::<Vec<(u64, Vec<Change>)>>(64);
    let s1 = shared.clone();
    let applier = std::thread::Builder::new()
        .name("jobspool-applier".into())
        .spawn(move || run_applier(&s1, &apply_rx));
    let s2 = shared.clone();
    let a2 = apply_tx.clone();
    let syncer = std::thread::Builder::new()
        .name("jobspool-syncer".into())
        .spawn(move || run_syncer(&s2, &sync_rx, &a2));
    let s3 = shared.clone();
    let checkpointer = std::thread::Builder::new()
        .name("jobspool-checkpoint".into())
        .spawn(move || run_checkpointer(&s3, &stop_rx));
    let (Ok(applier), Ok(syncer), Ok(checkpointer)) = (applier, syncer, checkpointer) else {
        shared.poison(&Error::Storage {
            context: "cannot start the applier, syncer or checkpoint thread".into(),
            source: None,
        });
        return;
    };
    let mut shutdown_reply = None;
    loop {
        if rx.is_empty() {
            shared.writer_busy.store(false, Ordering::Release);
        }
        let Ok(first) = rx.recv() else { break };
        shared.writer_busy.store(true, Ordering::Release);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let (written, shutdown) = apply_group(&shared, &mut journal, group);
        if let Some(reply) = shutdown {
            shutdown_reply = Some(reply);
        }
        if written.sync && shared.syncer_pending.load(Ordering::Acquire) == 0 && rx.is_empty() {
            // Nobody else is waiting and the syncer has nothing: fsync here, one thread
            // hop less for a lone caller.
            if !commit(&shared, written, &apply_tx) {
                break;
            }
        } else {
            shared.syncer_pending.fetch_add(1, Ordering::AcqRel);
            if sync_tx.send(written).is_err() {
                break;
            }
        }
        if shutdown_reply.is_some() {
            break;
        }
    }
    drop(sync_tx);
    let _ = syncer.join();
    drop(apply_tx);
    let _ = applier.join();
    drop(stop_tx);
    let _ = checkpointer.join();
    // A clean stop: sled holds everything, the journal is not needed to reopen.
    let result = match shared.poisoned_error() {
        Some(e) => Err(e),
        None => checkpoint(&shared).and_then(|()| journal::clear(&shared.path)),
    };
    if let Err(e) = &result {
        shared.poison(e);
    }
    if let Some(reply) = shutdown_reply {
        let _ = reply.send(result.map(|()| Reply::Unit));
    }
}

/// The checkpointer: once a second, makes what sled holds durable and trims the journal.
fn run_checkpointer(shared: &Shared, stop: &Receiver<()>) {
    let _guard = PoisonOnPanic::new(shared, "checkpoint");
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if shared.poisoned_error().is_some() {
            return;
        }
        if let Err(e) = checkpoint(shared) {
            shared.poison(&e);
            return;
        }
    }
}

/// Makes sled durable up to the last group applied to it, then deletes the journal segments
/// that hold nothing newer.
pub(crate) fn checkpoint(shared: &Shared) -> Result<()> {
    let _one_at_a_time = shared.checkpoint_lock.lock();
    // Read before the flush: sled's flush covers every batch applied before it starts.
    let lsn = shared.applied_lsn.load(Ordering::Acquire);
    if lsn <= shared.durable_lsn.load(Ordering::Acquire) {
        return Ok(());
    }
    sync_sled(
        &shared.db,
        &shared.path,
        &shared.data_file,
        &shared.synced_blobs,
    )?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    shared.durable_lsn.store(lsn, Ordering::Release);
    journal::truncate(&shared.path, lsn)
}

/// The syncer: fsyncs what the writer wrote, then publishes events and answers callers.
fn run_syncer(shared: &Shared, rx: &Receiver<Written>, apply_tx: &Sender<Vec<(u64, Vec<Change>)>>) {
    let _guard = PoisonOnPanic::new(shared, "syncer");
    let buffered = match shared.cfg.durability {
        Durability::Buffered { max_delay } => Some(max_delay),
        Durability::Immediate => None,
    };
    let mut dirty_since: Option<Instant> = None;
    let mut events: Vec<EventRecord> = Vec::new();
    let mut answers: Vec<Answer> = Vec::new();
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut new_segment = false;
    let mut groups: Vec<(u64, Vec<Change>)> = Vec::new();
    // Written groups received and not yet answered (see `Shared::syncer_pending`).
    let mut held = 0;
    // Callers the last fsync answered: most come back for the next one.
    let mut last_answered = 0;
    loop {
        let first = match (buffered, dirty_since) {
            (Some(max_delay), Some(since)) => {
                match rx.recv_timeout(max_delay.saturating_sub(since.elapsed())) {
                    Ok(w) => Some(w),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match rx.recv() {
                Ok(w) => Some(w),
                Err(_) => break,
            },
        };
        let mut want_sync = first.is_none(); // the Buffered deadline passed
        let mut batch: Vec<Written> = first.into_iter().collect();
        while let Ok(w) = rx.try_recv() {
            batch.push(w);
        }
        // Gather: while the writer is still applying requests that arrived meanwhile, or
        // fewer callers are in hand than the last fsync answered (they are on their way
        // back), wait up to GATHER for them, so this fsync covers them too instead of the
        // next one. A lone caller never waits (one answered, one in hand).
        if batch.iter().any(|w| w.sync) {
            let until = Instant::now() + GATHER;
            let mut in_hand: usize = batch.iter().map(|w| w.answers.len()).sum();
            while shared.writer_busy.load(Ordering::Acquire) || in_hand < last_answered {
                match rx.recv_deadline(until) {
                    Ok(w) => {
                        in_hand += w.answers.len();
                        batch.push(w);
                    }
                    Err(_) => break,
                }
            }
        }
        for w in batch {
            held += 1;
            if w.wrote {
                dirty_since = dirty_since.or(Some(Instant::now()));
            }
            want_sync |= w.sync;
            new_segment |= w.new_segment;
            for seg in w.segments {
                if !segments.iter().any(|s| Arc::ptr_eq(s, &seg)) {
                    segments.push(seg);
                }
            }
            events.extend(w.events);
            answers.extend(w.answers);
            groups.extend(w.changes);
        }
        if !want_sync {
            continue;
        }
        let result = if dirty_since.is_some() {
            sync_journal(shared, &segments, new_segment)
        } else {
            Ok(())
        };
        dirty_since = None;
        // Keep the current segment: the next group most likely goes there too.
        segments.drain(..segments.len().saturating_sub(1));
        new_segment = false;
        if let Err(e) = &result {
            shared.poison(e);
        } else {
            // Subscribers hear of a change before its caller does, never before it is durable.
            publish(shared, std::mem::take(&mut events));
        }
        last_answered = answers.len();
        for (reply, answer) in answers.drain(..) {
            let answer = match &result {
                Ok(()) => answer,
                Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
            };
            let _ = reply.send(answer);
        }
        if result.is_ok() {
            // Durable in the journal: now sled may have it (and the overlay forget it).
            if !groups.is_empty() && apply_tx.send(std::mem::take(&mut groups)).is_err() {
                break; // the applier failed and poisoned the handle
            }
        }
        shared.syncer_pending.fetch_sub(held, Ordering::AcqRel);
        held = 0;
    }
    if dirty_since.is_some() && sync_journal(shared, &segments, new_segment).is_ok() {
        publish(shared, events);
        let _ = apply_tx.send(groups);
    }
}

/// The writer's own commit of one group, when the syncer has nothing to do: fsync, publish,
/// answer, hand the changes to the applier. Returns false if the writer should stop.
fn commit(shared: &Shared, w: Written, apply_tx: &Sender<Vec<(u64, Vec<Change>)>>) -> bool {
    let result = if w.wrote {
        sync_journal(shared, &w.segments, w.new_segment)
    } else {
        Ok(())
    };
    if let Err(e) = &result {
        shared.poison(e);
    } else {
        publish(shared, w.events);
    }
    for (reply, answer) in w.answers {
        let answer = match &result {
            Ok(()) => answer,
            Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
        };
        let _ = reply.send(answer);
    }
    match (result, w.changes) {
        (Ok(()), Some(group)) => apply_tx.send(vec![group]).is_ok(),
        (Ok(()), None) => true,
        (Err(_), _) => false,
    }
}

/// The applier: moves durable groups into sled, in order, then out of the overlay.
///
/// It lets durable groups collect for up to `APPLY_LAG` and writes only the last value of
/// each key: a job claimed and then completed meanwhile reaches sled once. Safe because
/// sled needs no atomicity of its own: every group is durable in the journal first, and
/// the replay on open rewrites every key the journal holds since the last checkpoint.
fn run_applier(shared: &Shared, rx: &Receiver<Vec<(u64, Vec<Change>)>>) {
    let _guard = PoisonOnPanic::new(shared, "applier");
    let mut groups: Vec<(u64, Vec<Change>)> = Vec::new();
    while let Ok(first) = rx.recv() {
        groups.extend(first);
        let until = Instant::now() + APPLY_LAG;
        let mut open = true;
        while groups.len() < APPLY_MAX_GROUPS {
            match rx.recv_deadline(until) {
                Ok(more) => groups.extend(more),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if let Err(e) = apply_coalesced(shared, &mut groups) {
            shared.poison(&e);
            return;
        }
        if !open {
            return;
        }
    }
}

/// Writes the last value of every key `groups` change into sled (in key order), then drops
/// the groups from the overlay.
fn apply_coalesced(shared: &Shared, groups: &mut Vec<(u64, Vec<Change>)>) -> Result<()> {
    let mut last: HashMap<&[u8], &Option<sled::IVec>> = HashMap::new();
    for (_, changes) in groups.iter() {
        for (k, v) in changes {
            last.insert(k, v);
        }
    }
    let mut last: Vec<(&[u8], &Option<sled::IVec>)> = last.into_iter().collect();
    last.sort_unstable_by_key(|(k, _)| *k);
    for (k, v) in last {
        match v {
            Some(v) => shared.tree.insert(k, v.clone()),
            None => shared.tree.remove(k),
        }
        .map_err(|e| Error::storage("writing to sled", e))?;
    }
    for (lsn, changes) in groups.drain(..) {
        shared.overlay.applied(lsn, &changes);
        shared.applied_lsn.store(lsn, Ordering::Release);
        shared.metrics.unapplied.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

fn sync_journal(shared: &Shared, segments: &[Arc<Segment>], new_segment: bool) -> Result<()> {
    journal::sync(&shared.path, segments, new_segment)?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Applies and writes one group. Returns what the syncer needs, and whether to stop.
fn apply_group(
    shared: &Shared,
    journal: &mut Journal,
    group: Vec<Command>,
) -> (Written, Option<Sender<Result<Reply>>>) {
    let mut staged = Staged::default();
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut sync = matches!(shared.cfg.durability, Durability::Immediate);
    let mut shutdown = None;
    let mut meta = None;
    let epoch_before;
    {
        let mut st = shared.state.lock();
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
                            tree: &shared.tree,
                            overlay: &shared.overlay,
                            st: &mut st,
                            staged: &mut staged,
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
    }
    let wrote = !staged.is_empty();
    let appended = match write(shared, journal, &mut staged, meta) {
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
        shared.work.notify_all();
    }
    let events = std::mem::take(&mut staged.events);
    if !sync {
        // Buffered: answer now; the syncer makes it durable within max_delay.
        for (reply, answer) in answers.drain(..) {
            let _ = reply.send(answer);
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

/// Space kept free on the database's filesystem. sled 0.34 does not surface an out-of-space
/// write from its IO threads: its flush then waits forever. So the writer refuses a group
/// that would leave less than this free, failing cleanly with `STORAGE` instead.
const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

fn check_space(shared: &Shared, staged: &Staged) -> Result<()> {
    let Ok(vfs) = nix::sys::statvfs::statvfs(shared.path.as_path()) else {
        return Ok(()); // no answer: let sled try
    };
    let free = vfs.blocks_available().saturating_mul(vfs.fragment_size());
    let raw: usize = staged.raw.values().flatten().map(|v| v.len() + 64).sum();
    // Twice: once in the journal, once in sled.
    let need = 2 * (raw + staged.jobs.len() * 1024 + staged.events.len() * 256) as u64;
    if free < need.saturating_add(RESERVE_BYTES) {
        return Err(Error::Storage {
            context: format!(
                "disk full: {free} bytes free at {} (jobspool keeps {RESERVE_BYTES} free); free \
                 space, then reopen the database",
                shared.path.display()
            ),
            source: None,
        });
    }
    Ok(())
}

/// A written group: what the journal append touched, the entry's lsn, its changes.
type WrittenGroup = (journal::Appended, u64, Vec<Change>);

/// Writes one group as a journal entry (fsync'd later by the syncer), with the counters in
/// `meta` when they moved, and makes its changes visible to reads through the overlay until
/// they reach sled.
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
    // Backpressure: while sled lags too far behind, wait for the applier.
    shared
        .overlay
        .wait_below(OVERLAY_LIMIT, || shared.poisoned_error().is_some());
    let mut changes: Vec<Change> = Vec::with_capacity(
        staged.jobs.len() + staged.raw.len() + staged.events.len() / EVENTS_PER_BLOCK + 2,
    );
    for (id, job) in staged.jobs.drain() {
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
    shared.overlay.insert(lsn, &changes);
    shared.metrics.groups.fetch_add(1, Ordering::Relaxed);
    shared.metrics.unapplied.fetch_add(1, Ordering::Relaxed);
    Ok(Some((appended, lsn, changes)))
}

/// Applies one group's changes to sled, key by key. Not atomic in sled, and need not be: the
/// group is durable in the journal first, and the replay on open completes a torn one.
/// (sled's `apply_batch` would be atomic, but it writes and `sync_file_range`s sled's IO
/// buffer twice per call.)
pub(crate) fn apply_changes(tree: &sled::Tree, changes: &[Change]) -> Result<()> {
    for (k, v) in changes {
        match v {
            Some(v) => tree.insert(k, v.clone()),
            None => tree.remove(k),
        }
        .map_err(|e| Error::storage("writing to sled", e))?;
    }
    Ok(())
}

/// Makes sled's state durable: sled's `flush` uses `sync_file_range`, which is not durable,
/// so follow it with `fdatasync` of the data file and of new blob files (SPEC.md section 1).
pub(crate) fn sync_sled(
    db: &sled::Db,
    path: &std::path::Path,
    data_file: &File,
    synced_blobs: &parking_lot::Mutex<HashSet<std::ffi::OsString>>,
) -> Result<()> {
    db.flush().map_err(|e| Error::storage("flushing sled", e))?;
    sync_blobs(path, synced_blobs)?;
    data_file
        .sync_data()
        .map_err(|e| Error::storage("fsync of the data file", e))
}

/// sled writes pages too large for a segment (a node holding several large payloads can be)
/// to files under `blobs/`, which its flush does not fsync. At every sync, fsync each blob
/// file not synced before, and then the directory. Costs one directory read when there are
/// none.
fn sync_blobs(
    path: &std::path::Path,
    synced_blobs: &parking_lot::Mutex<HashSet<std::ffi::OsString>>,
) -> Result<()> {
    let dir = path.join("blobs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::storage("listing blobs", e)),
    };
    let mut synced = synced_blobs.lock();
    let mut seen = HashSet::new();
    let mut new = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage("listing blobs", e))?;
        let name = entry.file_name();
        seen.insert(name.clone());
        if synced.contains(&name) {
            continue;
        }
        match File::open(entry.path()) {
            Ok(f) => f
                .sync_all()
                .map_err(|e| Error::storage("fsync of a blob", e))?,
            // sled removes blobs of overwritten values; a vanished one needs no fsync.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::storage("opening a blob", e)),
        }
        synced.insert(name);
        new += 1;
    }
    // Forget blobs sled has removed, so the set stays as small as the directory.
    synced.retain(|n| seen.contains(n));
    if new == 0 {
        return Ok(());
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::storage("fsync of the blobs directory", e))
}

/// Sends durable events to live subscribers. A subscriber that falls `SUBSCRIBER_BUFFER`
/// events behind is dropped (its channel disconnects); it can resume from the log by seq.
fn publish(shared: &Shared, events: Vec<EventRecord>) {
    if events.is_empty() {
        return;
    }
    let mut subs = shared.subscribers.lock();
    if subs.is_empty() {
        return;
    }
    subs.retain(|tx| {
        for ev in &events {
            match tx.try_send(ev.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return false,
            }
        }
        true
    });
}

/// Capacity of a live subscription channel.
pub(crate) const SUBSCRIBER_BUFFER: usize = 65_536;

/// Marks the spool poisoned if the writer thread unwinds.
struct PoisonOnPanic<'a>(&'a Shared, &'static str);

impl<'a> PoisonOnPanic<'a> {
    fn new(shared: &'a Shared, thread: &'static str) -> Self {
        PoisonOnPanic(shared, thread)
    }
}

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison(&Error::Storage {
                context: format!("the {} thread panicked", self.1),
                source: None,
            });
        }
        self.0.work.notify_all();
    }
}
