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
