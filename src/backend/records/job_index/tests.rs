//! Unit tests of the parent module: the view accepts exactly what the full decode accepts,
//! and reads the same index fields.

use std::collections::BTreeMap;

use super::*;
use crate::model::clock::to_datetime;
use crate::model::job::{Backoff, Execution, LeaseState};

const T0: i64 = 1_795_896_000_000;

fn id(n: u8) -> JobId {
    let mut b = [0u8; 16];
    b[0] = 0x01;
    b[6] = 0x70;
    b[8] = 0x80;
    b[15] = n;
    JobId::from_bytes(b)
}

fn full() -> Job {
    let mut metadata = BTreeMap::new();
    metadata.insert("region".to_owned(), "eu".to_owned());
    metadata.insert("source".to_owned(), "index".to_owned());
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
        created_at: to_datetime(T0),
        updated_at: to_datetime(T0 + 2_500),
        scheduled_at: Some(to_datetime(T0 + 1_000)),
        started_at: Some(to_datetime(T0 + 2_000)),
        completed_at: Some(to_datetime(T0 + 2_400)),
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
                started_at: to_datetime(T0 + 1_100),
                completed_at: Some(to_datetime(T0 + 1_300)),
                duration_ms: Some(200),
                success: Some(false),
                error: Some("boom".into()),
                worker_id: Some("worker-1".into()),
                released: false,
            },
            Execution {
                attempt_number: 2,
                started_at: to_datetime(T0 + 2_000),
                completed_at: None,
                duration_ms: None,
                success: None,
                error: None,
                worker_id: Some("worker-2".into()),
                released: true,
            },
        ],
        backoff: Some(Backoff {
            initial: std::time::Duration::from_millis(500),
            multiplier: 2.0,
            max: std::time::Duration::from_secs(60),
            jitter: 0.1,
        }),
        lease: Some(LeaseState {
            token: 42,
            expires_ms: T0 + 32_000,
        }),
    }
}

/// A job with every optional field empty.
fn bare() -> Job {
    Job {
        id: id(2),
        status: JobStatus::Completed,
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
        ..full()
    }
}

/// The view's answer and the full decode's answer agree for `bytes`: both refuse it (with
/// the same error), or both accept it with the same index fields.
fn agree(bytes: &[u8]) -> bool {
    let key = codec::keys::job(&id(1));
    let full = codec::decode::<Job>("jobs", &key, bytes);
    let view = JobIndex::decode("jobs", &key, bytes);
    match (&full, &view) {
        (Ok(job), Ok(ix)) => {
            assert_eq!(*ix, JobIndex::of(job), "{bytes:?}");
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            false
        }
        _ => panic!("full {full:?} but view {view:?} for {bytes:?}"),
    }
}

#[test]
fn the_view_reads_what_the_full_decode_reads() {
    for job in [full(), bare()] {
        let bytes = codec::encode(&job).unwrap();
        assert!(agree(&bytes));
        assert_eq!(
            JobIndex::decode("jobs", b"j", &bytes).unwrap(),
            JobIndex::of(&job)
        );
    }
    let (f, b) = (full(), bare());
    let ix = JobIndex::of(&f);
    assert_eq!(ix.due_ms, T0 + 1_000);
    assert_eq!(ix.finished_ms, T0 + 2_400);
    assert_eq!(ix.lease_expires_ms, Some(T0 + 32_000));
    let ix = JobIndex::of(&b);
    assert_eq!(
        (ix.due_ms, ix.finished_ms, ix.lease_expires_ms),
        (T0, T0 + 2_500, None)
    );
}

#[test]
fn every_damaged_byte_is_refused_or_read_as_the_full_decode_reads_it() {
    // Format 2 as written now, and a format 1 record as older builds wrote it.
    let v1 = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/records/v1/job_full.bin"
    ))
    .to_vec();
    let records = [
        codec::encode(&full()).unwrap(),
        codec::encode(&bare()).unwrap(),
        v1,
    ];
    for good in records {
        let mut refused = 0;
        for i in 0..good.len() {
            for new in [0x00, 0xff, 0x80, 0x7f, good[i] ^ 1, good[i] ^ 0x40] {
                let mut bad = good.clone();
                bad[i] = new;
                refused += usize::from(!agree(&bad));
            }
            // Truncated, and one byte too many.
            assert!(!agree(&good[..i]));
        }
        let mut long = good.clone();
        long.push(0);
        assert!(!agree(&long));
        assert!(refused > 0);
    }
}

/// An `i64` as the record format writes one of this size (a time in ms, or beyond): bincode's
/// variable-length form of 9 bytes (the marker 253, then the zigzag value big-endian).
fn wide_i64(v: i64) -> [u8; 9] {
    let zigzag = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = [253u8; 9];
    out[1..].copy_from_slice(&zigzag.to_be_bytes());
    out
}

#[test]
fn a_timestamp_out_of_range_is_refused_with_the_full_decode_error() {
    let mut job = full();
    // Valid for the record type (any i64), out of range for a time: an execution's.
    let bytes = codec::encode(&job).unwrap();
    let started = wide_i64(T0 + 1_100);
    let at = bytes
        .windows(9)
        .position(|w| w == started)
        .expect("the first execution's start is in the record");
    let mut bad = bytes.clone();
    bad[at..at + 9].copy_from_slice(&wide_i64(i64::MAX));
    assert!(!agree(&bad));
    let err = JobIndex::decode("jobs", b"jx", &bad).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(err.to_string().contains("out of range"), "{err}");
    // And the job's own timestamps.
    job.executions.clear();
    let bytes = codec::encode(&job).unwrap();
    let created = wide_i64(T0);
    let at = bytes.windows(9).position(|w| w == created).unwrap();
    let mut bad = bytes.clone();
    bad[at..at + 9].copy_from_slice(&wide_i64(i64::MIN));
    assert!(!agree(&bad));
}
