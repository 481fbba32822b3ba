//! Bit rot in the journal: a damaged entry with valid entries after it fails open with
//! `CORRUPTION` naming the segment and offset and changes nothing; a torn tail still opens;
//! `repair` (library and `jobspool repair`) salvages every readable entry and reports exactly
//! what it dropped.

mod common;

use std::path::{Path, PathBuf};

use common::{db_path, tempdir};
use jobspool::{Durability, JobId, NewJob, Spool};

fn open(path: &Path) -> jobspool::Result<Spool> {
    Spool::builder()
        .durability(Durability::Immediate)
        .maintenance(false)
        .scheduler(false)
        .open(path)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A crash image: sled as of right after open, the 5 acknowledged enqueues only in the
/// journal. Returns the image, the job ids, the segment and its entries' offsets.
fn journal_only_image(dir: &tempfile::TempDir) -> (PathBuf, Vec<JobId>, PathBuf, Vec<usize>) {
    let path = db_path(dir);
    let spool = open(&path).unwrap();
    let image = dir.path().join("image");
    copy_dir(&path, &image);
    std::fs::remove_dir_all(image.join("journal")).unwrap();
    let ids: Vec<JobId> = (0..5)
        .map(|i| {
            spool
                .enqueue(NewJob::new("rot", format!("job {i}").into_bytes()))
                .unwrap()
                .id
        })
        .collect();
    copy_dir(&path.join("journal"), &image.join("journal"));
    spool.close().unwrap();
    drop(spool);
    let segs: Vec<PathBuf> = std::fs::read_dir(image.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let bytes = std::fs::read(&segs[0]).unwrap();
    // Entries: `len u32 | crc u32 | body`, then zeros.
    let mut offsets = Vec::new();
    let mut pos = 0;
    loop {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        offsets.push(pos);
        pos += 8 + len;
    }
    assert_eq!(offsets.len(), 5, "one journal entry per enqueue");
    (image, ids, segs[0].clone(), offsets)
}

fn journal_files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(db.join("journal"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

fn flip_in_third_entry(seg: &Path, offsets: &[usize]) {
    let mut bytes = std::fs::read(seg).unwrap();
    bytes[offsets[2] + 8 + 20] ^= 0x04;
    std::fs::write(seg, &bytes).unwrap();
}

#[test]
fn bit_rot_in_the_journal_fails_open_with_corruption_and_keeps_the_journal() {
    let dir = tempdir();
    let (image, _, seg, offsets) = journal_only_image(&dir);
    flip_in_third_entry(&seg, &offsets);
    let before = journal_files(&image);
    let Err(err) = open(&image) else {
        panic!("a damaged journal must not open")
    };
    assert_eq!(err.code().as_str(), "CORRUPTION", "{err}");
    let msg = err.to_string();
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "names the segment: {msg}");
    assert!(
        msg.contains(&format!("@ offset {}", offsets[2])),
        "names the offset: {msg}"
    );
    assert!(msg.contains("jobspool repair"), "{msg}");
    // Nothing changed: the journal is byte for byte what it was, and a second open says
    // the same thing.
    assert_eq!(journal_files(&image), before);
    assert_eq!(open(&image).err().unwrap().to_string(), msg);
    assert_eq!(journal_files(&image), before);
}

#[test]
fn torn_tail_still_opens() {
    let dir = tempdir();
    let (image, ids, seg, offsets) = journal_only_image(&dir);
    // The last write never completed: the file ends inside entry 5.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(offsets[4] as u64 + 13).unwrap();
    drop(f);
    let spool = open(&image).unwrap();
    for id in &ids[..4] {
        spool.get(*id).unwrap();
    }
    assert_eq!(spool.stats().unwrap().total.pending, 4);
    spool.close().unwrap();
}

#[test]
fn repair_salvages_all_but_the_damaged_entry() {
    let dir = tempdir();
    let (image, ids, seg, offsets) = journal_only_image(&dir);
    flip_in_third_entry(&seg, &offsets);
    let before = journal_files(&image);

    let dry = jobspool::repair(&image, true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.applied, 4);
    assert_eq!(dry.dropped.len(), 1, "{dry:?}");
    let d = &dry.dropped[0];
    assert_eq!(d.segment, seg);
    assert_eq!(
        (d.offset, d.end, d.lsns),
        (offsets[2] as u64, offsets[3] as u64, Some((3, 3)))
    );
    assert_eq!(journal_files(&image), before, "a dry run changes nothing");
    assert_eq!(open(&image).err().unwrap().code().as_str(), "CORRUPTION");

    // The command line says the same, as JSON.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args(["repair", "--dry-run", "--json", "--db"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["applied"], 4);
    assert_eq!(v["dropped"][0]["lsns"], serde_json::json!([3, 3]));
    assert_eq!(v["dropped"][0]["offset"], offsets[2]);
    assert_eq!(journal_files(&image), before);

    let done = jobspool::repair(&image, false).unwrap();
    assert_eq!(
        (done.applied, done.dropped.clone()),
        (4, dry.dropped.clone())
    );
    let spool = open(&image).unwrap();
    for (i, id) in ids.iter().enumerate() {
        if i == 2 {
            assert_eq!(
                spool.get(*id).err().unwrap().code().as_str(),
                "JOB_NOT_FOUND"
            );
        } else {
            assert_eq!(
                spool.get(*id).unwrap().payload,
                format!("job {i}").into_bytes()
            );
        }
    }
    assert_eq!(spool.stats().unwrap().total.pending, 4);
    spool.close().unwrap();
}

/// The offsets of a segment's entries (`len u32 | crc u32 | body`, then zeros or a seal).
fn entry_offsets(seg: &Path) -> Vec<usize> {
    let bytes = std::fs::read(seg).unwrap();
    let mut offsets = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        offsets.push(pos);
        pos += 8 + len;
    }
    offsets
}

/// Open reads each segment once and hands it on for indexing as soon as it is checked, so
/// the earlier segments are indexed before the damaged one is read: the open must still
/// fail with `CORRUPTION` naming the damage, change nothing, and keep every job for
/// `repair` but the damaged entry's.
#[test]
fn regression_damage_in_a_later_segment_fails_open_after_earlier_segments_were_indexed() {
    let dir = tempdir();
    let path = db_path(&dir);
    let small = |p: &Path| {
        Spool::builder()
            .durability(Durability::Immediate)
            .maintenance(false)
            .scheduler(false)
            .journal_segment_bytes(64 * 1024)
            .open(p)
    };
    let spool = small(&path).unwrap();
    for b in 0..100 {
        let jobs: Vec<NewJob> = (0..10)
            .map(|i| NewJob::new("rot", format!("job {b}/{i}").into_bytes()))
            .collect();
        spool.enqueue_batch(jobs).unwrap();
    }
    spool.close().unwrap();
    drop(spool);
    let spool = small(&path).unwrap();
    assert_eq!(
        spool.stats().unwrap().total.pending,
        1000,
        "opens whole first"
    );
    spool.close().unwrap();
    drop(spool);

    let mut segs: Vec<PathBuf> = std::fs::read_dir(path.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "several segments: {segs:?}");
    // The first entry of the last segment but one: valid entries follow it.
    let seg = &segs[segs.len() - 2];
    let offsets = entry_offsets(seg);
    assert!(offsets.len() >= 2, "{offsets:?}");
    let mut bytes = std::fs::read(seg).unwrap();
    bytes[offsets[0] + 8 + 20] ^= 0x10;
    std::fs::write(seg, &bytes).unwrap();

    let before = journal_files(&path);
    let Err(err) = small(&path) else {
        panic!("a damaged journal must not open")
    };
    assert_eq!(err.code().as_str(), "CORRUPTION", "{err}");
    let msg = err.to_string();
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "names the segment: {msg}");
    assert!(
        msg.contains(&format!("@ offset {}", offsets[0])),
        "names the offset: {msg}"
    );
    assert_eq!(journal_files(&path), before, "nothing changed");
    assert_eq!(small(&path).err().unwrap().to_string(), msg);
    assert_eq!(journal_files(&path), before, "nothing changed");

    let report = jobspool::repair(&path, false).unwrap();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    let spool = small(&path).unwrap();
    assert_eq!(
        spool.stats().unwrap().total.pending,
        990,
        "every job but the damaged batch's ten"
    );
    spool.close().unwrap();
}
