//! Crash harness: the test binary re-runs itself as a child that enqueues (single and
//! batch), claims, completes, fails, cancels, fires schedules and prunes from several
//! threads, logging every acknowledged operation to a side file (O_APPEND + fsync). The
//! parent kills it with SIGKILL at a random moment, reopens, and checks the contract:
//! every acknowledged job exists and acknowledged outcomes stuck; no job is left running;
//! stats agree with the records; no completed job ran again; schedule ticks fired at most
//! once; the event log has no gaps.
//!
//! Iterations are bounded by time: `JOBSPOOL_CRASH_SECS` (default 30). The seed of each
//! iteration is printed; `JOBSPOOL_CRASH_SEED` replays one.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{child_role, Rng, CHILD_DB_ENV};
use jobspool::{Event, JobId, JobStatus, ListQuery, NewJob, NewSchedule, Retention, Retry, Spool};

const TEST: &str = "killed_mixed_workload_keeps_every_guarantee";

/// The child runs the scheduler thread; the parent must not (a tick firing between its
/// reads would make them disagree).
fn open(path: &Path, scheduler: bool) -> Spool {
    Spool::builder()
        .maintenance(false)
        .scheduler(scheduler)
        // Nothing is old enough to prune within a run: prune runs, and must remove nothing.
        .retention(Retention {
            completed: Duration::from_secs(3600),
            ..Retention::default()
        })
        .default_backoff(jobspool::Backoff {
            initial: std::time::Duration::from_millis(1),
            multiplier: 1.0,
            max: std::time::Duration::from_millis(1),
            jitter: 0.0,
        })
        // Small journal segments: kills land between seals, rolls and trims too.
        .journal_segment_bytes(64 * 1024)
        .open(path)
        .expect("open")
}

/// The side file: one line per acknowledged operation, appended and fsync'd before the
/// next operation of that thread starts.
struct Log(std::sync::Mutex<std::fs::File>);

impl Log {
    fn line(&self, s: &str) {
        let mut f = self.0.lock().expect("log lock");
        writeln!(f, "{s}").expect("log write");
        f.sync_data().expect("log fsync");
    }
}

fn child() -> ! {
    let db = PathBuf::from(std::env::var(CHILD_DB_ENV).expect("db path"));
    let seed: u64 = std::env::var("JOBSPOOL_CRASH_CHILD_SEED")
        .expect("seed")
        .parse()
        .expect("seed");
    let log = Arc::new(Log(std::sync::Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(db.with_extension("acks"))
            .expect("side file"),
    )));
    let spool = open(&db, true);
    // Every second, so ticks fire while the child runs.
    let _ = spool
        .create_schedule(NewSchedule::new("tick", "* * * * * *", "tick").payload(b"{}".to_vec()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let (spool, log, stop) = (spool.clone(), log.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed ^ (t + 1).wrapping_mul(0x9E37_79B9));
            while !stop.load(Ordering::Relaxed) {
                match rng.range(0, 9) {
                    0..=2 => {
                        let j = spool
                            .enqueue(NewJob::new("work", rng.bytes(64)).max_attempts(5))
                            .expect("enqueue");
                        log.line(&format!("enq {}", j.id));
                    }
                    3 => {
                        let jobs = (0..rng.range(2, 6))
                            .map(|_| NewJob::new("work", vec![1]).max_attempts(5))
                            .collect();
                        for j in spool.enqueue_batch(jobs).expect("batch") {
                            log.line(&format!("enq {}", j.id));
                        }
                    }
                    4..=6 => {
                        let req = jobspool::ClaimRequest {
                            kinds: vec!["work".into(), "tick".into()],
                            ..spool.claim_request(3)
                        };
                        for c in spool.claim(&req).expect("claim") {
                            log.line(&format!("ran {} {}", c.job.id, c.job.attempts));
                            let r = if rng.range(0, 4) == 0 {
                                spool.fail(c.lease, "flaky", Retry::Backoff).map(|_| "fail")
                            } else {
                                spool
                                    .complete(c.lease, Some(b"ok".to_vec()))
                                    .map(|_| "done")
                            };
                            if let Ok(what) = r {
                                log.line(&format!("{what} {} {}", c.job.id, c.job.attempts));
                            }
                        }
                    }
                    7 => {
                        let j = spool
                            .enqueue(NewJob::new("work", vec![2]).delay(Duration::from_secs(3600)))
                            .expect("enqueue");
                        log.line(&format!("enq {}", j.id));
                        spool.cancel(j.id).expect("cancel");
                        log.line(&format!("cancel {}", j.id));
                    }
                    8 => {
                        spool.prune().expect("prune");
                    }
                    _ => {
                        spool.fire_due_schedules().expect("fire");
                    }
                }
            }
        }));
    }
    // The parent kills us; this only bounds a child left alone.
    std::thread::sleep(Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    std::process::exit(0)
}

fn run_iteration(dir: &Path, seed: u64) {
    let db = dir.join(format!("db-{seed}"));
    let mut rng = Rng::new(seed);
    let mut child = std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_ENV, "mixed")
        .env(CHILD_DB_ENV, &db)
        .env("JOBSPOOL_CRASH_CHILD_SEED", seed.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    // Kill after a random number of acknowledged operations (or a time bound).
    let want = rng.range(20, 600) as usize;
    let acks = db.with_extension("acks");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = std::fs::read_to_string(&acks)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n >= want || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1 + rng.range(0, 5)));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let spool = open(&db, false);
    // The side file may end in a torn line (killed mid-write): only whole lines count.
    let text = std::fs::read(&acks).unwrap_or_default();
    let lines: Vec<String> = BufReader::new(&text[..])
        .lines()
        .map_while(Result::ok)
        .filter(|l| {
            l.split(' ').count() >= 2 && l.split(' ').nth(1).is_some_and(|id| id.len() == 36)
        })
        .collect();
    let jobs = spool
        .list(&ListQuery {
            limit: Some(10_000),
            ..ListQuery::default()
        })
        .expect("list");
    let by_id: HashMap<JobId, &jobspool::Job> = jobs.iter().map(|j| (j.id, j)).collect();
    let mut done: BTreeMap<JobId, u32> = BTreeMap::new();
    for l in &lines {
        let mut parts = l.split(' ');
        let (what, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let id: JobId = id.parse().expect("id in side file");
        let job = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("seed {seed}: acknowledged job {id} ({what}) lost"));
        match what {
            "done" => {
                let attempt: u32 = parts.next().and_then(|a| a.parse().ok()).expect("attempt");
                assert_eq!(
                    job.status,
                    JobStatus::Completed,
                    "seed {seed}: acked completion of {id} lost: {job:?}"
                );
                assert_eq!(
                    job.attempts, attempt,
                    "seed {seed}: completed job {id} ran again"
                );
                done.insert(id, attempt);
            }
            "cancel" => assert_eq!(
                job.status,
                JobStatus::Cancelled,
                "seed {seed}: acked cancel of {id} lost"
            ),
            _ => {}
        }
    }
    // A completed job never runs again: no "ran" line after its acknowledged completion.
    for l in &lines {
        let mut parts = l.split(' ');
        if parts.next() == Some("ran") {
            let id: JobId = parts.next().unwrap_or("").parse().expect("id");
            let attempt: u32 = parts.next().and_then(|a| a.parse().ok()).expect("attempt");
            if let Some(done_at) = done.get(&id) {
                assert!(
                    attempt <= *done_at,
                    "seed {seed}: {id} ran attempt {attempt} after completing at {done_at}"
                );
            }
        }
    }
    // Recovery: nothing is left running; attempts and executions agree.
    let mut counted: BTreeMap<JobStatus, u64> = BTreeMap::new();
    for j in &jobs {
        assert_ne!(
            j.status,
            JobStatus::Running,
            "seed {seed}: {} left running after recovery",
            j.id
        );
        let counted_attempts = j.executions.iter().filter(|e| !e.released).count() as u32;
        assert_eq!(
            counted_attempts, j.attempts,
            "seed {seed}: executions of {} disagree: {j:?}",
            j.id
        );
        *counted.entry(j.status).or_default() += 1;
    }
    // Stats counters agree with the records.
    let stats = spool.stats().expect("stats").total;
    for s in JobStatus::ALL {
        assert_eq!(
            stats.of(s),
            counted.get(&s).copied().unwrap_or(0),
            "seed {seed}: stats {s}"
        );
    }
    // The event log: contiguous from 1; every tick fired at most once.
    let mut events = Vec::new();
    loop {
        let page = spool
            .events_since(events.len() as u64, 5000)
            .expect("events");
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seed {seed}: event log gap");
    }
    let mut ticks = BTreeSet::new();
    for e in &events {
        if let Event::SchedulerJobTriggered {
            next_run_at,
            job_id,
            ..
        } = &e.event
        {
            assert!(
                ticks.insert(*next_run_at),
                "seed {seed}: a tick fired twice ({next_run_at:?})"
            );
            assert!(
                by_id.contains_key(job_id),
                "seed {seed}: the job of a fired tick is missing"
            );
        }
    }
    spool.close().expect("close");
}

#[test]
fn killed_mixed_workload_keeps_every_guarantee() {
    if child_role().as_deref() == Some("mixed") {
        child();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Duration::from_secs(
        std::env::var("JOBSPOOL_CRASH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let seeds: Vec<u64> = match std::env::var("JOBSPOOL_CRASH_SEED") {
        Ok(s) => vec![s.parse().expect("JOBSPOOL_CRASH_SEED")],
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            (0..10_000u64)
                .map(|i| base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                .collect()
        }
    };
    let start = Instant::now();
    let mut runs = 0;
    for seed in seeds {
        if runs > 0 && start.elapsed() > budget {
            break;
        }
        eprintln!("crash_mixed: seed {seed} (replay with JOBSPOOL_CRASH_SEED={seed})");
        run_iteration(dir.path(), seed);
        runs += 1;
    }
    eprintln!(
        "crash_mixed: {runs} kills survived in {:?}",
        start.elapsed()
    );
    assert!(runs >= 1);
}
