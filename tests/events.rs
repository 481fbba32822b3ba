//! The event log: seed payloads with their exact JSON field names,
//! contiguous sequence numbers from 1 (also across reopen), replay with `events_since`, and
//! the live subscription.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Duration as CDuration;
use common::{all_events, assert_contiguous_from_one, conformance, t0, TestBackend};
use jobspool::{Backoff, EventRecord, NewJob, Retry};
use serde_json::{json, Value};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    enqueue_emits_job_enqueued_with_seed_fields,
    claim_emits_job_started_with_seed_fields,
    complete_emits_job_completed_with_duration_from_clock,
    retryable_failure_emits_job_failed_then_job_retrying,
    last_failed_attempt_emits_job_failed_then_job_dead_lettered,
    permanent_failure_emits_only_job_failed,
    cancel_emits_job_cancelled_with_seed_fields,
    failed_operations_append_no_event,
    sequence_numbers_start_at_one_and_are_contiguous_across_reopen,
    events_since_returns_only_events_after_the_given_seq,
    subscriber_receives_events_after_the_operation_returns,
    every_subscriber_gets_every_event_and_close_disconnects_them,
    buffered_subscriber_gets_events_only_once_they_are_durable,
    concurrent_writers_get_seqs_that_never_contradict_commit_order,
    pages_of_a_large_batch_and_of_single_commits_read_the_same_as_the_whole_log,
    regression_events_since_limit_outside_1_to_10000_is_invalid_argument
);

/// `json::event` of the last event, checked to have `seq`, `name` first, then exactly
/// `fields`.
fn last_event_json(spool: &jobspool::Spool, name: &str, fields: &[&str]) -> Value {
    let events = all_events(spool);
    let last = events.last().expect("an event");
    check_shape(last, name, fields)
}

fn check_shape(rec: &EventRecord, name: &str, fields: &[&str]) -> Value {
    let v = jobspool::json::event(rec);
    let obj = v.as_object().expect("an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(&keys[..2], &["seq", "name"], "seq first, then name: {v}");
    assert_eq!(obj["seq"], json!(rec.seq));
    assert_eq!(obj["name"], json!(name), "{v}");
    assert_eq!(rec.event.name(), name);
    let got: BTreeSet<&str> = keys[2..].iter().copied().collect();
    let want: BTreeSet<&str> = fields.iter().copied().collect();
    assert_eq!(got, want, "exact seed payload fields of {name}: {v}");
    v
}

fn ts(ms_after_t0: i64) -> Value {
    json!(jobspool::json::time(
        t0() + CDuration::milliseconds(ms_after_t0)
    ))
}

fn enqueue_emits_job_enqueued_with_seed_fields(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let j = spool
        .enqueue(
            NewJob::new("email.send", b"{}".to_vec())
                .priority(4)
                .tenant_id("acme")
                .delay(Duration::from_millis(2500)),
        )
        .unwrap();
    let v = last_event_json(
        &spool,
        "job.enqueued",
        &[
            "jobId",
            "type",
            "priority",
            "enqueuedAt",
            "scheduledAt",
            "tenantId",
        ],
    );
    assert_eq!(v["jobId"], json!(j.id.to_string()));
    assert_eq!(v["type"], json!("email.send"));
    assert_eq!(v["priority"], json!(4));
    assert_eq!(v["enqueuedAt"], ts(0));
    assert_eq!(v["enqueuedAt"], json!("2026-11-28T20:00:00.000Z"));
    assert_eq!(v["scheduledAt"], ts(2500));
    assert_eq!(v["tenantId"], json!("acme"));

    // Without a tenant, tenantId is absent (optional field).
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let v = last_event_json(
        &spool,
        "job.enqueued",
        &["jobId", "type", "priority", "enqueuedAt", "scheduledAt"],
    );
    assert_eq!(v["priority"], json!(0));
}

fn claim_emits_job_started_with_seed_fields(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let j = spool
        .enqueue(NewJob::new("email.send", Vec::new()))
        .unwrap();
    clock.advance_ms(200);
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    assert_eq!(c.job.id, j.id);
    let v = last_event_json(
        &spool,
        "job.started",
        &["jobId", "type", "attempt", "startedAt"],
    );
    assert_eq!(v["jobId"], json!(j.id.to_string()));
    assert_eq!(v["type"], json!("email.send"));
    assert_eq!(v["attempt"], json!(1));
    assert_eq!(v["startedAt"], ts(200));
}

fn complete_emits_job_completed_with_duration_from_clock(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let j = spool
        .enqueue(NewJob::new("email.send", Vec::new()))
        .unwrap();
    clock.advance_ms(100);
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    clock.advance_ms(1234);
    spool
        .complete(
            jobspool::Lease::new(j.id, c.lease.token),
            Some(b"sent".to_vec()),
        )
        .unwrap();
    let v = last_event_json(
        &spool,
        "job.completed",
        &["jobId", "type", "attempt", "durationMs", "completedAt"],
    );
    assert_eq!(v["jobId"], json!(j.id.to_string()));
    assert_eq!(v["type"], json!("email.send"));
    assert_eq!(v["attempt"], json!(1));
    assert_eq!(v["durationMs"], json!(1234));
    assert_eq!(v["completedAt"], ts(1334));
}

fn retryable_failure_emits_job_failed_then_job_retrying(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let j = spool
        .enqueue(NewJob::new("email.send", Vec::new()).backoff(Backoff {
            initial: std::time::Duration::from_millis(1000),
            multiplier: 2.0,
            max: std::time::Duration::from_millis(60_000),
            jitter: 0.0,
        }))
        .unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    clock.advance_ms(1000);
    let seq = spool.last_seq();
    spool
        .fail(
            jobspool::Lease::new(j.id, c.lease.token),
            "smtp timeout",
            Retry::Backoff,
        )
        .unwrap();
    let events = spool.events_since(seq, 10).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let failed = check_shape(
        &events[0],
        "job.failed",
        &["jobId", "type", "attempt", "error", "willRetry", "failedAt"],
    );
    assert_eq!(failed["jobId"], json!(j.id.to_string()));
    assert_eq!(failed["type"], json!("email.send"));
    assert_eq!(failed["attempt"], json!(1));
    assert_eq!(failed["error"], json!("smtp timeout"));
    assert_eq!(failed["willRetry"], json!(true));
    assert_eq!(failed["failedAt"], ts(1000));
    let retrying = check_shape(
        &events[1],
        "job.retrying",
        &["jobId", "type", "attempt", "nextAttemptAt", "backoffMs"],
    );
    assert_eq!(retrying["jobId"], json!(j.id.to_string()));
    assert_eq!(retrying["attempt"], json!(1));
    assert_eq!(retrying["backoffMs"], json!(1000));
    assert_eq!(retrying["nextAttemptAt"], ts(2000));

    // The second failure doubles the backoff.
    clock.advance_ms(1000);
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    let seq = spool.last_seq();
    spool
        .fail(
            jobspool::Lease::new(j.id, c.lease.token),
            "again",
            Retry::Backoff,
        )
        .unwrap();
    let events = spool.events_since(seq, 10).unwrap();
    let retrying = jobspool::json::event(&events[1]);
    assert_eq!(retrying["attempt"], json!(2));
    assert_eq!(retrying["backoffMs"], json!(2000));
    assert_eq!(retrying["nextAttemptAt"], ts(4000));
}

fn last_failed_attempt_emits_job_failed_then_job_dead_lettered(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let j = spool
        .enqueue(NewJob::new("email.send", Vec::new()).max_attempts(1))
        .unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    clock.advance_ms(50);
    let seq = spool.last_seq();
    spool
        .fail(
            jobspool::Lease::new(j.id, c.lease.token),
            "mailbox gone",
            Retry::Backoff,
        )
        .unwrap();
    let events = spool.events_since(seq, 10).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let failed = check_shape(
        &events[0],
        "job.failed",
        &["jobId", "type", "attempt", "error", "willRetry", "failedAt"],
    );
    assert_eq!(failed["willRetry"], json!(false));
    let dead = check_shape(
        &events[1],
        "job.dead_lettered",
        &["jobId", "type", "attempts", "lastError", "deadLetteredAt"],
    );
    assert_eq!(dead["jobId"], json!(j.id.to_string()));
    assert_eq!(dead["type"], json!("email.send"));
    assert_eq!(dead["attempts"], json!(1));
    assert_eq!(dead["lastError"], json!("mailbox gone"));
    assert_eq!(dead["deadLetteredAt"], ts(50));
}

fn permanent_failure_emits_only_job_failed(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let j = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    let seq = spool.last_seq();
    spool
        .fail(
            jobspool::Lease::new(j.id, c.lease.token),
            "bad input",
            Retry::Never,
        )
        .unwrap();
    let events = spool.events_since(seq, 10).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let v = check_shape(
        &events[0],
        "job.failed",
        &["jobId", "type", "attempt", "error", "willRetry", "failedAt"],
    );
    assert_eq!(v["willRetry"], json!(false));
}

fn cancel_emits_job_cancelled_with_seed_fields(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let j = spool
        .enqueue(NewJob::new("email.send", Vec::new()))
        .unwrap();
    clock.advance_ms(7);
    spool.cancel_by(j.id, "ops").unwrap();
    let v = last_event_json(
        &spool,
        "job.cancelled",
        &["jobId", "type", "cancelledAt", "cancelledBy"],
    );
    assert_eq!(v["jobId"], json!(j.id.to_string()));
    assert_eq!(v["type"], json!("email.send"));
    assert_eq!(v["cancelledAt"], ts(7));
    assert_eq!(v["cancelledBy"], json!("ops"));

    let j2 = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    spool.cancel(j2.id).unwrap();
    last_event_json(&spool, "job.cancelled", &["jobId", "type", "cancelledAt"]);
}

fn failed_operations_append_no_event(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let j = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    let seq = spool.last_seq();
    assert!(spool.cancel(j.id).is_err());
    assert!(
        spool
            .complete(jobspool::Lease::new(j.id, c.lease.token + 1), None)
            .is_err(),
        "stale token"
    );
    assert!(spool.enqueue(NewJob::new("", Vec::new())).is_err());
    assert_eq!(spool.last_seq(), seq);
    assert!(spool.events_since(seq, 10).unwrap().is_empty());
}

fn sequence_numbers_start_at_one_and_are_contiguous_across_reopen(b: TestBackend) {
    let (store, clock, spool) = b.fresh();
    assert_eq!(spool.last_seq(), 0);
    assert!(spool.events_since(0, 10).unwrap().is_empty());
    let a = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .complete(jobspool::Lease::new(a.id, c.lease.token), None)
        .unwrap();
    assert_eq!(spool.last_seq(), 4);
    assert_contiguous_from_one(&all_events(&spool));

    let mut spool = spool;
    for round in 0..4u64 {
        spool.close().unwrap();
        drop(spool);
        spool = store.open_manual(&clock);
        assert_eq!(
            spool.last_seq(),
            4 + 2 * round,
            "last_seq survives reopen (round {round})"
        );
        spool
            .enqueue_batch(vec![
                NewJob::new("t", Vec::new()),
                NewJob::new("t", Vec::new()),
            ])
            .unwrap();
        let events = all_events(&spool);
        assert_contiguous_from_one(&events);
        assert_eq!(events.len() as u64, spool.last_seq());
        assert_eq!(events.len() as u64, 6 + 2 * round);
    }
}

fn events_since_returns_only_events_after_the_given_seq(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool
        .enqueue_batch((0..10).map(|_| NewJob::new("t", Vec::new())).collect())
        .unwrap();
    for n in 0..=10u64 {
        let got = spool.events_since(n, 1000).unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, ((n + 1)..=10).collect::<Vec<_>>(), "since {n}");
    }
    assert!(spool.events_since(u64::MAX, 10).unwrap().is_empty());
    // limit bounds the page; the next page continues where it stopped.
    let p1 = spool.events_since(3, 4).unwrap();
    assert_eq!(
        p1.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    let p2 = spool.events_since(p1.last().unwrap().seq, 4).unwrap();
    assert_eq!(p2.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8, 9, 10]);
}

fn subscriber_receives_events_after_the_operation_returns(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("before", Vec::new())).unwrap();
    let rx = spool.subscribe();
    let j = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let c = spool.claim(&spool.claim_request(2)).unwrap();
    assert_eq!(c.len(), 2);
    spool
        .cancel(spool.enqueue(NewJob::new("c", Vec::new())).unwrap().id)
        .unwrap();

    let wait = Duration::from_secs(10);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(rx.recv_timeout(wait).expect("a live event"));
    }
    let names: Vec<&str> = got.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names,
        vec![
            "job.enqueued",
            "job.started",
            "job.started",
            "job.enqueued",
            "job.cancelled"
        ]
    );
    assert_eq!(got[0].event.job_id(), Some(j.id));
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6], "live events carry their log seq");
    // What the subscriber saw is what the log holds.
    assert_eq!(got, spool.events_since(1, 100).unwrap());
    assert!(rx.try_recv().is_err(), "nothing else was sent");
}

fn every_subscriber_gets_every_event_and_close_disconnects_them(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let a = spool.subscribe();
    let b = spool.subscribe();
    spool
        .enqueue_batch((0..3).map(|_| NewJob::new("t", Vec::new())).collect())
        .unwrap();
    for rx in [&a, &b] {
        let seqs: Vec<u64> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }
    spool.close().unwrap();
    assert!(
        a.recv_timeout(Duration::from_secs(10)).is_err(),
        "close disconnects subscribers"
    );
}

fn buffered_subscriber_gets_events_only_once_they_are_durable(b: TestBackend) {
    let store = b.store();
    let spool = store.open(
        jobspool::Spool::builder()
            .maintenance(false)
            .scheduler(false)
            .durability(jobspool::Durability::Buffered {
                max_delay: Duration::from_secs(3600),
            }),
    );
    let rx = spool.subscribe();
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    assert_eq!(spool.metrics().fsyncs, 0, "nothing is durable yet");
    // Nothing may arrive before the change is durable (a correct implementation sends
    // nothing here at all, so this wait cannot fail it on a slow machine).
    let early = rx.recv_timeout(Duration::from_millis(300));
    assert!(
        early.is_err(),
        "event sent before it was durable (fsyncs = {}): {early:?}",
        spool.metrics().fsyncs
    );
    spool.flush().unwrap();
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("sent once durable");
    assert_eq!(ev.seq, 1);
}

/// Eight threads enqueue at once. Whenever one enqueue returned before another began, the
/// first one's event has the smaller seq; and the seqs are contiguous from 1. (PostgreSQL
/// numbers events after their commits, from a batch number drawn in the transaction: a
/// numbering that ignored commit order would fail this.)
fn concurrent_writers_get_seqs_that_never_contradict_commit_order(b: TestBackend) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (_store, _clock, spool) = b.fresh();
    let ticket = AtomicU64::new(0);
    // (job id, ticket before the call, ticket after it returned)
    let calls: Vec<(jobspool::JobId, u64, u64)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (spool, ticket) = (&spool, &ticket);
                sc.spawn(move || {
                    (0..40)
                        .map(|_| {
                            let start = ticket.fetch_add(1, Ordering::SeqCst);
                            let j = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
                            (j.id, start, ticket.fetch_add(1, Ordering::SeqCst))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let events = all_events(&spool);
    assert_contiguous_from_one(&events);
    let seq_of: std::collections::HashMap<jobspool::JobId, u64> = events
        .iter()
        .map(|e| (e.event.job_id().unwrap(), e.seq))
        .collect();
    assert_eq!(seq_of.len(), calls.len());
    for (x, _, x_end) in &calls {
        for (y, y_start, _) in &calls {
            if x_end < y_start {
                assert!(
                    seq_of[x] < seq_of[y],
                    "{x} returned before {y} began, but has seq {} > {}",
                    seq_of[x],
                    seq_of[y]
                );
            }
        }
    }
}

/// A batch of 1,100 jobs (PostgreSQL stores it as three rows of up to 512 events) between
/// single enqueues: every page of `events_since`, from any seq and with any limit, is the
/// matching slice of the whole log.
fn pages_of_a_large_batch_and_of_single_commits_read_the_same_as_the_whole_log(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    // (PostgreSQL delivers a process's own events to subscribers from memory, not from the
    // log: they must be the same.)
    let live = spool.subscribe();
    spool.enqueue(NewJob::new("a", Vec::new())).unwrap();
    spool
        .enqueue_batch((0..1100).map(|_| NewJob::new("t", Vec::new())).collect())
        .unwrap();
    for _ in 0..3 {
        spool.enqueue(NewJob::new("z", Vec::new())).unwrap();
    }
    let all = all_events(&spool);
    assert_contiguous_from_one(&all);
    assert_eq!(all.len(), 1104);
    assert_eq!(all[1103].event.name(), "job.enqueued");
    let got: Vec<EventRecord> = (0..all.len())
        .map(|_| {
            live.recv_timeout(Duration::from_secs(10))
                .expect("a live event")
        })
        .collect();
    assert_eq!(got, all, "live events differ from the log");
    for after in [
        0u64, 1, 2, 511, 512, 513, 1023, 1024, 1100, 1101, 1102, 1103, 1104,
    ] {
        for limit in [1usize, 7, 512, 600, 10_000] {
            let got = spool.events_since(after, limit).unwrap();
            let from = usize::try_from(after).unwrap().min(all.len());
            let want = &all[from..(from + limit).min(all.len())];
            assert_eq!(got, want, "events_since({after}, {limit})");
        }
    }
}

// sled returned one event for `events_since(_, 0)` (the limit was checked only after an
// event was pushed), PostgreSQL none, and the control client refused it: now every door
// refuses a limit outside 1..=10000.
fn regression_events_since_limit_outside_1_to_10000_is_invalid_argument(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    for _ in 0..3 {
        spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    }
    assert_eq!(spool.events_since(0, 1).unwrap().len(), 1);
    // Every door takes 1..=10000, the Rust API as the socket, HTTP and CLI do.
    for limit in [0, 10_001, usize::MAX] {
        let err = spool.events_since(0, limit).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "limit {limit}: {err}");
        assert!(err.to_string().contains("1..=10000"), "{err}");
    }
    assert_eq!(spool.events_since(0, 10_000).unwrap().len(), 3);
}
