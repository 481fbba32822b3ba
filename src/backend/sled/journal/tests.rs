//! Tests of the journal: encoding, appends, rolls and seals, torn entries, replay.

use super::*;

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

fn only_segment(dir: &Path) -> PathBuf {
    let segs = segments(&dir.join(DIR)).unwrap();
    assert_eq!(segs.len(), 1);
    segs[0].1.clone()
}

#[test]
fn entries_round_trip_in_order() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
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
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
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
    let plan = scan::plan(d.path(), true).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped.len(), 1);
    let dr = &plan.dropped[0];
    assert_eq!(
        (dr.offset, dr.end, dr.lsns),
        (entry as u64, 2 * entry as u64, Some((2, 2)))
    );
    let mut keys = Vec::new();
    scan::apply(&plan, |c| {
        keys.push(c[0].0.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(keys, vec![sled::IVec::from("k0"), sled::IVec::from("k2")]);
}

#[test]
fn a_damaged_seal_before_a_later_segment_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    let mut seal = Vec::new();
    encode(&mut seal, &Entry::Seal(2));
    seal[HEADER + 2] ^= 0x10; // the seal's lsn
    (&j.current.file).write_all(&seal).unwrap();
    drop(j);
    let mut j = Journal::create(d.path(), 2, SEGMENT_BYTES, 0o600).unwrap();
    j.append(&[change("b", Some("2"))]).unwrap();
    let msg = corruption_at(d.path());
    assert!(msg.contains("entry 2 follows in"), "{msg}");
    let plan = scan::plan(d.path(), true).unwrap();
    assert_eq!(plan.entries, 2);
    assert_eq!(plan.dropped[0].lsns, None);
}

#[test]
fn full_segments_are_sealed_and_replay_continues_across_them() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
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
    // Durable up to just before the second segment: the first goes, the rest stays.
    truncate(d.path(), segs[1].0 - 2).unwrap();
    assert_eq!(segments(&dir).unwrap().len(), 3);
    truncate(d.path(), segs[1].0 - 1).unwrap();
    assert_eq!(segments(&dir).unwrap().len(), 2);
    assert_eq!(collect(d.path()).0, 70 - (segs[1].0 - 1));
}

#[test]
fn an_unsealed_segment_ends_the_journal() {
    // Power loss took the end of segment 1 (its seal included): whatever segment 2
    // holds was never acknowledged, and is not applied.
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    drop(j);
    let mut j = Journal::create(d.path(), 2, SEGMENT_BYTES, 0o600).unwrap();
    j.append(&[change("b", Some("2"))]).unwrap();
    assert_eq!(collect(d.path()).0, 1);
}

#[test]
fn a_sealed_segment_followed_by_another_lsn_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    let mut j = Journal::create(d.path(), 1, SEGMENT_BYTES, 0o600).unwrap();
    j.append(&[change("a", Some("1"))]).unwrap();
    let mut seal = Vec::new();
    encode(&mut seal, &Entry::Seal(2));
    (&j.current.file).write_all(&seal).unwrap();
    drop(j);
    // The next segment resumes at 5: entries 2 to 4 are gone.
    let mut j = Journal::create(d.path(), 5, SEGMENT_BYTES, 0o600).unwrap();
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
