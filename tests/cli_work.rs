//! `jobspool work` end to end with real shell commands, plus the dead-letter, prune and queue
//! commands around it. Every child process runs under a deadline so a hang fails the test
//! instead of blocking it; assertions are on job state, never on elapsed time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_jobspool")
}

struct Db {
    _dir: tempfile::TempDir,
    root: PathBuf,
    path: PathBuf,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Db {
        path: root.join("db"),
        root,
        _dir: dir,
    }
}

fn cmd(db: &Db, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--db").arg(&db.path).args(args);
    c.env_remove("JOBSPOOL_DB");
    c.stdin(Stdio::null());
    c
}

/// Waits for `child` up to [`DEADLINE`], killing it (by its pid) and failing if it hangs.
fn wait_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(db: &Db, args: &[&str]) -> Output {
    let mut child = cmd(db, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Outputs here are small; read them after exit.
    let status = wait_deadline(&mut child, &format!("jobspool {args:?}"));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

fn ok(db: &Db, args: &[&str]) -> Output {
    let out = run(db, args);
    assert!(
        out.status.success(),
        "jobspool {args:?} failed with {}: stdout {} stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn enqueue(db: &Db, args: &[&str]) -> String {
    let mut all = vec!["--json", "enqueue"];
    all.extend_from_slice(args);
    let v = json_of(&ok(db, &all));
    v["id"].as_str().unwrap().to_string()
}

fn get(db: &Db, id: &str) -> Value {
    json_of(&ok(db, &["--json", "get", id]))
}

fn work(db: &Db, args: &[&str]) -> Output {
    let mut all = vec!["work"];
    all.extend_from_slice(args);
    ok(db, &all)
}

fn status(job: &Value) -> &str {
    job["status"].as_str().unwrap()
}

fn last_error(job: &Value) -> String {
    job["lastError"].as_str().unwrap_or_default().to_string()
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        }
    }
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn wait_pid_file(file: &Path, work: &mut Child) -> i32 {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = read_pid(file) {
            return pid;
        }
        if let Some(st) = work.try_wait().unwrap() {
            panic!("work exited ({st}) before the command started");
        }
        if Instant::now() >= end {
            let _ = work.kill();
            let _ = work.wait();
            panic!("the command never started");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that the command with `pid` is gone (within a generous deadline); kills it if not.
fn assert_command_terminated(pid: i32, what: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("{what}: the command (pid {pid}) was left running after `work` exited");
    }
}

/// A handler that records its shell's pid (kept by `exec`) and then sleeps for 30 s.
fn sleeper(pid_file: &Path) -> String {
    format!("echo $$ > '{}'; exec sleep 30", sh_quote_free(pid_file))
}

fn sh_quote_free(p: &Path) -> String {
    let s = p.display().to_string();
    assert!(!s.contains('\''), "temp path with a quote: {s}");
    s
}

#[test]
fn echo_handler_stores_stdout_as_the_result() {
    let db = db();
    let payload = r#"{"to":"a@b.c","n":[1,2.5,"x"],"nested":{"ok":true}}"#;
    let id = enqueue(&db, &["--type", "echo", "--payload", payload]);
    work(&db, &["--handler", "echo=cat", "--stop-when-empty"]);
    let job = get(&db, &id);
    assert_eq!(status(&job), "completed");
    assert_eq!(job["attempts"], 1);
    let expected: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(job["result"], expected);
    assert_eq!(job["payload"], expected);
}

#[test]
fn binary_payload_reaches_stdin_byte_for_byte() {
    let db = db();
    let file = db.root.join("payload.bin");
    let bytes: Vec<u8> = (0..=255u8).chain([0, 10, 13, 255]).collect();
    std::fs::write(&file, &bytes).unwrap();
    let arg = format!("@{}", file.display());
    let id = enqueue(&db, &["--type", "raw", "--payload", &arg]);
    work(&db, &["--handler", "raw=cat", "--stop-when-empty"]);
    let job = get(&db, &id);
    assert_eq!(status(&job), "completed");
    assert!(job["payload"].is_string(), "{job}");
    assert_eq!(job["payloadEncoding"], "base64");
    assert_eq!(job["result"], job["payload"]);
    assert_eq!(job["resultEncoding"], "base64");
}

#[test]
fn command_sees_job_environment_variables() {
    let db = db();
    let id = enqueue(
        &db,
        &["--type", "env.t", "--queue", "mailq", "--payload", "{}"],
    );
    work(
        &db,
        &[
            "--handler",
            r#"env.t=printf '"%s|%s|%s|%s"' "$JOBSPOOL_JOB_ID" "$JOBSPOOL_JOB_TYPE" "$JOBSPOOL_ATTEMPT" "$JOBSPOOL_QUEUE""#,
            "--stop-when-empty",
        ],
    );
    let job = get(&db, &id);
    assert_eq!(status(&job), "completed", "{job}");
    assert_eq!(job["result"], Value::from(format!("{id}|env.t|1|mailq")));
}

#[test]
fn exit_65_fails_the_job_permanently() {
    let db = db();
    let id = enqueue(&db, &["--type", "perm", "--max-retries", "5"]);
    work(
        &db,
        &[
            "--handler",
            "perm=echo 'bad data' >&2; exit 65",
            "--stop-when-empty",
        ],
    );
    let job = get(&db, &id);
    assert_eq!(status(&job), "failed", "{job}");
    assert_eq!(job["attempts"], 1);
    let err = last_error(&job);
    assert!(err.contains("65"), "lastError {err:?}");
}

#[test]
fn other_exit_codes_retry_until_max_retries_then_dead_letter() {
    let db = db();
    let id = enqueue(&db, &["--type", "flaky", "--max-retries", "2"]);
    work(
        &db,
        &[
            "--handler",
            "flaky=echo oops >&2; exit 3",
            "--stop-when-empty",
        ],
    );
    let job = get(&db, &id);
    assert_eq!(status(&job), "dead_letter", "{job}");
    assert_eq!(job["attempts"], 2);
    let err = last_error(&job);
    assert!(
        err.contains('3') && err.contains("oops"),
        "lastError {err:?}"
    );
    let execs = job["executions"].as_array().unwrap();
    assert_eq!(execs.len(), 2);
    assert!(execs.iter().all(|e| e["success"] == false));
}

#[test]
fn stop_when_empty_exits_zero_on_an_empty_database() {
    let db = db();
    let out = work(&db, &["--handler", "t=cat", "--stop-when-empty"]);
    assert!(out.status.success());
}

#[test]
fn job_of_a_type_without_handler_stays_pending_and_stop_when_empty_exits() {
    let db = db();
    let other = enqueue(&db, &["--type", "unhandled", "--priority", "10"]);
    let mine = enqueue(&db, &["--type", "echo", "--payload", "1"]);
    work(&db, &["--handler", "echo=cat", "--stop-when-empty"]);
    let o = get(&db, &other);
    assert_eq!(status(&o), "pending");
    assert_eq!(o["attempts"], 0);
    assert_eq!(status(&get(&db, &mine)), "completed");
}

#[test]
fn timeout_fails_the_attempt_and_dead_letters_at_max_retries() {
    let db = db();
    let pid_file = db.root.join("cmd.pid");
    let id = enqueue(
        &db,
        &[
            "--type",
            "slow",
            "--timeout-ms",
            "300",
            "--max-retries",
            "1",
        ],
    );
    let handler = format!("slow={}", sleeper(&pid_file));
    work(&db, &["--handler", &handler, "--stop-when-empty"]);
    let job = get(&db, &id);
    assert_eq!(status(&job), "dead_letter", "{job}");
    assert_eq!(job["attempts"], 1);
    let err = last_error(&job);
    assert!(err.contains("timed out"), "lastError {err:?}");
    if let Some(pid) = read_pid(&pid_file) {
        // Do not leave the sleeper behind, whatever the outcome of the other test.
        if alive(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn timeout_terminates_the_commands_process_group() {
    let db = db();
    let pid_file = db.root.join("cmd.pid");
    enqueue(
        &db,
        &[
            "--type",
            "slow",
            "--timeout-ms",
            "300",
            "--max-retries",
            "1",
        ],
    );
    let handler = format!("slow={}", sleeper(&pid_file));
    work(&db, &["--handler", &handler, "--stop-when-empty"]);
    let pid = read_pid(&pid_file).expect("the command ran and wrote its pid");
    assert_command_terminated(pid, "after a timeout");
}

/// Starts `work` on a job whose command sleeps, waits until the command runs, sends SIGTERM
/// to `work`, and returns (work's exit status, the job, the command's pid).
fn sigterm_during_a_job(db: &Db) -> (ExitStatus, Value, i32) {
    let pid_file = db.root.join("cmd.pid");
    let id = enqueue(db, &["--type", "hold"]);
    let handler = format!("hold={}", sleeper(&pid_file));
    let mut w = cmd(db, &["work", "--handler", &handler, "--grace-secs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cmd_pid = wait_pid_file(&pid_file, &mut w);
    let sent = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let st = wait_deadline(&mut w, "work after SIGTERM");
    (st, get(db, &id), cmd_pid)
}

#[test]
fn sigterm_shuts_work_down_gracefully_and_returns_the_job_to_pending() {
    let db = db();
    let (st, job, cmd_pid) = sigterm_during_a_job(&db);
    if alive(cmd_pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &cmd_pid.to_string()])
            .status();
    }
    assert_eq!(st.code(), Some(0), "work exited with {st}");
    assert_eq!(status(&job), "pending", "{job}");
    assert_eq!(job["attempts"], 0);
    let execs = job["executions"].as_array().unwrap();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["released"], true, "{job}");
}

#[test]
fn sigterm_shutdown_terminates_the_running_command() {
    let db = db();
    let (_, _, cmd_pid) = sigterm_during_a_job(&db);
    assert_command_terminated(cmd_pid, "after SIGTERM to work");
}

#[test]
fn get_reaches_the_database_while_work_holds_it() {
    let db = db();
    let pid_file = db.root.join("cmd.pid");
    let id = enqueue(&db, &["--type", "hold"]);
    let handler = format!("hold={}", sleeper(&pid_file));
    let mut w = cmd(&db, &["work", "--handler", &handler, "--grace-secs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cmd_pid = wait_pid_file(&pid_file, &mut w);
    let out = run(&db, &["--json", "get", &id]);
    let _ = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status();
    wait_deadline(&mut w, "work after SIGTERM");
    if alive(cmd_pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &cmd_pid.to_string()])
            .status();
    }
    assert!(
        out.status.success(),
        "get while work runs failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(status(&json_of(&out)), "running");
}

#[test]
fn dead_list_and_redrive_one_and_all() {
    let db = db();
    let perm = enqueue(&db, &["--type", "perm"]);
    let dead = enqueue(&db, &["--type", "flaky", "--max-retries", "1"]);
    let dead2 = enqueue(
        &db,
        &["--type", "flaky", "--max-retries", "1", "--queue", "q2"],
    );
    let done = enqueue(&db, &["--type", "fine"]);
    work(
        &db,
        &[
            "--handler",
            "perm=exit 65",
            "--handler",
            "flaky=exit 1",
            "--handler",
            "fine=true",
            "--stop-when-empty",
        ],
    );
    let listed = json_of(&ok(&db, &["--json", "dead", "list"]));
    let mut ids: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![perm.as_str(), dead.as_str(), dead2.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_eq!(status(&get(&db, &done)), "completed");

    let r = json_of(&ok(&db, &["--json", "dead", "redrive", &dead]));
    assert_eq!(r["redriven"], 1);
    assert_eq!(r["jobIds"], serde_json::json!([dead]));
    let j = get(&db, &dead);
    assert_eq!(status(&j), "pending");
    assert_eq!(j["attempts"], 0);
    assert!(
        j.get("lastError").is_none() || j["lastError"].is_null(),
        "{j}"
    );

    // Redriving a pending job is an operation error.
    let bad = run(&db, &["--json", "dead", "redrive", &dead]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(json_of(&bad)["error"]["code"], "INVALID_ARGUMENT");

    let r = json_of(&ok(
        &db,
        &["--json", "dead", "redrive", "--all", "--queue", "q2"],
    ));
    assert_eq!(r["redriven"], 1);
    assert_eq!(status(&get(&db, &dead2)), "pending");
    assert_eq!(status(&get(&db, &perm)), "failed");
    let r = json_of(&ok(&db, &["--json", "dead", "redrive", "--all"]));
    assert_eq!(r["redriven"], 1);
    assert_eq!(status(&get(&db, &perm)), "pending");
    let listed = json_of(&ok(&db, &["--json", "dead", "list"]));
    assert_eq!(listed["jobs"], serde_json::json!([]));

    // The redriven jobs run again.
    work(
        &db,
        &[
            "--handler",
            "perm=true",
            "--handler",
            "flaky=true",
            "--stop-when-empty",
        ],
    );
    for id in [&perm, &dead, &dead2] {
        assert_eq!(status(&get(&db, id)), "completed");
    }
}

#[test]
fn prune_json_reports_a_count_and_keeps_recent_jobs() {
    let db = db();
    let id = enqueue(&db, &["--type", "fine"]);
    work(&db, &["--handler", "fine=true", "--stop-when-empty"]);
    let r = json_of(&ok(&db, &["--json", "prune"]));
    assert_eq!(
        r["pruned"], 0,
        "a job completed just now is within 24 h retention"
    );
    assert_eq!(status(&get(&db, &id)), "completed");
}

#[test]
fn queue_pause_holds_jobs_back_from_work_and_resume_releases_them() {
    let db = db();
    let log = db.root.join("ran.log");
    let log_s = sh_quote_free(&log);
    let r = json_of(&ok(&db, &["--json", "queue", "pause", "q1"]));
    assert_eq!(r["paused"], true);
    let stats = json_of(&ok(&db, &["--json", "stats"]));
    assert_eq!(stats["queues"]["q1"]["paused"], true, "{stats}");
    // Higher priority and older: without the pause it would run first.
    let held = enqueue(&db, &["--type", "t", "--queue", "q1", "--priority", "9"]);
    let free = enqueue(&db, &["--type", "t", "--queue", "q2"]);
    let handler = format!("t=echo \"$JOBSPOOL_QUEUE\" >> '{log_s}'");
    let mut w = cmd(
        &db,
        &[
            "work",
            "--handler",
            &handler,
            "--concurrency",
            "1",
            "--grace-secs",
            "1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("q2")
    {
        if Instant::now() >= end {
            let _ = w.kill();
            let _ = w.wait();
            panic!("the q2 job never ran");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status();
    let st = wait_deadline(&mut w, "work after SIGTERM");
    assert!(st.success(), "work exited with {st}");
    let ran = std::fs::read_to_string(&log).unwrap();
    assert!(
        !ran.contains("q1"),
        "a job of the paused queue ran: {ran:?}"
    );
    assert_eq!(status(&get(&db, &held)), "pending");
    assert_eq!(status(&get(&db, &free)), "completed");

    let r = json_of(&ok(&db, &["--json", "queue", "resume", "q1"]));
    assert_eq!(r["paused"], false);
    work(&db, &["--handler", &handler, "--stop-when-empty"]);
    assert_eq!(status(&get(&db, &held)), "completed");
    let stats = json_of(&ok(&db, &["--json", "stats"]));
    assert_eq!(stats["queues"]["q1"]["paused"], false);
}

#[test]
fn work_rejects_malformed_options_with_exit_1() {
    let db = db();
    for args in [
        vec![
            "--json",
            "work",
            "--handler",
            "no-equals-sign",
            "--stop-when-empty",
        ],
        vec![
            "--json",
            "work",
            "--handler",
            "t=true",
            "--concurrency",
            "0",
        ],
        vec!["--json", "work", "--handler", "=true", "--stop-when-empty"],
    ] {
        let out = run(&db, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            json_of(&out)["error"]["code"],
            "INVALID_ARGUMENT",
            "{args:?}"
        );
    }
}

/// Polls until `pid` is gone (up to 10 s); false if it is still alive then.
fn gone_within_deadline(pid: i32) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn kill_pid(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

#[test]
fn killed_work_takes_its_handlers_with_it() {
    let db = db();
    let sh_file = db.root.join("sh.pid");
    let child_file = db.root.join("child.pid");
    let id = enqueue(&db, &["--type", "hold"]);
    // The handler's `sh` starts a grandchild (in its process group) and waits for it.
    let handler = format!(
        "hold=echo $$ > '{}'; sleep 300 & echo $! > '{}'; wait",
        sh_quote_free(&sh_file),
        sh_quote_free(&child_file)
    );
    let mut w = cmd(&db, &["work", "--handler", &handler])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let grandchild = wait_pid_file(&child_file, &mut w);
    let sh = read_pid(&sh_file).expect("sh wrote its pid before starting the grandchild");
    assert!(alive(sh) && alive(grandchild));
    w.kill().unwrap(); // SIGKILL: no shutdown, no cleanup
    w.wait().unwrap();

    // The `sh` dies with its worker (parent-death signal).
    let sh_gone = gone_within_deadline(sh);
    if !sh_gone {
        kill_pid(sh);
    }

    // The next `work` on the database kills what is left of the group before it claims the
    // job (which recovery made pending again) a second time.
    let second = run(
        &db,
        &["work", "--handler", "other=true", "--stop-when-empty"],
    );
    let grandchild_gone = gone_within_deadline(grandchild);
    if !grandchild_gone {
        kill_pid(grandchild);
    }
    assert!(
        second.status.success(),
        "second work: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        sh_gone,
        "the handler's sh (pid {sh}) outlived the killed work"
    );
    assert!(
        grandchild_gone,
        "the handler's child (pid {grandchild}) was still running after the next work started"
    );
    assert_eq!(status(&get(&db, &id)), "pending");
    assert!(
        !db.path.join("handlers").read_dir().unwrap().any(|_| true),
        "the registry keeps no record of the killed group"
    );
}
