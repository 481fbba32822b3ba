//! Disk full: on a small tmpfs (mounted by the test, so it needs root: it is `#[ignore]`d and
//! `.ci/run` runs it with `cargo test --test disk_full -- --ignored`), operations fail with
//! STORAGE, nothing acknowledged is lost, and the queue works again after space is freed and
//! the database is reopened.

use std::path::Path;
use std::process::Command;

use jobspool::{Error, ListQuery, NewJob, Spool};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mount(at.to_path_buf()))
    } else {
        Err(format!(
            "mount failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn open(path: &Path) -> Result<Spool, Error> {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(path)
}

#[test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it with --ignored"]
fn disk_full_fails_with_storage_instead_of_hanging_in_sled_flush_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let _mount = match mount_tmpfs(&mnt, "24m") {
        Ok(m) => m,
        // Only run when asked for (`--ignored`), so a mount that fails is a failure.
        Err(why) => panic!("the disk_full test needs root to mount a tmpfs: {why}"),
    };
    let db = mnt.join("db");
    // Ballast: most of the space, freed later.
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![0u8; 12 * 1024 * 1024]).unwrap();

    let spool = open(&db).unwrap();
    let payload = vec![7u8; 32 * 1024];
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..2000 {
        match spool.enqueue(NewJob::new("fill", payload.clone()).meta("i", i.to_string())) {
            Ok(j) => acked.push(j.id),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled up");
    assert_eq!(failure.code(), "STORAGE", "{failure}");
    assert!(
        failure.to_string().contains("disk full"),
        "the message says what happened: {failure}"
    );
    assert!(!acked.is_empty());
    // The handle keeps reporting STORAGE until reopened.
    let again = spool.enqueue(NewJob::new("fill", vec![1])).unwrap_err();
    assert_eq!(again.code(), "STORAGE", "{again}");
    assert_eq!(spool.stats().unwrap_err().code(), "STORAGE");
    let _ = spool.close();
    drop(spool);

    std::fs::remove_file(&ballast).unwrap();
    let spool = open(&db).unwrap();
    for id in &acked {
        let j = spool
            .get(*id)
            .unwrap_or_else(|e| panic!("acknowledged job {id} lost: {e}"));
        assert_eq!(j.payload.len(), payload.len());
    }
    let listed = spool
        .list(&ListQuery {
            limit: Some(10_000),
            ..ListQuery::default()
        })
        .unwrap();
    assert!(listed.len() >= acked.len());
    assert_eq!(spool.stats().unwrap().total.pending, listed.len() as u64);
    let j = spool.enqueue(NewJob::new("after", b"{}".to_vec())).unwrap();
    assert_eq!(spool.get(j.id).unwrap().kind, "after");
    spool.close().unwrap();
}
