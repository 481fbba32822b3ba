//! Crash safety of enqueue: a child process enqueues from 4 threads under
//! `Immediate`, printing each acknowledged id, and is killed with SIGKILL at a random point.
//! On reopen every acknowledged id must exist and be pending, the counters must match the
//! records, and the event log must be contiguous from 1 with one `job.enqueued` per job.
//!
//! The test re-runs its own test binary as the child (selected by an environment variable).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{all_events, all_jobs, assert_contiguous_from_one, db_path, heard, say, tempdir, Rng};
use jobspool::{Durability, Event, JobId, JobStatus, ListQuery, NewJob, Spool};

const TEST_NAME: &str = "acknowledged_enqueues_survive_sigkill_of_the_process";
const ROLE: &str = "enqueue-until-killed";
const ITERATIONS: usize = 5;

/// Child mode: enqueue forever from 4 threads, printing every acknowledged id.
fn child() -> ! {
    let path = std::env::var(common::CHILD_DB_ENV).expect("db path");
    let spool = Spool::builder()
        .durability(Durability::Immediate)
        .maintenance(false)
        .scheduler(false)
        .open(path)
        .expect("child: open");
    say("READY");
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                let (mut rng, _) = Rng::from_time();
                let mut rng = Rng::new(rng.next_u64() ^ (t + 1).wrapping_mul(0x9E37_79B9));
                loop {
                    let len = rng.range(0, 2048) as usize;
                    if t == 3 {
                        // One thread uses the batch form: all three ids are acknowledged
                        // together.
                        let jobs = spool
                            .enqueue_batch(
                                (0..3)
                                    .map(|_| NewJob::new("crash.batch", rng.bytes(len)))
                                    .collect(),
                            )
                            .expect("child: enqueue_batch");
                        for j in jobs {
                            say(&format!("ID {}", j.id));
                        }
                    } else {
                        let j = spool
                            .enqueue(NewJob::new("crash.one", rng.bytes(len)).priority(t as i32))
                            .expect("child: enqueue");
                        say(&format!("ID {}", j.id));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    // A writer thread died; the parent sees the stream end early and fails.
    std::process::exit(3);
}

/// Runs one child, kills it after `target` acknowledged ids, and returns every id it
/// acknowledged (including lines still in the pipe when it died).
fn run_child_until(path: &std::path::Path, target: usize) -> Vec<JobId> {
    let mut child = common::spawn_child(TEST_NAME, ROLE, path);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ids = Vec::new();
    let mut ready = false;
    let mut killed = false;
    while !killed {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match heard(&line) {
                Some("READY") => ready = true,
                Some(msg) => {
                    if let Some(id) = msg.strip_prefix("ID ") {
                        ids.push(id.parse::<JobId>().expect("an id line"));
                        if ids.len() >= target {
                            child.kill().expect("SIGKILL");
                            killed = true;
                        }
                    }
                }
                None => {}
            },
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "child stopped early or stalled ({e:?}) after {} of {target} ids (ready: \
                     {ready})",
                    ids.len()
                );
            }
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die from SIGKILL, not exit on its own: {status:?}"
    );
    // Lines written before the kill are acknowledged ids too.
    reader.join().expect("reader thread");
    for line in rx.try_iter() {
        if let Some(id) = heard(&line).and_then(|m| m.strip_prefix("ID ")) {
            ids.push(id.parse().expect("an id line"));
        }
    }
    ids
}

#[test]
fn acknowledged_enqueues_survive_sigkill_of_the_process() {
    if common::child_role().as_deref() == Some(ROLE) {
        child();
    }
    let started = Instant::now();
    let (mut rng, seed) = Rng::from_time();
    eprintln!("crash_enqueue seed: {seed}");
    let dir = tempdir();
    let path = db_path(&dir);
    let mut acknowledged: HashSet<JobId> = HashSet::new();

    for iteration in 0..ITERATIONS {
        let target = rng.range(50, 400) as usize;
        let ids = run_child_until(&path, target);
        assert!(ids.len() >= target);
        let fresh: HashSet<JobId> = ids.iter().copied().collect();
        assert_eq!(fresh.len(), ids.len(), "ids are unique");
        acknowledged.extend(fresh);

        let spool = Spool::builder()
            .maintenance(false)
            .scheduler(false)
            .open(&path)
            .unwrap_or_else(|e| panic!("reopen after SIGKILL (iteration {iteration}): {e}"));
        for id in &acknowledged {
            let j = spool.get(*id).unwrap_or_else(|e| {
                panic!("iteration {iteration}: acknowledged job {id} lost after SIGKILL: {e}")
            });
            assert_eq!(j.status, JobStatus::Pending, "{id}");
        }
        let jobs = all_jobs(&spool, &ListQuery::default());
        let listed: HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(listed.len(), jobs.len(), "list returns each job once");
        assert!(listed.is_superset(&acknowledged));
        // Unacknowledged jobs may have made it too, but only whole.
        let stats = spool.stats().unwrap();
        assert_eq!(
            stats.total.pending,
            jobs.len() as u64,
            "stats.pending must equal the jobs found by list"
        );
        assert_eq!(common::total_jobs(&stats), jobs.len() as u64);
        assert!(jobs.iter().all(|j| j.status == JobStatus::Pending));

        let events = all_events(&spool);
        assert_contiguous_from_one(&events);
        assert_eq!(spool.last_seq(), events.len() as u64);
        let enqueued: HashSet<JobId> = events
            .iter()
            .map(|e| match &e.event {
                Event::JobEnqueued { job_id, .. } => *job_id,
                other => panic!("only job.enqueued expected, got {other:?}"),
            })
            .collect();
        assert_eq!(
            enqueued, listed,
            "each stored job has exactly its job.enqueued event (same atomic step)"
        );
        assert_eq!(events.len(), jobs.len());
        spool.close().unwrap();
        drop(spool);
        eprintln!(
            "iteration {iteration}: killed after {} acked ids (target {target}); {} jobs stored",
            ids.len(),
            jobs.len()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
