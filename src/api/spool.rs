//! The open handle: [`Spool`] and its [`Builder`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::backend::sled::SledBackend;
use crate::backend::Backend;
use crate::model::clock::Clock;
use crate::model::config::{Config, Durability, Retention};
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Backoff, Job, JobId, JobStatus, NewJob};
use crate::model::limits::MAX_PAYLOAD_LIMIT;
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{ClaimRequest, Claimed, ListQuery, Metrics, RedriveTarget, Retry, Stats};

/// Settings for [`Spool::open`]; every one is checked in [`Builder::open`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    cfg: Config,
}

impl Builder {
    /// When changes reach stable storage. Default = [`Durability::Immediate`].
    #[must_use]
    pub fn durability(mut self, d: Durability) -> Self {
        self.cfg.durability = d;
        self
    }
    /// sled page-cache size in bytes. Default = 64 MiB (sled's own default is 1 GiB).
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cfg.cache_bytes = bytes;
        self
    }
    /// Size of each journal segment file, preallocated (clamped to 64 KiB .. 1 GiB).
    /// Default = 32 MiB. Commits append to the current segment; a full one is sealed and
    /// deleted once a checkpoint covers it.
    #[must_use]
    pub fn journal_segment_bytes(mut self, bytes: u64) -> Self {
        self.cfg.journal_segment_bytes = bytes.clamp(64 * 1024, 1024 * 1024 * 1024);
        self
    }
    /// Largest payload (and handler result) accepted, in bytes. Default = 1 MiB.
    #[must_use]
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.cfg.payload_limit = bytes;
        self
    }
    /// How long finished jobs and events are kept. Default = [`Retention::default`].
    #[must_use]
    pub fn retention(mut self, r: Retention) -> Self {
        self.cfg.retention = r;
        self
    }
    /// The time source. Default = the system clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.cfg.clock = Arc::new(clock);
        self
    }
    /// `maxRetries` of jobs that do not set it. Default = 3.
    #[must_use]
    pub fn default_max_attempts(mut self, n: u32) -> Self {
        self.cfg.default_max_attempts = n;
        self
    }
    /// Backoff of jobs that do not set one. Default = 1 s, x2, max 60 s, ±20%.
    #[must_use]
    pub fn default_backoff(mut self, b: Backoff) -> Self {
        self.cfg.default_backoff = b;
        self
    }
    /// Lease granted by a claim when none is given. Default = 30 s.
    #[must_use]
    pub fn default_lease(mut self, d: Duration) -> Self {
        self.cfg.default_lease = d;
        self
    }
    /// Run the maintenance thread (lease expiry, pruning). Default = true. One-shot tools
    /// turn it off.
    #[must_use]
    pub fn maintenance(mut self, on: bool) -> Self {
        self.cfg.maintenance = on;
        self
    }
    /// Run the scheduler thread, which fires due cron schedules. Default = true. One-shot
    /// tools turn it off.
    #[must_use]
    pub fn scheduler(mut self, on: bool) -> Self {
        self.cfg.scheduler = on;
        self
    }
    /// How often the maintenance thread runs. Default = 1 s.
    #[must_use]
    pub fn maintenance_interval(mut self, d: Duration) -> Self {
        self.cfg.maintenance_interval = d;
        self
    }

    /// Opens (creating if needed) the database directory at `path`, recovering jobs left
    /// running by a previous process.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad setting, `DATABASE_IN_USE` when another process holds
    /// the database, `CORRUPTION` or `STORAGE` when it cannot be read.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Spool> {
        let cfg = self.cfg;
        if cfg.payload_limit == 0 || cfg.payload_limit > MAX_PAYLOAD_LIMIT {
            return Err(Error::invalid(
                "payload_limit must be between 1 byte and 64 MiB",
            ));
        }
        if cfg.default_max_attempts == 0 {
            return Err(Error::invalid("default_max_attempts must be at least 1"));
        }
        if cfg.cache_bytes < 1024 * 1024 {
            return Err(Error::invalid("cache_bytes must be at least 1 MiB"));
        }
        if cfg.default_lease.is_zero() || cfg.maintenance_interval.is_zero() {
            return Err(Error::invalid(
                "default_lease and maintenance_interval must be positive",
            ));
        }
        if let Durability::Buffered { max_delay } = cfg.durability {
            if max_delay.is_zero() {
                return Err(Error::invalid(
                    "Buffered max_delay must be positive; use Immediate",
                ));
            }
        }
        cfg.default_backoff.validate()?;
        let path = path.as_ref().to_path_buf();
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&path, cfg.clone())?);
        let inner = Arc::new(Inner {
            backend,
            cfg,
            path,
            maintenance: Mutex::new(None),
            scheduler: Mutex::new(None),
            on_close: Mutex::new(Some(Vec::new())),
        });
        if inner.cfg.scheduler {
            let (wake_tx, wake_rx) = bounded(1);
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("jobspool-scheduler".into())
                .spawn(move || scheduler_loop(&weak, &wake_rx))
                .map_err(|e| Error::storage("starting the scheduler thread", e))?;
            *inner.scheduler.lock() = Some((wake_tx, handle));
        }
        if inner.cfg.maintenance {
            let (stop_tx, stop_rx) = bounded(1);
            let weak = Arc::downgrade(&inner);
            let interval = inner.cfg.maintenance_interval;
            let handle = std::thread::Builder::new()
                .name("jobspool-maintenance".into())
                .spawn(move || maintenance_loop(&weak, &stop_rx, interval))
                .map_err(|e| Error::storage("starting the maintenance thread", e))?;
            *inner.maintenance.lock() = Some((stop_tx, handle));
        }
        Ok(Spool { inner })
    }
}

struct Inner {
    backend: Arc<dyn Backend>,
    cfg: Config,
    path: PathBuf,
    maintenance: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    /// The scheduler thread and its wake-up channel (a message = schedules changed).
    scheduler: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    /// Run first when the spool closes (adapters such as the control socket stop there).
    /// `None` once closed.
    on_close: Mutex<Option<Vec<CloseHook>>>,
}

/// Something to run when the spool closes; see [`Spool::on_close`].
type CloseHook = Box<dyn FnOnce() + Send>;

/// A handle that does not keep the spool open, for threads that serve a spool on behalf of
/// its owner (a socket, an HTTP server): [`WeakSpool::upgrade`] per request, so dropping the
/// last [`Spool`] still closes it.
#[derive(Clone)]
pub struct WeakSpool(std::sync::Weak<Inner>);

impl std::fmt::Debug for WeakSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeakSpool")
    }
}

impl WeakSpool {
    /// The spool, unless every [`Spool`] handle has been dropped.
    #[must_use]
    pub fn upgrade(&self) -> Option<Spool> {
        self.0.upgrade().map(|inner| Spool { inner })
    }
}

impl Inner {
    fn close(&self) -> Result<()> {
        // Adapters go first, so clients stop arriving while the rest shuts down.
        let hooks = self.on_close.lock().take();
        for hook in hooks.into_iter().flatten() {
            hook();
        }
        for slot in [&self.maintenance, &self.scheduler] {
            let taken = slot.lock().take();
            if let Some((stop, handle)) = taken {
                drop(stop);
                if handle.thread().id() != std::thread::current().id() {
                    let _ = handle.join();
                }
            }
        }
        self.backend.close()
    }

    fn schedules_changed(&self) {
        if let Some((wake, _)) = self.scheduler.lock().as_ref() {
            let _ = wake.try_send(());
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// How many maintenance ticks between pruning passes.
const PRUNE_EVERY: u32 = 60;

fn maintenance_loop(inner: &std::sync::Weak<Inner>, stop: &Receiver<()>, interval: Duration) {
    let mut tick: u32 = 0;
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        // Errors here are storage errors: the backend poisons itself and every caller sees
        // them, so the thread only has to stop.
        if inner.backend.expire_leases().is_err() {
            return;
        }
        if tick % PRUNE_EVERY == 0 && inner.backend.prune(&inner.cfg.retention).is_err() {
            return;
        }
        tick = tick.wrapping_add(1);
    }
}

/// Longest the scheduler sleeps without looking, so a wall-clock jump is noticed within a
/// minute. With a manual clock, call [`Spool::fire_due_schedules`] after moving it.
const SCHEDULER_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Sleeps until the next enabled schedule is due or schedules change, then fires what is
/// due. Ticks missed while the process was down fire once, on the first pass.
fn scheduler_loop(inner: &std::sync::Weak<Inner>, wake: &Receiver<()>) {
    loop {
        let wait = {
            let Some(inner) = inner.upgrade() else { return };
            if inner.backend.fire_due_schedules().is_err() {
                return; // storage failure: the handle is poisoned and callers see it
            }
            match inner.backend.next_schedule_due() {
                Ok(Some(due)) => {
                    let ms = due.saturating_sub(inner.cfg.clock.now_ms()).max(1);
                    Duration::from_millis(u64::try_from(ms).unwrap_or(1)).min(SCHEDULER_MAX_SLEEP)
                }
                Ok(None) => SCHEDULER_MAX_SLEEP,
                Err(_) => return,
            }
        };
        match wake.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// An open job queue. Cheap to clone; all clones share one database. Closing happens when
/// the last clone drops, or explicitly with [`Spool::close`].
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens the database at `path` with default settings: `Spool::builder().open(path)`.
    ///
    /// # Errors
    /// See [`Builder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Spool> {
        Spool::builder().open(path)
    }

    /// Settings for opening a spool.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The database directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A handle that does not keep the spool open; see [`WeakSpool`].
    #[must_use]
    pub fn downgrade(&self) -> WeakSpool {
        WeakSpool(Arc::downgrade(&self.inner))
    }

    /// Runs `hook` when the spool closes ([`Spool::close`] or the last handle dropping),
    /// before anything else shuts down; at once if it is closed already. Adapters that
    /// serve a spool (the control socket) stop themselves here.
    pub fn on_close(&self, hook: impl FnOnce() + Send + 'static) {
        let mut hooks = self.inner.on_close.lock();
        match hooks.as_mut() {
            Some(list) => list.push(Box::new(hook)),
            None => {
                drop(hooks);
                hook();
            }
        }
    }

    /// The durability setting of this handle.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.inner.cfg.durability
    }

    /// Current time of the spool's clock, in milliseconds since the epoch.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.inner.cfg.clock.now_ms()
    }

    /// Enqueues one job (`jobs.enqueue`). With a dedupe key held by a live job, returns that
    /// job and creates nothing.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, `PAYLOAD_TOO_LARGE`, `STORAGE`, `SHUTTING_DOWN`.
    pub fn enqueue(&self, job: NewJob) -> Result<Job> {
        let mut v = self.inner.backend.enqueue(vec![job])?;
        v.pop().ok_or_else(|| Error::Storage {
            context: "internal: empty enqueue reply".into(),
            source: None,
        })
    }

    /// Enqueues many jobs atomically (all or nothing, one fsync). Jobs are returned in input
    /// order; duplicates by dedupe key collapse to the first.
    ///
    /// # Errors
    /// As [`Spool::enqueue`]; one bad job rejects the whole batch.
    pub fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.backend.enqueue(jobs)
    }

    /// The job with `id`, payload included (`jobs.get`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `CORRUPTION`, `STORAGE`.
    pub fn get(&self, id: JobId) -> Result<Job> {
        self.inner
            .backend
            .get(id)?
            .ok_or_else(|| Error::not_found(id))
    }

    /// Cancels a pending job (`jobs.cancel`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `JOB_NOT_PENDING`.
    pub fn cancel(&self, id: JobId) -> Result<Job> {
        self.inner.backend.cancel(id, None)
    }

    /// Cancels a pending job, recording who did (`cancelledBy` in `job.cancelled`).
    ///
    /// # Errors
    /// As [`Spool::cancel`].
    pub fn cancel_by(&self, id: JobId, by: impl Into<String>) -> Result<Job> {
        self.inner.backend.cancel(id, Some(by.into()))
    }

    /// Jobs matching `query`, in id (creation) order, one page.
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Job>> {
        self.inner.backend.list(query)
    }

    /// Counts by status, global and per queue, from counters (`jobs.stats`).
    ///
    /// # Errors
    /// Only when the handle is closed or poisoned.
    pub fn stats(&self) -> Result<Stats> {
        self.inner.backend.stats()
    }

    /// Up to `limit` events with `seq > after_seq`, in order (replay after downtime).
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    pub fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        self.inner.backend.events_since(after_seq, limit)
    }

    /// Sequence number of the newest event (0 when the log is empty).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.inner.backend.last_seq()
    }

    /// A live feed of events, each sent once it is durable. A subscriber that falls 65536
    /// events behind is disconnected; resume with [`Spool::events_since`].
    #[must_use]
    pub fn subscribe(&self) -> Receiver<EventRecord> {
        self.inner.backend.subscribe()
    }

    /// Claims up to `req.max` ready jobs, in claim order, each under a lease (pull API).
    ///
    /// # Errors
    /// `STORAGE`, `SHUTTING_DOWN`.
    pub fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        self.inner.backend.claim(req).map(|(c, _)| c)
    }

    /// As [`Spool::claim`], but waits up to `timeout` for work to appear; wakes as soon as a
    /// job is enqueued or a delayed one becomes due (no polling).
    ///
    /// # Errors
    /// As [`Spool::claim`].
    pub fn claim_wait(&self, req: &ClaimRequest, timeout: Duration) -> Result<Vec<Claimed>> {
        let deadline = Instant::now() + timeout;
        loop {
            let (claimed, epoch) = self.inner.backend.claim(req)?;
            if !claimed.is_empty() || Instant::now() >= deadline {
                return Ok(claimed);
            }
            self.inner.backend.wait_for_work(epoch, deadline);
        }
    }

    /// A claim request for `max` jobs of any queue and type with the default lease.
    #[must_use]
    pub fn claim_request(&self, max: usize) -> ClaimRequest {
        ClaimRequest {
            queues: Vec::new(),
            exclude_queues: Vec::new(),
            kinds: Vec::new(),
            max,
            lease_ms: u64::try_from(self.inner.cfg.default_lease.as_millis()).unwrap_or(u64::MAX),
            worker_id: format!("pid-{}", std::process::id()),
        }
    }

    /// Whether anything `req` could claim (its queues and types, delayed jobs included) is
    /// pending or running.
    #[must_use]
    pub fn has_work(&self, req: &ClaimRequest) -> bool {
        self.inner.backend.has_work(req)
    }

    /// Marks a claimed job completed, storing `result`.
    ///
    /// # Errors
    /// `STALE_LEASE` when `token` no longer holds the lease (nothing changes),
    /// `PAYLOAD_TOO_LARGE` for a result over the limit, `JOB_NOT_FOUND`.
    pub fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job> {
        self.inner.backend.complete(id, token, result)
    }

    /// Ends a claimed job's attempt as failed: retried per `retry` and the job's backoff,
    /// dead-lettered when attempts are exhausted, `failed` for [`Retry::Never`].
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn fail(
        &self,
        id: JobId,
        token: u64,
        error: impl Into<String>,
        retry: Retry,
    ) -> Result<Job> {
        self.inner.backend.fail(id, token, error.into(), retry)
    }

    /// Extends a claimed job's lease to now + `lease`.
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn extend_lease(&self, id: JobId, token: u64, lease: Duration) -> Result<Job> {
        let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        self.inner.backend.extend(id, token, ms)
    }

    /// Hands a claimed job back to pending without counting the attempt.
    ///
    /// # Errors
    /// `STALE_LEASE`, `JOB_NOT_FOUND`.
    pub fn release(&self, id: JobId, token: u64) -> Result<Job> {
        self.inner.backend.release(id, token)
    }

    /// Fails every attempt whose lease expired (the maintenance thread calls this each tick).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn expire_leases(&self) -> Result<usize> {
        self.inner.backend.expire_leases()
    }

    /// `dead_letter` and `failed` jobs, optionally of one queue / type, one page.
    ///
    /// # Errors
    /// `STORAGE`, `CORRUPTION`.
    pub fn dead_letters(&self, query: &ListQuery) -> Result<Vec<Job>> {
        let limit = crate::model::limits::page_size(query.limit);
        let mut out = Vec::new();
        for status in [JobStatus::DeadLetter, JobStatus::Failed] {
            let q = ListQuery {
                status: Some(status),
                limit: Some(limit),
                ..query.clone()
            };
            out.extend(self.list(&q)?);
        }
        out.sort_by_key(|j| j.id);
        out.truncate(limit);
        Ok(out)
    }

    /// Sends a `dead_letter` or `failed` job back to pending with attempts reset.
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`; `INVALID_ARGUMENT` when the job is not dead or its dedupe key is
    /// held by another live job.
    pub fn redrive(&self, id: JobId) -> Result<Job> {
        let mut v = self.inner.backend.redrive(RedriveTarget::One(id))?;
        v.pop().ok_or_else(|| Error::not_found(id))
    }

    /// Redrives every `dead_letter` and `failed` job of `queue` / `kind` (all when `None`);
    /// jobs whose dedupe key is held by a live job are skipped.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn redrive_all(&self, queue: Option<String>, kind: Option<String>) -> Result<Vec<Job>> {
        self.inner
            .backend
            .redrive(RedriveTarget::All { queue, kind })
    }

    /// Removes finished jobs and events older than the retention settings; returns how many
    /// jobs were removed.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn prune(&self) -> Result<u64> {
        self.inner.backend.prune(&self.inner.cfg.retention)
    }

    /// Stops claims from `queue` (persisted) until [`Spool::resume_queue`].
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad name, `STORAGE`.
    pub fn pause_queue(&self, queue: &str) -> Result<()> {
        self.inner.backend.set_paused(queue, true)
    }

    /// Lets claims from `queue` resume.
    ///
    /// # Errors
    /// As [`Spool::pause_queue`].
    pub fn resume_queue(&self, queue: &str) -> Result<()> {
        self.inner.backend.set_paused(queue, false)
    }

    /// Creates a cron schedule (`jobs.schedule.create`).
    ///
    /// # Errors
    /// `SCHEDULE_EXISTS` (unless `replace`), `INVALID_CRON`, `INVALID_TIMEZONE`,
    /// `INVALID_ARGUMENT`.
    pub fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        let out = self.inner.backend.create_schedule(s)?;
        self.inner.schedules_changed();
        Ok(out)
    }

    /// Enables or disables a schedule (`jobs.schedule.toggle`). Off clears `nextRunAt`; on
    /// recomputes it from now.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        let out = self.inner.backend.toggle_schedule(name, enabled)?;
        self.inner.schedules_changed();
        Ok(out)
    }

    /// Deletes a schedule.
    ///
    /// # Errors
    /// `SCHEDULE_NOT_FOUND`.
    pub fn delete_schedule(&self, name: &str) -> Result<()> {
        self.inner.backend.delete_schedule(name)?;
        self.inner.schedules_changed();
        Ok(())
    }

    /// Every schedule, by name (`jobs.schedule.list`).
    ///
    /// # Errors
    /// `CORRUPTION`, `STORAGE`.
    pub fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        self.inner.backend.list_schedules()
    }

    /// Fires every due schedule now (the scheduler thread does this on its own; this is for
    /// handles opened without it, and for tests with a manual clock). Returns how many fired.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn fire_due_schedules(&self) -> Result<u64> {
        self.inner.backend.fire_due_schedules()
    }

    /// Makes every change so far durable (useful under `Buffered`).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn flush(&self) -> Result<()> {
        self.inner.backend.flush()
    }

    /// Counters of the storage work done (ops, groups, fsyncs).
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.inner.backend.metrics()
    }

    /// Flushes, stops the background threads and releases the database. Later calls on any
    /// clone fail with `SHUTTING_DOWN`.
    ///
    /// # Errors
    /// `STORAGE` if the final flush fails.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    pub(crate) fn claim_with_epoch(&self, req: &ClaimRequest) -> Result<(Vec<Claimed>, u64)> {
        self.inner.backend.claim(req)
    }

    pub(crate) fn wait_for_work(&self, epoch: u64, deadline: Instant) {
        self.inner.backend.wait_for_work(epoch, deadline);
    }

    pub(crate) fn complete_nowait(
        &self,
        id: JobId,
        token: u64,
        result: Option<Vec<u8>>,
    ) -> Result<()> {
        self.inner.backend.complete_nowait(id, token, result)
    }

    pub(crate) fn payload_limit(&self) -> usize {
        self.inner.cfg.payload_limit
    }

    pub(crate) fn default_lease(&self) -> Duration {
        self.inner.cfg.default_lease
    }
}

#[allow(dead_code)]
const fn assert_send_sync<T: Send + Sync>() {}
const _: () = assert_send_sync::<Spool>();
