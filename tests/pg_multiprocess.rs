//! Many processes on one PostgreSQL schema, some killed with SIGKILL at random while
//! producers enqueue: every acknowledged job completes exactly once, no completion lands
//! under a stale or expired lease, fencing tokens are never reused, no job runs in two
//! processes at once under leases that hold, and the event log stays contiguous.
//!
//! The test re-runs its own binary as the children (selected by [`ROLE_ENV`]): producers
//! enqueue and log each acknowledged job; half the workers use the pull API and log every
//! claim (with the times around the claim call), the end of each run and the outcome of
//! each completion (one run in 40 overruns its lease on purpose, so stale completions
//! happen and must be refused); the other half run a `WorkerPool` (batched completions,
//! extended leases) whose handler logs its start and end. `pg_multiprocess/check.rs` reads
//! the logs and checks them.
//!
//! Every random choice comes from one seed, printed; `JOBSPOOL_PG_SEED=N` replays it (the
//! processes' timing still varies, the verdict must not).

#[path = "pg_multiprocess/check.rs"]
mod check;
mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use check::Logs;
use common::pg;
use jobspool::{Backoff, ErrorCode, Event, JobId, JobStatus, NewJob, Spool, WorkerPool};

const ROLE_ENV: &str = "JOBSPOOL_PGMP_ROLE";
const URL_ENV: &str = "JOBSPOOL_PGMP_URL";
const SCHEMA_ENV: &str = "JOBSPOOL_PGMP_SCHEMA";
const LOG_ENV: &str = "JOBSPOOL_PGMP_LOG";
const SEED_ENV: &str = "JOBSPOOL_PG_SEED";
/// The pool workers' prefetch (jobs claimed ahead of free handlers).
const PREFETCH_ENV: &str = "JOBSPOOL_PGMP_PREFETCH";

/// The lease workers claim with.
const LEASE_MS: u64 = 1500;
/// The pool workers' lease (extended every third of it while a job runs).
const POOL_LEASE: Duration = Duration::from_secs(5);
/// How long one pool worker is frozen (SIGSTOP) mid-load: past its lease.
const PAUSE: Duration = Duration::from_millis(6500);
/// Jobs each producer process enqueues.
const PER_PRODUCER: usize = 120;
const PRODUCERS: usize = 2;
/// Worker processes of each kind (pull API, worker pool).
const WORKERS: usize = 2;
/// How long the parent kills children at random.
const CHAOS: Duration = Duration::from_secs(10);
/// How long the survivors have to finish every acknowledged job after that.
const DRAIN: Duration = Duration::from_secs(40);
const KIND: &str = "mp.job";

/// A spool of a child or the parent on the test's schema, with a real clock.
fn open(url: &str, schema: &str, maintenance: bool) -> Spool {
    Spool::builder()
        .schema(schema)
        .maintenance(maintenance)
        .maintenance_interval(Duration::from_millis(200))
        .scheduler(false)
        .open(url)
        .expect("opening the spool on PostgreSQL")
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Sends `sig` (a `kill` signal name) to `pid`.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// A child's log: one `write` of one whole line each.
struct Log(std::fs::File);

impl Log {
    fn open(path: &Path) -> Log {
        Log(OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap())
    }
    fn line(&mut self, s: String) {
        self.0.write_all(format!("{s}\n").as_bytes()).unwrap();
    }
}

#[test]
fn killed_workers_lose_no_job_and_no_stale_completion_lands() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return child(&role);
    }
    scenario(
        "killed_workers_lose_no_job_and_no_stale_completion_lands",
        false,
    );
}

/// The same, and one pool worker is frozen (SIGSTOP) for longer than its lease mid-load:
/// others take its jobs over, and when it wakes up, what it completes must be refused and
/// it must not start a job it had claimed before the freeze (a completed job never runs
/// again).
#[test]
fn a_frozen_pool_wakes_up_without_running_a_completed_job() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return child(&role);
    }
    scenario(
        "a_frozen_pool_wakes_up_without_running_a_completed_job",
        true,
    );
}

/// Runs the chaos on a fresh schema and checks the children's logs; `freeze`: also freeze
/// one pool worker past its lease.
#[allow(clippy::too_many_lines)]
fn scenario(test: &str, freeze: bool) {
    let Some(url) = pg::url_or_skip(test) else {
        return;
    };
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| common::Rng::from_time().1);
    eprintln!("{test}: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = common::Rng::new(seed);
    let schema = pg::unique_schema("mp");
    let spool = open(&url, &schema, false);
    let dir = common::tempdir();

    let mut next_id = 0usize;
    let mut spawn = |role: &str, rng: &mut common::Rng| -> (String, Child) {
        next_id += 1;
        let name = format!("{role}-{next_id}");
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role)
            .env(URL_ENV, &url)
            .env(SCHEMA_ENV, &schema)
            .env(LOG_ENV, dir.path().join(format!("{name}.log")))
            .env(SEED_ENV, rng.next_u64().to_string())
            // Frozen with many jobs claimed ahead, the pool has some to start on waking.
            .env(PREFETCH_ENV, if freeze { "32" } else { "4" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        (name, child)
    };
    let mut producers: Vec<(String, Child)> = (0..PRODUCERS)
        .map(|_| spawn("producer", &mut rng))
        .collect();
    let mut workers: Vec<(String, Child)> = (0..WORKERS)
        .flat_map(|_| ["worker", "pool"])
        .map(|role| spawn(role, &mut rng))
        .collect();

    // Chaos: kill a random child now and then (a producer one time in four) and start a
    // replacement; a killed producer's replacement enqueues a fresh set of jobs.
    // (child, time just before its SIGKILL).
    let mut kills: Vec<(String, u64)> = Vec::new();
    // Also freeze one pool worker past its lease (SIGSTOP, SIGCONT): others take its jobs
    // over, and what it completes when it wakes up must be refused. (child, time just
    // before its SIGSTOP).
    let mut pauses: Vec<(String, u64)> = Vec::new();
    // (child, time just before its SIGCONT).
    let mut wakes: Vec<(String, u64)> = Vec::new();
    // The frozen child: pid, name, when to wake it.
    let mut frozen: Option<(u32, String, Instant)> = None;
    let start = Instant::now();
    let chaos_end = start + CHAOS;
    while Instant::now() < chaos_end {
        std::thread::sleep(Duration::from_millis(rng.range(300, 1200)));
        if freeze && pauses.is_empty() && start.elapsed() >= Duration::from_millis(1500) {
            let (name, c) = workers.iter().find(|(n, _)| n.starts_with("pool")).unwrap();
            pauses.push((name.clone(), now_ms()));
            signal(c.id(), "STOP");
            frozen = Some((c.id(), name.clone(), Instant::now() + PAUSE));
            continue;
        }
        if let Some((pid, name, until)) = &frozen {
            if Instant::now() >= *until {
                wakes.push((name.clone(), now_ms()));
                signal(*pid, "CONT");
                frozen = None;
            }
        }
        let group = if rng.range(0, 3) == 0 && !producers.is_empty() {
            &mut producers
        } else {
            &mut workers
        };
        let i = usize::try_from(rng.range(0, group.len() as u64 - 1)).unwrap();
        if frozen.as_ref().is_some_and(|f| f.1 == group[i].0) {
            continue; // left frozen until it wakes up
        }
        let (name, mut victim) = group.swap_remove(i);
        // The role is the name's prefix; a replacement has the same.
        let role = name.split('-').next().unwrap().to_owned();
        match victim.try_wait().unwrap() {
            None => {
                kills.push((name, now_ms()));
                victim.kill().unwrap();
                victim.wait().unwrap();
                group.push(spawn(&role, &mut rng));
            }
            // A producer done with its jobs.
            Some(status) if role == "producer" => {
                assert!(status.success(), "producer {name} failed: {status}");
            }
            Some(status) => panic!("worker {name} exited on its own: {status}"),
        }
    }
    if let Some((pid, name, until)) = frozen {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        wakes.push((name, now_ms()));
        signal(pid, "CONT");
    }
    eprintln!(
        "{test}: killed {} children: {kills:?}; froze {pauses:?} for {PAUSE:?}",
        kills.len()
    );
    let kills: BTreeMap<String, u64> = kills.into_iter().collect();
    let pauses: BTreeMap<String, u64> = pauses.into_iter().collect();
    let wakes: BTreeMap<String, u64> = wakes.into_iter().collect();
    for (name, p) in &mut producers {
        let status = p.wait().unwrap();
        assert!(status.success(), "producer {name} failed: {status}");
    }

    // Every acknowledged job must complete.
    let logs = Logs::read(dir.path());
    let deadline = Instant::now() + DRAIN;
    loop {
        let unfinished: Vec<JobId> = logs
            .enqueued
            .iter()
            .copied()
            .filter(|id| spool.get(*id).unwrap().status != JobStatus::Completed)
            .collect();
        if unfinished.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: {} acknowledged jobs not completed within {DRAIN:?}, e.g. {:?}",
            unfinished.len(),
            spool.get(unfinished[0]).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    for (name, w) in &mut workers {
        let status = w.wait().unwrap();
        assert!(status.success(), "worker {name} failed: {status}");
    }

    let logs = Logs::read(dir.path());
    let summary = logs.check(&spool, seed, LEASE_MS, &kills, &pauses, &wakes);
    eprintln!("{test}: {summary}");
    let events = common::all_events(&spool);
    // One completion per job, however many processes ran it.
    let mut completions: BTreeMap<JobId, usize> = BTreeMap::new();
    let mut retries = 0;
    for e in &events {
        match &e.event {
            Event::JobCompleted { job_id, .. } => *completions.entry(*job_id).or_default() += 1,
            Event::JobRetrying { .. } | Event::JobReleased { .. } => retries += 1,
            _ => {}
        }
    }
    eprintln!("{test}: {retries} attempts retried or released (expired leases, dead processes)");
    for id in &logs.enqueued {
        assert_eq!(
            completions.get(id),
            Some(&1),
            "seed {seed}: job {id}'s completions"
        );
    }
    common::assert_contiguous_from_one(&events);
    assert_eq!(spool.last_seq(), events.len() as u64, "seed {seed}");
    spool.close().unwrap();
    let _ = pg::psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

fn child(role: &str) {
    let url = std::env::var(URL_ENV).unwrap();
    let schema = std::env::var(SCHEMA_ENV).unwrap();
    let log_path = PathBuf::from(std::env::var(LOG_ENV).unwrap());
    let stop = log_path.parent().unwrap().join("stop");
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let mut rng = common::Rng::new(seed);
    let mut log = Log::open(&log_path);
    let spool = open(&url, &schema, role != "producer");
    match role {
        "producer" => {
            for i in 0..PER_PRODUCER {
                let job = NewJob {
                    kind: KIND.into(),
                    payload: format!("{seed}-{i}").into_bytes(),
                    max_attempts: Some(100),
                    backoff: Some(Backoff {
                        initial: Duration::from_millis(20),
                        max: Duration::from_millis(100),
                        ..Backoff::default()
                    }),
                    ..NewJob::default()
                };
                let e = spool.enqueue(job).expect("enqueue");
                log.line(format!("enqueued {}", e.job.id));
                std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
            }
        }
        "worker" => {
            let mut req = spool.claim_request(4);
            req.lease_ms = LEASE_MS;
            req.worker_id = format!("{}-{}", log_path.display(), std::process::id());
            while !stop.exists() {
                let before = now_ms();
                let claimed = match spool.claim_wait(&req, Duration::from_millis(200)) {
                    Ok(c) => c,
                    Err(e) => panic!("claim: {e}"),
                };
                let after = now_ms();
                for c in &claimed {
                    log.line(format!(
                        "claim {} {} {before} {after}",
                        c.job.id, c.lease.token
                    ));
                }
                for c in claimed {
                    let work = if rng.range(0, 39) == 0 {
                        LEASE_MS + 500
                    } else {
                        rng.range(0, 5)
                    };
                    std::thread::sleep(Duration::from_millis(work));
                    log.line(format!("end {} {} {}", c.job.id, c.lease.token, now_ms()));
                    match spool.complete(c.lease, None) {
                        Ok(_) => log.line(format!("ack {} {}", c.job.id, c.lease.token)),
                        Err(e) if e.code() == ErrorCode::StaleLease => {
                            log.line(format!("stale {} {}", c.job.id, c.lease.token));
                        }
                        Err(e) => panic!("complete: {e}"),
                    }
                }
            }
        }
        "pool" => {
            let log = std::sync::Mutex::new(log);
            let pool = WorkerPool::builder(&spool)
                .concurrency(4)
                .lease(POOL_LEASE)
                .prefetch(std::env::var(PREFETCH_ENV).unwrap().parse().unwrap())
                .handler(KIND, move |ctx| {
                    let id = ctx.job().id;
                    log.lock().unwrap().line(format!("run {id} {}", now_ms()));
                    // 20-99 ms of work, by job: the pools are busy most of the time, so
                    // the frozen one holds jobs.
                    let work = 20 + u64::from(id.as_bytes()[15] % 80);
                    std::thread::sleep(Duration::from_millis(work));
                    log.lock().unwrap().line(format!("done {id} {}", now_ms()));
                    Ok(None)
                })
                .start()
                .unwrap();
            while !stop.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            pool.shutdown(Duration::from_secs(10));
        }
        other => panic!("unknown role {other}"),
    }
    spool.close().unwrap();
}
