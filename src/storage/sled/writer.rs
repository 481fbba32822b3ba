//! The single writer: applies requests in groups, one storage batch and (under `Immediate`)
//! one fsync per group, then answers every caller of the group (group commit).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::{Deserialize, Serialize};

use crate::codec::{self, keys};
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::event::{Event, EventRecord};
use crate::job::{Job, JobId};
use crate::storage::sled::ops::{self, Ctx, Op, Reply};
use crate::storage::sled::Shared;

/// Most events in one log block (~130 bytes each). sled leaves hold up to 17 items and a
/// leaf over a quarter segment becomes a blob file: small blocks keep leaves inline.
const EVENTS_PER_BLOCK: usize = 24;

/// Most requests applied in one group.
const MAX_GROUP: usize = 1024;

/// An event as stored in the log (in blocks, one per writer group): the time it was
/// appended, for retention.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    pub at_ms: i64,
    pub event: Event,
}

/// A log block: the events of one writer group, from the seq in its key.
pub(crate) type StoredEventBlock = Vec<StoredEvent>;

/// Persisted counters: the next event sequence number (never reused, even after pruning).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub next_seq: u64,
}

/// One group's changes, not yet written.
#[derive(Default)]
pub(crate) struct Staged {
    /// Job records (payload excluded); `None` deletes.
    pub jobs: HashMap<JobId, Option<Job>>,
    /// Every other key; `None` deletes.
    pub raw: HashMap<Vec<u8>, Option<sled::IVec>>,
    pub events: Vec<EventRecord>,
    event_times: Vec<i64>,
}

impl Staged {
    pub fn put_raw(&mut self, key: Vec<u8>, value: Option<sled::IVec>) {
        self.raw.insert(key, value);
    }

    pub fn push_event(&mut self, seq: u64, at_ms: i64, event: Event) {
        self.events.push(EventRecord { seq, event });
        self.event_times.push(at_ms);
    }

    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.raw.is_empty() && self.events.is_empty()
    }
}

/// A request and where to send its answer.
pub(crate) enum Command {
    Apply(Op, Sender<Result<Reply>>),
    /// Make everything applied so far durable, then answer.
    Sync(Sender<Result<Reply>>),
    /// Make everything durable and stop.
    Shutdown(Sender<Result<Reply>>),
}

type Answer = (Sender<Result<Reply>>, Result<Reply>);

/// What the writer hands the syncer after writing a group.
struct Written {
    /// The batch was not empty (there is something to fsync).
    wrote: bool,
    /// Events of the group, published once durable.
    events: Vec<EventRecord>,
    /// Answers to send once durable (empty when the caller was answered already:
    /// `Buffered` without an explicit sync).
    answers: Vec<Answer>,
    /// The answers wait for an fsync (Immediate, or an explicit sync or shutdown).
    sync: bool,
}

/// The writer: applies groups and writes their batches; a second thread (the syncer) makes
/// them durable and answers. While the syncer waits on the disk the writer already applies
/// the next group, and one fsync covers every group written before it (group commit across
/// groups as well as within one).
pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Command>) {
    let _guard = PoisonOnPanic::new(&shared, "writer");
    let (sync_tx, sync_rx) = crossbeam_channel::bounded::<Written>(64);
    let s2 = shared.clone();
    let syncer = std::thread::Builder::new()
        .name("jobspool-syncer".into())
        .spawn(move || run_syncer(&s2, &sync_rx));
    let Ok(syncer) = syncer else {
        shared.poison(&Error::Storage {
            context: "cannot start the syncer thread".into(),
            source: None,
        });
        return;
    };
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let (written, shutdown) = apply_group(&shared, group);
        if sync_tx.send(written).is_err() || shutdown {
            break;
        }
    }
    drop(sync_tx);
    let _ = syncer.join();
}

/// The syncer: fsyncs what the writer wrote, then publishes events and answers callers.
fn run_syncer(shared: &Shared, rx: &Receiver<Written>) {
    let _guard = PoisonOnPanic::new(shared, "syncer");
    let buffered = match shared.cfg.durability {
        Durability::Buffered { max_delay } => Some(max_delay),
        Durability::Immediate => None,
    };
    let mut dirty_since: Option<Instant> = None;
    let mut events: Vec<EventRecord> = Vec::new();
    let mut answers: Vec<Answer> = Vec::new();
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
        for w in batch {
            if w.wrote {
                dirty_since = dirty_since.or(Some(Instant::now()));
            }
            want_sync |= w.sync;
            events.extend(w.events);
            answers.extend(w.answers);
        }
        if !want_sync {
            continue;
        }
        let result = if dirty_since.is_some() {
            sync(shared)
        } else {
            Ok(())
        };
        dirty_since = None;
        if let Err(e) = &result {
            shared.poison(e);
        } else {
            // Subscribers hear of a change before its caller does, never before it is durable.
            publish(shared, std::mem::take(&mut events));
        }
        for (reply, answer) in answers.drain(..) {
            let answer = match &result {
                Ok(()) => answer,
                Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
            };
            let _ = reply.send(answer);
        }
    }
    if dirty_since.is_some() && sync(shared).is_ok() {
        publish(shared, events);
    }
}

/// Applies and writes one group. Returns what the syncer needs, and whether to stop.
fn apply_group(shared: &Shared, group: Vec<Command>) -> (Written, bool) {
    let mut staged = Staged::default();
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    let mut sync = matches!(shared.cfg.durability, Durability::Immediate);
    let mut shutdown = false;
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
                    sync = true;
                    shutdown = true;
                    answers.push((reply, Ok(Reply::Unit)));
                }
            }
        }
        shared
            .metrics
            .ops
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
        if st.next_seq != seq_before {
            let meta = Meta {
                next_seq: st.next_seq,
            };
            staged.put_raw(keys::META_STATE.to_vec(), Some(codec::encode(&meta).into()));
        }
    }
    let wrote = !staged.is_empty();
    if let Err(e) = write(shared, &mut staged) {
        shared.poison(&e);
        for (_, answer) in &mut answers {
            *answer = Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown));
        }
    }
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
    let need = (raw + staged.jobs.len() * 1024 + staged.events.len() * 256) as u64;
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

fn write(shared: &Shared, staged: &mut Staged) -> Result<()> {
    if staged.is_empty() {
        return Ok(());
    }
    check_space(shared, staged)?;
    let mut batch = sled::Batch::default();
    for (id, job) in staged.jobs.drain() {
        let key = keys::job(&id);
        match job {
            Some(j) => batch.insert(&key[..], codec::encode(&j)),
            None => batch.remove(&key[..]),
        }
    }
    for (k, v) in staged.raw.drain() {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
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
        batch.insert(&keys::event(recs[0].seq)[..], codec::encode(&block));
    }
    shared
        .tree
        .apply_batch(batch)
        .map_err(|e| Error::storage("writing a batch", e))?;
    shared.metrics.groups.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// sled's `flush` uses `sync_file_range`, which is not durable: follow it with `fdatasync`
/// of the data file (SPEC.md section 1).
pub(crate) fn sync(shared: &Shared) -> Result<()> {
    shared
        .db
        .flush()
        .map_err(|e| Error::storage("flushing sled", e))?;
    sync_blobs(shared)?;
    shared
        .data_file
        .sync_data()
        .map_err(|e| Error::storage("fsync of the data file", e))?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// sled writes pages too large for a segment (a node holding several large payloads can be)
/// to files under `blobs/`, which its flush does not fsync. At every sync, fsync each blob
/// file not synced before, and then the directory. Costs one directory read when there are
/// none.
fn sync_blobs(shared: &Shared) -> Result<()> {
    let dir = shared.path.join("blobs");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::storage("listing blobs", e)),
    };
    let mut synced = shared.synced_blobs.lock();
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
        .map_err(|e| Error::storage("fsync of the blobs directory", e))?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
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
