//! The typed control client: every operation through a socket gives the same Rust values
//! and the same error variants as on the spool itself; payloads print exactly.

mod control_common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use control_common::{db_path, tempdir};
use jobspool::control::{self, Client, ControlSocket};
use jobspool::{
    Error, JobId, JobStatus, ListQuery, ManualClock, NewJob, NewSchedule, Op, Queue, Spool,
};
use serde_json::{json, Value};

/// A spool serving its socket (manual clock, no background threads), and a client of it.
fn serving(dir: &tempfile::TempDir) -> (Spool, ControlSocket, Client) {
    let db = db_path(dir);
    let spool = Spool::builder()
        .clock(ManualClock::new(
            chrono::DateTime::parse_from_rfc3339("2026-11-28T20:00:00Z")
                .unwrap()
                .into(),
        ))
        .maintenance(false)
        .scheduler(false)
        .open(&db)
        .unwrap();
    let socket = control::serve(&spool).unwrap();
    let client = Client::connect_db(&db).unwrap();
    (spool, socket, client)
}

/// One request line through the socket, the response line as text.
fn raw_line(socket: &ControlSocket, request: &Value) -> String {
    let mut s = UnixStream::connect(socket.path()).unwrap();
    writeln!(s, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

/// Case `n` of the error table, run on `q`: the error it gives.
fn error_case<Q: Queue>(q: &Q, n: usize, cancelled: JobId) -> Option<Error> {
    let unknown: JobId = "01936b5e-4d2a-7c3e-9f00-00000000dead".parse().unwrap();
    let r = match n {
        0 => q.get(unknown).map(drop),
        1 => q.cancel(unknown).map(drop),
        2 => q.cancel_by(cancelled, "me").map(drop),
        3 => q.enqueue(NewJob::new("", b"x".to_vec())).map(drop),
        4 => q
            .enqueue(NewJob::new("t", vec![7u8; 1024 * 1024 + 1]))
            .map(drop),
        5 => q
            .create_schedule(NewSchedule::new("dup", "@daily", "t"))
            .map(drop),
        6 => q.toggle_schedule("nope", true).map(drop),
        7 => q.delete_schedule("nope"),
        8 => q
            .create_schedule(NewSchedule::new("c", "not a cron", "t"))
            .map(drop),
        9 => q
            .create_schedule(NewSchedule::new("z", "@daily", "t").timezone("Mars/Base"))
            .map(drop),
        10 => q.redrive(unknown).map(drop),
        11 => q.redrive(cancelled).map(drop),
        12 => q.pause_queue("").map(drop),
        13 => q
            .enqueue(
                NewJob::new("t", Vec::new())
                    .delay(std::time::Duration::from_secs(1))
                    .run_at(chrono::Utc::now()),
            )
            .map(drop),
        14 => q
            .enqueue(NewJob::new("t", Vec::new()).max_attempts(0))
            .map(drop),
        _ => return None,
    };
    Some(r.expect_err("every case fails"))
}

#[test]
fn every_error_comes_back_as_the_same_variant_code_and_message() {
    let dir = tempdir();
    let (spool, _socket, client) = serving(&dir);
    let cancelled = spool.enqueue(NewJob::new("t", Vec::new())).unwrap().id;
    spool.cancel(cancelled).unwrap();
    spool
        .create_schedule(NewSchedule::new("dup", "@daily", "t"))
        .unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for n in 0.. {
        let Some(local) = error_case(&spool, n, cancelled) else {
            break;
        };
        let remote = error_case(&client, n, cancelled).unwrap();
        assert_eq!(
            std::mem::discriminant(&remote),
            std::mem::discriminant(&local),
            "case {n}: {remote:?} vs {local:?}"
        );
        assert_eq!(remote.code(), local.code(), "case {n}");
        assert_eq!(remote.message(), local.message(), "case {n}");
        assert_eq!(
            remote.is_invalid_input(),
            local.is_invalid_input(),
            "case {n}"
        );
        assert_eq!(remote.is_not_found(), local.is_not_found(), "case {n}");
        assert!(
            !matches!(remote, Error::Remote { .. }),
            "case {n}: {remote:?}"
        );
        codes.insert(remote.code().as_str());
    }
    // Every code an operation on the socket can give (STALE_LEASE, CORRUPTION, ... are
    // covered by the error JSON's own round trip in the library's tests).
    for code in [
        "JOB_NOT_FOUND",
        "JOB_NOT_PENDING",
        "INVALID_ARGUMENT",
        "PAYLOAD_TOO_LARGE",
        "SCHEDULE_EXISTS",
        "SCHEDULE_NOT_FOUND",
        "INVALID_CRON",
        "INVALID_TIMEZONE",
    ] {
        assert!(codes.contains(code), "{code} is in the table");
    }
    let unknown: JobId = "01936b5e-4d2a-7c3e-9f00-00000000dead".parse().unwrap();
    assert!(
        matches!(client.get(unknown), Err(Error::JobNotFound { id }) if id == unknown.to_string())
    );
    assert!(matches!(
        client.call("jobs.get", json!({"jobId": unknown})),
        Err(Error::JobNotFound { .. })
    ));
    assert!(client
        .call("jobs.nope", Value::Null)
        .unwrap_err()
        .is_invalid_input());
}

#[test]
fn typed_operations_return_what_the_spool_returns() {
    let dir = tempdir();
    let (spool, _socket, client) = serving(&dir);
    let job = NewJob::new("email.send", b"\xff\x00 raw \n bytes".to_vec())
        .queue("mail")
        .priority(4)
        .max_attempts(7)
        .timeout(std::time::Duration::from_secs(5))
        .dedupe_key("d1")
        .tenant_id("t")
        .user_id("u")
        .trace_id("tr")
        .meta("k", "v")
        .version("2.1.0")
        .delay(std::time::Duration::from_millis(1500));
    let sent = client.enqueue(job).unwrap();
    assert!(!sent.deduplicated);
    assert_eq!(sent.job, spool.get(sent.id).unwrap());
    assert_eq!(sent.payload, b"\xff\x00 raw \n bytes");
    assert_eq!(
        sent.scheduled_at.unwrap().timestamp_millis() - sent.created_at.timestamp_millis(),
        1500
    );
    let batch = client
        .enqueue_batch(vec![
            NewJob::new("a", br#"{"n":12345678901234567890123}"#.to_vec()),
            NewJob::new("b", Vec::new()).queue("mail"),
        ])
        .unwrap();
    assert_eq!(batch[0].payload, br#"{"n":12345678901234567890123}"#);
    let cancelled = client.cancel_by(batch[1].id, "ops").unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled, spool.get(batch[1].id).unwrap());

    let q = ListQuery {
        queue: Some("mail".into()),
        ..ListQuery::default()
    };
    assert_eq!(client.list(&q).unwrap(), spool.list(&q).unwrap());
    // The tenant and dedupe-key filters travel too.
    let q = ListQuery {
        tenant_id: Some("t".into()),
        dedupe_key: Some("d1".into()),
        ..ListQuery::default()
    };
    let by_client = client.list(&q).unwrap();
    assert_eq!(by_client.len(), 1);
    assert_eq!(by_client, spool.list(&q).unwrap());
    let q = ListQuery {
        tenant_id: Some("nobody".into()),
        ..ListQuery::default()
    };
    assert!(client.list(&q).unwrap().is_empty());
    assert_eq!(client.stats().unwrap(), spool.stats().unwrap());
    client.pause_queue("mail").unwrap();
    assert!(spool.stats().unwrap().queues["mail"].paused);
    client.resume_queue("mail").unwrap();
    assert_eq!(client.stats().unwrap(), spool.stats().unwrap());

    let s = client
        .create_schedule(
            NewSchedule::new("nightly", "0 3 * * *", "report")
                .timezone("Europe/Berlin")
                .payload(b"\x01\x02".to_vec())
                .description("d"),
        )
        .unwrap();
    assert_eq!(vec![s], spool.list_schedules().unwrap());
    let off = client.toggle_schedule("nightly", false).unwrap();
    assert!(!off.enabled);
    assert_eq!(
        client.list_schedules().unwrap(),
        spool.list_schedules().unwrap()
    );
    client.delete_schedule("nightly").unwrap();
    assert!(spool.list_schedules().unwrap().is_empty());

    // Dead jobs: fail one for good, redrive it through the client.
    let dead = spool
        .enqueue(NewJob::new("dies", Vec::new()).queue("x"))
        .unwrap();
    let claimed = spool.claim(&spool.claim_request(10)).unwrap();
    for c in &claimed {
        if c.job.id == dead.id {
            spool.fail(c.lease, "no", jobspool::Retry::Never).unwrap();
        } else {
            spool.release(c.lease).unwrap();
        }
    }
    let dq = ListQuery::default();
    assert_eq!(
        client.dead_letters(&dq).unwrap(),
        spool.dead_letters(&dq).unwrap()
    );
    let back = client.redrive(dead.id).unwrap();
    assert_eq!(back.status, JobStatus::Pending);
    assert_eq!(back, spool.get(dead.id).unwrap());
    assert!(client.redrive_all(None, None).unwrap().is_empty());

    assert_eq!(
        client.events_since(0, 10_000).unwrap(),
        spool.events_since(0, 10_000).unwrap()
    );
    assert_eq!(client.prune().unwrap(), 0);
}

#[test]
fn payload_with_big_integers_prints_verbatim() {
    let dir = tempdir();
    let (spool, socket, client) = serving(&dir);
    let text = r#"{"n":12345678901234567890123,"d":0.10000000000000000555,"e":1E400}"#;
    let job = spool
        .enqueue(NewJob::new("t", text.as_bytes().to_vec()))
        .unwrap();
    // The socket's response line holds the payload's own text.
    let line = raw_line(
        &socket,
        &json!({"id": 1, "op": "jobs.get", "input": {"jobId": job.id}}),
    );
    assert!(
        line.contains(&format!(r#""payload":{text},"status""#)),
        "{line}"
    );
    assert!(!line.contains("payloadEncoding"), "{line}");
    // So does the Output's serialization, and the typed client gets the bytes back.
    let out = Op::from_json("jobs.get", json!({"jobId": job.id}))
        .unwrap()
        .run(&spool)
        .unwrap();
    assert!(serde_json::to_string(&out).unwrap().contains(text));
    assert_eq!(client.get(job.id).unwrap().payload, text.as_bytes());
    // The result, likewise.
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .complete(c.lease, Some(b"[98765432109876543210987]".to_vec()))
        .unwrap();
    let line = raw_line(
        &socket,
        &json!({"id": 2, "op": "jobs.get", "input": {"jobId": job.id}}),
    );
    assert!(
        line.contains(r#""result":[98765432109876543210987]"#),
        "{line}"
    );
}

#[test]
fn raw_bytes_cannot_be_confused_with_a_json_payload() {
    let dir = tempdir();
    let (spool, socket, client) = serving(&dir);
    // A JSON payload that looks like the old raw-bytes object, and raw bytes.
    let json_payload = br#"{"base64":"Zm9v"}"#.to_vec();
    let raw_payload = b"foo".to_vec();
    let a = spool
        .enqueue(NewJob::new("t", json_payload.clone()))
        .unwrap();
    let b = spool
        .enqueue(NewJob::new("t", raw_payload.clone()))
        .unwrap();
    let get = |id: JobId| client.call("jobs.get", json!({ "jobId": id })).unwrap();
    let (ja, jb) = (get(a.id), get(b.id));
    assert_eq!(ja["payload"], json!({"base64": "Zm9v"}));
    assert_eq!(ja.get("payloadEncoding"), None);
    assert_eq!(jb["payload"], "Zm9v");
    assert_eq!(jb["payloadEncoding"], "base64");
    assert_ne!(
        (&ja["payload"], ja.get("payloadEncoding")),
        (&jb["payload"], jb.get("payloadEncoding"))
    );
    // Each job's payload, sent back as printed, stores the same bytes.
    for (printed, bytes) in [(&ja, &json_payload), (&jb, &raw_payload)] {
        let mut input = json!({"type": "again", "payload": printed["payload"]});
        if let Some(enc) = printed.get("payloadEncoding") {
            input["payloadEncoding"] = enc.clone();
        }
        let again = client.call("jobs.enqueue", input).unwrap();
        let id: JobId = again["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(&spool.get(id).unwrap().payload, bytes);
        assert_eq!(again["payload"], printed["payload"]);
    }
    // An unknown encoding is rejected, naming the field.
    let line = raw_line(
        &socket,
        &json!({"id": 3, "op": "jobs.enqueue",
                "input": {"type": "t", "payload": "00", "payloadEncoding": "hex"}}),
    );
    assert!(
        line.contains("INVALID_ARGUMENT") && line.contains("payloadEncoding"),
        "{line}"
    );
}
