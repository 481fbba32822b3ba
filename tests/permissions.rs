//! The database's directory and files are private to their owner (0700 / 0600) whatever the
//! umask, or readable by the group with `Builder::share_with_group` (0750 / 0640).
//!
//! The umask is process-wide, so these tests live in their own test binary, and every test
//! in it sets the same one (000, the loosest: sled would create world-writable files under
//! it) and never restores it: tests running in parallel here cannot disturb each other.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jobspool::{NewJob, Spool};
use nix::sys::stat::{umask, Mode};

mod common;

/// Every path under `root` (itself included) with its mode, sockets left out.
fn modes(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(root).unwrap();
    if meta.file_type().is_socket() {
        return out;
    }
    out.push((
        root.to_path_buf(),
        meta.is_dir(),
        meta.permissions().mode() & 0o7777,
    ));
    if meta.is_dir() {
        for entry in std::fs::read_dir(root).unwrap() {
            out.extend(modes(&entry.unwrap().path()));
        }
    }
    out
}

fn assert_modes(root: &Path, dir: u32, file: u32) {
    let all = modes(root);
    let names: Vec<String> = all
        .iter()
        .map(|(p, _, _)| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    // What there is to protect: sled's files, the journal and its segments (where the
    // payloads are), the holder record.
    for want in ["conf", "db", "blobs", "journal"] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("journal/wal-")),
        "no journal segment: {names:?}"
    );
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { dir } else { file })
        .map(|(p, is_dir, mode)| {
            format!(
                "{} ({}) is {mode:o}",
                p.display(),
                if *is_dir { "dir" } else { "file" }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "expected directories {dir:o} and files {file:o}: {wrong:#?}"
    );
}

/// Opens `path`, enqueues a small and a large (blob-sized) payload, closes (a checkpoint).
fn fill(path: &Path, shared: bool) {
    let spool = Spool::builder()
        .share_with_group(shared)
        .open(path)
        .unwrap();
    spool.enqueue(NewJob::new("t", b"small".to_vec())).unwrap();
    spool
        .enqueue(NewJob::new("t", vec![7u8; 512 * 1024]))
        .unwrap();
    spool.close().unwrap();
}

fn loosen(root: &Path) {
    for (p, is_dir, _) in modes(root) {
        let mode = if is_dir { 0o777 } else { 0o666 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn database_files_are_private_to_the_owner_by_default() {
    umask(Mode::empty());
    let dir = common::tempdir();
    let path = dir.path().join("db");
    fill(&path, false);
    assert_modes(&path, 0o700, 0o600);

    // A database left with loose modes (an older version, under umask 000) is tightened
    // when it is opened.
    loosen(&path);
    let spool = Spool::open(&path).unwrap();
    assert_modes(&path, 0o700, 0o600);
    spool.close().unwrap();
    assert_modes(&path, 0o700, 0o600);
}

#[test]
fn database_files_shared_with_the_group_are_group_readable_only() {
    umask(Mode::empty());
    let dir = common::tempdir();
    let path = dir.path().join("db");
    fill(&path, true);
    assert_modes(&path, 0o750, 0o640);

    // Reopened without the option: private again.
    fill(&path, false);
    assert_modes(&path, 0o700, 0o600);
}
