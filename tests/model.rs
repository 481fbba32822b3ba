//! Model-based test: random sequences of operations, restarts included, run against the
//! spool and against a plain in-memory reference model; every observable must agree
//! (each job's status, attempts and lastError; stats; what a claim returns; the names of
//! the events appended, in order; contiguous event sequence numbers).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobspool::{
    Backoff, ClaimRequest, Clock, Error, JobId, JobStatus, ListQuery, ManualClock, NewJob,
    NewSchedule, Retention, Retry, Spool,
};
use proptest::prelude::*;

use common::{conformance, Store, TestBackend};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(spool_matches_the_reference_model);

const QUEUES: [&str; 2] = ["default", "mail"];
const KINDS: [&str; 2] = ["a", "b"];
const KEYS: [&str; 2] = ["k1", "k2"];
/// Deterministic backoff (no jitter) so the model can predict due times.
const BACKOFF: Backoff = Backoff {
    initial: std::time::Duration::from_millis(1000),
    multiplier: 2.0,
    max: std::time::Duration::from_millis(8000),
    jitter: 0.0,
};
const LEASE_MS: u64 = 30_000;
const HOUR: i64 = 3_600_000;

fn retention() -> Retention {
    Retention {
        completed: Duration::from_secs(3600),
        cancelled: Duration::from_secs(3600),
        failed: Duration::from_secs(2 * 3600),
        dead_letter: Duration::from_secs(2 * 3600),
        events: Duration::from_secs(365 * 24 * 3600),
    }
}

#[derive(Debug, Clone)]
struct Spec {
    queue: usize,
    kind: usize,
    priority: i32,
    delay_ms: u64,
    key: Option<usize>,
    max_attempts: u32,
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue(Spec),
    Batch(Vec<Spec>),
    Claim(usize),
    Complete(usize),
    Fail(usize, u8),
    Extend(usize),
    Release(usize),
    Stale(usize),
    Advance(i64),
    Expire,
    Cancel(usize),
    Redrive(usize),
    Pause(usize, bool),
    Prune,
    Restart,
    /// Create the every-minute schedule (SCHEDULE_EXISTS once it exists).
    ScheduleCreate,
    ScheduleToggle(bool),
    Fire,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..2usize,
        0..2usize,
        -1..2i32,
        prop_oneof![Just(0u64), 1..5000u64],
        proptest::option::of(0..2usize),
        1..4u32,
    )
        .prop_map(
            |(queue, kind, priority, delay_ms, key, max_attempts)| Spec {
                queue,
                kind,
                priority,
                delay_ms,
                key,
                max_attempts,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => spec().prop_map(Op::Enqueue),
        1 => proptest::collection::vec(spec(), 1..5).prop_map(Op::Batch),
        4 => (1..4usize).prop_map(Op::Claim),
        3 => any::<usize>().prop_map(Op::Complete),
        2 => (any::<usize>(), 0..3u8).prop_map(|(i, r)| Op::Fail(i, r)),
        1 => any::<usize>().prop_map(Op::Extend),
        1 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Stale),
        3 => prop_oneof![1..3000i64, Just(LEASE_MS as i64 + 1), Just(2 * HOUR + 1)].prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => any::<usize>().prop_map(Op::Redrive),
        1 => (0..2usize, any::<bool>()).prop_map(|(q, p)| Op::Pause(q, p)),
        1 => Just(Op::Prune),
        1 => Just(Op::Restart),
        1 => Just(Op::ScheduleCreate),
        1 => any::<bool>().prop_map(Op::ScheduleToggle),
        2 => Just(Op::Fire),
    ]
}

#[derive(Debug, Clone)]
struct MJob {
    id: JobId,
    seq: usize,
    queue: usize,
    priority: i32,
    due: i64,
    key: Option<usize>,
    status: JobStatus,
    attempts: u32,
    max_attempts: u32,
    last_error: Option<String>,
    finished_at: i64,
    lease: Option<(u64, i64)>,
}

#[derive(Default)]
struct Model {
    jobs: Vec<MJob>,
    paused: [bool; 2],
    events: Vec<&'static str>,
    /// The every-minute schedule: (enabled, next run in ms).
    schedule: Option<(bool, Option<i64>)>,
    /// Enqueue order, the claim order's last tie-breaker (not `jobs.len()`: pruning
    /// shortens `jobs`).
    next_seq: usize,
}

/// The first whole minute strictly after `now`.
fn next_minute(now: i64) -> i64 {
    (now / 60_000 + 1) * 60_000
}

impl Model {
    fn live_with_key(&self, key: usize) -> Option<usize> {
        self.jobs
            .iter()
            .position(|j| j.key == Some(key) && !j.status.is_terminal())
    }

    fn claimable(&self, now: i64) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| {
                let j = &self.jobs[i];
                j.status == JobStatus::Pending && j.due <= now && !self.paused[j.queue]
            })
            .collect();
        v.sort_by_key(|&i| (-self.jobs[i].priority, self.jobs[i].due, self.jobs[i].seq));
        v
    }

    /// A failed attempt: retry with the deterministic backoff, dead-letter, or fail for good.
    fn fail(&mut self, i: usize, now: i64, error: &str, retry: Retry) {
        let j = &mut self.jobs[i];
        j.lease = None;
        j.last_error = Some(error.to_owned());
        self.events.push("job.failed");
        let exhausted = j.attempts >= j.max_attempts;
        if retry != Retry::Never && !exhausted {
            let delay = match retry {
                Retry::After(d) => u64::try_from(d.as_millis()).unwrap(),
                _ => u64::try_from(BACKOFF.base_delay(j.attempts).as_millis()).unwrap(),
            };
            j.status = JobStatus::Pending;
            j.due = now + delay as i64;
            self.events.push("job.retrying");
        } else if retry == Retry::Never {
            j.status = JobStatus::Failed;
            j.finished_at = now;
        } else {
            j.status = JobStatus::DeadLetter;
            j.finished_at = now;
            self.events.push("job.dead_lettered");
        }
    }

    fn expired_lease(&self, i: usize, now: i64) -> bool {
        self.jobs[i].lease.is_some_and(|(_, exp)| exp <= now)
    }
}

struct Harness {
    store: Store,
    clock: ManualClock,
    spool: Spool,
    model: Model,
    /// Claimed attempts the test may act on: (job index, token).
    held: Vec<(usize, u64)>,
}

fn open(store: &Store, clock: &ManualClock) -> Spool {
    store.open(
        Spool::builder()
            .clock(clock.clone())
            .maintenance(false)
            .scheduler(false)
            .default_backoff(BACKOFF)
            .retention(retention()),
    )
}

fn new_job(s: &Spec) -> NewJob {
    let mut j = NewJob::new(KINDS[s.kind], vec![s.kind as u8])
        .queue(QUEUES[s.queue])
        .priority(s.priority)
        .max_attempts(s.max_attempts);
    if s.delay_ms > 0 {
        j = j.delay(Duration::from_millis(s.delay_ms));
    }
    if let Some(k) = s.key {
        j = j.dedupe_key(KEYS[k]);
    }
    j
}

impl Harness {
    fn new(b: TestBackend) -> Self {
        let store = b.store();
        let clock =
            ManualClock::new(DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000).unwrap());
        let spool = open(&store, &clock);
        Harness {
            store,
            clock,
            spool,
            model: Model::default(),
            held: Vec::new(),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies `s` to the model the way the spool must: a dedupe hit returns the holder.
    fn model_enqueue(&mut self, s: &Spec, id: JobId) -> usize {
        if let Some(k) = s.key {
            if let Some(i) = self.model.live_with_key(k) {
                return i;
            }
        }
        let now = self.now();
        let seq = self.model.next_seq;
        self.model.next_seq += 1;
        let index = self.model.jobs.len();
        self.model.jobs.push(MJob {
            id,
            seq,
            queue: s.queue,
            priority: s.priority,
            due: now + s.delay_ms as i64,
            key: s.key,
            status: JobStatus::Pending,
            attempts: 0,
            max_attempts: s.max_attempts,
            last_error: None,
            finished_at: 0,
            lease: None,
        });
        self.model.events.push("job.enqueued");
        index
    }

    fn index_of(&self, id: JobId) -> usize {
        self.model
            .jobs
            .iter()
            .position(|j| j.id == id)
            .expect("a job the model knows")
    }

    fn step(&mut self, op: &Op) {
        let now = self.now();
        match op {
            Op::Enqueue(s) => {
                let job = self.spool.enqueue(new_job(s)).unwrap();
                let existing = s.key.and_then(|k| self.model.live_with_key(k));
                match existing {
                    Some(i) => {
                        assert_eq!(job.id, self.model.jobs[i].id, "dedupe returns the holder")
                    }
                    None => {
                        self.model_enqueue(s, job.id);
                    }
                }
            }
            Op::Batch(specs) => {
                let jobs = self
                    .spool
                    .enqueue_batch(specs.iter().map(new_job).collect())
                    .unwrap();
                for (s, job) in specs.iter().zip(&jobs) {
                    let i = match s.key.and_then(|k| self.model.live_with_key(k)) {
                        Some(i) => i,
                        None => self.model_enqueue(s, job.id),
                    };
                    assert_eq!(job.id, self.model.jobs[i].id);
                }
            }
            Op::Claim(max) => {
                let req = ClaimRequest {
                    queues: vec![],
                    exclude_queues: vec![],
                    kinds: vec![],
                    max: *max,
                    lease_ms: LEASE_MS,
                    worker_id: "model".into(),
                };
                let got = self.spool.claim(&req).unwrap();
                let want: Vec<usize> = self.model.claimable(now).into_iter().take(*max).collect();
                let got_idx: Vec<usize> = got.iter().map(|c| self.index_of(c.job.id)).collect();
                assert_eq!(got_idx, want, "claim order");
                for (c, i) in got.iter().zip(want) {
                    let j = &mut self.model.jobs[i];
                    j.status = JobStatus::Running;
                    j.attempts += 1;
                    j.lease = Some((c.lease.token, now + LEASE_MS as i64));
                    self.model.events.push("job.started");
                    self.held.push((i, c.lease.token));
                }
            }
            Op::Complete(n) | Op::Fail(n, _) | Op::Extend(n) | Op::Release(n) => {
                if self.held.is_empty() {
                    return;
                }
                let (i, token) = self.held.remove(n % self.held.len());
                let id = self.model.jobs[i].id;
                let current = self.model.jobs[i].lease.is_some_and(|(t, _)| t == token)
                    && self.model.jobs[i].status == JobStatus::Running;
                let result: Result<jobspool::Job, Error> = match op {
                    Op::Complete(_) => self.spool.complete(jobspool::Lease::new(id, token), None),
                    Op::Fail(_, r) => {
                        let retry = [
                            Retry::Backoff,
                            Retry::Never,
                            Retry::After(std::time::Duration::from_millis(1500)),
                        ][*r as usize];
                        self.spool
                            .fail(jobspool::Lease::new(id, token), "boom", retry)
                    }
                    Op::Extend(_) => self.spool.extend_lease(
                        jobspool::Lease::new(id, token),
                        Duration::from_millis(LEASE_MS),
                    ),
                    _ => self.spool.release(jobspool::Lease::new(id, token)),
                };
                if !current {
                    assert_eq!(result.unwrap_err().code(), "STALE_LEASE");
                    return;
                }
                if self.model.expired_lease(i, now) {
                    // An expired lease is expired on the spot and the call is rejected.
                    assert_eq!(result.unwrap_err().code(), "STALE_LEASE");
                    self.model.fail(i, now, "lease expired", Retry::Backoff);
                    return;
                }
                result.unwrap();
                match op {
                    Op::Complete(_) => {
                        let j = &mut self.model.jobs[i];
                        j.status = JobStatus::Completed;
                        j.lease = None;
                        j.finished_at = now;
                        self.model.events.push("job.completed");
                    }
                    Op::Fail(_, r) => {
                        let retry = [
                            Retry::Backoff,
                            Retry::Never,
                            Retry::After(std::time::Duration::from_millis(1500)),
                        ][*r as usize];
                        self.model.fail(i, now, "boom", retry);
                    }
                    Op::Extend(_) => {
                        self.model.jobs[i].lease = Some((token, now + LEASE_MS as i64));
                        self.held.push((i, token));
                    }
                    _ => {
                        let j = &mut self.model.jobs[i];
                        j.status = JobStatus::Pending;
                        j.attempts -= 1;
                        j.lease = None;
                        self.model.events.push("job.released");
                    }
                }
            }
            Op::Stale(n) => {
                if self.model.jobs.is_empty() {
                    return;
                }
                let id = self.model.jobs[n % self.model.jobs.len()].id;
                let before = self.spool.get(id).unwrap();
                assert_eq!(
                    self.spool
                        .complete(jobspool::Lease::new(id, u64::MAX), None)
                        .unwrap_err()
                        .code(),
                    "STALE_LEASE"
                );
                assert_eq!(
                    self.spool.get(id).unwrap(),
                    before,
                    "a stale token changes nothing"
                );
            }
            Op::Advance(ms) => self.clock.advance_ms(*ms),
            Op::Expire => {
                let n = self.spool.expire_leases().unwrap();
                let expired: Vec<usize> = (0..self.model.jobs.len())
                    .filter(|&i| {
                        self.model.jobs[i].status == JobStatus::Running
                            && self.model.expired_lease(i, now)
                    })
                    .collect();
                assert_eq!(n, expired.len());
                // The spool expires in lease-expiry order, then id order; events follow it.
                let mut order = expired;
                order.sort_by_key(|&i| {
                    (self.model.jobs[i].lease.map(|l| l.1), self.model.jobs[i].id)
                });
                for i in order {
                    self.model.fail(i, now, "lease expired", Retry::Backoff);
                }
            }
            Op::Cancel(n) => {
                if self.model.jobs.is_empty() {
                    return;
                }
                let i = n % self.model.jobs.len();
                let r = self.spool.cancel(self.model.jobs[i].id);
                if self.model.jobs[i].status == JobStatus::Pending {
                    r.unwrap();
                    self.model.jobs[i].status = JobStatus::Cancelled;
                    self.model.jobs[i].finished_at = now;
                    self.model.events.push("job.cancelled");
                } else {
                    assert_eq!(r.unwrap_err().code(), "JOB_NOT_PENDING");
                }
            }
            Op::Redrive(n) => {
                if self.model.jobs.is_empty() {
                    return;
                }
                let i = n % self.model.jobs.len();
                let r = self.spool.redrive(self.model.jobs[i].id);
                let j = &self.model.jobs[i];
                let dead = matches!(j.status, JobStatus::DeadLetter | JobStatus::Failed);
                let blocked = j.key.and_then(|k| self.model.live_with_key(k)).is_some();
                if dead && !blocked {
                    r.unwrap();
                    let j = &mut self.model.jobs[i];
                    j.status = JobStatus::Pending;
                    j.attempts = 0;
                    j.last_error = None;
                    j.due = now;
                    self.model.events.push("job.redriven");
                } else {
                    assert_eq!(r.unwrap_err().code(), "INVALID_ARGUMENT");
                }
            }
            Op::Pause(q, paused) => {
                // Idempotent: only a change is logged.
                let changed = self.model.paused[*q] != *paused;
                if *paused {
                    self.spool.pause_queue(QUEUES[*q]).unwrap();
                    if changed {
                        self.model.events.push("queue.paused");
                    }
                } else {
                    self.spool.resume_queue(QUEUES[*q]).unwrap();
                    if changed {
                        self.model.events.push("queue.resumed");
                    }
                }
                self.model.paused[*q] = *paused;
            }
            Op::Prune => {
                let n = self.spool.prune().unwrap();
                let keep = |j: &MJob| {
                    let limit = match j.status {
                        JobStatus::Completed | JobStatus::Cancelled => HOUR,
                        JobStatus::Failed | JobStatus::DeadLetter => 2 * HOUR,
                        _ => return true,
                    };
                    j.finished_at >= now - limit
                };
                let before = self.model.jobs.len();
                let kept: Vec<MJob> = self
                    .model
                    .jobs
                    .iter()
                    .filter(|j| keep(j))
                    .cloned()
                    .collect();
                assert_eq!(n as usize, before - kept.len(), "pruned count");
                if n > 0 {
                    self.model.events.push("jobs.pruned");
                }
                // Re-index held attempts to the surviving jobs. A held attempt can point at
                // a pruned job: its lease expired, the job ended (dead-lettered when that
                // was its last attempt) and retention removed it. Such an attempt is gone
                // with its job.
                let held: Vec<(JobId, u64)> = self
                    .held
                    .iter()
                    .map(|(i, t)| (self.model.jobs[*i].id, *t))
                    .collect();
                self.model.jobs = kept;
                self.held = held
                    .into_iter()
                    .filter_map(|(id, t)| {
                        let i = self.model.jobs.iter().position(|j| j.id == id)?;
                        Some((i, t))
                    })
                    .collect();
            }
            Op::ScheduleCreate => {
                let r = self.spool.create_schedule(NewSchedule::new(
                    "every-minute",
                    "* * * * *",
                    KINDS[0],
                ));
                if self.model.schedule.is_some() {
                    assert_eq!(r.unwrap_err().code(), "SCHEDULE_EXISTS");
                } else {
                    let s = r.unwrap();
                    assert_eq!(
                        s.next_run_at.map(|t| t.timestamp_millis()),
                        Some(next_minute(now))
                    );
                    self.model.schedule = Some((true, Some(next_minute(now))));
                    self.model.events.push("schedule.created");
                }
            }
            Op::ScheduleToggle(on) => {
                let r = self.spool.toggle_schedule("every-minute", *on);
                if self.model.schedule.is_none() {
                    assert_eq!(r.unwrap_err().code(), "SCHEDULE_NOT_FOUND");
                } else {
                    r.unwrap();
                    self.model.schedule = Some((*on, on.then(|| next_minute(now))));
                    self.model.events.push(if *on {
                        "schedule.enabled"
                    } else {
                        "schedule.disabled"
                    });
                }
            }
            Op::Fire => {
                let fired = self.spool.fire_due_schedules().unwrap();
                let due = matches!(self.model.schedule, Some((true, Some(t))) if t <= now);
                assert_eq!(fired, u64::from(due), "schedule firing");
                if due {
                    // The job it enqueued is the newest one.
                    let newest = self
                        .spool
                        .list(&ListQuery {
                            limit: Some(10_000),
                            ..ListQuery::default()
                        })
                        .unwrap()
                        .last()
                        .map(|j| j.id)
                        .unwrap();
                    let spec = Spec {
                        queue: 0,
                        kind: 0,
                        priority: 0,
                        delay_ms: 0,
                        key: None,
                        max_attempts: 3,
                    };
                    self.model_enqueue(&spec, newest);
                    self.model.events.push("scheduler.job_triggered");
                    self.model.schedule = Some((true, Some(next_minute(now))));
                }
            }
            Op::Restart => {
                self.spool.close().unwrap();
                self.spool = open(&self.store, &self.clock);
                // Recovery: every running job lost its attempt, in id order.
                let mut running: Vec<usize> = (0..self.model.jobs.len())
                    .filter(|&i| self.model.jobs[i].status == JobStatus::Running)
                    .collect();
                running.sort_by_key(|&i| self.model.jobs[i].id);
                for i in running {
                    self.model
                        .fail(i, now, "lost when the process stopped", Retry::Backoff);
                }
                self.held.clear();
            }
        }
    }

    fn check(&self) {
        let mut counts: BTreeMap<JobStatus, u64> = BTreeMap::new();
        for j in &self.model.jobs {
            let got = self.spool.get(j.id).unwrap();
            assert_eq!(got.status, j.status, "status of {}", j.id);
            assert_eq!(got.attempts, j.attempts, "attempts of {}", j.id);
            assert_eq!(got.last_error, j.last_error, "lastError of {}", j.id);
            *counts.entry(j.status).or_default() += 1;
        }
        let stats = self.spool.stats().unwrap().total;
        for s in JobStatus::ALL {
            assert_eq!(
                stats.of(s),
                counts.get(&s).copied().unwrap_or(0),
                "stats {s}"
            );
        }
        let listed = self
            .spool
            .list(&ListQuery {
                limit: Some(10_000),
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(
            listed.len(),
            self.model.jobs.len(),
            "list holds exactly the model's jobs"
        );
        let events = common::all_events(&self.spool);
        let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
        assert_eq!(names, self.model.events, "event log");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "contiguous seq");
        }
    }
}

fn spool_matches_the_reference_model(b: TestBackend) {
    let config = ProptestConfig {
        cases: 64,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..60))| {
        let mut h = Harness::new(b);
        for op in &ops {
            h.step(op);
            h.check();
        }
        h.spool.close().unwrap();
    });
}
