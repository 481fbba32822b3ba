//! Retries, backoff, dead letters, redrive, pruning and crash recovery of running jobs.
//! Time is a `ManualClock`; nothing here sleeps to let time pass.

mod common;

use common::{conformance, Store, TestBackend};
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use jobspool::{
    Backoff, Claimed, Event, EventRecord, Job, JobId, JobStatus, ListQuery, ManualClock, NewJob,
    Retention, Retry, Spool,
};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    default_backoff_is_one_then_two_seconds_within_twenty_percent,
    retry_after_uses_the_exact_delay,
    per_job_backoff_overrides_the_default_and_is_capped,
    builder_default_backoff_applies_to_jobs_without_one,
    exhausting_max_retries_dead_letters_with_attempts_and_last_error,
    retry_never_fails_the_job_without_retry,
    dead_letters_lists_dead_letter_and_failed_jobs_only,
    redrive_one_resets_attempts_clears_last_error_and_keeps_history,
    redrive_of_a_job_that_is_not_dead_is_invalid_and_changes_nothing,
    redrive_all_with_a_queue_filter_redrives_only_that_queue,
    redrive_blocked_by_a_live_job_holding_the_same_dedupe_key,
    prune_removes_finished_jobs_older_than_retention_and_keeps_newer_ones,
    crash_recovery_fails_the_running_attempt_on_reopen,
    redrive_all_redrives_only_one_job_per_dedupe_key,
    regression_a_failure_message_with_a_nul_character_is_kept
);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 8, 0, 0).unwrap()
}

fn builder(clock: &ManualClock) -> jobspool::Builder {
    Spool::builder().clock(clock.clone()).maintenance(false)
}

fn open(store: &Store) -> (Spool, ManualClock) {
    let clock = ManualClock::new(start());
    let spool = store.open(builder(&clock));
    (spool, clock)
}

fn now(clock: &ManualClock) -> DateTime<Utc> {
    use jobspool::Clock;
    Utc.timestamp_millis_opt(clock.now_ms()).unwrap()
}

/// Claims exactly the job `id` (it must be the only claimable one of its type).
fn claim(spool: &Spool, id: JobId) -> Claimed {
    let mut r = spool.claim_request(1);
    r.kinds = vec![spool.get(id).unwrap().kind];
    let mut v = spool.claim(&r).unwrap();
    assert_eq!(v.len(), 1, "job {id} is not claimable");
    let c = v.pop().unwrap();
    assert_eq!(c.job.id, id);
    c
}

/// Claims `id` and fails the attempt with `err` and `retry`.
fn fail(spool: &Spool, id: JobId, err: &str, retry: Retry) -> Job {
    let c = claim(spool, id);
    spool
        .fail(jobspool::Lease::new(id, c.lease.token), err, retry)
        .unwrap()
}

fn complete(spool: &Spool, id: JobId) -> Job {
    let c = claim(spool, id);
    spool
        .complete(jobspool::Lease::new(id, c.lease.token), None)
        .unwrap()
}

/// Makes `id` claimable by moving the clock to its scheduledAt.
fn run_due(clock: &ManualClock, job: &Job) {
    let at = job.scheduled_at.expect("a retried job has a scheduledAt");
    if at > now(clock) {
        clock.set(at);
    }
}

fn delay_ms(job: &Job, failed_at: DateTime<Utc>) -> i64 {
    (job.scheduled_at.unwrap() - failed_at).num_milliseconds()
}

fn events_for(spool: &Spool, after: u64, id: JobId) -> Vec<EventRecord> {
    spool
        .events_since(after, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.job_id() == Some(id))
        .collect()
}

fn retrying_backoff(evs: &[EventRecord]) -> Vec<u64> {
    evs.iter()
        .filter_map(|e| match &e.event {
            Event::JobRetrying { backoff_ms, .. } => Some(*backoff_ms),
            _ => None,
        })
        .collect()
}

fn code(r: Result<impl std::fmt::Debug, jobspool::Error>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().as_str(),
    }
}

fn default_backoff_is_one_then_two_seconds_within_twenty_percent(b: TestBackend) {
    let store = b.store();
    let (spool, clock) = open(&store);
    let mut first_delays = BTreeSet::new();
    for i in 0..20 {
        let job = spool
            .enqueue(NewJob::new(format!("t{i}"), Vec::new()).max_attempts(5))
            .unwrap();
        let seq = spool.last_seq();

        let t1 = now(&clock);
        let j = fail(&spool, job.id, "first", Retry::Backoff);
        assert_eq!(j.status, JobStatus::Pending);
        let d1 = delay_ms(&j, t1);
        assert!((800..=1200).contains(&d1), "first delay {d1} ms");
        first_delays.insert(d1);
        // Not claimable before its backoff has passed.
        clock.advance_ms(d1 - 1);
        let mut r = spool.claim_request(1);
        r.kinds = vec![job.kind.clone()];
        assert!(spool.claim(&r).unwrap().is_empty());
        clock.advance_ms(1);

        let t2 = now(&clock);
        let j = fail(&spool, job.id, "second", Retry::Backoff);
        let d2 = delay_ms(&j, t2);
        assert!((1600..=2400).contains(&d2), "second delay {d2} ms");
        run_due(&clock, &j);

        let evs = events_for(&spool, seq, job.id);
        assert_eq!(
            retrying_backoff(&evs),
            vec![u64::try_from(d1).unwrap(), u64::try_from(d2).unwrap()],
            "job.retrying backoffMs must match scheduledAt"
        );
    }
    assert!(
        first_delays.len() > 1,
        "20 first delays were all {first_delays:?}: no jitter"
    );
}

fn retry_after_uses_the_exact_delay(b: TestBackend) {
    let store = b.store();
    let (spool, clock) = open(&store);
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let seq = spool.last_seq();
    let t = now(&clock);
    let j = fail(
        &spool,
        job.id,
        "later",
        Retry::After(std::time::Duration::from_millis(4321)),
    );
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(
        j.scheduled_at,
        Some(t + chrono::Duration::milliseconds(4321))
    );
    assert_eq!(
        retrying_backoff(&events_for(&spool, seq, job.id)),
        vec![4321]
    );
    clock.advance_ms(4320);
    assert!(spool.claim(&spool.claim_request(1)).unwrap().is_empty());
    clock.advance_ms(1);
    let c = claim(&spool, job.id);
    assert_eq!(c.job.attempts, 2);
}

fn per_job_backoff_overrides_the_default_and_is_capped(b: TestBackend) {
    let store = b.store();
    let (spool, clock) = open(&store);
    let b = Backoff {
        initial: std::time::Duration::from_millis(5_000),
        multiplier: 3.0,
        max: std::time::Duration::from_millis(20_000),
        jitter: 0.0,
    };
    let job = spool
        .enqueue(NewJob::new("t", Vec::new()).backoff(b).max_attempts(5))
        .unwrap();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let t = now(&clock);
        let j = fail(&spool, job.id, "x", Retry::Backoff);
        delays.push(delay_ms(&j, t));
        run_due(&clock, &j);
    }
    assert_eq!(delays, vec![5_000, 15_000, 20_000]);
}

fn builder_default_backoff_applies_to_jobs_without_one(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(start());
    let spool = store.open(builder(&clock).default_backoff(Backoff {
        initial: std::time::Duration::from_millis(700),
        multiplier: 2.0,
        max: std::time::Duration::from_millis(60_000),
        jitter: 0.0,
    }));
    let job = spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let t = now(&clock);
    let j = fail(&spool, job.id, "x", Retry::Backoff);
    assert_eq!(delay_ms(&j, t), 700);
}

/// A handler's error text is kept as given, U+0000 included. On PostgreSQL the `job.failed`
/// event holding it made `fail` itself fail (`jsonb` refuses it), so the attempt stayed
/// running until its lease expired, and every retry failed the same way.
fn regression_a_failure_message_with_a_nul_character_is_kept(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let job = spool
        .enqueue(NewJob::new("t", Vec::new()).max_attempts(2))
        .unwrap();
    let seq = spool.last_seq();
    let j = fail(&spool, job.id, "bad\0byte", Retry::Backoff);
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.last_error.as_deref(), Some("bad\0byte"));
    let events = events_for(&spool, seq, job.id);
    let failed = events
        .iter()
        .find_map(|e| match &e.event {
            Event::JobFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("a job.failed event");
    assert_eq!(failed, "bad\0byte");
    spool.close().unwrap();
    let (spool, _clock) = open(&store);
    assert_eq!(
        spool.get(job.id).unwrap().last_error.as_deref(),
        Some("bad\0byte")
    );
    assert_eq!(events_for(&spool, seq, job.id), events);
}

fn exhausting_max_retries_dead_letters_with_attempts_and_last_error(b: TestBackend) {
    let store = b.store();
    let (spool, clock) = open(&store);
    let job = spool
        .enqueue(NewJob::new("t", Vec::new()).max_attempts(2))
        .unwrap();
    let seq = spool.last_seq();
    let j = fail(&spool, job.id, "boom 1", Retry::Backoff);
    assert_eq!(j.status, JobStatus::Pending);
    run_due(&clock, &j);
    let seq2 = spool.last_seq();
    let j = fail(&spool, job.id, "boom 2", Retry::Backoff);
    assert_eq!(j.status, JobStatus::DeadLetter);

    let j = spool.get(job.id).unwrap();
    assert_eq!(j.status, JobStatus::DeadLetter);
    assert_eq!(j.attempts, 2);
    assert_eq!(j.last_error.as_deref(), Some("boom 2"));
    assert!(j.completed_at.is_some());
    assert_eq!(j.executions.len(), 2);
    assert!(j.executions.iter().all(|e| e.success == Some(false)));
    assert_eq!(j.executions[0].error.as_deref(), Some("boom 1"));
    let st = spool.stats().unwrap();
    assert_eq!((st.total.dead_letter, st.total.pending), (1, 0));

    // A dead job is not claimable.
    assert!(spool.claim(&spool.claim_request(10)).unwrap().is_empty());

    let last = events_for(&spool, seq2, job.id);
    let names: Vec<&str> = last.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names,
        vec!["job.started", "job.failed", "job.dead_lettered"]
    );
    match &last[1].event {
        Event::JobFailed {
            attempt,
            will_retry,
            error,
            ..
        } => {
            assert_eq!((*attempt, *will_retry), (2, false));
            assert_eq!(error, "boom 2");
        }
        other => panic!("expected job.failed, got {other:?}"),
    }
    match &last[2].event {
        Event::JobDeadLettered {
            attempts,
            last_error,
            ..
        } => {
            assert_eq!(*attempts, 2);
            assert_eq!(last_error, "boom 2");
        }
        other => panic!("expected job.dead_lettered, got {other:?}"),
    }
    let all = events_for(&spool, seq, job.id);
    assert_eq!(
        all.iter()
            .filter(|e| e.event.name() == "job.dead_lettered")
            .count(),
        1
    );
}

fn retry_never_fails_the_job_without_retry(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let job = spool
        .enqueue(NewJob::new("t", Vec::new()).max_attempts(5))
        .unwrap();
    let seq = spool.last_seq();
    let j = fail(&spool, job.id, "bad input", Retry::Never);
    assert_eq!(j.status, JobStatus::Failed);
    let j = spool.get(job.id).unwrap();
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.attempts, 1);
    assert_eq!(j.last_error.as_deref(), Some("bad input"));
    assert!(spool.claim(&spool.claim_request(10)).unwrap().is_empty());
    let names: Vec<&str> = events_for(&spool, seq, job.id)
        .iter()
        .map(|e| e.event.name())
        .collect();
    assert_eq!(names, vec!["job.started", "job.failed"]);
    let st = spool.stats().unwrap();
    assert_eq!((st.total.failed, st.total.dead_letter), (1, 0));
}

/// One dead_letter, one failed, one completed and one pending job; returns their ids.
fn mixed(spool: &Spool, queue: &str) -> (JobId, JobId, JobId, JobId) {
    let dead = spool
        .enqueue(NewJob::new("dead", Vec::new()).queue(queue).max_attempts(1))
        .unwrap()
        .id;
    fail(spool, dead, "dead error", Retry::Backoff);
    let failed = spool
        .enqueue(NewJob::new("failed", Vec::new()).queue(queue))
        .unwrap()
        .id;
    fail(spool, failed, "failed error", Retry::Never);
    let done = spool
        .enqueue(NewJob::new("done", Vec::new()).queue(queue))
        .unwrap()
        .id;
    complete(spool, done);
    let pending = spool
        .enqueue(NewJob::new("pending", Vec::new()).queue(queue))
        .unwrap()
        .id;
    (dead, failed, done, pending)
}

fn dead_letters_lists_dead_letter_and_failed_jobs_only(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let (dead, failed, _, _) = mixed(&spool, "a");
    let (dead_b, failed_b, _, _) = mixed(&spool, "b");
    let ids: BTreeSet<JobId> = spool
        .dead_letters(&ListQuery::default())
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, BTreeSet::from([dead, failed, dead_b, failed_b]));
    let only_a: BTreeSet<JobId> = spool
        .dead_letters(&ListQuery {
            queue: Some("a".into()),
            ..ListQuery::default()
        })
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(only_a, BTreeSet::from([dead, failed]));
}

fn redrive_one_resets_attempts_clears_last_error_and_keeps_history(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let (dead, failed, _, _) = mixed(&spool, "a");
    let seq = spool.last_seq();
    for (id, err) in [(dead, "dead error"), (failed, "failed error")] {
        let r = spool.redrive(id).unwrap();
        assert_eq!(r.status, JobStatus::Pending);
        let j = spool.get(id).unwrap();
        assert_eq!(j.status, JobStatus::Pending);
        assert_eq!(j.attempts, 0);
        assert_eq!(j.last_error, None);
        assert_eq!(j.completed_at, None);
        assert!(
            j.executions.iter().any(|e| e.error.as_deref() == Some(err)),
            "old error must stay in executions: {:?}",
            j.executions
        );
        let names: Vec<&str> = events_for(&spool, seq, id)
            .iter()
            .map(|e| e.event.name())
            .collect();
        assert_eq!(names, vec!["job.redriven"]);
        // Claimable at once, as attempt 1.
        let c = claim(&spool, id);
        assert_eq!(c.job.attempts, 1);
        spool
            .complete(jobspool::Lease::new(id, c.lease.token), None)
            .unwrap();
    }
    let st = spool.stats().unwrap();
    assert_eq!((st.total.dead_letter, st.total.failed), (0, 0));
    assert_eq!(st.total.completed, 3);
}

fn redrive_of_a_job_that_is_not_dead_is_invalid_and_changes_nothing(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let (_, _, done, pending) = mixed(&spool, "a");
    for id in [pending, done] {
        let before = spool.get(id).unwrap();
        let seq = spool.last_seq();
        assert_eq!(code(spool.redrive(id)), "INVALID_ARGUMENT");
        assert_eq!(spool.get(id).unwrap(), before);
        assert_eq!(spool.last_seq(), seq);
    }
    let missing: JobId = "01900000-0000-7000-8000-000000000001".parse().unwrap();
    assert_eq!(code(spool.redrive(missing)), "JOB_NOT_FOUND");
}

fn redrive_all_with_a_queue_filter_redrives_only_that_queue(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let (dead_a, failed_a, _, _) = mixed(&spool, "a");
    let (dead_b, failed_b, _, _) = mixed(&spool, "b");
    let got: BTreeSet<JobId> = spool
        .redrive_all(Some("a".into()), None)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, BTreeSet::from([dead_a, failed_a]));
    assert_eq!(spool.get(dead_a).unwrap().status, JobStatus::Pending);
    assert_eq!(spool.get(failed_a).unwrap().status, JobStatus::Pending);
    assert_eq!(spool.get(dead_b).unwrap().status, JobStatus::DeadLetter);
    assert_eq!(spool.get(failed_b).unwrap().status, JobStatus::Failed);

    // A type filter, then everything left.
    let got: Vec<JobId> = spool
        .redrive_all(None, Some("failed".into()))
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec![failed_b]);
    let got: Vec<JobId> = spool
        .redrive_all(None, None)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec![dead_b]);
    assert!(spool.redrive_all(None, None).unwrap().is_empty());
    let st = spool.stats().unwrap();
    assert_eq!((st.total.dead_letter, st.total.failed), (0, 0));
}

fn redrive_blocked_by_a_live_job_holding_the_same_dedupe_key(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let old = spool
        .enqueue(
            NewJob::new("t", Vec::new())
                .dedupe_key("user-42")
                .max_attempts(1),
        )
        .unwrap();
    fail(&spool, old.id, "gone", Retry::Backoff);
    assert_eq!(spool.get(old.id).unwrap().status, JobStatus::DeadLetter);
    // The key is free again: a new job takes it.
    let live = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("user-42"))
        .unwrap();
    assert_ne!(live.id, old.id);

    let before = spool.get(old.id).unwrap();
    assert_eq!(code(spool.redrive(old.id)), "INVALID_ARGUMENT");
    assert_eq!(spool.get(old.id).unwrap(), before);
    assert!(spool.redrive_all(None, None).unwrap().is_empty());
    assert_eq!(spool.get(old.id).unwrap().status, JobStatus::DeadLetter);

    // Once the live job finishes the key is free and the redrive goes through.
    complete(&spool, live.id);
    assert_eq!(spool.redrive(old.id).unwrap().status, JobStatus::Pending);
    // ... and the redriven job holds the key again.
    let dup = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("user-42"))
        .unwrap();
    assert_eq!(dup.id, old.id);
}

fn prune_removes_finished_jobs_older_than_retention_and_keeps_newer_ones(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(start());
    let retention = Retention {
        completed: Duration::from_secs(3600),
        ..Retention::default()
    };
    let spool = store.open(builder(&clock).retention(retention));
    let old = spool.enqueue(NewJob::new("old", Vec::new())).unwrap().id;
    complete(&spool, old);
    let dead = spool
        .enqueue(NewJob::new("dead", Vec::new()).max_attempts(1))
        .unwrap()
        .id;
    fail(&spool, dead, "x", Retry::Backoff);
    let waiting = spool
        .enqueue(NewJob::new("waiting", Vec::new()))
        .unwrap()
        .id;
    clock.advance_ms(30 * 60 * 1000);
    let newer = spool.enqueue(NewJob::new("newer", Vec::new())).unwrap().id;
    complete(&spool, newer);
    clock.advance_ms(31 * 60 * 1000); // old: 61 min, newer: 31 min

    let st = spool.stats().unwrap();
    assert_eq!(st.total.completed, 2);
    assert_eq!(spool.prune().unwrap(), 1);
    assert_eq!(spool.get(old).unwrap_err().code(), "JOB_NOT_FOUND");
    assert_eq!(spool.get(newer).unwrap().status, JobStatus::Completed);
    assert_eq!(spool.get(dead).unwrap().status, JobStatus::DeadLetter);
    assert_eq!(spool.get(waiting).unwrap().status, JobStatus::Pending);
    let st = spool.stats().unwrap();
    assert_eq!(st.total.completed, 1);
    assert_eq!(st.total.dead_letter, 1);
    assert_eq!(st.total.pending, 1);
    assert_eq!(st.queues["default"].counts.completed, 1);
    assert!(!spool
        .list(&ListQuery::default())
        .unwrap()
        .iter()
        .any(|j| j.id == old));

    // Nothing more to prune until the newer job ages past an hour.
    assert_eq!(spool.prune().unwrap(), 0);
    clock.advance_ms(30 * 60 * 1000);
    assert_eq!(spool.prune().unwrap(), 1);
    assert_eq!(spool.stats().unwrap().total.completed, 0);
    // Dead letters are kept 7 days by default.
    assert_eq!(spool.get(dead).unwrap().status, JobStatus::DeadLetter);
    clock.advance_ms(7 * 24 * 3600 * 1000);
    assert_eq!(spool.prune().unwrap(), 1);
    assert_eq!(spool.stats().unwrap().total.dead_letter, 0);
    assert_eq!(spool.get(waiting).unwrap().status, JobStatus::Pending);
}

fn crash_recovery_fails_the_running_attempt_on_reopen(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(start());
    let spool = store.open(builder(&clock));
    let retried = spool
        .enqueue(NewJob::new("a", Vec::new()).max_attempts(3))
        .unwrap()
        .id;
    let last_try = spool
        .enqueue(NewJob::new("b", Vec::new()).max_attempts(1))
        .unwrap()
        .id;
    let untouched = spool.enqueue(NewJob::new("c", Vec::new())).unwrap().id;
    let c1 = claim(&spool, retried);
    let c2 = claim(&spool, last_try);
    assert_ne!(c1.lease.token, c2.lease.token);
    let seq = spool.last_seq();
    drop(spool); // no complete, no fail: the process "stopped"

    clock.advance_ms(5);
    let spool = store.open(builder(&clock));
    let j = spool.get(retried).unwrap();
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.attempts, 1);
    assert_eq!(
        j.last_error.as_deref(),
        Some("lost when the process stopped")
    );
    assert_eq!(j.executions.len(), 1);
    assert_eq!(j.executions[0].success, Some(false));

    let j = spool.get(last_try).unwrap();
    assert_eq!(j.status, JobStatus::DeadLetter);
    assert_eq!(j.attempts, 1);
    assert_eq!(
        j.last_error.as_deref(),
        Some("lost when the process stopped")
    );

    let j = spool.get(untouched).unwrap();
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 0));
    let st = spool.stats().unwrap();
    assert_eq!(st.total.running, 0);
    assert_eq!((st.total.pending, st.total.dead_letter), (2, 1));

    // Events of the recovery continue the log without a gap.
    let evs = spool.events_since(seq, 100).unwrap();
    assert_eq!(evs.first().map(|e| e.seq), Some(seq + 1));
    for w in evs.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let names: Vec<&str> = evs
        .iter()
        .filter(|e| e.event.job_id() == Some(last_try))
        .map(|e| e.event.name())
        .collect();
    assert_eq!(names, vec!["job.failed", "job.dead_lettered"]);
    // The old tokens are dead.
    assert_eq!(
        spool
            .complete(jobspool::Lease::new(retried, c1.lease.token), None)
            .unwrap_err()
            .code(),
        "STALE_LEASE"
    );
}

fn redrive_all_redrives_only_one_job_per_dedupe_key(b: TestBackend) {
    let store = b.store();
    let (spool, _clock) = open(&store);
    let mut ids = Vec::new();
    for i in 0..2 {
        let j = spool
            .enqueue(
                NewJob::new(format!("k{i}"), Vec::new())
                    .dedupe_key("shared")
                    .max_attempts(1),
            )
            .unwrap();
        fail(&spool, j.id, "x", Retry::Backoff);
        ids.push(j.id);
    }
    assert_ne!(ids[0], ids[1]);
    let got: Vec<JobId> = spool
        .redrive_all(None, None)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got.len(), 1, "two live jobs would share dedupeKey: {got:?}");
    let live = spool
        .list(&ListQuery {
            status: Some(JobStatus::Pending),
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, got[0]);
}
