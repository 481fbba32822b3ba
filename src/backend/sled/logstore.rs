//! Values that live in the journal: job records (`j`), payloads (`p`) and event-log blocks
//! (`e`). They are written once, in the group's journal entry, and never copied into sled;
//! an in-memory key directory maps each to where its latest value sits in a segment
//! (segment, offset, length, crc32). sled holds only the small keys (dedupe, schedules,
//! queues, meta).
//!
//! Segments are therefore kept while they hold a live value, and deleted oldest first once
//! they hold none (and sled holds their other changes durably): oldest first, so a removal
//! in a later segment never outlives an older put of the same key it cancels. When the
//! segments hold much more than their live values, the checkpointer has the writer copy the
//! oldest segment's live values forward (a compaction group: the same keys and values,
//! appended again), after which the segment holds none and goes.
//!
//! Open rebuilds the directory by reading every segment, in order (see `open`).

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::backend::codec::keys;
use crate::backend::sled::journal::Change;
use crate::model::error::{Error, Result};

/// A resident key, fixed width: the prefix byte and 16 bytes as a big-endian number (an
/// event key's 8 bytes of seq are followed by zeros), which orders as the bytes do.
pub(crate) type Key = (u8, u128);

/// Whether `key`'s value lives in the journal rather than in sled.
pub(crate) fn resident(key: &[u8]) -> bool {
    matches!(
        (key.first(), key.len()),
        (Some(&keys::JOB | &keys::PAYLOAD), 17) | (Some(&keys::EVENT), 9)
    )
}

pub(crate) fn fixed(key: &[u8]) -> Option<Key> {
    resident(key).then(|| pad(key))
}

/// The key as written (an event key without its padding).
pub(crate) fn unfixed(k: &Key) -> sled::IVec {
    let mut out = [0u8; 17];
    out[0] = k.0;
    out[1..].copy_from_slice(&k.1.to_be_bytes());
    if k.0 == keys::EVENT {
        sled::IVec::from(&out[..9])
    } else {
        sled::IVec::from(&out[..])
    }
}

/// Where a value is: its segment (by first lsn), offset and length in it, and its crc32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub seg: u64,
    pub off: u64,
    pub len: u32,
    pub crc: u32,
}

impl Loc {
    /// What the value counts for in its segment: its bytes, and one so that an empty value
    /// still keeps its segment.
    fn weight(&self) -> u64 {
        u64::from(self.len) + 1
    }
}

/// The offsets within an entry (from the entry's first byte) of the values its puts write,
/// one per change (`None` for a removal), per the journal's encoding.
pub(crate) fn value_offsets(changes: &[Change]) -> impl Iterator<Item = Option<usize>> + '_ {
    // len u32 | crc u32 | lsn u64 | count u32, then per op: kind u8 | klen u32 | key
    // [| vlen u32 | value].
    let mut at = 8 + 12;
    changes.iter().map(move |(k, v)| {
        at += 1 + 4 + k.len();
        v.as_ref().map(|v| {
            at += 4;
            let here = at;
            at += v.len();
            here
        })
    })
}

#[derive(Default)]
struct Keydir {
    map: dirmap::DirMap,
    /// Live value weights ([`Loc::weight`]) per segment.
    live: BTreeMap<u64, u64>,
    /// Their sum.
    live_total: u64,
    /// Live values: `live_total` less this is their bytes.
    live_count: u64,
}

impl Keydir {
    fn set(&mut self, k: Key, loc: Option<Loc>) {
        let old = match loc {
            Some(loc) => {
                *self.live.entry(loc.seg).or_default() += loc.weight();
                self.live_total += loc.weight();
                self.live_count += 1;
                self.map.insert(k, loc)
            }
            None => self.map.remove(&k),
        };
        if let Some(old) = old {
            if let Some(n) = self.live.get_mut(&old.seg) {
                *n -= old.weight();
            }
            self.live_total -= old.weight();
            self.live_count -= 1;
        }
    }
}

/// The key directory and the segments' read handles.
pub(crate) struct LogStore {
    dir: PathBuf,
    keydir: RwLock<Keydir>,
    /// Read handles of the segments, by first lsn. A deleted segment's handle stays
    /// readable for whoever cloned it before.
    files: RwLock<BTreeMap<u64, Arc<File>>>,
    /// Where each group's entry was appended (segment, offset), until the applier has
    /// moved its values into the directory.
    positions: Mutex<BTreeMap<u64, (u64, u64)>>,
    /// Bytes in segments (file sizes as written, the current one as appended so far).
    seg_bytes: Mutex<BTreeMap<u64, u64>>,
    /// A compaction was asked of the writer and it has not staged it yet.
    pub compacting: std::sync::atomic::AtomicBool,
}

/// What the checkpointer may do with the segments.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Retire {
    /// Segments to delete (oldest first): no live values, every entry durable in sled.
    pub delete: Vec<u64>,
    /// The first lsn of the oldest segment kept.
    pub start: Option<u64>,
}

impl LogStore {
    pub fn new(db_dir: &Path) -> LogStore {
        LogStore {
            dir: db_dir.join(super::journal::DIR),
            keydir: RwLock::default(),
            files: RwLock::default(),
            positions: Mutex::default(),
            seg_bytes: Mutex::default(),
            compacting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A segment to read values from (opened once, when it is created or found at open).
    pub fn add_segment(&self, seg: u64, path: &Path, bytes: u64) -> Result<()> {
        let f = File::open(path)
            .map_err(|e| Error::storage(format!("opening {}", path.display()), e))?;
        self.files.write().insert(seg, Arc::new(f));
        self.seg_bytes.lock().insert(seg, bytes);
        Ok(())
    }

    /// The writer appended group `lsn` at `off` in `seg`, ending at `end`.
    pub fn appended(&self, lsn: u64, seg: u64, off: u64, end: u64) {
        self.positions.lock().insert(lsn, (seg, off));
        self.seg_bytes.lock().insert(seg, end);
    }

    /// The locations of `changes`' resident values, for group `lsn` written at (`seg`,
    /// `off`): (index in `changes`, where), removals as `None`.
    pub fn locate(seg: u64, off: u64, changes: &[Change]) -> Vec<(usize, Option<Loc>)> {
        value_offsets(changes)
            .enumerate()
            .filter(|(i, _)| resident(&changes[*i].0))
            .map(|(i, at)| {
                // (A value's length fits: the journal's encoding has it as a u32.)
                let loc = at.zip(changes[i].1.as_ref()).map(|(at, v)| Loc {
                    seg,
                    off: off + at as u64,
                    len: u32::try_from(v.len()).unwrap_or(u32::MAX),
                    crc: crc32fast::hash(v),
                });
                (i, loc)
            })
            .collect()
    }

    /// Group `lsn`'s resident values are now found in the directory (the applier, once
    /// the group is durable). Returns the group's other changes, for sled.
    pub fn apply_group<'c>(&self, lsn: u64, changes: &'c [Change]) -> Result<Vec<&'c Change>> {
        let Some((seg, off)) = self.positions.lock().remove(&lsn) else {
            // (Every written group went through `appended`: a bug, never silently skipped.)
            return Err(Error::Storage {
                context: format!(
                    "internal: group {lsn} reached the applier without its place in the journal"
                ),
                source: None,
            });
        };
        let mut dir = self.keydir.write();
        for (i, loc) in Self::locate(seg, off, changes) {
            if let Some(k) = fixed(&changes[i].0) {
                dir.set(k, loc);
            }
        }
        drop(dir);
        Ok(changes.iter().filter(|c| !resident(&c.0)).collect())
    }

    /// Sets `key` to `loc` (`None`: removed).
    #[cfg(test)]
    pub fn set(&self, key: &[u8], loc: Option<Loc>) {
        if let Some(k) = fixed(key) {
            self.keydir.write().set(k, loc);
        }
    }

    /// Sets many keys (as [`fixed`] gives them), in order, under one lock: the open's scan
    /// of the journal.
    pub fn set_many(&self, items: impl Iterator<Item = (Key, Option<Loc>)>) {
        let mut dir = self.keydir.write();
        for (k, loc) in items {
            dir.set(k, loc);
        }
    }

    /// Where `key`'s value is, if the directory has it.
    pub fn loc(&self, key: &[u8]) -> Option<Loc> {
        fixed(key).and_then(|k| self.keydir.read().map.get(&k).copied())
    }

    /// `key`'s value, read from its segment.
    pub fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        let Some(k) = fixed(key) else { return Ok(None) };
        // The segment's handle is taken with the location, under the directory's lock: a
        // segment is deleted only once no key points into it, and a handle taken before
        // stays readable after.
        let found = {
            let dir = self.keydir.read();
            dir.map
                .get(&k)
                .map(|loc| (*loc, self.files.read().get(&loc.seg).cloned()))
        };
        match found {
            None => Ok(None),
            Some((loc, file)) => self.read_in(file, key, loc).map(Some),
        }
    }

    /// The value at `loc` (of `key`, for errors), checked against its crc. (The caller
    /// knows the segment is still there: the writer, which alone moves values.)
    pub fn read(&self, key: &[u8], loc: Loc) -> Result<sled::IVec> {
        let file = self.files.read().get(&loc.seg).cloned();
        self.read_in(file, key, loc)
    }

    fn read_in(&self, file: Option<Arc<File>>, key: &[u8], loc: Loc) -> Result<sled::IVec> {
        let path = || self.dir.join(super::journal::segment_name(loc.seg));
        let Some(file) = file else {
            return Err(Error::Corruption {
                tree: "journal",
                key: crate::backend::codec::show_key(key),
                detail: format!(
                    "its value is in segment {}, which is gone; reopen the database (its \
                     journal is checked then), or restore from a backup",
                    path().display()
                ),
            });
        };
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.off)
            .map_err(|e| Error::storage(format!("reading {}", path().display()), e))?;
        if crc32fast::hash(&buf) != loc.crc {
            return Err(Error::Corruption {
                tree: "journal",
                key: crate::backend::codec::show_key(key),
                detail: format!(
                    "its value ({} bytes at offset {} of {}) fails its checksum: the segment \
                     changed after it was written; restore from a backup",
                    loc.len,
                    loc.off,
                    path().display()
                ),
            });
        }
        Ok(buf.into())
    }

    /// The whole segment `seg` (open reads each once to index its job records).
    pub fn read_segment(&self, seg: u64) -> Result<Vec<u8>> {
        let p = self.dir.join(super::journal::segment_name(seg));
        std::fs::read(&p).map_err(|e| Error::storage(format!("reading {}", p.display()), e))
    }

    /// The value at `loc` within `bytes` (its whole segment), checked against its crc.
    pub fn slice<'b>(&self, bytes: &'b [u8], key: &[u8], loc: Loc) -> Result<&'b [u8]> {
        let (off, len) = (
            usize::try_from(loc.off).unwrap_or(usize::MAX),
            loc.len as usize,
        );
        match bytes.get(off..off.saturating_add(len)) {
            Some(v) if crc32fast::hash(v) == loc.crc => Ok(v),
            _ => Err(Error::Corruption {
                tree: "journal",
                key: crate::backend::codec::show_key(key),
                detail: format!(
                    "its value ({len} bytes at offset {off} of segment {}) is cut short or \
                     fails its checksum: the segment changed after it was read; restore from \
                     a backup",
                    self.dir
                        .join(super::journal::segment_name(loc.seg))
                        .display()
                ),
            }),
        }
    }

    /// The resident keys in `[from, to)` with their locations and segments' handles (taken
    /// under the directory's lock, as in [`LogStore::get`]), at most `n`, in key order.
    fn locs_in(
        &self,
        from: Bound<Key>,
        to: Bound<Key>,
        n: usize,
    ) -> Vec<(Key, Loc, Option<Arc<File>>)> {
        let dir = self.keydir.read();
        let files = self.files.read();
        dir.map
            .range(from, to)
            .take(n)
            .map(|(k, l)| (k, *l, files.get(&l.seg).cloned()))
            .collect()
    }

    /// Iterates the resident keys of `[from, to)` and their values, in key order.
    pub fn range<'a>(&'a self, from: &[u8], to: &[u8]) -> LogRange<'a> {
        let start = pad(from);
        // A `from` longer than a key (an event key and a byte: "after this one") starts
        // after the key it extends.
        let width = if from.first() == Some(&keys::EVENT) {
            9
        } else {
            17
        };
        let from = if from.len() > width {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        // `to` longer than a key (a key and a byte) still takes that key.
        let width = if to.first() == Some(&keys::EVENT) {
            9
        } else {
            17
        };
        let to = if to.len() > width {
            Bound::Included(pad(to))
        } else {
            Bound::Excluded(pad(to))
        };
        LogRange {
            log: self,
            next: Some(from),
            to,
            buf: std::collections::VecDeque::new(),
        }
    }

    /// The last resident key at or after `from` and at or before `upto`.
    pub fn last_key_upto(&self, from: &[u8], upto: &[u8]) -> Option<sled::IVec> {
        let (lo, hi) = (pad(from), pad(upto));
        let dir = self.keydir.read();
        let last = dir
            .map
            .range(Bound::Included(lo), Bound::Included(hi))
            .next_back()
            .map(|(k, _)| unfixed(&k));
        last
    }

    /// Bytes of the live values in all segments.
    pub fn live_bytes(&self) -> u64 {
        let dir = self.keydir.read();
        dir.live_total - dir.live_count
    }

    /// Bytes the segments hold (the current one as far as written).
    pub fn segment_bytes(&self) -> u64 {
        self.seg_bytes.lock().values().sum()
    }

    /// Which segments can go, given that sled holds every entry up to `durable_lsn`
    /// durably (the newest segment, being appended to, never goes): the oldest ones, in order,
    /// while they hold no live value and every entry in them is durable in sled.
    pub fn retire(&self, durable_lsn: u64) -> Retire {
        // (Locks in one order everywhere: the directory, then the files, then the sizes.)
        let dir = self.keydir.read();
        let files = self.files.read();
        let firsts: Vec<u64> = files.keys().copied().collect();
        let current = firsts.last().copied().unwrap_or(0);
        let mut out = Retire::default();
        for (i, &seg) in firsts.iter().enumerate() {
            let next = firsts.get(i + 1).copied();
            let whole_durable = next.is_some_and(|n| n <= durable_lsn + 1);
            let empty = dir.live.get(&seg).copied().unwrap_or(0) == 0;
            if seg != current && whole_durable && empty {
                out.delete.push(seg);
            } else {
                out.start = Some(seg);
                break;
            }
        }
        out
    }

    /// Forgets deleted segments.
    pub fn forget(&self, segs: &[u64]) {
        if segs.is_empty() {
            return;
        }
        let mut dir = self.keydir.write();
        let mut files = self.files.write();
        let mut bytes = self.seg_bytes.lock();
        for s in segs {
            files.remove(s);
            bytes.remove(s);
            dir.live.remove(s);
        }
    }

    /// The oldest segment, when compacting it is worth it: it is not the newest, it holds
    /// live values, and the segments hold more than twice the live values plus `slack`.
    pub fn compaction_candidate(&self, slack: u64) -> Option<u64> {
        if self.compacting.load(std::sync::atomic::Ordering::Acquire) {
            return None; // one at a time
        }
        let total = self.segment_bytes();
        let dir = self.keydir.read();
        if total <= 2 * dir.live_total + slack {
            return None;
        }
        let files = self.files.read();
        let (&oldest, _) = files.iter().next()?;
        let (&current, _) = files.iter().next_back()?;
        (oldest != current && dir.live.get(&oldest).copied().unwrap_or(0) > 0).then_some(oldest)
    }

    /// The resident keys whose value is in segment `seg`.
    pub fn keys_in(&self, seg: u64) -> Vec<sled::IVec> {
        let dir = self.keydir.read();
        dir.map
            .iter()
            .filter(|(_, l)| l.seg == seg)
            .map(|(k, _)| unfixed(&k))
            .collect()
    }

    /// Every resident key and its location, in key order.
    pub fn all_locs(&self) -> Vec<(Key, Loc)> {
        let dir = self.keydir.read();
        dir.map.iter().map(|(k, l)| (k, *l)).collect()
    }

    /// The resident job records' keys and locations, in id order.
    pub fn job_locs(&self) -> Vec<(Key, Loc)> {
        let dir = self.keydir.read();
        dir.map.of_prefix(keys::JOB).map(|(k, l)| (k, *l)).collect()
    }
}

mod dirmap;
mod read;
use read::pad;
pub(crate) use read::{Base, LogRange};

#[cfg(test)]
mod tests;
