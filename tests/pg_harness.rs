//! The tests' PostgreSQL server (tests/common/pg.rs): it starts, accepts connections, keeps
//! committed data across a crash when fsync is on, and leaves no server process or
//! directory behind once the test process has exited, cleanly or killed.
//!
//! The cleanup tests re-run this binary as a child that starts a cluster and reports its
//! postmaster's pid and directory; the parent waits for (or kills) the child and then checks
//! that both are gone.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::{self, Cluster, Options};

/// The child role: "exit" (start a cluster, report, return) or "hang" (report, then sleep
/// until killed).
const ROLE_ENV: &str = "JOBSPOOL_TEST_PG_HARNESS_CHILD";

#[test]
fn server_accepts_connections_and_schemas() {
    let Some(url) = pg::url_or_skip("server_accepts_connections_and_schemas") else {
        return;
    };
    assert_eq!(pg::psql(&url, "SELECT 1").unwrap(), "1");
    let schema = pg::unique_schema("harness");
    pg::psql(
        &url,
        &format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (x int); INSERT INTO {schema}.t VALUES (7);"),
    )
    .unwrap();
    assert_eq!(
        pg::psql(&url, &format!("SELECT x FROM {schema}.t")).unwrap(),
        "7"
    );
    pg::psql(&url, &format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    // The same answer on a second call (one cluster per process).
    assert_eq!(pg::url().unwrap(), url);
}

/// A cluster with fsync on keeps a committed row across an immediate stop (a crash:
/// no checkpoint) and a restart on the same port.
#[test]
fn committed_rows_survive_a_server_crash() {
    if pg::bin_dir().is_none() {
        pg::skip_or_fail(
            "committed_rows_survive_a_server_crash",
            "no PostgreSQL server binaries to start a cluster of the test's own",
        );
        return;
    }
    let cluster = Cluster::start(&Options::durable()).unwrap();
    let url = cluster.url();
    pg::psql(
        &url,
        "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);",
    )
    .unwrap();
    let pid = cluster.pid().expect("a running server has a pid");
    cluster.stop_immediate();
    assert!(
        !alive(pid),
        "the server must be gone after an immediate stop"
    );
    assert!(pg::psql(&url, "SELECT 1").is_err(), "the server is down");
    cluster.restart().unwrap();
    assert_eq!(pg::psql(&url, "SELECT count(*) FROM t").unwrap(), "1000");
    let dir = cluster.dir().to_path_buf();
    let pid = cluster.pid().unwrap();
    drop(cluster);
    assert_gone(pid, &dir);
}

#[test]
fn cluster_is_removed_when_the_test_process_exits() {
    cleanup_case("exit", "cluster_is_removed_when_the_test_process_exits");
}

#[test]
fn cluster_is_removed_when_the_test_process_is_killed() {
    cleanup_case("hang", "cluster_is_removed_when_the_test_process_is_killed");
}

fn cleanup_case(role: &str, test: &str) {
    if let Ok(r) = std::env::var(ROLE_ENV) {
        return child(&r);
    }
    if pg::bin_dir().is_none() {
        pg::skip_or_fail(
            test,
            "no PostgreSQL server binaries to start a cluster with",
        );
        return;
    }
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        // The child must start its own cluster, not use a given server.
        .env_remove(pg::URL_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Read the child's output to its end on a thread (a child writing to a closed pipe
    // would fail).
    let (tx, rx) = std::sync::mpsc::channel();
    let out = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(msg) = common::heard(&line) {
                let _ = tx.send(msg.to_string());
            }
        }
    });
    let mut pid = None;
    let mut dir = None;
    for msg in &rx {
        if let Some(p) = msg.strip_prefix("pid ") {
            pid = Some(p.parse::<u32>().unwrap());
        } else if let Some(d) = msg.strip_prefix("dir ") {
            dir = Some(PathBuf::from(d));
        }
        if pid.is_some() && dir.is_some() {
            break;
        }
    }
    let (pid, dir) = (
        pid.expect("child's pid line"),
        dir.expect("child's dir line"),
    );
    assert!(alive(pid), "the child's server runs while the child does");
    if role == "hang" {
        c.kill().unwrap();
    }
    let status = c.wait().unwrap();
    reader.join().unwrap();
    if role == "exit" {
        assert!(status.success(), "child failed: {status}");
    }
    assert_gone(pid, &dir);
}

fn child(role: &str) {
    let url = pg::url().expect("starting the child's cluster");
    assert_eq!(pg::psql(&url, "SELECT 1").unwrap(), "1");
    let pid = pg::psql(&url, "SELECT pg_backend_pid()").unwrap();
    assert!(!pid.is_empty());
    let dir = pg::psql(&url, "SHOW data_directory").unwrap();
    let dir = Path::new(&dir).parent().unwrap().to_path_buf();
    let postmaster = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    common::say(&format!("dir {}", dir.display()));
    common::say(&format!("pid {}", postmaster.lines().next().unwrap()));
    if role == "hang" {
        std::thread::sleep(Duration::from_secs(600));
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Waits up to 20 s for the server `pid` to end and `dir` to be removed.
fn assert_gone(pid: u32, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (alive(pid) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "the server (pid {pid}) still runs");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
