//! The checkpoint record: noticing when sled comes back older than it was made durable.
//!
//! sled's recovery takes damage in its log for the end of the log, so a damaged `db` file
//! can reopen silently rolled back. Every checkpoint therefore (1) reads sled's event
//! counter (`mstate`) and writes a generation number into sled (`mcheckpoint`, a key only
//! sled holds), (2) flushes and fsyncs sled, (3) writes `<db>/checkpoint` (temp file,
//! fsync, rename, directory fsync): version, generation, the event counter, a crc, and only
//! then (4) trims the journal. sled's recovery yields a prefix of its log, so a sled that
//! still holds the generation holds everything written before it.
//!
//! At open, before the journal replay writes anything, sled must hold at least what the
//! record says: its generation key and its event counter no lower. Both only grow, and sled
//! as opened is the checkpointed state plus possibly later groups (which are in the
//! journal), so a legitimate crash image always passes: a crash before (3) leaves the older
//! record, one after it a sled that holds the generation. A database without the record
//! (written by an older version) opens unchecked and gets one at its first checkpoint.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::stage::Meta;
use crate::backend::codec::{self, keys};
use crate::model::error::{Error, Result};

/// The record's file name in the database directory.
pub(crate) const FILE: &str = "checkpoint";
/// The sled key holding the generation of the last checkpoint (sled only, never journaled).
const MARK: &[u8] = b"mcheckpoint";
const MAGIC: &[u8; 8] = b"jscheck\0";
const VERSION: u32 = 1;
const LEN: usize = 8 + 4 + 8 + 8 + 1 + 8 + 8 + 4;

/// What sled held when it was last made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// The generation written into sled before the flush.
    pub gen: u64,
    /// sled's event counter (`mstate`) read before the flush.
    pub next_seq: u64,
    /// Written at a clean close (sled then holds exactly the records and the journal is
    /// emptied): the job records sled holds.
    pub jobs: Option<Digest>,
}

/// The job records sled holds: how many, and a sum of a hash of each id (order-free, so
/// it can be summed in whatever order open indexes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Digest {
    pub count: u64,
    pub sum: u64,
}

impl Digest {
    fn hash(id: &[u8]) -> u64 {
        // FNV-1a, then splitmix64's finalizer: fixed forever (the record is on disk).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    pub(crate) fn add(&mut self, id: &[u8]) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(Self::hash(id));
    }

    /// Undoes [`Digest::add`] of the same id (a deleted record).
    pub(crate) fn remove(&mut self, id: &[u8]) {
        self.count = self.count.wrapping_sub(1);
        self.sum = self.sum.wrapping_sub(Self::hash(id));
    }
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.gen.to_be_bytes());
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        let d = self.jobs.unwrap_or_default();
        out.push(u8::from(self.jobs.is_some()));
        out.extend_from_slice(&d.count.to_be_bytes());
        out.extend_from_slice(&d.sum.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != LEN || &b[..8] != MAGIC {
            return None;
        }
        let crc = u32::from_be_bytes(b[LEN - 4..].try_into().ok()?);
        if crc32fast::hash(&b[..LEN - 4]) != crc {
            return None;
        }
        if u32::from_be_bytes(b[8..12].try_into().ok()?) != VERSION {
            return None;
        }
        let u64_at =
            |i: usize| -> Option<u64> { Some(u64::from_be_bytes(b[i..i + 8].try_into().ok()?)) };
        Some(Record {
            gen: u64_at(12)?,
            next_seq: u64_at(20)?,
            jobs: match b[28] {
                0 => None,
                1 => Some(Digest {
                    count: u64_at(29)?,
                    sum: u64_at(37)?,
                }),
                _ => return None,
            },
        })
    }
}

/// The `CORRUPTION` for sled's files at `path`.
pub(crate) fn damaged(path: &Path, detail: String) -> Error {
    Error::Corruption {
        tree: "sled",
        key: path.display().to_string(),
        detail,
    }
}

/// sled's "read corrupted data" (its `Corruption`, or an IO error carrying it) as
/// `CORRUPTION` naming the database; any other sled error as `STORAGE` with `context`.
pub(crate) fn sled_error(path: &Path, context: &str, e: sled::Error) -> Error {
    match at_path(path, Error::from(e)) {
        Error::Storage { source, .. } => Error::Storage {
            context: context.to_string(),
            source,
        },
        other => other,
    }
}

/// A `CORRUPTION` in tree `sled` named by the database path.
pub(crate) fn at_path(path: &Path, e: Error) -> Error {
    match e {
        Error::Corruption {
            tree: "sled",
            detail,
            ..
        } => damaged(path, detail),
        other => other,
    }
}

/// sled's event counter as it holds it now.
fn sled_next_seq(tree: &sled::Tree) -> Result<u64> {
    Ok(match tree.get(keys::META_STATE)? {
        Some(v) => codec::decode::<Meta>("meta", keys::META_STATE, &v)?.next_seq,
        None => 0,
    })
}

fn sled_gen(tree: &sled::Tree, path: &Path) -> Result<Option<u64>> {
    match tree.get(MARK)? {
        None => Ok(None),
        Some(v) => match <[u8; 8]>::try_from(v.as_ref()) {
            Ok(b) => Ok(Some(u64::from_be_bytes(b))),
            Err(_) => Err(damaged(
                path,
                format!(
                    "sled's checkpoint generation key holds {} bytes, not 8",
                    v.len()
                ),
            )),
        },
    }
}

/// Step (1) of a checkpoint, before sled's flush: the record the flush will make true, its
/// generation written into sled.
pub(crate) fn prepare(tree: &sled::Tree, path: &Path) -> Result<Record> {
    let next_seq = sled_next_seq(tree)?;
    let gen = sled_gen(tree, path)?.unwrap_or(0) + 1;
    tree.insert(MARK, &gen.to_be_bytes())?;
    Ok(Record {
        gen,
        next_seq,
        jobs: None,
    })
}

/// At a clean close (everything applied, before the journal is emptied): a record that
/// also counts sled's job records, made true by one more flush. Open compares it with
/// what it indexes when no journal is left to replay.
///
/// `jobs` is what the writer's indexes say exist (kept as jobs are created and deleted,
/// from the records open indexed), so closing needs no scan of sled.
pub(crate) fn seal(
    tree: &sled::Tree,
    path: &Path,
    jobs: Digest,
    sync: impl FnOnce() -> Result<()>,
    file_mode: u32,
) -> Result<()> {
    let mut rec = prepare(tree, path)?;
    rec.jobs = Some(jobs);
    sync()?;
    write(path, &rec, file_mode)
}

/// Before a replay moves sled past what the last clean close counted: the record keeps its
/// generation and counter but no longer counts the job records (else a crash after the
/// journal is cleared would leave a count sled has outgrown).
pub(crate) fn unseal(path: &Path, file_mode: u32) -> Result<()> {
    match read(path)? {
        Some(rec) if rec.jobs.is_some() => write(path, &Record { jobs: None, ..rec }, file_mode),
        _ => Ok(()),
    }
}

/// After open indexed the job records (`found`), when the journal was empty (nothing
/// replayed): they are the ones the last clean close counted.
pub(crate) fn verify_jobs(path: &Path, found: &Digest) -> Result<()> {
    let Some(Record {
        jobs: Some(sealed),
        gen,
        ..
    }) = read(path)?
    else {
        return Ok(());
    };
    if sealed == *found {
        return Ok(());
    }
    Err(damaged(
        path,
        format!(
            "the checkpoint record ({FILE}, generation {gen}) counts {} job records (digest \
             {:016x}), the database holds {} (digest {:016x}): the journal's segments (or \
             sled's files) lost or changed records since the last clean close; restore from \
             a backup, or `jobspool repair` to keep what is left",
            sealed.count, sealed.sum, found.count, found.sum
        ),
    ))
}

/// Step (3), after sled's flush and fsync: the record, atomically and durably.
pub(crate) fn write(path: &Path, rec: &Record, file_mode: u32) -> Result<()> {
    let tmp = path.join(format!("{FILE}.tmp"));
    let io = |what: &str, e: std::io::Error| Error::storage(format!("{what} {}", tmp.display()), e);
    let mut f = File::create(&tmp).map_err(|e| io("creating", e))?;
    super::perms::set_file(&f, file_mode).map_err(|e| io("setting the mode of", e))?;
    f.write_all(&rec.encode()).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("fsync of", e))?;
    drop(f);
    std::fs::rename(&tmp, path.join(FILE)).map_err(|e| io("renaming", e))?;
    crate::backend::durable::sync_dir(path)
        .map_err(|e| Error::storage("fsync of the database directory", e))
}

/// The record, if the database has one. Changes nothing.
pub(crate) fn read(path: &Path) -> Result<Option<Record>> {
    let file = path.join(FILE);
    match std::fs::read(&file) {
        Ok(b) => Record::decode(&b)
            .map(Some)
            .ok_or_else(|| Error::Corruption {
                tree: "checkpoint",
                key: file.display().to_string(),
                detail: format!(
                    "the checkpoint record ({} bytes) fails its checksum or is of an unknown \
                     version",
                    b.len()
                ),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::storage(format!("reading {}", file.display()), e)),
    }
}

/// At open, before the journal replay: sled holds at least what the last checkpoint made
/// durable, else `CORRUPTION` (and nothing written).
pub(crate) fn verify(tree: &sled::Tree, path: &Path) -> Result<()> {
    let Some(rec) = read(path)? else {
        return Ok(());
    };
    let rolled_back = |what: String| {
        damaged(
            path,
            format!(
                "the last checkpoint record ({FILE}) says {what}: sled came back older \
                 than it was made durable, acknowledged jobs may be missing"
            ),
        )
    };
    match sled_gen(tree, path)? {
        Some(g) if g >= rec.gen => {}
        Some(g) => {
            return Err(rolled_back(format!(
                "checkpoint generation {}, sled holds generation {g}",
                rec.gen
            )))
        }
        None => {
            return Err(rolled_back(format!(
                "checkpoint generation {}, sled holds none",
                rec.gen
            )))
        }
    }
    let next_seq = sled_next_seq(tree)?;
    if next_seq < rec.next_seq {
        return Err(rolled_back(format!(
            "event counter {}, sled holds {next_seq}",
            rec.next_seq
        )));
    }
    Ok(())
}

/// sled's own recovery writes to its files while it opens (it zeroes its log past the point
/// where it stopped reading, writes a snapshot, removes blobs it does not reach), so a
/// rolled-back sled is rewritten before it can be checked. Databases with a checkpoint
/// record and a `db` file up to this size are kept aside before sled opens them and put
/// back when the open fails with `CORRUPTION`; larger ones are checked the same way but a
/// failed open leaves what sled's recovery changed (README, Known limits).
pub(crate) const PRESERVE_UP_TO: u64 = 32 * 1024 * 1024;

const PRESERVE_PREFIX: &str = "sledcheck.pre.";

/// Copies of sled's files made before sled opens them (see [`PRESERVE_UP_TO`]).
pub(crate) struct Preserved {
    dir: std::path::PathBuf,
    db_dir: std::path::PathBuf,
    /// Names of the files kept (in `dir`, blobs under `dir/blobs`).
    files: Vec<std::ffi::OsString>,
    blobs: Option<Vec<std::ffi::OsString>>,
}

fn sled_file(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n == "db" || n == "conf" || n.starts_with("snap.")
}

fn names(
    dir: &Path,
    keep: impl Fn(&std::ffi::OsStr) -> bool,
) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() && keep(&e.file_name()) {
            out.push(e.file_name());
        }
    }
    Ok(out)
}

/// Before sled opens `path`: keeps sled's files aside when the database has a checkpoint
/// record, its `db` file is at most [`PRESERVE_UP_TO`] and the disk has room; else `None`.
/// Leftovers of an earlier open that did not finish are removed first.
pub(crate) fn preserve(path: &Path) -> Option<Preserved> {
    if !path.join(FILE).exists() {
        return None;
    }
    // Another process holds the database (sled's lock is a `flock` on `db`): open fails
    // with DATABASE_IN_USE, nothing to keep.
    let db_file = File::open(path.join("db")).ok()?;
    let lock =
        nix::fcntl::Flock::lock(db_file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()?;
    drop(lock);
    if let Ok(list) = std::fs::read_dir(path) {
        for e in list.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(PRESERVE_PREFIX) else {
                continue;
            };
            // Left by an open that did not finish (its process is gone).
            if !Path::new("/proc").join(pid).exists() || pid == std::process::id().to_string() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let size = std::fs::metadata(path.join("db")).ok()?.len();
    if size > PRESERVE_UP_TO || free_bytes(path)? < size + 64 * 1024 * 1024 {
        return None;
    }
    let dir = path.join(format!("{PRESERVE_PREFIX}{}", std::process::id()));
    let made = (|| -> std::io::Result<Preserved> {
        std::fs::create_dir(&dir)?;
        let files = names(path, sled_file)?;
        for n in &files {
            if n == "db" || n == "conf" {
                std::fs::copy(path.join(n), dir.join(n))?;
            } else {
                // sled replaces snapshots and never rewrites one: a link keeps it.
                std::fs::hard_link(path.join(n), dir.join(n))?;
            }
        }
        let blobs = match names(&path.join("blobs"), |_| true) {
            Ok(b) => {
                std::fs::create_dir(dir.join("blobs"))?;
                for n in &b {
                    std::fs::hard_link(path.join("blobs").join(n), dir.join("blobs").join(n))?;
                }
                Some(b)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Preserved {
            dir: dir.clone(),
            db_dir: path.to_path_buf(),
            files,
            blobs,
        })
    })();
    match made {
        Ok(p) => Some(p),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&dir);
            None
        }
    }
}

fn free_bytes(path: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

impl Preserved {
    /// The open went on: the copies are not needed.
    pub(crate) fn discard(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The open failed after sled ran its recovery (sled's handles dropped): puts sled's
    /// files back as they were. Returns `err`, noting when putting back failed.
    pub(crate) fn restore(self, err: Error) -> Error {
        match self.put_back() {
            Ok(()) => match err {
                Error::Corruption { tree, key, detail } => Error::Corruption {
                    tree,
                    key,
                    detail: format!("{detail}; nothing was changed, every file is as it was"),
                },
                other => other,
            },
            Err(e) => match err {
                Error::Corruption { tree, key, detail } => Error::Corruption {
                    tree,
                    key,
                    detail: format!(
                        "{detail}; putting sled's files back as they were failed ({e}): \
                         the copies are in {}",
                        self.dir.display()
                    ),
                },
                other => other,
            },
        }
    }

    fn put_back(&self) -> std::io::Result<()> {
        let p = &self.db_dir;
        for n in names(p, sled_file)? {
            if !self.files.contains(&n) {
                std::fs::remove_file(p.join(&n))?;
            }
        }
        for n in &self.files {
            std::fs::rename(self.dir.join(n), p.join(n))?;
        }
        if let Some(blobs) = &self.blobs {
            let bdir = p.join("blobs");
            for n in names(&bdir, |_| true).unwrap_or_default() {
                if !blobs.contains(&n) {
                    std::fs::remove_file(bdir.join(&n))?;
                }
            }
            for n in blobs {
                if !bdir.join(n).exists() {
                    std::fs::rename(self.dir.join("blobs").join(n), bdir.join(n))?;
                }
            }
            File::open(&bdir)?.sync_all()?;
        }
        std::fs::remove_dir_all(&self.dir)?;
        File::open(p)?.sync_all()
    }
}

#[cfg(test)]
mod tests;
