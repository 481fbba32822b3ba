//! The worker pool: N threads running registered handlers, with per-queue concurrency
//! limits, automatic lease heartbeats, timeouts, panic isolation and graceful shutdown.
//!
//! One dispatcher thread claims jobs in batches (as many as there are free slots) and hands
//! them to the worker threads; a supervisor thread extends leases and enforces `timeoutMs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::Mutex;

mod handler;
mod run;
mod sizing;

use crate::api::spool::Spool;
use crate::model::error::{Error, Result};
use crate::model::job::JobId;
use crate::model::types::{ClaimRequest, Claimed, Lease};

use handler::HandlerFn;
pub use handler::{HandlerResult, JobContext, JobError, RunningJob, TypedJob};
use run::{
    dispatch_loop, supervise_loop, worker_loop, PoolCounters, PoolShared, HANDLER_EXIT_WAIT,
};
use sizing::Sizing;

struct Slot {
    token: u64,
    queue: String,
    kind: String,
    started_ms: i64,
    timeout_ms: Option<u64>,
    extended_ms: i64,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Option<String>>>,
    /// Its handler has started and not returned yet. Set under the slots' lock when it
    /// starts, so once `stop` has taken a slot out, this only goes from true to false.
    running: Arc<AtomicBool>,
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
    /// Registers a typed handler for `T`'s job type ([`TypedJob::KIND`]): the payload is
    /// decoded from JSON as `T` (a payload that does not decode fails the job permanently,
    /// without retries), and what the handler returns is stored as the job's JSON result
    /// (`()` or `None` store none).
    ///
    /// ```
    /// use jobspool::{JobError, Spool, TypedJob, WorkerPool};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Resize { width: u32 }
    /// impl TypedJob for Resize { const KIND: &'static str = "image.resize"; }
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spool = Spool::open(dir.path().join("q"))?;
    /// let job = spool.enqueue_typed(&Resize { width: 64 })?;
    /// let pool = WorkerPool::builder(&spool)
    ///     .handle(|_ctx, r: Resize| {
    ///         if r.width == 0 { return Err(JobError::permanent("zero width")); }
    ///         Ok(r.width * 2)                                  // stored as the result: 128
    ///     })
    ///     .start()?;
    /// # while spool.get(job.id)?.status != jobspool::JobStatus::Completed {
    /// #     std::thread::sleep(std::time::Duration::from_millis(5));
    /// # }
    /// assert_eq!(spool.get(job.id)?.result.as_deref(), Some(&b"128"[..]));
    /// pool.shutdown(std::time::Duration::from_secs(5));
    /// # Ok::<(), jobspool::Error>(())
    /// ```
    #[must_use]
    pub fn handle<T, R, F>(self, f: F) -> Self
    where
        T: TypedJob,
        R: serde::Serialize,
        F: Fn(&JobContext, T) -> Result<R, JobError> + Send + Sync + 'static,
    {
        self.handler(T::KIND, move |ctx| {
            let payload: T = ctx.payload_as()?;
            let out = f(ctx, payload)?;
            let bytes = serde_json::to_vec(&out)
                .map_err(|e| JobError::permanent(format!("result does not encode: {e}")))?;
            Ok((bytes != b"null").then_some(bytes))
        })
    }
    /// Number of worker threads (jobs run at once). Default = 4.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Fixes how many jobs are claimed ahead of free workers (they are leased, and
    /// heartbeated, while they wait). By default the pool sizes this itself: enough for its
    /// workers to stay busy through two claims, from the claim and handler times it
    /// measures, between `concurrency` and 2048 (slow handlers hold about two jobs per
    /// worker). Set 0 for long jobs shared with other pools that must not wait behind this
    /// one's claimed jobs.
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
    /// `INVALID_ARGUMENT` for no handlers, a concurrency of 0 or over 4,096, a lease under
    /// 10 ms, or a queue or handler type name that no job can have (empty, over 256 bytes,
    /// holding a control character: the rules of `enqueue`).
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
        // Names no job can have would make a pool that never runs anything.
        for kind in self.handlers.keys() {
            crate::model::limits::validate_name("a handler's job type", kind)?;
        }
        for queue in self.queues.iter().chain(self.queue_limits.keys()) {
            crate::model::limits::validate_name("a pool's queue", queue)?;
        }
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        let sizing = Sizing::new(self.concurrency, self.prefetch.map(|p| p.min(65_536)));
        let max_capacity = sizing.max_capacity();
        let shared = Arc::new(PoolShared {
            payload_limit: self.spool.payload_limit(),
            sizing,
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
        let (job_tx, job_rx) = bounded::<Claimed>(max_capacity);
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
    /// Claims that returned jobs (each one writer round or transaction): with fast
    /// handlers, far fewer than the jobs run, as the pool claims ahead in bulk.
    pub claims: u64,
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
            claims: c.claims.load(Ordering::Relaxed),
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
        // Take what is left, prefetched or still running (its outcome is then discarded),
        // and tell the handlers still running to stop.
        let left: Vec<(JobId, Slot)> = s.slots.lock().drain().collect();
        for (_, sl) in &left {
            sl.cancel.store(true, Ordering::Release);
        }
        // Give cancelled handlers time to return (the `work` command's handler terminates
        // its process group, SIGKILL included), and hand a job back to pending, without
        // counting the attempt, only once its handler has returned: another process may
        // claim it at once, and must not run it beside its old handler. A handler still
        // running after the wait keeps its job under its lease, which is no longer renewed:
        // the job comes back when the lease expires (or when this database is next opened).
        // (Handlers that returned with their slot still theirs are recording their outcome:
        // wait for those too, so the completions flushed below include them.)
        let deadline = Instant::now() + HANDLER_EXIT_WAIT;
        while (left
            .iter()
            .any(|(_, sl)| sl.running.load(Ordering::Acquire))
            || s.busy.load(Ordering::Acquire) > 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut released = 0;
        for (id, sl) in left {
            if sl.running.load(Ordering::Acquire) {
                tracing::warn!(
                    job.id = %id,
                    "handler still running after its cancellation; the job stays under its \
                     lease until the lease expires"
                );
                continue;
            }
            if s.spool.release(Lease::new(id, sl.token)).is_ok() {
                released += 1;
            }
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
