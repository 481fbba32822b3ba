//! The checkpointer thread: once a second, makes sled durable up to the last group applied
//! to it (sled flush, then fsync of its files) and trims the journal.

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::PoisonOnPanic;
use crate::backend::sled::Shared;
use crate::backend::sled::{journal, perms, sledcheck};
use crate::backend::{durable, failpoint};
use crate::model::error::{Error, Result};

/// How often the checkpointer makes sled durable and trims the journal.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The checkpointer: once a second, makes what sled holds durable and trims the journal.
pub(super) fn run_checkpointer(
    shared: &Shared,
    stop: &Receiver<()>,
    compact: &crossbeam_channel::Sender<super::Command>,
) {
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
        request_compaction(shared, compact);
    }
}

/// Most keys one compaction command copies (one writer group).
const COMPACT_CHUNK: usize = 2048;

/// When the journal's segments hold more than twice their live values (plus two segments),
/// asks the writer to copy the oldest segment's live values forward; once that group is
/// durable and in the directory, the segment holds none and a checkpoint deletes it. A
/// command repeated before the last one was applied is harmless: the writer copies only
/// keys still in that segment with nothing pending.
pub(super) fn request_compaction(
    shared: &Shared,
    compact: &crossbeam_channel::Sender<super::Command>,
) {
    let slack = 2 * shared.cfg.journal_segment_bytes;
    let Some(seg) = shared.log.compaction_candidate(slack) else {
        return;
    };
    let keys = shared.log.keys_in(seg);
    // One compaction at a time: the writer clears the flag once it staged the last chunk.
    // Never blocks: a writer whose queue is full (or that is stopping) is asked again at
    // the next checkpoint.
    let chunks: Vec<&[sled::IVec]> = keys.chunks(COMPACT_CHUNK).collect();
    let n = chunks.len();
    shared.log.compacting.store(true, Ordering::Release);
    for (i, chunk) in chunks.into_iter().enumerate() {
        let cmd = super::Command::Compact(chunk.to_vec(), seg, i + 1 == n);
        if compact.try_send(cmd).is_err() {
            shared.log.compacting.store(false, Ordering::Release);
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
    // The segments that may go once sled holds everything up to `lsn` durably: none of
    // their values is live. The oldest one kept is recorded in sled before the flush.
    let retire = shared.log.retire(lsn);
    if let Some(start) = retire.start {
        shared.tree.insert(
            crate::backend::codec::keys::META_LOG_START,
            &start.to_be_bytes(),
        )?;
    }
    // The record the flush makes true (see `sledcheck`): written after sled is durable,
    // before the journal that covers it goes.
    let record = sledcheck::prepare(&shared.tree, &shared.path)?;
    sync_sled(
        &shared.db,
        &shared.path,
        &shared.data_file,
        &shared.synced_blobs,
        shared.cfg.file_mode,
    )?;
    sledcheck::write(&shared.path, &record, shared.cfg.file_mode)?;
    shared.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
    shared.durable_lsn.store(lsn, Ordering::Release);
    journal::remove_segments(&shared.path, &retire.delete)?;
    shared.log.forget(&retire.delete);
    Ok(())
}

/// Makes sled's state durable: sled's `flush` uses `sync_file_range`, which is not durable,
/// so follow it with `fdatasync` of the data file and of new blob files (which also get
/// `file_mode`: sled creates them with the umask).
pub(crate) fn sync_sled(
    db: &sled::Db,
    path: &std::path::Path,
    data_file: &File,
    synced_blobs: &parking_lot::Mutex<HashSet<std::ffi::OsString>>,
    file_mode: u32,
) -> Result<()> {
    failpoint::check("checkpoint-flush")?;
    db.flush()
        .map_err(|e| sledcheck::sled_error(path, "flushing sled", e))?;
    sync_blobs(path, synced_blobs, file_mode)?;
    failpoint::check("checkpoint-fsync")?;
    durable::sync_sled(data_file, path).map_err(|e| Error::storage("fsync of the data file", e))
}

/// sled writes pages too large for a segment (a node holding several large payloads can be)
/// to files under `blobs/`, which its flush does not fsync. At every sync, fsync each blob
/// file not synced before (giving it `file_mode` first), and then the directory. Costs one
/// directory read when there are none.
fn sync_blobs(
    path: &std::path::Path,
    synced_blobs: &parking_lot::Mutex<HashSet<std::ffi::OsString>>,
    file_mode: u32,
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
            Ok(f) => {
                perms::set_file(&f, file_mode)
                    .map_err(|e| Error::storage("setting the mode of a blob", e))?;
                f.sync_all()
                    .map_err(|e| Error::storage("fsync of a blob", e))?;
            }
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
    perms::ensure_dir(&dir, perms::dir_mode(file_mode))
        .map_err(|e| Error::storage("setting the mode of the blobs directory", e))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::storage("fsync of the blobs directory", e))
}
