//! Schedules: create/toggle/list/delete, exactly-once firing across restarts, missed ticks,
//! DST in a real zone, bad input, and the scheduler thread waking for a new schedule.

mod common;

use common::{conformance, Store, TestBackend};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobspool::{Event, ListQuery, ManualClock, NewSchedule, Spool};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    create_list_toggle_delete,
    bad_input_is_rejected_and_changes_nothing,
    a_tick_fires_once_and_restart_never_fires_it_again,
    missed_ticks_fire_once_then_continue_from_now,
    dst_in_berlin_fires_once_on_both_change_days,
    scheduler_thread_wakes_for_a_schedule_due_sooner,
    schedule_rejects_max_retries_its_jobs_would_reject,
    cron_that_never_fires_is_rejected_and_changes_nothing,
    weekday_field_covering_the_whole_week_fires_every_day,
    out_of_range_cron_field_names_field_value_and_range
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn open(store: &Store, clock: &ManualClock) -> Spool {
    store.open(
        Spool::builder()
            .clock(clock.clone())
            .maintenance(false)
            .scheduler(false),
    )
}

fn jobs_of(spool: &Spool, kind: &str) -> usize {
    spool
        .list(&ListQuery {
            kind: Some(kind.into()),
            limit: Some(10_000),
            ..ListQuery::default()
        })
        .unwrap()
        .len()
}

fn create_list_toggle_delete(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:00Z"));
    let spool = open(&store, &clock);
    let s = spool
        .create_schedule(
            NewSchedule::new("nightly-report", "0 3 * * *", "report.build")
                .timezone("Europe/Berlin")
                .description("daily at 03:00"),
        )
        .unwrap();
    assert!(s.enabled);
    assert_eq!(s.next_run_at, Some(at("2026-11-29T02:00:00Z")));
    assert_eq!(s.last_run_at, None);
    let v = jobspool::json::schedules(&spool.list_schedules().unwrap());
    let first = &v["schedules"][0];
    for k in [
        "id",
        "name",
        "cronExpression",
        "timezone",
        "jobType",
        "enabled",
        "createdAt",
        "description",
        "lastRunAt",
        "nextRunAt",
    ] {
        assert!(first.get(k).is_some(), "missing {k} in {first}");
    }
    assert_eq!(first["nextRunAt"], "2026-11-29T02:00:00.000Z");

    let off = spool.toggle_schedule("nightly-report", false).unwrap();
    assert!(!off.enabled);
    assert_eq!(off.next_run_at, None, "toggling off clears nextRunAt");
    clock.set(at("2026-11-30T12:00:00Z"));
    assert_eq!(
        spool.fire_due_schedules().unwrap(),
        0,
        "a disabled schedule does not fire"
    );
    let on = spool.toggle_schedule("nightly-report", true).unwrap();
    assert_eq!(
        on.next_run_at,
        Some(at("2026-12-01T02:00:00Z")),
        "toggling on recomputes from now"
    );

    assert_eq!(
        spool
            .create_schedule(NewSchedule::new("nightly-report", "@daily", "x"))
            .unwrap_err()
            .code(),
        "SCHEDULE_EXISTS"
    );
    let replaced = spool
        .create_schedule(NewSchedule::new("nightly-report", "@daily", "x").replace(true))
        .unwrap();
    assert_eq!(replaced.id, s.id, "replace keeps the schedule's id");
    assert_eq!(replaced.cron_expression, "@daily");

    spool.delete_schedule("nightly-report").unwrap();
    assert!(spool.list_schedules().unwrap().is_empty());
    assert_eq!(
        spool.delete_schedule("nightly-report").unwrap_err().code(),
        "SCHEDULE_NOT_FOUND"
    );
    assert_eq!(
        spool.toggle_schedule("nope", true).unwrap_err().code(),
        "SCHEDULE_NOT_FOUND"
    );
}

fn bad_input_is_rejected_and_changes_nothing(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:00Z"));
    let spool = open(&store, &clock);
    let seq = spool.last_seq();
    for (s, code) in [
        (NewSchedule::new("a", "61 * * * *", "t"), "INVALID_CRON"),
        (NewSchedule::new("a", "* * *", "t"), "INVALID_CRON"),
        (
            NewSchedule::new("a", "* * * * * * * *", "t"),
            "INVALID_CRON",
        ),
        (NewSchedule::new("a", "* * * * 9", "t"), "INVALID_CRON"),
        (
            NewSchedule::new("a", "0 0 * * *", "t").timezone("Mars/Olympus"),
            "INVALID_TIMEZONE",
        ),
        (NewSchedule::new("", "0 0 * * *", "t"), "INVALID_ARGUMENT"),
        (NewSchedule::new("a", "0 0 * * *", ""), "INVALID_ARGUMENT"),
    ] {
        assert_eq!(
            spool.create_schedule(s.clone()).unwrap_err().code(),
            code,
            "{s:?}"
        );
    }
    let mut zero = NewSchedule::new("a", "0 0 * * *", "t");
    zero.max_attempts = Some(0);
    assert_eq!(
        spool.create_schedule(zero).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    assert!(spool.list_schedules().unwrap().is_empty());
    assert_eq!(spool.last_seq(), seq, "rejected input appends no event");
}

fn a_tick_fires_once_and_restart_never_fires_it_again(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:30Z"));
    {
        let spool = open(&store, &clock);
        spool
            .create_schedule(
                NewSchedule::new("every-minute", "* * * * *", "tick")
                    .payload(br#"{"k":1}"#.to_vec()),
            )
            .unwrap();
        assert_eq!(spool.fire_due_schedules().unwrap(), 0, "not due yet");
        clock.set(at("2026-11-28T20:01:00Z"));
        assert_eq!(spool.fire_due_schedules().unwrap(), 1);
        assert_eq!(
            spool.fire_due_schedules().unwrap(),
            0,
            "the same tick does not fire twice"
        );
        assert_eq!(jobs_of(&spool, "tick"), 1);
        let s = &spool.list_schedules().unwrap()[0];
        assert_eq!(s.last_run_at, Some(at("2026-11-28T20:01:00Z")));
        assert_eq!(s.next_run_at, Some(at("2026-11-28T20:02:00Z")));
        spool.close().unwrap();
    }
    // Reopen at the same instant: the tick was recorded with its job, nothing fires.
    let spool = open(&store, &clock);
    assert_eq!(spool.fire_due_schedules().unwrap(), 0);
    assert_eq!(jobs_of(&spool, "tick"), 1);
    clock.set(at("2026-11-28T20:02:00Z"));
    assert_eq!(spool.fire_due_schedules().unwrap(), 1);
    let jobs = spool
        .list(&ListQuery {
            kind: Some("tick".into()),
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].payload, br#"{"k":1}"#.to_vec());

    // Each firing logged job.enqueued then scheduler.job_triggered naming the job.
    let events = spool.events_since(0, 1000).unwrap();
    let triggered: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::SchedulerJobTriggered {
                schedule_name,
                job_id,
                job_type,
                next_run_at,
                ..
            } => Some((
                schedule_name.clone(),
                *job_id,
                job_type.clone(),
                *next_run_at,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(triggered.len(), 2);
    assert_eq!(triggered[1].0, "every-minute");
    assert_eq!(triggered[1].1, jobs[1].id);
    assert_eq!(triggered[1].2, "tick");
    assert_eq!(triggered[1].3, Some(at("2026-11-28T20:03:00Z")));
}

fn missed_ticks_fire_once_then_continue_from_now(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:30Z"));
    {
        let spool = open(&store, &clock);
        spool
            .create_schedule(NewSchedule::new("m", "* * * * *", "tick"))
            .unwrap();
        spool.close().unwrap();
    }
    // Down for 3 hours: 180 ticks missed.
    clock.set(at("2026-11-28T23:00:30Z"));
    let spool = open(&store, &clock);
    assert_eq!(spool.fire_due_schedules().unwrap(), 1);
    assert_eq!(spool.fire_due_schedules().unwrap(), 0);
    assert_eq!(jobs_of(&spool, "tick"), 1, "no pile-up");
    assert_eq!(
        spool.list_schedules().unwrap()[0].next_run_at,
        Some(at("2026-11-28T23:01:00Z"))
    );
}

fn dst_in_berlin_fires_once_on_both_change_days(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-03-27T12:00:00Z"));
    let spool = open(&store, &clock);
    spool
        .create_schedule(NewSchedule::new("b", "30 2 * * *", "dst").timezone("Europe/Berlin"))
        .unwrap();
    // Walk the clock minute by minute across the spring-forward day, firing as we go.
    let mut fired = Vec::new();
    let step = |clock: &ManualClock, until: &str, fired: &mut Vec<DateTime<Utc>>| {
        while clock.now_utc() < at(until) {
            clock.advance_ms(60_000);
            if spool.fire_due_schedules().unwrap() > 0 {
                fired.push(clock.now_utc());
            }
        }
    };
    step(&clock, "2026-03-30T12:00:00Z", &mut fired);
    assert_eq!(
        fired,
        vec![
            at("2026-03-28T01:30:00Z"),
            at("2026-03-29T01:00:00Z"),
            at("2026-03-30T00:30:00Z")
        ],
        "02:30 CET, then 03:00 CEST (first instant after the gap), then 02:30 CEST"
    );
    fired.clear();
    clock.set(at("2026-10-24T12:00:00Z"));
    spool.toggle_schedule("b", true).unwrap();
    step(&clock, "2026-10-26T12:00:00Z", &mut fired);
    assert_eq!(
        fired,
        vec![at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")],
        "the repeated 02:30 on the fall-back day fires once"
    );
}

trait NowUtc {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        use jobspool::Clock;
        DateTime::from_timestamp_millis(self.now_ms()).unwrap()
    }
}

fn scheduler_thread_wakes_for_a_schedule_due_sooner(b: TestBackend) {
    let store = b.store();
    let spool = store.open(Spool::builder().maintenance(false));
    // The thread is asleep until this one (a year away, capped at its maximum sleep).
    spool
        .create_schedule(NewSchedule::new("far", "0 0 1 1 *", "far"))
        .unwrap();
    // Every second: due within a second of now; the thread must wake for it.
    spool
        .create_schedule(NewSchedule::new("soon", "* * * * * *", "soon"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while jobs_of(&spool, "soon") == 0 {
        assert!(
            Instant::now() < deadline,
            "the scheduler thread did not fire the new schedule"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(jobs_of(&spool, "far"), 0);
}

/// Regression: `schedule create` accepted a maxRetries over 1,000,000, which every job it
/// enqueued was then refused with, so each tick silently produced nothing. A schedule now
/// takes exactly the job options an enqueue takes.
fn schedule_rejects_max_retries_its_jobs_would_reject(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:00Z"));
    let spool = open(&store, &clock);
    let too_many = jobspool::limits::MAX_ATTEMPTS_LIMIT + 1;
    let mut s = NewSchedule::new("too-many", "* * * * *", "t");
    s.max_attempts = Some(too_many);
    let err = spool.create_schedule(s).unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert!(err.message().contains("maxRetries"), "{err}");
    assert!(
        spool.list_schedules().unwrap().is_empty(),
        "nothing created"
    );
    let job = jobspool::NewJob::new("t", Vec::new()).max_attempts(too_many);
    assert_eq!(spool.enqueue(job).unwrap_err().code(), "INVALID_ARGUMENT");

    // At the limit both are accepted, and the tick enqueues the job.
    let mut s = NewSchedule::new("at-limit", "* * * * *", "t");
    s.max_attempts = Some(jobspool::limits::MAX_ATTEMPTS_LIMIT);
    spool.create_schedule(s).unwrap();
    clock.advance_ms(60_000);
    assert_eq!(spool.fire_due_schedules().unwrap(), 1);
    assert_eq!(jobs_of(&spool, "t"), 1);
}

fn cron_that_never_fires_is_rejected_and_changes_nothing(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:00Z"));
    let spool = open(&store, &clock);
    let seq = spool.last_seq();
    for expr in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
        let e = spool
            .create_schedule(NewSchedule::new("never", expr, "t"))
            .unwrap_err();
        assert_eq!(e.code(), "INVALID_CRON", "{expr}");
        assert!(e.to_string().contains("never fires"), "{expr}: {e}");
    }
    // A weekday range ending on Sunday is every day (MON-SUN = 1-7), not "never".
    let s = spool
        .create_schedule(NewSchedule::new("daily", "0 12 15 * MON-SUN", "t"))
        .unwrap();
    assert_eq!(s.next_run_at, Some(at("2026-11-29T12:00:00Z")));
    // A range wrapping around the week is rejected with how to write it.
    let e = spool
        .create_schedule(NewSchedule::new("wrap", "0 9 * * FRI-MON", "t"))
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_CRON");
    assert!(e.to_string().contains("FRI-SUN,MON"), "{e}");
    // Rare but possible: February 29th.
    let leap = spool
        .create_schedule(NewSchedule::new("leap", "0 0 29 2 *", "t"))
        .unwrap();
    assert_eq!(leap.next_run_at, Some(at("2028-02-29T00:00:00Z")));
    let names: Vec<String> = spool
        .list_schedules()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        spool.last_seq(),
        seq + 2,
        "only the two accepted ones logged"
    );
}

fn weekday_field_covering_the_whole_week_fires_every_day(b: TestBackend) {
    let store = b.store();
    // 2026-11-28 is a Saturday.
    let clock = ManualClock::new(at("2026-11-28T12:00:30Z"));
    let spool = open(&store, &clock);
    for (i, dow) in ["1-7", "0-6", "0-7", "SUN-SAT"].into_iter().enumerate() {
        let s = spool
            .create_schedule(NewSchedule::new(
                format!("s{i}"),
                format!("0 12 15 * {dow}"),
                "t",
            ))
            .unwrap();
        // The 15th OR any weekday: tomorrow, not December 15th.
        assert_eq!(s.next_run_at, Some(at("2026-11-29T12:00:00Z")), "{dow}");
    }
    // Unrestricted weekdays (`*`) leave the 15th alone.
    let s = spool
        .create_schedule(NewSchedule::new("mid", "0 12 15 * *", "t"))
        .unwrap();
    assert_eq!(s.next_run_at, Some(at("2026-12-15T12:00:00Z")));
    // It keeps firing every day.
    clock.set(at("2026-11-29T12:00:00Z"));
    assert_eq!(spool.fire_due_schedules().unwrap(), 4);
    clock.set(at("2026-11-30T12:00:00Z"));
    assert_eq!(spool.fire_due_schedules().unwrap(), 4);
    assert_eq!(jobs_of(&spool, "t"), 8);
}

fn out_of_range_cron_field_names_field_value_and_range(b: TestBackend) {
    let store = b.store();
    let clock = ManualClock::new(at("2026-11-28T20:00:00Z"));
    let spool = open(&store, &clock);
    for (i, expr) in [
        "59 23 31 12 7",
        "0 0 1 1 0",
        "59 59 23 31 12 7",
        "0 0 1 JAN-DEC SUN-SAT",
    ]
    .into_iter()
    .enumerate()
    {
        spool
            .create_schedule(NewSchedule::new(format!("ok{i}"), expr, "t"))
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
    for (expr, want) in [
        ("60 * * * *", "minute 60 is out of range; use 0-59"),
        ("* 24 * * *", "hour 24 is out of range; use 0-23"),
        ("* * 32 * *", "day of month 32 is out of range; use 1-31"),
        ("* * 0 * *", "day of month 0 is out of range; use 1-31"),
        (
            "* * * 13 *",
            "month 13 is out of range; use 1-12 or JAN-DEC",
        ),
        ("* * * * 8", "day of week 8 is out of range; use 0-7"),
        ("60 * * * * *", "second 60 is out of range; use 0-59"),
    ] {
        let e = spool
            .create_schedule(NewSchedule::new("bad", expr, "t"))
            .unwrap_err();
        assert_eq!(e.code(), "INVALID_CRON", "{expr}");
        assert!(e.to_string().contains(want), "{expr}: {e}");
    }
}
