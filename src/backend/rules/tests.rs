//! The rules on their own: records in, records and events out.

use std::time::Duration;

use super::*;
use crate::model::backoff::Backoff;
use crate::model::clock::to_datetime;
use crate::model::error::Error;
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::{Job, JobId, JobStatus, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::Retry;

/// 2026-11-28T20:00:00.000Z.
const NOW: i64 = 1_795_896_000_000;

fn id(n: u8) -> JobId {
    JobId::from_bytes([n; 16])
}

/// A pending job with `max_attempts` attempts and a backoff without jitter (1 s, x2).
fn pending(max_attempts: u32) -> Job {
    let nj = NewJob {
        kind: "email".into(),
        payload: b"p".to_vec(),
        max_attempts: Some(max_attempts),
        backoff: Some(Backoff {
            jitter: 0.0,
            ..Backoff::default()
        }),
        ..NewJob::default()
    };
    new_job(nj, id(1), NOW, 3)
}

/// `job` claimed at `now` with token `token` for 30 s.
fn claimed(job: Job, now: i64, token: u64) -> Job {
    claim(job, now, token, 30_000, "w1").job
}

/// `job`'s attempt fails at `now` with `error`, to be retried with its backoff (its own
/// has no jitter: the sample does not matter).
fn failed(job: Job, now: i64, error: &str) -> Change {
    fail(
        job,
        now,
        error.into(),
        Retry::Backoff,
        &Backoff::default(),
        || 0.5,
    )
}

fn no_jitter() -> f64 {
    panic!("no jitter sample is drawn here")
}

#[test]
fn new_job_fills_defaults_and_due_time() {
    let j = new_job(
        NewJob {
            kind: "k".into(),
            ..NewJob::default()
        },
        id(2),
        NOW,
        5,
    );
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!((j.queue.as_str(), j.version.as_str()), ("default", "1.0.0"));
    assert_eq!(j.max_attempts, 5);
    assert_eq!(j.attempts, 0);
    assert_eq!(j.scheduled_at, Some(to_datetime(NOW)));
    assert_eq!(j.created_at, to_datetime(NOW));
    let delayed = new_job(
        NewJob {
            kind: "k".into(),
            delay: Some(Duration::from_secs(10)),
            ..NewJob::default()
        },
        id(3),
        NOW,
        5,
    );
    assert_eq!(delayed.due_ms(), NOW + 10_000);
    match enqueued_event(&delayed) {
        Event::JobEnqueued {
            job_id,
            scheduled_at,
            ..
        } => {
            assert_eq!(job_id, id(3));
            assert_eq!(scheduled_at, Some(to_datetime(NOW + 10_000)));
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn claim_counts_the_attempt_and_opens_an_execution() {
    let c = claim(pending(3), NOW, 42, 30_000, "w1");
    assert_eq!(c.job.status, JobStatus::Running);
    assert_eq!(c.job.attempts, 1);
    let lease = c.job.lease.clone().unwrap();
    assert_eq!((lease.token, lease.expires_ms), (42, NOW + 30_000));
    let e = c.job.executions.last().unwrap();
    assert_eq!(e.attempt_number, 1);
    assert_eq!(e.worker_id.as_deref(), Some("w1"));
    assert!(e.completed_at.is_none());
    assert!(matches!(
        c.events[..],
        [Event::JobStarted { attempt: 1, .. }]
    ));
}

#[test]
fn lease_check_tells_held_stale_and_expired() {
    let job = claimed(pending(3), NOW, 7);
    assert_eq!(check_lease(&job, 7, NOW + 1), LeaseCheck::Held);
    assert_eq!(check_lease(&job, 8, NOW + 1), LeaseCheck::Stale);
    assert_eq!(check_lease(&job, 7, NOW + 30_000), LeaseCheck::Expired);
    // A wrong token is stale even once the lease ran out: it never held it.
    assert_eq!(check_lease(&job, 8, NOW + 30_000), LeaseCheck::Stale);
    assert_eq!(check_lease(&pending(3), 7, NOW), LeaseCheck::Stale);
}

#[test]
fn complete_closes_the_execution_with_its_duration() {
    let job = claimed(pending(3), NOW, 7);
    let c = complete(job, NOW + 250, Some(b"ok".to_vec()));
    assert_eq!(c.job.status, JobStatus::Completed);
    assert!(c.job.lease.is_none());
    assert_eq!(c.job.result.as_deref(), Some(&b"ok"[..]));
    assert_eq!(c.job.completed_at, Some(to_datetime(NOW + 250)));
    let e = c.job.executions.last().unwrap();
    assert_eq!((e.success, e.duration_ms), (Some(true), Some(250)));
    assert!(matches!(
        c.events[..],
        [Event::JobCompleted {
            duration_ms: 250,
            attempt: 1,
            ..
        }]
    ));
}

#[test]
fn failure_retries_with_backoff_until_attempts_run_out() {
    // Attempt 1 of 3 fails: retry after 1 s (no jitter).
    let c = failed(claimed(pending(3), NOW, 1), NOW, "boom");
    assert_eq!(c.job.status, JobStatus::Pending);
    assert_eq!(c.job.attempts, 1);
    assert_eq!(c.job.due_ms(), NOW + 1_000);
    assert_eq!(c.job.last_error.as_deref(), Some("boom"));
    assert!(c.job.completed_at.is_none());
    match &c.events[..] {
        [Event::JobFailed {
            will_retry: true, ..
        }, Event::JobRetrying {
            backoff_ms: 1_000,
            next_attempt_at,
            attempt: 1,
            ..
        }] => assert_eq!(*next_attempt_at, to_datetime(NOW + 1_000)),
        e => panic!("unexpected {e:?}"),
    }
    // Attempt 2 waits twice as long.
    let c = failed(claimed(c.job, NOW + 1_000, 2), NOW + 1_000, "boom");
    assert_eq!(c.job.due_ms(), NOW + 3_000);
    // Attempt 3 of 3 (maxRetries reached): dead letter.
    let c = failed(claimed(c.job, NOW + 3_000, 3), NOW + 3_000, "last");
    assert_eq!(c.job.status, JobStatus::DeadLetter);
    assert_eq!(c.job.attempts, 3);
    assert_eq!(c.job.completed_at, Some(to_datetime(NOW + 3_000)));
    assert!(matches!(
        &c.events[..],
        [Event::JobFailed { will_retry: false, .. }, Event::JobDeadLettered { attempts: 3, last_error, .. }]
            if last_error == "last"
    ));
    // Every attempt left its execution entry, each closed as failed.
    assert_eq!(c.job.executions.len(), 3);
    assert!(c.job.executions.iter().all(|e| e.success == Some(false)));
}

#[test]
fn failure_uses_the_default_backoff_with_jitter_and_an_explicit_delay() {
    let mut job = pending(5);
    job.backoff = None;
    let d = Backoff {
        initial: Duration::from_millis(100),
        jitter: 0.5,
        ..Backoff::default()
    };
    // unit 1.0 - epsilon: close to +50%.
    let c = fail(
        claimed(job.clone(), NOW, 1),
        NOW,
        "x".into(),
        Retry::Backoff,
        &d,
        || 0.999,
    );
    assert!((149..=150).contains(&(c.job.due_ms() - NOW)));
    let c = fail(
        claimed(job, NOW, 1),
        NOW,
        "x".into(),
        Retry::After(Duration::from_secs(9)),
        &d,
        no_jitter,
    );
    assert_eq!(c.job.due_ms(), NOW + 9_000);
}

#[test]
fn failure_without_retry_is_failed_not_dead_letter() {
    let c = fail(
        claimed(pending(3), NOW, 1),
        NOW,
        "no".into(),
        Retry::Never,
        &Backoff::default(),
        no_jitter,
    );
    assert_eq!(c.job.status, JobStatus::Failed);
    assert!(matches!(
        c.events[..],
        [Event::JobFailed {
            will_retry: false,
            ..
        }]
    ));
}

#[test]
fn release_does_not_count_the_attempt() {
    let job = claimed(pending(3), NOW, 1);
    let c = release(job, NOW + 40);
    assert_eq!(c.job.status, JobStatus::Pending);
    assert_eq!(c.job.attempts, 0);
    assert!(c.job.lease.is_none());
    let e = c.job.executions.last().unwrap();
    assert!(e.released);
    assert_eq!(e.duration_ms, Some(40));
    assert!(matches!(
        c.events[..],
        [Event::JobReleased { attempt: 1, .. }]
    ));
    // The next claim is attempt 1 again, with a second execution entry.
    let again = claimed(c.job, NOW + 50, 2);
    assert_eq!(again.attempts, 1);
    assert_eq!(again.executions.len(), 2);
}

#[test]
fn extend_moves_only_the_lease() {
    let job = claimed(pending(3), NOW, 1);
    let j = extend(job.clone(), NOW + 10_000, 1, 60_000);
    assert_eq!(j.lease.unwrap().expires_ms, NOW + 70_000);
    assert_eq!(
        (j.status, j.attempts, j.updated_at),
        (job.status, job.attempts, job.updated_at)
    );
}

#[test]
fn result_over_the_limit_is_refused() {
    assert!(check_result(4, Some(&vec![0; 4])).is_ok());
    assert!(check_result(4, None).is_ok());
    let e = check_result(4, Some(&vec![0; 5])).unwrap_err();
    assert!(matches!(
        e,
        Error::PayloadTooLarge {
            size: 5,
            limit: 4,
            ..
        }
    ));
}

#[test]
fn cancel_only_pending_jobs() {
    let c = cancel(pending(3), NOW, Some("ops".into())).unwrap();
    assert_eq!(c.job.status, JobStatus::Cancelled);
    assert_eq!(c.job.completed_at, Some(to_datetime(NOW)));
    assert!(
        matches!(&c.events[..], [Event::JobCancelled { cancelled_by: Some(b), .. }] if b == "ops")
    );
    let e = cancel(claimed(pending(3), NOW, 1), NOW, None).unwrap_err();
    assert!(matches!(e, Error::JobNotPending { .. }), "{e:?}");
}

#[test]
fn redrive_resets_attempts_and_keeps_history() {
    let dead = failed(claimed(pending(1), NOW, 1), NOW, "x").job;
    assert_eq!(dead.status, JobStatus::DeadLetter);
    let mut picker = RedrivePicker::new(true);
    assert!(picker.pick(&dead, |_| Ok(None)).unwrap());
    let c = redrive(dead, NOW + 5);
    assert_eq!(c.job.status, JobStatus::Pending);
    assert_eq!((c.job.attempts, c.job.last_error.clone()), (0, None));
    assert_eq!(c.job.due_ms(), NOW + 5);
    assert!(c.job.completed_at.is_none());
    assert_eq!(c.job.executions.len(), 1);
    assert!(matches!(c.events[..], [Event::JobRedriven { .. }]));
}

#[test]
fn redrive_picker_refuses_live_jobs_and_held_keys() {
    let mut dead = failed(claimed(pending(1), NOW, 1), NOW, "x").job;
    dead.dedupe_key = Some("k".into());
    // One job: an error that says why.
    let e = RedrivePicker::new(true)
        .pick(&pending(1), |_| Ok(None))
        .unwrap_err();
    assert!(e.to_string().contains("only dead_letter and failed"), "{e}");
    let e = RedrivePicker::new(true)
        .pick(&dead, |_| Ok(Some(id(9))))
        .unwrap_err();
    assert!(e.to_string().contains("held by live job"), "{e}");
    // Many: skipped; and a key taken by a job picked before holds for the rest.
    let mut many = RedrivePicker::new(false);
    assert!(!many.pick(&pending(1), |_| Ok(None)).unwrap());
    assert!(many.pick(&dead, |_| Ok(None)).unwrap());
    let mut twin = dead.clone();
    twin.id = id(4);
    assert!(!many.pick(&twin, |_| Ok(None)).unwrap());
}

#[test]
fn prune_cutoffs_and_event() {
    let r = crate::model::config::Retention::default();
    let (plan, events) = prune_cutoffs(&r, NOW);
    assert_eq!(plan[0], (JobStatus::Completed, NOW - 86_400_000));
    assert_eq!(plan[3], (JobStatus::DeadLetter, NOW - 7 * 86_400_000));
    assert_eq!(events, NOW - 7 * 86_400_000);
    assert!(pruned_event(0, NOW).is_none());
    assert!(matches!(
        pruned_event(3, NOW),
        Some(Event::JobsPruned { count: 3, .. })
    ));
}

fn hourly() -> ScheduledJob {
    let new = NewSchedule::new("hourly", "0 * * * *", "report");
    let (cron, tz) = new.validate(1024).unwrap();
    let (s, change) = build_schedule(new, &cron, tz, None, || id(5), NOW).unwrap();
    assert_eq!(change, ScheduleChange::Created);
    s
}

#[test]
fn schedule_build_and_replace() {
    let s = hourly();
    assert_eq!(s.id, id(5).to_string());
    // 20:00:00 exactly: the next tick is 21:00.
    assert_eq!(s.next_run_at, Some(to_datetime(NOW + 3_600_000)));
    let again = NewSchedule::new("hourly", "*/5 * * * *", "report");
    let (cron, tz) = again.validate(1024).unwrap();
    let e = build_schedule(again.clone(), &cron, tz, Some(&s), || id(6), NOW).unwrap_err();
    assert!(matches!(e, Error::ScheduleExists(_)));
    let mut replace = again;
    replace.replace = true;
    let (r, change) = build_schedule(replace, &cron, tz, Some(&s), || id(6), NOW + 1).unwrap();
    assert_eq!(change, ScheduleChange::Replaced);
    assert_eq!((r.id, r.created_at), (s.id, s.created_at));
    assert_eq!(r.next_run_at, Some(to_datetime(NOW + 300_000)));
}

#[test]
fn schedule_fires_once_and_moves_to_the_next_tick() {
    let s = hourly();
    assert!(!is_due(&s, NOW + 3_599_999));
    // Fired late (three ticks missed): one job, next run the first tick after now.
    let late = NOW + 3 * 3_600_000 + 10;
    assert!(is_due(&s, late));
    let f = fire(s, late, 1024);
    let nj = f.job.clone().unwrap();
    assert_eq!(nj.kind, "report");
    assert_eq!(f.schedule.last_run_at, Some(to_datetime(late)));
    assert_eq!(
        f.schedule.next_run_at,
        Some(to_datetime(NOW + 4 * 3_600_000))
    );
    assert!(!is_due(&f.schedule, late));
    match triggered_event(&f.schedule, id(8), late) {
        Event::SchedulerJobTriggered {
            job_id,
            next_run_at,
            ..
        } => assert_eq!((job_id, next_run_at), (id(8), f.schedule.next_run_at)),
        e => panic!("unexpected {e:?}"),
    }
    // A payload over a lowered limit: the tick is skipped, the schedule still moves on.
    let mut big = hourly();
    big.payload = vec![0; 100];
    let f = fire(big, NOW + 3_600_000, 10);
    assert!(f.job.is_none());
    assert_eq!(
        f.schedule.next_run_at,
        Some(to_datetime(NOW + 2 * 3_600_000))
    );
}

#[test]
fn schedule_toggle() {
    let (off, change) = toggle(hourly(), false, NOW);
    assert_eq!((change, off.next_run_at), (ScheduleChange::Disabled, None));
    assert!(!is_due(&off, NOW + 10 * 3_600_000));
    // On again later: no catch-up, the next tick after now.
    let (on, change) = toggle(off, true, NOW + 5 * 3_600_000 + 1);
    assert_eq!(change, ScheduleChange::Enabled);
    assert_eq!(on.next_run_at, Some(to_datetime(NOW + 6 * 3_600_000)));
    assert!(matches!(
        changed_event("hourly", ScheduleChange::Deleted, NOW),
        Event::ScheduleChanged {
            change: ScheduleChange::Deleted,
            ..
        }
    ));
}
