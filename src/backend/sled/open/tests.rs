//! Unit tests of the parent module: loading the job records from the journal's segments,
//! the format marker.

use super::jobs::load_jobs;
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

/// A temporary journal holding `count` job records (ids spread over time, then a burst in
/// one millisecond) in small segments, the directory of it, and the state `apply` builds
/// from the same jobs at `now`. `damage` replaces the records of those indexes with bytes
/// that do not decode.
fn stored(
    count: u64,
    now: i64,
    damage: &[usize],
) -> (tempfile::TempDir, LogStore, Vec<JobId>, State) {
    let d = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(LogStore::new(d.path()));
    let mut journal = journal::Journal::create(d.path(), 1, 64 * 1024, 0o600, log.clone()).unwrap();
    let mut ids = Vec::new();
    let mut expected = State::new(1);
    let mut gen = State::new(2);
    let mut group = Vec::new();
    for n in 0..count {
        let at = if n < count / 2 {
            1_000 + n as i64 * 37
        } else {
            900_000
        };
        let j = job(&mut gen, n, at);
        let v: sled::IVec = if damage.contains(&(n as usize)) {
            vec![codec::FORMAT_VERSION, 0xff].into()
        } else {
            expected.apply(None, Some(&j), now);
            expected.last_id = expected.last_id.max(j.id.0.as_u128());
            codec::encode(&j).unwrap().into()
        };
        group.push((keys::job(&j.id).to_vec().into(), Some(v)));
        if group.len() == 50 || n + 1 == count {
            let lsn = journal.next_lsn();
            journal.append(&group).unwrap();
            log.apply_group(lsn, &group).unwrap();
            group.clear();
        }
        ids.push(j.id);
    }
    drop(journal);
    let log = std::sync::Arc::try_unwrap(log).ok().unwrap();
    (d, log, ids, expected)
}

#[test]
fn loading_gives_the_state_apply_gives() {
    let now = 1_000 + 3_000 * 37;
    let (_d, log, _, expected) = stored(5_000, now, &[]);
    let mut st = State::new(3);
    load_jobs(&log, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    assert_eq!(st.digest, expected.digest);
    assert_eq!(st.digest.count, 5_000);
    assert_eq!(st.stats(), expected.stats());

    // One job, and none.
    let (_d, log, _, expected) = stored(1, now, &[]);
    let mut st = State::new(3);
    load_jobs(&log, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    let (_d, log, _, _) = stored(0, now, &[]);
    let mut st = State::new(3);
    load_jobs(&log, &mut st, now).unwrap();
    assert_eq!(st.snapshot(), State::new(3).snapshot());
}

#[test]
fn a_damaged_record_is_reported_by_its_key() {
    let (_d, log, ids, _) = stored(2_000, 5_000, &[700, 1_900]);
    let err = load_jobs(&log, &mut State::new(3), 5_000).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    let key = codec::show_key(&keys::job(&ids[700]));
    assert!(err.to_string().contains(&key), "{err}");
}

#[test]
fn a_record_whose_segment_bytes_changed_is_corruption_not_a_misread() {
    let (d, log, ids, _) = stored(300, 5_000, &[]);
    let loc = log.loc(&keys::job(&ids[10])).unwrap();
    let path = d
        .path()
        .join(journal::DIR)
        .join(journal::segment_name(loc.seg));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.off as usize + 3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_jobs(&log, &mut State::new(3), 5_000).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(err.to_string().contains("checksum"), "{err}");
    let err = log.get(&keys::job(&ids[10])).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
}

/// The storage format marker: formats 1 and 2 are read (and moved), a newer format is
/// refused as `STORAGE` saying to upgrade (it is not damage); a marker that is no format
/// at all is `CORRUPTION`.
#[test]
fn the_format_marker_refuses_newer_or_damaged_ones() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    assert_eq!(store_format(&db).unwrap(), None);
    for f in 1..=STORE_FORMAT {
        db.insert(b"mformat", &[f][..]).unwrap();
        assert_eq!(store_format(&db).unwrap(), Some(f));
    }
    db.insert(b"mformat", &[STORE_FORMAT + 1][..]).unwrap();
    let err = store_format(&db).unwrap_err();
    assert_eq!(err.code(), "STORAGE", "{err}");
    assert!(err.to_string().contains("upgrade jobspool"), "{err}");
    db.insert(b"mformat", &[2u8, 0][..]).unwrap();
    let err = store_format(&db).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
}

/// A journal where jobs change after they are written: every third gets a later version
/// (completed), every fifth is removed, every seventh has a first version that does not
/// decode with a good one in a later entry, every eleventh a damaged version then a
/// removal; the jobs of queue `gone` are all removed. Also the state `apply` builds from
/// the same changes.
fn churned(count: u64, now: i64) -> (tempfile::TempDir, LogStore, State) {
    let d = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(LogStore::new(d.path()));
    let mut journal = journal::Journal::create(d.path(), 1, 64 * 1024, 0o600, log.clone()).unwrap();
    let mut expected = State::new(1);
    let mut gen = State::new(2);
    let mut write = |group: &[(sled::IVec, Option<sled::IVec>)]| {
        let lsn = journal.next_lsn();
        journal.append(group).unwrap();
        log.apply_group(lsn, group).unwrap();
    };
    let bad: sled::IVec = vec![codec::FORMAT_VERSION, 0xff].into();
    let mut jobs = Vec::new();
    for chunk in 0..count.div_ceil(40) {
        let mut group = Vec::new();
        for n in chunk * 40..((chunk + 1) * 40).min(count) {
            let mut j = job(&mut gen, n, 1_000 + n as i64 * 11);
            if n % 13 == 0 {
                j.queue = "gone".into();
            }
            let key: sled::IVec = keys::job(&j.id).to_vec().into();
            let v: sled::IVec = codec::encode(&j).unwrap().into();
            group.push((
                key,
                Some(if n % 7 == 0 || n % 11 == 0 {
                    bad.clone()
                } else {
                    v
                }),
            ));
            jobs.push(j);
        }
        write(&group);
    }
    // The later changes, in other entries (and segments).
    let mut group = Vec::new();
    for (n, j) in jobs.iter().enumerate() {
        let key: sled::IVec = keys::job(&j.id).to_vec().into();
        let removed = n % 5 == 0 || n % 11 == 0 || n % 13 == 0;
        if removed {
            group.push((key, None));
        } else if n % 3 == 0 {
            let done = Job {
                status: JobStatus::Completed,
                lease: None,
                completed_at: Some(to_datetime(now - 1)),
                updated_at: to_datetime(now - 1),
                ..j.clone()
            };
            expected.apply(None, Some(&done), now);
            group.push((key, Some(codec::encode(&done).unwrap().into())));
        } else {
            expected.apply(None, Some(j), now);
            if n % 7 == 0 {
                group.push((key, Some(codec::encode(j).unwrap().into())));
            }
        }
        if !removed {
            expected.last_id = expected.last_id.max(j.id.0.as_u128());
        }
        if group.len() == 30 {
            write(&group);
            group.clear();
        }
    }
    write(&group);
    drop(journal);
    let log = std::sync::Arc::try_unwrap(log).ok().unwrap();
    (d, log, expected)
}

/// The state from the job records `scan_jobs` gathers from the journal; the same (or the
/// same error) when it drops superseded versions from its batch every few entries.
fn scanned(d: &Path, now: i64) -> Result<State> {
    let mut segments = Vec::new();
    journal::scan::plan_each(d, false, None, |seg| {
        segments.push(seg);
        Ok(())
    })?;
    let often = jobs::scan_jobs_compacting_at(segments.clone(), 64).map(|b| state_of(b, now));
    let once = jobs::scan_jobs(segments).map(|b| state_of(b, now));
    match (&often, &once) {
        (Ok(a), Ok(b)) => assert_eq!(a.snapshot(), b.snapshot()),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("compacting midway changed the outcome: {often:?} / {once:?}"),
    }
    once
}

fn state_of(batch: crate::backend::sled::state::Batch, now: i64) -> State {
    let mut st = State::new(3);
    let mut ix = crate::backend::sled::state::Indexer::default();
    st.index_batch(&mut ix, batch, now);
    st.finish_index(ix);
    st
}

#[test]
fn scanning_the_journal_gives_the_state_apply_gives_and_loading_gives() {
    let now = 1_000 + 3_000 * 11;
    let (d, log, expected) = churned(3_000, now);
    let st = scanned(d.path(), now).unwrap();
    assert_eq!(st.snapshot(), expected.snapshot());
    assert_eq!(st.digest, expected.digest);
    let removed = (0..3_000).filter(|n| n % 5 == 0 || n % 11 == 0 || n % 13 == 0);
    assert_eq!(st.digest.count, 3_000 - removed.count() as u64);
    assert!(
        !st.snapshot().contains("gone"),
        "a queue of removed jobs only"
    );
    assert_eq!(st.stats(), expected.stats());
    let mut loaded = State::new(3);
    load_jobs(&log, &mut loaded, now).unwrap();
    assert_eq!(loaded.snapshot(), st.snapshot());

    // The mixed set of `stored`, and an empty journal.
    let (d, _, _, expected) = stored(2_000, now, &[]);
    assert_eq!(
        scanned(d.path(), now).unwrap().snapshot(),
        expected.snapshot()
    );
    let (d, _, _, _) = stored(0, now, &[]);
    assert_eq!(
        scanned(d.path(), now).unwrap().snapshot(),
        State::new(3).snapshot()
    );
}

#[test]
fn scanning_reports_a_damaged_latest_record_by_its_key() {
    // (Of two, the lower id.)
    let (d, _, ids, _) = stored(2_000, 5_000, &[1_900, 700]);
    let err = scanned(d.path(), 5_000).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    let key = codec::show_key(&keys::job(&ids[700]));
    assert!(err.to_string().contains(&key), "{err}");
}

#[test]
fn scanning_reports_a_record_stored_under_another_jobs_key() {
    let (d, _, ids, _) = stored(300, 5_000, &[]);
    let mut gen = State::new(9);
    let other = job(&mut gen, 1, 1_000);
    let log = std::sync::Arc::new(LogStore::new(d.path()));
    let plan = journal::scan::plan(d.path(), false, None).unwrap();
    let next = plan.last_lsn.unwrap() + 1;
    let mut journal = journal::Journal::create(d.path(), next, 64 * 1024, 0o600, log).unwrap();
    let key: sled::IVec = keys::job(&ids[40]).to_vec().into();
    journal
        .append(&[(key, Some(codec::encode(&other).unwrap().into()))])
        .unwrap();
    drop(journal);
    let err = scanned(d.path(), 5_000).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(
        err.to_string()
            .contains(&codec::show_key(&keys::job(&ids[40]))),
        "{err}"
    );
    assert!(err.to_string().contains("job "), "{err}");
}
