//! The applier thread: points the key directory at durable groups' job records, payloads
//! and events, moves their other changes into sled, then drops them from the overlay. Also
//! the plain key-by-key apply the replay of an old-layout journal uses on open.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::PoisonOnPanic;
use crate::backend::sled::journal::Change;
use crate::backend::sled::Shared;
use crate::model::error::{Error, Result};

/// How long the applier lets durable groups collect before writing them to sled. (100 ms
/// wrote fewer sled keys per job in a 100,000-job burn-down, 3.28 against 3.98, but saved
/// only ~2% of the process's CPU and did not make the burn-down faster: 0.96x with 2
/// workers, 1.00x with 32, medians of 5 in turn; a larger overlay under the writer's reads
/// and inserts is the likely reason, not profiled.)
const APPLY_LAG: Duration = Duration::from_millis(10);

/// Most groups the applier writes at once.
const APPLY_MAX_GROUPS: usize = 4096;

/// The applier: moves durable groups into the directory and sled, in order, then out of
/// the overlay.
///
/// It lets durable groups collect for up to `APPLY_LAG` and writes only the last value of
/// each sled key. Safe because sled needs no atomicity of its own: every group is durable
/// in the journal first, and the open writes each sled key's last value in the journal.
pub(super) fn run_applier(shared: &Shared, rx: &Receiver<Vec<(u64, Vec<Change>)>>) {
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
        if shared.poisoned_error().is_some() {
            // A write or sync failed (a full disk above all): these groups are durable in
            // the journal, which the next open replays. Writing them into sled now could
            // run the disk out from under sled, whose flush then never returns.
            return;
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
pub(super) fn apply_coalesced(shared: &Shared, groups: &mut Vec<(u64, Vec<Change>)>) -> Result<()> {
    // The values the journal keeps: into the directory, in order (each group's own).
    let others = groups
        .iter()
        .map(|(lsn, changes)| Ok((*lsn, shared.log.apply_group(*lsn, changes)?)))
        .collect::<Result<Vec<(u64, Vec<&Change>)>>>()?;
    let last = coalesce(&others);
    crate::backend::failpoint::check("applier-write")?;
    write_all(&shared.tree, &last)?;
    if let Some((lsn, _)) = groups.last() {
        // Before `applied_lsn` moves: a checkpoint's flush then covers it whenever it
        // deletes segments up to that lsn.
        record_applied(&shared.tree, *lsn)?;
    }
    for (lsn, changes) in groups.drain(..) {
        shared.overlay.applied(lsn, &changes);
        shared.applied_lsn.store(lsn, Ordering::Release);
        shared.metrics.unapplied.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Records in sled that it holds every journal entry up to `lsn` (`keys::META_JOURNAL`).
pub(crate) fn record_applied(tree: &sled::Tree, lsn: u64) -> Result<()> {
    tree.insert(
        crate::backend::codec::keys::META_JOURNAL,
        &lsn.to_be_bytes(),
    )
    .map_err(|e| Error::storage("writing to sled", e))?;
    Ok(())
}

/// What sled says it holds of the journal (`keys::META_JOURNAL`): `None` in a database
/// written before the key existed.
pub(crate) fn applied_of(tree: &sled::Tree) -> Result<Option<u64>> {
    meta_lsn(
        tree,
        crate::backend::codec::keys::META_JOURNAL,
        "mjournal",
        "journal position",
    )
}

/// The first lsn of the oldest journal segment the last checkpoint kept
/// (`keys::META_LOG_START`), `None` in a database that never had one.
pub(crate) fn log_start_of(tree: &sled::Tree) -> Result<Option<u64>> {
    meta_lsn(
        tree,
        crate::backend::codec::keys::META_LOG_START,
        "mlogstart",
        "journal's first kept segment",
    )
}

/// An lsn sled keeps under `key`. A value of the wrong length, or past any lsn a journal
/// reaches (2^62: a billion groups a second for a century), is `CORRUPTION`.
fn meta_lsn(tree: &sled::Tree, key: &[u8], name: &str, what: &str) -> Result<Option<u64>> {
    let Some(v) = tree
        .get(key)
        .map_err(|e| Error::storage("reading sled", e))?
    else {
        return Ok(None);
    };
    match <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes) {
        Ok(lsn) if lsn < 1 << 62 => Ok(Some(lsn)),
        _ => Err(Error::Corruption {
            tree: "meta",
            key: name.into(),
            detail: format!(
                "{:02x?} where the {what} (8 bytes, below 2^62) belongs; `jobspool repair` \
                 reads the journal without it",
                v.as_ref()
            ),
        }),
    }
}

/// A key and the value to leave it with (`None`: removed).
type Last<'a> = (&'a [u8], &'a Option<sled::IVec>);

/// The last value of each key `groups` change (groups in lsn order), in key order: what
/// sled holds after applying the groups one by one, with one write per key.
fn coalesce<'a>(groups: &[(u64, Vec<&'a Change>)]) -> Vec<Last<'a>> {
    let n = groups.iter().map(|(_, changes)| changes.len()).sum();
    let mut last: fxhash::FxHashMap<&[u8], &Option<sled::IVec>> =
        fxhash::FxHashMap::with_capacity_and_hasher(n, Default::default());
    for (_, changes) in groups {
        for (k, v) in changes.iter().copied() {
            last.insert(k, v);
        }
    }
    let mut last: Vec<Last<'_>> = last.into_iter().collect();
    last.sort_unstable_by_key(|(k, _)| *k);
    last
}

fn write_all(tree: &sled::Tree, last: &[Last<'_>]) -> Result<()> {
    for (k, v) in last {
        match v {
            Some(v) => tree.insert(k, v.clone()),
            None => tree.remove(k),
        }
        .map_err(|e| Error::storage("writing to sled", e))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests;
