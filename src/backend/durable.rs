//! The fsync calls of the sled backend's journal and checkpoint, through one place.
//!
//! Normally each function here is the plain system call. With the `failpoints` feature, each
//! also records what the call made durable in a "durable image" kept beside the live files
//! of one tracked database directory, for the power-loss test: only what an fsync covered
//! is in the image, and [`power::restore`] puts the image in place of the live files, as if
//! the power had been cut (the page cache lost). The model:
//!
//! - a journal segment's content is what the file held at its last `fdatasync`;
//! - a journal segment exists (or is gone) as of the last fsync of the journal directory;
//! - sled's own files (written by sled, not through here) are what they were when the
//!   checkpoint's fsync of sled's data file returned: a copy taken right then;
//! - the checkpoint record is what it was at the last fsync of the database directory (it is
//!   fsync'd before its rename, and the rename is made durable by that directory fsync).
//!
//! So removing the journal's `fdatasync` leaves acknowledged groups out of the image, and
//! removing the checkpoint's fsync of sled leaves sled's image behind the journal segments
//! the checkpoint deleted: the power-loss test notices both.

use std::fs::File;
use std::io;
use std::path::Path;

/// `fdatasync` of a journal segment at `path`.
pub(crate) fn sync_segment(file: &File, path: &Path) -> io::Result<()> {
    file.sync_data()?;
    #[cfg(feature = "failpoints")]
    power::segment_synced(path);
    #[cfg(not(feature = "failpoints"))]
    let _ = path;
    Ok(())
}

/// fsync of a directory (the journal's, or the database directory).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    #[cfg(feature = "failpoints")]
    power::dir_synced(dir);
    Ok(())
}

/// The checkpoint's `fdatasync` of sled's data file (sled flushed just before), for the
/// database at `db_dir`.
pub(crate) fn sync_sled(data_file: &File, db_dir: &Path) -> io::Result<()> {
    data_file.sync_data()?;
    #[cfg(feature = "failpoints")]
    power::sled_synced(db_dir);
    #[cfg(not(feature = "failpoints"))]
    let _ = db_dir;
    Ok(())
}

/// The durable image and the power cut (feature `failpoints`).
#[cfg(feature = "failpoints")]
pub mod power {
    use std::collections::{BTreeMap, BTreeSet};
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};

    use parking_lot::Mutex;

    use crate::backend::sled::journal::DIR as JOURNAL;
    use crate::backend::sled::sledcheck::FILE as RECORD;

    /// What survives a power cut of the tracked database directory.
    struct Image {
        root: PathBuf,
        /// Set by [`cut`]: later fsyncs change nothing.
        cut: bool,
        /// Journal segment content as of its last fdatasync, by file name.
        content: BTreeMap<OsString, Vec<u8>>,
        /// Segments whose directory entry is durable.
        linked: BTreeSet<OsString>,
        /// sled's files (relative path, bytes) as of the last checkpoint fsync.
        sled: Vec<(PathBuf, Vec<u8>)>,
        /// The checkpoint record as of the last database directory fsync.
        record: Option<Vec<u8>>,
    }

    static IMAGE: Mutex<Option<Image>> = Mutex::new(None);

    /// Starts keeping the durable image of the database directory `root` (which must not
    /// exist yet, or be empty: the image starts empty). Forgets any earlier one.
    pub fn track(root: &Path) {
        *IMAGE.lock() = Some(Image {
            root: root.to_path_buf(),
            cut: false,
            content: BTreeMap::new(),
            linked: BTreeSet::new(),
            sled: Vec::new(),
            record: None,
        });
    }

    /// Cuts the power: fsyncs from now on make nothing more durable. Returns false if
    /// nothing is tracked.
    pub fn cut() -> bool {
        match IMAGE.lock().as_mut() {
            Some(img) => {
                img.cut = true;
                true
            }
            None => false,
        }
    }

    /// Replaces the tracked directory's files with the durable image (call after the
    /// handle is closed or dropped) and stops tracking.
    ///
    /// # Errors
    /// The filesystem's error if a file cannot be removed or written.
    pub fn restore() -> std::io::Result<()> {
        let Some(img) = IMAGE.lock().take() else {
            return Ok(());
        };
        let journal = img.root.join(JOURNAL);
        for entry in std::fs::read_dir(&img.root)? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        for (rel, bytes) in &img.sled {
            let path = img.root.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        if let Some(rec) = &img.record {
            std::fs::write(img.root.join(RECORD), rec)?;
        }
        if !img.linked.is_empty() {
            std::fs::create_dir_all(&journal)?;
        }
        for name in &img.linked {
            let bytes = img.content.get(name).map_or(&[][..], Vec::as_slice);
            std::fs::write(journal.join(name), bytes)?;
        }
        Ok(())
    }

    /// Runs `f` on the image if `path` is inside the tracked directory and the power is on.
    fn with(path: &Path, f: impl FnOnce(&mut Image)) {
        let mut guard = IMAGE.lock();
        if let Some(img) = guard.as_mut() {
            if !img.cut && path.starts_with(&img.root) {
                f(img);
            }
        }
    }

    pub(super) fn segment_synced(path: &Path) {
        with(path, |img| {
            if let (Some(name), Ok(bytes)) = (path.file_name(), std::fs::read(path)) {
                img.content.insert(name.to_os_string(), bytes);
            }
        });
    }

    pub(super) fn dir_synced(dir: &Path) {
        with(dir, |img| {
            if dir == img.root.join(JOURNAL) {
                let names: BTreeSet<OsString> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                img.content.retain(|n, _| names.contains(n));
                img.linked = names;
            } else if dir == img.root {
                if let Ok(bytes) = std::fs::read(dir.join(RECORD)) {
                    img.record = Some(bytes);
                }
            }
        });
    }

    pub(super) fn sled_synced(db_dir: &Path) {
        with(db_dir, |img| {
            let mut files = Vec::new();
            copy_sled(&img.root, Path::new(""), &mut files);
            img.sled = files;
        });
    }

    /// Reads every file under `root/rel` except the journal and the checkpoint record.
    fn copy_sled(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let rel = rel.join(&name);
            if rel == Path::new(JOURNAL) || name.to_string_lossy().starts_with(RECORD) {
                continue;
            }
            let path = root.join(&rel);
            if path.is_dir() {
                copy_sled(root, &rel, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((rel, bytes));
            }
        }
    }
}
