//! `jobspool bench --db postgres://...`: every mode runs on PostgreSQL, measures the
//! server's commit rate in the same run, and leaves no schema of its own behind.

mod common;

use std::process::Command;

use common::pg;

#[path = "common/bench.rs"]
mod bench_run;

fn bench(url: &str, args: &[&str]) -> serde_json::Value {
    bench_run::bench_json(&[&["--db", url][..], args].concat())
}

fn bench_schemas(url: &str) -> String {
    pg::psql(
        url,
        "SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname LIKE 'jobspool_bench%'",
    )
    .unwrap()
}

#[test]
fn every_mode_runs_on_postgres_with_the_server_commit_rate() {
    let Some(url) = pg::url_or_skip("every_mode_runs_on_postgres_with_the_server_commit_rate")
    else {
        return;
    };
    let small = ["--jobs", "60", "--producers", "2", "--workers", "2"];
    for mode in ["burn-down", "steady", "enqueue"] {
        let r = bench(&url, &[&["--mode", mode][..], &small[..]].concat());
        assert_eq!(r["backend"], "postgres", "{r}");
        assert!(r["serverCommitPerSec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["enqueuePerSec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["enqueueVsServerCommit"].as_f64().unwrap() > 0.0, "{r}");
        if mode == "burn-down" {
            // The default burn-down: the pool's own prefetch.
            assert_eq!(r["variant"], "default", "{r}");
            assert!(r["prefetch"].is_null(), "{r}");
        }
        if mode == "burn-down" {
            assert!(r.get("serverCommitClients").is_none(), "{r}");
        } else {
            // With 2 producers, also the server's limit at 2 clients.
            assert_eq!(r["serverCommitClients"], 2, "{r}");
            assert!(
                r["serverCommitPerSecAtClients"].as_f64().unwrap() > 0.0,
                "{r}"
            );
            assert!(
                r["enqueueVsServerCommitAtClients"].as_f64().unwrap() > 0.0,
                "{r}"
            );
        }
        if mode == "enqueue" {
            assert_eq!(r["pending"], 60, "{r}");
        } else {
            assert!(r["processedPerSec"].as_f64().unwrap() > 0.0, "{r}");
            assert_eq!(r["pending"], 0, "{r}");
        }
    }
    let r = bench(
        &url,
        &[
            "--mode",
            "burn-down",
            "--jobs",
            "30",
            "--durability",
            "buffered",
        ],
    );
    assert!(r["serverAsyncCommitPerSec"].as_f64().unwrap() > 0.0, "{r}");
    // fill keeps its schema, open finds the jobs there.
    let _ = pg::psql(&url, "DROP SCHEMA IF EXISTS jobspool_bench CASCADE");
    let r = bench(&url, &["--mode", "fill", "--jobs", "40"]);
    assert_eq!(r["pending"], 40, "{r}");
    let r = bench(&url, &["--mode", "open"]);
    assert_eq!(r["pending"], 40, "{r}");
    assert!(r["openMs"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(
        bench_schemas(&url),
        "jobspool_bench",
        "only the kept schema remains"
    );
    pg::psql(&url, "DROP SCHEMA jobspool_bench CASCADE").unwrap();
}

#[test]
fn processes_and_drain_need_postgres() {
    let dir = common::tempdir();
    for args in [&["--processes", "2"][..], &["--mode", "drain"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
            .args(["bench", "--jobs", "10", "--db"])
            .arg(dir.path().join("db"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("need a PostgreSQL --db"), "{args:?}: {err}");
    }
}

#[test]
fn bad_bench_options_on_postgres_are_invalid_argument_before_any_connection() {
    // Nothing listens on port 1: these must fail on the arguments, not the connection.
    let url = "postgres://nobody@127.0.0.1:1/none";
    for args in [
        &["--mode", "steady", "--processes", "2"][..],
        &["--schema", "Bad;drop"][..],
        &["--mode", "drain"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
            .args(["bench", "--jobs", "10", "--db", url])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("INVALID_ARGUMENT"), "{args:?}: {err}");
    }
}

#[test]
fn compare_runs_the_workload_on_sled_and_postgres_side_by_side() {
    let Some(url) = pg::url_or_skip("compare_runs_the_workload_on_sled_and_postgres_side_by_side")
    else {
        return;
    };
    let dir = common::tempdir();
    let db = dir.path().join("db");
    let report = dir.path().join("both.html");
    let run = |json: bool, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobspool"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args([
                "bench",
                "--jobs",
                "200",
                "--workers",
                "4",
                "--compare",
                &url,
                "--db",
            ])
            .arg(&db)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bench --compare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let r: serde_json::Value =
        serde_json::from_str(&run(true, &["--report", report.to_str().unwrap()])).unwrap();
    assert_eq!(
        r["backends"],
        serde_json::json!(["sled", "postgres"]),
        "{r}"
    );
    assert_eq!(r["mode"], "burn-down", "{r}");
    for backend in ["sled", "postgres"] {
        let b = &r[backend];
        assert_eq!(b["backend"], backend, "{r}");
        assert_eq!(b["jobs"], 200, "{r}");
        assert_eq!(b["variant"], "default", "{r}");
        assert!(b["enqueuePerSec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(b["processedPerSec"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(r["sled"]["sledInsertPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert!(
        r["postgres"]["serverCommitPerSec"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert_eq!(r["postgres"]["pending"], 0, "{r}");
    // The report draws both: a series each, sled's three limits and the server's one.
    let doc = std::fs::read_to_string(&report).unwrap();
    for backend in ["sled", "postgres"] {
        let series = format!("class=\"series\" data-backend=\"{backend}\"");
        assert_eq!(doc.matches(&series).count(), 1, "{backend}");
    }
    assert_eq!(doc.matches("class=\"limit\"").count(), 4);
    assert!(doc.contains("postgres: server commits/s"));
    assert!(doc.contains("<th>sled</th><th>postgres</th>"));
    // The table: a column per backend, a row per measure.
    let text = run(false, &[]);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.contains("sled") && l.contains("postgres") && !l.contains("mode"))
        .unwrap_or_else(|| panic!("no header row: {text}"));
    assert!(header.find("sled") < header.find("postgres"), "{header}");
    for row in [
        "enqueue jobs/s",
        "processed jobs/s",
        "latency p50 ms",
        "latency p99 ms",
        "enqueue limit/s",
        "enqueue / limit",
        "processing limit/s",
        "processed / limit",
    ] {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no row {row}: {text}"));
        let cells = line.trim_start()[row.len()..].split_whitespace().count();
        assert_eq!(cells, 2, "{row}: one cell per backend: {line}");
    }
    assert!(
        text.contains("sled inserts/s") && text.contains("server commits/s"),
        "{text}"
    );
}
