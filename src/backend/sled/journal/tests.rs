//! Tests of the journal: encoding, appends, rolls and seals, torn entries, replay.

use super::*;

/// A key directory no test here reads (the journal only tells it where entries went).
fn detached() -> std::sync::Arc<crate::backend::sled::logstore::LogStore> {
    std::sync::Arc::new(crate::backend::sled::logstore::LogStore::new(Path::new(
        ".",
    )))
}

fn change(k: &str, v: Option<&str>) -> Change {
    (k.as_bytes().into(), v.map(|v| v.as_bytes().into()))
}

fn collect(dir: &Path) -> (u64, Vec<Vec<Change>>) {
    let mut got = Vec::new();
    let n = replay(dir, |c| {
        got.push(c);
        Ok(())
    })
    .unwrap();
    (n, got)
}

/// An observer for the tests that open a database: nothing to tell anyone.
struct Quiet;

impl crate::backend::Observer for Quiet {
    fn committed(&self, _: &[crate::model::event::EventRecord]) {}
    fn work_available(&self) {}
}

fn only_segment(dir: &Path) -> PathBuf {
    let segs = segments(&dir.join(DIR)).unwrap();
    assert_eq!(segs.len(), 1);
    segs[0].1.clone()
}

#[test]
fn entries_round_trip_in_order() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("a", Some("1")), change("b", None)])
        .unwrap();
    j.append(&[change("c", Some(""))]).unwrap();
    let (n, got) = collect(d.path());
    assert_eq!(n, 2);
    assert_eq!(got[0], vec![change("a", Some("1")), change("b", None)]);
    assert_eq!(got[1], vec![change("c", Some(""))]);
    // The segment is preallocated: entries, then zeros.
    let len = std::fs::metadata(only_segment(d.path())).unwrap().len();
    assert_eq!(len, SEGMENT_BYTES);
}

fn three_entries() -> (tempfile::TempDir, PathBuf, Vec<u8>, usize) {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    for i in 0..3 {
        j.append(&[change(&format!("k{i}"), Some("v"))]).unwrap();
    }
    let path = only_segment(d.path());
    let full = std::fs::read(&path).unwrap();
    let entry = j.bytes as usize / 3;
    (d, path, full, entry)
}

fn corruption_at(dir: &Path) -> String {
    let err = replay(dir, |_| {
        panic!("nothing may be applied from a damaged journal")
    })
    .unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    err.to_string()
}

#[test]
fn a_torn_tail_ends_the_journal() {
    let (d, path, full, entry) = three_entries();
    // Zero the last entry's final bytes (a torn write): two survive.
    let mut torn = full.clone();
    torn[3 * entry - 3..3 * entry].fill(0);
    std::fs::write(&path, &torn).unwrap();
    assert_eq!(collect(d.path()).0, 2);
    // A file cut inside the last entry: two survive.
    std::fs::write(&path, &full[..3 * entry - 1]).unwrap();
    assert_eq!(collect(d.path()).0, 2);
    // A flipped byte in the last entry, nothing after it: two survive.
    let mut bad = full.clone();
    bad[2 * entry + HEADER + 3] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(collect(d.path()).0, 2);
    // A last entry whose length claims 4 GiB must not allocate; it is torn.
    let mut huge = full.clone();
    huge[2 * entry..2 * entry + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&path, &huge).unwrap();
    assert_eq!(collect(d.path()).0, 2);
}

#[test]
fn bit_rot_before_valid_entries_is_corruption_naming_segment_and_offset() {
    let (d, path, full, entry) = three_entries();
    let name = path.display().to_string();
    // A flipped byte in the second entry's body, the third intact after it.
    let mut bad = full.clone();
    bad[entry + HEADER + 3] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let msg = corruption_at(d.path());
    assert!(msg.contains(&format!("{name} @ offset {entry}")), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains("entry 3 follows"), "{msg}");
    // A length claiming 4 GiB (no allocation), and a length zeroed: the same.
    for len in [u32::MAX, 0] {
        let mut b = full.clone();
        b[entry..entry + 4].copy_from_slice(&len.to_be_bytes());
        std::fs::write(&path, &b).unwrap();
        let msg = corruption_at(d.path());
        assert!(msg.contains(&format!("@ offset {entry}")), "{msg}");
    }
    // The first entry's lsn flipped: its checksum fails, entries 2 and 3 follow.
    let mut b = full.clone();
    b[HEADER + 7] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert!(corruption_at(d.path()).contains("@ offset 0"));
    // Salvage skips the damaged entry and names it.
    let mut bad = full.clone();
    bad[entry + HEADER + 3] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let plan = scan::plan(d.path(), true, None).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped.len(), 1);
    let dr = &plan.dropped[0];
    assert_eq!(
        (dr.offset, dr.end, dr.lsns),
        (entry as u64, 2 * entry as u64, Some((2, 2)))
    );
    let mut keys = Vec::new();
    scan::apply(&plan, |_, c| {
        keys.push(c[0].0.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(keys, vec![sled::IVec::from("k0"), sled::IVec::from("k2")]);
}

#[test]
fn a_damaged_seal_before_a_later_segment_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    let mut seal = Vec::new();
    encode(&mut seal, &Entry::Seal(2));
    seal[HEADER + 2] ^= 0x10; // the seal's lsn
    (&j.current.file).write_all(&seal).unwrap();
    drop(j);
    let mut j = Journal::create(d.path(), 2, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("b", Some("2"))]).unwrap();
    let msg = corruption_at(d.path());
    assert!(msg.contains("entry 2 follows in"), "{msg}");
    let plan = scan::plan(d.path(), true, None).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped[0].lsns, None);
}

#[test]
fn full_segments_are_sealed_and_replay_continues_across_them() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    let big = "x".repeat(1024 * 1024);
    let mut rolled = 0;
    for i in 0..70 {
        let a = j.append(&[change(&format!("k{i}"), Some(&big))]).unwrap();
        rolled += usize::from(a.new_segment);
    }
    assert_eq!(rolled, 2);
    let dir = d.path().join(DIR);
    let segs = segments(&dir).unwrap();
    assert_eq!(segs.len(), 3);
    let (n, got) = collect(d.path());
    assert_eq!(n, 70);
    assert_eq!(got[69][0].0.as_ref(), b"k69");
    // A retired first segment goes; the rest replays from the second.
    remove_segments(d.path(), &[segs[0].0]).unwrap();
    assert_eq!(segments(&dir).unwrap().len(), 2);
    assert_eq!(collect(d.path()).0, 70 - (segs[1].0 - 1));
}

/// Segments of one entry each, the first starting at `first`: each is sealed (but the
/// last) when the next entry is appended. Returns the segments' paths, oldest first.
fn one_entry_segments(dir: &Path, first: u64, n: u64) -> Vec<PathBuf> {
    let mut j = Journal::create(dir, first, 1, 0o600, detached()).unwrap();
    for i in 0..n {
        j.append(&[change(&format!("k{i}"), Some("v"))]).unwrap();
    }
    let segs: Vec<PathBuf> = segments(&dir.join(DIR))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(segs.len(), n as usize);
    segs
}

/// The length of a segment of `one_entry_segments` without its seal.
fn without_seal(seg: &Path) -> u64 {
    let mut seal = Vec::new();
    encode(&mut seal, &Entry::Seal(0));
    std::fs::metadata(seg).unwrap().len() - seal.len() as u64
}

#[test]
fn regression_a_lost_seal_does_not_drop_the_next_segment() {
    // Only the seal of segment 1 is gone (damage, or a power loss that kept segment 2's
    // later write): segment 2 resumes exactly after it, nothing is missing, all is applied.
    // (It was taken for the journal's end, and segment 2's acknowledged entries dropped.)
    let d = tempfile::tempdir().unwrap();
    let segs = one_entry_segments(d.path(), 1, 3);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .unwrap();
    f.set_len(without_seal(&segs[0])).unwrap();
    let (n, got) = collect(d.path());
    assert_eq!(n, 3);
    assert_eq!(got[2], vec![change("k2", Some("v"))]);
    // Zeros where the seal was: the same.
    let d = tempfile::tempdir().unwrap();
    let segs = one_entry_segments(d.path(), 1, 3);
    let len = without_seal(&segs[0]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .unwrap();
    f.set_len(len).unwrap();
    f.set_len(len + 64).unwrap();
    assert_eq!(collect(d.path()).0, 3);
}

#[test]
fn regression_entries_missing_before_a_later_segment_are_corruption() {
    // Segment 1 lost its last entry and its seal; segment 2 resumes further on: entry 2
    // is gone, and may have been acknowledged.
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    drop(j);
    let mut j = Journal::create(d.path(), 3, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("c", Some("3"))]).unwrap();
    let msg = corruption_at(d.path());
    assert!(msg.contains("a valid entry 3 follows in"), "{msg}");
    let plan = scan::plan(d.path(), true, None).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped.len(), 1);
    assert_eq!(plan.dropped[0].lsns, Some((2, 2)));
}

#[test]
fn an_unsealed_segment_followed_by_an_empty_one_ends_the_journal() {
    // A crash between creating segment 2 and writing to it, with segment 1's seal not yet
    // durable: nothing after entry 1 was acknowledged.
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    drop(j);
    drop(Journal::create(d.path(), 2, SEGMENT_BYTES, 0o600, detached()).unwrap());
    assert_eq!(collect(d.path()).0, 1);
}

#[test]
fn regression_a_missing_journal_head_is_corruption() {
    // sled holds entries up to 10; the journal left by the crash runs 11 to 13. With its
    // first segment gone (deleted, or the segments' names swapped), entry 11 is missing.
    // (The first entry found was taken for the journal's start, whatever its lsn.)
    let d = tempfile::tempdir().unwrap();
    let segs = one_entry_segments(d.path(), 11, 3);
    for applied in [None, Some(10), Some(11), Some(12), Some(40)] {
        let plan = scan::plan(d.path(), false, applied).unwrap();
        assert_eq!((plan.entries, plan.last_lsn), (3, Some(13)), "{applied:?}");
    }
    std::fs::remove_file(&segs[0]).unwrap();
    let err = scan::plan(d.path(), false, Some(10)).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    assert!(
        err.to_string()
            .contains("the journal's first entry is 12, yet sled holds entries only up to 10"),
        "{err}"
    );
    let plan = scan::plan(d.path(), true, Some(10)).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped[0].lsns, Some((11, 11)));
    // What sled holds already may start the journal: entry 12 is the next after 11.
    assert_eq!(scan::plan(d.path(), false, Some(11)).unwrap().entries, 2);

    // Names swapped: the first segment read holds entry 12.
    let d = tempfile::tempdir().unwrap();
    let segs = one_entry_segments(d.path(), 11, 2);
    let tmp = d.path().join("swap");
    std::fs::rename(&segs[0], &tmp).unwrap();
    std::fs::rename(&segs[1], &segs[0]).unwrap();
    std::fs::rename(&tmp, &segs[1]).unwrap();
    let err = scan::plan(d.path(), false, Some(10)).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
}

#[test]
fn regression_open_refuses_a_journal_whose_head_is_gone_and_replays_one_missing_a_seal() {
    use crate::backend::sled::SledBackend;
    use crate::backend::Backend;
    use crate::model::config::Config;

    // A database closed cleanly, then a crash image: three groups in three segments after
    // what sled holds, each pausing a queue.
    let image = |damage: &dyn Fn(&[PathBuf])| -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("db");
        let b = SledBackend::open(&path, Config::default(), std::sync::Arc::new(Quiet)).unwrap();
        b.set_paused("q0", true).unwrap();
        b.close().unwrap();
        drop(b);
        let db = crate::backend::sled::open::open_db(&path, &Config::default()).unwrap();
        let applied = crate::backend::sled::writer::applied_of(&db)
            .unwrap()
            .unwrap();
        drop(db);
        let mut j = Journal::create(&path, applied + 1, 1, 0o600, detached()).unwrap();
        for q in ["q1", "q2", "q3"] {
            let key = crate::backend::codec::keys::named(crate::backend::codec::keys::QUEUE, q);
            let value = crate::backend::codec::encode(&true).unwrap();
            j.append(&[(key.into(), Some(value.into()))]).unwrap();
        }
        drop(j);
        // (The segments the database kept at its close come before these.)
        let segs: Vec<PathBuf> = segments(&path.join(DIR))
            .unwrap()
            .into_iter()
            .filter(|(first, _)| *first > applied)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(segs.len(), 3);
        damage(&segs);
        (d, path)
    };
    let paused = |path: &Path| -> Vec<String> {
        let b = SledBackend::open(path, Config::default(), std::sync::Arc::new(Quiet)).unwrap();
        let mut q: Vec<String> = b
            .stats()
            .unwrap()
            .queues
            .into_iter()
            .filter(|(_, q)| q.paused)
            .map(|(name, _)| name)
            .collect();
        q.sort();
        b.close().unwrap();
        q
    };

    let (_d, path) = image(&|_| {});
    assert_eq!(paused(&path), ["q0", "q1", "q2", "q3"]);

    let (_d, path) = image(&|segs| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&segs[0])
            .unwrap();
        f.set_len(without_seal(&segs[0])).unwrap();
    });
    assert_eq!(paused(&path), ["q0", "q1", "q2", "q3"]);

    let (_d, path) = image(&|segs| std::fs::remove_file(&segs[0]).unwrap());
    let err = SledBackend::open(&path, Config::default(), std::sync::Arc::new(Quiet))
        .err()
        .expect("the journal's head is missing");
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    // (The segment kept at the close comes first: the gap after it shows.)
    let msg = err.to_string();
    assert!(
        msg.contains("entries are missing") || msg.contains("a valid entry 3 follows"),
        "{msg}"
    );
    // Nothing was applied, and the journal is kept for `repair`.
    assert_eq!(segments(&path.join(DIR)).unwrap().len(), 3);
}

#[test]
fn a_sealed_segment_followed_by_another_lsn_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    let mut seal = Vec::new();
    encode(&mut seal, &Entry::Seal(2));
    (&j.current.file).write_all(&seal).unwrap();
    drop(j);
    // The next segment resumes at 5: entries 2 to 4 are gone.
    let mut j = Journal::create(d.path(), 5, SEGMENT_BYTES, 0o600, detached()).unwrap();
    j.append(&[change("b", Some("2"))]).unwrap();
    let err = replay(d.path(), |_| Ok(())).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(
        err.to_string().contains("entry 5 where entry 2 belongs"),
        "{err}"
    );
}

#[test]
fn decode_rejects_garbage_without_panicking() {
    assert!(decode_body(&[]).is_none());
    assert!(decode_body(&[0; 11]).is_none());
    let mut body = 7u64.to_be_bytes().to_vec();
    body.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
    assert!(decode_body(&body).is_none());
    body.truncate(8);
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&[2, 0, 0, 0, 0]);
    assert!(decode_body(&body).is_none());
    // A seal carries nothing after its marker.
    let mut seal = 9u64.to_be_bytes().to_vec();
    seal.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode_body(&seal), Some(Entry::Seal(9)));
    seal.push(0);
    assert!(decode_body(&seal).is_none());
}

#[test]
fn a_damaged_journal_position_is_corruption_and_repair_goes_on_without_it() {
    use crate::backend::sled::SledBackend;
    use crate::backend::Backend;
    use crate::model::config::Config;

    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let b = SledBackend::open(&path, Config::default(), std::sync::Arc::new(Quiet)).unwrap();
    b.close().unwrap();
    drop(b);
    for bad in [vec![0xff; 8], vec![1, 2, 3]] {
        {
            let db = crate::backend::sled::open::open_db(&path, &Config::default()).unwrap();
            db.insert(crate::backend::codec::keys::META_JOURNAL, bad)
                .unwrap();
            db.flush().unwrap();
        }
        let err = SledBackend::open(&path, Config::default(), std::sync::Arc::new(Quiet))
            .err()
            .expect("a damaged journal position");
        assert_eq!(err.code(), "CORRUPTION", "{err}");
        assert!(err.to_string().contains("mjournal"), "{err}");
        SledBackend::repair(&path, &Config::default(), false).unwrap();
        let b = SledBackend::open(&path, Config::default(), std::sync::Arc::new(Quiet)).unwrap();
        b.close().unwrap();
    }
}

#[test]
fn raw_ops_read_what_decode_body_reads() {
    let changes = vec![
        change("a", Some("1")),
        change("bb", None),
        change("ccc", Some("three")),
        change("", Some("")),
    ];
    let mut buf = Vec::new();
    encode_entry(&mut buf, 9, &changes);
    let body = &buf[HEADER..];
    let Some(Entry::Group(9, decoded)) = decode_body(body) else {
        panic!("the entry decodes")
    };
    let raw: Vec<(Vec<u8>, Option<Vec<u8>>)> = raw_ops(body)
        .map(|op| {
            let value = op.value.map(|(off, v)| {
                assert_eq!(&body[off..off + v.len()], v, "the offset is the value's");
                v.to_vec()
            });
            (op.key.to_vec(), value)
        })
        .collect();
    let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = decoded
        .iter()
        .map(|(k, v)| (k.to_vec(), v.as_ref().map(|v| v.to_vec())))
        .collect();
    assert_eq!(raw, want);
    // A body cut short yields the ops before the cut, never a misread.
    assert_eq!(raw_ops(&body[..body.len() - 3]).count(), 3);
}

#[test]
fn regression_a_failed_preallocation_keeps_what_the_file_held() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("seg");
    std::fs::write(&path, [5u8; 1000]).unwrap();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    // More than any filesystem holds: the allocation fails.
    assert!(!preallocate(&f, &path, u64::MAX / 4, 1000).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), vec![5u8; 1000]);
}
