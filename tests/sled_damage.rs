//! Damage to sled's own files (issue: "damage to sled's own files rolls the database back
//! without a word, or is reported as STORAGE"). A database holding acknowledged jobs, closed
//! cleanly, then bytes of sled's `db` file flipped: opening must either succeed with every
//! acknowledged job present, or fail with `CORRUPTION` (never `STORAGE` with sled's debug
//! text), and a failed open leaves every file byte-identical.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{db_path, tempdir};
use jobspool::{JobId, NewJob, Spool};

fn open(path: &Path) -> jobspool::Result<Spool> {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(path)
}

/// A new database with `n` acknowledged jobs, closed.
fn make_db(path: &Path, n: usize) -> Vec<JobId> {
    let spool = open(path).unwrap();
    let ids = (0..n)
        .map(|i| {
            spool
                .enqueue(NewJob::new("t", format!("{{\"n\":{i}}}").into_bytes()))
                .unwrap()
                .id
        })
        .collect();
    spool.close().unwrap();
    drop(spool);
    ids
}

/// Every file under `dir` with its bytes (the `holder` note excepted: it names the last
/// process that opened the database, and is not data).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().unwrap() != "holder" {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Flips 8 bytes at each fraction of the `db` file.
fn flip(path: &Path, at: &[f64]) {
    flip_n(path, at, 8);
}

/// Flips `n` bytes at each fraction of the `db` file.
fn flip_n(path: &Path, at: &[f64], n: usize) {
    let f = path.join("db");
    let mut bytes = std::fs::read(&f).unwrap();
    let len = bytes.len();
    for frac in at {
        let start = ((len as f64 * frac) as usize).min(len.saturating_sub(n));
        for b in &mut bytes[start..start + n] {
            *b ^= 0xff;
        }
    }
    std::fs::write(&f, bytes).unwrap();
}

/// Opens the damaged database: every acknowledged job is there, or `CORRUPTION` with a
/// message a person can act on and no file changed.
fn check(path: &Path, ids: &[JobId], what: &str) -> &'static str {
    let before = files(path);
    match open(path) {
        Ok(spool) => {
            let mut missing = Vec::new();
            for id in ids {
                match spool.get(*id) {
                    Ok(_) => {}
                    Err(e) if e.code() == jobspool::ErrorCode::Corruption => {
                        drop(spool);
                        return "corruption-on-read";
                    }
                    Err(e) => missing.push(format!("{id}: {e}")),
                }
            }
            assert!(
                missing.is_empty(),
                "{what}: opened with acknowledged jobs missing: {missing:?}"
            );
            let _ = spool.close();
            "ok"
        }
        Err(e) => {
            assert_eq!(
                e.code(),
                jobspool::ErrorCode::Corruption,
                "{what}: a damaged sled file must be CORRUPTION, got {e}"
            );
            let msg = e.to_string();
            assert!(!msg.contains("backtrace"), "{what}: sled debug text: {msg}");
            assert!(msg.contains("backup"), "{what}: {msg}");
            let after = files(path);
            let changed: Vec<_> = before
                .keys()
                .chain(after.keys())
                .filter(|p| before.get(*p) != after.get(*p))
                .map(|p| {
                    let (b, a) = (before.get(p), after.get(p));
                    let first = b
                        .zip(a)
                        .and_then(|(b, a)| b.iter().zip(a).position(|(x, y)| x != y));
                    format!(
                        "{} ({:?} -> {:?} bytes, first difference at {first:?})",
                        p.display(),
                        b.map(Vec::len),
                        a.map(Vec::len)
                    )
                })
                .collect();
            assert!(
                changed.is_empty(),
                "{what}: a failed open changed files: {changed:?}"
            );
            "corruption"
        }
    }
}

#[test]
fn sled_damage_at_a_third_and_a_half_is_corruption_not_a_silent_rollback() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path, 1);
    flip(&path, &[1.0 / 3.0, 0.5]);
    let outcome = check(&path, &ids, "8 bytes at 1/3 and 1/2");
    // Either way it must not have opened with the job missing (checked in `check`); a
    // second open sees the same.
    assert_eq!(check(&path, &ids, "reopen"), outcome);
}

#[test]
fn sled_damage_anywhere_is_never_a_silent_rollback_nor_storage() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0
    };
    let mut outcomes = BTreeMap::new();
    for round in 0..12 {
        let dir = tempdir();
        let path = db_path(&dir);
        let ids = make_db(&path, 1 + round % 4);
        let at: Vec<f64> = (0..1 + round % 2).map(|_| next()).collect();
        flip(&path, &at);
        let what = format!("round {round}, flipped at {at:?}");
        *outcomes.entry(check(&path, &ids, &what)).or_insert(0) += 1;
    }
    eprintln!("outcomes: {outcomes:?}");
}

/// A larger database (a few hundred jobs with 1 KiB payloads, several checkpoints), single
/// flipped bytes: sled's own read errors are `CORRUPTION` too, never `STORAGE` with its
/// debug text ("Read corrupted data at file offset None backtrace ()").
#[test]
fn sled_damage_single_bytes_in_a_larger_database_is_corruption_not_storage() {
    let dir = tempdir();
    let clean = db_path(&dir);
    let ids = {
        let spool = open(&clean).unwrap();
        let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(1000));
        let ids: Vec<JobId> = (0..300)
            .map(|_| {
                spool
                    .enqueue(NewJob::new("t", payload.clone().into_bytes()))
                    .unwrap()
                    .id
            })
            .collect();
        spool.close().unwrap();
        ids
    };
    let image = files(&clean);
    let mut outcomes = BTreeMap::new();
    for (round, frac) in [0.05, 0.2, 1.0 / 3.0, 0.41, 0.5, 0.63, 0.77, 0.9, 0.99]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("copy{round}"));
        for (p, bytes) in &image {
            let to = path.join(p.strip_prefix(&clean).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(to, bytes).unwrap();
        }
        flip_n(&path, &[frac], 1 + round % 2 * 7);
        let what = format!("one flip at {frac}");
        *outcomes.entry(check(&path, &ids, &what)).or_insert(0) += 1;
    }
    eprintln!("outcomes: {outcomes:?}");
}

/// The crash between sled's flush and the record's write leaves a record older than sled:
/// that must open with everything. A database without a record (an older version's) opens
/// unchecked and gets one at its first checkpoint.
#[test]
fn sled_damage_check_accepts_an_older_record_and_a_missing_one() {
    let dir = tempdir();
    let path = db_path(&dir);
    let mut ids = make_db(&path, 2);
    let spool = open(&path).unwrap();
    // As the open left it: the last clean close's record, no longer counting the jobs (the
    // database is about to change).
    let old_record = std::fs::read(path.join("checkpoint")).expect("close writes the record");
    ids.push(spool.enqueue(NewJob::new("t", b"{}".to_vec())).unwrap().id);
    spool.close().unwrap();
    drop(spool);
    // A crash after the close's sled flush, before its record was written.
    std::fs::write(path.join("checkpoint"), &old_record).unwrap();
    assert_eq!(check(&path, &ids, "older record"), "ok");

    std::fs::remove_file(path.join("checkpoint")).unwrap();
    let spool = open(&path).unwrap();
    ids.push(spool.enqueue(NewJob::new("t", b"{}".to_vec())).unwrap().id);
    spool.close().unwrap();
    drop(spool);
    assert!(
        path.join("checkpoint").exists(),
        "the first checkpoint writes a record"
    );
    assert_eq!(check(&path, &ids, "new record"), "ok");
    assert!(
        !std::fs::read_dir(&path).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("sledcheck.pre")),
        "the copies kept during open are gone after it"
    );
}

/// A checkpoint record that fails its crc is `CORRUPTION` naming it, files unchanged.
#[test]
fn sled_damage_to_the_checkpoint_record_itself_is_corruption() {
    let dir = tempdir();
    let path = db_path(&dir);
    let ids = make_db(&path, 1);
    let mut rec = std::fs::read(path.join("checkpoint")).unwrap();
    rec[14] ^= 0x10;
    std::fs::write(path.join("checkpoint"), rec).unwrap();
    assert_eq!(check(&path, &ids, "damaged record"), "corruption");
}
