//! The overlay: both views, versions, and the memory they take.

use super::*;
use crate::backend::sled::logstore::Base;

fn c(k: &str, v: Option<&str>) -> Change {
    (k.as_bytes().into(), v.map(|v| v.as_bytes().into()))
}

#[test]
fn reads_and_scans_see_pending_changes_over_sled() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let db = Base::sled_only((*db).clone());
    for k in ["a", "b", "d", "f"] {
        db.tree.insert(k, k).unwrap();
    }
    let o = Overlay::default();
    o.insert(1, &[c("b", None), c("c", Some("C")), c("d", Some("D"))]);
    o.insert(2, &[c("g", Some("G")), c("c", Some("C2"))]);
    assert_eq!(o.read(&db, b"b").unwrap(), None);
    assert_eq!(o.read(&db, b"a").unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(o.read(&db, b"c").unwrap().as_deref(), Some(&b"C2"[..]));
    let all: Vec<(String, String)> = o
        .scan(&db, b"a", b"z")
        .map(|r| {
            let (k, v) = r.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    let want = [("a", "a"), ("c", "C2"), ("d", "D"), ("f", "f"), ("g", "G")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, want);
    assert_eq!(o.scan(&db, b"b", b"d").count(), 1);
    // Group 1 reaches sled: its keys go, except `c`, which group 2 changed again.
    let before = o.bytes();
    o.applied(1, &[c("b", None), c("c", Some("C")), c("d", Some("D"))]);
    assert_eq!(o.len(), 2);
    assert_eq!(o.get(b"c"), Some(Some(sled::IVec::from("C2"))));
    assert!(o.bytes() < before);
    // `c` and `g` remain: (1 + 2 + 64) + (1 + 1 + 64).
    assert_eq!(o.bytes(), 133);
    o.applied(2, &[c("g", Some("G")), c("c", Some("C2"))]);
    assert_eq!((o.len(), o.bytes()), (0, 0));
    o.wait_below(0, || false); // returns at once
}

fn s(v: Option<sled::IVec>) -> Option<String> {
    v.map(|v| String::from_utf8(v.to_vec()).unwrap())
}

#[test]
fn readers_see_the_newest_durable_version_and_versions_stay_bounded() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let db = Base::sled_only((*db).clone());
    db.tree.insert("a", "a0").unwrap();
    let o = Overlay::default();
    o.insert(1, &[c("a", Some("A1")), c("b", Some("B1"))]);
    // Not durable: readers see sled's value (or nothing); the writer sees group 1.
    assert_eq!(s(o.read_durable(&db, b"a").unwrap()).as_deref(), Some("a0"));
    assert_eq!(o.read_durable(&db, b"b").unwrap(), None);
    assert_eq!(s(o.read(&db, b"a").unwrap()).as_deref(), Some("A1"));
    assert_eq!(o.scan_durable(&db, b"a", b"z").count(), 1);
    assert_eq!(o.scan(&db, b"a", b"z").count(), 2);
    assert_eq!(o.last_key_durable(b"a", b"z"), None); // (sled's keys are not its)
    o.mark_synced(1);
    assert_eq!(s(o.read_durable(&db, b"a").unwrap()).as_deref(), Some("A1"));
    assert_eq!(o.last_key_durable(b"a", b"z").as_deref(), Some(&b"b"[..]));
    // a removed by group 2, set again by 3: readers keep seeing A1 until they are durable.
    o.insert(2, &[c("a", None)]);
    o.insert(3, &[c("a", Some("A3"))]);
    assert_eq!(o.unsynced_keys(b"a", b"z"), [sled::IVec::from("a")]);
    assert_eq!(s(o.read_durable(&db, b"a").unwrap()).as_deref(), Some("A1"));
    o.mark_synced(2);
    assert_eq!(o.read_durable(&db, b"a").unwrap(), None);
    assert_eq!(o.scan_durable(&db, b"a", b"z").count(), 1); // only b
                                                            // Group 4 drops the versions older than the newest durable one (group 2's).
    let before = o.bytes();
    o.insert(4, &[c("a", Some("A4"))]);
    assert_eq!(o.bytes(), before - (1 + 2 + 64) + (1 + 2 + 64));
    o.mark_synced(4);
    assert_eq!(s(o.read_durable(&db, b"a").unwrap()).as_deref(), Some("A4"));
    assert!(o.unsynced_keys(b"a", b"z").is_empty());
    // Applied up to group 4: everything leaves.
    o.applied(1, &[c("a", Some("A1")), c("b", Some("B1"))]);
    o.applied(4, &[c("a", Some("A4"))]);
    assert_eq!((o.len(), o.bytes()), (0, 0));
}

#[test]
fn backpressure_counts_every_version_until_it_reaches_sled() {
    let o = Overlay::default();
    // The same key three times, each group durable before the next: the map keeps only the
    // newest durable version, but the applier's queue holds all three groups.
    for lsn in 1..=3 {
        o.insert(lsn, &[c("k", Some("v"))]);
        o.mark_synced(lsn);
    }
    let one = 1 + 1 + 64;
    assert_eq!(o.queued(), 3 * one);
    assert!(o.bytes() < o.queued());
    o.applied(1, &[c("k", Some("v"))]);
    assert_eq!(o.queued(), 2 * one);
    o.applied(2, &[c("k", Some("v"))]);
    o.applied(3, &[c("k", Some("v"))]);
    assert_eq!((o.len(), o.bytes(), o.queued()), (0, 0, 0));
    // A limit in test: the writer's default otherwise.
    assert_eq!(o.limit(10), 10);
    o.set_limit(3);
    assert_eq!(o.limit(10), 3);
}
