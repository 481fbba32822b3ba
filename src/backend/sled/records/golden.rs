//! Golden bytes: every stored record kind, as a fixed sample value and the exact bytes the
//! format gives it (`tests/fixtures/records/`). Decoding each fixture must give the sample,
//! and encoding the sample must give the fixture: a change of the disk format, on purpose
//! or not, fails here.
//!
//! The fixtures were written by the code of their first commit. To write them again (only
//! for a deliberate format change, with a new `FORMAT_VERSION`; move the old ones to
//! `records/v<N>/` first, with a test that they still decode, as `v1/` has):
//! `JOBSPOOL_WRITE_FIXTURES=1 cargo test --lib golden::tests::write_fixtures -- --ignored`.

use std::collections::BTreeMap;

use crate::backend::codec::keys;
use crate::backend::sled::journal::Change;
use crate::backend::sled::stage::{Meta, StoredEvent, StoredEventBlock};
use crate::model::clock::to_datetime;
use crate::model::event::{Event, ScheduleChange};
use crate::model::job::{Backoff, Execution, Job, JobId, JobStatus, LeaseState};
use crate::model::schedule::ScheduledJob;

/// 2026-11-28T20:00:00.000Z, and moments after it.
const T0: i64 = 1_795_896_000_000;

fn at(offset_ms: i64) -> chrono::DateTime<chrono::Utc> {
    to_datetime(T0 + offset_ms)
}

fn id(n: u8) -> JobId {
    let mut b = [0u8; 16];
    b[0] = 0x01;
    b[6] = 0x70; // version 7
    b[8] = 0x80; // variant
    b[15] = n;
    JobId::from_bytes(b)
}

/// A job with every optional field set (payload excluded: it is stored under its own key).
pub(crate) fn job_full() -> Job {
    let mut metadata = BTreeMap::new();
    metadata.insert("region".to_owned(), "eu".to_owned());
    metadata.insert("source".to_owned(), "golden".to_owned());
    Job {
        id: id(1),
        kind: "email.send".into(),
        version: "2.1.0".into(),
        queue: "mail".into(),
        payload: Vec::new(),
        status: JobStatus::Running,
        priority: -5,
        attempts: 2,
        max_attempts: 4,
        created_at: at(0),
        updated_at: at(2_500),
        scheduled_at: Some(at(1_000)),
        started_at: Some(at(2_000)),
        completed_at: Some(at(2_400)),
        last_error: Some("smtp timeout".into()),
        timeout: Some(std::time::Duration::from_secs(30)),
        dedupe_key: Some("order-17".into()),
        tenant_id: Some("tenant-a".into()),
        user_id: Some("user-b".into()),
        trace_id: Some("trace-c".into()),
        metadata,
        result: Some(vec![1, 2, 3, 0xff]),
        executions: vec![
            Execution {
                attempt_number: 1,
                started_at: at(1_100),
                completed_at: Some(at(1_300)),
                duration_ms: Some(200),
                success: Some(false),
                error: Some("boom".into()),
                worker_id: Some("worker-1".into()),
                released: false,
            },
            Execution {
                attempt_number: 2,
                started_at: at(2_000),
                completed_at: None,
                duration_ms: None,
                success: None,
                error: None,
                worker_id: None,
                released: true,
            },
        ],
        backoff: Some(Backoff {
            initial: std::time::Duration::from_millis(500),
            multiplier: 1.5,
            max: std::time::Duration::from_millis(90_000),
            jitter: 0.25,
        }),
        lease: Some(LeaseState {
            token: 77,
            expires_ms: T0 + 32_000,
        }),
    }
}

/// A job with every optional field empty.
pub(crate) fn job_empty() -> Job {
    Job {
        id: id(2),
        kind: "k".into(),
        version: "1.0.0".into(),
        queue: "default".into(),
        payload: Vec::new(),
        status: JobStatus::DeadLetter,
        priority: 0,
        attempts: 0,
        max_attempts: 3,
        created_at: at(0),
        updated_at: at(0),
        scheduled_at: None,
        started_at: None,
        completed_at: None,
        last_error: None,
        timeout: None,
        dedupe_key: None,
        tenant_id: None,
        user_id: None,
        trace_id: None,
        metadata: BTreeMap::new(),
        result: None,
        executions: Vec::new(),
        backoff: None,
        lease: None,
    }
}

/// A log block holding one event of every kind (options set in some, empty in others).
pub(crate) fn event_block() -> StoredEventBlock {
    let events = vec![
        Event::JobEnqueued {
            job_id: id(1),
            kind: "email.send".into(),
            priority: 3,
            enqueued_at: at(0),
            scheduled_at: Some(at(1_000)),
            tenant_id: Some("tenant-a".into()),
        },
        Event::JobEnqueued {
            job_id: id(2),
            kind: "k".into(),
            priority: 0,
            enqueued_at: at(0),
            scheduled_at: None,
            tenant_id: None,
        },
        Event::JobStarted {
            job_id: id(1),
            kind: "email.send".into(),
            attempt: 1,
            started_at: at(1_100),
        },
        Event::JobCompleted {
            job_id: id(1),
            kind: "email.send".into(),
            attempt: 1,
            duration_ms: 250,
            completed_at: at(1_350),
        },
        Event::JobFailed {
            job_id: id(2),
            kind: "k".into(),
            attempt: 2,
            error: "boom".into(),
            will_retry: true,
            failed_at: at(1_400),
        },
        Event::JobRetrying {
            job_id: id(2),
            kind: "k".into(),
            attempt: 2,
            next_attempt_at: at(3_400),
            backoff_ms: 2_000,
        },
        Event::JobDeadLettered {
            job_id: id(2),
            kind: "k".into(),
            attempts: 3,
            last_error: "boom".into(),
            dead_lettered_at: at(5_000),
        },
        Event::JobCancelled {
            job_id: id(3),
            kind: "k".into(),
            cancelled_at: at(5_100),
            cancelled_by: Some("admin".into()),
        },
        Event::JobCancelled {
            job_id: id(4),
            kind: "k".into(),
            cancelled_at: at(5_200),
            cancelled_by: None,
        },
        Event::SchedulerJobTriggered {
            schedule_name: "nightly".into(),
            job_id: id(5),
            job_type: "report".into(),
            triggered_at: at(6_000),
            next_run_at: Some(at(86_406_000)),
        },
        Event::SchedulerJobTriggered {
            schedule_name: "once".into(),
            job_id: id(6),
            job_type: "report".into(),
            triggered_at: at(6_000),
            next_run_at: None,
        },
        Event::JobReleased {
            job_id: id(1),
            kind: "email.send".into(),
            attempt: 2,
            released_at: at(7_000),
        },
        Event::JobRedriven {
            job_id: id(2),
            kind: "k".into(),
            redriven_at: at(8_000),
        },
        Event::JobsPruned {
            count: 12,
            pruned_at: at(9_000),
        },
        Event::ScheduleChanged {
            name: "nightly".into(),
            change: ScheduleChange::Created,
            at: at(9_100),
        },
        Event::ScheduleChanged {
            name: "nightly".into(),
            change: ScheduleChange::Replaced,
            at: at(9_200),
        },
        Event::ScheduleChanged {
            name: "nightly".into(),
            change: ScheduleChange::Enabled,
            at: at(9_300),
        },
        Event::ScheduleChanged {
            name: "nightly".into(),
            change: ScheduleChange::Disabled,
            at: at(9_400),
        },
        Event::ScheduleChanged {
            name: "nightly".into(),
            change: ScheduleChange::Deleted,
            at: at(9_500),
        },
        Event::QueuePaused {
            queue: "mail".into(),
            paused: true,
            at: at(9_600),
        },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| StoredEvent {
            at_ms: T0 + i as i64,
            event,
        })
        .collect()
}

/// A schedule with every optional field set.
pub(crate) fn schedule_full() -> ScheduledJob {
    ScheduledJob {
        id: id(9).to_string(),
        name: "nightly".into(),
        cron_expression: "0 3 * * *".into(),
        timezone: "Europe/Berlin".into(),
        job_type: "report".into(),
        enabled: true,
        created_at: at(0),
        description: Some("the nightly report".into()),
        last_run_at: Some(at(3_600_000)),
        next_run_at: Some(at(90_000_000)),
        payload: b"{\"full\":true}".to_vec(),
        max_attempts: Some(5),
        queue: Some("reports".into()),
        priority: 7,
    }
}

/// A schedule with every optional field empty.
pub(crate) fn schedule_empty() -> ScheduledJob {
    ScheduledJob {
        id: id(10).to_string(),
        name: "off".into(),
        cron_expression: "*/5 * * * *".into(),
        timezone: "UTC".into(),
        job_type: "tick".into(),
        enabled: false,
        created_at: at(0),
        description: None,
        last_run_at: None,
        next_run_at: None,
        payload: Vec::new(),
        max_attempts: None,
        queue: None,
        priority: 0,
    }
}

pub(crate) fn meta() -> Meta {
    Meta { next_seq: 4242 }
}

/// A journal group: a put of a job record, a put of a payload, a remove of a dedupe key.
pub(crate) fn journal_changes() -> Vec<Change> {
    vec![
        (
            keys::job(&id(1)).to_vec().into(),
            Some(b"\x01record".to_vec().into()),
        ),
        (
            keys::payload(&id(1)).to_vec().into(),
            Some(b"".to_vec().into()),
        ),
        (keys::named(keys::DEDUPE, "order-17").into(), None),
    ]
}

#[cfg(test)]
mod tests;
