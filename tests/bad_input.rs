//! Every malformed input of the contract, through the library and through the CLI: each
//! gets its typed error and code, and the database is unchanged (stats, jobs, event log).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jobspool::{Backoff, JobId, JobStatus, ListQuery, NewJob, NewSchedule, Spool};
use serde_json::Value;

fn open(path: &Path) -> Spool {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .payload_limit(1024)
        .open(path)
        .unwrap()
}

/// What must not change: stats, the jobs, the last event.
fn snapshot(spool: &Spool) -> (jobspool::Stats, Vec<jobspool::Job>, u64) {
    (
        spool.stats().unwrap(),
        spool
            .list(&ListQuery {
                limit: Some(10_000),
                ..ListQuery::default()
            })
            .unwrap(),
        spool.last_seq(),
    )
}

#[test]
fn library_rejects_each_bad_input_with_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(&dir.path().join("db"));
    // Some state to keep intact: a pending job, a running one, a schedule.
    let pending = spool
        .enqueue(NewJob::new("t", b"{}".to_vec()).dedupe_key("held"))
        .unwrap();
    spool.enqueue(NewJob::new("t", b"{}".to_vec())).unwrap();
    let claimed = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .create_schedule(NewSchedule::new("s", "@daily", "t"))
        .unwrap();
    let before = snapshot(&spool);

    let ten_years = Duration::from_secs(11 * 365 * 24 * 3600);
    let mut meta_big = NewJob::new("t", vec![]);
    meta_big.metadata.insert("k".into(), "v".repeat(70 * 1024));
    let nan_backoff = Backoff {
        multiplier: f64::NAN,
        ..Backoff::default()
    };
    let enqueue_cases: Vec<(&str, NewJob, &str)> = vec![
        ("empty type", NewJob::new("", vec![]), "INVALID_ARGUMENT"),
        (
            "maxRetries 0",
            NewJob::new("t", vec![]).max_attempts(0),
            "INVALID_ARGUMENT",
        ),
        (
            "delay over 10 years",
            NewJob::new("t", vec![]).delay(ten_years),
            "INVALID_ARGUMENT",
        ),
        (
            "runAt over 10 years",
            NewJob::new("t", vec![]).run_at(chrono::Utc::now() + chrono::Duration::days(11 * 366)),
            "INVALID_ARGUMENT",
        ),
        (
            "delay and runAt",
            NewJob::new("t", vec![])
                .delay(Duration::from_secs(1))
                .run_at(chrono::Utc::now()),
            "INVALID_ARGUMENT",
        ),
        (
            "timeout 0",
            NewJob::new("t", vec![]).timeout(std::time::Duration::ZERO),
            "INVALID_ARGUMENT",
        ),
        (
            "control character in queue",
            NewJob::new("t", vec![]).queue("a\nb"),
            "INVALID_ARGUMENT",
        ),
        (
            "empty dedupe key",
            NewJob::new("t", vec![]).dedupe_key(""),
            "INVALID_ARGUMENT",
        ),
        (
            "type over 256 bytes",
            NewJob::new("x".repeat(300), vec![]),
            "INVALID_ARGUMENT",
        ),
        ("metadata over 64 KiB", meta_big, "INVALID_ARGUMENT"),
        (
            "NaN backoff",
            NewJob::new("t", vec![]).backoff(nan_backoff),
            "INVALID_ARGUMENT",
        ),
        (
            "payload over the limit",
            NewJob::new("t", vec![0; 1025]),
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (what, job, code) in enqueue_cases {
        let e = spool.enqueue(job.clone()).unwrap_err();
        assert_eq!(e.code(), code, "{what}: {e}");
        // In a batch, one bad job rejects the whole batch.
        let e = spool
            .enqueue_batch(vec![NewJob::new("ok", vec![]), job])
            .unwrap_err();
        assert_eq!(e.code(), code, "{what} in a batch: {e}");
        assert_eq!(snapshot(&spool), before, "{what} changed the database");
    }

    let unknown: JobId = "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e".parse().unwrap();
    let other_cases: Vec<(&str, jobspool::Error, &str)> = vec![
        (
            "bad UUID",
            "not-a-uuid".parse::<JobId>().unwrap_err(),
            "INVALID_ARGUMENT",
        ),
        (
            "unknown status",
            "done".parse::<JobStatus>().unwrap_err(),
            "INVALID_ARGUMENT",
        ),
        (
            "get unknown",
            spool.get(unknown).unwrap_err(),
            "JOB_NOT_FOUND",
        ),
        (
            "cancel unknown",
            spool.cancel(unknown).unwrap_err(),
            "JOB_NOT_FOUND",
        ),
        (
            "cancel running",
            spool.cancel(claimed.job.id).unwrap_err(),
            "JOB_NOT_PENDING",
        ),
        (
            "redrive pending",
            spool.redrive(pending.id).unwrap_err(),
            "INVALID_ARGUMENT",
        ),
        (
            "stale token",
            spool
                .complete(
                    jobspool::Lease::new(claimed.job.id, claimed.lease.token + 1),
                    None,
                )
                .unwrap_err(),
            "STALE_LEASE",
        ),
        (
            "result over the limit",
            spool
                .complete(claimed.lease, Some(vec![0; 1025]))
                .unwrap_err(),
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "schedule exists",
            spool
                .create_schedule(NewSchedule::new("s", "@daily", "t"))
                .unwrap_err(),
            "SCHEDULE_EXISTS",
        ),
        (
            "unknown schedule",
            spool.toggle_schedule("nope", true).unwrap_err(),
            "SCHEDULE_NOT_FOUND",
        ),
        (
            "bad cron",
            spool
                .create_schedule(NewSchedule::new("c", "* * * * * * * *", "t"))
                .unwrap_err(),
            "INVALID_CRON",
        ),
        (
            "bad zone",
            spool
                .create_schedule(NewSchedule::new("c", "@daily", "t").timezone("Atlantis/Capital"))
                .unwrap_err(),
            "INVALID_TIMEZONE",
        ),
        (
            "pause bad queue name",
            spool.pause_queue("").unwrap_err(),
            "INVALID_ARGUMENT",
        ),
    ];
    for (what, e, code) in other_cases {
        assert_eq!(e.code(), code, "{what}: {e}");
        assert!(!e.message().is_empty());
    }
    assert_eq!(
        snapshot(&spool),
        before,
        "the rejected calls changed the database"
    );
    spool.close().unwrap();
}

/// An empty database path was tried as a directory (`STORAGE: creating : No such file or
/// directory`); a schema starting with `pg_` passed the name check and failed on the server
/// (`STORAGE`, 42939). Both are the caller's input: `INVALID_ARGUMENT`, saying what to use.
#[test]
fn regression_an_empty_database_or_a_pg_schema_is_invalid_argument_not_storage() {
    let err = Spool::open("").unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
    let err = Spool::builder()
        .schema("pg_catalog")
        .open("postgres://nobody@127.0.0.1:1/none")
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert!(err.to_string().contains("pg_"), "{err}");
}

fn cli(db: &Path, args: &[&str], stdin: Option<&[u8]>) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .arg("--db")
        .arg(db)
        .args(args)
        .arg("--json")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        // The CLI stops reading past the limit; a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(bytes);
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Arguments, stdin, expected code.
type CliCase<'a> = (&'a [&'a str], Option<&'a [u8]>, &'a str);

#[test]
fn cli_rejects_each_bad_input_with_exit_1_and_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let (rc, _) = cli(&db, &["enqueue", "--type", "t", "--payload", "{}"], None);
    assert_eq!(rc, 0);
    let (_, stats_before) = cli(&db, &["stats"], None);
    let (_, events_before) = cli(&db, &["events"], None);
    let big = vec![b'x'; 1024 * 1024 + 1];
    let cases: Vec<CliCase> = vec![
        (&["enqueue", "--type", ""], None, "INVALID_ARGUMENT"),
        (
            &["enqueue", "--type", "t", "--max-retries", "0"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--max-retries", "-1"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--delay", "-5"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--delay", "400000000"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--run-at", "yesterday"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--run-at", "2199-01-01T00:00:00Z"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--payload", "{bad"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--payload", "@/nonexistent/file"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--payload", "-"],
            Some(&big[..]),
            "PAYLOAD_TOO_LARGE",
        ),
        (
            &["enqueue", "--type", "t", "--metadata", "novalue"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--priority", "99999999999"],
            None,
            "INVALID_ARGUMENT",
        ),
        (
            &["enqueue", "--type", "t", "--timeout-ms", "0"],
            None,
            "INVALID_ARGUMENT",
        ),
        (&["get", "not-a-uuid"], None, "INVALID_ARGUMENT"),
        (
            &["get", "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e"],
            None,
            "JOB_NOT_FOUND",
        ),
        (
            &["cancel", "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e"],
            None,
            "JOB_NOT_FOUND",
        ),
        (&["list", "--status", "bogus"], None, "INVALID_ARGUMENT"),
        (&["list", "--limit", "0"], None, "INVALID_ARGUMENT"),
        (
            &[
                "schedule",
                "create",
                "--name",
                "a",
                "--cron",
                "99 * * * *",
                "--job-type",
                "t",
            ],
            None,
            "INVALID_CRON",
        ),
        (
            &[
                "schedule",
                "create",
                "--name",
                "a",
                "--cron",
                "@daily",
                "--job-type",
                "t",
                "--timezone",
                "No/Where",
            ],
            None,
            "INVALID_TIMEZONE",
        ),
        (
            &["schedule", "toggle", "--name", "nope", "--enabled", "true"],
            None,
            "SCHEDULE_NOT_FOUND",
        ),
        (&["queue", "pause", ""], None, "INVALID_ARGUMENT"),
    ];
    for (args, stdin, code) in cases {
        let (rc, out) = cli(&db, args, stdin);
        assert_eq!(rc, 1, "{args:?}: exit {rc}, stdout {out}");
        let v: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert_eq!(v["error"]["code"], code, "{args:?}: {out}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(cli(&db, &["stats"], None).1, stats_before, "stats changed");
    assert_eq!(
        cli(&db, &["events"], None).1,
        events_before,
        "the event log changed"
    );
}
