//! Opening the store: sled with its lock retried, the journal replayed into it, and the
//! key directory and in-memory indexes rebuilt from the journal (on two threads).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::logstore::LogStore;
use super::stage::{Meta, StoredEvent};
use super::state::State;
use super::{journal, sledcheck, writer};
use crate::backend::codec::{self, keys};
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

/// Reads the whole journal: rebuilds the directory of the values it holds (`log`) and
/// applies its other changes to sled from the first entry sled lacks (sled is made durable
/// only by checkpoints, so it may have lost the latest groups), and makes sled durable;
/// returns the lsn the next entry gets and the last segment if it can take more. The whole journal is checked before
/// anything is applied: damage is `CORRUPTION` and changes nothing (see `journal::scan`).
#[allow(clippy::too_many_arguments)]
pub(super) fn recover_journal(
    db: &sled::Db,
    tree: &sled::Tree,
    path: &Path,
    data_file: &File,
    synced_blobs: &Mutex<HashSet<OsString>>,
    file_mode: u32,
    log: &LogStore,
    index: Index,
) -> Result<(u64, Option<Tail>, Option<State>)> {
    let (plan, next, jobs) = recover(
        db,
        tree,
        path,
        data_file,
        synced_blobs,
        file_mode,
        false,
        log,
        index,
    )?;
    // The last segment goes on taking entries when it ended unsealed: where its valid
    // entries end, with the name the next entry would give it when it has none.
    let tail = plan.tail.and_then(|(p, end)| {
        let first = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(journal::first_lsn_of)?;
        (end > 0 || first == next).then_some(Tail {
            first,
            end: end as u64,
        })
    });
    Ok((next, tail, jobs))
}

/// How open indexes the job records it reads: the new [`State`]'s seed, and the time that
/// tells due jobs from delayed ones.
#[derive(Clone, Copy)]
pub(super) struct Index {
    pub seed: u64,
    pub now: i64,
}

/// The journal's last segment, to go on appending to: its first lsn, where its entries end.
pub(super) struct Tail {
    pub first: u64,
    pub end: u64,
}

/// [`recover_journal`], skipping damage when `salvage` (`repair`); returns the plan it
/// applied (what was dropped in it), the lsn the next journal starts at (lsns go on
/// across sessions: see `keys::META_JOURNAL`) and the in-memory indexes of the job records
/// (see [`jobs::index_jobs`]); those are `None` with `salvage`, for a database that kept
/// its values in sled, or when the second thread could not be started (`load` then reads
/// the records through the directory).
#[allow(clippy::too_many_arguments)]
pub(super) fn recover(
    db: &sled::Db,
    tree: &sled::Tree,
    path: &Path,
    data_file: &File,
    synced_blobs: &Mutex<HashSet<OsString>>,
    file_mode: u32,
    salvage: bool,
    log: &LogStore,
    index: Index,
) -> Result<(journal::scan::Plan, u64, Option<State>)> {
    // A newer format is refused before anything reads the journal (its records may not
    // decode here: that is no damage). (`repair` goes on past a damaged marker.)
    match store_format(tree) {
        Err(e) if !(salvage && e.code() == crate::model::error::ErrorCode::Corruption) => {
            return Err(e)
        }
        _ => {}
    }
    // (`repair` goes on without a damaged position: the journal's start is then unchecked.)
    let applied = match writer::applied_of(tree) {
        Err(_) if salvage => None,
        other => other?,
    };
    // A database of format 1 or 2 kept every value in sled: its journal is replayed into
    // sled whole and emptied, as those versions did, before `migrate` moves the values. So
    // is one an older build opened after this one: it replayed the journal into sled and
    // emptied it before it refused the format, and sled holds the values again.
    let old_layout = old_layout(tree);
    if old_layout {
        let plan = journal::scan::plan(path, salvage, applied)?;
        crate::backend::failpoint::check("open-replay")?;
        journal::scan::apply(&plan, |_, changes| writer::apply_changes(tree, &changes))?;
        let last = applied.unwrap_or(0).max(plan.last_lsn.unwrap_or(0));
        writer::record_applied(tree, last)?;
        writer::sync_sled(db, path, data_file, synced_blobs, file_mode)?;
        journal::clear(path)?;
        let plan = journal::scan::Plan { tail: None, ..plan };
        return Ok((plan, last + 1, None));
    }
    let start = match writer::log_start_of(tree) {
        Err(_) if salvage => None,
        other => other?,
    };
    let missing_head = drop_retired(path, start, salvage)?;
    // sled's keys: each one's last value in the whole journal, written once. (Replaying
    // every retained entry, not only those after the last one sled says it holds, asks
    // nothing of sled's own recovery; the ones before are the values sled holds anyway.)
    let mut last_values: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> =
        std::collections::HashMap::new();
    let mut batch: Vec<(super::logstore::Key, Option<super::logstore::Loc>)> =
        Vec::with_capacity(READ_BATCH);
    let mut build_directory = |seg: &journal::scan::Checked| {
        for (at, body) in seg.bodies() {
            for op in journal::raw_ops(body) {
                if let Some(k) = super::logstore::fixed(op.key) {
                    batch.push((
                        k,
                        op.value.map(|(off, v)| super::logstore::Loc {
                            seg: at.seg,
                            off: (at.pos + 8 + off) as u64,
                            len: u32::try_from(v.len()).unwrap_or(u32::MAX),
                            crc: crc32fast::hash(v),
                        }),
                    ));
                } else {
                    last_values.insert(op.key.to_vec(), op.value.map(|(_, v)| v.to_vec()));
                }
            }
            if batch.len() >= READ_BATCH {
                log.set_many(batch.drain(..));
            }
        }
    };
    // One read of the journal: each segment, once the plan has checked it, goes to the
    // directory's build here and to a second thread that indexes its job records (not for
    // `repair`, which indexes nothing). Both are only in memory until the whole journal
    // is checked: a plan that fails drops them, and nothing is applied.
    let (plan, jobs) = std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::bounded::<journal::scan::Checked>(1);
        let jobs = (!salvage)
            .then(|| {
                std::thread::Builder::new()
                    .name("jobspool-open".into())
                    .spawn_scoped(scope, move || jobs::index_jobs(rx, index))
                    .ok()
            })
            .flatten();
        let mut tx = jobs.is_some().then_some(tx);
        let plan = journal::scan::plan_each(path, salvage, applied, |seg| {
            if let Some(to) = &tx {
                if to.send(seg.clone()).is_err() {
                    // (The thread stopped early, which only a panic does: the join re-raises it.)
                    tx = None;
                }
            }
            build_directory(&seg);
            Ok(())
        });
        drop(tx);
        let jobs = jobs.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (plan, jobs)
    });
    let mut plan = plan?;
    plan.dropped.extend(missing_head);
    // The journal must reach the last entry sled holds: a segment at its end that is gone
    // (or cut) would otherwise drop its job records without a word. (Every entry is
    // fsynced, with its directory entry, before the applier sees it.)
    if let (Some(a), false) = (applied, salvage) {
        // (A segment is named by its first entry: the ones before it existed.)
        let last_first = plan
            .segments
            .last()
            .and_then(|(p, _)| p.file_name()?.to_str().and_then(journal::first_lsn_of));
        let reached = plan
            .last_lsn
            .unwrap_or(0)
            .max(last_first.map_or(0, |f| f.saturating_sub(1)));
        if reached < a {
            return Err(journal::scan::corrupt(
                &path.join(journal::DIR),
                0,
                format!(
                    "the journal ends at entry {reached}, yet sled holds entries up to {a}: \
                     segments at the journal's end are missing or cut short"
                ),
            ));
        }
    }
    let jobs = jobs.transpose()?;
    crate::backend::failpoint::check("open-replay")?;
    log.set_many(batch.drain(..));
    for (k, v) in last_values {
        match v {
            Some(v) => tree.insert(k, v),
            None => tree.remove(k),
        }
        .map_err(|e| Error::storage("writing to sled", e))?;
    }
    let last = applied.unwrap_or(0).max(plan.last_lsn.unwrap_or(0));
    writer::record_applied(tree, last)?;
    // Even with nothing replayed: what sled read back may still sit only in the page cache
    // (the last process was killed before a checkpoint).
    writer::sync_sled(db, path, data_file, synced_blobs, file_mode)?;
    for (seg_path, _) in &plan.segments {
        let first = seg_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(journal::first_lsn_of);
        let Some(first) = first else { continue };
        let len = std::fs::metadata(seg_path)
            .map_err(|e| Error::storage(format!("reading {}", seg_path.display()), e))?
            .len();
        log.add_segment(first, seg_path, len)?;
    }
    Ok((plan, last + 1, jobs))
}

/// Keys set in the directory under one lock at open.
const READ_BATCH: usize = 64 * 1024;

/// Deletes the segments a checkpoint retired (wholly before the oldest segment it kept,
/// `start`) but did not get to delete; the first one left must start at `start`, else
/// segments holding values are missing: `CORRUPTION`, or with `salvage` the range of
/// entries lost, to report.
fn drop_retired(
    path: &Path,
    start: Option<u64>,
    salvage: bool,
) -> Result<Option<crate::model::repair::DroppedRange>> {
    let Some(start) = start else { return Ok(None) };
    let dir = path.join(journal::DIR);
    let segs = journal::segments(&dir)?;
    for (first, p) in &segs {
        if *first < start {
            std::fs::remove_file(p)
                .map_err(|e| Error::storage(format!("removing {}", p.display()), e))?;
        }
    }
    let first_left = segs.iter().map(|(f, _)| *f).find(|f| *f >= start);
    let (detail, at, lost) = match first_left {
        None => (
            format!(
                "the journal holds no segment, yet the last checkpoint kept segments from \
                 entry {start}: the job records, payloads and events they hold are missing"
            ),
            dir.clone(),
            None,
        ),
        Some(f) if f > start => (
            format!(
                "the journal's oldest segment starts at entry {f}, yet the last checkpoint \
                 kept segments from entry {start}: segments holding job records, payloads \
                 or events are missing"
            ),
            dir.join(journal::segment_name(f)),
            Some((start, f - 1)),
        ),
        Some(_) => return Ok(None),
    };
    if !salvage {
        return Err(journal::scan::corrupt(&at, 0, detail));
    }
    Ok(Some(crate::model::repair::DroppedRange {
        segment: at,
        offset: 0,
        end: 0,
        lsns: lost,
        detail,
    }))
}

/// Rebuilds the in-memory indexes from the records (their index fields as `recover` read
/// them, else through the directory); returns what it found of the job records (for
/// `sledcheck`).
pub(super) fn load(
    tree: &sled::Tree,
    log: &LogStore,
    st: &mut State,
    now: i64,
    indexed: Option<State>,
) -> Result<sledcheck::Digest> {
    match indexed {
        Some(indexed) => *st = indexed,
        None => jobs::load_jobs(log, st, now)?,
    }
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
    if let Some(k) = log.last_key_upto(&[keys::EVENT], &[keys::EVENT + 1]) {
        if let Some(v) = log.get(&k)? {
            let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
            if let Some(first) = keys::seq_of(&k) {
                next_seq = next_seq.max(first + block.len() as u64);
            }
        }
    }
    st.next_seq = next_seq;
    Ok(st.digest)
}

mod jobs;
mod migrate;
use migrate::store_format;
#[cfg(test)]
use migrate::STORE_FORMAT;
pub(super) use migrate::{migrate, old_layout, rewrite_journal};

#[cfg(test)]
mod tests;
