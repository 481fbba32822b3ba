//! Ops over a scratch tree, without the writer: what an op stages, and what it does not.

use super::{apply, Ctx, Op, Reply};
use crate::backend::codec::{self, keys};
use crate::backend::sled::overlay::Overlay;
use crate::backend::sled::stage::Staged;
use crate::backend::sled::state::State;
use crate::model::config::Config;
use crate::model::error::Result;
use crate::model::job::{Job, JobStatus, NewJob};

/// 2026-11-28T20:00:00.000Z.
const NOW: i64 = 1_795_896_000_000;

struct Scratch {
    _db: sled::Db,
    tree: crate::backend::sled::logstore::Base,
    lsn: u64,
    overlay: Overlay,
    st: State,
    cfg: Config,
}

impl Scratch {
    fn new() -> Scratch {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = crate::backend::sled::logstore::Base::sled_only((*db).clone());
        Scratch {
            _db: db,
            tree,
            lsn: 0,
            overlay: Overlay::default(),
            st: State::new(7),
            cfg: Config::default(),
        }
    }

    /// Applies `op` to a fresh group; returns its answer and what it staged.
    fn run(&mut self, op: Op) -> (Result<Reply>, Staged) {
        let mut staged = Staged::default();
        let mut ctx = Ctx {
            tree: &self.tree,
            overlay: &self.overlay,
            st: &mut self.st,
            staged: &mut staged,
            cfg: &self.cfg,
            now: NOW,
        };
        let reply = apply(&mut ctx, op);
        (reply, staged)
    }

    /// Applies `op` and writes what it staged to the tree (events aside), as a committed group.
    fn commit(&mut self, op: Op) -> Reply {
        let (reply, staged) = self.run(op);
        // Kept in the overlay as a durable group (job records are not sled's to hold).
        let mut changes: Vec<crate::backend::sled::journal::Change> = Vec::new();
        for (id, job) in staged.jobs {
            let v = job.map(|j| codec::encode(&j).unwrap().into());
            changes.push((keys::job(&id).to_vec().into(), v));
        }
        for (k, v) in staged.raw {
            changes.push((k.into(), v));
        }
        self.lsn += 1;
        self.overlay.insert(self.lsn, &changes);
        self.overlay.mark_synced(self.lsn);
        reply.unwrap()
    }

    fn enqueue(&mut self, jobs: Vec<NewJob>) -> Vec<Job> {
        match self.commit(Op::Enqueue(jobs)) {
            Reply::Enqueued(j) => j.into_iter().map(|e| e.job).collect(),
            other => panic!("{other:?}"),
        }
    }
}

fn assert_nothing_staged(staged: &Staged) {
    assert!(staged.jobs.is_empty(), "jobs staged: {:?}", staged.jobs);
    assert!(
        staged.raw.is_empty(),
        "keys staged: {:?}",
        staged.raw.keys()
    );
    assert!(
        staged.events.is_empty(),
        "events staged: {:?}",
        staged.events
    );
}

/// Cancel used to stage the cancelled record and its event, then read the payload: a failed
/// read answered an error while the cancel still committed.
#[test]
fn staging_never_fails_after_first_write_cancel() {
    let mut s = Scratch::new();
    let job = s.enqueue(vec![NewJob::new("k", b"p".to_vec())]).remove(0);
    let seq = s.st.next_seq;
    s.overlay.fail_reads_of(&keys::payload(&job.id));

    let (reply, staged) = s.run(Op::Cancel {
        id: job.id,
        by: None,
    });
    let err = reply.unwrap_err();
    assert_eq!(err.code(), "STORAGE", "{err}");
    assert_nothing_staged(&staged);
    assert_eq!(s.st.next_seq, seq, "no event sequence number was used");
    assert_eq!(
        s.st.stats().total.pending,
        1,
        "the index still says pending"
    );
    assert_eq!(s.st.stats().total.cancelled, 0);
}

/// Enqueue used to create the batch's new jobs, then read the payload of a job already
/// holding a later job's dedupe key: a failed read answered an error while the new jobs
/// still committed.
#[test]
fn staging_never_fails_after_first_write_enqueue() {
    let mut s = Scratch::new();
    let holder = s
        .enqueue(vec![NewJob::new("k", b"held".to_vec()).dedupe_key("b")])
        .remove(0);
    let seq = s.st.next_seq;
    s.overlay.fail_reads_of(&keys::payload(&holder.id));

    let (reply, staged) = s.run(Op::Enqueue(vec![
        NewJob::new("k", b"new".to_vec()).dedupe_key("a"),
        NewJob::new("k", b"dup".to_vec()).dedupe_key("b"),
    ]));
    let err = reply.unwrap_err();
    assert_eq!(err.code(), "STORAGE", "{err}");
    assert_nothing_staged(&staged);
    assert_eq!(s.st.next_seq, seq, "no event sequence number was used");
    assert_eq!(s.st.stats().total.pending, 1, "only the holder is indexed");
}

#[test]
fn cancel_and_dedupe_enqueue_still_return_payloads() {
    let mut s = Scratch::new();
    let a = s
        .enqueue(vec![NewJob::new("k", b"pa".to_vec()).dedupe_key("a")])
        .remove(0);
    let b = s.enqueue(vec![NewJob::new("k", b"pb".to_vec())]).remove(0);
    let again = s.enqueue(vec![
        NewJob::new("k", b"other".to_vec()),
        NewJob::new("k", b"x".to_vec()).dedupe_key("a"),
    ]);
    assert_eq!(again[1].id, a.id);
    assert_eq!(again[1].payload, b"pa");
    assert_eq!(again[0].payload, b"other");
    match s.commit(Op::Cancel { id: b.id, by: None }) {
        Reply::Job(j) => {
            assert_eq!(j.status, JobStatus::Cancelled);
            assert_eq!(j.payload, b"pb");
        }
        other => panic!("{other:?}"),
    }
}
