//! The filesystem goes read-only under a running spool: writes fail with STORAGE, the handle
//! is poisoned, and after the filesystem is writable again and the database reopened,
//! nothing acknowledged is lost.
//!
//! A plain `mount -o remount,ro` is refused (EBUSY) while any file is open for writing, which
//! a running spool always has (its journal and sled's files), for tmpfs and bind mounts
//! alike. What does turn a filesystem read-only under open files is the kernel itself after
//! an error, with ext4's `errors=remount-ro`: so the test makes a small ext4 image, mounts
//! it through a loop device with that option, runs a workload, and triggers an ext4 error
//! (`/sys/fs/ext4/<dev>/trigger_fs_error`): the kernel remounts it read-only and aborts its
//! journal (what was not fsync'd is lost, as in a crash). Then: unmount, `e2fsck`, mount
//! again, reopen, check. Meanwhile: writes and `stats` get STORAGE (the handle is
//! poisoned), `get` still answers from the durable state it holds, and `close` reports
//! STORAGE (sled panics in its own flush as its last handle drops on a read-only
//! filesystem: `close` turns that into the error).
//!
//! Needs root (mount, loop devices, sysfs), so it is `#[ignore]`d; `.ci/run` runs it with
//! `cargo test --test readonly_remount -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jobspool::{Error, JobId, JobStatus, NewJob, Spool};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{cmd} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn mount(img: &Path, at: &Path) -> Result<Mount, String> {
    run(
        "mount",
        &[
            "-o",
            "loop,errors=remount-ro",
            &img.to_string_lossy(),
            &at.to_string_lossy(),
        ],
    )?;
    Ok(Mount(at.to_path_buf()))
}

/// Whether the filesystem at `at` refuses to create a file with "read-only file system".
/// (Since Linux 6.x an ext4 turned read-only by an error shows `rw,...,emergency_ro` in
/// /proc/mounts, so try instead.)
fn read_only(at: &Path) -> bool {
    let probe = at.join("probe");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            false
        }
        Err(e) => e.raw_os_error() == Some(30), // EROFS
    }
}

fn open(path: &Path) -> Result<Spool, Error> {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .journal_segment_bytes(1024 * 1024)
        .open(path)
}

/// Runs `f` on a thread of its own and fails the test if it takes over `secs` (a call that
/// hangs on the broken filesystem is a failure too, not a stuck test run).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not return within {secs} s"))
}

#[test]
#[ignore = "needs root to mount an ext4 image on a loop device; .ci/run runs it with --ignored"]
fn a_filesystem_gone_read_only_fails_writes_with_storage_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(96 * 1024 * 1024))
        .unwrap();
    // Only run when asked for (`--ignored`), so a tool or a mount that fails is a failure.
    run("mkfs.ext4", &["-q", "-F", &img.to_string_lossy()])
        .unwrap_or_else(|e| panic!("the readonly_remount test needs mkfs.ext4: {e}"));
    let m = mount(&img, &mnt)
        .unwrap_or_else(|e| panic!("the readonly_remount test needs root to mount: {e}"));
    let source = run("findmnt", &["-n", "-o", "SOURCE", &mnt.to_string_lossy()]).unwrap();
    let dev = Path::new(&source)
        .file_name()
        .expect("a device name")
        .to_string_lossy()
        .to_string();
    let trigger = PathBuf::from(format!("/sys/fs/ext4/{dev}/trigger_fs_error"));
    assert!(trigger.exists(), "no {}", trigger.display());

    let db = mnt.join("db");
    let spool = open(&db).unwrap();
    let mut acked: Vec<JobId> = Vec::new();
    let mut completed: Vec<JobId> = Vec::new();
    for i in 0..300 {
        let j = spool
            .enqueue(NewJob::new("ro", vec![7u8; 512]).meta("i", i.to_string()))
            .unwrap();
        acked.push(j.id);
        if i % 3 == 0 {
            for c in spool.claim(&spool.claim_request(2)).unwrap() {
                let id = c.job.id;
                spool.complete(c.lease, None).unwrap();
                completed.push(id);
            }
        }
    }
    // Past a checkpoint (one a second), so sled's files hold part of it too.
    std::thread::sleep(Duration::from_millis(1200));
    let seen = spool.get(acked[0]).unwrap();

    // The kernel turns the filesystem read-only under the open files.
    std::fs::write(&trigger, "jobspool readonly_remount test").unwrap();
    assert!(read_only(&mnt), "the filesystem did not go read-only");

    let s = spool.clone();
    let err = within(30, "an enqueue on the read-only filesystem", move || {
        s.enqueue(NewJob::new("ro", b"x".to_vec())).unwrap_err()
    });
    assert_eq!(err.code(), "STORAGE", "{err}");
    // The handle is poisoned: every later write, and stats, report STORAGE until reopened.
    let again = spool.enqueue(NewJob::new("ro", b"y".to_vec())).unwrap_err();
    assert_eq!(again.code(), "STORAGE", "{again}");
    assert!(again.to_string().contains("reopen"), "{again}");
    assert_eq!(spool.stats().unwrap_err().code(), "STORAGE");
    let claim = spool.claim(&spool.claim_request(1)).unwrap_err();
    assert_eq!(claim.code(), "STORAGE", "{claim}");
    // Reads of records still answer from what the handle holds (durable state only).
    assert_eq!(spool.get(acked[0]).unwrap(), seen);
    let s = spool.clone();
    let closed = within(30, "close on the read-only filesystem", move || s.close());
    assert!(closed.is_err(), "close reports the failure: {closed:?}");
    drop(spool);

    // Writable again: unmount, repair the filesystem, mount, reopen.
    drop(m);
    // e2fsck exits 1 when it fixed something: fine.
    let fsck = Command::new("e2fsck")
        .args(["-f", "-y", &img.to_string_lossy()])
        .output()
        .expect("running e2fsck");
    assert!(
        matches!(fsck.status.code(), Some(0 | 1)),
        "e2fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let _m = mount(&img, &mnt).unwrap();
    assert!(!read_only(&mnt));
    let spool = open(&db).unwrap();
    for id in &acked {
        let j = spool
            .get(*id)
            .unwrap_or_else(|e| panic!("acknowledged job {id} lost: {e}"));
        if completed.contains(id) {
            assert_eq!(j.status, JobStatus::Completed, "{id}");
        }
    }
    let j = spool.enqueue(NewJob::new("after", b"{}".to_vec())).unwrap();
    assert_eq!(spool.get(j.id).unwrap().kind, "after");
    spool.close().unwrap();
}
