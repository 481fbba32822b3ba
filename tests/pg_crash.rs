//! A PostgreSQL server crash in the middle of a load loses nothing acknowledged.
//!
//! The test starts a cluster of its own with fsync on, runs producers and workers on
//! threads (`Durability::Immediate`: an acknowledged enqueue or completion is committed and
//! flushed), stops the server with an immediate shutdown (SIGQUIT to the postmaster, what
//! `pg_ctl stop -m immediate` does: no checkpoint, the WAL is replayed at restart) while
//! they run, and restarts it. Calls made while the server is down fail with `STORAGE`; the
//! load retries them. Then: every acknowledged enqueue is there, every acknowledged
//! completion is still completed, everything drains, the event log is contiguous, and the
//! spool that lived through the crash works again (its connections were re-made).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::{self, Cluster, Options};
use jobspool::{Durability, ErrorCode, JobId, JobStatus, NewJob, Spool};

const TEST: &str = "server_crash_mid_load_loses_nothing_acknowledged";
const KIND: &str = "crash.pg";
const LEASE_MS: u64 = 2000;

fn open(url: &str, schema: &str) -> jobspool::Result<Spool> {
    Spool::builder()
        .schema(schema)
        .durability(Durability::Immediate)
        .maintenance(true)
        .maintenance_interval(Duration::from_millis(200))
        .scheduler(false)
        .open(url)
}

#[derive(Default)]
struct Acked {
    enqueued: Mutex<Vec<JobId>>,
    completed: Mutex<Vec<JobId>>,
    storage_errors: Mutex<u64>,
}

/// A durable throwaway cluster of the test's own, or `None` (skipped, or failed under
/// `JOBSPOOL_TEST_REQUIRE_BACKENDS=postgres`) without the server binaries.
fn durable_cluster_or_skip(name: &str) -> Option<Cluster> {
    if pg::bin_dir().is_none() {
        pg::skip_or_fail(
            name,
            "no PostgreSQL server binaries to start a cluster of its own",
        );
        return None;
    }
    Some(Cluster::start(&Options::durable()).unwrap())
}

#[test]
fn server_crash_mid_load_loses_nothing_acknowledged() {
    let Some(cluster) = durable_cluster_or_skip(TEST) else {
        return;
    };
    let url = cluster.url();
    let schema = "crash";
    let spool = open(&url, schema).unwrap();
    let acked = Arc::new(Acked::default());
    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_working = Arc::new(AtomicBool::new(false));

    let mut threads = Vec::new();
    // More producers than statements in flight, so callers also line up and share
    // statements (group commit) when the server goes away.
    for p in 0..4 {
        let (spool, acked, stop) = (spool.clone(), acked.clone(), stop_producing.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let job = NewJob {
                    kind: KIND.into(),
                    payload: format!("{p}-{i}").into_bytes(),
                    max_attempts: Some(100),
                    ..NewJob::default()
                };
                match spool.enqueue(job) {
                    Ok(e) => {
                        acked.enqueued.lock().unwrap().push(e.job.id);
                        i += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Storage, "enqueue: {e}");
                        *acked.storage_errors.lock().unwrap() += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }));
    }
    for _ in 0..2 {
        let (spool, acked, stop) = (spool.clone(), acked.clone(), stop_working.clone());
        threads.push(std::thread::spawn(move || {
            let mut req = spool.claim_request(8);
            req.lease_ms = LEASE_MS;
            while !stop.load(Ordering::Relaxed) {
                let claimed = match spool.claim_wait(&req, Duration::from_millis(100)) {
                    Ok(c) => c,
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Storage, "claim: {e}");
                        *acked.storage_errors.lock().unwrap() += 1;
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                for c in claimed {
                    match spool.complete(c.lease, None) {
                        Ok(_) => acked.completed.lock().unwrap().push(c.job.id),
                        // The server went down under the call, or the lease ran out
                        // meanwhile: the job comes back when its lease expires.
                        Err(e)
                            if e.code() == ErrorCode::Storage
                                || e.code() == ErrorCode::StaleLease => {}
                        Err(e) => panic!("complete: {e}"),
                    }
                }
            }
        }));
    }

    std::thread::sleep(Duration::from_millis(1500));
    let before_crash = acked.enqueued.lock().unwrap().len();
    cluster.stop_immediate();
    std::thread::sleep(Duration::from_millis(700));
    cluster.restart().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stop_producing.store(true, Ordering::Relaxed);

    // Everything acknowledged before the crash is there (checked on a fresh spool too).
    let enqueued: Vec<JobId> = acked.enqueued.lock().unwrap().clone();
    assert!(before_crash > 0, "nothing was enqueued before the crash");
    assert!(
        enqueued.len() > before_crash,
        "nothing was enqueued after the restart (the spool did not reconnect?)"
    );
    let completed: Vec<JobId> = acked.completed.lock().unwrap().clone();
    let fresh = open(&url, schema).unwrap();
    for id in &enqueued {
        fresh
            .get(*id)
            .unwrap_or_else(|e| panic!("acknowledged job {id} lost: {e}"));
    }
    for id in &completed {
        let job = fresh.get(*id).unwrap();
        assert_eq!(
            job.status,
            JobStatus::Completed,
            "acknowledged completion lost: {job:?}"
        );
    }

    // The survivors drain the rest.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut left: BTreeSet<JobId> = enqueued.iter().copied().collect();
    while !left.is_empty() {
        left.retain(|id| fresh.get(*id).unwrap().status != JobStatus::Completed);
        assert!(
            Instant::now() < deadline,
            "{} acknowledged jobs not completed after the restart",
            left.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_working.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let events = common::all_events(&fresh);
    common::assert_contiguous_from_one(&events);
    eprintln!(
        "{TEST}: {} jobs acknowledged ({before_crash} before the crash), {} completions \
         acknowledged, {} calls failed with STORAGE while the server was down",
        enqueued.len(),
        completed.len(),
        acked.storage_errors.lock().unwrap()
    );
    assert!(
        *acked.storage_errors.lock().unwrap() > 0,
        "no call noticed the server was down"
    );
    fresh.close().unwrap();
    spool.close().unwrap();
}

/// A spool's background threads outlive a server restart: its scheduler keeps firing and
/// its maintenance keeps expiring leases once the server is back (on PostgreSQL a lost
/// connection is an error of one call, not of the spool).
#[test]
fn background_threads_survive_a_server_restart() {
    const NAME: &str = "background_threads_survive_a_server_restart";
    let Some(cluster) = durable_cluster_or_skip(NAME) else {
        return;
    };
    let url = cluster.url();
    let schema = "background";
    let background = Spool::builder()
        .schema(schema)
        .maintenance(true)
        .maintenance_interval(Duration::from_millis(100))
        .scheduler(true)
        .open(&url)
        .unwrap();
    background
        .create_schedule(jobspool::NewSchedule::new("tick", "* * * * * *", "tick"))
        .unwrap();
    let probe = Spool::builder()
        .schema(schema)
        .maintenance(false)
        .scheduler(false)
        .open(&url)
        .unwrap();
    // The number of tick jobs, retrying a call that meets a connection lost in the crash.
    let ticks = |s: &Spool| -> u64 {
        let q = jobspool::ListQuery {
            kind: Some("tick".into()),
            ..jobspool::ListQuery::default()
        };
        let r = s.list(&q).or_else(|_| s.list(&q));
        r.expect("listing after a reconnect").len() as u64
    };
    // Polls `f` for up to `secs` seconds.
    let within = |secs: u64, f: &dyn Fn() -> bool| -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if f() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(within(10, &|| ticks(&probe) >= 1), "no first tick");

    cluster.stop_immediate();
    // Long enough for both threads to meet the dead server.
    std::thread::sleep(Duration::from_millis(1500));
    cluster.restart().unwrap();

    let after_restart = ticks(&probe);
    let scheduler_alive = within(6, &|| ticks(&probe) >= after_restart + 2);
    // A job claimed (by the probe, which runs no maintenance) and abandoned: the
    // background spool's maintenance must expire its lease.
    let id = probe
        .enqueue(NewJob::new("work", Vec::new()))
        .unwrap()
        .job
        .id;
    let mut req = probe.claim_request(1);
    req.kinds = vec!["work".into()];
    req.lease_ms = 300;
    assert_eq!(probe.claim(&req).unwrap().len(), 1);
    let maintenance_alive = within(6, &|| probe.get(id).unwrap().status != JobStatus::Running);
    assert!(
        scheduler_alive && maintenance_alive,
        "after a server restart: scheduler fired again: {scheduler_alive}; maintenance \
         expired a lease again: {maintenance_alive}"
    );
    probe.close().unwrap();
    background.close().unwrap();
}

/// A worker pool outlives a server restart: jobs enqueued once the server is back run.
#[test]
fn worker_pool_survives_a_server_restart() {
    const NAME: &str = "worker_pool_survives_a_server_restart";
    let Some(cluster) = durable_cluster_or_skip(NAME) else {
        return;
    };
    let url = cluster.url();
    let spool = open(&url, "pool").unwrap();
    let ran = Arc::new(Mutex::new(BTreeSet::new()));
    let pool = {
        let ran = ran.clone();
        jobspool::WorkerPool::builder(&spool)
            .concurrency(2)
            .handler(KIND, move |ctx| {
                ran.lock().unwrap().insert(ctx.job().id);
                Ok(None)
            })
            .start()
            .unwrap()
    };
    let first = spool.enqueue(NewJob::new(KIND, Vec::new())).unwrap().job.id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ran.lock().unwrap().contains(&first) {
        assert!(
            Instant::now() < deadline,
            "{NAME}: the first job did not run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.stop_immediate();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.restart().unwrap();
    let producer = open(&url, "pool").unwrap();
    let second = producer
        .enqueue(NewJob::new(KIND, Vec::new()))
        .unwrap()
        .job
        .id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ran.lock().unwrap().contains(&second) {
        assert!(
            Instant::now() < deadline,
            "{NAME}: a job enqueued after the server restart did not run within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pool.shutdown(Duration::from_secs(5));
    producer.close().unwrap();
    spool.close().unwrap();
}

/// Under `Buffered`, enqueues commit without waiting for the WAL flush (the pooled session
/// turns `synchronous_commit` off; through a pooler, the enqueue statement does), and after
/// `flush()` a server crash loses none of them: every job is there after the restart and
/// their events come back numbered 1..=n. Both with and without `poll_only`.
///
/// (A server crash keeps what PostgreSQL had written to the kernel, so this cannot tell a
/// flush that waited for `fsync` from one that did not; that takes a machine crash.)
#[test]
fn buffered_enqueues_survive_a_server_crash_after_flush() {
    const NAME: &str = "buffered_enqueues_survive_a_server_crash_after_flush";
    let Some(cluster) = durable_cluster_or_skip(NAME) else {
        return;
    };
    let url = cluster.url();
    let buffered = |schema: &str, poll_only: bool| {
        Spool::builder()
            .schema(schema)
            // Nothing numbered (a commit that waits for the flush) before `flush()`.
            .durability(Durability::Buffered {
                max_delay: Duration::from_secs(600),
            })
            .poll_only(poll_only)
            .maintenance(false)
            .scheduler(false)
            .open(&url)
            .unwrap()
    };
    let schemas = [("direct", false), ("pooler", true)];
    let mut ids: Vec<Vec<JobId>> = Vec::new();
    let mut spools = Vec::new();
    for (schema, poll_only) in schemas {
        let spool = buffered(schema, poll_only);
        let mut mine = Vec::new();
        for i in 0..150u32 {
            let job = spool.enqueue(NewJob::new(KIND, i.to_be_bytes().to_vec()));
            mine.push(job.unwrap().job.id);
        }
        let batch = (0..50u32).map(|i| NewJob::new(KIND, i.to_le_bytes().to_vec()));
        for e in spool.enqueue_batch(batch.collect()).unwrap() {
            mine.push(e.job.id);
        }
        spool.flush().unwrap();
        ids.push(mine);
        spools.push(spool);
    }
    cluster.stop_immediate();
    cluster.restart().unwrap();
    drop(spools);
    for ((schema, _), mine) in schemas.iter().zip(&ids) {
        let spool = open(&url, schema).unwrap();
        for id in mine {
            if let Err(e) = spool.get(*id) {
                panic!("{NAME}: {schema}: job {id} lost in the crash ({e})");
            }
        }
        let events = spool.events_since(0, 1000).unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>(), "{NAME}: {schema}");
        spool.close().unwrap();
    }
}
