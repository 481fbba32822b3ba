//! Many processes on one PostgreSQL schema, some killed with SIGKILL at random while
//! producers enqueue: every acknowledged job completes, no completion lands under a stale
//! lease, no job is claimed again while an earlier lease on it could still hold, and the
//! event log stays contiguous.
//!
//! The test re-runs its own binary as the children (selected by [`ROLE_ENV`]): producers
//! enqueue and log each acknowledged job; workers claim with the pull API and log every
//! claim (with the time just before the claim call), the end of each run and the outcome of
//! each completion (acknowledged, or refused as stale). One run in 40 overruns its lease on
//! purpose, so stale completions happen and must be refused. Each child logs to a file of
//! its own with one `write` per line, which a SIGKILL cannot tear.
//!
//! Every random choice comes from one seed, printed; `JOBSPOOL_PG_SEED=N` replays it (the
//! processes' timing still varies, the verdict must not).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pg;
use jobspool::{Backoff, ErrorCode, JobId, JobStatus, NewJob, Spool};

const ROLE_ENV: &str = "JOBSPOOL_PGMP_ROLE";
const URL_ENV: &str = "JOBSPOOL_PGMP_URL";
const SCHEMA_ENV: &str = "JOBSPOOL_PGMP_SCHEMA";
const LOG_ENV: &str = "JOBSPOOL_PGMP_LOG";
const SEED_ENV: &str = "JOBSPOOL_PG_SEED";
const TEST: &str = "killed_workers_lose_no_job_and_no_stale_completion_lands";

/// The lease workers claim with.
const LEASE_MS: u64 = 1500;
/// Jobs each producer process enqueues.
const PER_PRODUCER: usize = 120;
const PRODUCERS: usize = 2;
const WORKERS: usize = 4;
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
    let Some(url) = pg::url_or_skip(TEST) else {
        return;
    };
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| common::Rng::from_time().1);
    eprintln!("{TEST}: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = common::Rng::new(seed);
    let schema = pg::unique_schema("mp");
    let spool = open(&url, &schema, false);
    let dir = common::tempdir();

    let mut next_id = 0usize;
    let mut spawn = |role: &str, rng: &mut common::Rng| -> (String, Child) {
        next_id += 1;
        let name = format!("{role}-{next_id}");
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .env(URL_ENV, &url)
            .env(SCHEMA_ENV, &schema)
            .env(LOG_ENV, dir.path().join(format!("{name}.log")))
            .env(SEED_ENV, rng.next_u64().to_string())
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
    let mut workers: Vec<(String, Child)> =
        (0..WORKERS).map(|_| spawn("worker", &mut rng)).collect();

    // Chaos: kill a random child now and then (a producer one time in four) and start a
    // replacement; a killed producer's replacement enqueues a fresh set of jobs.
    // (child, time just before its SIGKILL).
    let mut kills: Vec<(String, u64)> = Vec::new();
    let chaos_end = Instant::now() + CHAOS;
    while Instant::now() < chaos_end {
        std::thread::sleep(Duration::from_millis(rng.range(300, 1200)));
        let (pool, role) = if rng.range(0, 3) == 0 && !producers.is_empty() {
            (&mut producers, "producer")
        } else {
            (&mut workers, "worker")
        };
        let i = usize::try_from(rng.range(0, pool.len() as u64 - 1)).unwrap();
        let (name, mut victim) = pool.swap_remove(i);
        match victim.try_wait().unwrap() {
            None => {
                kills.push((name, now_ms()));
                victim.kill().unwrap();
                victim.wait().unwrap();
                pool.push(spawn(role, &mut rng));
            }
            // A producer done with its jobs.
            Some(status) if role == "producer" => {
                assert!(status.success(), "producer {name} failed: {status}");
            }
            Some(status) => panic!("worker {name} exited on its own: {status}"),
        }
    }
    eprintln!("{TEST}: killed {} children: {kills:?}", kills.len());
    let kills: BTreeMap<String, u64> = kills.into_iter().collect();
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
    logs.check(&spool, seed, &kills);
    let events = common::all_events(&spool);
    common::assert_contiguous_from_one(&events);
    assert_eq!(spool.last_seq(), events.len() as u64, "seed {seed}");
    spool.close().unwrap();
    let _ = pg::psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// What the children logged.
#[derive(Default)]
struct Logs {
    /// Jobs whose enqueue was acknowledged.
    enqueued: BTreeSet<JobId>,
    /// Per job, per token: the claim.
    claims: BTreeMap<JobId, BTreeMap<u64, Claim>>,
    /// Completions acknowledged: job -> tokens.
    acked: BTreeMap<JobId, Vec<u64>>,
    /// Completions refused as stale.
    stale: usize,
}

#[derive(Default, Debug)]
struct Claim {
    /// Just before the claim call (the lease cannot have started earlier).
    before: u64,
    /// Just after the claim call returned (the lease cannot end later than this + lease).
    after: u64,
    /// When the handler's run ended (before the complete call), if it did.
    end: Option<u64>,
    worker: String,
}

impl Logs {
    fn read(dir: &Path) -> Logs {
        let mut logs = Logs::default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        for f in files {
            let worker = f.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&f).unwrap();
            // A killed child's last line may be missing, never torn: drop a partial one.
            let complete = text.rfind('\n').map_or("", |i| &text[..i]);
            for line in complete.lines() {
                let w: Vec<&str> = line.split(' ').collect();
                let id = |s: &str| s.parse::<JobId>().unwrap();
                let n = |s: &str| s.parse::<u64>().unwrap();
                match w[0] {
                    "enqueued" => {
                        logs.enqueued.insert(id(w[1]));
                    }
                    "claim" => {
                        let c = Claim {
                            before: n(w[3]),
                            after: n(w[4]),
                            end: None,
                            worker: worker.clone(),
                        };
                        let prev = logs.claims.entry(id(w[1])).or_default().insert(n(w[2]), c);
                        assert!(prev.is_none(), "token {} handed out twice", w[2]);
                    }
                    "end" => {
                        logs.claims
                            .get_mut(&id(w[1]))
                            .unwrap()
                            .get_mut(&n(w[2]))
                            .unwrap()
                            .end = Some(n(w[3]));
                    }
                    "ack" => logs.acked.entry(id(w[1])).or_default().push(n(w[2])),
                    "stale" => logs.stale += 1,
                    other => panic!("unknown log line {other:?} in {}", f.display()),
                }
            }
        }
        logs
    }

    /// `kills`: each killed child's name and the time just before its SIGKILL.
    fn check(&self, spool: &Spool, seed: u64, kills: &BTreeMap<String, u64>) {
        let mut tokens = BTreeSet::new();
        for (id, claims) in &self.claims {
            for t in claims.keys() {
                assert!(
                    tokens.insert(*t),
                    "seed {seed}: fencing token {t} reused ({id})"
                );
            }
            // No claim while an earlier lease on the job could still hold: the earlier lease
            // started no sooner than `before` and lasts LEASE_MS, unless its process died
            // (its jobs are then recovered at once, as the backend notices the dead
            // process's session is gone), which happened no sooner than the SIGKILL; the
            // later claim returned no later than its `after`.
            for ((ta, a), (tb, b)) in claims.iter().zip(claims.iter().skip(1)) {
                let expired = b.after >= a.before + LEASE_MS;
                let holder_dead = kills.get(&a.worker).is_some_and(|&k| b.after >= k);
                assert!(
                    expired || holder_dead,
                    "seed {seed}: job {id} claimed with token {tb} by {} at <= {} while token \
                     {ta} of {} (claimed at >= {}, {}) could still hold its {LEASE_MS} ms lease",
                    b.worker,
                    b.after,
                    a.worker,
                    a.before,
                    kills
                        .get(&a.worker)
                        .map_or("never killed".to_string(), |k| format!("killed at {k}"))
                );
            }
        }
        let mut completed_runs = 0;
        for (id, acks) in &self.acked {
            assert_eq!(
                acks.len(),
                1,
                "seed {seed}: job {id} completed twice: {acks:?}"
            );
            let token = acks[0];
            let claims = &self.claims[id];
            let c = &claims[&token];
            // Completed under the newest lease, and while it still held.
            assert_eq!(
                claims.keys().next_back(),
                Some(&token),
                "seed {seed}: job {id} completed under token {token}, not its newest"
            );
            let end = c.end.expect("a run acknowledged has ended");
            assert!(
                end <= c.after + LEASE_MS,
                "seed {seed}: job {id}'s completion under token {token} was accepted though \
                 its lease had expired (claimed by {} at <= {}, complete called at >= {end})",
                c.worker,
                c.after
            );
            completed_runs += 1;
        }
        for id in &self.enqueued {
            let job = spool.get(*id).unwrap();
            assert_eq!(job.status, JobStatus::Completed, "seed {seed}: {job:?}");
            let successes = job
                .executions
                .iter()
                .filter(|e| e.success == Some(true))
                .count();
            assert_eq!(successes, 1, "seed {seed}: {job:?}");
        }
        assert!(
            completed_runs > 0,
            "seed {seed}: no completion was acknowledged"
        );
        eprintln!(
            "{TEST}: {} jobs acknowledged, {} claims, {completed_runs} completions \
             acknowledged, {} refused as stale",
            self.enqueued.len(),
            self.claims.values().map(BTreeMap::len).sum::<usize>(),
            self.stale
        );
    }
}

fn child(role: &str) {
    let url = std::env::var(URL_ENV).unwrap();
    let schema = std::env::var(SCHEMA_ENV).unwrap();
    let log_path = PathBuf::from(std::env::var(LOG_ENV).unwrap());
    let stop = log_path.parent().unwrap().join("stop");
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let mut rng = common::Rng::new(seed);
    let mut log = Log::open(&log_path);
    let spool = open(&url, &schema, role == "worker");
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
        other => panic!("unknown role {other}"),
    }
    spool.close().unwrap();
}
