//! Storage formats and moving between them: the marker, the migration of a database that
//! kept every value in sled (formats 1 and 2) into the journal, and the rewrite of a
//! salvaged journal into fresh segments (`repair`).

use std::path::Path;

use super::super::logstore::LogStore;
use super::super::{journal, writer};
use crate::backend::codec::{self, keys};
use crate::model::config::Config;
use crate::model::error::{Error, Result};

/// The layout of the store (sled's `mformat`): 1 and 2 kept every value in sled (records
/// in format 1, then 2); 3 keeps job records, payloads and event blocks in the journal's
/// segments (see `logstore`), with records in format 2.
pub(crate) const STORE_FORMAT: u8 = 3;

/// The store's layout as sled records it (`None`: a new database), checked: a newer one is
/// `STORAGE` (upgrade), a malformed one `CORRUPTION`.
pub(in crate::backend::sled) fn store_format(tree: &sled::Tree) -> Result<Option<u8>> {
    match tree.get(b"mformat")? {
        None => Ok(None),
        Some(v) if v.len() == 1 && (1..=STORE_FORMAT).contains(&v[0]) => Ok(Some(v[0])),
        Some(v) if v.len() == 1 && v[0] > STORE_FORMAT => Err(Error::Storage {
            context: format!(
                "the database is in storage format {}, written by a newer jobspool; this \
                 build reads formats 1 to {STORE_FORMAT}: upgrade jobspool (nothing was \
                 changed)",
                v[0]
            ),
            source: None,
        }),
        Some(v) => Err(Error::Corruption {
            tree: "meta",
            key: "m/format".into(),
            detail: format!(
                "{:02x?} where the storage format version (one byte, 1 to {STORE_FORMAT}) \
                 belongs",
                v.as_ref()
            ),
        }),
    }
}

/// Whether sled holds the job records, payloads and events: a database of format 1 or 2,
/// or one an older build opened (see `recover`).
pub(in crate::backend::sled) fn old_layout(tree: &sled::Tree) -> bool {
    matches!(store_format(tree), Ok(Some(f)) if f < STORE_FORMAT)
        || [keys::JOB, keys::PAYLOAD, keys::EVENT]
            .iter()
            .any(|p| tree.scan_prefix([*p]).next().is_some())
}

/// A database of format 1 or 2 (every value in sled; its journal already replayed into
/// sled and emptied): moves the job records, payloads and event blocks into journal
/// entries (fsynced as they are written), then out of sled, then marks the database as
/// format 3 and makes sled durable. A crash midway leaves format 2 with the values in both
/// places; the next open moves them again (the same values). New databases just get the
/// marker.
pub(in crate::backend::sled) fn migrate(
    tree: &sled::Tree,
    path: &Path,
    journal: &mut journal::Journal,
    log: &LogStore,
    sync: impl Fn() -> Result<()>,
) -> Result<()> {
    let format = store_format(tree)?;
    let in_sled = old_layout(tree);
    if format == Some(STORE_FORMAT) && !in_sled {
        return Ok(());
    }
    if in_sled {
        // The journal was emptied: these segments are its start.
        tree.insert(keys::META_LOG_START, &journal.next_lsn().to_be_bytes())?;
        const CHUNK: usize = 4 * 1024 * 1024;
        let mut changes: Vec<journal::Change> = Vec::new();
        let mut bytes = 0;
        let mut moved: Vec<sled::IVec> = Vec::new();
        let mut flush =
            |changes: &mut Vec<journal::Change>| append_durably(journal, path, log, changes);
        for prefix in [keys::JOB, keys::PAYLOAD, keys::EVENT] {
            for item in tree.scan_prefix([prefix]) {
                let (k, v) = item?;
                if !super::super::logstore::resident(&k) {
                    return Err(Error::Corruption {
                        tree: "sled",
                        key: codec::show_key(&k),
                        detail: format!(
                            "a key of {} bytes where a job record, payload or event block key \
                             belongs; nothing was changed",
                            k.len()
                        ),
                    });
                }
                bytes += k.len() + v.len() + 9;
                moved.push(k.clone());
                changes.push((k, Some(v)));
                if bytes >= CHUNK {
                    flush(&mut changes)?;
                    bytes = 0;
                }
            }
        }
        flush(&mut changes)?;
        for k in moved {
            tree.remove(k)?;
        }
        writer::record_applied(tree, journal.next_lsn() - 1)?;
    }
    tree.insert(b"mformat", &[STORE_FORMAT])?;
    // Before any group of the new layout: an older build must meet the new marker, never
    // a sled without the records it expects.
    sync()
}

/// Appends `changes` as one entry, fsyncs it and points the directory at its values, then
/// empties `changes` (migration and repair, before the writer starts).
fn append_durably(
    journal: &mut journal::Journal,
    path: &Path,
    log: &LogStore,
    changes: &mut Vec<journal::Change>,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let lsn = journal.next_lsn();
    let appended = journal.append(changes)?;
    journal::sync(path, &appended.segments, appended.new_segment)?;
    log.apply_group(lsn, changes)?;
    changes.clear();
    Ok(())
}

/// After `repair` salvaged a damaged journal into `log`: writes every live value into
/// fresh segments from `next_lsn` (fsynced), then records them as the journal's start in
/// sled (made durable) and deletes every older segment, damage included, so the database
/// opens again. A crash midway leaves the damaged segments in place: `repair` again.
pub(in crate::backend::sled) fn rewrite_journal(
    tree: &sled::Tree,
    path: &Path,
    log: &std::sync::Arc<LogStore>,
    next_lsn: u64,
    cfg: &Config,
    sync: impl Fn() -> Result<()>,
) -> Result<()> {
    const CHUNK: usize = 4 * 1024 * 1024;
    let old = journal::segments(&path.join(journal::DIR))?;
    let mut journal = journal::Journal::create(
        path,
        next_lsn,
        cfg.journal_segment_bytes,
        cfg.file_mode,
        log.clone(),
    )?;
    let mut changes: Vec<journal::Change> = Vec::new();
    let mut bytes = 0;
    let mut flush =
        |changes: &mut Vec<journal::Change>| append_durably(&mut journal, path, log, changes);
    for (k, loc) in log.all_locs() {
        let key = super::super::logstore::unfixed(&k);
        let v = log.read(&key, loc)?;
        bytes += key.len() + v.len() + 9;
        changes.push((key, Some(v)));
        if bytes >= CHUNK {
            flush(&mut changes)?;
            bytes = 0;
        }
    }
    flush(&mut changes)?;
    journal.finish()?;
    tree.insert(keys::META_LOG_START, &next_lsn.to_be_bytes())?;
    writer::record_applied(tree, journal.next_lsn() - 1)?;
    sync()?;
    let firsts: Vec<u64> = old
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| *f < next_lsn)
        .collect();
    journal::remove_segments(path, &firsts)
}
