//! The golden tests: each fixture decodes to its sample and the sample encodes to the
//! fixture (format 2), format 1 fixtures still decode, and the files are what the code
//! writes.

use super::*;
use crate::backend::codec::{self, Stored};
use crate::backend::sled::journal::{self, Entry};

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
