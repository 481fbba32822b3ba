//! Unit tests of the parent module: loading the job records on two threads.

use super::*;
use crate::model::clock::to_datetime;
use crate::model::job::{Job, JobId, JobStatus, LeaseState, NewJob};

/// A job of the mixed set: `n` picks its status, queue, type and times.
fn job(st: &mut State, n: u64, at_ms: i64) -> Job {
    let status = JobStatus::ALL[(n % 6) as usize];
    let done = status.is_terminal();
    let id = st.next_id(at_ms);
    let new = NewJob::new(format!("k{}", n % 2), vec![])
        .queue(format!("q{}", n % 3))
        .priority((n % 5) as i32 - 2);
    Job {
        version: "1".into(),
        status,
        updated_at: to_datetime(at_ms + 5),
        scheduled_at: (n % 4 == 0).then(|| to_datetime(at_ms + (n % 7) as i64 * 1_000)),
        completed_at: (done && n % 3 == 0).then(|| to_datetime(at_ms + 3)),
        lease: (status == JobStatus::Running && n % 5 != 0).then(|| LeaseState {
            token: n,
            expires_ms: at_ms + 30_000,
        }),
        ..crate::backend::rules::new_job(new, id, at_ms, 3)
    }
}

/// A temporary tree holding `count` job records (ids spread over time, then a burst in
/// one millisecond), and the state `apply` builds from the same jobs at `now`.
fn stored(count: u64, now: i64) -> (sled::Db, Vec<JobId>, State) {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut ids = Vec::new();
    let mut expected = State::new(1);
    let mut gen = State::new(2);
    for n in 0..count {
        let at = if n < count / 2 {
            1_000 + n as i64 * 37
        } else {
            900_000
        };
        let j = job(&mut gen, n, at);
        db.insert(keys::job(&j.id), codec::encode(&j).unwrap())
            .unwrap();
        expected.apply(None, Some(&j), now);
        expected.last_id = expected.last_id.max(j.id.0.as_u128());
        ids.push(j.id);
    }
    (db, ids, expected)
}

#[test]
fn loading_gives_the_state_apply_gives() {
    let now = 1_000 + 3_000 * 37;
    let (db, _, expected) = stored(5_000, now);
    // Other keys around the jobs are not read as jobs.
    db.insert(b"mstate", &[1]).unwrap();
    db.insert(b"p\x01", &[1]).unwrap();
    let mut st = State::new(3);
    load_jobs(&db, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    assert_eq!(st.digest, expected.digest);
    assert_eq!(st.digest.count, 5_000);
    assert_eq!(st.stats(), expected.stats());

    // One job, and none.
    let (db, _, expected) = stored(1, now);
    let mut st = State::new(3);
    load_jobs(&db, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    let empty = sled::Config::new().temporary(true).open().unwrap();
    let mut st = State::new(3);
    load_jobs(&empty, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), State::new(3).snapshot());
}

#[test]
fn the_first_damaged_record_in_id_order_is_reported() {
    let (db, ids, _) = stored(20_000, 5_000);
    // Damaged far apart: the first is reported, whichever thread reads what first.
    for n in [19_000, 7_000] {
        db.insert(keys::job(&ids[n]), &[codec::FORMAT_VERSION, 0xff][..])
            .unwrap();
    }
    for _ in 0..5 {
        let err = load_jobs(&db, &mut State::new(3), 5_000).unwrap_err();
        assert_eq!(err.code(), "CORRUPTION");
        let key = codec::show_key(&keys::job(&ids[7_000]));
        assert!(err.to_string().contains(&key), "{err}");
    }
    // Two neighbouring ranges (the ids span 64 s: a range is about 1 s) of many records,
    // damaged at the end of the first and the start of the second: the two threads read
    // them at once, the second fails first, and still the first one's damage is reported.
    let db = sled::Config::new().temporary(true).open().unwrap();
    let mut gen = State::new(2);
    let mut ids = Vec::new();
    for (n, at) in [(1, 1_000), (20_000, 11_500), (20_000, 12_500), (1, 65_000)] {
        for i in 0..n {
            let j = job(&mut gen, i, at);
            db.insert(keys::job(&j.id), codec::encode(&j).unwrap())
                .unwrap();
            ids.push(j.id);
        }
    }
    for n in [20_000, 20_001] {
        db.insert(keys::job(&ids[n]), &[codec::FORMAT_VERSION, 0xff][..])
            .unwrap();
    }
    for _ in 0..3 {
        let err = load_jobs(&db, &mut State::new(3), 5_000).unwrap_err();
        let key = codec::show_key(&keys::job(&ids[20_000]));
        assert!(err.to_string().contains(&key), "{err}");
    }

    // A key too short for an id (so no bounds to cut ranges at): still read, and reported.
    let (db, _, _) = stored(100, 5_000);
    db.insert([keys::JOB, 1], &[0u8][..]).unwrap();
    let err = load_jobs(&db, &mut State::new(3), 5_000).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(err.to_string().contains("j/01"), "{err}");
}

/// The storage format marker: a format 1 database is moved to the current format (its
/// records still read); a newer format is refused as `STORAGE` saying to upgrade (it is not
/// damage); a marker that is no format at all is `CORRUPTION`.
#[test]
fn the_format_marker_upgrades_format_1_and_refuses_newer_or_damaged_ones() {
    let now = 5_000;
    let (db, _, expected) = stored(10, now);
    db.insert(b"mformat", &[1u8][..]).unwrap();
    let mut st = State::new(3);
    load(&db, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    assert_eq!(
        db.get(b"mformat").unwrap().unwrap().as_ref(),
        [codec::FORMAT_VERSION]
    );
    db.insert(b"mformat", &[codec::FORMAT_VERSION + 1][..])
        .unwrap();
    let err = load(&db, &mut State::new(3), now).unwrap_err();
    assert_eq!(err.code(), "STORAGE", "{err}");
    assert!(err.to_string().contains("upgrade jobspool"), "{err}");
    db.insert(b"mformat", &[2u8, 0][..]).unwrap();
    let err = load(&db, &mut State::new(3), now).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
}
