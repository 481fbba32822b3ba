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
