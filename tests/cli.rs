//! The `jobspool` binary end to end: contract JSON field names,
//! `--db` and `JOBSPOOL_DB`, exit codes, errors under `--json`, payloads from stdin and
//! files, and `events --since`.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{db_path, tempdir};
use jobspool::Spool;
use serde_json::{json, Value};

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobspool"));
    c.env_remove("JOBSPOOL_DB");
    c
}

fn run_with(db: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = cli();
    if let Some(db) = db {
        c.arg("--db").arg(db);
    }
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawning jobspool");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
        drop(pipe);
    }
    child.wait_with_output().unwrap()
}

fn run(db: &Path, args: &[&str]) -> Output {
    run_with(Some(db), args, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// Asserts success and one JSON document on stdout.
fn json_doc(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", describe(o));
    let out = stdout(o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON document on stdout: {out:?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

fn ok_json(db: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    json_doc(&run(db, &a))
}

/// Asserts exit 1 and `{"error":{"code":..,"message":..}}` as the only stdout; returns the
/// code and message.
fn err_json(db: &Path, args: &[&str]) -> (String, String) {
    let mut a = args.to_vec();
    a.push("--json");
    err_json_output(&run(db, &a))
}

fn err_json_output(o: &Output) -> (String, String) {
    assert_eq!(o.status.code(), Some(1), "{}", describe(o));
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "one JSON document: {out:?}");
    let v: Value = serde_json::from_str(out.trim()).expect("JSON error on stdout");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["error"], "{v}");
    let e = v["error"].as_object().unwrap();
    let keys: BTreeSet<&str> = e.keys().map(String::as_str).collect();
    // `code` and `message`, plus the details of the error's kind (README, Control socket).
    let details = BTreeSet::from([
        "jobId",
        "status",
        "what",
        "size",
        "limit",
        "name",
        "path",
        "holder",
        "holderCommand",
        "tree",
        "key",
        "detail",
    ]);
    assert!(keys.contains("code") && keys.contains("message"), "{v}");
    assert!(
        keys.iter()
            .all(|k| *k == "code" || *k == "message" || details.contains(k)),
        "{v}"
    );
    let code = e["code"].as_str().unwrap().to_string();
    let message = e["message"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    (code, message)
}

/// Asserts exit 1 without `--json`: the code is in the message on stderr, stdout is empty.
fn err_plain(db: &Path, args: &[&str], code: &str) -> String {
    let o = run(db, args);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = stderr(&o);
    assert!(
        err.contains(code),
        "the code {code} must be in the message: {err}"
    );
    assert!(stdout(&o).is_empty(), "{}", describe(&o));
    err
}

fn enqueue(db: &Path, extra: &[&str]) -> Value {
    let mut a = vec!["enqueue", "--type", "email.send"];
    a.extend_from_slice(extra);
    ok_json(db, &a)
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn is_rfc3339_utc_millis(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        && s.ends_with('Z')
        && s.len() == "2026-11-28T20:00:00.123Z".len()
}

const CONTRACT_JOB_FIELDS: [&str; 14] = [
    "id",
    "type",
    "version",
    "queue",
    "payload",
    "status",
    "priority",
    "attempts",
    "maxRetries",
    "createdAt",
    "updatedAt",
    "scheduledAt",
    "metadata",
    "executions",
];

#[test]
fn enqueue_json_prints_a_job_with_exact_spec_field_names() {
    let dir = tempdir();
    let db = db_path(&dir);
    let o = run(
        &db,
        &[
            "enqueue",
            "--type",
            "email.send",
            "--payload",
            r#"{"to":"a@b.c"}"#,
            "--json",
        ],
    );
    let j = json_doc(&o);
    assert_eq!(
        keys(&j),
        BTreeSet::from(CONTRACT_JOB_FIELDS),
        "a plain job has exactly the contract fields: {j}"
    );
    let id = j["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(j["type"], json!("email.send"));
    assert_eq!(j["version"], json!("1.0.0"));
    assert_eq!(j["queue"], json!("default"));
    assert_eq!(
        j["payload"],
        json!({"to": "a@b.c"}),
        "JSON payload appears as JSON"
    );
    assert_eq!(j["status"], json!("pending"));
    assert_eq!(j["priority"], json!(0));
    assert_eq!(j["attempts"], json!(0));
    assert_eq!(j["maxRetries"], json!(3));
    for k in ["createdAt", "updatedAt", "scheduledAt"] {
        let t = j[k].as_str().unwrap();
        assert!(is_rfc3339_utc_millis(t), "{k} = {t}");
    }
    assert_eq!(j["createdAt"], j["updatedAt"]);
    assert_eq!(j["createdAt"], j["scheduledAt"]);
    assert_eq!(j["metadata"], json!({}));
    assert_eq!(j["executions"], json!([]));

    // The same job through the library.
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    let got = spool.get(id.parse().unwrap()).unwrap();
    assert_eq!(got.payload, br#"{"to":"a@b.c"}"#.to_vec());
    assert_eq!(jobspool::json::job(&got), j);
}

#[test]
fn enqueue_with_every_option_prints_the_optional_fields() {
    let dir = tempdir();
    let db = db_path(&dir);
    let j = enqueue(
        &db,
        &[
            "--payload",
            "[1,2]",
            "--queue",
            "mail",
            "--priority",
            "-5",
            "--delay",
            "60",
            "--max-retries",
            "5",
            "--timeout-ms",
            "30000",
            "--dedupe-key",
            "user-42",
            "--tenant-id",
            "acme",
            "--user-id",
            "u1",
            "--trace-id",
            "tr-9",
            "--metadata",
            "a=1",
            "--metadata",
            "b=x=y",
        ],
    );
    let mut want: BTreeSet<&str> = BTreeSet::from(CONTRACT_JOB_FIELDS);
    want.extend(["timeoutMs", "dedupeKey", "tenantId", "userId", "traceId"]);
    assert_eq!(keys(&j), want, "{j}");
    assert_eq!(j["queue"], json!("mail"));
    assert_eq!(j["payload"], json!([1, 2]));
    assert_eq!(j["priority"], json!(-5));
    assert_eq!(j["maxRetries"], json!(5));
    assert_eq!(j["timeoutMs"], json!(30000));
    assert_eq!(j["dedupeKey"], json!("user-42"));
    assert_eq!(j["tenantId"], json!("acme"));
    assert_eq!(j["userId"], json!("u1"));
    assert_eq!(j["traceId"], json!("tr-9"));
    assert_eq!(j["metadata"], json!({"a": "1", "b": "x=y"}));
    let created = chrono::DateTime::parse_from_rfc3339(j["createdAt"].as_str().unwrap()).unwrap();
    let sched = chrono::DateTime::parse_from_rfc3339(j["scheduledAt"].as_str().unwrap()).unwrap();
    assert_eq!(sched - created, chrono::Duration::seconds(60));

    let at = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%S");
    let j = enqueue(&db, &["--run-at", &format!("{at}+02:00")]);
    let want = chrono::DateTime::parse_from_rfc3339(&format!("{at}+02:00"))
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        j["scheduledAt"],
        json!(jobspool::json::time(want)),
        "shown in UTC"
    );

    let stats = ok_json(&db, &["stats"]);
    assert_eq!(stats["pending"], json!(2));
    assert_eq!(stats["delayed"], json!(2));
}

#[test]
fn jobspool_db_env_selects_the_database() {
    let dir = tempdir();
    let db = db_path(&dir);
    let o = cli()
        .env("JOBSPOOL_DB", &db)
        .args(["enqueue", "--type", "t", "--json"])
        .output()
        .unwrap();
    let j = json_doc(&o);
    let id = j["id"].as_str().unwrap();
    let o = cli()
        .env("JOBSPOOL_DB", &db)
        .args(["get", id, "--json"])
        .output()
        .unwrap();
    assert_eq!(json_doc(&o), j);
    // --db wins over the environment.
    let other = dir.path().join("other");
    let o = cli()
        .env("JOBSPOOL_DB", &db)
        .arg("--db")
        .arg(&other)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    // (`stats` creates nothing: the other path holds no database.)
    let (code, message) = err_json_output(&o);
    assert_eq!(code, "DATABASE_NOT_FOUND", "--db wins over JOBSPOOL_DB");
    assert!(message.contains(&other.display().to_string()), "{message}");
    let o = cli()
        .env("JOBSPOOL_DB", &db)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_doc(&o)["pending"], json!(1));
}

#[test]
fn missing_db_is_an_operation_error_exit_1() {
    let o = run_with(None, &["stats", "--json"], None);
    let (code, message) = err_json_output(&o);
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("JOBSPOOL_DB"), "{message}");
}

#[test]
fn get_json_returns_the_job_and_unknown_id_is_job_not_found() {
    let dir = tempdir();
    let db = db_path(&dir);
    let j = enqueue(&db, &["--payload", "{}"]);
    let id = j["id"].as_str().unwrap();
    assert_eq!(ok_json(&db, &["get", id]), j);

    let unknown = "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e";
    let (code, message) = err_json(&db, &["get", unknown]);
    assert_eq!(code, "JOB_NOT_FOUND");
    assert!(message.contains(unknown), "{message}");
    err_plain(&db, &["get", unknown], "JOB_NOT_FOUND");
    // Human output works too.
    let o = run(&db, &["get", id]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(stdout(&o).contains(id));
}

#[test]
fn cancel_prints_success_true_and_emits_job_cancelled() {
    let dir = tempdir();
    let db = db_path(&dir);
    let id = enqueue(&db, &[])["id"].as_str().unwrap().to_string();
    let o = run(&db, &["cancel", &id, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(stdout(&o).trim(), r#"{"success":true}"#);
    assert_eq!(ok_json(&db, &["get", &id])["status"], json!("cancelled"));
    let stats = ok_json(&db, &["stats"]);
    assert_eq!(stats["cancelled"], json!(1));
    assert_eq!(stats["pending"], json!(0));
    let out = stdout(&run(&db, &["events", "--json"]));
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["name"], json!("job.cancelled"));
    assert_eq!(last["jobId"], json!(id));

    // A second cancel: JOB_NOT_PENDING, with --json on stdout and without on stderr.
    let (code, message) = err_json(&db, &["cancel", &id]);
    assert_eq!(code, "JOB_NOT_PENDING");
    assert!(message.contains("cancelled"), "{message}");
    err_plain(&db, &["cancel", &id], "JOB_NOT_PENDING");
    let (code, _) = err_json(&db, &["cancel", "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e"]);
    assert_eq!(code, "JOB_NOT_FOUND");
}

#[test]
fn cancel_of_a_completed_job_is_job_not_pending() {
    // (A one-shot CLI open recovers jobs left running, so "not pending" is shown with a
    // completed job.)
    let dir = tempdir();
    let db = db_path(&dir);
    let id = enqueue(&db, &[])["id"].as_str().unwrap().to_string();
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool.complete(c.lease, None).unwrap();
    spool.close().unwrap();
    drop(spool);
    let (code, message) = err_json(&db, &["cancel", &id]);
    assert_eq!(code, "JOB_NOT_PENDING");
    assert!(message.contains("completed"), "{message}");
    assert_eq!(ok_json(&db, &["get", &id])["status"], json!("completed"));
}

#[test]
fn invalid_values_exit_1_with_invalid_argument_and_change_nothing() {
    let dir = tempdir();
    let db = db_path(&dir);
    enqueue(&db, &[]);
    let before = ok_json(&db, &["stats"]);
    let events_before = stdout(&run(&db, &["events", "--json"]));
    for args in [
        vec!["get", "not-a-uuid"],
        vec!["cancel", "1234"],
        vec!["enqueue", "--type", ""],
        vec!["enqueue", "--type", "t", "--max-retries", "0"],
        vec!["enqueue", "--type", "t", "--max-retries", "-1"],
        vec!["enqueue", "--type", "t", "--delay", "-1"],
        vec!["enqueue", "--type", "t", "--delay", "400000000"],
        vec!["enqueue", "--type", "t", "--run-at", "2200-01-01T00:00:00Z"],
        vec!["enqueue", "--type", "t", "--run-at", "tomorrow"],
        vec!["enqueue", "--type", "t", "--payload", "{not json"],
        vec!["enqueue", "--type", "t", "--metadata", "novalue"],
        vec!["enqueue", "--type", "t", "--priority", "99999999999"],
        vec!["enqueue", "--type", "t", "--timeout-ms", "-5"],
        vec!["list", "--status", "done"],
        vec!["list", "--limit", "0"],
        vec!["list", "--after", "xyz"],
    ] {
        let (code, message) = err_json(&db, &args);
        assert_eq!(code, "INVALID_ARGUMENT", "{args:?}: {message}");
        err_plain(&db, &args, "INVALID_ARGUMENT");
    }
    assert_eq!(ok_json(&db, &["stats"]), before, "nothing changed");
    assert_eq!(stdout(&run(&db, &["events", "--json"])), events_before);
}

#[test]
fn unparseable_arguments_exit_2() {
    let dir = tempdir();
    let db = db_path(&dir);
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["enqueue"],
        vec!["enqueue", "--type", "t", "--priority", "high"],
        vec!["enqueue", "--type", "t", "--bogus-flag"],
        vec!["events", "--since", "minus-one"],
        vec!["list", "--limit", "ten"],
        vec!["get"],
        vec!["stats", "--json", "extra"],
    ] {
        let o = run(&db, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", describe(&o));
        assert!(!stderr(&o).is_empty(), "clap explains on stderr");
    }
    // Help and version are not errors.
    assert_eq!(run(&db, &["--help"]).status.code(), Some(0));
    assert_eq!(run(&db, &["--version"]).status.code(), Some(0));
}

#[test]
fn payload_dash_reads_stdin() {
    let dir = tempdir();
    let db = db_path(&dir);
    // Non-JSON bytes are stored exactly and shown as base64, marked as such.
    let raw: Vec<u8> = vec![0xff, 0x00, 0x10, b'\n', 0x80];
    let o = run_with(
        Some(&db),
        &["enqueue", "--type", "bin", "--payload", "-", "--json"],
        Some(&raw),
    );
    let j = json_doc(&o);
    assert_eq!(j["payload"], "/wAQCoA=");
    assert_eq!(j["payloadEncoding"], "base64");
    let id = j["id"].as_str().unwrap().to_string();
    // JSON on stdin appears as JSON.
    let o = run_with(
        Some(&db),
        &["enqueue", "--type", "j", "--payload", "-", "--json"],
        Some(br#"{"k":[1,2,3]}"#),
    );
    let j2 = json_doc(&o);
    assert_eq!(j2["payload"], json!({"k": [1, 2, 3]}));

    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    assert_eq!(spool.get(id.parse().unwrap()).unwrap().payload, raw);
}

#[test]
fn payload_at_file_reads_the_file() {
    let dir = tempdir();
    let db = db_path(&dir);
    let file = dir.path().join("payload.bin");
    let mut rng = common::Rng::new(7);
    let bytes = rng.bytes(300 * 1024); // larger than fits comfortably in one argument
    std::fs::write(&file, &bytes).unwrap();
    let arg = format!("@{}", file.display());
    let j = enqueue(&db, &["--payload", &arg]);
    let id: jobspool::JobId = j["id"].as_str().unwrap().parse().unwrap();

    let missing = format!("@{}", dir.path().join("nope.json").display());
    let (code, message) = err_json(&db, &["enqueue", "--type", "t", "--payload", &missing]);
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(message.contains("nope.json"), "{message}");

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'a'; 1024 * 1024 + 1]).unwrap();
    let big_arg = format!("@{}", big.display());
    let (code, _) = err_json(&db, &["enqueue", "--type", "t", "--payload", &big_arg]);
    assert_eq!(code, "PAYLOAD_TOO_LARGE");
    let exactly = dir.path().join("exact.bin");
    std::fs::write(&exactly, vec![b'a'; 1024 * 1024]).unwrap();
    let exact_arg = format!("@{}", exactly.display());
    enqueue(&db, &["--payload", &exact_arg]);

    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    assert!(spool.get(id).unwrap().payload == bytes);
    assert_eq!(spool.stats().unwrap().total.pending, 2);
}

#[test]
fn list_json_filters_and_pages() {
    let dir = tempdir();
    let db = db_path(&dir);
    let mut ids = Vec::new();
    for i in 0..6 {
        let q = if i % 2 == 0 { "even" } else { "odd" };
        let t = if i < 3 { "low" } else { "high" };
        let j = ok_json(&db, &["enqueue", "--type", t, "--queue", q]);
        ids.push(j["id"].as_str().unwrap().to_string());
    }
    run(&db, &["cancel", &ids[0]]);

    let list_ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["list"];
        a.extend_from_slice(args);
        let v = ok_json(&db, &a);
        assert_eq!(keys(&v), BTreeSet::from(["jobs"]), "{v}");
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list_ids(&[]), ids);
    assert_eq!(list_ids(&["--status", "cancelled"]), vec![ids[0].clone()]);
    assert_eq!(list_ids(&["--status", "pending"]), ids[1..].to_vec());
    assert_eq!(
        list_ids(&["--queue", "odd"]),
        vec![ids[1].clone(), ids[3].clone(), ids[5].clone()]
    );
    assert_eq!(list_ids(&["--type", "high"]), ids[3..].to_vec());
    assert_eq!(
        list_ids(&["--queue", "even", "--type", "low", "--status", "pending"]),
        vec![ids[2].clone()]
    );
    // Paging with --limit / --after.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec!["--limit", "4"];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let page = list_ids(&args);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, ids);
    // Human output lists them as well.
    let o = run(&db, &["list"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(ids.iter().all(|id| stdout(&o).contains(id.as_str())));
}

#[test]
fn stats_json_has_the_spec_counters_globally_and_per_queue() {
    let dir = tempdir();
    let db = db_path(&dir);
    ok_json(&db, &["enqueue", "--type", "t"]);
    ok_json(
        &db,
        &[
            "enqueue", "--type", "t", "--queue", "mail", "--delay", "3600",
        ],
    );
    let s = ok_json(&db, &["stats"]);
    let counters = [
        "pending",
        "running",
        "completed",
        "failed",
        "deadLetter",
        "cancelled",
        "delayed",
    ];
    let mut want: BTreeSet<&str> = counters.into_iter().collect();
    want.insert("queues");
    assert_eq!(keys(&s), want, "{s}");
    assert_eq!(s["pending"], json!(2));
    assert_eq!(s["delayed"], json!(1));
    assert_eq!(s["running"], json!(0));
    assert_eq!(s["deadLetter"], json!(0));
    let queues = s["queues"].as_object().unwrap();
    assert_eq!(
        queues.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["default", "mail"])
    );
    for (name, q) in queues {
        for c in counters {
            assert!(q.get(c).is_some(), "queue {name} lacks {c}: {q}");
        }
    }
    assert_eq!(s["queues"]["mail"]["delayed"], json!(1));
    assert_eq!(s["queues"]["default"]["pending"], json!(1));
    assert_eq!(run(&db, &["stats"]).status.code(), Some(0));
}

#[test]
fn events_since_prints_only_later_events_one_object_per_line_seq_first() {
    let dir = tempdir();
    let db = db_path(&dir);
    let a = ok_json(&db, &["enqueue", "--type", "a", "--tenant-id", "acme"]);
    ok_json(&db, &["enqueue", "--type", "b"]);
    ok_json(&db, &["enqueue", "--type", "c"]);
    run(&db, &["cancel", a["id"].as_str().unwrap()]);

    let lines_of = |since: Option<&str>| -> Vec<String> {
        let mut args = vec!["events", "--json"];
        if let Some(s) = since {
            args.extend(["--since", s]);
        }
        let o = run(&db, &args);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        stdout(&o).lines().map(str::to_string).collect()
    };
    let all = lines_of(None);
    assert_eq!(all.len(), 4, "{all:?}");
    for (i, line) in all.iter().enumerate() {
        let prefix = format!(r#"{{"seq":{},"name":""#, i + 1);
        assert!(line.starts_with(&prefix), "seq first, then name: {line}");
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], json!(i + 1));
    }
    let first: Value = serde_json::from_str(&all[0]).unwrap();
    assert_eq!(
        keys(&first),
        BTreeSet::from([
            "seq",
            "name",
            "jobId",
            "type",
            "priority",
            "enqueuedAt",
            "scheduledAt",
            "tenantId"
        ])
    );
    assert_eq!(first["name"], json!("job.enqueued"));
    assert_eq!(first["jobId"], a["id"]);
    assert_eq!(first["tenantId"], json!("acme"));

    for n in 0..=5usize {
        let since = n.to_string();
        let got = lines_of(Some(&since));
        let want: Vec<String> = all.iter().skip(n).cloned().collect();
        assert_eq!(
            got, want,
            "--since {n} prints exactly the events with seq > {n}"
        );
    }
    let last: Value = serde_json::from_str(&lines_of(Some("3"))[0]).unwrap();
    assert_eq!(last["seq"], json!(4));
    assert_eq!(last["name"], json!("job.cancelled"));
    assert_eq!(last["cancelledBy"], json!("cli"));
    // Human output: one line per event.
    let o = run(&db, &["events", "--since", "2"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn json_mode_keeps_stdout_pure_json_for_every_command() {
    let dir = tempdir();
    let db = db_path(&dir);
    let j = ok_json(&db, &["enqueue", "--type", "t"]);
    let id = j["id"].as_str().unwrap();
    for args in [
        vec!["get", id, "--json"],
        vec!["list", "--json"],
        vec!["stats", "--json"],
        vec!["events", "--json"],
        vec!["cancel", id, "--json"],
        vec!["cancel", id, "--json"],
        vec!["get", "bad", "--json"],
    ] {
        let o = run(&db, &args);
        for line in stdout(&o).lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("{args:?}: non-JSON stdout line {line:?}: {e}"));
        }
    }
}

#[test]
fn database_held_by_another_process_is_database_in_use() {
    let dir = tempdir();
    let db = db_path(&dir);
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    let (code, message) = err_json(&db, &["stats"]);
    assert_eq!(code, "DATABASE_IN_USE");
    assert!(
        message.contains(&db.display().to_string()),
        "names the path: {message}"
    );
    err_plain(
        &db,
        &["get", "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e"],
        "DATABASE_IN_USE",
    );
    drop(spool);
    // Released: the CLI works again.
    assert_eq!(ok_json(&db, &["stats"])["pending"], json!(0));
}

#[test]
fn schedule_commands_create_toggle_list_delete_with_spec_fields() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let created = ok_json(
        &db,
        &[
            "schedule",
            "create",
            "--name",
            "nightly-report",
            "--cron",
            "0 3 * * *",
            "--job-type",
            "report.build",
            "--timezone",
            "Europe/Berlin",
            "--description",
            "daily at 03:00",
        ],
    );
    for k in [
        "id",
        "name",
        "cronExpression",
        "timezone",
        "jobType",
        "enabled",
        "createdAt",
        "description",
        "lastRunAt",
        "nextRunAt",
    ] {
        assert!(created.get(k).is_some(), "missing {k}: {created}");
    }
    assert_eq!(created["enabled"], true);
    assert!(created["lastRunAt"].is_null());
    assert!(is_rfc3339_utc_millis(
        created["nextRunAt"].as_str().unwrap()
    ));

    let (code, _) = err_json(
        &db,
        &[
            "schedule",
            "create",
            "--name",
            "nightly-report",
            "--cron",
            "@daily",
            "--job-type",
            "x",
        ],
    );
    assert_eq!(code, "SCHEDULE_EXISTS");
    let (code, msg) = err_json(
        &db,
        &[
            "schedule",
            "create",
            "--name",
            "b",
            "--cron",
            "0 25 * * *",
            "--job-type",
            "x",
        ],
    );
    assert_eq!(code, "INVALID_CRON");
    assert!(msg.contains("hour"), "{msg}");
    let (code, _) = err_json(
        &db,
        &[
            "schedule",
            "create",
            "--name",
            "b",
            "--cron",
            "@daily",
            "--job-type",
            "x",
            "--timezone",
            "Nowhere/City",
        ],
    );
    assert_eq!(code, "INVALID_TIMEZONE");

    let off = ok_json(
        &db,
        &[
            "schedule",
            "toggle",
            "--name",
            "nightly-report",
            "--enabled",
            "false",
        ],
    );
    assert_eq!(off["enabled"], false);
    assert!(off["nextRunAt"].is_null());
    let list = ok_json(&db, &["schedule", "list"]);
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(list["schedules"][0]["name"], "nightly-report");
    let deleted = ok_json(&db, &["schedule", "delete", "--name", "nightly-report"]);
    assert_eq!(deleted, serde_json::json!({"success": true}));
    let (code, _) = err_json(
        &db,
        &[
            "schedule",
            "toggle",
            "--name",
            "nightly-report",
            "--enabled",
            "true",
        ],
    );
    assert_eq!(code, "SCHEDULE_NOT_FOUND");
}
