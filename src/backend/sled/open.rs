//! Opening the store: sled with its lock retried, the journal replayed into it, and the
//! in-memory indexes rebuilt from the records (read on two threads).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::stage::{Meta, StoredEvent};
use super::state::{Batch, Indexer, State};
use super::{journal, sledcheck, writer};
use crate::backend::codec::{self, keys};
use crate::backend::records::JobIndex;
use crate::model::config::Config;
use crate::model::error::{Error, Result};

/// sled segment size for new databases. sled moves pages over a quarter of it (64 KiB here)
/// to files under `blobs/`; every sync fsyncs new blob files, so large payloads stay
/// durable. Measured: with 512 KiB or larger segments sled 0.34's memory grows with every
/// write (1M 400-byte inserts: >1.5 GB at 1 MiB), with 256 KiB it stays flat (~130 MB); see
/// docs/PERFORMANCE-HISTORY.md.
const SEGMENT_SIZE: usize = 256 * 1024;

/// The segment size an existing database was created with (sled refuses another one).
pub(super) fn segment_size_of(path: &Path) -> usize {
    std::fs::read(path.join("conf"))
        .ok()
        .and_then(|conf| {
            // The file ends in a binary checksum: read it as lossy text.
            String::from_utf8_lossy(&conf)
                .lines()
                .find_map(|l| l.strip_prefix("segment_size: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .filter(|n| n.is_power_of_two())
        .unwrap_or(SEGMENT_SIZE)
}

/// Checks the database directory before sled opens it: a regular file at `path` is an
/// `INVALID_ARGUMENT` naming it; with `create` the directory is created when missing, else a
/// directory without sled's data file (`db`) is `DATABASE_NOT_FOUND`, and nothing is
/// created. A directory that holds what jobspool writes once sled is open (the checkpoint
/// record, the journal) but not sled's data file is `CORRUPTION`, with or without `create`
/// (sled would start an empty database there). sled's `conf` may be missing: sled writes it
/// again. The directory is created with (or given) the mode for `file_mode` (see `perms`)
/// before sled puts anything in it.
pub(super) fn prepare_dir(path: &Path, create: bool, file_mode: u32) -> Result<()> {
    let not_a_dir = || {
        Error::InvalidArgument(format!(
            "{} is a file, not a database directory; give the path of a jobspool database \
             directory (or of a new one to create)",
            path.display()
        ))
    };
    let holds_db = || path.join("db").is_file();
    let written_after_open =
        || path.join(super::sledcheck::FILE).exists() || path.join(super::journal::DIR).exists();
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => return Err(not_a_dir()),
        Ok(_) if !holds_db() && written_after_open() => {
            let db = path.join("db");
            let what = if db.exists() {
                "is not a regular file"
            } else {
                "is missing"
            };
            return Err(Error::Corruption {
                tree: "sled",
                key: db.display().to_string(),
                detail: format!(
                    "sled's data file {what}, yet the database's checkpoint record or journal \
                     is there; nothing was changed"
                ),
            });
        }
        Ok(_) if !create && !holds_db() => {
            return Err(Error::DatabaseNotFound {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(_) if !create => {
            return Err(Error::DatabaseNotFound {
                path: path.to_path_buf(),
            })
        }
        Err(_) => {}
    }
    super::perms::ensure_dir(path, super::perms::dir_mode(file_mode)).map_err(|e| {
        // A file where a parent directory should be.
        if path.ancestors().skip(1).any(Path::is_file) {
            Error::InvalidArgument(format!(
                "cannot create the database directory {}: a parent of it is a file ({e})",
                path.display()
            ))
        } else {
            Error::storage(format!("creating {}", path.display()), e)
        }
    })
}

/// How long `open` retries sled's file lock (sled releases it asynchronously after a drop).
const LOCK_RETRY: Duration = Duration::from_secs(2);

pub(super) fn open_db(path: &Path, cfg: &Config) -> Result<sled::Db> {
    let deadline = Instant::now() + LOCK_RETRY;
    loop {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cfg.cache_bytes)
            .segment_size(segment_size_of(path))
            .flush_every_ms(None);
        // sled 0.34's recovery panics on some damage ("tried to serialize Uninitialized").
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
            .map_err(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                super::sledcheck::damaged(
                    path,
                    format!("sled's recovery failed reading its files ({what})"),
                )
            })?;
        match res {
            Ok(db) => {
                super::holder::record(path, cfg.file_mode);
                return Ok(db);
            }
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(super::holder::in_use(path));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(super::sledcheck::sled_error(
                    path,
                    &format!("opening the database at {}", path.display()),
                    e,
                ))
            }
        }
    }
}

/// Applies the journal to sled (sled is made durable only by checkpoints, so it may have
/// lost the latest groups), makes the result durable and empties the journal. The whole
/// journal is checked before anything is applied: damage is `CORRUPTION` and changes
/// nothing (see `journal::scan`).
pub(super) fn recover_journal(
    db: &sled::Db,
    tree: &sled::Tree,
    path: &Path,
    data_file: &File,
    synced_blobs: &Mutex<HashSet<OsString>>,
    file_mode: u32,
) -> Result<u64> {
    Ok(recover(db, tree, path, data_file, synced_blobs, file_mode, false)?.1)
}

/// [`recover_journal`], skipping damage when `salvage` (`repair`); returns the plan it
/// applied (what was dropped in it) and the lsn the next journal starts at (lsns go on
/// across sessions: see `keys::META_JOURNAL`).
pub(super) fn recover(
    db: &sled::Db,
    tree: &sled::Tree,
    path: &Path,
    data_file: &File,
    synced_blobs: &Mutex<HashSet<OsString>>,
    file_mode: u32,
    salvage: bool,
) -> Result<(journal::scan::Plan, u64)> {
    // (`repair` goes on without a damaged position: the journal's start is then unchecked.)
    let applied = match writer::applied_of(tree) {
        Err(_) if salvage => None,
        other => other?,
    };
    let plan = journal::scan::plan(path, salvage, applied)?;
    crate::backend::failpoint::check("open-replay")?;
    journal::scan::apply(&plan, |changes| writer::apply_changes(tree, &changes))?;
    let last = applied.unwrap_or(0).max(plan.last_lsn.unwrap_or(0));
    writer::record_applied(tree, last)?;
    // Even with nothing replayed: what sled read back may still sit only in the page cache
    // (the last process was killed before a checkpoint), and the journal goes next.
    writer::sync_sled(db, path, data_file, synced_blobs, file_mode)?;
    journal::clear(path)?;
    Ok((plan, last + 1))
}

/// How many key ranges the job records are split into for loading: enough that two
/// threads taking them in turn finish close together.
const LOAD_RANGES: u128 = 64;

/// Indexes every job record. sled's iteration and the decoding dominate opening a large
/// database, so the id range is cut into [`LOAD_RANGES`] ranges (ids are time-ordered
/// UUIDs; the cuts are evenly spaced between the first and the last), which this thread
/// and a second one take in turn, each reading its ranges' records into a [`Batch`] of
/// what the indexes need (see `JobIndex`). Between its ranges this thread gathers the
/// batches read so far into the indexes, in id order; the ordered sets are built at the
/// end. A damaged record stops the reading of the ranges after its own; the error of the
/// first damaged record in id order is returned.
pub(super) fn load_jobs(tree: &sled::Tree, st: &mut State, now: i64) -> Result<()> {
    let bound = |item: Option<sled::Result<(sled::IVec, sled::IVec)>>| -> Result<Option<u128>> {
        Ok(match item {
            Some(kv) => keys::id_of(&kv?.0).map(|id| id.0.as_u128()),
            None => None,
        })
    };
    let first = tree.scan_prefix([keys::JOB]).next();
    if first.is_none() {
        return Ok(());
    }
    let first = bound(first)?;
    let last = bound(tree.scan_prefix([keys::JOB]).next_back())?;
    let mut cuts = vec![vec![keys::JOB]];
    // (A key too short for an id is read, in one range, and its record decoded.)
    if let (Some(first), Some(last)) = (first, last) {
        let step = (last.saturating_sub(first) / LOAD_RANGES).max(1);
        cuts.extend((1..LOAD_RANGES).filter_map(|i| {
            let at = first.checked_add(step.checked_mul(i)?)?;
            (at <= last).then(|| {
                let mut k = vec![keys::JOB];
                k.extend_from_slice(&at.to_be_bytes());
                k
            })
        }));
    }
    cuts.push(vec![keys::JOB + 1]);
    let ranges = cuts.len() - 1;
    let next = AtomicUsize::new(0);
    // The first range (in id order) found to hold a damaged record.
    let failed = AtomicUsize::new(usize::MAX);
    // The most jobs a range held so far: room for as many (up to `BATCH_ROOM`) upfront.
    let most_yet = AtomicUsize::new(0);
    // The next range to read, while any is left before a damaged one.
    let take = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        (i < ranges && i < failed.load(Ordering::Relaxed)).then_some(i)
    };
    let read = |i: usize| {
        let read = read_range(
            tree,
            &cuts[i],
            &cuts[i + 1],
            || failed.load(Ordering::Relaxed) < i,
            most_yet.load(Ordering::Relaxed),
        );
        if let Ok(b) = &read {
            most_yet.fetch_max(b.len(), Ordering::Relaxed);
        }
        if read.is_err() {
            failed.fetch_min(i, Ordering::Relaxed);
        }
        read
    };
    // Ranges read, waiting to be indexed in order; the first not indexed yet.
    let mut waiting: BTreeMap<usize, Result<Batch>> = BTreeMap::new();
    let mut indexed = 0;
    let mut ix = Indexer::default();
    let mut index_waiting = |waiting: &mut BTreeMap<usize, Result<Batch>>| {
        while let Some(entry) = waiting.first_entry() {
            if *entry.key() != indexed || entry.get().is_err() {
                break;
            }
            if let Ok(batch) = entry.remove() {
                st.index_batch(&mut ix, batch, now);
            }
            indexed += 1;
        }
    };
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::unbounded();
        let other = scope.spawn(|| {
            while let Some(i) = take() {
                if tx.send((i, read(i))).is_err() {
                    break;
                }
            }
            drop(tx);
        });
        // This thread reads ranges too, and indexes between them what both read.
        while let Some(i) = take() {
            waiting.insert(i, read(i));
            waiting.extend(rx.try_iter());
            index_waiting(&mut waiting);
        }
        for (i, read) in rx {
            waiting.insert(i, read);
            index_waiting(&mut waiting);
        }
        if let Err(panic) = other.join() {
            std::panic::resume_unwind(panic);
        }
    });
    // Left over only after a damaged record: the first range (in id order) that has one
    // (every range before it was read to its end).
    for read in waiting.into_values() {
        read?;
    }
    st.finish_index(ix);
    Ok(())
}

/// The most jobs a batch makes room for before reading (ranges are about even, unless
/// ids were made in bursts: most of them may then be in few ranges).
const BATCH_ROOM: usize = 1 << 15;

/// The job records from key `lo` (included) to `hi` (excluded), read into a batch with
/// room for `expect` jobs; stops early (with what it read) once `stop` says so (a range
/// before it holds a damaged record).
fn read_range(
    tree: &sled::Tree,
    lo: &[u8],
    hi: &[u8],
    stop: impl Fn() -> bool,
    expect: usize,
) -> Result<Batch> {
    let mut batch = Batch::with_capacity((expect + expect / 8).min(BATCH_ROOM));
    for (n, item) in tree.range(lo..hi).enumerate() {
        let (k, v) = item?;
        batch.push(&JobIndex::decode("jobs", &k, &v)?);
        if n % 1024 == 1023 && stop() {
            break;
        }
    }
    Ok(batch)
}

/// Rebuilds the in-memory indexes from the records; returns what it found of the job
/// records (for `sledcheck`).
pub(super) fn load(tree: &sled::Tree, st: &mut State, now: i64) -> Result<sledcheck::Digest> {
    match tree.get(b"mformat")? {
        None => {
            tree.insert(b"mformat", &[codec::FORMAT_VERSION])?;
        }
        Some(v) if v.as_ref() == [codec::FORMAT_VERSION] => {}
        Some(v) if v.as_ref() == [1] => {
            // Format 1 records stay readable; what is written from now on is the current
            // format, and the marker says so before any of it is: a build that reads only
            // format 1 refuses the database at open instead of meeting records it cannot
            // read (the open fsyncs sled's files right after this, see `SledBackend::open`).
            tree.insert(b"mformat", &[codec::FORMAT_VERSION])?;
        }
        Some(v) if v.len() == 1 && v[0] > codec::FORMAT_VERSION => {
            return Err(Error::Storage {
                context: format!(
                    "the database is in storage format {}, written by a newer jobspool; this \
                     build reads formats 1 to {}: upgrade jobspool (nothing was changed)",
                    v[0],
                    codec::FORMAT_VERSION
                ),
                source: None,
            })
        }
        Some(v) => {
            return Err(Error::Corruption {
                tree: "meta",
                key: "m/format".into(),
                detail: format!(
                    "{:02x?} where the storage format version (one byte, 1 to {}) belongs",
                    v.as_ref(),
                    codec::FORMAT_VERSION
                ),
            })
        }
    }
    load_jobs(tree, st, now)?;
    for item in tree.scan_prefix([keys::QUEUE]) {
        let (k, v) = item?;
        let paused: bool = codec::decode("queues", &k, &v)?;
        let name = String::from_utf8_lossy(&k[1..]).into_owned();
        st.set_paused(&name, paused);
    }
    let mut next_seq = 1;
    if let Some(v) = tree.get(keys::META_STATE)? {
        let meta: Meta = codec::decode("meta", keys::META_STATE, &v)?;
        next_seq = meta.next_seq.max(1);
    }
    if let Some((k, v)) = tree.scan_prefix([keys::EVENT]).next_back().transpose()? {
        let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
        if let Some(first) = keys::seq_of(&k) {
            next_seq = next_seq.max(first + block.len() as u64);
        }
    }
    st.next_seq = next_seq;
    Ok(st.digest)
}

#[cfg(test)]
mod tests;
