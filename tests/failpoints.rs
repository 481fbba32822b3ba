//! Every failpoint of the sled backend's write path (feature `failpoints`).
//!
//! For each name in `jobspool::faults::FAILPOINTS`, set to return an injected I/O error
//! (and, on the background threads and the writer, to panic): a workload of Immediate
//! enqueues, claims and completions gets `STORAGE`, the handle stays poisoned (the next
//! write fails too, with the failpoint off), and after reopening nothing acknowledged is
//! lost. An operation answered with an error is never shown done by the failed handle; after
//! the reopen it may or may not have happened (its entry may have reached the journal), but
//! never half. A full disk (`ENOSPC`) is injected in the middle of a group written by
//! several threads (half the entry reaches the file) and at a segment roll. `fail`'s
//! configuration is process-wide, so the tests take a lock and run one at a time.
//!
//! Run: `cargo test --features failpoints --test failpoints`.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{db_path, tempdir};
use jobspool::faults::FAILPOINTS;
use jobspool::{ErrorCode, JobId, JobStatus, NewJob, Spool};

/// `fail`'s configuration is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn open(path: &std::path::Path) -> jobspool::Result<Spool> {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .journal_segment_bytes(64 * 1024)
        .open(path)
}

/// What the workload was told.
#[derive(Default, Debug)]
struct Seen {
    enqueued: Vec<JobId>,
    completed: Vec<JobId>,
    /// Completions answered with an error.
    failed_completions: Vec<JobId>,
    /// The first error.
    error: Option<jobspool::Error>,
}

/// One step: an enqueue of 1 KiB (so segments fill and roll), and every third step a
/// claim of two jobs and their completion. Returns false after the first error.
fn step(spool: &Spool, i: usize, seen: &mut Seen) -> bool {
    match spool.enqueue(NewJob::new("f", vec![i as u8; 1024])) {
        Ok(e) => seen.enqueued.push(e.id),
        Err(e) => {
            seen.error = Some(e);
            return false;
        }
    }
    if i % 3 != 0 {
        return true;
    }
    let claimed = match spool.claim(&spool.claim_request(2)) {
        Ok(c) => c,
        Err(e) => {
            seen.error = Some(e);
            return false;
        }
    };
    for c in claimed {
        let id = c.job.id;
        match spool.complete(c.lease, None) {
            Ok(_) => seen.completed.push(id),
            Err(e) => {
                seen.failed_completions.push(id);
                seen.error.get_or_insert(e);
            }
        }
    }
    seen.error.is_none()
}

/// Runs `action` at failpoint `name` against a fresh database; panics with what went wrong.
fn check(name: &str, action: &str) {
    let what = format!("failpoint {name} = {action}");
    let dir = tempdir();
    let path = db_path(&dir);
    let mut seen = Seen::default();
    let spool = open(&path).unwrap();
    for i in 0..20 {
        assert!(
            step(&spool, i, &mut seen),
            "{what}: before the failpoint: {seen:?}"
        );
    }

    fail::cfg(name, action).unwrap();
    if name == "open-replay" {
        spool.close().unwrap();
        let err = open(&path).err();
        fail::remove(name);
        let err = err.unwrap_or_else(|| panic!("{what}: open succeeded"));
        assert_eq!(err.code(), ErrorCode::Storage, "{what}: {err}");
        return verify(&what, &path, &seen);
    }
    // Until the failure shows: at once on the writer's path, within a checkpoint (1 s) on
    // the background threads.
    let until = Instant::now() + Duration::from_secs(5);
    let mut i = 20;
    while Instant::now() < until && step(&spool, i, &mut seen) {
        i += 1;
    }
    fail::remove(name);
    let err = seen
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no error after {i} steps"));
    assert_eq!(err.code(), ErrorCode::Storage, "{what}: {err}");

    // Poisoned: the next write fails too, though the failpoint is off now.
    let again = spool.enqueue(NewJob::new("f", b"after".to_vec()));
    let again = again.expect_err("the handle must stay poisoned after a storage failure");
    assert_eq!(again.code(), ErrorCode::Storage, "{what}: after: {again}");
    // The failed handle never shows a failed completion as done.
    for id in &seen.failed_completions {
        if let Ok(job) = spool.get(*id) {
            assert_ne!(job.status, JobStatus::Completed, "{what}: {id} shown done");
        }
    }
    let _ = spool.close();
    verify(&what, &path, &seen);
}

/// Reopens (every failpoint off) and checks that nothing acknowledged is lost.
fn verify(what: &str, path: &std::path::Path, seen: &Seen) {
    let spool = open(path).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    for id in &seen.enqueued {
        let job = spool
            .get(*id)
            .unwrap_or_else(|e| panic!("{what}: {id} lost: {e}"));
        if seen.completed.contains(id) {
            assert_eq!(job.status, JobStatus::Completed, "{what}: {id} not done");
        }
    }
    let stats = spool.stats().unwrap();
    let total = stats.total.pending + stats.total.running + stats.total.completed;
    assert!(
        total >= seen.enqueued.len() as u64 && total <= seen.enqueued.len() as u64 + 1,
        "{what}: {total} jobs after reopen, {} acknowledged (at most one more was attempted)",
        seen.enqueued.len()
    );
    spool.close().unwrap();
}

#[test]
fn every_failpoint_gives_storage_and_loses_nothing_acknowledged() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(FAILPOINTS.len() >= 9, "{FAILPOINTS:?}");
    for name in FAILPOINTS {
        check(name, "return");
        if *name != "open-replay" {
            // A panic on the thread that runs the step (open panics in the caller).
            check(name, "panic");
        }
        eprintln!("failpoint {name}: ok");
    }
}

/// A full disk at `name`, hit by four threads enqueueing at once (so the failing group holds
/// several callers): every caller of the failed group gets STORAGE naming the full disk, the
/// handle stays poisoned, and the reopen (the half-written entry is a torn tail, not damage)
/// keeps every acknowledged job.
fn disk_full_at(name: &str) {
    let dir = tempdir();
    let path = db_path(&dir);
    let spool = open(&path).unwrap();
    for i in 0..10 {
        spool.enqueue(NewJob::new("f", vec![i; 1024])).unwrap();
    }
    fail::cfg(name, "return(enospc)").unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    let results: Vec<(Vec<JobId>, Option<jobspool::Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let spool = spool.clone();
                s.spawn(move || {
                    let mut acked = Vec::new();
                    while Instant::now() < until {
                        match spool.enqueue(NewJob::new("f", vec![t; 1024])) {
                            Ok(e) => acked.push(e.id),
                            Err(e) => return (acked, Some(e)),
                        }
                    }
                    (acked, None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    fail::remove(name);
    let mut acked = Vec::new();
    for (ids, err) in results {
        acked.extend(ids);
        let err = err.unwrap_or_else(|| panic!("{name}: a thread saw no error"));
        assert_eq!(err.code(), ErrorCode::Storage, "{name}: {err}");
    }
    let after = spool
        .enqueue(NewJob::new("f", b"after".to_vec()))
        .unwrap_err();
    assert!(
        after.to_string().contains("os error 28"),
        "{name}: the poisoned handle names the full disk: {after}"
    );
    let _ = spool.close();
    let spool = open(&path).unwrap_or_else(|e| panic!("{name}: reopen after a full disk: {e}"));
    for id in &acked {
        spool
            .get(*id)
            .unwrap_or_else(|e| panic!("{name}: {id} lost: {e}"));
    }
    let stats = spool.stats().unwrap();
    assert!(
        stats.total.pending >= 10 + acked.len() as u64,
        "{name}: {stats:?}"
    );
    spool.close().unwrap();
}

#[test]
fn a_full_disk_in_a_group_or_at_a_segment_roll_loses_nothing_acknowledged() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    disk_full_at("journal-append");
    disk_full_at("journal-roll");
}
