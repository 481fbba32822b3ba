//! Readers never see what a crash takes back: writers enqueue, claim and complete while
//! reader threads list, read stats and follow the event log, recording the most advanced
//! thing each saw (a job seen, a job seen completed, the stats' completed and total counts,
//! the last event seq). After the crash and a reopen, nothing seen may be gone: every job
//! seen exists, every job seen completed is still completed, the counts are at least those
//! seen, the event log reaches the last seq seen. (A job seen running may come back pending:
//! the crash lost that attempt, which recovery counts as failed.)
//!
//! Two crashes:
//! - SIGKILL: the test binary re-runs itself as a child that runs the workload and prints
//!   each observation (after the read returned) to its stdout pipe, which the parent reads;
//!   the parent kills it at a random moment. A SIGKILL keeps the page cache, so this catches
//!   reads of what was never written, not reads ahead of the fsync.
//! - A power cut (feature `failpoints`, like `tests/power_loss.rs`): the workload runs in
//!   this process while the library keeps the durable image of the database (only what an
//!   fsync covered); at a random moment the power is cut, the image replaces the files, and
//!   the database is reopened. This one catches a reader shown a group before its fsync.
//!
//! Each round prints its seed; `JOBSPOOL_READERS_SEED=<seed>` replays that round's workload
//! (thread timing still varies), `JOBSPOOL_READERS_ROUNDS=<n>` runs more rounds.
//! Run the power cuts with `cargo test --features failpoints --test crash_readers`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{child_role, heard, say, Rng, CHILD_DB_ENV};
use jobspool::{Event, JobId, JobStatus, ListQuery, NewJob, Spool};

const TEST: &str = "after_a_sigkill_nothing_a_reader_saw_is_taken_back";
const SEED_ENV: &str = "JOBSPOOL_READERS_CHILD_SEED";

/// The most advanced of everything the readers saw.
#[derive(Default)]
struct Seen {
    /// Job -> seen completed.
    jobs: HashMap<JobId, bool>,
    completed: u64,
    total: u64,
    seq: u64,
    lines: usize,
}

impl Seen {
    /// Takes one observation line: `J <id> c|l`, `S <completed> <total>`, `E <seq>`.
    fn note(&mut self, line: &str) {
        let mut w = line.split(' ');
        match (w.next(), w.next(), w.next()) {
            (Some("J"), Some(id), Some(how)) => {
                let id: JobId = id.parse().expect("a job id");
                *self.jobs.entry(id).or_default() |= how == "c";
            }
            (Some("S"), Some(c), Some(t)) => {
                self.completed = self.completed.max(c.parse().expect("a count"));
                self.total = self.total.max(t.parse().expect("a count"));
            }
            (Some("E"), Some(seq), None) => {
                self.seq = self.seq.max(seq.parse().expect("a seq"));
            }
            _ => panic!("not an observation: {line:?}"),
        }
        self.lines += 1;
    }

    /// What the reopened `spool` took back of what was seen.
    fn taken_back(&self, spool: &Spool) -> Vec<String> {
        let mut out = Vec::new();
        for (id, completed) in &self.jobs {
            match spool.get(*id) {
                Ok(j) if *completed && j.status != JobStatus::Completed => {
                    out.push(format!("job {id} was seen completed, is {:?}", j.status));
                }
                Ok(_) => {}
                Err(e) => out.push(format!("job {id} was seen, is gone: {e}")),
            }
        }
        let stats = spool.stats().expect("stats");
        let t = &stats.total;
        let total = t.pending + t.running + t.completed + t.failed + t.cancelled + t.dead_letter;
        if t.completed < self.completed || total < self.total {
            out.push(format!(
                "stats were seen at {} completed of {} jobs, are {} of {total}",
                self.completed, self.total, t.completed
            ));
        }
        let last = spool.last_seq();
        let at = spool
            .events_since(self.seq.saturating_sub(1), 1)
            .expect("events");
        if self.seq > 0 && (last < self.seq || at.first().map(|e| e.seq) != Some(self.seq)) {
            out.push(format!(
                "the event log was seen at seq {}, reaches {last}",
                self.seq
            ));
        }
        out
    }
}

fn open(path: &Path) -> Spool {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        // Small journal segments: crashes land between seals, rolls and trims too.
        .journal_segment_bytes(64 * 1024)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// Runs writers (two producers, a worker that claims and completes) and three readers on
/// `spool` until `stop` is set or `report` refuses an observation. `report` gets each
/// observation after the read that made it returned.
fn workload(spool: &Spool, seed: u64, stop: &AtomicBool, report: &(dyn Fn(&str) -> bool + Sync)) {
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let mut rng = Rng::new(seed ^ (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = rng.range(1, 5) as usize;
                    let jobs = (0..n)
                        .map(|_| {
                            let len = rng.range(8, 200) as usize;
                            NewJob::new("r", rng.bytes(len))
                        })
                        .collect();
                    if spool.enqueue_batch(jobs).is_err() {
                        break;
                    }
                }
            });
        }
        s.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok(claimed) = spool.claim(&spool.claim_request(8)) else {
                    break;
                };
                for c in claimed {
                    if spool.complete(c.lease, None).is_err() {
                        return;
                    }
                }
            }
        });
        // Completed jobs, in id order (about completion order), and the running ones.
        s.spawn(move || {
            let mut after = None;
            while !stop.load(Ordering::SeqCst) {
                let q = ListQuery {
                    status: Some(JobStatus::Completed),
                    after,
                    limit: Some(200),
                    ..ListQuery::default()
                };
                let Ok(page) = spool.list(&q) else { break };
                for j in &page {
                    if !report(&format!("J {} c", j.id)) {
                        return;
                    }
                    after = Some(j.id);
                }
                let q = ListQuery {
                    status: Some(JobStatus::Running),
                    limit: Some(20),
                    ..ListQuery::default()
                };
                let Ok(page) = spool.list(&q) else { break };
                for j in &page {
                    if !report(&format!("J {} l", j.id)) {
                        return;
                    }
                }
            }
        });
        // The event log, followed.
        s.spawn(move || {
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) {
                let Ok(events) = spool.events_since(seq, 200) else {
                    break;
                };
                for e in &events {
                    let line = match &e.event {
                        Event::JobEnqueued { job_id, .. } => format!("J {job_id} l"),
                        Event::JobCompleted { job_id, .. } => format!("J {job_id} c"),
                        _ => continue,
                    };
                    if !report(&line) {
                        return;
                    }
                }
                if let Some(last) = events.last() {
                    seq = last.seq;
                    if !report(&format!("E {seq}")) {
                        return;
                    }
                }
            }
        });
        // The counters.
        s.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok(stats) = spool.stats() else { break };
                let t = &stats.total;
                let total =
                    t.pending + t.running + t.completed + t.failed + t.cancelled + t.dead_letter;
                if !report(&format!("S {} {total}", t.completed)) {
                    return;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
    });
}

fn rounds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("JOBSPOOL_READERS_SEED") {
        return vec![seed.parse().expect("JOBSPOOL_READERS_SEED is a number")];
    }
    let n: u64 = std::env::var("JOBSPOOL_READERS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let (mut rng, seed) = Rng::from_time();
    eprintln!("crash_readers: rounds from seed {seed}");
    (0..n).map(|_| rng.next_u64()).collect()
}

/// The child: the workload until it is killed, each observation printed.
fn child(db: &Path, seed: u64) -> ! {
    let spool = open(db);
    say("ready");
    let stop = AtomicBool::new(false);
    workload(&spool, seed, &stop, &|line| {
        say(line);
        true
    });
    panic!("the workload stopped before the kill");
}

fn sigkill_round(seed: u64) {
    let mut rng = Rng::new(seed);
    let run_ms = rng.range(200, 1500);
    let dir = common::tempdir();
    let path = common::db_path(&dir);
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    let mut kid = cmd
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_ENV, "readers")
        .env(CHILD_DB_ENV, &path)
        .env(SEED_ENV, seed.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawning the child");
    let out = kid.stdout.take().expect("the child's stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let mut seen = Seen::default();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            match heard(&line) {
                Some("ready") => {
                    let _ = ready_tx.send(());
                }
                Some(obs) => seen.note(obs),
                None => {}
            }
        }
        seen
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child never opened the database");
    std::thread::sleep(Duration::from_millis(run_ms));
    kid.kill().expect("SIGKILL the child");
    let _ = kid.wait();
    // Everything the child printed before it died is still in the pipe.
    let seen = listener.join().expect("the listener");
    let spool = open(&path);
    let lost = seen.taken_back(&spool);
    eprintln!(
        "seed {seed}: killed after {run_ms} ms; {} observations, {} jobs seen, seq {}",
        seen.lines,
        seen.jobs.len(),
        seen.seq
    );
    assert!(
        lost.is_empty(),
        "seed {seed} (replay: JOBSPOOL_READERS_SEED={seed}): after the SIGKILL, {} things \
         readers saw are taken back, first: {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        !seen.jobs.is_empty() || run_ms < 500,
        "seed {seed}: the readers saw nothing"
    );
    spool.close().expect("close");
}

#[test]
fn after_a_sigkill_nothing_a_reader_saw_is_taken_back() {
    if child_role().is_some() {
        let db = std::path::PathBuf::from(std::env::var(CHILD_DB_ENV).expect("db path"));
        let seed = std::env::var(SEED_ENV)
            .expect("seed")
            .parse()
            .expect("seed");
        child(&db, seed);
    }
    for seed in rounds() {
        sigkill_round(seed);
    }
}

#[cfg(feature = "failpoints")]
mod power_cut {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use jobspool::faults::power;

    use super::common::{db_path, tempdir, Rng};
    use super::{open, rounds, workload, Seen};

    /// One round: workload and readers, power cut after a random time, the durable image
    /// in place, reopen, check.
    fn round(seed: u64) {
        let mut rng = Rng::new(seed);
        // Half the rounds run past the first checkpoint (one a second) and its trimming.
        let run_ms = if seed % 2 == 1 {
            rng.range(1100, 2000)
        } else {
            rng.range(50, 1000)
        };
        let dir = tempdir();
        let path = db_path(&dir);
        power::track(&path);
        let spool = open(&path);
        let stop = AtomicBool::new(false);
        // Observations, and whether the power is cut: an observation is recorded only
        // while holding the lock with the power on, so its read returned before the cut.
        let seen: Mutex<(Seen, bool)> = Mutex::new((Seen::default(), false));
        std::thread::scope(|s| {
            s.spawn(|| {
                workload(&spool, seed, &stop, &|line| {
                    let mut g = seen.lock().unwrap();
                    if g.1 {
                        return false;
                    }
                    g.0.note(line);
                    true
                });
            });
            std::thread::sleep(Duration::from_millis(run_ms));
            {
                let mut g = seen.lock().unwrap();
                assert!(power::cut(), "the image was tracked");
                g.1 = true;
            }
            stop.store(true, Ordering::SeqCst);
        });
        drop(spool);
        power::restore().expect("writing the durable image");
        let (seen, _) = seen.into_inner().unwrap();
        let spool = open(&path);
        let lost = seen.taken_back(&spool);
        eprintln!(
            "seed {seed}: power cut after {run_ms} ms; {} observations, {} jobs seen, seq {}",
            seen.lines,
            seen.jobs.len(),
            seen.seq
        );
        assert!(
            lost.is_empty(),
            "seed {seed} (replay: JOBSPOOL_READERS_SEED={seed}): after the power cut, {} \
             things readers saw are taken back, first: {:?}",
            lost.len(),
            lost.first()
        );
        spool.close().expect("close");
    }

    #[test]
    fn after_a_power_cut_nothing_a_reader_saw_is_taken_back() {
        for seed in rounds() {
            round(seed);
        }
    }
}
