//! Job lifecycle through the library: enqueue options and defaults, batch atomicity, cancel,
//! list and paging, stats, and the validation errors of the contract.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{all_events, all_jobs, code_of, conformance, snapshot, t0, Store, TestBackend};
use jobspool::{Backoff, Event, JobId, JobStatus, ListQuery, ManualClock, NewJob, Spool};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    enqueue_with_every_option_round_trips_through_get,
    enqueue_defaults_are_version_1_0_0_queue_default_three_attempts_priority_zero,
    delay_and_run_at_together_are_invalid_argument,
    batch_enqueue_returns_jobs_in_input_order_with_increasing_ids,
    batch_enqueue_with_one_invalid_job_stores_nothing_and_emits_nothing,
    regression_a_bad_job_in_a_batch_is_named_by_its_place,
    cancel_pending_job_marks_it_cancelled_and_emits_job_cancelled,
    cancel_delayed_job_clears_delayed_count,
    cancel_by_records_who_cancelled,
    cancel_unknown_id_is_job_not_found,
    cancel_running_job_is_rejected_with_job_not_pending,
    cancel_cancelled_job_is_rejected_with_job_not_pending,
    cancel_completed_job_is_rejected_with_job_not_pending,
    list_filters_by_status_queue_and_kind,
    list_filters_by_tenant_and_dedupe_key_exactly,
    list_pages_with_after_cursor_without_duplicates_or_gaps,
    list_default_page_is_100,
    stats_count_per_queue_and_globally,
    delayed_job_counts_as_pending_and_delayed_until_clock_passes_run_time,
    run_at_in_the_future_counts_as_delayed,
    empty_type_is_invalid_argument_and_changes_nothing,
    max_attempts_zero_is_invalid_argument_and_changes_nothing,
    delay_over_ten_years_is_invalid_argument_and_changes_nothing,
    run_at_over_ten_years_is_invalid_argument_and_changes_nothing,
    payload_over_limit_is_payload_too_large_and_changes_nothing,
    other_bad_fields_are_invalid_argument_and_change_nothing,
    regression_keys_with_a_nul_character_are_invalid_argument_not_storage,
    regression_who_cancelled_may_hold_a_nul_character,
    regression_filters_holding_a_nul_character_match_nothing
);

const DAY_MS: u64 = 24 * 3600 * 1000;

fn full_job() -> NewJob {
    NewJob::new("email.send", br#"{"to":"a@b.c"}"#.to_vec())
        .queue("mail")
        .priority(7)
        .delay(Duration::from_secs(90))
        .max_attempts(5)
        .timeout(Duration::from_secs(30))
        .dedupe_key("user-42")
        .tenant_id("tenant-1")
        .user_id("user-42")
        .trace_id("trace-abc")
        .meta("source", "signup")
        .meta("campaign", "welcome")
        .version("2.1.0")
        .backoff(Backoff {
            initial: std::time::Duration::from_millis(250),
            multiplier: 3.0,
            max: std::time::Duration::from_millis(10_000),
            jitter: 0.0,
        })
}

fn enqueue_with_every_option_round_trips_through_get(b: TestBackend) {
    let (store, clock, spool) = b.fresh();
    let now = t0();
    let job = spool.enqueue(full_job()).unwrap();

    let got = spool.get(job.id).unwrap();
    assert_eq!(got, *job, "get must return what enqueue returned");
    assert_eq!(got.kind, "email.send");
    assert_eq!(got.payload, br#"{"to":"a@b.c"}"#.to_vec());
    assert_eq!(got.version, "2.1.0");
    assert_eq!(got.queue, "mail");
    assert_eq!(got.priority, 7);
    assert_eq!(got.status, JobStatus::Pending);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.max_attempts, 5);
    assert_eq!(got.timeout, Some(Duration::from_secs(30)));
    assert_eq!(got.dedupe_key.as_deref(), Some("user-42"));
    assert_eq!(got.tenant_id.as_deref(), Some("tenant-1"));
    assert_eq!(got.user_id.as_deref(), Some("user-42"));
    assert_eq!(got.trace_id.as_deref(), Some("trace-abc"));
    let meta: BTreeMap<String, String> = [("campaign", "welcome"), ("source", "signup")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got.metadata, meta);
    assert_eq!(
        got.backoff,
        Some(Backoff {
            initial: std::time::Duration::from_millis(250),
            multiplier: 3.0,
            max: std::time::Duration::from_millis(10_000),
            jitter: 0.0
        })
    );
    assert_eq!(got.created_at, now);
    assert_eq!(got.updated_at, now);
    assert_eq!(
        got.scheduled_at,
        Some(now + chrono::Duration::seconds(90)),
        "delay must set scheduledAt = now + delay"
    );
    assert_eq!(got.started_at, None);
    assert_eq!(got.completed_at, None);
    assert_eq!(got.last_error, None);
    assert_eq!(got.result, None);
    assert!(got.executions.is_empty());
    assert_eq!(got.id.uuid().get_version_num(), 7, "ids are UUID v7");

    // run_at is the other way to schedule.
    let at = now + chrono::Duration::hours(5);
    let j2 = spool
        .enqueue(NewJob::new("report.build", b"x".to_vec()).run_at(at))
        .unwrap();
    assert_eq!(spool.get(j2.id).unwrap().scheduled_at, Some(at));

    // And everything survives a close and reopen.
    spool.close().unwrap();
    drop(spool);
    let spool = store.open_manual(&clock);
    assert_eq!(spool.get(job.id).unwrap(), *job);
    assert_eq!(spool.get(j2.id).unwrap(), *j2);
}

fn enqueue_defaults_are_version_1_0_0_queue_default_three_attempts_priority_zero(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let got = spool.get(job.id).unwrap();
    assert_eq!(got.version, "1.0.0");
    assert_eq!(got.queue, "default");
    assert_eq!(got.max_attempts, 3);
    assert_eq!(got.priority, 0);
    assert_eq!(got.status, JobStatus::Pending);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.created_at, t0());
    assert_eq!(got.updated_at, got.created_at);
    assert_eq!(got.scheduled_at, Some(got.created_at));
    assert_eq!(got.timeout, None);
    assert_eq!(got.dedupe_key, None);
    assert_eq!(got.tenant_id, None);
    assert_eq!(got.user_id, None);
    assert_eq!(got.trace_id, None);
    assert!(got.metadata.is_empty());
    assert_eq!(got.backoff, None);
    assert!(got.payload.is_empty());
}

fn delay_and_run_at_together_are_invalid_argument(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let before = snapshot(&spool);
    let job = NewJob::new("t", Vec::new())
        .delay(Duration::from_secs(1))
        .run_at(t0());
    assert_eq!(code_of(spool.enqueue(job)), "INVALID_ARGUMENT");
    assert_eq!(snapshot(&spool), before);
}

fn batch_enqueue_returns_jobs_in_input_order_with_increasing_ids(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let jobs: Vec<NewJob> = (0..20)
        .map(|i| NewJob::new(format!("t{i}"), vec![i as u8]))
        .collect();
    let out = spool.enqueue_batch(jobs).unwrap();
    assert_eq!(out.len(), 20);
    for (i, j) in out.iter().enumerate() {
        assert_eq!(j.kind, format!("t{i}"));
        assert_eq!(spool.get(j.id).unwrap().payload, vec![i as u8]);
    }
    assert!(out.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(spool.stats().unwrap().total.pending, 20);
    let events = all_events(&spool);
    assert_eq!(events.len(), 20, "one job.enqueued per job");
    assert!(spool.enqueue_batch(Vec::new()).unwrap().is_empty());
}

/// A batch refused for one bad job said what was wrong but not which job.
fn regression_a_bad_job_in_a_batch_is_named_by_its_place(b: TestBackend) {
    let store = b.store();
    let spool = store.open(Spool::builder().maintenance(false).scheduler(false));
    let err = spool
        .enqueue_batch(vec![
            NewJob::new("a", Vec::new()),
            NewJob::new("b", Vec::new()),
            NewJob::new("", Vec::new()),
        ])
        .unwrap_err();
    assert_eq!(err.code(), jobspool::ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("job 2 of the batch"), "{err}");
    // A single job needs no place.
    let err = spool.enqueue(NewJob::new("", Vec::new())).unwrap_err();
    assert!(!err.to_string().contains("of the batch"), "{err}");
}

fn batch_enqueue_with_one_invalid_job_stores_nothing_and_emits_nothing(b: TestBackend) {
    let store = b.store();
    let spool = store.open(
        Spool::builder()
            .payload_limit(64)
            .maintenance(false)
            .scheduler(false)
            .clock(ManualClock::new(t0())),
    );
    // One job already there, so "unchanged" is not just "empty".
    spool
        .enqueue(NewJob::new("existing", b"1".to_vec()))
        .unwrap();
    let before = snapshot(&spool);

    let bad_last = vec![
        NewJob::new("a", b"1".to_vec()),
        NewJob::new("b", b"2".to_vec()).dedupe_key("k1"),
        NewJob::new("", b"3".to_vec()),
    ];
    assert_eq!(code_of(spool.enqueue_batch(bad_last)), "INVALID_ARGUMENT");
    assert_eq!(snapshot(&spool), before);

    let bad_first = vec![
        NewJob::new("a", b"1".to_vec()).max_attempts(0),
        NewJob::new("b", b"2".to_vec()),
    ];
    assert_eq!(code_of(spool.enqueue_batch(bad_first)), "INVALID_ARGUMENT");
    assert_eq!(snapshot(&spool), before);

    let too_big = vec![
        NewJob::new("a", b"1".to_vec()),
        NewJob::new("b", vec![b'x'; 65]),
    ];
    assert_eq!(code_of(spool.enqueue_batch(too_big)), "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&spool), before);

    // The dedupe key of the rejected batch was not taken.
    let j = spool
        .enqueue(NewJob::new("b", b"2".to_vec()).dedupe_key("k1"))
        .unwrap();
    assert_eq!(spool.stats().unwrap().total.pending, 2);
    assert_eq!(spool.last_seq(), before.last_seq + 1);
    assert_eq!(spool.get(j.id).unwrap().dedupe_key.as_deref(), Some("k1"));
}

fn cancel_pending_job_marks_it_cancelled_and_emits_job_cancelled(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", b"p".to_vec())).unwrap();
    clock.advance_ms(1500);
    let seq_before = spool.last_seq();
    let cancelled = spool.cancel(job.id).unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let got = spool.get(job.id).unwrap();
    assert_eq!(got.status, JobStatus::Cancelled);
    assert_eq!(got.updated_at, t0() + chrono::Duration::milliseconds(1500));
    assert_eq!(got.payload, b"p".to_vec());

    let events = spool.events_since(seq_before, 100).unwrap();
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    assert_eq!(events[0].seq, seq_before + 1);
    match &events[0].event {
        Event::JobCancelled {
            job_id,
            kind,
            cancelled_at,
            cancelled_by,
        } => {
            assert_eq!(*job_id, job.id);
            assert_eq!(kind, "t");
            assert_eq!(*cancelled_at, t0() + chrono::Duration::milliseconds(1500));
            assert_eq!(*cancelled_by, None);
        }
        other => panic!("expected job.cancelled, got {other:?}"),
    }
    let s = spool.stats().unwrap();
    assert_eq!(s.total.pending, 0);
    assert_eq!(s.total.cancelled, 1);
    assert_eq!(s.queues["default"].counts.cancelled, 1);

    // A cancelled job is never claimed.
    assert!(spool.claim(&spool.claim_request(10)).unwrap().is_empty());
}

fn cancel_delayed_job_clears_delayed_count(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool
        .enqueue(NewJob::new("t", Vec::new()).delay(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(spool.stats().unwrap().total.delayed, 1);
    spool.cancel(job.id).unwrap();
    let s = spool.stats().unwrap();
    assert_eq!(s.total.delayed, 0);
    assert_eq!(s.total.pending, 0);
    assert_eq!(s.total.cancelled, 1);
}

fn cancel_by_records_who_cancelled(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    spool.cancel_by(job.id, "admin@example").unwrap();
    let last = all_events(&spool).pop().unwrap();
    assert!(
        matches!(&last.event, Event::JobCancelled { cancelled_by: Some(b), .. } if b == "admin@example"),
        "{last:?}"
    );
}

fn cancel_unknown_id_is_job_not_found(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let before = snapshot(&spool);
    let unknown: JobId = "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e".parse().unwrap();
    let err = spool.cancel(unknown).unwrap_err();
    assert_eq!(err.code(), "JOB_NOT_FOUND");
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains(&unknown.to_string()), "{err}");
    assert_eq!(code_of(spool.get(unknown)), "JOB_NOT_FOUND");
    assert_eq!(snapshot(&spool), before);
}

fn cancel_running_job_is_rejected_with_job_not_pending(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let claimed = spool.claim(&spool.claim_request(1)).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, job.id);
    let before = snapshot(&spool);

    let err = spool.cancel(job.id).unwrap_err();
    assert_eq!(err.code(), "JOB_NOT_PENDING");
    assert_eq!(err.http_status(), 409);
    assert!(err.message().contains("running"), "{err}");
    assert_eq!(spool.get(job.id).unwrap().status, JobStatus::Running);
    assert_eq!(
        snapshot(&spool),
        before,
        "a rejected cancel changes nothing"
    );

    // The lease still holds: the job completes normally.
    spool
        .complete(
            jobspool::Lease::new(job.id, claimed[0].lease.token),
            Some(b"ok".to_vec()),
        )
        .unwrap();
    assert_eq!(spool.get(job.id).unwrap().status, JobStatus::Completed);
}

fn cancel_cancelled_job_is_rejected_with_job_not_pending(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    spool.cancel(job.id).unwrap();
    let before = snapshot(&spool);
    assert_eq!(code_of(spool.cancel(job.id)), "JOB_NOT_PENDING");
    assert_eq!(snapshot(&spool), before);
}

fn cancel_completed_job_is_rejected_with_job_not_pending(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .complete(jobspool::Lease::new(job.id, c.lease.token), None)
        .unwrap();
    let before = snapshot(&spool);
    assert_eq!(code_of(spool.cancel(job.id)), "JOB_NOT_PENDING");
    assert_eq!(snapshot(&spool), before);
}

/// 3 queues x 2 types x 4 jobs; one of each (queue, type) cancelled, one running.
fn populate_grid(spool: &Spool) -> Vec<jobspool::Job> {
    let mut all = Vec::new();
    for q in ["qa", "qb", "qc"] {
        for k in ["k1", "k2"] {
            for i in 0..4 {
                all.push(
                    spool
                        .enqueue(NewJob::new(k, vec![i]).queue(q).priority(i32::from(i)))
                        .unwrap()
                        .into_job(),
                );
            }
        }
    }
    all
}

fn list_filters_by_status_queue_and_kind(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let all = populate_grid(&spool);
    // Cancel the first job of each (queue, type).
    for j in all.iter().step_by(4) {
        spool.cancel(j.id).unwrap();
    }
    // Claim one job of queue qb, type k2.
    let mut req = spool.claim_request(1);
    req.queues = vec!["qb".into()];
    req.kinds = vec!["k2".into()];
    let running = spool.claim(&req).unwrap().remove(0).job;

    let ids = |q: ListQuery| -> Vec<JobId> { all_jobs(&spool, &q).iter().map(|j| j.id).collect() };
    let expect = |f: &dyn Fn(&jobspool::Job) -> bool| -> Vec<JobId> {
        let mut v: Vec<JobId> = all
            .iter()
            .map(|j| spool.get(j.id).unwrap())
            .filter(|j| f(j))
            .map(|j| j.id)
            .collect();
        v.sort();
        v
    };

    assert_eq!(ids(ListQuery::default()).len(), 24);
    assert_eq!(
        ids(ListQuery {
            status: Some(JobStatus::Cancelled),
            ..Default::default()
        }),
        expect(&|j| j.status == JobStatus::Cancelled)
    );
    assert_eq!(
        ids(ListQuery {
            status: Some(JobStatus::Running),
            ..Default::default()
        }),
        vec![running.id]
    );
    assert_eq!(
        ids(ListQuery {
            queue: Some("qa".into()),
            ..Default::default()
        }),
        expect(&|j| j.queue == "qa")
    );
    assert_eq!(
        ids(ListQuery {
            kind: Some("k2".into()),
            ..Default::default()
        }),
        expect(&|j| j.kind == "k2")
    );
    let pending_qc_k1 = ids(ListQuery {
        status: Some(JobStatus::Pending),
        queue: Some("qc".into()),
        kind: Some("k1".into()),
        ..Default::default()
    });
    assert_eq!(pending_qc_k1.len(), 3);
    assert_eq!(
        pending_qc_k1,
        expect(&|j| j.status == JobStatus::Pending && j.queue == "qc" && j.kind == "k1")
    );
    assert!(ids(ListQuery {
        queue: Some("nope".into()),
        ..Default::default()
    })
    .is_empty());
    assert!(ids(ListQuery {
        status: Some(JobStatus::DeadLetter),
        ..Default::default()
    })
    .is_empty());
    // list returns payloads too.
    let listed = all_jobs(&spool, &ListQuery::default());
    for j in &listed {
        assert_eq!(j.payload, spool.get(j.id).unwrap().payload);
    }
}

fn list_pages_with_after_cursor_without_duplicates_or_gaps(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let mut expected = Vec::new();
    for i in 0..137u32 {
        let q = if i % 3 == 0 { "q3" } else { "other" };
        let j = spool
            .enqueue(NewJob::new("t", i.to_be_bytes().to_vec()).queue(q))
            .unwrap();
        expected.push(j.id);
    }
    // Cancel every 5th so a status filter has holes to page over.
    for id in expected.iter().step_by(5) {
        spool.cancel(*id).unwrap();
    }

    for (query, filter) in [
        (ListQuery::default(), None),
        (
            ListQuery {
                status: Some(JobStatus::Pending),
                ..Default::default()
            },
            Some("pending"),
        ),
        (
            ListQuery {
                queue: Some("q3".into()),
                ..Default::default()
            },
            Some("q3"),
        ),
    ] {
        let want: Vec<JobId> = expected
            .iter()
            .enumerate()
            .filter(|(i, _)| match filter {
                None => true,
                Some("pending") => i % 5 != 0,
                Some(_) => i % 3 == 0,
            })
            .map(|(_, id)| *id)
            .collect();
        for page_size in [1usize, 7, 50, 1000] {
            let mut got = Vec::new();
            let mut after = None;
            let mut pages = 0;
            loop {
                let page = spool
                    .list(&ListQuery {
                        after,
                        limit: Some(page_size),
                        ..query.clone()
                    })
                    .unwrap();
                assert!(page.len() <= page_size);
                if page.is_empty() {
                    break;
                }
                pages += 1;
                after = Some(page.last().unwrap().id);
                got.extend(page.iter().map(|j| j.id));
            }
            let unique: HashSet<JobId> = got.iter().copied().collect();
            assert_eq!(unique.len(), got.len(), "duplicates across pages");
            assert_eq!(
                got, want,
                "paging {filter:?} by {page_size} must give every job once, in id order"
            );
            assert_eq!(pages, want.len().div_ceil(page_size));
        }
    }
}

fn list_default_page_is_100(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool
        .enqueue_batch((0..150).map(|_| NewJob::new("t", Vec::new())).collect())
        .unwrap();
    assert_eq!(spool.list(&ListQuery::default()).unwrap().len(), 100);
}

fn stats_count_per_queue_and_globally(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let all = populate_grid(&spool);
    for j in all.iter().step_by(4) {
        spool.cancel(j.id).unwrap();
    }
    let mut req = spool.claim_request(2);
    req.queues = vec!["qa".into()];
    let claimed = spool.claim(&req).unwrap();
    assert_eq!(claimed.len(), 2);
    spool.complete(claimed[0].lease, None).unwrap();
    spool
        .enqueue(
            NewJob::new("k1", Vec::new())
                .queue("qc")
                .delay(Duration::from_secs(10)),
        )
        .unwrap();

    let s = spool.stats().unwrap();
    let qa = s.queues["qa"].counts;
    assert_eq!(
        (
            qa.pending,
            qa.running,
            qa.completed,
            qa.cancelled,
            qa.delayed
        ),
        (4, 1, 1, 2, 0)
    );
    let qb = s.queues["qb"].counts;
    assert_eq!((qb.pending, qb.running, qb.cancelled), (6, 0, 2));
    let qc = s.queues["qc"].counts;
    assert_eq!((qc.pending, qc.cancelled, qc.delayed), (7, 2, 1));
    assert_eq!(s.queues.len(), 3);
    assert!(!s.queues["qa"].paused);

    let t = s.total;
    assert_eq!(t.pending, 4 + 6 + 7);
    assert_eq!(t.running, 1);
    assert_eq!(t.completed, 1);
    assert_eq!(t.failed, 0);
    assert_eq!(t.dead_letter, 0);
    assert_eq!(t.cancelled, 6);
    assert_eq!(t.delayed, 1);
    // Global = sum of queues, for every field.
    let mut sum = jobspool::Counts::default();
    for q in s.queues.values() {
        sum.pending += q.counts.pending;
        sum.running += q.counts.running;
        sum.completed += q.counts.completed;
        sum.failed += q.counts.failed;
        sum.cancelled += q.counts.cancelled;
        sum.dead_letter += q.counts.dead_letter;
        sum.delayed += q.counts.delayed;
    }
    assert_eq!(sum, t);
    // And the counters agree with a scan.
    for status in JobStatus::ALL {
        let n = all_jobs(
            &spool,
            &ListQuery {
                status: Some(status),
                ..Default::default()
            },
        )
        .len() as u64;
        assert_eq!(t.of(status), n, "{status}");
    }
}

fn delayed_job_counts_as_pending_and_delayed_until_clock_passes_run_time(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("now", Vec::new())).unwrap();
    let delayed = spool
        .enqueue(
            NewJob::new("later", Vec::new())
                .queue("slow")
                .delay(Duration::from_secs(60)),
        )
        .unwrap();
    let s = spool.stats().unwrap();
    assert_eq!(s.total.pending, 2);
    assert_eq!(s.total.delayed, 1);
    assert_eq!(s.queues["slow"].counts.delayed, 1);
    assert_eq!(s.queues["slow"].counts.pending, 1);
    assert_eq!(s.queues["default"].counts.delayed, 0);

    // Not claimable yet.
    let mut req = spool.claim_request(10);
    req.queues = vec!["slow".into()];
    assert!(spool.claim(&req).unwrap().is_empty());

    clock.advance_ms(59_999);
    assert_eq!(
        spool.stats().unwrap().total.delayed,
        1,
        "1 ms before run time"
    );

    clock.advance_ms(1);
    let s = spool.stats().unwrap();
    assert_eq!(
        s.total.delayed, 0,
        "at run time the job is no longer delayed"
    );
    assert_eq!(s.queues["slow"].counts.delayed, 0);
    assert_eq!(s.total.pending, 2);

    let claimed = spool.claim(&req).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, delayed.id);
}

fn run_at_in_the_future_counts_as_delayed(b: TestBackend) {
    let (_store, clock, spool) = b.fresh();
    spool
        .enqueue(NewJob::new("t", Vec::new()).run_at(t0() + chrono::Duration::days(2)))
        .unwrap();
    assert_eq!(spool.stats().unwrap().total.delayed, 1);
    clock.advance_ms(2 * DAY_MS as i64 + 1);
    assert_eq!(spool.stats().unwrap().total.delayed, 0);
    assert_eq!(spool.stats().unwrap().total.pending, 1);
}

// ---- the contract: every validation error, each leaving everything unchanged ----

fn assert_rejected(spool: &Spool, job: NewJob, code: &str) -> jobspool::Error {
    let before = snapshot(spool);
    let err = spool.enqueue(job.clone()).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert!(err.is_invalid_input());
    assert!(!err.message().is_empty());
    assert_eq!(
        snapshot(spool),
        before,
        "a rejected enqueue must change nothing"
    );
    // The batch form rejects it the same way.
    let err2 = spool
        .enqueue_batch(vec![NewJob::new("ok", Vec::new()), job])
        .unwrap_err();
    assert_eq!(err2.code(), code);
    assert_eq!(
        snapshot(spool),
        before,
        "a rejected batch must change nothing"
    );
    err
}

/// A spool with one job and one event already, so "unchanged" is meaningful.
fn seeded(b: TestBackend) -> (Store, ManualClock, Spool) {
    let (store, clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("seed", b"1".to_vec())).unwrap();
    (store, clock, spool)
}

fn empty_type_is_invalid_argument_and_changes_nothing(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    let err = assert_rejected(&spool, NewJob::new("", b"{}".to_vec()), "INVALID_ARGUMENT");
    assert!(err.message().contains("type"), "{err}");
}

fn max_attempts_zero_is_invalid_argument_and_changes_nothing(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    let err = assert_rejected(
        &spool,
        NewJob::new("t", Vec::new()).max_attempts(0),
        "INVALID_ARGUMENT",
    );
    assert!(err.message().contains("maxRetries"), "{err}");
    // 1 is the smallest accepted value.
    let j = spool
        .enqueue(NewJob::new("t", Vec::new()).max_attempts(1))
        .unwrap();
    assert_eq!(j.max_attempts, 1);
}

fn delay_over_ten_years_is_invalid_argument_and_changes_nothing(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    assert_rejected(
        &spool,
        NewJob::new("t", Vec::new()).delay(Duration::from_millis(11 * 365 * DAY_MS)),
        "INVALID_ARGUMENT",
    );
    assert_rejected(
        &spool,
        NewJob::new("t", Vec::new()).delay(Duration::MAX),
        "INVALID_ARGUMENT",
    );
    // Just under ten years is accepted.
    spool
        .enqueue(NewJob::new("t", Vec::new()).delay(Duration::from_millis(3650 * DAY_MS)))
        .unwrap();
}

fn run_at_over_ten_years_is_invalid_argument_and_changes_nothing(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    assert_rejected(
        &spool,
        NewJob::new("t", Vec::new()).run_at(t0() + chrono::Duration::days(11 * 365)),
        "INVALID_ARGUMENT",
    );
    spool
        .enqueue(NewJob::new("t", Vec::new()).run_at(t0() + chrono::Duration::days(3650)))
        .unwrap();
}

fn payload_over_limit_is_payload_too_large_and_changes_nothing(b: TestBackend) {
    let store = b.store();
    let spool = store.open(
        Spool::builder()
            .payload_limit(100)
            .clock(ManualClock::new(t0()))
            .maintenance(false)
            .scheduler(false),
    );
    spool.enqueue(NewJob::new("seed", b"1".to_vec())).unwrap();
    let err = assert_rejected(
        &spool,
        NewJob::new("t", vec![7u8; 101]),
        "PAYLOAD_TOO_LARGE",
    );
    assert_eq!(err.http_status(), 413);
    assert!(err.message().contains("101"), "{err}");
    assert!(err.message().contains("100"), "{err}");
    // Exactly at the limit is accepted.
    let j = spool.enqueue(NewJob::new("t", vec![7u8; 100])).unwrap();
    assert_eq!(spool.get(j.id).unwrap().payload.len(), 100);
}

// Parsing only: no store involved, so not a conformance test.
#[test]
fn bad_uuid_string_is_invalid_argument() {
    for bad in [
        "",
        "not-a-uuid",
        "019ac2f4-6b1e-7c3a-9d2e",
        "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4z",
    ] {
        let err = bad.parse::<JobId>().unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{bad:?}");
        assert!(err.message().contains("UUID"), "{err}");
    }
    let id: JobId = "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e".parse().unwrap();
    assert_eq!(id.to_string(), "019ac2f4-6b1e-7c3a-9d2e-5f0a1b2c3d4e");
}

fn other_bad_fields_are_invalid_argument_and_change_nothing(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    for job in [
        NewJob::new("t", Vec::new()).queue(""),
        NewJob::new("t", Vec::new()).dedupe_key(""),
        NewJob::new("t", Vec::new()).timeout(Duration::ZERO),
        NewJob::new("bad\ntype", Vec::new()),
        NewJob::new("x".repeat(10_000), Vec::new()),
        NewJob::new("t", Vec::new()).backoff(Backoff {
            initial: std::time::Duration::from_millis(10),
            multiplier: f64::NAN,
            max: std::time::Duration::from_millis(100),
            jitter: 0.1,
        }),
    ] {
        assert_rejected(&spool, job, "INVALID_ARGUMENT");
    }
}

/// PostgreSQL's text columns refuse U+0000: a tenant id holding it failed there as a
/// `STORAGE` error (while sled took it). Keys are now refused on every backend, typed.
fn regression_keys_with_a_nul_character_are_invalid_argument_not_storage(b: TestBackend) {
    let (_store, _clock, spool) = seeded(b);
    for job in [
        NewJob::new("t", Vec::new()).tenant_id("a\0b"),
        NewJob::new("t", Vec::new()).dedupe_key("\0"),
        NewJob::new("t", Vec::new()).user_id("u\0"),
        NewJob::new("t", Vec::new()).trace_id("\0t"),
    ] {
        let err = assert_rejected(&spool, job, "INVALID_ARGUMENT");
        assert!(err.message().contains("NUL"), "{err}");
    }
}

/// Who cancelled a job is kept as given, U+0000 included: on PostgreSQL the event holding
/// it made the cancel fail (`jsonb` refuses it).
fn regression_who_cancelled_may_hold_a_nul_character(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let id = spool.enqueue(NewJob::new("t", Vec::new())).unwrap().job.id;
    spool.cancel_by(id, "ops\0bot").unwrap();
    assert_eq!(spool.get(id).unwrap().status, JobStatus::Cancelled);
    let events = all_events(&spool);
    match &events.last().unwrap().event {
        Event::JobCancelled { cancelled_by, .. } => {
            assert_eq!(cancelled_by.as_deref(), Some("ops\0bot"))
        }
        other => panic!("expected job.cancelled, got {other:?}"),
    }
}

/// A filter holding U+0000 matches no job on every backend. PostgreSQL refused the
/// parameter: list, redrive and claim failed with `STORAGE` where sled found nothing.
fn regression_filters_holding_a_nul_character_match_nothing(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let id = spool
        .enqueue(NewJob::new("k", Vec::new()).tenant_id("t").dedupe_key("d"))
        .unwrap()
        .job
        .id;
    let nul = || Some("a\0".to_string());
    for q in [
        ListQuery {
            queue: nul(),
            ..ListQuery::default()
        },
        ListQuery {
            kind: nul(),
            ..ListQuery::default()
        },
        ListQuery {
            tenant_id: nul(),
            ..ListQuery::default()
        },
        ListQuery {
            dedupe_key: nul(),
            ..ListQuery::default()
        },
    ] {
        assert_eq!(spool.list(&q).unwrap(), Vec::new(), "{q:?}");
    }
    assert!(spool.redrive_all(nul(), None).unwrap().is_empty());
    assert!(spool.redrive_all(None, nul()).unwrap().is_empty());
    let mut req = spool.claim_request(10);
    req.kinds = vec!["a\0".into()];
    assert!(spool.claim(&req).unwrap().is_empty());
    let mut req = spool.claim_request(10);
    req.queues = vec!["a\0".into()];
    assert!(spool.claim(&req).unwrap().is_empty());
    // Left out of a list, the other names still match.
    let mut req = spool.claim_request(10);
    req.queues = vec!["a\0".into(), "default".into()];
    req.exclude_queues = vec!["b\0".into()];
    req.kinds = vec!["k".into(), "\0".into()];
    let got = spool.claim(&req).unwrap();
    assert_eq!(got.iter().map(|c| c.job.id).collect::<Vec<_>>(), vec![id]);
}

fn list_filters_by_tenant_and_dedupe_key_exactly(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let mut made = Vec::new();
    for i in 0..12u32 {
        let mut j = NewJob::new("k", vec![]).tenant_id(format!("t{}", i % 3));
        if i % 4 == 0 {
            j = j.dedupe_key(format!("d{i}"));
        }
        made.push(spool.enqueue(j).unwrap().into_job());
    }
    // A finished job keeps its key and is still found by it.
    spool.cancel(made[4].id).unwrap();
    let ids = |q: ListQuery| -> Vec<JobId> { all_jobs(&spool, &q).iter().map(|j| j.id).collect() };
    let want = |f: &dyn Fn(usize) -> bool| -> Vec<JobId> {
        made.iter()
            .enumerate()
            .filter(|(i, _)| f(*i))
            .map(|(_, j)| j.id)
            .collect()
    };
    assert_eq!(
        ids(ListQuery {
            tenant_id: Some("t1".into()),
            ..Default::default()
        }),
        want(&|i| i % 3 == 1)
    );
    // Exact match: a prefix finds nothing.
    assert!(ids(ListQuery {
        tenant_id: Some("t".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        ids(ListQuery {
            dedupe_key: Some("d4".into()),
            ..Default::default()
        }),
        vec![made[4].id]
    );
    assert_eq!(
        ids(ListQuery {
            status: Some(JobStatus::Pending),
            tenant_id: Some("t0".into()),
            dedupe_key: Some("d0".into()),
            ..Default::default()
        }),
        vec![made[0].id]
    );
    // With paging: the cursor applies after the filter.
    let first = spool
        .list(&ListQuery {
            tenant_id: Some("t2".into()),
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = ids(ListQuery {
        tenant_id: Some("t2".into()),
        after: Some(first[1].id),
        ..Default::default()
    });
    let mut all: Vec<JobId> = first.iter().map(|j| j.id).collect();
    all.extend(rest);
    assert_eq!(all, want(&|i| i % 3 == 2));
}

/// Waits (bounded) until the applier has moved every committed group into the directory,
/// which `Metrics::live_bytes` counts.
fn applied(spool: &Spool) -> jobspool::Metrics {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = spool.metrics();
        if m.unapplied_groups == 0 {
            return m;
        }
        assert!(
            std::time::Instant::now() < until,
            "the applier never caught up"
        );
        std::thread::yield_now();
    }
}

/// sled's metrics count what the journal is written and what of it is still current: a
/// payload counts as live until its job is pruned, and every write adds to the bytes
/// appended, a prune included.
#[test]
fn sled_metrics_count_journal_bytes_appended_and_live_values() {
    let (_dir, clock, spool) = common::fresh();
    let before = applied(&spool);
    let ids: Vec<JobId> = spool
        .enqueue_batch(
            (0..100)
                .map(|_| NewJob::new("m", vec![7u8; 1000]))
                .collect(),
        )
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    spool.flush().unwrap();
    let filled = applied(&spool);
    assert!(
        filled.journal_bytes >= before.journal_bytes + 100 * 1000,
        "{before:?} -> {filled:?}"
    );
    assert!(
        filled.live_bytes >= before.live_bytes + 100 * 1000,
        "{before:?} -> {filled:?}"
    );
    for id in &ids {
        spool.cancel(*id).unwrap();
    }
    clock.advance_ms(8 * 24 * 3600 * 1000);
    assert_eq!(spool.prune().unwrap(), 100);
    spool.flush().unwrap();
    let pruned = applied(&spool);
    assert!(pruned.journal_bytes > filled.journal_bytes, "{pruned:?}");
    assert!(
        pruned.live_bytes + 100 * 1000 <= filled.live_bytes,
        "the payloads no longer count: {filled:?} -> {pruned:?}"
    );
}
