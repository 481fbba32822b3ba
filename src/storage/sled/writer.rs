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

/// Most requests applied in one group.
const MAX_GROUP: usize = 1024;

/// An event as stored in the log (in blocks, one per writer group): the time it was
/// appended, for retention.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    pub at_ms: i64,
    pub event: Event,
}

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

/// What the writer carries between groups.
struct Pending {
    /// Set while written changes wait for their fsync (`Buffered`).
    dirty_since: Option<Instant>,
    /// Events written but not yet durable: subscribers get them after the fsync.
    unpublished: Vec<EventRecord>,
}

impl Pending {
    /// Makes everything written durable, then publishes the events that were waiting.
    fn sync(&mut self, shared: &Shared) -> Result<()> {
        if self.dirty_since.is_some() {
            sync(shared)?;
            self.dirty_since = None;
        }
        publish(shared, std::mem::take(&mut self.unpublished));
        Ok(())
    }
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Command>) {
    let _guard = PoisonOnPanic(shared.clone());
    let mut pending = Pending {
        dirty_since: None,
        unpublished: Vec::new(),
    };
    loop {
        let first = match (shared.cfg.durability, pending.dirty_since) {
            (Durability::Buffered { max_delay }, Some(since)) => {
                let wait = max_delay.saturating_sub(since.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(c) => c,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if let Err(e) = pending.sync(&shared) {
                            shared.poison(&e);
                        }
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        if commit_group(&shared, group, &mut pending) {
            return;
        }
    }
    let _ = pending.sync(&shared);
}

/// Applies, writes and answers one group. Returns true on shutdown.
fn commit_group(shared: &Shared, group: Vec<Command>, pending: &mut Pending) -> bool {
    let mut staged = Staged::default();
    let mut answers: Vec<(Sender<Result<Reply>>, Result<Reply>)> = Vec::with_capacity(group.len());
    let mut want_sync = matches!(shared.cfg.durability, Durability::Immediate);
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
                    want_sync = true;
                    answers.push((reply, Ok(Reply::Unit)));
                }
                Command::Shutdown(reply) => {
                    want_sync = true;
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
    let result = write(shared, &mut staged).and_then(|()| {
        if wrote {
            pending.dirty_since = pending.dirty_since.or(Some(Instant::now()));
        }
        pending.unpublished.append(&mut staged.events);
        if want_sync {
            // Subscribers hear of a change before its caller does, and never before it is durable.
            pending.sync(shared)?;
        }
        Ok(())
    });
    if let Err(e) = &result {
        shared.poison(e);
    }
    for (reply, answer) in answers {
        let answer = match &result {
            Ok(()) => answer,
            Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
        };
        let _ = reply.send(answer);
    }
    let epoch_after = shared.state.lock().epoch;
    if epoch_after != epoch_before {
        shared.work.notify_all();
    }
    shutdown
}

fn write(shared: &Shared, staged: &mut Staged) -> Result<()> {
    if staged.is_empty() {
        return Ok(());
    }
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
    // The group's events are contiguous: one log block, keyed by its first sequence number.
    if let Some(first) = staged.events.first() {
        let block: Vec<StoredEvent> = staged
            .events
            .iter()
            .zip(&staged.event_times)
            .map(|(rec, at_ms)| StoredEvent {
                at_ms: *at_ms,
                event: rec.event.clone(),
            })
            .collect();
        batch.insert(&keys::event(first.seq)[..], codec::encode(&block));
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
struct PoisonOnPanic(Arc<Shared>);

impl Drop for PoisonOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison(&Error::Storage {
                context: "the writer thread panicked".into(),
                source: None,
            });
        }
        self.0.work.notify_all();
    }
}
