//! Unit tests of the parent module.

use super::*;
use crate::model::job::NewJob;
use std::collections::{BTreeMap, BTreeSet};

fn job(st: &mut State, prio: i32, due: i64, status: JobStatus) -> Job {
    let id = st.next_id(1000);
    Job {
        status,
        priority: prio,
        scheduled_at: Some(crate::model::clock::to_datetime(due)),
        ..crate::backend::rules::new_job(NewJob::new("t", vec![]).queue("q"), id, 1000, 3)
    }
}

fn req() -> ClaimRequest {
    ClaimRequest {
        queues: vec![],
        exclude_queues: vec![],
        kinds: vec![],
        max: 1,
        lease_ms: 1000,
        worker_id: "w".into(),
    }
}

#[test]
fn ids_are_strictly_increasing_even_in_one_millisecond() {
    let mut st = State::new(7);
    let mut last = st.next_id(5);
    for _ in 0..1000 {
        let id = st.next_id(5);
        assert!(id > last);
        last = id;
    }
    // A clock that goes back does not break the order either.
    assert!(st.next_id(1) > last);
}

#[test]
fn claim_order_is_priority_then_due_then_fifo() {
    let mut st = State::new(1);
    let low = job(&mut st, 0, 1000, JobStatus::Pending);
    let high_late = job(&mut st, 5, 1000, JobStatus::Pending);
    let high_early = job(&mut st, 5, 900, JobStatus::Pending);
    let high_early_2 = job(&mut st, 5, 900, JobStatus::Pending);
    for j in [&low, &high_late, &high_early_2, &high_early] {
        st.apply(None, Some(j), 2000);
    }
    let mut order = vec![];
    while let Some(id) = st.peek_claimable(&req()) {
        order.push(id);
        let j = [&low, &high_late, &high_early, &high_early_2]
            .into_iter()
            .find(|j| j.id == id)
            .unwrap();
        st.apply(Some(j), None, 2000);
    }
    assert_eq!(
        order,
        vec![high_early.id, high_early_2.id, high_late.id, low.id]
    );
}

#[test]
fn delayed_jobs_are_not_claimable_until_promoted() {
    let mut st = State::new(1);
    let j = job(&mut st, 0, 5000, JobStatus::Pending);
    st.apply(None, Some(&j), 1000);
    assert_eq!(st.stats().total.delayed, 1);
    assert_eq!(st.peek_claimable(&req()), None);
    st.promote(4999);
    assert_eq!(st.peek_claimable(&req()), None);
    st.promote(5000);
    assert_eq!(st.peek_claimable(&req()), Some(j.id));
    assert_eq!(st.stats().total.delayed, 0);
    assert_eq!(st.stats().total.pending, 1);
}

#[test]
fn next_due_is_that_of_a_delayed_job_the_request_could_claim() {
    let mut st = State::new(1);
    let mut other = job(&mut st, 0, 3000, JobStatus::Pending);
    other.queue = "other".into();
    let mine = job(&mut st, 0, 5000, JobStatus::Pending);
    st.apply(None, Some(&other), 1000);
    st.apply(None, Some(&mine), 1000);
    assert_eq!(st.next_due_for(&req()), Some(3000));
    let only_q = ClaimRequest {
        queues: vec!["q".into()],
        ..req()
    };
    assert_eq!(st.next_due_for(&only_q), Some(5000));
    st.set_paused("q", true);
    assert_eq!(st.next_due_for(&only_q), None);
    st.set_paused("q", false);
    st.promote(5000);
    assert_eq!(st.next_due_for(&req()), None);
}

#[test]
fn resume_of_a_queue_without_jobs_leaves_no_queue_row() {
    let mut st = State::new(1);
    st.set_paused("empty", true);
    assert!(st.queues.contains_key("empty"));
    assert!(st.stats().queues["empty"].paused);
    st.set_paused("empty", false);
    assert!(!st.queues.contains_key("empty"), "{:?}", st.queues);
    // Resuming a queue never seen does not create it either.
    st.set_paused("never-seen", false);
    assert!(st.queues.is_empty(), "{:?}", st.queues);
    // A queue with jobs keeps its row, unpaused, and loses it with its last job.
    let j = job(&mut st, 0, 0, JobStatus::Pending);
    st.apply(None, Some(&j), 1000);
    st.set_paused("q", true);
    st.set_paused("q", false);
    assert!(!st.queues["q"].paused);
    assert_eq!(st.stats().queues["q"].counts.pending, 1);
    st.apply(Some(&j), None, 1000);
    assert!(st.queues.is_empty(), "{:?}", st.queues);
}

#[test]
fn paused_queue_is_skipped() {
    let mut st = State::new(1);
    let j = job(&mut st, 0, 0, JobStatus::Pending);
    st.apply(None, Some(&j), 1000);
    st.set_paused("q", true);
    assert_eq!(st.peek_claimable(&req()), None);
    st.set_paused("q", false);
    assert_eq!(st.peek_claimable(&req()), Some(j.id));
}

#[test]
fn durable_stats_undo_the_groups_not_yet_durable() {
    let mut st = State::new(1);
    let now = 1_000;
    let a = job(&mut st, 0, now, JobStatus::Pending);
    st.unsynced.begin(0);
    st.apply(None, Some(&a), now);
    st.unsynced.end(1);
    // Group 2 runs it and pauses the queue; group 3 adds a job to another queue.
    st.unsynced.begin(0);
    let mut running = a.clone();
    running.status = JobStatus::Running;
    st.apply(Some(&a), Some(&running), now);
    st.set_paused("q", true);
    st.unsynced.end(2);
    st.unsynced.begin(0);
    let mut b = job(&mut st, 0, now, JobStatus::Pending);
    b.queue = "other".into();
    st.apply(None, Some(&b), now);
    st.unsynced.end(3);
    let live = st.stats();
    assert_eq!(st.durable_stats(3), live);
    let at1 = st.durable_stats(1);
    assert_eq!((at1.total.pending, at1.total.running), (1, 0));
    assert!(!at1.queues["q"].paused);
    assert!(!at1.queues.contains_key("other"));
    let at2 = st.durable_stats(2);
    assert_eq!((at2.total.pending, at2.total.running), (0, 1));
    assert!(at2.queues["q"].paused);
    assert_eq!(st.durable_stats(0), Stats::default());
    // Durable groups are forgotten at the next group's start.
    st.unsynced.begin(3);
    assert_eq!(st.durable_stats(0), live);
}

impl State {
    /// Everything the indexes hold, partitions and queues by name (their numbering and
    /// the `epoch` counter depend on the history, not on the jobs).
    pub(crate) fn snapshot(&self) -> String {
        snapshot(self)
    }
}

fn snapshot(st: &State) -> String {
    let name = |p: u32| {
        let p = &st.parts[p as usize];
        (p.queue.clone(), p.kind.clone())
    };
    let mut parts: Vec<_> = st
        .parts
        .iter()
        .filter(|p| p.live > 0 || !p.ready.is_empty())
        .map(|p| (&p.queue, &p.kind, &p.ready, p.live, p.running))
        .collect();
    parts.sort_by_key(|p| (p.0, p.1));
    let delayed: Vec<_> = st
        .delayed
        .iter()
        .map(|(k, (prio, p))| (k, prio, name(*p)))
        .collect();
    format!(
        "parts {parts:?}\ndelayed {delayed:?}\nqueues {:?}\nby_status {:?}\nfinished {:?}\n\
         leases {:?}\ndigest {:?}\nlast_id {}",
        st.queues, st.by_status, st.finished, st.leases, st.digest, st.last_id
    )
}

/// A small deterministic generator for the mixed workload.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn indexing_all_records_at_once_gives_the_state_apply_maintained() {
    use crate::backend::records::JobIndex;
    use crate::model::clock::to_datetime;
    let mut st = State::new(3);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut jobs: BTreeMap<JobId, Job> = BTreeMap::new();
    let mut now = 10_000;
    st.set_paused("q1", true);
    st.set_paused("idle", true);
    for step in 0..4000 {
        now += 7;
        let pick = |rng: &mut Rng, jobs: &BTreeMap<JobId, Job>| {
            let n = jobs.len() as u64;
            (n > 0).then(|| *jobs.keys().nth(rng.below(n) as usize).unwrap())
        };
        match rng.below(10) {
            0..=3 => {
                let due = now + rng.below(3) as i64 * 500 - 400;
                let mut j = job(&mut st, rng.below(3) as i32 - 1, due, JobStatus::Pending);
                j.queue = format!("q{}", rng.below(3));
                j.kind = format!("k{}", rng.below(2));
                if rng.below(4) == 0 {
                    j.scheduled_at = None;
                    j.created_at = to_datetime(now);
                }
                st.apply(None, Some(&j), now);
                jobs.insert(j.id, j);
            }
            4..=8 => {
                let Some(id) = pick(&mut rng, &jobs) else {
                    continue;
                };
                let old = jobs[&id].clone();
                let mut new = old.clone();
                new.updated_at = to_datetime(now);
                match (old.status, rng.below(4)) {
                    (JobStatus::Pending, _) => {
                        new.status = JobStatus::Running;
                        new.lease = (rng.below(5) > 0).then(|| crate::model::job::LeaseState {
                            token: step,
                            expires_ms: now + rng.below(1000) as i64,
                        });
                    }
                    (JobStatus::Running, 0) => {
                        new.status = JobStatus::Pending;
                        new.lease = None;
                        new.scheduled_at = Some(to_datetime(now + 300));
                    }
                    (JobStatus::Running, r) => {
                        new.status = [
                            JobStatus::Completed,
                            JobStatus::Failed,
                            JobStatus::DeadLetter,
                        ][r as usize - 1];
                        new.lease = None;
                        new.completed_at = (r != 3).then(|| to_datetime(now));
                    }
                    _ => {
                        new.status = JobStatus::Cancelled;
                    }
                }
                st.apply(Some(&old), Some(&new), now);
                jobs.insert(id, new);
            }
            _ => {
                let Some(id) = pick(&mut rng, &jobs) else {
                    continue;
                };
                let old = jobs.remove(&id).unwrap();
                st.apply(Some(&old), None, now);
            }
        }
        if step == 2000 {
            st.set_paused("q1", false);
            st.set_paused("q2", true);
        }
    }
    // Due exactly now (ready), and just after (delayed).
    for due in [now, now + 1] {
        let j = job(&mut st, 0, due, JobStatus::Pending);
        st.apply(None, Some(&j), now);
        jobs.insert(j.id, j);
    }
    st.promote(now);
    let statuses: BTreeSet<_> = jobs.values().map(|j| j.status).collect();
    assert_eq!(statuses.len(), 6, "the workload reaches every status");
    assert!(!st.delayed.is_empty() && !st.leases.is_empty());

    // The same jobs, gathered in four batches in id order.
    let mut bulk = State::new(3);
    bulk.set_paused("idle", true);
    bulk.set_paused("q2", true);
    let all: Vec<&Job> = jobs.values().collect();
    let batches = all
        .chunks(all.len() / 4 + 1)
        .map(|chunk| {
            let mut b = Batch::default();
            chunk.iter().for_each(|j| b.push(&JobIndex::of(j)));
            b
        })
        .collect();
    bulk.index_batches(batches, now);
    assert_eq!(snapshot(&bulk), snapshot(&st));
    assert_eq!(bulk.stats(), st.stats());
    assert_eq!(bulk.durable_stats(0), st.durable_stats(u64::MAX));

    // Indexing more jobs into a state that has some adds to it.
    let mut twice = State::new(3);
    twice.set_paused("idle", true);
    twice.set_paused("q2", true);
    let (a, b) = all.split_at(all.len() / 2);
    for half in [b, a] {
        let mut batch = Batch::default();
        half.iter().for_each(|j| batch.push(&JobIndex::of(j)));
        twice.index_batches(vec![batch], now);
    }
    assert_eq!(snapshot(&twice), snapshot(&st));
}
