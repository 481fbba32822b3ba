//! The single writer: applies requests in groups and appends each group's changes to the
//! journal as one entry; a syncer fsyncs the journal (once for every group written since
//! its last fsync), answers the callers (group commit) and then moves the changes into sled;
//! a checkpointer makes sled itself durable once a second so the journal can be trimmed.
//!
//! One file per thread or concern: `group` applies and journals one group (the writer
//! thread's work), `syncer` fsyncs and answers, `applier` moves durable groups into sled,
//! `checkpoint` makes sled durable and trims the journal, `space` refuses a group the disk
//! cannot hold, `publish` hands durable events to the observer.

mod answer;
mod applier;
mod checkpoint;
mod group;
mod publish;
mod space;
mod syncer;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::backend::sled::journal::{Change, Journal, Segment};
use crate::backend::sled::ops::{Op, Reply};
use crate::backend::sled::Shared;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;

pub(crate) use answer::{answer_slot, AnswerRx, NoAnswer};
pub(crate) use applier::{applied_of, apply_changes, log_start_of, record_applied};
pub(crate) use checkpoint::sync_sled;
pub(crate) use group::admit;

use answer::AnswerTx;
use applier::run_applier;
use checkpoint::{checkpoint, run_checkpointer};
use group::apply_group;
use syncer::{commit, run_syncer};

/// Most requests applied in one group.
const MAX_GROUP: usize = 1024;

/// A request and where to send its answer.
pub(crate) enum Command {
    Apply(Op, AnswerTx<Result<Reply>>),
    /// Make everything applied so far durable, then answer.
    Sync(AnswerTx<Result<Reply>>),
    /// Make everything durable and stop.
    Shutdown(AnswerTx<Result<Reply>>),
    /// Copy these resident keys' values forward when they are still in this segment (see
    /// `logstore`): sent by the checkpointer, answered by nobody; `true` on the last chunk.
    Compact(Vec<sled::IVec>, u64, bool),
}

type Answer = (AnswerTx<Result<Reply>>, Result<Reply>);

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
pub(crate) fn run(
    shared: Arc<Shared>,
    mut journal: Journal,
    rx: Receiver<Command>,
    compact_tx: crossbeam_channel::Sender<Command>,
) {
    let _guard = PoisonOnPanic::new(&shared, "writer");
    let (sync_tx, sync_rx) = crossbeam_channel::bounded::<Written>(64);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    // The applier moves durable groups into sled, so the next fsync need not wait for it:
    // unbounded, so handing groups over never blocks the syncer (or the writer) while the
    // applier is busy in sled. What it holds is bounded in bytes instead: the groups are
    // counted in the overlay until applied, and the writer waits when that grows too large.
    let (apply_tx, apply_rx) = crossbeam_channel::unbounded::<Vec<(u64, Vec<Change>)>>();
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
        .spawn(move || run_checkpointer(&s3, &stop_rx, &compact_tx));
    let (Ok(applier), Ok(syncer), Ok(checkpointer)) = (applier, syncer, checkpointer) else {
        shared.poison(&Error::Storage {
            context: "cannot start the applier, syncer or checkpoint thread".into(),
            source: None,
        });
        return;
    };
    let mut shutdown_reply = None;
    let mut staged = crate::backend::sled::stage::Staged::default();
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
        let (written, shutdown) = apply_group(&shared, &mut journal, &mut staged, group);
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
    // A clean stop: sled holds everything but the values the journal keeps; the current
    // segment is sealed where its entries end.
    let result = match shared.poisoned_error() {
        Some(e) => Err(e),
        None => checkpoint(&shared)
            .and_then(|()| {
                // Count the job records into the checkpoint record (see `sledcheck`).
                let jobs = shared.state.lock().digest;
                crate::backend::sled::sledcheck::seal(
                    &shared.tree,
                    &shared.path,
                    jobs,
                    || {
                        sync_sled(
                            &shared.db,
                            &shared.path,
                            &shared.data_file,
                            &shared.synced_blobs,
                            shared.cfg.file_mode,
                        )
                    },
                    shared.cfg.file_mode,
                )
            })
            .and_then(|()| journal.finish()),
    };
    if let Err(e) = &result {
        shared.poison(e);
    }
    if let Some(reply) = shutdown_reply {
        reply.send(result.map(|()| Reply::Unit));
    }
}

/// What the checkpointer does for the journal, at once (tests): a checkpoint (which
/// deletes the segments holding no live value) and, when the segments have grown past
/// their live values, a request to compact the oldest one.
#[cfg(test)]
pub(crate) fn maintain_journal(
    shared: &Shared,
    tx: &crossbeam_channel::Sender<Command>,
) -> Result<()> {
    checkpoint(shared)?;
    checkpoint::request_compaction(shared, tx);
    Ok(())
}

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
        self.0.observer.work_available();
    }
}

#[cfg(test)]
mod tests;
