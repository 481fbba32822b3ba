//! A worker pool frozen for longer than its lease (SIGSTOP: a long GC pause, a suspended
//! VM) must not, when it wakes up, run the jobs it had claimed ahead whose leases expired
//! meanwhile and that another process has completed since: a completed job never runs
//! again.
//!
//! The child process runs a pool (one handler thread, 8 jobs claimed ahead, 1 s lease) on a
//! backlog of 10 jobs and logs each handler start. Once the first job runs, the parent
//! freezes the child, lets the leases expire, completes every job itself, wakes the child
//! and watches what it starts.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg;
use jobspool::{JobId, JobStatus, NewJob, Spool, WorkerPool};

const ROLE_ENV: &str = "JOBSPOOL_PGPOOL_CHILD";
const URL_ENV: &str = "JOBSPOOL_PGPOOL_URL";
const SCHEMA_ENV: &str = "JOBSPOOL_PGPOOL_SCHEMA";
const TEST: &str = "a_pool_waking_from_a_freeze_does_not_run_completed_jobs";
const KIND: &str = "freeze.job";
const LEASE: Duration = Duration::from_secs(1);

fn open(url: &str, schema: &str, maintenance: bool) -> Spool {
    Spool::builder()
        .schema(schema)
        .maintenance(maintenance)
        .maintenance_interval(Duration::from_millis(100))
        .scheduler(false)
        .open(url)
        .unwrap()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

#[test]
fn a_pool_waking_from_a_freeze_does_not_run_completed_jobs() {
    if std::env::var(ROLE_ENV).is_ok() {
        return child();
    }
    let Some(url) = pg::url_or_skip(TEST) else {
        return;
    };
    let schema = pg::unique_schema("freeze");
    let spool = open(&url, &schema, true);
    let jobs: Vec<JobId> = spool
        .enqueue_batch((0..10).map(|_| NewJob::new(KIND, Vec::new())).collect())
        .unwrap()
        .into_iter()
        .map(|e| e.job.id)
        .collect();
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--include-ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env(ROLE_ENV, "pool")
        .env(URL_ENV, &url)
        .env(SCHEMA_ENV, &schema)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<JobId>();
    let out = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(id) = common::heard(&line).and_then(|m| m.strip_prefix("run ")) {
                let _ = tx.send(id.parse().unwrap());
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child ran a job");
    signal(c.id(), "STOP");
    // The child holds the first job (running) and up to 8 claimed ahead.
    let held = spool.stats().unwrap().total.running;
    assert!(held >= 2, "the child claimed ahead: {held} running");

    // Once their leases expire, this process takes every job over and completes it.
    let mut done = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut req = spool.claim_request(10);
    req.lease_ms = 60_000;
    while done.len() < jobs.len() {
        assert!(Instant::now() < deadline, "took over only {done:?}");
        for c in spool.claim_wait(&req, Duration::from_millis(200)).unwrap() {
            spool.complete(c.lease, None).unwrap();
            done.insert(c.job.id);
        }
    }
    for id in &jobs {
        assert_eq!(spool.get(*id).unwrap().status, JobStatus::Completed);
    }

    // Wake the child: it may finish the handler it was in, but must start nothing else.
    let woke = Instant::now();
    signal(c.id(), "CONT");
    let mut started_after = Vec::new();
    while woke.elapsed() < Duration::from_secs(3) {
        if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
            started_after.push(id);
        }
    }
    c.kill().unwrap();
    c.wait().unwrap();
    reader.join().unwrap();
    assert!(
        started_after.is_empty(),
        "after waking, the pool started {} completed job(s) ({held} were held when it froze; \
         the first, {first}, was running): {started_after:?}",
        started_after.len()
    );
    for id in &jobs {
        let job = spool.get(*id).unwrap();
        let successes = job
            .executions
            .iter()
            .filter(|e| e.success == Some(true))
            .count();
        assert_eq!(successes, 1, "{job:?}");
    }
    spool.close().unwrap();
    let _ = pg::psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

fn child() {
    let spool = open(
        &std::env::var(URL_ENV).unwrap(),
        &std::env::var(SCHEMA_ENV).unwrap(),
        false,
    );
    let _pool = WorkerPool::builder(&spool)
        .concurrency(1)
        .prefetch(8)
        .lease(LEASE)
        .handler(KIND, |ctx| {
            common::say(&format!("run {}", ctx.job().id));
            std::thread::sleep(Duration::from_millis(300));
            Ok(None)
        })
        .start()
        .unwrap();
    // Killed by the parent.
    std::thread::sleep(Duration::from_secs(120));
}
