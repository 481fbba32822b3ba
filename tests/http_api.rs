//! The HTTP API against a served spool: every op answers what the control socket answers,
//! errors carry their code's status, read-only refuses mutations.

mod common;

use common::http::{get, op, op_ok, request, serve, serve_with, TOKEN};
use common::{conformance, TestBackend};
use jobspool::{control, NewJob, Spool};
use serde_json::{json, Value};

conformance!(
    every_op_answers_the_control_sockets_output,
    errors_carry_their_codes_status,
    read_only_refuses_mutations_and_serves_reads,
    payload_over_the_spools_limit_is_413,
    routes_and_methods
);

/// Jobs and a schedule to look at.
fn seed(spool: &Spool) -> (String, String) {
    let a = spool
        .enqueue(NewJob::new("email.send", br#"{"to":"a@b.c"}"#.to_vec()).queue("mail"))
        .unwrap()
        .job
        .id
        .to_string();
    let b = spool
        .enqueue(NewJob::new("bytes", vec![0xff, 0x00]))
        .unwrap()
        .job
        .id
        .to_string();
    control::dispatch(
        spool,
        "jobs.schedule.create",
        &json!({"name": "nightly", "cronExpression": "0 3 * * *", "jobType": "report"}),
    )
    .unwrap();
    (a, b)
}

fn every_op_answers_the_control_sockets_output(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let (a, bytes_job) = seed(&spool);
    let server = serve(&spool);
    let addr = server.addr();
    // Reads: the same bytes as the control socket's output.
    for (name, input) in [
        ("jobs.get", json!({"jobId": a})),
        ("jobs.get", json!({"jobId": bytes_job})),
        ("jobs.stats", json!({})),
        ("jobs.list", json!({"limit": 10})),
        ("jobs.list", json!({"status": "pending", "queue": "mail"})),
        ("jobs.dead.list", json!({})),
        ("jobs.schedule.list", json!({})),
        ("jobs.events", json!({"since": 0})),
        ("jobs.ping", json!({})),
    ] {
        let want = control::dispatch(&spool, name, &input).unwrap();
        assert_eq!(op_ok(addr, name, &input), want, "{name} {input}");
    }
    // An empty body is an op without fields.
    let r = request(
        addr,
        "POST",
        "/api/v1/ops/jobs.stats",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Mutations: the seed's output shapes.
    let job = op_ok(
        addr,
        "jobs.enqueue",
        &json!({"type": "t", "payload": {"n": 1}, "maxRetries": 2, "dedupeKey": "k"}),
    );
    assert_eq!(job["status"], "pending");
    assert_eq!(job["payload"], json!({"n": 1}));
    assert_eq!(job["maxRetries"], 2);
    let again = op_ok(
        addr,
        "jobs.enqueue",
        &json!({"type": "t", "dedupeKey": "k"}),
    );
    assert_eq!(again["id"], job["id"]);
    assert_eq!(again["deduplicated"], true);
    let batch = op_ok(
        addr,
        "jobs.enqueue.batch",
        &json!({"jobs": [{"type": "x"}, {"type": "y"}]}),
    );
    assert_eq!(batch["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(
        op_ok(addr, "jobs.cancel", &json!({"jobId": job["id"]})),
        json!({"success": true})
    );
    assert_eq!(
        spool
            .get(job["id"].as_str().unwrap().parse().unwrap())
            .unwrap()
            .status,
        jobspool::JobStatus::Cancelled
    );
    let sched = op_ok(
        addr,
        "jobs.schedule.create",
        &json!({"name": "s2", "cronExpression": "*/5 * * * *", "jobType": "tick", "timezone": "Europe/Berlin"}),
    );
    assert_eq!(sched["name"], "s2");
    assert_eq!(sched["timezone"], "Europe/Berlin");
    assert_eq!(sched["enabled"], true);
    let off = op_ok(
        addr,
        "jobs.schedule.toggle",
        &json!({"name": "s2", "enabled": false}),
    );
    assert_eq!(off["enabled"], false);
    assert_eq!(
        op_ok(addr, "jobs.schedule.delete", &json!({"name": "s2"})),
        json!({"success": true})
    );
    assert_eq!(
        op_ok(addr, "jobs.queue.pause", &json!({"queue": "mail"})),
        json!({"queue": "mail", "paused": true})
    );
    assert!(spool.stats().unwrap().queues["mail"].paused);
    assert_eq!(
        op_ok(addr, "jobs.queue.resume", &json!({"queue": "mail"})),
        json!({"queue": "mail", "paused": false})
    );
    assert_eq!(
        op_ok(addr, "jobs.dead.redrive", &json!({"all": true})),
        json!({"redriven": 0, "jobIds": []})
    );
    let pruned = op_ok(addr, "jobs.prune", &json!({}));
    assert!(pruned["pruned"].is_u64(), "{pruned}");
}

fn errors_carry_their_codes_status(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let (a, _) = seed(&spool);
    let server = serve(&spool);
    let addr = server.addr();
    let missing = "01936b5e-4d2a-7c3e-9f00-000000000001";
    for (name, input, status, code) in [
        ("jobs.get", json!({"jobId": missing}), 404, "JOB_NOT_FOUND"),
        (
            "jobs.get",
            json!({"jobId": "nope"}),
            400,
            "INVALID_ARGUMENT",
        ),
        ("jobs.get", json!({}), 400, "INVALID_ARGUMENT"),
        (
            "jobs.enqueue",
            json!({"type": "t", "typo": 1}),
            400,
            "INVALID_ARGUMENT",
        ),
        ("jobs.enqueue", json!([1]), 400, "INVALID_ARGUMENT"),
        ("jobs.list", json!({"limit": 0}), 400, "INVALID_ARGUMENT"),
        (
            "jobs.schedule.toggle",
            json!({"name": "none", "enabled": true}),
            404,
            "SCHEDULE_NOT_FOUND",
        ),
        (
            "jobs.schedule.create",
            json!({"name": "nightly", "cronExpression": "0 3 * * *", "jobType": "report"}),
            409,
            "SCHEDULE_EXISTS",
        ),
        (
            "jobs.schedule.create",
            json!({"name": "x", "cronExpression": "61 * * * *", "jobType": "r"}),
            400,
            "INVALID_CRON",
        ),
        (
            "jobs.schedule.create",
            json!({"name": "x", "cronExpression": "* * * * *", "jobType": "r", "timezone": "Mars/Base"}),
            400,
            "INVALID_TIMEZONE",
        ),
    ] {
        let r = op(addr, name, &input);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{name} {input}: {}",
            r.text()
        );
        assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    // A job that is not pending cannot be cancelled: 409.
    op_ok(addr, "jobs.cancel", &json!({"jobId": a}));
    let r = op(addr, "jobs.cancel", &json!({"jobId": a}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "JOB_NOT_PENDING"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.json()["error"]["jobId"],
        a,
        "details as the control socket gives them"
    );
    // A body that is not JSON, an unknown op.
    let bearer = format!("Bearer {TOKEN}");
    let r = request(
        addr,
        "POST",
        "/api/v1/ops/jobs.get",
        &[("Authorization", &bearer)],
        b"{nope",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "INVALID_ARGUMENT"));
    let r = op(addr, "jobs.nope", &json!({}));
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("jobs.enqueue"),
        "names the known ops: {}",
        r.text()
    );
}

fn read_only_refuses_mutations_and_serves_reads(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let (a, _) = seed(&spool);
    let server = serve_with(&spool, |c| c.read_only(true));
    let addr = server.addr();
    let before = spool.last_seq();
    for (name, input) in [
        ("jobs.enqueue", json!({"type": "t"})),
        ("jobs.cancel", json!({"jobId": a})),
        ("jobs.queue.pause", json!({"queue": "mail"})),
        ("jobs.schedule.delete", json!({"name": "nightly"})),
        ("jobs.dead.redrive", json!({"all": true})),
        ("jobs.prune", json!({})),
    ] {
        let r = op(addr, name, &input);
        assert_eq!((r.status, r.code().as_str()), (403, "READ_ONLY"), "{name}");
    }
    assert_eq!(spool.last_seq(), before, "nothing changed");
    assert_eq!(
        op_ok(addr, "jobs.get", &json!({"jobId": a}))["status"],
        "pending"
    );
    op_ok(addr, "jobs.stats", &json!({}));
    op_ok(addr, "jobs.list", &json!({}));
}

fn payload_over_the_spools_limit_is_413(b: TestBackend) {
    let store = b.store();
    let spool = store.open(Spool::builder().payload_limit(16));
    let server = serve(&spool);
    let r = op(
        server.addr(),
        "jobs.enqueue",
        &json!({"type": "t", "payload": "x".repeat(64)}),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        r.text()
    );
    // And a body over the server's own limit is refused before it is read.
    let small = serve_with(&spool, |c| c.body_limit(100));
    let r = op(
        small.addr(),
        "jobs.enqueue",
        &json!({"type": "t", "payload": "x".repeat(200)}),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(spool.stats().unwrap().total.pending, 0);
}

fn routes_and_methods(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let r = get(addr, "/api/v1/ops/jobs.stats");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(get(addr, "/api/v1/nothing").status, 404);
    assert_eq!(get(addr, "/api/v2/ops/jobs.get").status, 404);
    let r = request(addr, "DELETE", "/api/v1/ops/jobs.get", &[], b"");
    assert_eq!(r.status, 405);
    let r = request(addr, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = request(addr, "HEAD", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let doc = get(addr, "/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["openapi"], "3.1.0");
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    // Percent-encoded op names route like plain ones.
    let bearer = format!("Bearer {TOKEN}");
    let r = request(
        addr,
        "POST",
        "/api/v1/ops/jobs%2Estats",
        &[("Authorization", &bearer)],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let _: Value = r.json();
}
