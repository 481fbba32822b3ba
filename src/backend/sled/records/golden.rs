//! Golden bytes: every stored record kind, as a fixed sample value and the exact bytes the
//! format gives it (`tests/fixtures/records/`). Decoding each fixture must give the sample,
//! and encoding the sample must give the fixture: a change of the disk format, on purpose
//! or not, fails here.
//!
//! The fixtures were written by the code of their first commit. To write them again (only
//! for a deliberate format change, with a new `FORMAT_VERSION`; move the old ones to
//! `records/v<N>/` first, with a test that they still decode, as `v1/` has):
//! `JOBSPOOL_WRITE_FIXTURES=1 cargo test --lib golden::write_fixtures -- --ignored`.

use std::collections::BTreeMap;

use crate::backend::codec::{self, keys, Stored};
use crate::backend::sled::journal::{self, Change, Entry};
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

fn journal_entry_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    journal::encode_entry(&mut out, 7, &journal_changes());
    out
}

fn journal_seal_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    journal::encode(&mut out, &Entry::Seal(8));
    out
}

/// Every fixture: file name and the bytes the current code gives its sample.
fn current() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("job_full.bin", codec::encode(&job_full()).unwrap()),
        ("job_empty.bin", codec::encode(&job_empty()).unwrap()),
        ("event_block.bin", codec::encode(&event_block()).unwrap()),
        (
            "schedule_full.bin",
            codec::encode(&schedule_full()).unwrap(),
        ),
        (
            "schedule_empty.bin",
            codec::encode(&schedule_empty()).unwrap(),
        ),
        ("queue_paused.bin", codec::encode(&true).unwrap()),
        ("dedupe.bin", id(1).as_bytes().to_vec()),
        ("meta_state.bin", codec::encode(&meta()).unwrap()),
        ("journal_entry.bin", journal_entry_bytes()),
        ("journal_seal.bin", journal_seal_bytes()),
    ]
}

#[test]
#[ignore = "writes the fixtures; run by hand for a deliberate format change"]
fn write_fixtures() {
    if std::env::var_os("JOBSPOOL_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in current() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

macro_rules! fixture {
    ($name:literal) => {
        &include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/records/",
            $name
        ))[..]
    };
}

/// Decoding `bytes` gives `expected`, and encoding `expected` gives `bytes`.
fn check<T>(tree: &'static str, key: &[u8], bytes: &[u8], expected: &T)
where
    T: PartialEq + std::fmt::Debug + Stored,
{
    let decoded: T = codec::decode(tree, key, bytes).expect("the fixture decodes");
    assert_eq!(&decoded, expected, "decoding the {tree} fixture");
    assert_eq!(
        codec::encode(expected).unwrap(),
        bytes,
        "encoding the {tree} sample gives the fixture's bytes"
    );
}

#[test]
fn job_records_match_their_fixtures() {
    check(
        "jobs",
        &keys::job(&id(1)),
        fixture!("job_full.bin"),
        &job_full(),
    );
    check(
        "jobs",
        &keys::job(&id(2)),
        fixture!("job_empty.bin"),
        &job_empty(),
    );
}

#[test]
fn event_block_matches_its_fixture() {
    check(
        "events",
        &keys::event(1),
        fixture!("event_block.bin"),
        &event_block(),
    );
}

#[test]
fn schedules_match_their_fixtures() {
    let key = keys::named(keys::SCHEDULE, "nightly");
    check(
        "schedules",
        &key,
        fixture!("schedule_full.bin"),
        &schedule_full(),
    );
    let key = keys::named(keys::SCHEDULE, "off");
    check(
        "schedules",
        &key,
        fixture!("schedule_empty.bin"),
        &schedule_empty(),
    );
}

#[test]
fn queue_setting_matches_its_fixture() {
    let key = keys::named(keys::QUEUE, "mail");
    check("queues", &key, fixture!("queue_paused.bin"), &true);
}

#[test]
fn meta_state_matches_its_fixture() {
    check(
        "meta",
        keys::META_STATE,
        fixture!("meta_state.bin"),
        &meta(),
    );
}

#[test]
fn dedupe_value_matches_its_fixture() {
    // The value is the holder's id, raw (not through the codec).
    let bytes = fixture!("dedupe.bin");
    assert_eq!(bytes, id(1).as_bytes());
    let key = [&[keys::DEDUPE][..], bytes].concat();
    assert_eq!(keys::id_of(&key), Some(id(1)));
}

macro_rules! fixture_v1 {
    ($name:literal) => {
        &include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/records/v1/",
            $name
        ))[..]
    };
}

/// Format 1 (fixed-width integers), written by builds before format 2: every record kind
/// still decodes to its sample, so a database those builds wrote opens.
#[test]
fn format_1_records_still_decode() {
    fn check_v1<T>(tree: &'static str, key: &[u8], bytes: &[u8], expected: &T)
    where
        T: PartialEq + std::fmt::Debug + Stored,
    {
        assert_eq!(bytes[0], 1, "a format 1 fixture");
        let decoded: T = codec::decode(tree, key, bytes).expect("the format 1 fixture decodes");
        assert_eq!(&decoded, expected, "decoding the format 1 {tree} fixture");
        assert!(
            codec::encode(expected).unwrap().len() < bytes.len() || bytes.len() <= 2,
            "format 2 is smaller"
        );
    }
    check_v1(
        "jobs",
        &keys::job(&id(1)),
        fixture_v1!("job_full.bin"),
        &job_full(),
    );
    check_v1(
        "jobs",
        &keys::job(&id(2)),
        fixture_v1!("job_empty.bin"),
        &job_empty(),
    );
    check_v1(
        "events",
        &keys::event(1),
        fixture_v1!("event_block.bin"),
        &event_block(),
    );
    let key = keys::named(keys::SCHEDULE, "nightly");
    check_v1(
        "schedules",
        &key,
        fixture_v1!("schedule_full.bin"),
        &schedule_full(),
    );
    let key = keys::named(keys::SCHEDULE, "off");
    check_v1(
        "schedules",
        &key,
        fixture_v1!("schedule_empty.bin"),
        &schedule_empty(),
    );
    let key = keys::named(keys::QUEUE, "mail");
    check_v1("queues", &key, fixture_v1!("queue_paused.bin"), &true);
    check_v1(
        "meta",
        keys::META_STATE,
        fixture_v1!("meta_state.bin"),
        &meta(),
    );
    // The index fields are read from either format alike.
    let v1 = crate::backend::records::JobIndex::decode(
        "jobs",
        &keys::job(&id(1)),
        fixture_v1!("job_full.bin"),
    )
    .unwrap();
    let v2 = codec::encode(&job_full()).unwrap();
    let v2 = crate::backend::records::JobIndex::decode("jobs", &keys::job(&id(1)), &v2).unwrap();
    assert_eq!(v1, v2);
}

#[test]
fn journal_entries_match_their_fixtures() {
    let bytes = fixture!("journal_entry.bin");
    assert_eq!(journal_entry_bytes(), bytes);
    let (len, crc) = bytes.split_at(4);
    assert_eq!(
        u32::from_be_bytes(len.try_into().unwrap()) as usize,
        bytes.len() - 8
    );
    let body = &crc[4..];
    assert_eq!(
        u32::from_be_bytes(crc[..4].try_into().unwrap()),
        crc32fast::hash(body)
    );
    assert_eq!(
        journal::decode_body(body),
        Some(Entry::Group(7, journal_changes()))
    );
    let seal = fixture!("journal_seal.bin");
    assert_eq!(journal_seal_bytes(), seal);
    assert_eq!(journal::decode_body(&seal[8..]), Some(Entry::Seal(8)));
}

#[test]
fn the_fixtures_are_what_the_code_writes() {
    // Belt and braces over the tests above: no fixture file is stale or missing.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
    for (name, bytes) in current() {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            bytes,
            "{name} differs from what the code writes"
        );
    }
}
