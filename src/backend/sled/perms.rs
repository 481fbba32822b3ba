//! Who may read the database: its directory and every file in it are private to the owner
//! (directories 0700, files 0600) unless `Builder::share_with_group` opens them to the
//! group for reading (0750, 0640).
//!
//! sled creates its files (`conf`, `db`, `blobs/*`, snapshots) with the process umask, so
//! the modes are set explicitly rather than left to it: the directory at creation (before
//! sled writes anything into it), every path under it right after sled opens (which also
//! tightens a database created by an older version or under a looser setting), journal
//! segments as they are created, and blob files when a checkpoint first fsyncs them. The
//! directory's own mode is what keeps others out in the window before a new file's mode is
//! set. A path not owned by this user (chmod fails with `EPERM`) is left as it is: whoever
//! shared it with us decided its mode. Sockets (the control socket, 0600 by itself) and
//! symlinks are not touched.

use std::fs::{File, Metadata, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::model::error::{Error, Result};

/// The mode of directories for files of `file_mode`: search permission wherever read is
/// granted (0600 -> 0700, 0640 -> 0750).
pub(crate) fn dir_mode(file_mode: u32) -> u32 {
    file_mode | ((file_mode & 0o444) >> 2)
}

fn not_ours(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
}

/// Sets `path`'s mode (its metadata `meta`) to `mode` unless it already has it.
fn set(path: &Path, meta: &Metadata, mode: u32) -> io::Result<()> {
    if meta.permissions().mode() & 0o7777 == mode {
        return Ok(());
    }
    match std::fs::set_permissions(path, Permissions::from_mode(mode)) {
        Err(e) if not_ours(&e) => Ok(()),
        // Removed meanwhile (sled drops blobs and old snapshots): nothing to protect.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Sets an open file's mode (`fchmod`).
pub(crate) fn set_file(file: &File, mode: u32) -> io::Result<()> {
    match file.set_permissions(Permissions::from_mode(mode)) {
        Err(e) if not_ours(&e) => Ok(()),
        r => r,
    }
}

/// Creates the directory `path` (its parents as usual) with `mode`, or gives an existing one
/// that mode.
pub(crate) fn ensure_dir(path: &Path, mode: u32) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if let Err(e) = std::fs::DirBuilder::new().mode(mode).create(path) {
        if !(e.kind() == io::ErrorKind::AlreadyExists && path.is_dir()) {
            return Err(e);
        }
    }
    // Created under the umask (or made earlier): set the exact mode.
    set(path, &std::fs::symlink_metadata(path)?, mode)
}

/// Gives `root` and everything under it the modes for `file_mode` (see the module docs).
pub(crate) fn tighten_tree(root: &Path, file_mode: u32) -> Result<()> {
    walk(root, file_mode).map_err(|e| {
        Error::storage(
            format!("setting the permissions of the files in {}", root.display()),
            e,
        )
    })
}

fn walk(path: &Path, file_mode: u32) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        set(path, &meta, dir_mode(file_mode))?;
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) if not_ours(&e) || e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            walk(&entry?.path(), file_mode)?;
        }
        Ok(())
    } else if kind.is_file() {
        set(path, &meta, file_mode)
    } else {
        // Sockets (the control socket), symlinks, anything else: left alone.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_get_search_where_files_get_read() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o640), 0o750);
        assert_eq!(dir_mode(0o644), 0o755);
    }
}
