//! A database written by an earlier build (`tests/fixtures/db-v1`, format version 1) opens
//! and reads back exactly as it was written: jobs, statuses, dedupe keys, the schedule, the
//! paused queue and the event log.
//!
//! The fixture was made by `make_db_v1` below (run by hand, see there) and is never
//! rewritten for a format change: a build that cannot read it has broken old databases.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobspool::{
    Job, JobStatus, ListQuery, ManualClock, NewJob, NewSchedule, Retry, Spool, MAX_PAGE,
};

use common::{all_events, t0};

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/db-v1")
}

fn after(ms: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds(ms)
}

/// Makes the fixture. Run by hand, with the build of the format being frozen:
/// `JOBSPOOL_MAKE_DB_V1=1 cargo test --test old_database make_db_v1 -- --ignored`.
#[test]
#[ignore = "writes tests/fixtures/db-v1; run by hand only"]
fn make_db_v1() {
    if std::env::var_os("JOBSPOOL_MAKE_DB_V1").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let clock = ManualClock::new(t0());
    let spool = common::open_manual(&dir, &clock);
    spool
        .enqueue(
            NewJob::new("email.send", b"hello".to_vec())
                .queue("mail")
                .priority(5)
                .dedupe_key("order-1")
                .tenant_id("tenant-a")
                .meta("region", "eu"),
        )
        .unwrap();
    clock.advance_ms(10);
    spool
        .enqueue(NewJob::new("report.build", b"r".to_vec()))
        .unwrap();
    clock.advance_ms(10);
    spool
        .enqueue(NewJob::new("flaky", b"f".to_vec()).max_attempts(1))
        .unwrap();
    clock.advance_ms(10);
    spool
        .enqueue(NewJob::new("later", b"l".to_vec()).delay(Duration::from_secs(3600)))
        .unwrap();
    clock.advance_ms(10);
    // The same dedupe key again: the live job comes back, nothing is written.
    spool
        .enqueue(NewJob::new("email.send", b"again".to_vec()).dedupe_key("order-1"))
        .unwrap();
    let cancelled = spool
        .enqueue(NewJob::new("unwanted", b"u".to_vec()))
        .unwrap();
    clock.advance_ms(10);
    spool.cancel_by(cancelled.id, "admin").unwrap();

    let claim = |kind: &str| {
        let mut req = spool.claim_request(1);
        req.kinds = vec![kind.to_owned()];
        req.worker_id = "worker-1".into();
        spool.claim(&req).unwrap().pop().unwrap()
    };
    clock.advance_ms(100);
    let c = claim("report.build");
    clock.advance_ms(250);
    spool.complete(c.lease, Some(b"done".to_vec())).unwrap();
    clock.advance_ms(100);
    let c = claim("flaky");
    clock.advance_ms(50);
    spool.fail(c.lease, "boom", Retry::Backoff).unwrap();
    clock.advance_ms(100);
    spool
        .create_schedule(
            NewSchedule::new("nightly", "0 3 * * *", "report.build")
                .timezone("Europe/Berlin")
                .description("the nightly report")
                .payload(b"{}".to_vec()),
        )
        .unwrap();
    clock.advance_ms(100);
    spool.pause_queue("mail").unwrap();
    spool.close().unwrap();
}

fn by_kind(jobs: &[Job], kind: &str) -> Job {
    jobs.iter()
        .find(|j| j.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} job"))
        .clone()
}

#[test]
fn a_version_1_database_opens_and_reads_back_as_written() {
    let dir = common::tempdir();
    let path = dir.path().join("db");
    copy_dir(&fixture_dir(), &path);
    // A manual clock at the fixture's time and no background threads: nothing may change
    // what is read back (with the system clock, retention would eventually prune it).
    let clock = ManualClock::new(after(60_000));
    let spool = Spool::builder()
        .clock(clock.clone())
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .expect("the old database opens");

    let jobs = spool
        .list(&ListQuery {
            limit: Some(MAX_PAGE),
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(jobs.len(), 5, "{jobs:#?}");

    let email = by_kind(&jobs, "email.send");
    assert_eq!(email.status, JobStatus::Pending);
    assert_eq!(email.queue, "mail");
    assert_eq!(email.priority, 5);
    assert_eq!(email.payload, b"hello");
    assert_eq!(email.dedupe_key.as_deref(), Some("order-1"));
    assert_eq!(email.tenant_id.as_deref(), Some("tenant-a"));
    assert_eq!(email.metadata.get("region").map(String::as_str), Some("eu"));
    assert_eq!(email.version, "1.0.0");
    assert_eq!(email.max_attempts, 3);
    assert_eq!(email.created_at, t0());
    assert_eq!(email.scheduled_at, Some(t0()));
    assert!(email.executions.is_empty());

    let report = by_kind(&jobs, "report.build");
    assert_eq!(report.status, JobStatus::Completed);
    assert_eq!(report.queue, "default");
    assert_eq!(report.payload, b"r");
    assert_eq!(report.result.as_deref(), Some(&b"done"[..]));
    assert_eq!(report.attempts, 1);
    assert_eq!(report.created_at, after(10));
    assert_eq!(report.started_at, Some(after(150)));
    assert_eq!(report.completed_at, Some(after(400)));
    assert_eq!(report.lease_expires_at(), None);
    assert_eq!(report.executions.len(), 1);
    let e = &report.executions[0];
    assert_eq!(e.attempt_number, 1);
    assert_eq!(e.started_at, after(150));
    assert_eq!(e.completed_at, Some(after(400)));
    assert_eq!(e.duration_ms, Some(250));
    assert_eq!(e.success, Some(true));
    assert_eq!(e.worker_id.as_deref(), Some("worker-1"));

    let flaky = by_kind(&jobs, "flaky");
    assert_eq!(flaky.status, JobStatus::DeadLetter);
    assert_eq!(flaky.attempts, 1);
    assert_eq!(flaky.max_attempts, 1);
    assert_eq!(flaky.last_error.as_deref(), Some("boom"));
    assert_eq!(flaky.completed_at, Some(after(550)));
    assert_eq!(flaky.executions.len(), 1);
    assert_eq!(flaky.executions[0].success, Some(false));
    assert_eq!(flaky.executions[0].error.as_deref(), Some("boom"));
    assert_eq!(flaky.executions[0].duration_ms, Some(50));

    let later = by_kind(&jobs, "later");
    assert_eq!(later.status, JobStatus::Pending);
    assert_eq!(later.created_at, after(30));
    assert_eq!(later.scheduled_at, Some(after(30 + 3_600_000)));

    let unwanted = by_kind(&jobs, "unwanted");
    assert_eq!(unwanted.status, JobStatus::Cancelled);
    assert_eq!(unwanted.completed_at, Some(after(50)));

    // The in-memory indexes were rebuilt from the records.
    let stats = spool.stats().unwrap();
    assert_eq!(stats.total.pending, 2);
    assert_eq!(stats.total.delayed, 1);
    assert_eq!(stats.total.completed, 1);
    assert_eq!(stats.total.dead_letter, 1);
    assert_eq!(stats.total.cancelled, 1);
    assert_eq!(stats.total.running, 0);
    assert!(stats.queues["mail"].paused, "{stats:?}");
    assert!(!stats.queues["default"].paused);
    // The paused queue is not claimable; the delayed job is not due.
    assert!(spool.claim(&spool.claim_request(10)).unwrap().is_empty());

    let schedules = spool.list_schedules().unwrap();
    assert_eq!(schedules.len(), 1);
    let s = &schedules[0];
    assert_eq!(s.name, "nightly");
    assert_eq!(s.cron_expression, "0 3 * * *");
    assert_eq!(s.timezone, "Europe/Berlin");
    assert_eq!(s.job_type, "report.build");
    assert!(s.enabled);
    assert_eq!(s.created_at, after(650));
    assert_eq!(s.description.as_deref(), Some("the nightly report"));
    assert_eq!(s.last_run_at, None);
    // 03:00 in Berlin (UTC+1 in November) the next morning.
    assert_eq!(
        s.next_run_at.map(|t| t.to_rfc3339()),
        Some("2026-11-29T02:00:00+00:00".to_owned())
    );
    assert_eq!(s.payload, b"{}");

    let events = all_events(&spool);
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names,
        [
            "job.enqueued",
            "job.enqueued",
            "job.enqueued",
            "job.enqueued",
            "job.enqueued",
            "job.cancelled",
            "job.started",
            "job.completed",
            "job.started",
            "job.failed",
            "job.dead_lettered",
            "schedule.created",
            "queue.paused",
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=13).collect::<Vec<u64>>());
    assert_eq!(spool.last_seq(), 13);
    assert_eq!(events[7].event.job_id(), Some(report.id));
    assert_eq!(events[10].event.job_id(), Some(flaky.id));

    // The dedupe key is still held by the live job.
    let again = spool
        .enqueue(NewJob::new("email.send", b"x".to_vec()).dedupe_key("order-1"))
        .unwrap();
    assert_eq!(again.id, email.id);
    // New events continue the old sequence.
    spool.resume_queue("mail").unwrap();
    assert_eq!(spool.last_seq(), 14);
    spool.close().unwrap();

    // Records of both formats side by side (the old ones read as format 1, what changes
    // written as format 2): an old job runs to completion, and all of it reads back after
    // another open.
    let spool = Spool::builder()
        .clock(clock.clone())
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .expect("the upgraded database opens again");
    let claimed = spool.claim(&spool.claim_request(10)).unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "the one pending old job in a queue not paused"
    );
    assert_eq!(claimed[0].job.id, email.id);
    spool.complete(claimed[0].lease, None).unwrap();
    spool.close().unwrap();
    let spool = Spool::builder()
        .clock(clock)
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .expect("the database opens a third time");
    assert_eq!(spool.get(email.id).unwrap().status, JobStatus::Completed);
    assert_eq!(spool.get(report.id).unwrap().status, JobStatus::Completed);
    let events = all_events(&spool);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<u64>>(),
        (1..=16).collect::<Vec<u64>>()
    );
    assert_eq!(events[15].event.name(), "job.completed");
    spool.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The previous release (storage format 2) opening a format 3 database replays the whole
/// journal into sled and empties it before it refuses the format. The next open by this
/// build finds the job records, payloads and events in sled and moves them back into the
/// journal: every job and event is there, and stays there across further opens.
#[test]
fn regression_a_database_the_previous_release_replayed_into_sled_opens_with_everything() {
    let dir = common::tempdir();
    let path = common::db_path(&dir);
    let open = || {
        Spool::builder()
            .maintenance(false)
            .scheduler(false)
            .open(&path)
            .unwrap()
    };
    let spool = open();
    let ids: Vec<_> = (0..5u8)
        .map(|i| spool.enqueue(NewJob::new("t", vec![i; 300])).unwrap().id)
        .collect();
    spool.cancel(ids[4]).unwrap();
    let events = all_events(&spool);
    spool.close().unwrap();
    drop(spool);

    // What the previous release does at open: every journal change into sled, then the
    // journal emptied; it then refuses format 3, and sled keeps the values.
    let (state, _) = common::journal_state(&path);
    {
        let db = common::raw_sled(&path);
        for (k, v) in &state {
            match v {
                Some(v) => db.insert(k, v.as_slice()).unwrap(),
                None => db.remove(k).unwrap(),
            };
        }
        db.flush().unwrap();
    }
    for e in std::fs::read_dir(path.join("journal")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }

    for _ in 0..2 {
        let spool = open();
        for (i, id) in ids.iter().enumerate() {
            let job = spool.get(*id).unwrap();
            assert_eq!(job.payload, vec![i as u8; 300]);
        }
        assert_eq!(spool.get(ids[4]).unwrap().status, JobStatus::Cancelled);
        assert_eq!(all_events(&spool), events);
        spool.close().unwrap();
    }
    // sled no longer holds them.
    let db = common::raw_sled(&path);
    assert!(db.scan_prefix(b"j").next().is_none());
    assert!(db.scan_prefix(b"p").next().is_none());
    assert!(db.scan_prefix(b"e").next().is_none());
}

/// Regression: a database a newer jobspool wrote (a newer storage format, its job records in
/// an encoding this build does not read) is refused as `STORAGE` saying to upgrade, before
/// anything reads its records: not `CORRUPTION` from the first record that does not decode
/// (open indexes the records while it reads the journal, so the format is checked first).
#[test]
fn regression_a_newer_format_database_is_refused_as_storage_before_its_records_are_read() {
    let dir = common::tempdir();
    let path = common::db_path(&dir);
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .unwrap();
    let id = spool.enqueue(NewJob::new("t", vec![1])).unwrap().id;
    spool.close().unwrap();
    drop(spool);
    let mut key = vec![b'j'];
    key.extend_from_slice(id.as_bytes());
    // A record in a format version after the ones this build reads.
    common::journal_put(&path, &key, &[0x7f, 1, 2, 3]);
    {
        let db = common::raw_sled(&path);
        db.insert(b"mformat", &[9u8][..]).unwrap();
        db.flush().unwrap();
    }
    let err = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .unwrap_err();
    assert_eq!(err.code(), jobspool::ErrorCode::Storage, "{err}");
    assert!(err.to_string().contains("upgrade jobspool"), "{err}");
}
