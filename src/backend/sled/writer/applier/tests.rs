//! What the applier leaves in sled: each key's last value, as if every group had been
//! applied on its own, in order.

use std::sync::Arc;

use crate::backend::sled::journal::Change;
use crate::backend::sled::open::open_db;
use crate::backend::sled::SledBackend;
use crate::backend::{Backend, Completion, Observer};
use crate::model::config::Config;
use crate::model::error::Error;
use crate::model::event::EventRecord;
use crate::model::job::NewJob;
use crate::model::types::{ClaimRequest, Retry};

use super::{apply_changes, coalesce, write_all};

struct Quiet;

impl Observer for Quiet {
    fn committed(&self, _: &[EventRecord]) {}
    fn work_available(&self) {}
}

/// Every key and value of `tree`, in key order, but the checkpoint's generation key (the
/// checkpointer writes it into sled directly, outside any group).
/// The keys only sled holds (bookkeeping of checkpoints and of the journal), which the
/// groups never write.
fn sled_only(key: &[u8]) -> bool {
    key == b"mcheckpoint"
        || key == crate::backend::codec::keys::META_JOURNAL
        || key == crate::backend::codec::keys::META_LOG_START
}

fn contents(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(|r| r.unwrap())
        .filter(|(k, _)| !sled_only(k))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn temp_tree() -> sled::Tree {
    let db = sled::Config::new().temporary(true).open().unwrap();
    (*db).clone()
}

/// Groups that put, overwrite and remove a few keys over and over (a key put after its
/// removal, removed after its put, untouched for several groups), from a fixed seed.
fn mixed_groups(seed: u64, groups: usize) -> Vec<(u64, Vec<Change>)> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (1..=groups as u64)
        .map(|lsn| {
            let n = 1 + next() % 12;
            let changes = (0..n)
                .map(|_| {
                    let key = vec![b'j', (next() % 16) as u8];
                    let value =
                        (next() % 4 != 0).then(|| sled::IVec::from(&next().to_be_bytes()[..]));
                    (sled::IVec::from(key), value)
                })
                .collect();
            (lsn, changes)
        })
        .collect()
}

#[test]
fn coalesced_groups_leave_sled_as_applying_them_one_by_one_does() {
    for seed in [1, 7, 42, 1234, 99_991] {
        let groups = mixed_groups(seed, 40);
        let (one_by_one, coalesced) = (temp_tree(), temp_tree());
        for t in [&one_by_one, &coalesced] {
            // Both start from the same contents, some of which the groups remove.
            for k in 0..16u8 {
                if k % 3 == 0 {
                    t.insert([b'j', k], &[k][..]).unwrap();
                }
            }
        }
        for (_, changes) in &groups {
            apply_changes(&one_by_one, changes).unwrap();
        }
        let refs: Vec<(u64, Vec<&Change>)> = groups
            .iter()
            .map(|(lsn, changes)| (*lsn, changes.iter().collect()))
            .collect();
        let last = coalesce(&refs);
        assert!(
            last.windows(2).all(|w| w[0].0 < w[1].0),
            "one write per key, in key order"
        );
        write_all(&coalesced, &last).unwrap();
        assert_eq!(contents(&coalesced), contents(&one_by_one), "seed {seed}");
    }
}

/// A mixed workload through the real writer and applier (the groups that reach it within one
/// pass are coalesced): after close, sled holds exactly what the writer's view showed before it, i.e. what
/// applying every journaled group in order gives; and a reopen sees the same jobs.
#[test]
fn sled_after_close_holds_what_the_groups_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let b = SledBackend::open(&path, Config::default(), Arc::new(Quiet)).unwrap();
    let req = |max| ClaimRequest {
        queues: Vec::new(),
        exclude_queues: Vec::new(),
        kinds: Vec::new(),
        max,
        lease_ms: 60_000,
        worker_id: "w".into(),
    };
    let mut ids = Vec::new();
    for round in 0..30u8 {
        let jobs = (0..20u8)
            .map(|i| {
                let j = NewJob::new("k", vec![round, i]);
                match i % 5 {
                    0 => j.dedupe_key(format!("d{}", i % 7)),
                    1 => j.queue("other"),
                    _ => j,
                }
            })
            .collect();
        ids.extend(b.enqueue(jobs).unwrap().into_iter().map(|e| e.id));
        let claimed = b.claim(&req(12)).unwrap();
        let mut batch = Vec::new();
        for (n, c) in claimed.into_iter().enumerate() {
            let (id, token) = (c.lease.job_id, c.lease.token);
            match n % 6 {
                0 => {
                    b.complete(id, token, Some(vec![round])).unwrap();
                }
                1 => {
                    b.fail(id, token, "boom".into(), Retry::Backoff).unwrap();
                }
                2 => {
                    b.release(id, token).unwrap();
                }
                3 => {} // left running
                _ => batch.push(Completion {
                    id,
                    token,
                    result: None,
                }),
            }
        }
        b.complete_batch(batch).unwrap();
        if round % 4 == 0 {
            b.cancel(ids[ids.len() - 3], Some("test".into())).unwrap();
            b.set_paused("other", round % 8 == 0).unwrap();
        }
    }
    b.flush().unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = {
        let sh = b.sh().unwrap();
        sh.overlay
            .scan(&sh.base, &[], &[0xff; 16])
            .map(|r| r.unwrap())
            .filter(|(k, _)| !sled_only(k) && !crate::backend::sled::logstore::resident(k))
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    };
    let before: Vec<_> = ids.iter().map(|id| b.get(*id).unwrap()).collect();
    assert!(
        expected.len() > 2,
        "the workload wrote {} keys to sled",
        expected.len()
    );
    b.close().unwrap();

    {
        let db = open_db(&path, &Config::default()).unwrap();
        assert_eq!(contents(&db), expected);
    }
    let b = SledBackend::open(&path, Config::default(), Arc::new(Quiet)).unwrap();
    for (id, was) in ids.iter().zip(before) {
        let now = b.get(*id).unwrap();
        // Reopening fails the attempts left running (recovery); every other job is as it was.
        match (&was, &now) {
            (Some(w), Some(n)) if w.status == crate::model::job::JobStatus::Running => {
                assert_ne!(n.status, crate::model::job::JobStatus::Running)
            }
            _ => assert_eq!(was, now),
        }
    }
    b.close().unwrap();
}

#[test]
fn regression_damage_sled_meets_after_open_names_the_database() {
    // sled's own errors cannot name the database: damage met by a read after open said
    // "the database's sled files" where open-time damage gave the path.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db");
    let b = SledBackend::open(&path, Config::default(), Arc::new(Quiet)).unwrap();
    let met = Error::Corruption {
        tree: "sled",
        key: "the database's sled files".into(),
        detail: "sled read damaged data".into(),
    };
    let err = b.named::<()>(Err(met)).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    // Other errors pass unchanged.
    let err = b.named::<()>(Err(Error::ShuttingDown)).unwrap_err();
    assert_eq!(err.code(), "SHUTTING_DOWN");
    b.close().unwrap();
}
