//! The open handle, [`Spool`]: the public API over the engine (its settings are in
//! [`Builder`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::api::builder::Builder;
use crate::api::subscription::Subscription;

mod pull;
mod schedules;
mod url;
#[cfg(feature = "postgres")]
use crate::backend::postgres::PgBackend;
use crate::backend::sled::SledBackend;
use crate::backend::Backend;
use crate::engine::Engine;
use crate::model::activity::Activity;
use crate::model::config::{Config, Durability};
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, JobStatus, NewJob};
use crate::model::types::{Enqueued, ListQuery, Metrics, RedriveTarget, Stats};
pub use url::is_postgres_url;
use url::open_postgres_name;

struct Inner {
    engine: Engine,
    cfg: Config,
    path: PathBuf,
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
        self.engine.close()
    }

    fn backend(&self) -> &dyn Backend {
        self.engine.backend()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Spool {
    /// Opens the backend and the engine over it ([`Builder::open`] has checked `cfg`).
    pub(crate) fn start(cfg: Config, path: &Path) -> Result<Spool> {
        let mut path = path.to_path_buf();
        let engine = match path.to_str().filter(|s| is_postgres_url(s)) {
            Some(url) => {
                let url = url.to_owned();
                path = open_postgres_name(&url).into();
                Engine::open(&cfg, |observer| open_postgres(&url, &cfg, observer))?
            }
            None => Engine::open(&cfg, |observer| {
                let backend = SledBackend::open(&path, cfg.clone(), observer)?;
                Ok(Arc::new(backend) as Arc<dyn Backend>)
            })?,
        };
        let inner = Arc::new(Inner {
            engine,
            cfg,
            path,
            on_close: Mutex::new(Some(Vec::new())),
        });
        Ok(Spool { inner })
    }
}

/// The PostgreSQL backend on `url` (the one place besides sled's that names a backend).
#[cfg(feature = "postgres")]
fn open_postgres(
    url: &str,
    cfg: &Config,
    observer: Arc<dyn crate::backend::Observer>,
) -> Result<Arc<dyn Backend>> {
    let backend = PgBackend::open(url, cfg.clone(), observer)?;
    Ok(Arc::new(backend) as Arc<dyn Backend>)
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(
    url: &str,
    _cfg: &Config,
    _observer: Arc<dyn crate::backend::Observer>,
) -> Result<Arc<dyn Backend>> {
    Err(Error::invalid(format!(
        "{} is a PostgreSQL URL, but this build of jobspool has no PostgreSQL support: \
         enable the cargo feature `postgres`",
        open_postgres_name(url)
    )))
}

/// An open job queue. Cheap to clone; all clones share one database. Closing happens when
/// the last clone drops, or explicitly with [`Spool::close`].
///
/// ```
/// use jobspool::{Durability, ListQuery, NewJob, Spool};
/// use std::time::Duration;
/// # let dir = tempfile::tempdir().unwrap();
/// let spool = Spool::builder()
///     .durability(Durability::Immediate)           // the default: fsync'd before returning
///     .open(dir.path().join("queue"))?;
/// let job = spool.enqueue(
///     NewJob::new("report.build", br#"{"month":"2026-11"}"#.to_vec())
///         .queue("reports")
///         .delay(Duration::from_secs(60))
///         .dedupe_key("report-2026-11"),
/// )?;
/// assert!(!job.deduplicated);
/// let page = spool.list(&ListQuery { queue: Some("reports".into()), ..ListQuery::default() })?;
/// assert_eq!(page[0].id, job.id);
/// assert_eq!(spool.stats()?.total.delayed, 1);
/// spool.close()?;
/// # Ok::<(), jobspool::Error>(())
/// ```
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

    /// The database directory (for PostgreSQL: the URL without its password).
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
    pub fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let mut v = self.inner.backend().enqueue(vec![job])?;
        v.pop().ok_or_else(|| Error::Storage {
            context: "internal: empty enqueue reply".into(),
            source: None,
        })
    }

    /// Enqueues a typed job with default options: `enqueue(NewJob::typed(payload)?)`. For
    /// options, build the job with [`NewJob::typed`] and its setters.
    ///
    /// # Errors
    /// As [`Spool::enqueue`].
    pub fn enqueue_typed<T: crate::model::job::TypedJob>(&self, payload: &T) -> Result<Enqueued> {
        self.enqueue(NewJob::typed(payload)?)
    }

    /// Enqueues many jobs atomically (all or nothing, one fsync). Jobs are returned in input
    /// order; duplicates by dedupe key collapse to the first (the later ones come back with
    /// `deduplicated` set).
    ///
    /// # Errors
    /// As [`Spool::enqueue`]; one bad job rejects the whole batch.
    pub fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.backend().enqueue(jobs)
    }

    /// The job with `id`, payload included (`jobs.get`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `CORRUPTION`, `STORAGE`.
    pub fn get(&self, id: JobId) -> Result<Job> {
        self.inner
            .backend()
            .get(id)?
            .ok_or_else(|| Error::not_found(id))
    }

    /// Cancels a pending job (`jobs.cancel`).
    ///
    /// # Errors
    /// `JOB_NOT_FOUND`, `JOB_NOT_PENDING`.
    pub fn cancel(&self, id: JobId) -> Result<Job> {
        self.inner.backend().cancel(id, None)
    }

    /// Cancels a pending job, recording who did (`cancelledBy` in `job.cancelled`).
    ///
    /// # Errors
    /// As [`Spool::cancel`].
    pub fn cancel_by(&self, id: JobId, by: impl Into<String>) -> Result<Job> {
        self.inner.backend().cancel(id, Some(by.into()))
    }

    /// Jobs matching `query`, in id (creation) order, one page.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a limit outside 1..=10000, `CORRUPTION`, `STORAGE`.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Job>> {
        check_limit(query)?;
        self.inner.backend().list(query)
    }

    /// Counts by status, global and per queue, from counters (`jobs.stats`). They count
    /// durable changes only, this handle's own included (on PostgreSQL a call first numbers
    /// what is committed but not numbered yet, which waits for a WAL flush when there is any).
    ///
    /// # Errors
    /// When the handle is closed or poisoned; on PostgreSQL, `STORAGE` when the server
    /// cannot be reached.
    pub fn stats(&self) -> Result<Stats> {
        self.inner.backend().stats()
    }

    /// Up to `limit` (1..=10000) events with `seq > after_seq`, in order (replay after
    /// downtime; page by passing the last seq returned).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (a limit outside 1..=10000, as every other door refuses it),
    /// `CORRUPTION`, `STORAGE`.
    pub fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let limit =
            crate::model::limits::check_page_size("limit", limit, crate::model::limits::MAX_PAGE)?;
        self.inner.backend().events_since(after_seq, limit)
    }

    /// Sequence number of the newest event (0 when the log is empty).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.inner.backend().last_seq()
    }

    /// A live feed of events, each sent once it is durable; see [`Subscription`]. A
    /// subscriber that falls 65,536 events behind is dropped; resume with
    /// [`Spool::events_since`].
    #[must_use]
    pub fn subscribe(&self) -> Subscription {
        // Subscribed first, then the newest seq read: nothing committed after that read is
        // missed, and nothing committed before it is sent.
        let rx = self.inner.engine.subscribe();
        Subscription::new(rx, self.inner.backend().last_seq())
    }

    /// `dead_letter` and `failed` jobs, optionally of one queue / type, one page.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a limit outside 1..=10000, `STORAGE`, `CORRUPTION`.
    pub fn dead_letters(&self, query: &ListQuery) -> Result<Vec<Job>> {
        check_limit(query)?;
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
        let mut v = self.inner.backend().redrive(RedriveTarget::One(id))?;
        v.pop().ok_or_else(|| Error::not_found(id))
    }

    /// Redrives every `dead_letter` and `failed` job of `queue` / `kind` (all when `None`);
    /// jobs whose dedupe key is held by a live job are skipped.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn redrive_all(&self, queue: Option<String>, kind: Option<String>) -> Result<Vec<Job>> {
        self.inner
            .backend()
            .redrive(RedriveTarget::All { queue, kind })
    }

    /// Removes finished jobs and events older than the retention settings; returns how many
    /// jobs were removed.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn prune(&self) -> Result<u64> {
        self.inner.backend().prune(&self.inner.cfg.retention)
    }

    /// Stops claims from `queue` (persisted) until [`Spool::resume_queue`]. Idempotent: pausing
    /// a paused queue changes nothing and logs no second `queue.paused`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad name, `STORAGE`.
    pub fn pause_queue(&self, queue: &str) -> Result<()> {
        self.inner.backend().set_paused(queue, true)
    }

    /// Lets claims from `queue` resume. Idempotent, like [`Spool::pause_queue`].
    ///
    /// # Errors
    /// As [`Spool::pause_queue`].
    pub fn resume_queue(&self, queue: &str) -> Result<()> {
        self.inner.backend().set_paused(queue, false)
    }

    /// Makes every change so far durable (useful under `Buffered`).
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn flush(&self) -> Result<()> {
        self.inner.engine.flush()
    }

    /// Counters of the storage work done (ops, groups, fsyncs).
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.inner.backend().metrics()
    }

    /// What this process's spool has done since it opened: events by name, lease
    /// expiries, handler durations (the `/metrics` endpoint shows them).
    #[must_use]
    pub fn activity(&self) -> Activity {
        self.inner.engine.activity()
    }

    /// Flushes, stops the background threads and releases the database. Later calls on any
    /// clone fail with `SHUTTING_DOWN`.
    ///
    /// # Errors
    /// `STORAGE` if the final flush fails.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// The engine, for the worker pool (waiting for work, completions nobody waits for).
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn payload_limit(&self) -> usize {
        self.inner.cfg.payload_limit
    }

    pub(crate) fn default_lease(&self) -> Duration {
        self.inner.cfg.default_lease
    }
}

/// A page size asked for, `1..=MAX_PAGE`: the same rule for every door.
fn check_limit(query: &ListQuery) -> Result<()> {
    if let Some(n) = query.limit {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        crate::model::limits::check_page_size("limit", n, crate::model::limits::MAX_PAGE)?;
    }
    Ok(())
}

#[allow(dead_code)]
const fn assert_send_sync<T: Send + Sync>() {}
const _: () = assert_send_sync::<Spool>();

/// `Builder::repair`: the store's journal salvage (here, beside the one other place that
/// names the concrete backend).
pub(crate) fn repair(
    path: &std::path::Path,
    cfg: &crate::model::config::Config,
    dry_run: bool,
) -> Result<crate::model::repair::RepairReport> {
    if path.to_str().is_some_and(is_postgres_url) {
        return Err(Error::invalid(
            "repair salvages a sled database's journal; a PostgreSQL database has none \
             (its server recovers itself)",
        ));
    }
    SledBackend::repair(path, cfg, dry_run)
}
