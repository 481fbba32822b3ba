//! The pool's threads: the dispatcher claims jobs for the free slots, workers run handlers
//! (panics caught, completions handed to the engine's completer), and the supervisor
//! extends leases and enforces timeouts.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::handler::{HandlerFn, JobContext};
use super::sizing::Sizing;
use super::Slot;
use crate::api::spool::Spool;
use crate::engine::retry::ErrorBackoff;
use crate::model::error::Error;
use crate::model::job::{Job, JobId};
use crate::model::types::{ClaimRequest, Claimed, Lease, Retry};

#[derive(Default)]
pub(super) struct PoolCounters {
    pub(super) completed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) timed_out: AtomicU64,
    pub(super) claims: AtomicU64,
}

pub(super) struct PoolShared {
    pub(super) spool: Spool,
    pub(super) handlers: HashMap<String, Arc<HandlerFn>>,
    pub(super) kinds: Vec<String>,
    pub(super) queues: Vec<String>,
    pub(super) queue_limits: HashMap<String, usize>,
    pub(super) lease: Duration,
    pub(super) worker_id: String,
    /// Running plus prefetched jobs at most, fixed or measured.
    pub(super) sizing: Sizing,
    pub(super) payload_limit: usize,
    pub(super) slots: Mutex<HashMap<JobId, Slot>>,
    /// Handlers executing now (a timed-out or released handler counts until it returns).
    pub(super) busy: AtomicUsize,
    pub(super) stopping: AtomicBool,
    pub(super) stats: PoolCounters,
}

impl PoolShared {
    pub(super) fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the dispatcher claims now: when a slot is free and no more than half of the
    /// capacity is claimed jobs waiting for a worker. Refilling one slot per finished job
    /// would cost one claim (one transaction, on a SQL store) per job; waiting until the
    /// waiting jobs run low claims the free room in bulk while the workers stay busy.
    pub(super) fn should_claim(&self) -> bool {
        let capacity = self.sizing.capacity();
        let held = self.slots.lock().len();
        let free = capacity.saturating_sub(held);
        let waiting = held.saturating_sub(self.busy.load(Ordering::Acquire));
        free > 0 && waiting <= capacity / 2
    }

    /// The claim requests that fill the free slots without passing any queue's limit.
    pub(super) fn requests(&self) -> Vec<ClaimRequest> {
        let capacity = self.sizing.capacity();
        let slots = self.slots.lock();
        let free = capacity.saturating_sub(slots.len());
        if free == 0 {
            return Vec::new();
        }
        let base = ClaimRequest {
            queues: self.queues.clone(),
            exclude_queues: Vec::new(),
            kinds: self.kinds.clone(),
            max: free,
            lease_ms: self.lease_ms(),
            worker_id: self.worker_id.clone(),
        };
        if self.queue_limits.is_empty() {
            return vec![base];
        }
        let mut reqs = Vec::new();
        let mut limited = Vec::new();
        // Every request's max comes out of the same free slots, so together they never
        // claim more than `free`.
        let mut free = free;
        for (q, limit) in &self.queue_limits {
            limited.push(q.clone());
            if !self.queues.is_empty() && !self.queues.contains(q) {
                continue;
            }
            let running = slots.values().filter(|s| s.queue == *q).count();
            let room = limit.saturating_sub(running).min(free);
            if room > 0 {
                free -= room;
                reqs.push(ClaimRequest {
                    queues: vec![q.clone()],
                    max: room,
                    ..base.clone()
                });
            }
        }
        // Unlimited queues: everything served except the limited ones.
        if free > 0 {
            reqs.push(ClaimRequest {
                exclude_queues: limited,
                max: free,
                ..base
            });
        }
        reqs
    }
}

/// How long shutdown waits for cancelled handlers to return after the grace period.
pub(super) const HANDLER_EXIT_WAIT: Duration = Duration::from_secs(10);

/// How long an idle dispatcher waits before looking at the stop flag again.
pub(super) const IDLE_WAIT: Duration = Duration::from_millis(100);

pub(super) fn dispatch_loop(s: &PoolShared, jobs: &Sender<Claimed>, done: &Receiver<()>) {
    let mut backoff = ErrorBackoff::default();
    'dispatch: while !s.stopping.load(Ordering::Acquire) {
        if !s.should_claim() {
            // Every slot is busy, or enough claimed jobs wait to start: wait for one to
            // finish.
            let _ = done.recv_timeout(IDLE_WAIT);
            continue;
        }
        let reqs = s.requests();
        if reqs.is_empty() {
            let _ = done.recv_timeout(IDLE_WAIT);
            continue;
        }
        let mut got = 0;
        // Read before claiming: work that arrives after the claims looked moves it.
        let epoch = s.spool.engine().work_epoch();
        for req in &reqs {
            let asked = Instant::now();
            let claimed = match s.spool.claim(req) {
                Ok(v) => {
                    backoff.succeeded();
                    if !v.is_empty() {
                        s.sizing.observe_claim(asked.elapsed());
                        s.stats.claims.fetch_add(1, Ordering::Relaxed);
                    }
                    v
                }
                Err(Error::ShuttingDown) => return,
                Err(e) => {
                    // A lost connection or a restarting server: the jobs already running
                    // go on, and claiming resumes after a growing wait (woken early by
                    // a finished job, checked against `stopping` each time).
                    let _ = done.recv_timeout(backoff.failed("worker pool claim", &e));
                    continue 'dispatch;
                }
            };
            for c in claimed {
                got += 1;
                let now = s.spool.now_ms();
                s.slots.lock().insert(
                    c.job.id,
                    Slot {
                        token: c.lease.token,
                        queue: c.job.queue.clone(),
                        kind: c.job.kind.clone(),
                        started_ms: now,
                        timeout_ms: c
                            .job
                            .timeout
                            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                        extended_ms: now,
                        cancel: Arc::new(AtomicBool::new(false)),
                        progress: Arc::new(Mutex::new(None)),
                        running: Arc::new(AtomicBool::new(false)),
                    },
                );
                if jobs.send(c).is_err() {
                    return;
                }
            }
        }
        while done.try_recv().is_ok() {}
        if got == 0 {
            s.spool
                .engine()
                .wait_for_work(epoch, &reqs, Instant::now() + IDLE_WAIT);
        }
    }
}

pub(super) fn worker_loop(s: &PoolShared, jobs: &Receiver<Claimed>, done: &Sender<()>) {
    for claimed in jobs {
        run_one(s, claimed);
        let _ = done.send(());
    }
}

pub(super) fn run_one(s: &PoolShared, claimed: Claimed) {
    let Claimed { job, lease } = claimed;
    let token = lease.token;
    if s.stopping.load(Ordering::Acquire) {
        // A prefetched job not started before shutdown: its slot is released by `stop`.
        return;
    }
    s.busy.fetch_add(1, Ordering::AcqRel);
    run_handler(s, job, token);
    s.busy.fetch_sub(1, Ordering::AcqRel);
}

pub(super) fn run_handler(s: &PoolShared, job: Job, token: u64) {
    let id = job.id;
    if !lease_still_holds(s, id, token) {
        return;
    }
    let now = s.spool.now_ms();
    let Some(handler) = s.handlers.get(&job.kind).cloned() else {
        return;
    };
    let Some((cancel, progress, running)) = s.slots.lock().get_mut(&id).map(|sl| {
        // The timeout counts from here, not from the (possibly prefetched) claim.
        sl.started_ms = now;
        sl.running.store(true, Ordering::Release);
        (sl.cancel.clone(), sl.progress.clone(), sl.running.clone())
    }) else {
        return;
    };
    let span = tracing::info_span!(
        "job",
        job.id = %id,
        "job.type" = %job.kind,
        job.queue = %job.queue,
        job.attempt = job.attempts,
    );
    let _entered = span.enter();
    tracing::debug!("job started");
    let ctx = JobContext {
        job,
        cancel,
        progress,
    };
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&ctx)));
    // The outcome is this slot's to record only if `stop` (or a timeout, or a lost lease)
    // has not taken the slot: decide and take it under one lock, so a job whose outcome
    // is being recorded is never also handed back. Only then is the handler not running.
    let still_ours = {
        let mut slots = s.slots.lock();
        let ours = slots.get(&id).is_some_and(|sl| sl.token == token);
        if ours {
            slots.remove(&id);
        }
        ours
    };
    running.store(false, Ordering::Release);
    s.sizing.observe_handler(started.elapsed());
    let seconds = started.elapsed().as_secs_f64();
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let label = match &outcome {
        Ok(Ok(_)) => "completed",
        Ok(Err(_)) => "failed",
        Err(_) => "panicked",
    };
    s.spool.engine().observe_handler(label, seconds);
    // A timed-out or released slot is gone already and its late outcome is discarded (the
    // token is stale by then).
    if still_ours {
        // Completions go to the engine's completer without waiting for their fsync: the
        // job counts as finished once durable, and the worker moves on meanwhile. Should
        // the process die first, the job is still `running` on disk and is recovered.
        let _ = match outcome {
            Ok(Ok(Some(result))) if result.len() > s.payload_limit => {
                s.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    outcome = "failed",
                    duration_ms,
                    size = result.len(),
                    "job result over the payload limit"
                );
                let msg = format!(
                    "result of {} bytes is over the limit of {} bytes",
                    result.len(),
                    s.payload_limit
                );
                s.spool
                    .fail(Lease::new(id, token), msg, Retry::Never)
                    .map(|_| ())
            }
            Ok(Ok(result)) => {
                s.stats.completed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(outcome = "completed", duration_ms, "job completed");
                s.spool.engine().complete_later(id, token, result)
            }
            Ok(Err(e)) => {
                s.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(outcome = "failed", duration_ms, error = %e.message, "job failed");
                s.spool
                    .fail(Lease::new(id, token), e.message, e.retry)
                    .map(|_| ())
            }
            Err(panic) => {
                s.stats.panicked.fetch_add(1, Ordering::Relaxed);
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into());
                let msg = format!("handler panicked: {msg}");
                tracing::error!(outcome = "panicked", duration_ms, error = %msg, "job panicked");
                s.spool
                    .fail(Lease::new(id, token), msg, Retry::Backoff)
                    .map(|_| ())
            }
        };
    } else {
        tracing::info!(
            outcome = label,
            duration_ms,
            "job returned after its lease was lost (timed out or released); outcome discarded"
        );
    }
}

/// Whether a claimed job may start: true unless its heartbeat is overdue (the process was
/// frozen, or its claim waited long in the prefetch) and renewing the lease now fails
/// because it was lost, in which case the slot is dropped. Without this check, a pool
/// paused past its lease (SIGSTOP, a suspended VM) would on waking start jobs that another
/// process has claimed or even completed since: fencing would discard the outcome, but the
/// handler's side effects would happen twice.
fn lease_still_holds(s: &PoolShared, id: JobId, token: u64) -> bool {
    let lease_ms = i64::try_from(s.lease.as_millis()).unwrap_or(i64::MAX);
    let now = s.spool.now_ms();
    let overdue =
        s.slots.lock().get(&id).is_some_and(|sl| {
            sl.token == token && now.saturating_sub(sl.extended_ms) >= lease_ms / 3
        });
    if !overdue {
        return true;
    }
    match s.spool.extend_lease(Lease::new(id, token), s.lease) {
        Ok(_) => {
            if let Some(sl) = s.slots.lock().get_mut(&id) {
                sl.extended_ms = now;
            }
            true
        }
        Err(Error::StaleLease { .. } | Error::JobNotFound { .. }) => {
            tracing::info!(job.id = %id, "claimed job not started: its lease was lost while it waited");
            let mut slots = s.slots.lock();
            if slots.get(&id).is_some_and(|sl| sl.token == token) {
                slots.remove(&id);
            }
            false
        }
        // Storage trouble: start it; the outcome is fenced by the token either way.
        Err(_) => true,
    }
}

/// How often the supervisor looks at running jobs at most (timeouts are checked against
/// the spool's clock, so an injected clock moves them too).
pub(super) const SUPERVISE_TICK: Duration = Duration::from_millis(20);

pub(super) fn supervise_loop(s: &PoolShared, stop: &Receiver<()>) {
    loop {
        match stop.recv_timeout(SUPERVISE_TICK) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = s.spool.now_ms();
        let lease_ms = i64::try_from(s.lease.as_millis()).unwrap_or(i64::MAX);
        let mut timeouts = Vec::new();
        let mut extends = Vec::new();
        {
            let slots = s.slots.lock();
            for (id, sl) in slots.iter() {
                let limit = sl.timeout_ms.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                if limit.is_some_and(|t| now.saturating_sub(sl.started_ms) >= t) {
                    timeouts.push((*id, sl.token, sl.timeout_ms.unwrap_or(0)));
                } else if now.saturating_sub(sl.extended_ms) >= lease_ms / 3 {
                    extends.push((*id, sl.token));
                }
            }
        }
        for (id, token, t) in timeouts {
            let slot = s.slots.lock().remove(&id);
            if let Some(sl) = slot {
                sl.cancel.store(true, Ordering::Release);
                s.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                let _ = s.spool.fail(
                    Lease::new(id, token),
                    format!("timed out after {t} ms"),
                    Retry::Backoff,
                );
            }
        }
        for (id, token) in extends {
            match s.spool.extend_lease(Lease::new(id, token), s.lease) {
                Ok(_) => {
                    if let Some(sl) = s.slots.lock().get_mut(&id) {
                        sl.extended_ms = now;
                    }
                }
                Err(Error::StaleLease { .. } | Error::JobNotFound { .. }) => {
                    // Lost the lease (it expired before the heartbeat): stop the handler.
                    if let Some(sl) = s.slots.lock().remove(&id) {
                        sl.cancel.store(true, Ordering::Release);
                    }
                }
                Err(_) => {}
            }
        }
    }
}
