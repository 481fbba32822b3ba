//! The syncer thread: fsyncs the journal once for every group written since its last
//! fsync, then publishes the groups' events, answers their callers and hands the changes to
//! the applier. (`commit` is the same for one group, done by the writer itself.)

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::publish::publish;
use super::{Answer, PoisonOnPanic, Written};
use crate::backend::sled::journal::{self, Change, Segment};
use crate::backend::sled::Shared;
use crate::model::config::Durability;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;

/// Longest the syncer waits for the writer's next group before an fsync (about a third of
/// an fsync here).
const GATHER: Duration = Duration::from_micros(100);

/// The syncer: fsyncs what the writer wrote, then publishes events and answers callers.
pub(super) fn run_syncer(
    shared: &Shared,
    rx: &Receiver<Written>,
    apply_tx: &Sender<Vec<(u64, Vec<Change>)>>,
) {
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
            // Readers see the groups from now on; subscribers hear of a change before its
            // caller does, never before it is durable.
            synced(shared, &groups);
            publish(shared, std::mem::take(&mut events));
        }
        last_answered = answers.len();
        for (reply, answer) in answers.drain(..) {
            let answer = match &result {
                Ok(()) => answer,
                Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
            };
            reply.send(answer);
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
        synced(shared, &groups);
        publish(shared, events);
        let _ = apply_tx.send(groups);
    }
}

/// The writer's own commit of one group, when the syncer has nothing to do: fsync, publish,
/// answer, hand the changes to the applier. Returns false if the writer should stop.
pub(super) fn commit(
    shared: &Shared,
    w: Written,
    apply_tx: &Sender<Vec<(u64, Vec<Change>)>>,
) -> bool {
    let result = if w.wrote {
        sync_journal(shared, &w.segments, w.new_segment)
    } else {
        Ok(())
    };
    if let Err(e) = &result {
        shared.poison(e);
    } else {
        if let Some(group) = &w.changes {
            synced(shared, std::slice::from_ref(group));
        }
        publish(shared, w.events);
    }
    for (reply, answer) in w.answers {
        let answer = match &result {
            Ok(()) => answer,
            Err(_) => Err(shared.poisoned_error().unwrap_or(Error::ShuttingDown)),
        };
        reply.send(answer);
    }
    match (result, w.changes) {
        (Ok(()), Some(group)) => apply_tx.send(vec![group]).is_ok(),
        (Ok(()), None) => true,
        (Err(_), _) => false,
    }
}

/// Makes `groups` (now durable in the journal) visible to readers.
fn synced(shared: &Shared, groups: &[(u64, Vec<Change>)]) {
    if let Some(lsn) = groups.iter().map(|(lsn, _)| *lsn).max() {
        shared.overlay.mark_synced(lsn);
    }
}

fn sync_journal(shared: &Shared, segments: &[Arc<Segment>], new_segment: bool) -> Result<()> {
    journal::sync(&shared.path, segments, new_segment)?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
