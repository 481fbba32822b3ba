//! The key directory, compaction and the journal's segments over churn.

use super::*;

/// `live_bytes` once counted each value's weight (its length plus one, so that an empty
/// value keeps its segment): a byte too many a value in `Metrics::live_bytes`.
#[test]
fn live_bytes_counts_the_values_bytes_only() {
    let d = tempfile::tempdir().unwrap();
    let log = LogStore::new(d.path());
    let loc = |len| Loc {
        seg: 1,
        off: 0,
        len,
        crc: 0,
    };
    let (a, b) = (b"jaaaaaaaaaaaaaaaa", b"jbbbbbbbbbbbbbbbb");
    log.set(a, Some(loc(10)));
    log.set(b, Some(loc(0)));
    assert_eq!(log.live_bytes(), 10);
    log.set(a, Some(loc(4)));
    assert_eq!(log.live_bytes(), 4);
    log.set(a, None);
    log.set(b, None);
    assert_eq!(log.live_bytes(), 0);
}

#[test]
fn value_offsets_point_at_the_values_of_an_encoded_entry() {
    let changes: Vec<Change> = vec![
        (
            sled::IVec::from(&b"jaaaaaaaaaaaaaaaa"[..]),
            Some(sled::IVec::from(&b"rec"[..])),
        ),
        (sled::IVec::from(&b"x"[..]), None),
        (
            sled::IVec::from(&b"e00000001"[..]),
            Some(sled::IVec::from(&b"events!"[..])),
        ),
    ];
    let mut buf = vec![9u8; 5]; // the entry starts at offset 5
    super::super::journal::encode_entry(&mut buf, 7, &changes);
    let offs: Vec<_> = value_offsets(&changes).collect();
    assert_eq!(offs[1], None);
    let at = |o: usize, n: usize| &buf[5 + o..5 + o + n];
    assert_eq!(at(offs[0].unwrap(), 3), b"rec");
    assert_eq!(at(offs[2].unwrap(), 7), b"events!");
}

#[test]
fn churn_keeps_the_journal_near_its_live_values_and_every_value_reads_back() {
    use crate::backend::sled::SledBackend;
    use crate::backend::Backend;
    use crate::model::config::{Config, Retention};
    use crate::model::job::NewJob;
    use std::time::Duration;

    const SEG: u64 = 64 * 1024;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let clock = Arc::new(crate::model::clock::ManualClock::new(
        crate::model::clock::to_datetime(1_700_000_000_000),
    ));
    let cfg = Config {
        journal_segment_bytes: SEG,
        clock: clock.clone(),
        ..Config::default()
    };
    let b = SledBackend::open(&path, cfg.clone(), Arc::new(Quiet)).unwrap();
    // Long-lived jobs, written first: their segment must be compacted, not kept.
    let keep = b
        .enqueue(
            (0..50u8)
                .map(|i| NewJob::new("keep", vec![i; 500]))
                .collect(),
        )
        .unwrap();
    let gone = Retention {
        completed: Duration::ZERO,
        cancelled: Duration::ZERO,
        failed: Duration::ZERO,
        dead_letter: Duration::ZERO,
        events: Duration::ZERO,
    };
    let journal_bytes = || -> u64 {
        std::fs::read_dir(path.join(super::super::journal::DIR))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let mut written = 0;
    for _ in 0..40 {
        let jobs = b
            .enqueue(
                (0..100)
                    .map(|_| NewJob::new("t", vec![7u8; 1000]))
                    .collect(),
            )
            .unwrap();
        for e in &jobs {
            b.cancel(e.job.id, None).unwrap();
        }
        clock.advance_ms(1_000);
        b.prune(&gone).unwrap();
        b.maintain_journal().unwrap();
        written += 100 * 1000;
    }
    let sh = b.sh().unwrap();
    let (live, total) = (sh.log.live_bytes(), sh.log.segment_bytes());
    drop(sh);
    assert!(live >= 50 * 500, "the kept payloads are live: {live}");
    // Twice the live values plus the two segments of slack, the one being written
    // (preallocated) and one partly written.
    let bound = 2 * live + 4 * SEG;
    assert!(total <= bound, "{total} bytes of segments for {live} live");
    assert!(journal_bytes() <= bound, "{} on disk", journal_bytes());
    assert!(journal_bytes() < written / 10);
    b.close().unwrap();
    drop(b);
    let b = SledBackend::open(&path, cfg, Arc::new(Quiet)).unwrap();
    for e in &keep {
        let j = b.get(e.job.id).unwrap().unwrap();
        assert_eq!(j.payload, e.job.payload);
    }
    assert_eq!(b.stats().unwrap().total.pending, 50);
}

#[test]
fn reopening_goes_on_in_the_last_segment_and_cuts_a_torn_tail() {
    use crate::backend::sled::SledBackend;
    use crate::backend::Backend;
    use crate::model::config::Config;
    use crate::model::job::NewJob;
    use std::io::Write;

    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let segs = || super::super::journal::segments(&path.join(super::super::journal::DIR)).unwrap();
    let enqueue_one = |n: u8| {
        let b = SledBackend::open(&path, Config::default(), Arc::new(Quiet)).unwrap();
        b.enqueue(vec![NewJob::new("t", vec![n; 10])]).unwrap();
        let total = b.stats().unwrap().total.pending;
        b.close().unwrap();
        total
    };
    for n in 0..5 {
        assert_eq!(enqueue_one(n), u64::from(n) + 1);
    }
    assert_eq!(segs().len(), 1, "one segment for every open");
    // A torn entry after the last one, as a crash mid-append leaves it.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segs()[0].1)
        .unwrap();
    f.write_all(&[0, 0, 0, 40, 1, 2, 3, 4, 9, 9, 9, 9, 9])
        .unwrap();
    drop(f);
    assert_eq!(enqueue_one(5), 6);
    assert_eq!(enqueue_one(6), 7);
    assert_eq!(segs().len(), 1);
}

struct Quiet;
impl crate::backend::Observer for Quiet {
    fn committed(&self, _: &[crate::model::event::EventRecord]) {}
    fn work_available(&self) {}
}

/// Small segments, a manual clock, and a retention that prunes at once.
fn small(
    path: &Path,
) -> (
    crate::backend::sled::SledBackend,
    Arc<crate::model::clock::ManualClock>,
) {
    let clock = Arc::new(crate::model::clock::ManualClock::new(
        crate::model::clock::to_datetime(1_700_000_000_000),
    ));
    let cfg = crate::model::config::Config {
        journal_segment_bytes: 64 * 1024,
        clock: clock.clone(),
        ..crate::model::config::Config::default()
    };
    let b = crate::backend::sled::SledBackend::open(path, cfg, Arc::new(Quiet)).unwrap();
    (b, clock)
}

fn churn(
    b: &crate::backend::sled::SledBackend,
    clock: &crate::model::clock::ManualClock,
    rounds: usize,
) {
    use crate::backend::Backend;
    use std::time::Duration;
    let gone = crate::model::config::Retention {
        completed: Duration::ZERO,
        cancelled: Duration::ZERO,
        failed: Duration::ZERO,
        dead_letter: Duration::ZERO,
        events: Duration::ZERO,
    };
    for _ in 0..rounds {
        let jobs = b
            .enqueue(
                (0..100)
                    .map(|_| crate::model::job::NewJob::new("t", vec![7u8; 1000]))
                    .collect(),
            )
            .unwrap();
        for e in &jobs {
            b.cancel(e.job.id, None).unwrap();
        }
        clock.advance_ms(1_000);
        b.prune(&gone).unwrap();
        b.maintain_journal().unwrap();
    }
}

#[test]
fn an_empty_payload_reads_back_through_churn_and_compaction() {
    use crate::backend::Backend;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let (b, clock) = small(&path);
    let id = b
        .enqueue(vec![crate::model::job::NewJob::new("keep", Vec::new())])
        .unwrap()[0]
        .job
        .id;
    // Its record moves on to later segments (claimed, released); its empty payload
    // stays where it was written, and is all that keeps that segment live.
    churn(&b, &clock, 3);
    let req = crate::model::types::ClaimRequest {
        queues: Vec::new(),
        exclude_queues: Vec::new(),
        kinds: vec!["keep".into()],
        max: 1,
        lease_ms: 60_000,
        worker_id: "w".into(),
    };
    let claimed = b.claim(&req).unwrap();
    b.release(id, claimed[0].lease.token).unwrap();
    churn(&b, &clock, 30);
    // Every value still reads (the segment was compacted, not dropped).
    let got = b.get(id).unwrap().unwrap();
    assert!(got.payload.is_empty());
    b.close().unwrap();
}

#[test]
fn regression_an_empty_value_keeps_its_segment() {
    let d = tempfile::tempdir().unwrap();
    let log = LogStore::new(d.path());
    for seg in [1, 10] {
        let p = d.path().join(format!("s{seg}"));
        std::fs::write(&p, b"").unwrap();
        log.add_segment(seg, &p, 100).unwrap();
    }
    let empty = Loc {
        seg: 1,
        off: 0,
        len: 0,
        crc: crc32fast::hash(b""),
    };
    log.set(
        &keys::payload(&crate::model::job::JobId::from_bytes([3; 16])),
        Some(empty),
    );
    // Segment 1 holds only an empty value: still live, so it stays.
    assert_eq!(log.retire(u64::MAX / 2).delete, Vec::<u64>::new());
    log.set(
        &keys::payload(&crate::model::job::JobId::from_bytes([3; 16])),
        None,
    );
    assert_eq!(log.retire(u64::MAX / 2).delete, vec![1]);
}

#[test]
fn regression_a_journal_missing_its_last_segments_is_corruption() {
    use crate::backend::Backend;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let (b, _) = small(&path);
    for _ in 0..5 {
        b.enqueue(
            (0..100)
                .map(|_| crate::model::job::NewJob::new("t", vec![1u8; 1000]))
                .collect(),
        )
        .unwrap();
    }
    b.close().unwrap();
    drop(b);
    let dir = path.join(super::super::journal::DIR);
    let segs = super::super::journal::segments(&dir).unwrap();
    assert!(segs.len() > 2, "{segs:?}");
    std::fs::remove_file(&segs.last().unwrap().1).unwrap();
    let err = crate::backend::sled::SledBackend::open(
        &path,
        crate::model::config::Config::default(),
        Arc::new(Quiet),
    )
    .err()
    .expect("the journal's end is missing");
    assert_eq!(
        err.code(),
        crate::model::error::ErrorCode::Corruption,
        "{err}"
    );
    assert!(
        err.to_string().contains("segments at the journal's end"),
        "{err}"
    );
}

#[test]
fn resident_keys_are_exactly_the_job_payload_and_event_keys() {
    assert!(resident(&keys::job(&crate::model::job::JobId::from_bytes(
        [1; 16]
    ))));
    assert!(resident(&keys::payload(
        &crate::model::job::JobId::from_bytes([1; 16])
    )));
    assert!(resident(&keys::event(5)));
    assert!(!resident(b"mstate"));
    assert!(!resident(&keys::named(keys::DEDUPE, "k")));
    assert!(!resident(b"j"));
}
