//! The control socket from the library side (issue 5): every op through the socket gives
//! what the direct call gives; the socket file is 0600, replaced when stale, removed on
//! close; bad requests get error responses and the server keeps serving; 32 concurrent
//! clients enqueue while workers run and nothing is lost.

mod control_common;

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use control_common::{db_path, error_of, socket_is_live, tempdir, wait_for, Raw};
use jobspool::control::{
    self, dispatch, Client, ControlSocket, LINE_LIMIT, MAX_CONNECTIONS, PATH_RECORD_NAME,
};
use jobspool::{json, ManualClock, NewJob, NewSchedule, Retry, Spool, WorkerPool};
use serde_json::{json, Value};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 20, 0, 0).unwrap()
}

/// A spool serving its socket, with a manual clock and no background threads, so nothing
/// changes between a socket call and the direct call it is compared with.
fn serving(db: &std::path::Path, clock: &ManualClock) -> (Spool, ControlSocket) {
    let spool = Spool::builder()
        .clock(clock.clone())
        .maintenance(false)
        .scheduler(false)
        .open(db)
        .expect("opening");
    let socket = control::serve(&spool).expect("serving a control socket");
    (spool, socket)
}

/// A spool with default settings, serving its socket.
fn open_serving(db: &std::path::Path) -> jobspool::Result<(Spool, ControlSocket)> {
    let spool = Spool::open(db)?;
    let socket = control::serve(&spool)?;
    Ok((spool, socket))
}

/// `op` through the socket and directly (`dispatch`) on the same spool: same result.
fn same(client: &Client, spool: &Spool, op: &str, input: Value) -> Value {
    let remote = client.call(op, input.clone());
    let direct = dispatch(spool, op, &input);
    match (remote, direct) {
        (Ok(r), Ok(d)) => {
            assert_eq!(r, d, "{op}: socket and direct outputs differ");
            r
        }
        (Err(r), Err(d)) => {
            assert_eq!((r.code(), r.message()), (d.code(), d.message()), "{op}");
            panic!("{op} failed: {r}");
        }
        (r, d) => panic!("{op}: socket gave {r:?}, direct gave {d:?}"),
    }
}

/// `op` through the socket must fail exactly as the direct call does; returns the code.
fn same_error(client: &Client, spool: &Spool, op: &str, input: Value) -> &'static str {
    let r = client
        .call(op, input.clone())
        .expect_err("socket call should fail");
    let d = dispatch(spool, op, &input).expect_err("direct call should fail");
    assert_eq!((r.code(), r.message()), (d.code(), d.message()), "{op}");
    d.code().as_str()
}

#[test]
fn each_op_through_the_socket_matches_the_direct_call() {
    let dir = tempdir();
    let db = db_path(&dir);
    let clock = ManualClock::new(t0());
    let (spool, _socket) = serving(&db, &clock);
    let client = Client::connect_db(&db).expect("connecting");

    // jobs.enqueue: the output is the stored job, as jobs.get and Spool::get see it.
    let job = client
        .call(
            "jobs.enqueue",
            json!({
                "type": "email.send", "payload": {"to": "a@b.c"}, "delaySeconds": 0,
                "maxRetries": 5, "priority": 3, "timeoutMs": 30000, "dedupeKey": "k1",
                "queue": "mail", "tenantId": "t", "userId": "u", "traceId": "tr",
                "metadata": {"a": "b"}
            }),
        )
        .expect("enqueue");
    let id = job["id"].as_str().unwrap().to_owned();
    let stored = spool.get(id.parse().unwrap()).unwrap();
    assert_eq!(job, json::job(&stored));
    assert_eq!(stored.payload, br#"{"to":"a@b.c"}"#);
    assert_eq!(stored.max_attempts, 5);
    assert_eq!(stored.dedupe_key.as_deref(), Some("k1"));
    assert_eq!(same(&client, &spool, "jobs.get", json!({"jobId": id})), job);

    // Raw bytes travel as base64 and are stored exactly.
    let raw = client
        .call(
            "jobs.enqueue",
            json!({"type": "blob", "payload": json::base64(&[0xff, 0, 1]), "payloadEncoding": "base64"}),
        )
        .unwrap();
    let raw_id: jobspool::JobId = raw["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(spool.get(raw_id).unwrap().payload, vec![0xff, 0, 1]);
    assert_eq!(raw["payload"], json::base64(&[0xff, 0, 1]));
    assert_eq!(raw["payloadEncoding"], "base64");
    // A dedupe hit returns the live job.
    let dup = client
        .call(
            "jobs.enqueue",
            json!({"type": "email.send", "dedupeKey": "k1"}),
        )
        .unwrap();
    assert_eq!(dup["id"], job["id"]);
    // A delayed job.
    clock.advance_ms(1);
    let delayed = client
        .call("jobs.enqueue", json!({"type": "later", "delaySeconds": 60}))
        .unwrap();
    assert_eq!(delayed["scheduledAt"], "2026-11-28T20:01:00.001Z");

    // Reads.
    let stats = same(&client, &spool, "jobs.stats", json!({}));
    assert_eq!(stats, json::stats(&spool.stats().unwrap()));
    assert_eq!(stats["pending"], 3);
    assert_eq!(stats["delayed"], 1);
    let list = same(&client, &spool, "jobs.list", json!({}));
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3);
    same(
        &client,
        &spool,
        "jobs.list",
        json!({"status": "pending", "queue": "mail", "type": "email.send", "limit": 1}),
    );
    let page2 = same(
        &client,
        &spool,
        "jobs.list",
        json!({"after": id, "limit": 10}),
    );
    assert_eq!(page2["jobs"].as_array().unwrap().len(), 2);

    // jobs.cancel, and its errors.
    assert_eq!(
        client
            .call("jobs.cancel", json!({"jobId": delayed["id"]}))
            .unwrap(),
        json!({"success": true})
    );
    assert_eq!(
        spool
            .get(delayed["id"].as_str().unwrap().parse().unwrap())
            .unwrap()
            .status,
        jobspool::JobStatus::Cancelled
    );
    assert_eq!(
        same_error(
            &client,
            &spool,
            "jobs.cancel",
            json!({"jobId": delayed["id"]})
        ),
        "JOB_NOT_PENDING"
    );
    let unknown = "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e";
    assert_eq!(
        same_error(&client, &spool, "jobs.get", json!({"jobId": unknown})),
        "JOB_NOT_FOUND"
    );
    let e = client
        .call("jobs.get", json!({"jobId": unknown}))
        .unwrap_err();
    assert!(e.is_not_found(), "remote errors keep their predicates");

    // Dead letters: one job dead-lettered, one failed permanently.
    for (kind, retry) in [("d1", Retry::Backoff), ("d2", Retry::Never)] {
        spool
            .enqueue(NewJob::new(kind, Vec::new()).max_attempts(1))
            .unwrap();
        let mut req = spool.claim_request(1);
        req.kinds = vec![kind.to_owned()];
        let c = spool.claim(&req).unwrap().pop().unwrap();
        spool.fail(c.lease, "boom", retry).unwrap();
    }
    let dead = same(&client, &spool, "jobs.dead.list", json!({}));
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 2);
    same(&client, &spool, "jobs.dead.list", json!({"type": "d1"}));
    let first_dead = dead["jobs"][0]["id"].clone();
    let one = client
        .call("jobs.dead.redrive", json!({"jobId": first_dead}))
        .unwrap();
    assert_eq!(one, json!({"redriven": 1, "jobIds": [first_dead]}));
    let all = client
        .call(
            "jobs.dead.redrive",
            json!({"all": true, "queue": "default"}),
        )
        .unwrap();
    assert_eq!(all["redriven"], 1);
    assert_eq!(
        same(&client, &spool, "jobs.dead.list", json!({})),
        json!({"jobs": []})
    );

    // Schedules.
    let created = client
        .call(
            "jobs.schedule.create",
            json!({"name": "nightly", "cronExpression": "0 3 * * *", "jobType": "report",
                   "timezone": "Europe/Berlin", "description": "daily", "payload": {"x": 1},
                   "maxRetries": 2}),
        )
        .unwrap();
    let listed = same(&client, &spool, "jobs.schedule.list", json!({}));
    assert_eq!(listed, json!({"schedules": [created.clone()]}));
    assert_eq!(listed, json::schedules(&spool.list_schedules().unwrap()));
    assert_eq!(created["nextRunAt"], "2026-11-29T02:00:00.000Z");
    assert_eq!(
        same_error(
            &client,
            &spool,
            "jobs.schedule.create",
            json!({"name": "nightly", "cronExpression": "0 3 * * *", "jobType": "report"})
        ),
        "SCHEDULE_EXISTS"
    );
    let off = client
        .call(
            "jobs.schedule.toggle",
            json!({"name": "nightly", "enabled": false}),
        )
        .unwrap();
    assert_eq!(off["enabled"], false);
    assert_eq!(
        json::schedule(&spool.list_schedules().unwrap()[0]),
        off,
        "toggle output is the stored schedule"
    );
    for (input, code) in [
        (
            json!({"name": "x", "cronExpression": "61 * * * *", "jobType": "t"}),
            "INVALID_CRON",
        ),
        (
            json!({"name": "x", "cronExpression": "* * * * *", "jobType": "t", "timezone": "Mars/Base"}),
            "INVALID_TIMEZONE",
        ),
    ] {
        assert_eq!(
            same_error(&client, &spool, "jobs.schedule.create", input),
            code
        );
    }
    assert_eq!(
        client
            .call("jobs.schedule.delete", json!({"name": "nightly"}))
            .unwrap(),
        json!({"success": true})
    );
    assert!(spool.list_schedules().unwrap().is_empty());
    assert_eq!(
        same_error(
            &client,
            &spool,
            "jobs.schedule.toggle",
            json!({"name": "nightly", "enabled": true})
        ),
        "SCHEDULE_NOT_FOUND"
    );
    // Created through the library, listed through the socket.
    spool
        .create_schedule(NewSchedule::new("lib", "*/5 * * * *", "t").enabled(false))
        .unwrap();
    same(&client, &spool, "jobs.schedule.list", json!({}));

    // Queues.
    assert_eq!(
        client
            .call("jobs.queue.pause", json!({"queue": "mail"}))
            .unwrap(),
        json!({"queue": "mail", "paused": true})
    );
    assert!(spool.stats().unwrap().queues["mail"].paused);
    client
        .call("jobs.queue.resume", json!({"queue": "mail"}))
        .unwrap();
    assert!(!spool.stats().unwrap().queues["mail"].paused);

    // Events: same pages, seq first.
    let evs = same(&client, &spool, "jobs.events", json!({"since": 0}));
    let evs = evs["events"].as_array().unwrap().clone();
    assert_eq!(evs.len() as u64, spool.last_seq());
    assert_eq!(evs[0]["seq"], 1);
    let tail = same(
        &client,
        &spool,
        "jobs.events",
        json!({"since": 3, "limit": 2}),
    );
    assert_eq!(tail["events"].as_array().unwrap()[..], evs[3..5]);

    // Prune: finished jobs past retention go.
    clock.advance_ms(8 * 24 * 3600 * 1000);
    let pruned = client.call("jobs.prune", json!({})).unwrap();
    assert!(pruned["pruned"].as_u64().unwrap() >= 1, "{pruned}");
    same(&client, &spool, "jobs.stats", json!({}));

    // Batch enqueue.
    let batch = client
        .call(
            "jobs.enqueue.batch",
            json!({"jobs": [{"type": "b1"}, {"type": "b2", "payload": "x"}]}),
        )
        .unwrap();
    assert_eq!(batch["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(batch["jobs"][1]["payload"], "x");

    spool.close().unwrap();
}

#[test]
fn socket_file_is_owner_only_and_removed_on_close_and_on_drop() {
    let dir = tempdir();
    let db = db_path(&dir);
    let (spool, socket) = open_serving(&db).unwrap();
    let path = socket.path().to_path_buf();
    assert_eq!(path, db.join("control.sock"));
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");
    assert!(socket_is_live(&path));
    spool.close().unwrap();
    assert!(!path.exists(), "removed on close");
    assert!(!socket.is_serving());
    drop(socket);

    // Off by default.
    let spool = Spool::open(&db).unwrap();
    assert!(!path.exists());
    drop(spool);

    // Dropping the socket's handle stops serving; the spool stays open.
    let spool = wait_for("the lock", || Spool::open(&db).ok());
    let socket = control::serve(&spool).unwrap();
    assert!(socket_is_live(&path));
    drop(socket);
    assert!(!path.exists(), "removed when its handle drops");
    spool.stats().unwrap();
    drop(spool);

    // Dropping the last handle, with an idle client connected, closes too.
    let (spool, _socket) = wait_for("the lock to be released", || open_serving(&db).ok());
    let client = Client::connect_db(&db).unwrap();
    client.call("jobs.stats", json!({})).unwrap();
    drop(spool);
    // A background thread may hold the handle for a moment, and then closes it itself.
    wait_for("the socket to be removed on drop", || {
        (!path.exists()).then_some(())
    });
    assert!(client.call("jobs.stats", json!({})).is_err());
    // And the database opens again.
    let again = wait_for("reopen", || Spool::open(&db).ok());
    drop(again);
}

#[test]
fn stale_socket_file_is_replaced_and_other_files_are_left_alone() {
    let dir = tempdir();
    let db = db_path(&dir);
    std::fs::create_dir_all(&db).unwrap();
    let path = db.join("control.sock");
    // A socket file nobody listens on, as a killed process leaves it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists() && !socket_is_live(&path));
    let (spool, _socket) = open_serving(&db).unwrap();
    assert!(socket_is_live(&path), "replaced and served");
    Client::connect_db(&db)
        .unwrap()
        .call("jobs.stats", json!({}))
        .unwrap();
    spool.close().unwrap();

    // Something that is not a socket is never removed: opening fails instead.
    std::fs::write(&path, b"not a socket").unwrap();
    let err = wait_for("the lock", || match open_serving(&db) {
        Err(e) if e.code() == "DATABASE_IN_USE" => None,
        other => Some(other),
    })
    .unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[test]
fn long_database_path_uses_a_short_recorded_socket_path() {
    let dir = tempdir();
    let mut db = dir.path().to_path_buf();
    while db.as_os_str().len() < 130 {
        db = db.join("a-long-directory-name");
    }
    let (spool, socket) = open_serving(&db).unwrap();
    let path = socket.path().to_path_buf();
    assert!(path.as_os_str().len() <= 107, "{}", path.display());
    assert!(!path.starts_with(&db));
    let recorded = std::fs::read_to_string(db.join(PATH_RECORD_NAME)).unwrap();
    assert_eq!(recorded.trim_end(), path.to_str().unwrap());
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let client = Client::connect_db(&db).expect("found through the record");
    assert_eq!(client.path(), path);
    client.call("jobs.stats", json!({})).unwrap();
    spool.close().unwrap();
    assert!(!path.exists());
    assert!(!db.join(PATH_RECORD_NAME).exists());
}

#[test]
fn bad_requests_get_errors_the_connection_survives_and_nothing_changes() {
    let dir = tempdir();
    let db = db_path(&dir);
    let clock = ManualClock::new(t0());
    let (spool, _socket) = serving(&db, &clock);
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let before = (spool.stats().unwrap(), spool.last_seq());
    let mut raw = Raw::connect(&db.join("control.sock"));

    let cases: Vec<(&str, &str)> = vec![
        ("{not json", "INVALID_ARGUMENT"),
        ("[1,2,3]", "INVALID_ARGUMENT"),
        (r#"{"id":1}"#, "INVALID_ARGUMENT"),
        (r#"{"id":2,"op":"jobs.nope"}"#, "INVALID_ARGUMENT"),
        (
            r#"{"id":3,"op":"jobs.get","input":{"jobId":"nope"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":4,"op":"jobs.get","input":{"jobId":42}}"#,
            "INVALID_ARGUMENT",
        ),
        (r#"{"id":5,"op":"jobs.get","input":[]}"#, "INVALID_ARGUMENT"),
        (
            r#"{"id":6,"op":"jobs.stats","input":{"bogus":1}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":7,"op":"jobs.stats","extra":1}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":8,"op":"jobs.enqueue","input":{}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":9,"op":"jobs.enqueue","input":{"type":""}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":10,"op":"jobs.enqueue","input":{"type":"t","delaySeconds":-1}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":11,"op":"jobs.enqueue","input":{"type":"t","delaySeconds":"5"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":12,"op":"jobs.enqueue","input":{"type":"t","maxRetries":0}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":13,"op":"jobs.enqueue","input":{"type":"t","maxRetries":-2}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":14,"op":"jobs.enqueue","input":{"type":"t","priority":1.5}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":15,"op":"jobs.enqueue","input":{"type":"t","typo":1}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":16,"op":"jobs.enqueue","input":{"type":"t","metadata":{"a":1}}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":17,"op":"jobs.enqueue","input":{"type":"t","payload":"!!","payloadEncoding":"base64"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":18,"op":"jobs.enqueue","input":{"type":"t","runAt":"tomorrow"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":19,"op":"jobs.list","input":{"limit":0}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":20,"op":"jobs.list","input":{"status":"done"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":21,"op":"jobs.schedule.toggle","input":{"name":"x","enabled":"yes"}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":22,"op":"jobs.dead.redrive","input":{}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":23,"op":"jobs.events","input":{"since":-1}}"#,
            "INVALID_ARGUMENT",
        ),
        (
            r#"{"id":24,"op":"jobs.enqueue","input":{"type":"t","payload":"AAAA","payloadEncoding":"base64","queue":7}}"#,
            "INVALID_ARGUMENT",
        ),
    ];
    for (line, code) in &cases {
        let resp = raw.request(line);
        error_of(&resp, code);
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) {
            assert_eq!(
                resp["id"],
                m.get("id").cloned().unwrap_or(Value::Null),
                "{line}"
            );
        }
    }
    // An over-limit payload that fits in a line is the library's PAYLOAD_TOO_LARGE.
    let big = json!({"id": "big", "op": "jobs.enqueue",
                     "input": {"type": "t", "payload": json::base64(&vec![7u8; 1024 * 1024 + 1]), "payloadEncoding": "base64"}});
    error_of(&raw.request(&big.to_string()), "PAYLOAD_TOO_LARGE");

    // An oversized line: an error, the rest of the line skipped, the connection kept.
    let mut huge = br#"{"id":"huge","op":"jobs.enqueue","input":{"type":"t","payload":""#.to_vec();
    huge.resize(LINE_LIMIT + 4096, b'a');
    huge.extend_from_slice(b"\"}}\n");
    raw.send(&huge);
    let resp = raw.recv().expect("a response to the oversized line");
    assert!(
        error_of(&resp, "INVALID_ARGUMENT").contains("limit"),
        "{resp}"
    );

    // Same connection, still served; nothing changed.
    let ok = raw.request(r#"{"id":"after","op":"jobs.stats"}"#);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["id"], "after");
    assert_eq!((spool.stats().unwrap(), spool.last_seq()), before);
    // And a fresh connection works too.
    let client = Client::connect_db(&db).unwrap();
    assert_eq!(
        client.call("jobs.stats", json!({})).unwrap(),
        json::stats(&before.0)
    );
    spool.close().unwrap();
}

#[test]
fn connections_over_the_limit_get_an_error_line_and_are_closed() {
    let dir = tempdir();
    let db = db_path(&dir);
    let clock = ManualClock::new(t0());
    let (spool, _socket) = serving(&db, &clock);
    let path = db.join("control.sock");
    // Fill every slot; a served request proves each connection holds one.
    let mut held: Vec<Raw> = (0..MAX_CONNECTIONS)
        .map(|i| {
            let mut r = Raw::connect(&path);
            assert_eq!(
                r.request(&format!(r#"{{"id":{i},"op":"jobs.ping"}}"#))["ok"],
                true
            );
            r
        })
        .collect();
    let mut extra = Raw::connect(&path);
    let resp = extra.recv().expect("an error line");
    assert!(
        error_of(&resp, "DATABASE_IN_USE").contains("at most"),
        "{resp}"
    );
    assert!(extra.recv().is_none(), "then closed");
    // A slot frees when a client leaves.
    drop(held.pop());
    let client = wait_for("a free slot", || {
        let mut r = Raw::connect(&path);
        let resp = r.try_request(r#"{"id":"x","op":"jobs.ping"}"#)?;
        (resp["ok"] == true).then_some(r)
    });
    drop(client);
    drop(held);
    spool.close().unwrap();
}

#[test]
fn thirty_two_concurrent_clients_enqueue_while_workers_run_and_nothing_is_lost() {
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 20;
    let dir = tempdir();
    let db = db_path(&dir);
    let (spool, _socket) = open_serving(&db).unwrap();
    let pool = WorkerPool::builder(&spool)
        .concurrency(4)
        .handler("t", |ctx| Ok(Some(ctx.payload().to_vec())))
        .start()
        .unwrap();
    let db = Arc::new(db);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let db = db.clone();
            std::thread::spawn(move || {
                let client = Client::connect_db(&*db).expect("connecting");
                (0..PER_CLIENT)
                    .map(|i| {
                        let job = client
                            .call(
                                "jobs.enqueue",
                                json!({"type": "t", "payload": {"c": c, "i": i}}),
                            )
                            .expect("enqueue through the socket");
                        job["id"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: BTreeSet<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    assert_eq!(
        ids.len(),
        CLIENTS * PER_CLIENT,
        "every enqueue got its own job"
    );
    let total = (CLIENTS * PER_CLIENT) as u64;
    wait_for("every job completed", || {
        (spool.stats().unwrap().total.completed == total).then_some(())
    });
    for id in &ids {
        let j = spool.get(id.parse().unwrap()).unwrap();
        assert_eq!(j.status, jobspool::JobStatus::Completed, "{id}");
        assert_eq!(j.result.as_deref(), Some(&j.payload[..]));
    }
    let stats = spool.stats().unwrap().total;
    assert_eq!((stats.pending, stats.running), (0, 0));
    pool.shutdown(std::time::Duration::from_secs(30));
    spool.close().unwrap();
}

#[test]
fn explicit_socket_path_is_recorded_for_clients() {
    let dir = tempdir();
    let db = db_path(&dir);
    let custom = dir.path().join("ctl.sock");
    let spool = Spool::open(&db).unwrap();
    let socket = control::serve_at(&spool, &custom).unwrap();
    assert_eq!(socket.path(), custom.as_path());
    assert!(socket_is_live(&custom));
    let client = Client::connect_db(&db).expect("found through the record");
    assert_eq!(client.path(), custom);
    assert_eq!(
        client.call("jobs.ping", json!({})).unwrap()["pong"],
        json!(true)
    );
    spool.close().unwrap();
    assert!(!custom.exists());
    assert!(UnixStream::connect(&custom).is_err());
}
