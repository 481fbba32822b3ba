//! Power loss: only what an fsync covered survives (feature `failpoints`).
//!
//! A SIGKILL keeps the page cache, so the crash tests cannot notice a missing fsync. Here the
//! library keeps a durable image of the database directory beside the live files
//! (`jobspool::faults::power`): a journal segment as of its last `fdatasync`, segments and
//! the checkpoint record as of their directory's last fsync, sled's files as of the
//! checkpoint's fsync of sled. Each round runs a workload of Immediate enqueues, claims and
//! completions on several threads, cuts the power at a random moment (covering checkpoints
//! and segment rolls), replaces the files with the durable image, reopens and checks that
//! every acknowledged enqueue is there and every acknowledged completion is still done.
//!
//! Each round prints its seed; `JOBSPOOL_POWER_SEED=<seed>` replays that round's workload
//! (thread timing still varies), `JOBSPOOL_POWER_ROUNDS=<n>` runs more rounds.
//!
//! Run: `cargo test --features failpoints --test power_loss`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{db_path, tempdir, Rng};
use jobspool::faults::power;
use jobspool::{JobId, JobStatus, NewJob, Spool};

/// What the workload was told before the cut.
#[derive(Default)]
struct Acked {
    enqueued: Vec<JobId>,
    completed: Vec<JobId>,
}

fn open(path: &std::path::Path) -> Spool {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .journal_segment_bytes(64 * 1024)
        .open(path)
        .unwrap_or_else(|e| panic!("reopen after the power cut: {e}"))
}

/// One round: workload, cut after `run_ms`, restore the durable image, reopen, check.
/// Odd seeds run past the first checkpoint (one a second), so they cover its trimming of
/// the journal; even ones may cut anywhere.
fn round(seed: u64) {
    let mut rng = Rng::new(seed);
    let run_ms = if seed % 2 == 1 {
        rng.range(1100, 2600)
    } else {
        rng.range(20, 2600)
    };
    let payload = rng.range(16, 600) as usize;
    let dir = tempdir();
    let path = db_path(&dir);
    power::track(&path);
    let spool = open(&path);
    let cut = AtomicBool::new(false);
    let acked = Mutex::new(Acked::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (spool, cut, acked) = (spool.clone(), &cut, &acked);
            let mut rng = Rng::new(seed ^ (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            s.spawn(move || {
                while !cut.load(Ordering::SeqCst) {
                    let job = NewJob::new("p", rng.bytes(payload));
                    let Ok(e) = spool.enqueue(job) else { break };
                    // An answer that came after the cut may not be covered by the image.
                    if !cut.load(Ordering::SeqCst) {
                        acked.lock().unwrap().enqueued.push(e.id);
                    }
                }
            });
        }
        let (worker, cut, acked) = (spool.clone(), &cut, &acked);
        s.spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok(claimed) = worker.claim(&worker.claim_request(4)) else {
                    break;
                };
                for c in claimed {
                    let id = c.job.id;
                    if worker.complete(c.lease, Some(b"ok".to_vec())).is_ok()
                        && !cut.load(Ordering::SeqCst)
                    {
                        acked.lock().unwrap().completed.push(id);
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(run_ms));
        // Order matters: the image stops first, then the acknowledgements; an answer
        // recorded before the flag was set came from an fsync before the cut.
        assert!(power::cut(), "the image was tracked");
        cut.store(true, Ordering::SeqCst);
    });
    let elapsed = start.elapsed();
    drop(spool);
    power::restore().expect("writing the durable image");

    let acked = acked.into_inner().unwrap();
    eprintln!(
        "seed {seed}: cut after {} ms ({} enqueues, {} completions acknowledged)",
        elapsed.as_millis(),
        acked.enqueued.len(),
        acked.completed.len()
    );
    let spool = open(&path);
    let mut lost = Vec::new();
    for id in &acked.enqueued {
        match spool.get(*id) {
            Ok(_) => {}
            Err(e) => lost.push(format!("{id}: {e}")),
        }
    }
    let mut undone = Vec::new();
    for id in &acked.completed {
        match spool.get(*id) {
            Ok(job) if job.status == JobStatus::Completed => {}
            Ok(job) => undone.push(format!("{id}: {:?}", job.status)),
            Err(e) => undone.push(format!("{id}: {e}")),
        }
    }
    assert!(
        lost.is_empty() && undone.is_empty(),
        "seed {seed} (replay: JOBSPOOL_POWER_SEED={seed}): after the power cut {} of {} \
         acknowledged enqueues are gone (first: {:?}) and {} of {} acknowledged completions \
         are not completed (first: {:?})",
        lost.len(),
        acked.enqueued.len(),
        lost.first(),
        undone.len(),
        acked.completed.len(),
        undone.first()
    );
    spool.close().unwrap();
}

#[test]
fn acknowledged_work_survives_a_power_cut() {
    if let Ok(seed) = std::env::var("JOBSPOOL_POWER_SEED") {
        round(seed.parse().expect("JOBSPOOL_POWER_SEED is a number"));
        return;
    }
    let rounds: u64 = std::env::var("JOBSPOOL_POWER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let (mut rng, seed) = Rng::from_time();
    eprintln!("power_loss: rounds from seed {seed}");
    for i in 0..rounds {
        // Alternate: every other round runs past a checkpoint.
        round((rng.next_u64() & !1) | (i % 2));
    }
}
