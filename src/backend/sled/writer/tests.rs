//! Group commit: callers are answered only once the fsync covering their group returned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::sled::journal::hold;
use crate::backend::sled::SledBackend;
use crate::backend::{Backend, Observer};
use crate::model::config::Config;
use crate::model::event::EventRecord;
use crate::model::job::NewJob;

/// Counts the events it is told of (they are published once durable).
#[derive(Default)]
struct Counting(AtomicUsize);

impl Observer for Counting {
    fn committed(&self, events: &[EventRecord]) {
        self.0.fetch_add(events.len(), Ordering::SeqCst);
    }
    fn work_available(&self) {}
}

/// Lets the held fsyncs go when dropped, so a failing assertion ends the test instead of
/// leaving the writer waiting forever.
struct Release<'a>(&'a std::path::Path);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        hold::release(self.0);
    }
}

#[test]
fn sixteen_callers_are_answered_only_after_the_fsync_covering_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let seen = Arc::new(Counting::default());
    let b = Arc::new(SledBackend::open(&path, Config::default(), seen.clone()).unwrap());
    let published = seen.0.load(Ordering::SeqCst);
    let answered = Arc::new(AtomicUsize::new(0));

    hold::hold(&path);
    let release = Release(&path);
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let (b, answered) = (b.clone(), answered.clone());
            std::thread::spawn(move || {
                let r = b.enqueue(vec![NewJob::new("k", vec![i])]);
                answered.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    assert!(hold::until_waiting(&path), "no fsync was reached");
    // Give the writer time to take every caller it can and the callers time to return, were
    // they answered early: none may be, nor may their events be published or jobs be seen.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert_eq!(
            answered.load(Ordering::SeqCst),
            0,
            "answered before its fsync"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen.0.load(Ordering::SeqCst), published);
    assert_eq!(b.stats().unwrap().total.pending, 0);

    drop(release);
    let mut ids = Vec::new();
    for c in callers {
        ids.extend(c.join().unwrap().unwrap().into_iter().map(|e| e.id));
    }
    assert_eq!(answered.load(Ordering::SeqCst), 16);
    assert!(b.metrics().fsyncs >= 1);
    assert_eq!(seen.0.load(Ordering::SeqCst), published + 16);
    for id in ids {
        assert!(b.get(id).unwrap().is_some());
    }
    b.close().unwrap();

    // Every answered job is in the database after a reopen.
    let b = SledBackend::open(&path, Config::default(), Arc::new(Counting::default())).unwrap();
    assert_eq!(b.stats().unwrap().total.pending, 16);
    b.close().unwrap();
}

/// Lets the held applier go when dropped (a failing assertion must not leave it waiting).
struct ReleaseApplier(Arc<crate::backend::sled::Shared>);

impl Drop for ReleaseApplier {
    fn drop(&mut self) {
        self.0.overlay.hold_applied(false);
    }
}

fn claim_one(b: &SledBackend) -> crate::model::types::Lease {
    let req = crate::model::types::ClaimRequest {
        queues: Vec::new(),
        exclude_queues: Vec::new(),
        kinds: Vec::new(),
        max: 1,
        lease_ms: 60_000,
        worker_id: "w".into(),
    };
    b.claim(&req).unwrap().remove(0).lease
}

/// Runs `f` on a thread; its result, or `None` if it has not returned after 60 s (far
/// longer than it takes unless it waits for the held applier: only that fails the test).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

#[test]
fn immediate_writes_are_answered_while_the_applier_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let b = Arc::new(
        SledBackend::open(&path, Config::default(), Arc::new(Counting::default())).unwrap(),
    );
    let sh = b.sh().unwrap();
    sh.overlay.hold_applied(true);
    let release = ReleaseApplier(sh.clone());
    // One at a time: each write is its own fsync and its own hand-over to the applier,
    // which sits in sled (held). Far more of them than the applier's queue once held (64):
    // the fsync path must not wait for the applier to take them.
    let done = within({
        let b = b.clone();
        move || {
            for i in 0..200u8 {
                b.enqueue(vec![NewJob::new("k", vec![i])]).unwrap();
            }
        }
    });
    assert!(sh.overlay.until_applier_held(), "the applier never ran");
    assert!(done.is_some(), "an Immediate write waited for the applier");
    // Answered means durable and visible, though sled has not got them yet.
    assert_eq!(b.stats().unwrap().total.pending, 200);
    drop(release);
    drop(sh);
    b.close().unwrap();
    let b = SledBackend::open(&path, Config::default(), Arc::new(Counting::default())).unwrap();
    assert_eq!(b.stats().unwrap().total.pending, 200);
    b.close().unwrap();
}

#[test]
fn a_heartbeat_is_answered_while_a_bulk_producer_waits_for_sled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let b = Arc::new(
        SledBackend::open(&path, Config::default(), Arc::new(Counting::default())).unwrap(),
    );
    b.enqueue(vec![NewJob::new("handler", Vec::new())]).unwrap();
    let lease = claim_one(&b);
    let sh = b.sh().unwrap();
    // sled "lags": nothing the applier writes leaves the overlay, and the producers' limit
    // is small (the writer's own is twice as much).
    let limit = 64 * 1024;
    sh.overlay.set_limit(limit);
    sh.overlay.hold_applied(true);
    let release = ReleaseApplier(sh.clone());
    let batches = 20;
    let produced = Arc::new(AtomicUsize::new(0));
    let producer = std::thread::spawn({
        let (b, produced) = (b.clone(), produced.clone());
        move || {
            for _ in 0..batches {
                let jobs = (0..16)
                    .map(|_| NewJob::new("bulk", vec![7; 1024]))
                    .collect();
                b.enqueue(jobs).unwrap();
                produced.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    // Once past the limit, every further batch waits (the applier cannot catch up).
    let deadline = Instant::now() + Duration::from_secs(30);
    while sh.overlay.queued() <= limit {
        assert!(
            Instant::now() < deadline,
            "the producer never passed the limit"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let extended = within({
        let b = b.clone();
        move || b.extend(lease.job_id, lease.token, 60_000)
    });
    let job = extended.expect("the heartbeat waited behind the bulk producer");
    assert_eq!(job.unwrap().id, lease.job_id);
    // The producer is still held back: the bulk waits, the heartbeat does not.
    assert!(produced.load(Ordering::SeqCst) < batches);
    assert!(sh.overlay.queued() <= 2 * limit);

    drop(release);
    producer.join().unwrap();
    assert_eq!(produced.load(Ordering::SeqCst), batches);
    assert_eq!(b.stats().unwrap().total.pending, 16 * batches as u64);
    drop(sh);
    b.close().unwrap();
}

/// A group's job records go into its journal entry in id order (open's index builds then
/// read the journal nearly sorted), whatever order the writer staged them in.
#[test]
fn a_groups_job_records_are_journaled_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let b = SledBackend::open(&path, Config::default(), Arc::new(Counting::default())).unwrap();
    let jobs: Vec<NewJob> = (0..500u32)
        .map(|i| NewJob::new("k", i.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(b.enqueue(jobs).unwrap().len(), 500);
    b.close().unwrap();
    let mut groups = 0;
    crate::backend::sled::journal::scan::plan_each(&path, false, None, |seg| {
        for (_, body) in seg.bodies() {
            let ids: Vec<u128> = crate::backend::sled::journal::raw_ops(body)
                .filter_map(|op| crate::backend::sled::logstore::fixed(op.key))
                .filter(|(prefix, _)| *prefix == crate::backend::codec::keys::JOB)
                .map(|(_, id)| id)
                .collect();
            if ids.len() == 500 {
                groups += 1;
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "job records out of id order"
                );
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(groups, 1, "one group held the 500 enqueued records");
}
