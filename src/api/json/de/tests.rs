//! Unit tests of the parent module.

use super::*;
use crate::api::json::EventView;
use crate::api::ops::Output;
use crate::model::event::{Event, EventRecord, ScheduleChange};

fn t(ms: i64) -> DateTime<Utc> {
    crate::model::clock::to_datetime(ms)
}

/// Through the text a door prints, and back.
fn through_text<V: serde::Serialize, J: serde::de::DeserializeOwned>(v: &V) -> J {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

fn full_job(payload: &[u8], result: Option<&[u8]>) -> Job {
    let id: JobId = "01936b5e-4d2a-7c3e-9f00-000000000001".parse().unwrap();
    Job {
        id,
        kind: "email.send".into(),
        version: "2.0.0".into(),
        queue: "mail".into(),
        payload: payload.to_vec(),
        status: crate::model::job::JobStatus::Running,
        priority: -7,
        attempts: 2,
        max_attempts: 5,
        created_at: t(1_700_000_000_123),
        updated_at: t(1_700_000_001_456),
        scheduled_at: Some(t(1_700_000_000_999)),
        started_at: Some(t(1_700_000_001_000)),
        completed_at: Some(t(1_700_000_002_000)),
        last_error: Some("boom \"quoted\"\nline".into()),
        timeout: Some(std::time::Duration::from_secs(30)),
        dedupe_key: Some("k".into()),
        tenant_id: Some("tenant".into()),
        user_id: Some("user".into()),
        trace_id: Some("trace".into()),
        metadata: [
            ("a".to_string(), "1".to_string()),
            ("b".into(), String::new()),
        ]
        .into(),
        result: result.map(<[u8]>::to_vec),
        executions: vec![
            Execution {
                attempt_number: 1,
                started_at: t(1_700_000_000_500),
                completed_at: Some(t(1_700_000_000_600)),
                duration_ms: Some(100),
                success: Some(false),
                error: Some("first".into()),
                worker_id: Some("w1".into()),
                released: false,
            },
            Execution {
                attempt_number: 2,
                started_at: t(1_700_000_001_000),
                completed_at: None,
                duration_ms: None,
                success: None,
                error: None,
                worker_id: None,
                released: true,
            },
        ],
        backoff: None,
        lease: Some(LeaseState {
            token: 0,
            expires_ms: 1_700_000_031_000,
        }),
    }
}

#[test]
fn jobs_round_trip_through_their_json() {
    let cases: [(&[u8], Option<&[u8]>); 6] = [
        (
            br#"{"n":12345678901234567890123,"d":0.1000000000000000055}"#,
            Some(b"[1,2]"),
        ),
        (b"\xff\x00raw", Some(b"\x00")),
        (b"", None),
        (b"", Some(b"")),
        (b"null", Some(b"null")),
        (br#"{"base64":"Zm9v"}"#, Some(b"{\n}")),
    ];
    for (payload, result) in cases {
        let job = full_job(payload, result);
        let back = Job::try_from(through_text::<_, JobJson>(&Output::Job(Box::new(
            job.clone(),
        ))))
        .unwrap();
        assert_eq!(back, job, "payload {payload:?}, result {result:?}");
    }
    // A minimal job: every optional field absent.
    let mut job = full_job(b"1", None);
    job.scheduled_at = None;
    job.started_at = None;
    job.completed_at = None;
    job.last_error = None;
    job.timeout = None;
    job.dedupe_key = None;
    job.tenant_id = None;
    job.user_id = None;
    job.trace_id = None;
    job.metadata.clear();
    job.executions.clear();
    job.lease = None;
    let back = Job::try_from(through_text::<_, JobJson>(&Output::Job(Box::new(
        job.clone(),
    ))))
    .unwrap();
    assert_eq!(back, job);
}

#[test]
fn stats_and_schedules_round_trip_through_their_json() {
    let mut stats = Stats::default();
    stats.total.pending = 3;
    stats.total.delayed = 1;
    stats.total.dead_letter = 9;
    let q = QueueStats {
        counts: Counts {
            running: 2,
            cancelled: 4,
            ..Counts::default()
        },
        paused: true,
    };
    stats.queues.insert("mail".into(), q);
    let back = Stats::from(through_text::<_, StatsJson>(&Output::Stats(stats.clone())));
    assert_eq!(back, stats);

    for (payload, queue) in [
        (&b"\x01\x02"[..], Some("reports".to_string())),
        (br#"{"x":1}"#, None),
        (b"", None),
    ] {
        let s = ScheduledJob {
            id: "01936b5e-4d2a-7c3e-9f00-0000000000ff".into(),
            name: "nightly".into(),
            cron_expression: "0 3 * * *".into(),
            timezone: "Europe/Berlin".into(),
            job_type: "report".into(),
            enabled: true,
            created_at: t(1_700_000_000_000),
            description: Some("every night".into()),
            last_run_at: Some(t(1_700_000_100_000)),
            next_run_at: Some(t(1_700_086_400_000)),
            payload: payload.to_vec(),
            max_attempts: Some(4),
            queue,
            priority: 3,
        };
        let back = ScheduledJob::try_from(through_text::<_, ScheduleJson>(&Output::Schedule(
            s.clone(),
        )))
        .unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn every_event_kind_round_trips_through_its_json() {
    let id: JobId = "01936b5e-4d2a-7c3e-9f00-000000000002".parse().unwrap();
    let at = t(1_700_000_000_321);
    let later = t(1_700_000_009_000);
    let mut events = vec![
        Event::JobEnqueued {
            job_id: id,
            kind: "k".into(),
            priority: 2,
            enqueued_at: at,
            scheduled_at: Some(later),
            tenant_id: Some("t".into()),
        },
        Event::JobEnqueued {
            job_id: id,
            kind: "k".into(),
            priority: 0,
            enqueued_at: at,
            scheduled_at: None,
            tenant_id: None,
        },
        Event::JobStarted {
            job_id: id,
            kind: "k".into(),
            attempt: 1,
            started_at: at,
        },
        Event::JobCompleted {
            job_id: id,
            kind: "k".into(),
            attempt: 1,
            duration_ms: 12,
            completed_at: at,
        },
        Event::JobFailed {
            job_id: id,
            kind: "k".into(),
            attempt: 1,
            error: "e".into(),
            will_retry: true,
            failed_at: at,
        },
        Event::JobRetrying {
            job_id: id,
            kind: "k".into(),
            attempt: 1,
            next_attempt_at: later,
            backoff_ms: 1000,
        },
        Event::JobDeadLettered {
            job_id: id,
            kind: "k".into(),
            attempts: 3,
            last_error: "e".into(),
            dead_lettered_at: at,
        },
        Event::JobCancelled {
            job_id: id,
            kind: "k".into(),
            cancelled_at: at,
            cancelled_by: Some("admin".into()),
        },
        Event::JobCancelled {
            job_id: id,
            kind: "k".into(),
            cancelled_at: at,
            cancelled_by: None,
        },
        Event::SchedulerJobTriggered {
            schedule_name: "s".into(),
            job_id: id,
            job_type: "k".into(),
            triggered_at: at,
            next_run_at: Some(later),
        },
        Event::JobReleased {
            job_id: id,
            kind: "k".into(),
            attempt: 2,
            released_at: at,
        },
        Event::JobRedriven {
            job_id: id,
            kind: "k".into(),
            redriven_at: at,
        },
        Event::JobsPruned {
            count: 7,
            pruned_at: at,
        },
        Event::QueuePaused {
            queue: "q".into(),
            paused: true,
            at,
        },
        Event::QueuePaused {
            queue: "q".into(),
            paused: false,
            at,
        },
    ];
    for change in [
        ScheduleChange::Created,
        ScheduleChange::Replaced,
        ScheduleChange::Enabled,
        ScheduleChange::Disabled,
        ScheduleChange::Deleted,
    ] {
        events.push(Event::ScheduleChanged {
            name: "s".into(),
            change,
            at,
        });
    }
    for (i, event) in events.into_iter().enumerate() {
        let r = EventRecord {
            seq: i as u64 + 1,
            event,
        };
        let back =
            EventRecord::try_from(through_text::<_, EventJson>(&EventView::from(&r))).unwrap();
        assert_eq!(back, r);
    }
    let unknown: EventJson = serde_json::from_str(r#"{"seq":1,"name":"job.teleported"}"#).unwrap();
    assert!(EventRecord::try_from(unknown).is_err());
}
