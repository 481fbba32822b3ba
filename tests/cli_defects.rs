//! Regression tests for CLI defects, each named after the defect it pins: read-only commands
//! creating databases, `events --follow` not serving the socket, truncated `work` output,
//! `--json` argument errors and exit codes, silently ignored input, and small ones (the
//! refused 65th socket connection, help metavariables, `schedule create --priority`).

mod control_common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use control_common::{db_path, socket_is_live, tempdir, wait_for};
use serde_json::Value;

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobspool"));
    c.env_remove("JOBSPOOL_DB");
    c
}

fn run(db: &Path, args: &[&str]) -> Output {
    cli()
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running jobspool")
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok_json(db: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(db, &a);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", describe(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(&o)))
}

/// Runs with `--json`, asserts exit `rc` and one error document; returns (code, message).
fn err_json_rc(db: &Path, args: &[&str], rc: i32) -> (String, String) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(db, &a);
    assert_eq!(o.status.code(), Some(rc), "{args:?}: {}", describe(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{args:?}: {}", describe(&o));
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", describe(&o)));
    let code = v["error"]["code"].as_str().unwrap_or_default().to_string();
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!message.is_empty(), "{args:?}: {v}");
    (code, message)
}

fn err_json(db: &Path, args: &[&str]) -> (String, String) {
    err_json_rc(db, args, 1)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.display().to_string());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

/// A background `jobspool` process, killed when dropped.
struct Bg(Child);

impl Bg {
    fn spawn(db: &Path, args: &[&str]) -> Bg {
        Bg(cli()
            .arg("--db")
            .arg(db)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning jobspool"))
    }

    fn wait_socket(&mut self, db: &Path) {
        let socket = db.join("control.sock");
        wait_for("the control socket", || {
            if let Some(st) = self.0.try_wait().unwrap() {
                panic!("exited early: {st}");
            }
            socket_is_live(&socket).then_some(())
        });
    }

    fn term(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const READ_ONLY: [&[&str]; 7] = [
    &["stats"],
    &["get", "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e"],
    &["list"],
    &["events"],
    &["events", "--follow"],
    &["dead", "list"],
    &["schedule", "list"],
];

// ---- 1. read-only commands created databases ------------------------------------------

#[test]
fn read_only_commands_on_a_missing_database_are_database_not_found_and_create_nothing() {
    let dir = tempdir();
    let typo = dir.path().join("typo").join("nested").join("db");
    let unrelated = dir.path().join("unrelated");
    std::fs::create_dir(&unrelated).unwrap();
    std::fs::write(unrelated.join("notes.txt"), "keep me").unwrap();
    let before = listing(dir.path());
    for args in READ_ONLY {
        for db in [&typo, &unrelated] {
            let (code, message) = err_json(db, args);
            assert_eq!(code, "DATABASE_NOT_FOUND", "{args:?} on {}", db.display());
            assert!(message.contains(&db.display().to_string()), "{message}");
            assert_eq!(listing(dir.path()), before, "{args:?} created something");
        }
    }
    // Commands that store something still create the database.
    ok_json(&typo, &["enqueue", "--type", "t"]);
    assert_eq!(ok_json(&typo, &["stats"])["pending"], 1);
}

#[test]
fn read_only_open_without_create_if_missing_is_database_not_found_in_the_library() {
    let dir = tempdir();
    let db = db_path(&dir);
    let e = jobspool::Spool::builder()
        .create_if_missing(false)
        .open(&db)
        .unwrap_err();
    assert_eq!(e.code(), "DATABASE_NOT_FOUND", "{e}");
    assert!(!db.exists(), "nothing created");
    jobspool::Spool::open(&db).unwrap().close().unwrap();
    let spool = jobspool::Spool::builder()
        .create_if_missing(false)
        .open(&db)
        .expect("an existing database opens");
    spool.close().unwrap();
}

#[test]
fn db_pointing_at_a_regular_file_is_invalid_argument_naming_the_file() {
    let dir = tempdir();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "not a database").unwrap();
    for args in [&["stats"][..], &["enqueue", "--type", "t"]] {
        let (code, message) = err_json(&file, args);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}: {message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("is a file"), "{message}");
        assert!(!message.contains("File exists"), "{message}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a database");
}

// ---- 2. events --follow held the database without serving the socket -----------------

#[test]
fn events_follow_on_an_unheld_database_serves_the_control_socket() {
    let dir = tempdir();
    let db = db_path(&dir);
    ok_json(&db, &["enqueue", "--type", "first"]);
    let mut follow = Bg::spawn(&db, &["events", "--follow", "--json"]);
    follow.wait_socket(&db);
    // Other commands reach the database through the follower's socket.
    let job = ok_json(&db, &["enqueue", "--type", "second"]);
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(ok_json(&db, &["get", &id])["type"], "second");
    // And the follow shows the new job.
    let mut lines = BufReader::new(follow.0.stdout.take().unwrap()).lines();
    wait_for("the follower to print the new job", || {
        let line = lines.next()?.ok()?;
        let ev: Value = serde_json::from_str(&line).unwrap();
        (ev["jobId"] == id.as_str()).then_some(())
    });
    follow.term();
}

#[test]
fn second_work_on_a_held_database_says_the_holder_serves_its_socket() {
    let dir = tempdir();
    let db = db_path(&dir);
    let mut first = Bg::spawn(&db, &["work", "--handler", "t=true"]);
    first.wait_socket(&db);
    let (code, message) = err_json(&db, &["work", "--handler", "t=true", "--stop-when-empty"]);
    assert_eq!(code, "DATABASE_IN_USE");
    assert!(!message.contains("serves no reachable"), "{message}");
    assert!(message.contains("serves its control socket"), "{message}");
    assert!(message.contains("only one `work`"), "{message}");
    first.term();
}

// ---- 3. work: exit 0 with over 1 MiB of stdout ended failed ---------------------------

#[test]
fn work_handler_exiting_0_with_over_1_mib_of_stdout_completes_with_the_first_1_mib() {
    let dir = tempdir();
    let db = db_path(&dir);
    let id = ok_json(&db, &["enqueue", "--type", "big"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run(
        &db,
        &[
            "work",
            "--handler",
            "big=head -c 1100000 /dev/zero | tr '\\0' x",
            "--stop-when-empty",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("truncated"),
        "{}",
        describe(&o)
    );
    let spool = jobspool::Spool::open(&db).unwrap();
    let job = spool.get(id.parse().unwrap()).unwrap();
    assert_eq!(job.status, jobspool::JobStatus::Completed, "{job:?}");
    let result = job.result.expect("a result");
    assert_eq!(result.len(), jobspool::limits::DEFAULT_PAYLOAD_LIMIT);
    assert!(result.iter().all(|b| *b == b'x'));
    spool.close().unwrap();
}

// ---- 4. --json and exit codes ----------------------------------------------------------

#[test]
fn json_argument_parsing_errors_print_the_error_json_and_exit_2() {
    let dir = tempdir();
    let db = db_path(&dir);
    for args in [
        &["frobnicate"][..],
        &["enqueue"],
        &["enqueue", "--type", "t", "--priority", "high"],
        &["enqueue", "--type", "t", "--bogus-flag"],
        &["list", "--limit", "ten"],
        &["get"],
    ] {
        let (code, message) = err_json_rc(&db, args, 2);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}: {message}");
        assert!(!message.starts_with("error:"), "{message}");
    }
    assert!(!db.exists());
}

#[test]
fn out_of_range_numbers_exit_1_for_every_flag_with_the_valid_range() {
    let dir = tempdir();
    let db = db_path(&dir);
    ok_json(&db, &["enqueue", "--type", "t"]);
    let huge = "99999999999999999999999";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["enqueue", "--type", "t", "--max-retries", "4294967296"],
            "1..=1000000",
        ),
        (
            vec!["enqueue", "--type", "t", "--max-retries", huge],
            "1..=1000000",
        ),
        (
            vec!["enqueue", "--type", "t", "--priority", huge],
            "--priority",
        ),
        (
            vec!["enqueue", "--type", "t", "--timeout-ms", huge],
            "--timeout-ms",
        ),
        (
            vec!["enqueue", "--type", "t", "--delay", "inf"],
            "finite number of seconds",
        ),
        (
            vec!["enqueue", "--type", "t", "--delay", "NaN"],
            "finite number of seconds",
        ),
        (
            vec!["events", "--since", "-1"],
            "non-negative sequence number",
        ),
        (
            vec!["events", "--since", huge],
            "non-negative sequence number",
        ),
        (vec!["list", "--limit", huge], "--limit"),
        (vec!["dead", "list", "--limit", "-3"], "--limit"),
        (
            vec!["work", "--handler", "t=true", "--concurrency", huge],
            "--concurrency",
        ),
        (
            vec!["work", "--handler", "t=true", "--lease-secs", "-1"],
            "--lease-secs",
        ),
        (
            vec!["work", "--handler", "t=true", "--grace-secs", "-1"],
            "--grace-secs",
        ),
        (
            vec![
                "schedule",
                "create",
                "--name",
                "n",
                "--cron",
                "@daily",
                "--job-type",
                "t",
                "--max-retries",
                "-2",
            ],
            "1..=1000000",
        ),
        (
            vec![
                "schedule",
                "create",
                "--name",
                "n",
                "--cron",
                "@daily",
                "--job-type",
                "t",
                "--priority",
                huge,
            ],
            "--priority",
        ),
        (vec!["bench", "--jobs", "-1"], "--jobs"),
        (vec!["bench", "--workers", "-1"], "--workers"),
        (vec!["bench", "--payload-bytes", huge], "--payload-bytes"),
    ];
    for (args, says) in cases {
        let (code, message) = err_json(&db, &args);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}: {message}");
        assert!(
            message.contains(says),
            "{args:?}: {message:?} should say {says:?}"
        );
    }
}

// ---- 5. silently ignored input ---------------------------------------------------------

#[test]
fn dead_redrive_id_with_queue_or_type_is_rejected() {
    let dir = tempdir();
    let db = db_path(&dir);
    let id = ok_json(&db, &["enqueue", "--type", "t"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    for flag in ["--queue", "--type"] {
        let (code, message) = err_json(&db, &["dead", "redrive", &id, flag, "x"]);
        assert_eq!(code, "INVALID_ARGUMENT", "{message}");
        assert!(message.contains("--all"), "{message}");
    }
}

#[test]
fn duplicate_handler_types_are_rejected_naming_the_type() {
    let dir = tempdir();
    let db = db_path(&dir);
    let (code, message) = err_json(
        &db,
        &[
            "work",
            "--handler",
            "email.send=true",
            "--handler",
            "email.send=false",
            "--stop-when-empty",
        ],
    );
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("email.send"), "{message}");
}

#[test]
fn duplicate_metadata_keys_are_rejected_naming_the_key() {
    let dir = tempdir();
    let db = db_path(&dir);
    let (code, message) = err_json(
        &db,
        &[
            "enqueue",
            "--type",
            "t",
            "--metadata",
            "region=eu",
            "--metadata",
            "region=us",
        ],
    );
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("region"), "{message}");
    assert!(!db.exists() || ok_json(&db, &["stats"])["pending"] == 0);
}

#[test]
fn blank_type_is_rejected_by_every_door() {
    let dir = tempdir();
    let db = db_path(&dir);
    for args in [
        &["enqueue", "--type", "   "][..],
        &["enqueue", "--type", "\u{3000}"],
        &[
            "schedule",
            "create",
            "--name",
            "n",
            "--cron",
            "@daily",
            "--job-type",
            " ",
        ],
    ] {
        let (code, message) = err_json(&db, args);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}");
        assert!(message.contains("blank"), "{message}");
    }
    let spool = jobspool::Spool::open(&db).unwrap();
    let e = jobspool::Op::from_json("jobs.enqueue", serde_json::json!({"type": " \t "}))
        .and_then(|op| op.run(&spool).map(|_| ()))
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert_eq!(spool.stats().unwrap().total.pending, 0);
    spool.close().unwrap();
}

// ---- 6. small ones ---------------------------------------------------------------------

#[test]
fn connection_over_the_limit_gets_a_retryable_code_not_storage() {
    let dir = tempdir();
    let db = db_path(&dir);
    let spool = jobspool::Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    let socket = jobspool::control::serve(&spool).unwrap();
    let held: Vec<UnixStream> = (0..jobspool::control::MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(socket.path()).unwrap())
        .collect();
    let extra = UnixStream::connect(socket.path()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(extra).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "DATABASE_IN_USE", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("retry"),
        "{v}"
    );
    drop(held);
    spool.close().unwrap();
}

#[test]
fn help_metavariables_are_consistent() {
    let dir = tempdir();
    let db = db_path(&dir);
    for cmd in [
        &["enqueue"][..],
        &["list"],
        &["dead", "list"],
        &["dead", "redrive"],
        &["work"],
        &["schedule", "create"],
    ] {
        let mut a = cmd.to_vec();
        a.push("--help");
        let o = run(&db, &a);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        let help = String::from_utf8_lossy(&o.stdout);
        for bad in ["<KIND>", "<QUEUES>", "<JOB_TYPE>", "<K=V>"] {
            assert!(!help.contains(bad), "{cmd:?} help shows {bad}:\n{help}");
        }
        for flag in ["--type", "--job-type"] {
            if help.contains(&format!("{flag} <")) {
                assert!(help.contains(&format!("{flag} <TYPE>")), "{cmd:?}:\n{help}");
            }
        }
        if help.contains("--queue <") {
            assert!(help.contains("--queue <QUEUE>"), "{cmd:?}:\n{help}");
        }
    }
}

#[test]
fn schedule_create_has_no_priority_flag() {
    let dir = tempdir();
    let db = db_path(&dir);
    let s = ok_json(
        &db,
        &[
            "schedule",
            "create",
            "--name",
            "n",
            "--cron",
            "@daily",
            "--job-type",
            "t",
            "--priority",
            "-7",
        ],
    );
    assert_eq!(s["priority"], -7, "{s}");
    assert_eq!(
        ok_json(&db, &["schedule", "list"])["schedules"][0]["priority"],
        -7
    );
}

// ---- 7. human output passed control characters through ---------------------------------

/// Plain-text output as a string, exit 0 asserted.
fn ok_text(db: &Path, args: &[&str]) -> String {
    let o = run(db, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", describe(&o));
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

/// No control character but the newline ending each line.
fn assert_no_raw_controls(what: &str, text: &str) {
    for line in text.lines() {
        assert!(
            !line.chars().any(char::is_control),
            "{what}: a raw control character in {line:?}"
        );
    }
}

#[test]
fn regression_human_output_escapes_control_characters() {
    let dir = tempdir();
    let db = db_path(&dir);
    // A payload that would print a line of its own, with DEL and C1 (CSI) too; metadata
    // (printed as JSON) with C1; a command whose stderr clears the screen.
    let payload = r#""line1\n        status: completed\u007f\u009b2J""#;
    let spoof = ok_json(
        &db,
        &[
            "enqueue",
            "--type",
            "esc",
            "--payload",
            payload,
            "--metadata",
            "k=a\u{9b}b\\c",
        ],
    );
    let spoof_id = spoof["id"].as_str().unwrap().to_string();
    let failing = ok_json(&db, &["enqueue", "--type", "clear", "--max-retries", "1"]);
    let failing_id = failing["id"].as_str().unwrap().to_string();
    let o = run(
        &db,
        &[
            "work",
            "--handler",
            "clear=printf 'boom\\033[2J\\r\\tthere\\n' >&2; exit 65",
            "--queue",
            "default",
            "--stop-when-empty",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));

    // `get`: one line per field, the payload's newline and the rest escaped.
    let got = ok_text(&db, &["get", &spoof_id]);
    assert_no_raw_controls("get", &got);
    assert_eq!(
        got.lines()
            .filter(|l| l.trim_start().starts_with("status:"))
            .count(),
        1,
        "{got}"
    );
    assert!(
        got.contains(r"line1\n        status: completed\u{7f}\u{9b}2J"),
        "{got}"
    );
    // Metadata is printed as JSON: JSON's escapes, C1 included, so it stays JSON.
    assert!(got.contains(r#"{"k":"a\u009bb\\c"}"#), "{got}");

    let got = ok_text(&db, &["get", &failing_id]);
    assert_no_raw_controls("get of the failed job", &got);
    assert!(got.contains(r"boom\u{1b}[2J\r\tthere"), "{got}");

    // `events`: one line per event, the error escaped.
    let events = ok_text(&db, &["events"]);
    assert_no_raw_controls("events", &events);
    assert!(events.contains(r"boom\u{1b}[2J"), "{events}");
    let json_lines = run(&db, &["events", "--json"]);
    assert_eq!(
        events.lines().count(),
        String::from_utf8_lossy(&json_lines.stdout).lines().count()
    );

    // `--json` is unchanged: the exact text.
    let job = ok_json(&db, &["get", &spoof_id]);
    assert_eq!(
        job["payload"],
        "line1\n        status: completed\u{7f}\u{9b}2J"
    );
    assert_eq!(job["metadata"]["k"], "a\u{9b}b\\c");
    let job = ok_json(&db, &["get", &failing_id]);
    assert!(
        job["lastError"]
            .as_str()
            .unwrap()
            .contains("boom\u{1b}[2J\r\tthere"),
        "{job}"
    );
}

// ---- 8. work accepted names enqueue refuses, then served nothing -----------------------

#[test]
fn regression_work_refuses_names_enqueue_refuses() {
    let dir = tempdir();
    let db = db_path(&dir);
    // (`work` is run on a database of its own, to show it creates none.)
    let work_db = dir.path().join("work-db");
    let long = "x".repeat(300);
    // (Each name, first refused by `enqueue`, then by `work` as a queue or a handler type.)
    for name in ["", " ", "a\tb", "a\nb", "a\u{1b}b", "a\u{9b}b", &long] {
        let (code, _) = err_json(&db, &["enqueue", "--type", "t", "--queue", name]);
        assert_eq!(code, "INVALID_ARGUMENT", "enqueue --queue {name:?}");
        let (code, message) = err_json(
            &work_db,
            &[
                "work",
                "--handler",
                "t=true",
                "--queue",
                "ok",
                "--queue",
                name,
                "--stop-when-empty",
            ],
        );
        assert_eq!(code, "INVALID_ARGUMENT", "work --queue {name:?}: {message}");
        assert!(message.contains("--queue"), "{message}");
        if name.is_empty() {
            continue; // `--handler =true` is not of the form TYPE=COMMAND.
        }
        let (code, _) = err_json(&db, &["enqueue", "--type", name]);
        assert_eq!(code, "INVALID_ARGUMENT", "enqueue --type {name:?}");
        let handler = format!("{name}=true");
        let (code, message) = err_json(
            &work_db,
            &[
                "work",
                "--handler",
                "t=true",
                "--handler",
                &handler,
                "--stop-when-empty",
            ],
        );
        assert_eq!(
            code, "INVALID_ARGUMENT",
            "work --handler {handler:?}: {message}"
        );
        assert!(message.contains("--handler"), "{message}");
    }
    // Refused before the database is opened: nothing was created.
    assert!(!work_db.exists());
    // The longest name enqueue takes, work takes too.
    let longest = "q".repeat(256);
    let handler = format!("{longest}=true");
    let id = ok_json(&db, &["enqueue", "--type", &longest, "--queue", &longest])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run(
        &db,
        &[
            "work",
            "--handler",
            &handler,
            "--queue",
            &longest,
            "--stop-when-empty",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(ok_json(&db, &["get", &id])["status"], "completed");
}

// ---- 9. serve on a held database spoke of `work` ---------------------------------------

#[test]
fn regression_serve_on_a_held_database_names_serve() {
    let dir = tempdir();
    let db = db_path(&dir);
    let mut holder = Bg::spawn(&db, &["work", "--handler", "t=true"]);
    holder.wait_socket(&db);
    let (code, message) = err_json(&db, &["serve", "--http", "127.0.0.1:0"]);
    assert_eq!(code, "DATABASE_IN_USE", "{message}");
    assert!(message.contains("serves its control socket"), "{message}");
    assert!(message.contains("`serve` needs the database"), "{message}");
    assert!(!message.contains("`work` needs"), "{message}");
    assert!(!message.contains("only one `work`"), "{message}");
    assert!(!message.contains("handlers"), "{message}");
    // (What `work` says: second_work_on_a_held_database_says_the_holder_serves_its_socket.)
    holder.term();
}

// ---- 10. --timeout-ms advertised a range it then refused --------------------------------

#[test]
fn regression_timeout_ms_errors_give_the_real_range() {
    let dir = tempdir();
    let db = db_path(&dir);
    let max = jobspool::limits::MAX_DELAY_MS;
    let range = format!("1..={max}");
    let over = (max + 1).to_string();
    // Past u64, past the limit, and 0: one message, with the range that is accepted.
    for value in ["18446744073709551616", "18446744073709551615", &over, "0"] {
        let (code, message) = err_json(&db, &["enqueue", "--type", "t", "--timeout-ms", value]);
        assert_eq!(code, "INVALID_ARGUMENT", "{value}: {message}");
        assert!(message.contains("--timeout-ms"), "{value}: {message}");
        assert!(message.contains(&range), "{value}: {message}");
        assert!(!message.contains("timeoutMs"), "{value}: {message}");
    }
    // The end of the range is accepted.
    let job = ok_json(
        &db,
        &["enqueue", "--type", "t", "--timeout-ms", &max.to_string()],
    );
    assert_eq!(job["timeoutMs"], max);

    // Names and keys: the flag typed, not the field behind it.
    let long_key = "k".repeat(2000);
    for (args, flag) in [
        (vec!["enqueue", "--type", ""], "--type must not be empty"),
        (vec!["enqueue", "--type", "t", "--queue", "a\tb"], "--queue"),
        (
            vec!["enqueue", "--type", "t", "--dedupe-key", ""],
            "--dedupe-key",
        ),
        (
            vec!["enqueue", "--type", "t", "--tenant-id", &long_key],
            "--tenant-id",
        ),
        (
            vec![
                "schedule",
                "create",
                "--name",
                "n",
                "--cron",
                "@daily",
                "--job-type",
                " ",
            ],
            "--job-type",
        ),
        (
            vec![
                "schedule",
                "create",
                "--name",
                "",
                "--cron",
                "@daily",
                "--job-type",
                "t",
            ],
            "--name",
        ),
    ] {
        let (code, message) = err_json(&db, &args);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}: {message}");
        assert!(message.starts_with(flag), "{args:?}: {message}");
    }
}
