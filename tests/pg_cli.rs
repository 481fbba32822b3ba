//! The `jobspool` binary on PostgreSQL: `--db postgres://...` and `--schema`, every command
//! connecting itself (no control socket), `work` draining what another process enqueued,
//! and `events --follow` seeing other processes' commits. Skipped (one line on stderr)
//! without a server; fails instead under `JOBSPOOL_TEST_REQUIRE_BACKENDS=postgres`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg;

fn jobspool(url: &str, schema: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args(["--db", url, "--schema", schema, "--json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running jobspool");
    assert!(
        out.status.success(),
        "jobspool {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn cli_commands_work_and_follow_connect_to_postgres_directly() {
    let Some(url) = pg::url_or_skip("pg_cli::cli_commands_work_and_follow") else {
        return;
    };
    let schema = pg::unique_schema("cli");
    // A read-only command on an empty schema creates nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args(["--db", &url, "--schema", &schema, "--json", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("DATABASE_NOT_FOUND"));

    let job = jobspool(
        &url,
        &schema,
        &["enqueue", "--type", "t", "--payload", r#"{"n":1}"#],
    );
    assert_eq!(job["status"], "pending");
    // A follower in its own process, started before the work happens.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args([
            "--db", &url, "--schema", &schema, "--json", "events", "--follow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let reader = std::thread::spawn(move || {
        let mut names = Vec::new();
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            names.push(v["name"].as_str().unwrap_or_default().to_string());
            if names.len() == 3 {
                break;
            }
        }
        names
    });
    let work = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args([
            "--db",
            &url,
            "--schema",
            &schema,
            "work",
            "--handler",
            "t=cat",
        ])
        .arg("--stop-when-empty")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(work.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        reader.join().unwrap(),
        ["job.enqueued", "job.started", "job.completed"]
    );
    let got = jobspool(&url, &schema, &["get", job["id"].as_str().unwrap()]);
    assert_eq!(got["status"], "completed");
    assert_eq!(got["result"], serde_json::json!({"n": 1}));
    let stats = jobspool(&url, &schema, &["stats"]);
    assert_eq!(stats["completed"], 1);
    let _ = pg::psql(&url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}

fn wait_pid(file: &std::path::Path, work: &mut std::process::Child) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            work.try_wait().unwrap().is_none(),
            "work exited before its command started"
        );
        assert!(Instant::now() < end, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// On PostgreSQL, `work` recorded its commands' process groups under a path made from the
/// URL, which does not exist: after `kill -9` of `work`, what its command had started kept
/// running beside the job's next run. And only groups of `work` processes that have exited
/// may be reaped: on PostgreSQL several run on one host at once.
#[test]
fn regression_a_killed_work_on_postgres_has_its_commands_reaped_but_a_live_ones_are_not() {
    let Some(url) = pg::url_or_skip("pg_cli::regression_a_killed_work_on_postgres") else {
        return;
    };
    let schema = pg::unique_schema("reap");
    let tmp = tempfile::tempdir().unwrap();
    let runtime = tmp.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let work = |handler: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jobspool"));
        c.args([
            "--db",
            &url,
            "--schema",
            &schema,
            "work",
            "--handler",
            handler,
        ])
        .args(extra)
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    };
    // A command that starts a grandchild in its process group and waits for it.
    let hold = |name: &str| {
        let file = tmp.path().join(format!("{name}.pid"));
        let handler = format!("{name}=sleep 300 & echo $! > '{}'; wait", file.display());
        (file, handler)
    };
    jobspool(&url, &schema, &["enqueue", "--type", "killed"]);
    jobspool(&url, &schema, &["enqueue", "--type", "alive"]);
    let (killed_file, killed_handler) = hold("killed");
    let (alive_file, alive_handler) = hold("alive");
    let mut a = work(&killed_handler, &[]).spawn().unwrap();
    let orphan = wait_pid(&killed_file, &mut a);
    let mut b = work(&alive_handler, &[]).spawn().unwrap();
    let sibling = wait_pid(&alive_file, &mut b);
    a.kill().unwrap(); // SIGKILL: no shutdown, no cleanup
    a.wait().unwrap();

    // A third `work` on this host reaps the killed one's group, and leaves the live one's.
    let third = work("other=true", &["--stop-when-empty"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&third.stderr).into_owned();
    let orphan_gone = gone_within(orphan, Duration::from_secs(10));
    let sibling_alive = alive(sibling);
    for pid in [orphan, sibling] {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let _ = b.kill();
    let _ = b.wait();
    assert!(third.status.success(), "third work: {stderr}");
    assert!(
        orphan_gone,
        "the killed work's command (pid {orphan}) still ran after the next work started: {stderr}"
    );
    assert!(
        stderr.contains("killed 1 command process group"),
        "{stderr}"
    );
    assert!(
        sibling_alive,
        "a live work's command (pid {sibling}) was killed by another work"
    );
}
