//! Three scheduler processes on one PostgreSQL schema fire one job per tick of a schedule
//! that ticks every second, including while one of them is killed with SIGKILL.
//!
//! A manual clock cannot cross processes, so the schedulers run on the real clock for a
//! bounded time (about 7 s). The verdict does not depend on timing: every firing is
//! recorded as a `scheduler.job_triggered` event carrying the tick it moved the schedule to
//! (`nextRunAt`); two firings of one tick would move it to the same next tick, so those must
//! be strictly increasing, each firing must happen at or after the tick it fired, and every
//! job of the schedule's type must come from exactly one firing.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pg;
use jobspool::{Event, ListQuery, NewSchedule, Spool};

const ROLE_ENV: &str = "JOBSPOOL_PGSCHED_ROLE";
const URL_ENV: &str = "JOBSPOOL_PGSCHED_URL";
const SCHEMA_ENV: &str = "JOBSPOOL_PGSCHED_SCHEMA";
const STOP_ENV: &str = "JOBSPOOL_PGSCHED_STOP";
const TEST: &str = "three_schedulers_fire_one_job_per_tick";
const SCHEDULE: &str = "every-second";
const KIND: &str = "sched.tick";
/// How long the schedulers run.
const RUN: Duration = Duration::from_secs(7);

#[test]
fn three_schedulers_fire_one_job_per_tick() {
    if std::env::var(ROLE_ENV).is_ok() {
        return scheduler_child();
    }
    let Some(url) = pg::url_or_skip(TEST) else {
        return;
    };
    let schema = pg::unique_schema("sched");
    let spool = Spool::builder()
        .schema(&schema)
        .maintenance(false)
        .scheduler(false)
        .open(&url)
        .unwrap();
    spool
        .create_schedule(NewSchedule::new(SCHEDULE, "* * * * * *", KIND))
        .unwrap();
    let dir = common::tempdir();
    let stop = dir.path().join("stop");
    let spawn = || -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, "scheduler")
            .env(URL_ENV, &url)
            .env(SCHEMA_ENV, &schema)
            .env(STOP_ENV, &stop)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let start = Instant::now();
    let mut children: Vec<Child> = (0..3).map(|_| spawn()).collect();
    // Kill one halfway and start another in its place.
    std::thread::sleep(RUN / 2);
    children[0].kill().unwrap();
    children[0].wait().unwrap();
    children[0] = spawn();
    std::thread::sleep(RUN.saturating_sub(start.elapsed()));
    std::fs::write(&stop, b"").unwrap();
    for c in &mut children {
        let status = c.wait().unwrap();
        assert!(status.success(), "a scheduler failed: {status}");
    }

    let mut ticks = Vec::new();
    let mut fired_jobs = BTreeSet::new();
    for e in common::all_events(&spool) {
        if let Event::SchedulerJobTriggered {
            schedule_name,
            job_id,
            triggered_at,
            next_run_at,
            ..
        } = e.event
        {
            assert_eq!(schedule_name, SCHEDULE);
            assert!(fired_jobs.insert(job_id), "one job for two firings");
            ticks.push((
                triggered_at,
                next_run_at.expect("an enabled schedule has a next run"),
            ));
        }
    }
    for w in ticks.windows(2) {
        let ((_, prev_next), (fired_at, next)) = (w[0], w[1]);
        assert!(
            next > prev_next,
            "two firings moved the schedule to the same tick {next}: {ticks:?}"
        );
        assert!(
            fired_at >= prev_next,
            "fired at {fired_at}, before its tick {prev_next}: {ticks:?}"
        );
    }
    let jobs: BTreeSet<_> = common::all_jobs(
        &spool,
        &ListQuery {
            kind: Some(KIND.into()),
            ..ListQuery::default()
        },
    )
    .into_iter()
    .map(|j| j.id)
    .collect();
    assert_eq!(
        jobs, fired_jobs,
        "every job of the schedule comes from one firing"
    );
    eprintln!(
        "{TEST}: {} firings in {RUN:?} with 3 schedulers",
        ticks.len()
    );
    // Liveness, loosely (the machine may be busy): a schedule ticking every second for
    // about 7 s fires a few times.
    assert!(ticks.len() >= 3, "only {} firings in {RUN:?}", ticks.len());
    common::assert_contiguous_from_one(&common::all_events(&spool));
    spool.close().unwrap();
    let _ = pg::psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

fn scheduler_child() {
    let spool = Spool::builder()
        .schema(std::env::var(SCHEMA_ENV).unwrap())
        .maintenance(false)
        .scheduler(true)
        .open(std::env::var(URL_ENV).unwrap())
        .unwrap();
    let stop = std::path::PathBuf::from(std::env::var(STOP_ENV).unwrap());
    while !stop.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    spool.close().unwrap();
}
