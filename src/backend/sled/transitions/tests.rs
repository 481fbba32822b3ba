//! Readers see only durable groups: with the journal's fsync held (a group written, not
//! durable), `get`, `list`, `stats`, `events_since`, `last_seq` and the schedules show the
//! state before the group; once the fsync goes, they show it.

use std::sync::Arc;

use super::super::journal::hold;
use super::super::SledBackend;
use crate::backend::{Backend, Observer};
use crate::model::config::Config;
use crate::model::event::EventRecord;
use crate::model::job::{JobStatus, NewJob};
use crate::model::schedule::NewSchedule;
use crate::model::types::{ClaimRequest, ListQuery};

struct Quiet;

impl Observer for Quiet {
    fn committed(&self, _: &[EventRecord]) {}
    fn work_available(&self) {}
}

fn list(b: &SledBackend, status: Option<JobStatus>) -> Vec<(String, JobStatus)> {
    let q = ListQuery {
        status,
        ..ListQuery::default()
    };
    b.list(&q)
        .unwrap()
        .into_iter()
        .map(|j| (j.kind, j.status))
        .collect()
}

thread_local! {
    /// The op running on its own thread while the fsync is held.
    static OP: std::cell::RefCell<Option<std::thread::JoinHandle<crate::model::error::Result<()>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Holds `path`'s journal fsyncs and runs `op` on a thread of its own; returns once its
/// group is written and its fsync waits.
fn held(
    path: &std::path::Path,
    op: impl FnOnce() -> crate::model::error::Result<()> + Send + 'static,
) {
    hold::hold(path);
    OP.with(|o| *o.borrow_mut() = Some(std::thread::spawn(op)));
    assert!(
        hold::until_waiting(path),
        "the fsync of the group was never reached"
    );
}

/// Lets the fsync go and waits for the op's answer.
fn go(path: &std::path::Path) {
    hold::release(path);
    let op = OP.with(|o| o.borrow_mut().take()).expect("an op is held");
    op.join().unwrap().unwrap();
}

#[test]
fn readers_see_a_group_only_once_its_journal_entry_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let b = Arc::new(SledBackend::open(&path, Config::default(), Arc::new(Quiet)).unwrap());
    let a = b.enqueue(vec![NewJob::new("a", b"1".to_vec())]).unwrap()[0].id;
    let req = ClaimRequest {
        queues: Vec::new(),
        exclude_queues: Vec::new(),
        kinds: Vec::new(),
        max: 1,
        lease_ms: 60_000,
        worker_id: "w".into(),
    };
    let lease = b.claim(&req).unwrap().remove(0).lease;
    let seq = b.last_seq();
    let events = b.events_since(0, 1000).unwrap();
    assert_eq!(events.last().map(|e| e.seq), Some(seq));

    // A completes: while its group waits for the fsync, readers see A running.
    held(&path, {
        let b = b.clone();
        move || b.complete(a, lease.token, None).map(|_| ())
    });
    assert_eq!(b.get(a).unwrap().unwrap().status, JobStatus::Running);
    assert_eq!(list(&b, None), [("a".to_string(), JobStatus::Running)]);
    assert_eq!(list(&b, Some(JobStatus::Running)).len(), 1);
    assert!(list(&b, Some(JobStatus::Completed)).is_empty());
    let stats = b.stats().unwrap();
    assert_eq!((stats.total.running, stats.total.completed), (1, 0));
    assert_eq!(b.events_since(0, 1000).unwrap(), events);
    assert_eq!(b.last_seq(), seq);
    go(&path);
    assert_eq!(b.get(a).unwrap().unwrap().status, JobStatus::Completed);
    assert_eq!(list(&b, Some(JobStatus::Completed)).len(), 1);
    assert!(list(&b, Some(JobStatus::Running)).is_empty());
    let stats = b.stats().unwrap();
    assert_eq!((stats.total.running, stats.total.completed), (0, 1));
    let after = b.events_since(seq, 1000).unwrap();
    assert!(!after.is_empty());
    assert_eq!(b.last_seq(), after.last().unwrap().seq);

    // B is enqueued: not there until durable.
    let before = list(&b, None);
    held(&path, {
        let b = b.clone();
        move || b.enqueue(vec![NewJob::new("b", b"2".to_vec())]).map(|_| ())
    });
    assert_eq!(list(&b, None), before);
    assert!(list(&b, Some(JobStatus::Pending)).is_empty());
    assert_eq!(b.stats().unwrap().total.pending, 0);
    go(&path);
    assert_eq!(
        list(&b, Some(JobStatus::Pending)),
        [("b".into(), JobStatus::Pending)]
    );
    assert_eq!(b.stats().unwrap().total.pending, 1);

    // The queue is paused; a schedule is created.
    held(&path, {
        let b = b.clone();
        move || b.set_paused("default", true)
    });
    assert!(!b.stats().unwrap().queues["default"].paused);
    go(&path);
    assert!(b.stats().unwrap().queues["default"].paused);
    held(&path, {
        let b = b.clone();
        move || {
            b.create_schedule(NewSchedule::new("tick", "*/5 * * * *", "t"))
                .map(|_| ())
        }
    });
    assert!(b.list_schedules().unwrap().is_empty());
    go(&path);
    assert_eq!(b.list_schedules().unwrap().len(), 1);
    b.close().unwrap();
}
