//! The worker pool: N threads running registered handlers, with per-queue concurrency
//! limits, automatic lease heartbeats, timeouts, panic isolation and graceful shutdown.
//!
//! One dispatcher thread claims jobs in batches (as many as there are free slots) and hands
//! them to the worker threads; a supervisor thread extends leases and enforces `timeoutMs`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::api::spool::Spool;
use crate::model::error::{Error, Result};
use crate::model::job::{Job, JobId};
use crate::model::types::{ClaimRequest, Claimed, Retry};

/// Why a handler's attempt failed, and whether to retry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    message: String,
    retry: Retry,
}

impl JobError {
    /// A failure worth retrying with the job's backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retry: Retry::Backoff,
        }
    }
    /// A failure to retry after exactly `after`.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        JobError {
            message: message.into(),
            retry: Retry::After(ms),
        }
    }
    /// A permanent failure: the job becomes `failed` and is not retried.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            retry: Retry::Never,
        }
    }
    /// The error text stored as `lastError`.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        JobError::retry(e.to_string())
    }
}

/// What a handler returns: an optional result (stored on the job) or an error.
pub type HandlerResult = std::result::Result<Option<Vec<u8>>, JobError>;

type HandlerFn = dyn Fn(&JobContext) -> HandlerResult + Send + Sync;

/// What a handler gets: the job (payload included), its attempt, a cancellation flag and a
/// way to report progress.
pub struct JobContext {
    job: Job,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Option<String>>>,
}

impl JobContext {
    /// The job, status `running`.
    #[must_use]
    pub fn job(&self) -> &Job {
        &self.job
    }
    /// The payload bytes.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.job.payload
    }
    /// 1-based attempt number.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }
    /// True once the attempt timed out or the pool is shutting down past its grace period:
    /// stop work and return; the result will be discarded.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
    /// The cancellation flag itself, to hand to code that polls it.
    #[must_use]
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
    /// Records a progress note, visible through [`WorkerPool::running`].
    pub fn report_progress(&self, note: impl Into<String>) {
        *self.progress.lock() = Some(note.into());
    }
}

/// A job the pool is running, as [`WorkerPool::running`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its type.
    pub kind: String,
    /// The last progress note its handler reported.
    pub progress: Option<String>,
}

struct Slot {
    token: u64,
    queue: String,
    kind: String,
    started_ms: i64,
    timeout_ms: Option<u64>,
    extended_ms: i64,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Option<String>>>,
}

/// Settings for a [`WorkerPool`].
pub struct WorkerPoolBuilder {
    spool: Spool,
    handlers: HashMap<String, Arc<HandlerFn>>,
    concurrency: usize,
    queues: Vec<String>,
    queue_limits: HashMap<String, usize>,
    lease: Duration,
    worker_id: String,
    prefetch: Option<usize>,
}

impl WorkerPoolBuilder {
    /// Registers the handler for job type `kind`. Jobs of types without a handler are not
    /// claimed by this pool.
    #[must_use]
    pub fn handler<F>(mut self, kind: impl Into<String>, f: F) -> Self
    where
        F: Fn(&JobContext) -> HandlerResult + Send + Sync + 'static,
    {
        self.handlers.insert(kind.into(), Arc::new(f));
        self
    }
    /// Number of worker threads (jobs run at once). Default = 4.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Jobs claimed ahead of free workers, so claims (one writer round each) come in
    /// batches. They are leased (and heartbeated) while they wait. Default = `concurrency`;
    /// raise it for many short jobs, lower it to 0 for long ones shared with other pools.
    #[must_use]
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }
    /// Serve only these queues. Default = every queue.
    #[must_use]
    pub fn queues(mut self, queues: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }
    /// At most `n` jobs of `queue` run at once in this pool. Default = no limit.
    #[must_use]
    pub fn queue_limit(mut self, queue: impl Into<String>, n: usize) -> Self {
        self.queue_limits.insert(queue.into(), n);
        self
    }
    /// Lease per claim; heartbeats extend it every third of it. Default = the spool's (30 s).
    #[must_use]
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }
    /// Recorded in each execution. Default = `pid-<pid>`.
    #[must_use]
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }

    /// Starts the threads.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for no handlers, zero concurrency or a zero lease.
    pub fn start(self) -> Result<WorkerPool> {
        if self.handlers.is_empty() {
            return Err(Error::invalid("a worker pool needs at least one handler"));
        }
        if self.concurrency == 0 || self.concurrency > 4096 {
            return Err(Error::invalid("concurrency must be between 1 and 4096"));
        }
        if self.lease < Duration::from_millis(10) {
            return Err(Error::invalid("the lease must be at least 10 ms"));
        }
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        let prefetch = self.prefetch.unwrap_or(self.concurrency).min(65_536);
        let capacity = self.concurrency + prefetch;
        let shared = Arc::new(PoolShared {
            payload_limit: self.spool.payload_limit(),
            capacity,
            spool: self.spool,
            handlers: self.handlers,
            kinds,
            queues: self.queues,
            queue_limits: self.queue_limits,
            lease: self.lease,
            worker_id: self.worker_id,
            slots: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            stats: PoolCounters::default(),
        });
        let (job_tx, job_rx) = bounded::<Claimed>(capacity);
        let (done_tx, done_rx) = unbounded::<()>();
        let mut threads = Vec::new();
        for i in 0..self.concurrency {
            let (s, rx, done) = (shared.clone(), job_rx.clone(), done_tx.clone());
            threads.push(spawn(&format!("jobspool-worker-{i}"), move || {
                worker_loop(&s, &rx, &done)
            })?);
        }
        let s = shared.clone();
        let dispatcher = spawn("jobspool-dispatch", move || {
            dispatch_loop(&s, &job_tx, &done_rx)
        })?;
        let (sup_stop, sup_rx) = bounded::<()>(1);
        let s = shared.clone();
        let supervisor = spawn("jobspool-supervisor", move || supervise_loop(&s, &sup_rx))?;
        Ok(WorkerPool {
            shared,
            threads,
            dispatcher: Some(dispatcher),
            supervisor: Some((sup_stop, supervisor)),
        })
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| Error::storage("starting a pool thread", e))
}

#[derive(Default)]
struct PoolCounters {
    completed: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    timed_out: AtomicU64,
}

struct PoolShared {
    spool: Spool,
    handlers: HashMap<String, Arc<HandlerFn>>,
    kinds: Vec<String>,
    queues: Vec<String>,
    queue_limits: HashMap<String, usize>,
    lease: Duration,
    worker_id: String,
    /// Running plus prefetched jobs at most.
    capacity: usize,
    payload_limit: usize,
    slots: Mutex<HashMap<JobId, Slot>>,
    /// Handlers executing now (a timed-out or released handler counts until it returns).
    busy: AtomicUsize,
    stopping: AtomicBool,
    stats: PoolCounters,
}

impl PoolShared {
    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// The claim requests that fill the free slots without passing any queue's limit.
    fn requests(&self) -> Vec<ClaimRequest> {
        let slots = self.slots.lock();
        let free = self.capacity.saturating_sub(slots.len());
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
const HANDLER_EXIT_WAIT: Duration = Duration::from_secs(10);

/// How long an idle dispatcher waits before looking at the stop flag again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

fn dispatch_loop(s: &PoolShared, jobs: &Sender<Claimed>, done: &Receiver<()>) {
    while !s.stopping.load(Ordering::Acquire) {
        let reqs = s.requests();
        if reqs.is_empty() {
            // Every slot is busy: wait for one to finish.
            let _ = done.recv_timeout(IDLE_WAIT);
            continue;
        }
        let mut got = 0;
        // Read before claiming: work that arrives after the claims looked moves it.
        let epoch = s.spool.engine().work_epoch();
        for req in &reqs {
            let claimed = match s.spool.claim(req) {
                Ok(v) => v,
                Err(_) => return, // storage failure or closed spool: every caller sees it
            };
            let room = s.capacity.saturating_sub(s.slots.lock().len());
            debug_assert!(claimed.len() <= room);
            for c in claimed {
                got += 1;
                let now = s.spool.now_ms();
                s.slots.lock().insert(
                    c.job.id,
                    Slot {
                        token: c.token,
                        queue: c.job.queue.clone(),
                        kind: c.job.kind.clone(),
                        started_ms: now,
                        timeout_ms: c.job.timeout_ms,
                        extended_ms: now,
                        cancel: Arc::new(AtomicBool::new(false)),
                        progress: Arc::new(Mutex::new(None)),
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

fn worker_loop(s: &PoolShared, jobs: &Receiver<Claimed>, done: &Sender<()>) {
    for claimed in jobs {
        run_one(s, claimed);
        let _ = done.send(());
    }
}

fn run_one(s: &PoolShared, claimed: Claimed) {
    let Claimed { job, token } = claimed;
    if s.stopping.load(Ordering::Acquire) {
        // A prefetched job not started before shutdown: its slot is released by `stop`.
        return;
    }
    s.busy.fetch_add(1, Ordering::AcqRel);
    run_handler(s, job, token);
    s.busy.fetch_sub(1, Ordering::AcqRel);
}

fn run_handler(s: &PoolShared, job: Job, token: u64) {
    let id = job.id;
    let now = s.spool.now_ms();
    let Some((cancel, progress)) = s.slots.lock().get_mut(&id).map(|sl| {
        // The timeout counts from here, not from the (possibly prefetched) claim.
        sl.started_ms = now;
        (sl.cancel.clone(), sl.progress.clone())
    }) else {
        return;
    };
    let Some(handler) = s.handlers.get(&job.kind).cloned() else {
        return;
    };
    let ctx = JobContext {
        job,
        cancel,
        progress,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&ctx)));
    // The slot goes when the outcome is recorded; a timed-out or released slot is gone
    // already and its late outcome is discarded (the token is stale by then).
    let still_ours = s.slots.lock().get(&id).is_some_and(|sl| sl.token == token);
    if still_ours {
        // Completions go to the engine's completer without waiting for their fsync: the
        // job counts as finished once durable, and the worker moves on meanwhile. Should
        // the process die first, the job is still `running` on disk and is recovered.
        let _ = match outcome {
            Ok(Ok(Some(result))) if result.len() > s.payload_limit => {
                s.stats.failed.fetch_add(1, Ordering::Relaxed);
                let msg = format!(
                    "result of {} bytes is over the limit of {} bytes",
                    result.len(),
                    s.payload_limit
                );
                s.spool.fail(id, token, msg, Retry::Never).map(|_| ())
            }
            Ok(Ok(result)) => {
                s.stats.completed.fetch_add(1, Ordering::Relaxed);
                s.spool.engine().complete_later(id, token, result)
            }
            Ok(Err(e)) => {
                s.stats.failed.fetch_add(1, Ordering::Relaxed);
                s.spool.fail(id, token, e.message, e.retry).map(|_| ())
            }
            Err(panic) => {
                s.stats.panicked.fetch_add(1, Ordering::Relaxed);
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into());
                let msg = format!("handler panicked: {msg}");
                s.spool.fail(id, token, msg, Retry::Backoff).map(|_| ())
            }
        };
    }
    let mut slots = s.slots.lock();
    if slots.get(&id).is_some_and(|sl| sl.token == token) {
        slots.remove(&id);
    }
}

/// How often the supervisor looks at running jobs at most (timeouts are checked against
/// the spool's clock, so an injected clock moves them too).
const SUPERVISE_TICK: Duration = Duration::from_millis(20);

fn supervise_loop(s: &PoolShared, stop: &Receiver<()>) {
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
                let _ = s
                    .spool
                    .fail(id, token, format!("timed out after {t} ms"), Retry::Backoff);
            }
        }
        for (id, token) in extends {
            match s.spool.extend_lease(id, token, s.lease) {
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

/// Counts of what a pool did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Attempts completed.
    pub completed: u64,
    /// Attempts whose handler returned an error.
    pub failed: u64,
    /// Attempts whose handler panicked.
    pub panicked: u64,
    /// Attempts failed by their timeout.
    pub timed_out: u64,
}

/// Running worker threads over one spool. Stop it with [`WorkerPool::shutdown`]; dropping
/// it shuts down with a 30 s grace period.
pub struct WorkerPool {
    shared: Arc<PoolShared>,
    threads: Vec<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
    supervisor: Option<(Sender<()>, JoinHandle<()>)>,
}

impl WorkerPool {
    /// A pool over `spool`; add handlers, then [`WorkerPoolBuilder::start`].
    #[must_use]
    pub fn builder(spool: &Spool) -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            lease: spool.default_lease(),
            spool: spool.clone(),
            handlers: HashMap::new(),
            concurrency: 4,
            queues: Vec::new(),
            queue_limits: HashMap::new(),
            worker_id: format!("pid-{}", std::process::id()),
            prefetch: None,
        }
    }

    /// The jobs running now, with their last progress note.
    #[must_use]
    pub fn running(&self) -> Vec<RunningJob> {
        let slots = self.shared.slots.lock();
        let mut v: Vec<RunningJob> = slots
            .iter()
            .map(|(id, sl)| RunningJob {
                id: *id,
                queue: sl.queue.clone(),
                kind: sl.kind.clone(),
                progress: sl.progress.lock().clone(),
            })
            .collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// What the pool did so far.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.stats;
        PoolStats {
            completed: c.completed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
        }
    }

    /// True when nothing this pool could claim (its queues and types, delayed jobs
    /// included) is pending or running, and it runs nothing.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        let req = ClaimRequest {
            queues: self.shared.queues.clone(),
            exclude_queues: Vec::new(),
            kinds: self.shared.kinds.clone(),
            max: 0,
            lease_ms: 0,
            worker_id: String::new(),
        };
        self.shared.busy.load(Ordering::Acquire) == 0
            && self.shared.slots.lock().is_empty()
            && !self.shared.spool.has_work(&req)
    }

    /// Stops claiming, waits up to `grace` for running handlers, then hands unfinished jobs
    /// back to pending without counting their attempt (their handlers see the cancellation
    /// flag; late results are discarded). Returns how many jobs were handed back.
    pub fn shutdown(mut self, grace: Duration) -> usize {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> usize {
        let s = &self.shared;
        if s.stopping.swap(true, Ordering::AcqRel) {
            return 0;
        }
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
        // Wait for running handlers (prefetched jobs are not started any more).
        let deadline = Instant::now() + grace;
        while s.busy.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some((stop, h)) = self.supervisor.take() {
            drop(stop);
            let _ = h.join();
        }
        // Hand back what is left, prefetched or still running, without counting the attempt,
        // and tell the handlers still running to stop.
        let left: Vec<(JobId, Slot)> = s.slots.lock().drain().collect();
        let mut released = 0;
        for (id, sl) in left {
            sl.cancel.store(true, Ordering::Release);
            if s.spool.release(id, sl.token).is_ok() {
                released += 1;
            }
        }
        // Give cancelled handlers time to notice and return (the `work` command's handler
        // terminates its process group), so nothing keeps running behind a released job.
        let deadline = Instant::now() + HANDLER_EXIT_WAIT;
        while s.busy.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Completions handed to the completer are committed before the pool reports it
        // stopped.
        s.spool.engine().flush_completions();
        // A handler that ignores cancellation keeps its thread until it returns (its outcome
        // is discarded); the others are joined.
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
        released
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(30));
    }
}
