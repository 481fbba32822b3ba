//! The journal: an append-only log of writer groups, the only thing a commit waits for.
//!
//! sled's `flush` writes its buffer and waits on `sync_file_range`, and only an `fdatasync`
//! after it makes the data durable: two device round trips per commit. So a group is
//! committed by appending its changes (the exact puts and removes of sled keys) to a journal
//! segment and `fdatasync`ing that file, once for every group written since the last sync.
//! Readers see the changes at once through the overlay; the key directory (job records,
//! payloads, events: they stay in the segments, see `logstore`) and sled get them only once
//! their entry is durable (the applier); sled is made durable by a checkpoint (sled flush +
//! fsync of its files) once a second. Segments are deleted oldest first once none of their
//! values is live and a checkpoint covers them. On open every segment is read again, in
//! order (`open::recover`).
//!
//! An entry is `len u32 | crc32 u32 | body`, body = `lsn u64 | count u32 | ops`, op =
//! `kind u8 (1 put, 0 remove) | key len u32 | key | value len u32 | value` (big-endian). A
//! segment that is full ends with a seal (`count` = `u32::MAX`, `lsn` = the first lsn of the
//! next segment). Segments are preallocated (zeros, written for real a chunk ahead of the
//! appends: see `ahead`), so an fsync flushes data only, not the file's size or block map:
//! a zero length ends a segment's entries. A torn entry with nothing valid after
//! it, or the end of an unsealed segment, ends the journal: nothing after it was acknowledged
//! (an answer waits for the fsync of every entry up to its own). A bad entry with valid ones
//! after it is damage, not a torn tail (see `scan`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::logstore::LogStore;
use crate::backend::{durable, failpoint};
use crate::model::error::{Error, Result};

/// Journal directory inside the database directory.
pub(crate) const DIR: &str = "journal";

/// The default segment size (see `Builder::journal_segment_bytes`): a segment is
/// preallocated to it and sealed once it holds this much.
#[cfg(test)]
const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// Header bytes in front of each entry body.
const HEADER: usize = 8;

/// The smallest body: lsn and op count.
const MIN_BODY: usize = 12;

/// One change of a batch: a key and its new value, `None` to remove it.
pub(crate) type Change = (sled::IVec, Option<sled::IVec>);

/// The op count that marks a seal.
const SEAL: u32 = u32::MAX;

/// One decoded entry.
#[derive(Debug, PartialEq)]
pub(crate) enum Entry {
    /// A writer group: its lsn and changes.
    Group(u64, Vec<Change>),
    /// The end of a full segment; the next segment starts at this lsn.
    Seal(u64),
}

/// How a segment's entries ended.
#[cfg(feature = "fuzzing")]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// With a seal: the journal continues in the next segment.
    Sealed,
    /// Zeros, end of file, a torn entry, or the reader stopped: the journal ends here.
    Open,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::storage(format!("{what} {}", path.display()), e)
}

pub(crate) fn segment_name(first_lsn: u64) -> String {
    format!("wal-{first_lsn:020}")
}

pub(crate) fn first_lsn_of(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.parse().ok()
}

/// The segments in `dir`, oldest first, as (first lsn, path).
pub(crate) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("listing", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("listing", dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(first_lsn_of) {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<()> {
    durable::sync_dir(dir).map_err(|e| io("fsync of", dir, e))
}

/// Reads the valid entries of one segment (any reader of `size` bytes; `path` names it in
/// errors) in order, calling `f` for each group (which returns false to stop); stops at a
/// seal, at zeros or the end, or at the first bad entry. Returns how the entries ended and,
/// for a seal, the lsn it names. (The fuzz target's reader; open uses [`scan`].)
#[cfg(feature = "fuzzing")]
pub(crate) fn read_entries(
    mut r: impl std::io::Read,
    size: u64,
    path: &Path,
    mut f: impl FnMut(u64, Vec<Change>) -> Result<bool>,
) -> Result<(End, Option<u64>)> {
    let open = Ok((End::Open, None));
    let mut pos = 0u64;
    let mut header = [0u8; HEADER];
    loop {
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return open,
            Err(e) => return Err(io("reading", path, e)),
        }
        let len = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        // A length past the end of the file is a torn entry: never allocate for it.
        if len < MIN_BODY as u64 || pos + HEADER as u64 + len > size {
            return open;
        }
        let mut body = vec![0u8; len as usize];
        match r.read_exact(&mut body) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return open,
            Err(e) => return Err(io("reading", path, e)),
        }
        pos += HEADER as u64 + len;
        if crc32fast::hash(&body) != crc {
            return open;
        }
        match decode_body(&body) {
            None => return open,
            Some(Entry::Seal(next)) => return Ok((End::Sealed, Some(next))),
            Some(Entry::Group(lsn, changes)) => {
                if !f(lsn, changes)? {
                    return open;
                }
            }
        }
    }
}

/// The segment being appended to, shared with the syncer for its fsync.
pub(crate) struct Segment {
    pub file: File,
    /// Where it is (for the power-loss test's durable image).
    pub path: PathBuf,
}

/// The writer's side: appends entries, rolls segments.
pub(crate) struct Journal {
    dir: PathBuf,
    current: Arc<Segment>,
    /// The current segment's first lsn (its name).
    current_first: u64,
    /// Told where each entry went, and of each new segment.
    log: Arc<LogStore>,
    /// Zeros written ahead of the appends in `current` (see `ahead`).
    ahead: ahead::Ahead,
    segment_bytes: u64,
    file_mode: u32,
    bytes: u64,
    next_lsn: u64,
    buf: Vec<u8>,
}

/// What one append touched, for the syncer.
pub(crate) struct Appended {
    /// Segments to fsync, oldest first (more than one when the append rolled a segment).
    pub segments: Vec<Arc<Segment>>,
    /// A segment was created: the directory needs an fsync too.
    pub new_segment: bool,
    /// Bytes written: the entry, and the seal of the segment it rolled.
    pub bytes: u64,
}

impl Journal {
    /// Starts a fresh segment of `segment_bytes` whose first entry will be `next_lsn`.
    /// Segment files get `file_mode`, the directory the matching mode.
    pub fn create(
        db_dir: &Path,
        next_lsn: u64,
        segment_bytes: u64,
        file_mode: u32,
        log: Arc<LogStore>,
    ) -> Result<Journal> {
        let dir = db_dir.join(DIR);
        let (current, ahead) = new_segment(&dir, next_lsn, segment_bytes, file_mode)?;
        sync_dir(&dir)?;
        sync_dir(db_dir)?; // the journal directory's own entry
        log.add_segment(next_lsn, &current.path, 0)?;
        Ok(Journal {
            dir,
            current: Arc::new(current),
            current_first: next_lsn,
            log,
            ahead,
            segment_bytes,
            file_mode,
            bytes: 0,
            next_lsn,
            buf: Vec::new(),
        })
    }

    /// Goes on appending to the segment that starts at `first` and whose entries end at
    /// `end` (the journal's last segment, unsealed, as a close or a crash left it), with
    /// `next_lsn` next: cuts whatever follows `end` (a torn entry), preallocates the
    /// segment again and fsyncs that before anything is appended. A segment already full
    /// is sealed instead, and a new one started. (A database opened and closed often, by
    /// the CLI say, so keeps one segment instead of one per open.)
    pub fn resume(
        db_dir: &Path,
        first: u64,
        end: u64,
        next_lsn: u64,
        segment_bytes: u64,
        file_mode: u32,
        log: Arc<LogStore>,
    ) -> Result<Journal> {
        let dir = db_dir.join(DIR);
        let path = dir.join(segment_name(first));
        if end >= segment_bytes {
            seal_at(&path, end, next_lsn)?;
            log.add_segment(first, &path, end + SEAL_BYTES)?;
            return Journal::create(db_dir, next_lsn, segment_bytes, file_mode, log);
        }
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        super::perms::set_file(&file, file_mode)
            .map_err(|e| io("setting the mode of", &path, e))?;
        file.set_len(end).map_err(|e| io("truncating", &path, e))?;
        // (A failed preallocation cuts the file back to its entries, never below.)
        let prealloc = if preallocate(&file, &path, segment_bytes, end)? {
            segment_bytes
        } else {
            0
        };
        durable::sync_segment(&file, &path).map_err(|e| io("fsync of", &path, e))?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(end))
            .map_err(|e| io("seeking in", &path, e))?;
        log.add_segment(first, &path, end)?;
        Ok(Journal {
            dir,
            current: Arc::new(Segment { file, path }),
            current_first: first,
            log,
            ahead: ahead::Ahead {
                prealloc,
                zeroed: end,
            },
            segment_bytes,
            file_mode,
            bytes: end,
            next_lsn,
            buf: Vec::new(),
        })
    }

    /// The lsn the next append gets.
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Appends one entry (the lsn from [`Journal::next_lsn`]). Written, not yet fsync'd.
    pub fn append(&mut self, changes: &[Change]) -> Result<Appended> {
        let mut appended = Appended {
            segments: Vec::with_capacity(2),
            new_segment: false,
            bytes: 0,
        };
        if self.bytes >= self.segment_bytes {
            // Seal the full segment and make it durable, seal included, before anything is
            // written to the next one: a later segment's entries on disk then prove this
            // one was whole, so an unsealed segment followed by entries is damage, never a
            // power loss that kept a later write and lost an earlier one (the kernel writes
            // back different files in no particular order). One fsync per segment.
            self.buf.clear();
            encode(&mut self.buf, &Entry::Seal(self.next_lsn));
            failpoint::check("journal-seal")?;
            (&self.current.file)
                .write_all(&self.buf)
                .map_err(|e| io("appending to the journal in", &self.dir, e))?;
            appended.bytes += self.buf.len() as u64;
            durable::sync_segment(&self.current.file, &self.current.path)
                .map_err(|e| io("fsync of the journal in", &self.dir, e))?;
            failpoint::check("journal-roll")?;
            let (current, ahead) =
                new_segment(&self.dir, self.next_lsn, self.segment_bytes, self.file_mode)?;
            self.log.add_segment(self.next_lsn, &current.path, 0)?;
            self.current_first = self.next_lsn;
            self.current = Arc::new(current);
            self.ahead = ahead;
            self.bytes = 0;
            appended.new_segment = true;
        }
        self.buf.clear();
        encode_entry(&mut self.buf, self.next_lsn, changes);
        if let Err(e) = failpoint::check("journal-append") {
            // An injected failure leaves half the entry in the file, as a full disk can.
            let _ = (&self.current.file).write_all(&self.buf[..self.buf.len() / 2]);
            return Err(e);
        }
        (&self.current.file)
            .write_all(&self.buf)
            .map_err(|e| io("appending to the journal in", &self.dir, e))?;
        let at = self.bytes;
        self.bytes += self.buf.len() as u64;
        appended.bytes += self.buf.len() as u64;
        self.log
            .appended(self.next_lsn, self.current_first, at, self.bytes);
        self.next_lsn += 1;
        self.ahead.after_append(&self.current.file, self.bytes);
        if self.buf.capacity() > 4 * 1024 * 1024 {
            self.buf = Vec::new(); // do not keep a huge group's buffer
        }
        appended.segments.push(self.current.clone());
        Ok(appended)
    }
}

impl Journal {
    /// At a clean close: cuts the current segment's preallocated rest, so a closed database
    /// takes only what it holds; the next open goes on appending to it ([`Journal::resume`]).
    /// Durable on return.
    pub fn finish(&mut self) -> Result<()> {
        self.current
            .file
            .set_len(self.bytes)
            .map_err(|e| io("truncating", &self.current.path, e))?;
        durable::sync_segment(&self.current.file, &self.current.path)
            .map_err(|e| io("fsync of", &self.current.path, e))
    }
}

/// Bytes of a seal entry.
pub(crate) const SEAL_BYTES: u64 = (HEADER + MIN_BODY) as u64;

/// Writes a seal naming `next_lsn` at `at` in the segment at `path`, cuts the file right
/// after it, and fsyncs it.
pub(crate) fn seal_at(path: &Path, at: u64, next_lsn: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = Vec::new();
    encode(&mut buf, &Entry::Seal(next_lsn));
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io("opening", path, e))?;
    f.write_all_at(&buf, at)
        .map_err(|e| io("sealing", path, e))?;
    f.set_len(at + buf.len() as u64)
        .map_err(|e| io("truncating", path, e))?;
    durable::sync_segment(&f, path).map_err(|e| io("fsync of", path, e))
}

/// A new preallocated segment (empty), and its zeros (none yet).
fn new_segment(
    dir: &Path,
    first_lsn: u64,
    bytes: u64,
    file_mode: u32,
) -> Result<(Segment, ahead::Ahead)> {
    use std::os::unix::fs::OpenOptionsExt;
    super::perms::ensure_dir(dir, super::perms::dir_mode(file_mode))
        .map_err(|e| io("creating", dir, e))?;
    let path = dir.join(segment_name(first_lsn));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(file_mode)
        .open(&path)
        .map_err(|e| io("creating", &path, e))?;
    // The umask may have cleared bits of `file_mode`, and an old file keeps its mode.
    super::perms::set_file(&file, file_mode).map_err(|e| io("setting the mode of", &path, e))?;
    let ahead = ahead::Ahead {
        prealloc: if preallocate(&file, &path, bytes, 0)? {
            bytes
        } else {
            0
        },
        zeroed: 0,
    };
    Ok((Segment { file, path }, ahead))
}

/// Allocates the segment's blocks up front (reading back as zeros): an `fdatasync` after an
/// append then writes no size change, and once the zeros written ahead (`ahead`) have
/// turned the blocks into written ones, no block-map change either. Best effort: where the
/// space is not there (or the filesystem cannot), the segment grows as it is written
/// instead: the file is cut back to `keep` bytes (what it held before). Returns whether the
/// blocks are allocated.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn preallocate(file: &File, path: &Path, bytes: u64, keep: u64) -> Result<bool> {
    use std::os::unix::io::AsRawFd;
    let len = i64::try_from(bytes).unwrap_or(i64::MAX);
    if nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, len).is_err() {
        // Undo a partial allocation: the reader must see no stale length.
        file.set_len(keep).map_err(|e| io("truncating", path, e))?;
        return Ok(false);
    }
    Ok(true)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn preallocate(_: &File, _: &Path, _: u64, _: u64) -> Result<bool> {
    Ok(false)
}

/// fsyncs appended segments (oldest first) and, after a roll, the directory.
pub(crate) fn sync(db_dir: &Path, segments: &[Arc<Segment>], new_segment: bool) -> Result<()> {
    failpoint::check("journal-fsync")?;
    #[cfg(test)]
    hold::wait(db_dir);
    for s in segments {
        durable::sync_segment(&s.file, &s.path)
            .map_err(|e| io("fsync of the journal in", db_dir, e))?;
    }
    if new_segment {
        sync_dir(&db_dir.join(DIR))?;
    }
    Ok(())
}

/// Deletes the segments that start at the lsns `firsts` (retired by a checkpoint).
/// (The failpoint fires on every call, with or without segments to delete: a checkpoint's
/// last step.)
pub(crate) fn remove_segments(db_dir: &Path, firsts: &[u64]) -> Result<()> {
    failpoint::check("journal-truncate")?;
    if firsts.is_empty() {
        return Ok(());
    }
    let dir = db_dir.join(DIR);
    for first in firsts {
        let p = dir.join(segment_name(*first));
        std::fs::remove_file(&p).map_err(|e| io("removing", &p, e))?;
    }
    sync_dir(&dir)
}

/// Applies every entry of the journal, in order, with `apply`; returns how many.
/// Entries sled already holds are applied again: each sets keys to the values they had
/// after it, so replaying from any checkpointed point onward yields the final state. The
/// whole journal is read and checked first ([`scan::plan`]), so damage applies nothing: the
/// journal ends at a torn tail or an unsealed segment end (nothing after it was
/// acknowledged); a bad entry with a valid one after it, an entry out of sequence, or a seal
/// followed by a segment that resumes elsewhere, is `CORRUPTION` naming segment and offset.
#[cfg(test)]
pub(crate) fn replay(
    db_dir: &Path,
    mut apply: impl FnMut(Vec<Change>) -> Result<()>,
) -> Result<u64> {
    let plan = scan::plan(db_dir, false, None)?;
    scan::apply(&plan, |_, changes| apply(changes))
}

/// Removes every segment (after a replay was made durable in sled).
pub(crate) fn clear(db_dir: &Path) -> Result<()> {
    let dir = db_dir.join(DIR);
    for (_, path) in segments(&dir)? {
        std::fs::remove_file(&path).map_err(|e| io("removing", &path, e))?;
    }
    Ok(())
}

mod ahead;
mod entry;
pub(crate) use entry::{check_body, decode_body, encode, encode_entry, raw_ops};
#[cfg(test)]
pub(crate) mod hold;
pub(crate) mod scan;
#[cfg(test)]
mod tests;
