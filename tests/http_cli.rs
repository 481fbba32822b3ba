//! `jobspool serve --http` and `jobspool work --http`: the first stdout line names the URL,
//! the server answers, other commands reach the database through the control socket, and
//! a signal stops it.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::http::{request, Reply};
use common::{db_path, tempdir};

/// A `jobspool` process and the URL it printed first.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobspool"));
        cmd.args(args)
            .env_remove("JOBSPOOL_HTTP_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting jobspool");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim_end()
            .strip_prefix("http: listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_string();
        Served { child, url }
    }

    fn addr(&self) -> SocketAddr {
        let rest = self.url.strip_prefix("http://").unwrap();
        rest.split('/').next().unwrap().parse().unwrap()
    }

    fn token(&self) -> Option<&str> {
        self.url.split("?token=").nth(1)
    }

    fn op(&self, token: &str, name: &str, body: &str) -> Reply {
        request(
            self.addr(),
            "POST",
            &format!("/api/v1/ops/{name}"),
            &[("Authorization", &format!("Bearer {token}"))],
            body.as_bytes(),
        )
    }

    /// SIGTERM, then the exit status must be success.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn serve_prints_its_login_url_and_serves_the_database() {
    let dir = tempdir();
    let db = db_path(&dir);
    let db_s = db.to_str().unwrap();
    let s = Served::start(&["--db", db_s, "serve", "--http", "127.0.0.1:0"], &[]);
    let token = s.token().expect("a generated token in the URL").to_string();
    assert_eq!(token.len(), 32);
    let r = s.op(&token, "jobs.enqueue", r#"{"type":"t","payload":{"n":1}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    // The other commands reach it through the control socket meanwhile.
    let out = cli(&db, &["--json", "get", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["payload"], serde_json::json!({"n": 1}));
    assert_eq!(s.op("wrong", "jobs.stats", "{}").status, 401);
    s.stop();
}

#[test]
fn serve_takes_the_token_read_only_and_allowed_hosts() {
    let dir = tempdir();
    let db = db_path(&dir);
    let db_s = db.to_str().unwrap();
    let s = Served::start(
        &[
            "--db",
            db_s,
            "serve",
            "--http",
            "127.0.0.1:0",
            "--read-only",
            "--allow-host",
            "q.example",
        ],
        &[("JOBSPOOL_HTTP_TOKEN", "from-env")],
    );
    assert_eq!(s.token(), None, "a given token is not printed");
    let r = s.op("from-env", "jobs.enqueue", r#"{"type":"t"}"#);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.op("from-env", "jobs.stats", "{}").status, 200);
    let r = request(s.addr(), "GET", "/healthz", &[("Host", "q.example")], b"");
    assert_eq!(r.status, 200);
    s.stop();
}

#[test]
fn a_non_loopback_address_without_a_token_is_refused() {
    let dir = tempdir();
    let db = db_path(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--http", "0.0.0.0:0"])
        .env_remove("JOBSPOOL_HTTP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token"), "{err}");
    let out = cli(&db, &["serve"]);
    assert_eq!(out.status.code(), Some(1), "serve needs --http");
    let out = cli(&db, &["serve", "--http", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IP:PORT"));
}

#[test]
fn work_serves_http_beside_the_worker() {
    let dir = tempdir();
    let db = db_path(&dir);
    let db_s = db.to_str().unwrap();
    let s = Served::start(
        &[
            "--db",
            db_s,
            "work",
            "--handler",
            "t=cat >/dev/null",
            "--http",
            "127.0.0.1:0",
            "--token",
            "tok",
        ],
        &[],
    );
    let id = s.op("tok", "jobs.enqueue", r#"{"type":"t"}"#).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job = s
            .op("tok", "jobs.get", &format!(r#"{{"jobId":"{id}"}}"#))
            .json();
        if job["status"] == "completed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ran: {job}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let m = request(
        s.addr(),
        "GET",
        "/metrics",
        &[("Authorization", "Bearer tok")],
        b"",
    )
    .text();
    assert!(
        m.contains("jobspool_handler_duration_seconds_count{outcome=\"completed\"} 1"),
        "{m}"
    );
    s.stop();
}
