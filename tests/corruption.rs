//! Corrupt records (`CORRUPTION`): a stored record that fails to decode is
//! a typed error naming the tree and the key; never a panic or an unbounded allocation.
//!
//! Records are damaged on disk: a job record (`b'j'` + the 16 UUID bytes) or an event block
//! (`b'e'` + the big-endian seq) by a later valid journal entry giving it other bytes,
//! anything else by opening the database directory with `sled` directly.

mod common;

use std::path::Path;

use common::{db_path, job_key, raw_sled, tempdir};
use jobspool::{JobId, NewJob, Spool};

/// A database with three jobs, closed; returns the ids.
fn make_db(path: &Path) -> Vec<JobId> {
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(path)
        .unwrap();
    let ids = (0..3)
        .map(|i| {
            spool
                .enqueue(
                    NewJob::new("t", format!("{{\"n\":{i}}}").into_bytes())
                        .dedupe_key(format!("k{i}")),
                )
                .unwrap()
                .id
        })
        .collect();
    spool.close().unwrap();
    drop(spool);
    ids
}

/// Replaces the value under `key` with what `f` makes of the old value: job records and
/// event blocks in the journal (a later, valid entry), the rest in sled.
fn overwrite(path: &Path, key: &[u8], f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    if matches!(key.first(), Some(b'j' | b'e' | b'p')) {
        let old = common::journal_value(path, key)
            .0
            .expect("the record to corrupt exists");
        common::journal_put(path, key, &f(old));
        return;
    }
    let db = raw_sled(path);
    let old = db
        .get(key)
        .unwrap()
        .expect("the record to corrupt exists")
        .to_vec();
    db.insert(key, f(old)).unwrap();
    db.flush().unwrap();
    drop(db);
}

fn open_err(path: &Path) -> jobspool::Error {
    match Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(path)
    {
        Ok(_) => panic!("open must fail on a corrupt job record"),
        Err(e) => e,
    }
}

fn assert_job_corruption(path: &Path, id: JobId) -> String {
    let err = open_err(path);
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    assert_eq!(err.http_status(), 500);
    let msg = err.to_string();
    assert!(msg.contains("jobs"), "names the tree: {msg}");
    assert!(msg.contains(&id.to_string()), "names the job id: {msg}");
    // Opening again gives the same answer (nothing half-repaired, no lock left behind).
    let again = open_err(path);
    assert_eq!(again.code(), "CORRUPTION");
    msg
}

#[test]
fn garbage_job_record_fails_open_with_corruption_naming_tree_and_id() {
    // Format 1, then 0xff: every length prefix claims ~2^64 bytes. Format 2, then 0xff: no
    // valid integer marker.
    for format in [1u8, 2] {
        let dir = tempdir();
        let path = db_path(&dir);
        let ids = make_db(&path);
        overwrite(&path, &job_key(ids[1]), |_| {
            let mut v = vec![format];
            v.extend_from_slice(&[0xff; 64]);
            v
        });
        assert_job_corruption(&path, ids[1]);
    }
}

#[test]
fn huge_length_prefix_in_job_record_is_corruption_not_an_allocation() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    // A record's first field (the id) is length-prefixed: a claim of 2^62 bytes there, in
    // format 2 (the marker 253 and 8 bytes) and in format 1 (8 bytes).
    overwrite(&path, &job_key(ids[0]), |old| {
        assert_eq!(old[0], 2, "written in format 2");
        let mut v = vec![2u8, 253];
        v.extend_from_slice(&(1u64 << 62).to_be_bytes());
        v.extend_from_slice(&[0xab; 16]);
        v
    });
    assert_job_corruption(&path, ids[0]);
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[0]), |_| {
        let mut v = vec![1u8];
        v.extend_from_slice(&(1u64 << 62).to_be_bytes());
        v.extend_from_slice(&[0xab; 16]);
        v
    });
    assert_job_corruption(&path, ids[0]);
}

#[test]
fn empty_job_record_fails_open_with_corruption_naming_tree_and_id() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[2]), |_| Vec::new());
    let msg = assert_job_corruption(&path, ids[2]);
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn wrong_version_byte_job_record_fails_open_with_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[0]), |_| vec![9]);
    let msg = assert_job_corruption(&path, ids[0]);
    assert!(msg.contains("version 9"), "{msg}");
}

#[test]
fn wrong_version_byte_in_front_of_a_valid_body_fails_open_with_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[1]), |mut old| {
        old[0] = 9;
        old
    });
    let msg = assert_job_corruption(&path, ids[1]);
    assert!(msg.contains("version 9"), "{msg}");
}

#[test]
fn truncated_job_record_fails_open_with_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[1]), |old| old[..old.len() / 2].to_vec());
    assert_job_corruption(&path, ids[1]);
}

#[test]
fn trailing_bytes_after_a_job_record_fail_open_with_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path);
    overwrite(&path, &job_key(ids[2]), |mut old| {
        old.extend_from_slice(b"junk");
        old
    });
    assert_job_corruption(&path, ids[2]);
}

#[test]
fn corrupt_event_record_is_corruption_naming_the_events_tree() {
    let dir = tempdir();
    let path = db_path(&dir);
    make_db(&path);
    let mut key = vec![b'e'];
    key.extend_from_slice(&2u64.to_be_bytes());
    overwrite(&path, &key, |_| vec![1, 0xff, 0xff, 0xff]);
    // Open does not decode the log, but reading it must report the bad record.
    let spool = Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(&path)
        .unwrap();
    let first = spool.events_since(0, 1).unwrap();
    assert_eq!(first.len(), 1, "the record before the bad one is readable");
    let err = spool.events_since(0, 10).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("events"), "names the tree: {msg}");
    assert!(msg.contains("e/2"), "names the key: {msg}");
    // The job data itself is intact.
    assert_eq!(spool.stats().unwrap().total.pending, 3);
}

#[test]
fn corrupt_meta_state_fails_open_with_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    make_db(&path);
    overwrite(&path, b"mstate", |_| vec![1, 0xff]);
    let err = open_err(&path);
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    assert!(err.to_string().contains("meta"), "{err}");
}

#[test]
fn a_corrupt_record_in_either_half_of_the_id_range_fails_open() {
    // Open reads the lower and upper halves of the id range on two threads: a bad record
    // in either is reported, by the thread that found it.
    for which in [0, 2] {
        let dir = tempdir();
        let path = db_path(&dir);
        let ids = make_db(&path);
        overwrite(&path, &job_key(ids[which]), |_| vec![1u8, 0xff, 0xff]);
        assert_job_corruption(&path, ids[which]);
    }
}

#[test]
fn regression_a_damaged_checkpoint_record_is_named_once_with_what_to_do() {
    let dir = tempdir();
    let path = db_path(&dir);
    make_db(&path);
    let record = path.join("checkpoint");
    let mut bytes = std::fs::read(&record).unwrap();
    bytes[14] ^= 1;
    std::fs::write(&record, bytes).unwrap();
    let err = open_err(&path);
    let msg = err.to_string();
    assert_eq!(err.code(), jobspool::ErrorCode::Corruption, "{msg}");
    assert_eq!(msg.matches("nothing was changed").count(), 1, "{msg}");
    assert!(msg.contains("moving"), "{msg}");
    assert!(!msg.contains("storage engine's files"), "{msg}");
    // Moved aside as the message says, the database opens with its jobs.
    std::fs::rename(&record, path.join("checkpoint.damaged")).unwrap();
    let spool = Spool::open(&path).unwrap();
    assert_eq!(spool.stats().unwrap().total.pending, 3);
}

#[test]
fn regression_a_missing_sled_conf_is_not_database_not_found() {
    let dir = tempdir();
    let path = db_path(&dir);
    make_db(&path);
    std::fs::remove_file(path.join("conf")).unwrap();
    let spool = Spool::builder()
        .create_if_missing(false)
        .open(&path)
        .unwrap();
    assert_eq!(spool.stats().unwrap().total.pending, 3);
}

#[test]
fn regression_a_missing_sled_data_file_is_corruption_not_database_not_found() {
    for create in [false, true] {
        let dir = tempdir();
        let path = db_path(&dir);
        make_db(&path);
        std::fs::remove_file(path.join("db")).unwrap();
        let err = Spool::builder()
            .create_if_missing(create)
            .open(&path)
            .expect_err("sled's data file is gone");
        assert_eq!(err.code(), jobspool::ErrorCode::Corruption, "{err}");
        assert!(err.to_string().contains("is missing"), "{err}");
        // Replaced by a directory: the same.
        std::fs::create_dir(path.join("db")).unwrap();
        let err = Spool::builder()
            .create_if_missing(create)
            .open(&path)
            .expect_err("sled's data file is a directory");
        assert_eq!(err.code(), jobspool::ErrorCode::Corruption, "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
