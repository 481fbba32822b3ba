//! `GET /metrics`: Prometheus text that parses, with the queue's counts, the events,
//! lease expiries and handler durations.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::http::{get, serve};
use common::{conformance, TestBackend};
use jobspool::{JobError, NewJob, WorkerPool};

conformance!(
    metrics_parse_and_match_the_queue,
    lease_expiries_are_counted
);

/// The samples of a Prometheus text page, by `name{labels}`; panics on a line that does not
/// parse, on a sample without a `# TYPE` before it, or on a TYPE given twice.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "metric name {name}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "sample twice: {line}"
        );
    }
    samples
}

fn metrics_parse_and_match_the_queue(b: TestBackend) {
    let store = b.store();
    let spool = store.open(jobspool::Spool::builder());
    for i in 0..3 {
        spool
            .enqueue(NewJob::new("ok", vec![]).queue("mail"))
            .unwrap();
        spool
            .enqueue(
                NewJob::new("bad", vec![])
                    .max_attempts(1)
                    .queue(format!("q\"{i}")),
            )
            .unwrap();
    }
    let pool = WorkerPool::builder(&spool)
        .concurrency(2)
        .handler("ok", |_| Ok(None))
        .handler("bad", |_| Err(JobError::permanent("no")))
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool.stats().unwrap().total.completed
        + spool.stats().unwrap().total.dead_letter
        + spool.stats().unwrap().total.failed
        < 6
    {
        assert!(Instant::now() < deadline, "jobs never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    pool.shutdown(Duration::from_secs(5));
    spool.pause_queue("mail").unwrap();
    let server = serve(&spool);
    let r = get(server.addr(), "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = parse(&r.text());
    let stats = spool.stats().unwrap();
    assert_eq!(m["jobspool_jobs{queue=\"mail\",status=\"completed\"}"], 3.0);
    assert_eq!(m["jobspool_jobs{queue=\"mail\",status=\"pending\"}"], 0.0);
    assert_eq!(m["jobspool_queue_paused{queue=\"mail\"}"], 1.0);
    // Label values are escaped.
    let dead = stats.queues["q\"0"].counts.dead_letter + stats.queues["q\"0"].counts.failed;
    assert_eq!(dead, 1);
    assert!(
        m.contains_key("jobspool_jobs{queue=\"q\\\"0\",status=\"dead_letter\"}"),
        "{m:?}"
    );
    assert_eq!(m["jobspool_events_total{event=\"job.enqueued\"}"], 6.0);
    assert_eq!(m["jobspool_events_total{event=\"job.completed\"}"], 3.0);
    assert_eq!(
        m["jobspool_handler_duration_seconds_count{outcome=\"completed\"}"],
        3.0
    );
    assert_eq!(
        m["jobspool_handler_duration_seconds_count{outcome=\"failed\"}"],
        3.0
    );
    assert_eq!(
        m["jobspool_handler_duration_seconds_bucket{outcome=\"completed\",le=\"+Inf\"}"],
        3.0
    );
    assert!(m.contains_key("jobspool_storage_fsyncs_total"));
    // The journal's byte counts: what sled appended and still holds; PostgreSQL has none.
    let journal = m["jobspool_storage_journal_bytes_total"];
    let live = m["jobspool_storage_live_bytes"];
    match b {
        TestBackend::Sled => assert!(journal > 0.0 && live > 0.0, "{journal} {live}"),
        TestBackend::Postgres => assert_eq!((journal, live), (0.0, 0.0)),
    }
    assert_eq!(m["jobspool_last_event_seq"], spool.last_seq() as f64);
    assert_eq!(m["jobspool_lease_expiries_total"], 0.0);
}

fn lease_expiries_are_counted(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("t", vec![])).unwrap();
    let claimed = spool.claim(&spool.claim_request(1)).unwrap();
    assert_eq!(claimed.len(), 1);
    clock.advance_ms(3_600_000);
    assert_eq!(spool.expire_leases().unwrap(), 1);
    assert_eq!(spool.activity().lease_expiries, 1);
    let server = serve(&spool);
    let m = parse(&get(server.addr(), "/metrics").text());
    assert_eq!(m["jobspool_lease_expiries_total"], 1.0);
}
