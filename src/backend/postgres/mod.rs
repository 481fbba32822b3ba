//! The PostgreSQL backend: every [`Backend`] transition is one transaction, so any number of
//! processes on any number of hosts share one queue.
//!
//! - `combine`: group commit of concurrent enqueues;
//! - `conn`: the URL, the connection pool, errors, the transaction helper;
//! - `schema`: the tables, created and versioned on open;
//! - `tx`: one transaction's staged job writes, counter moves and events;
//! - `enqueue`, `lease`, `maint`, `schedule`: the transitions (their rules, shared with
//!   sled, are `backend::rules`);
//! - `notify`: events and wake-ups for the engine, the LISTEN thread;
//! - `query`: the reads.
//!
//! Times come from the spool's `Clock`, never the server's `now()`: every host must keep
//! its clock synchronized (NTP), since leases, delays and schedules compare them.

mod combine;
mod conn;
mod enqueue;
mod lease;
mod maint;
mod notify;
mod query;
mod schedule;
mod schema;
mod tx;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::backend::{rules, Backend, Completion, Observer};
use crate::model::config::{Config, Durability, Retention};
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{
    ClaimRequest, Claimed, Enqueued, ListQuery, Metrics, RedriveTarget, Retry, Stats,
};

use conn::Pool;
use tx::{Ctx, Done};

/// What the backend's callers and its listener thread share.
pub(crate) struct Shared {
    pool: Pool,
    cfg: Config,
    /// The quoted schema and a dot: what `@.` in SQL text stands for.
    prefix: String,
    /// The notification channel of this schema.
    channel: String,
    /// This spool's owner id (its advisory lock key and `lease_owner`); `None` in
    /// poll-only mode.
    owner: Option<i64>,
    /// Job id generator and backoff jitter: (xorshift state, last id).
    rng: Mutex<(u64, u128)>,
    observer: Arc<dyn Observer>,
    /// The last event seq handed to the observer.
    delivered: Mutex<u64>,
    /// When this process first committed events that its sequencer has not numbered yet.
    staged: Mutex<Option<std::time::Instant>>,
    /// Signalled when `staged` is set (and at close).
    staged_cv: parking_lot::Condvar,
    /// The events of this process's commits not delivered yet, by batch number: delivered
    /// from here, not read back as JSON (see `notify::read_log`).
    own: Mutex<notify::Own>,
    /// Concurrent enqueues share statements (group commit).
    combiner: combine::Combiner,
    flushes: AtomicU64,
    closed: AtomicBool,
    ops: AtomicU64,
    commits: AtomicU64,
}

impl Shared {
    pub(crate) fn buffered(&self) -> bool {
        matches!(self.cfg.durability, Durability::Buffered { .. })
    }

    /// `q` with `@.` replaced by the schema.
    fn sql(&self, q: &str) -> String {
        q.replace("@.", &self.prefix)
    }

    /// A uniform sample in `[0, 1)` (backoff jitter).
    fn unit(&self) -> f64 {
        let mut g = self.rng.lock();
        xorshift(&mut g.0)
    }

    /// A fresh UUID v7 for `now_ms`, greater than every id this process handed out before.
    fn next_id(&self, now_ms: i64) -> JobId {
        let mut g = self.rng.lock();
        let mut rand = [0u8; 10];
        for chunk in rand.chunks_mut(5) {
            let bits = (xorshift(&mut g.0) * (1u64 << 40) as f64) as u64;
            chunk.copy_from_slice(&bits.to_be_bytes()[3..8]);
        }
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(ms, &rand)
            .into_uuid()
            .as_u128();
        let id = if id <= g.1 { g.1 + 1 } else { id };
        g.1 = id;
        JobId::from_bytes(id.to_be_bytes())
    }
}

fn xorshift(s: &mut u64) -> f64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    let x = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// See the module docs.
pub(crate) struct PgBackend {
    sh: Arc<Shared>,
    /// The listener and the sequencer (see `notify`).
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl PgBackend {
    /// Connects to `url`, creates or migrates the tables in the configured schema, starts
    /// the listener and the sequencer, and recovers the jobs of processes that stopped.
    pub fn open(url: &str, cfg: Config, observer: Arc<dyn Observer>) -> Result<PgBackend> {
        conn::validate_schema(&cfg.pg_schema)?;
        let pool = Pool::new(url, cfg.durability, !cfg.pg_poll_only)?;
        let schema = cfg.pg_schema.clone();
        let prefix = format!("\"{schema}\".");
        let quoted = format!("\"{schema}\"");
        {
            let mut c = pool.connect()?;
            // (Its own connection: DDL invalidates prepared statements.)
            schema::migrate(
                &mut c,
                &schema,
                &quoted,
                &conn::redact(url),
                cfg.create_if_missing,
            )?;
        }
        let seed = uuid::Uuid::new_v4().as_u128();
        let owner = (!cfg.pg_poll_only).then(|| {
            // Positive, never 0.
            i64::try_from((seed >> 64) as u64 >> 1).unwrap_or(1).max(1)
        });
        let sh = Arc::new(Shared {
            pool,
            channel: format!("jobspool_{schema}"),
            prefix,
            owner,
            rng: Mutex::new(((seed as u64) | 1, 0)),
            observer,
            delivered: Mutex::new(0),
            staged: Mutex::new(None),
            staged_cv: parking_lot::Condvar::new(),
            own: Mutex::new(std::collections::HashMap::new()),
            combiner: combine::Combiner::default(),
            flushes: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            ops: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            cfg,
        });
        let client = if sh.cfg.pg_poll_only {
            None
        } else {
            Some(notify::connect(&sh)?)
        };
        *sh.delivered.lock() = notify::read_last_seq(&sh)?;
        // Ids stay increasing across a reopen, as on sled (a process that reopens within
        // the same millisecond would otherwise draw ids below its previous ones).
        sh.rng.lock().1 = query::max_job_id(&sh)?;
        let backend = PgBackend {
            sh: sh.clone(),
            threads: Mutex::new(Vec::new()),
        };
        let listen = sh.clone();
        let handle = std::thread::Builder::new()
            .name("jobspool-pg-listen".into())
            .spawn(move || notify::run(&listen, client))
            .map_err(|e| Error::storage("starting the jobspool-pg-listen thread", e))?;
        backend.threads.lock().push(handle);
        let handle = std::thread::Builder::new()
            .name("jobspool-pg-seq".into())
            .spawn(move || notify::run_sequencer(&sh))
            .map_err(|e| Error::storage("starting the jobspool-pg-seq thread", e))?;
        backend.threads.lock().push(handle);
        if backend.sh.owner.is_some() {
            backend.write(maint::recover_dead_owners)?;
        }
        Ok(backend)
    }

    fn live(&self) -> Result<&Shared> {
        if self.sh.closed.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        Ok(&self.sh)
    }

    /// Runs `f` in one transaction, commits, then tells the observer.
    fn write<T>(&self, mut f: impl FnMut(&mut Ctx<'_, '_>) -> Result<T>) -> Result<T> {
        let sh = self.live()?;
        sh.ops.fetch_add(1, Ordering::Relaxed);
        let r = sh.pool.with_tx(|t| {
            let mut ctx = Ctx::new(t, sh);
            let v = f(&mut ctx)?;
            Ok((v, ctx.finish()?))
        });
        r.map(|(v, done)| {
            self.after_commit(done);
            v
        })
    }

    /// [`PgBackend::write`] for a lease operation whose error may come after staged changes
    /// that must still commit (a lease found expired is expired on the spot).
    fn write_lease<T>(&self, mut f: impl FnMut(&mut Ctx<'_, '_>) -> Result<T>) -> Result<T> {
        self.write(|ctx| match f(ctx) {
            Err(e @ Error::StaleLease { .. }) => Ok(Err(e)),
            other => other.map(Ok),
        })?
    }

    fn after_commit(&self, done: Done) {
        self.sh.commits.fetch_add(1, Ordering::Relaxed);
        if let Some(staged) = done.staged {
            // The sequencer numbers them (which makes them durable), delivers them, and
            // applies the counts they carry. (A row of no events leaves nothing to deliver.)
            // Only a durable commit's events are kept to be delivered from memory: a
            // `Buffered` commit (`synchronous_commit = off`) that a server crash loses can
            // take the advance of `event_batch` with it, and another transaction then draws
            // the same batch number; the log's JSON is read back instead.
            if !staged.events.is_empty() && !self.sh.buffered() {
                let mut own = self.sh.own.lock();
                if own.len() < notify::MAX_OWN_BATCHES {
                    own.insert(staged.batch, (std::time::Instant::now(), staged.events));
                }
            }
            let mut first = self.sh.staged.lock();
            if first.is_none() {
                *first = Some(std::time::Instant::now());
                self.sh.staged_cv.notify_one();
            }
        }
        if done.wake {
            self.sh.observer.work_available();
        }
    }
}

impl Backend for PgBackend {
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let sh = self.live()?;
        let now = sh.cfg.clock.now_ms();
        NewJob::validate_all(&jobs, now, sh.cfg.payload_limit)?;
        if !jobs.is_empty() && enqueue::fits_one_statement(&jobs) {
            sh.ops.fetch_add(1, Ordering::Relaxed);
            return sh.combiner.enqueue(
                jobs,
                |jobs| enqueue::enqueue_one_statement(sh, jobs),
                |done| self.after_commit(done),
            );
        }
        self.write(|ctx| enqueue::enqueue(ctx, jobs.clone()))
    }

    fn get(&self, id: JobId) -> Result<Option<Job>> {
        query::get(self.live()?, id)
    }

    fn cancel(&self, id: JobId, by: Option<String>) -> Result<Job> {
        self.write(|ctx| enqueue::cancel(ctx, id, by.clone()))
    }

    fn list(&self, q: &ListQuery) -> Result<Vec<Job>> {
        query::list(self.live()?, q)
    }

    fn stats(&self) -> Result<Stats> {
        // The counts are those of numbered commits: numbered first (a commit, with a WAL
        // flush, when anything is staged), a caller sees what it just did. Due delayed jobs
        // first become ready, so `delayed` counts only future ones; with no delayed job at
        // all (the counters say so) the read answers without staging them.
        let sh = self.live()?;
        notify::number(sh)?;
        let stats = query::stats(sh)?;
        if stats.total.delayed == 0 {
            return Ok(stats);
        }
        // A transaction stages at most a chunk; a backlog of due jobs (no claim has run for
        // a while: a paused queue, no workers) takes several, up to 100 per call.
        let mut moved = 0;
        for _ in 0..100 {
            let n = self.write(lease::stage_due)?;
            moved += n;
            if n < lease::STAGE_CHUNK {
                break;
            }
        }
        if moved == 0 {
            return Ok(stats);
        }
        notify::number(sh)?;
        query::stats(sh)
    }

    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let sh = self.live()?;
        // Numbered first: a caller reads the events of what it just did.
        notify::number(sh)?;
        query::events_since(sh, after_seq, limit)
    }

    fn last_seq(&self) -> u64 {
        let seen = *self.sh.delivered.lock();
        self.live()
            .and_then(notify::number)
            .map_or(seen, |v| v.max(seen))
    }

    fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        if req.max == 0 {
            return Ok(Vec::new());
        }
        self.write(|ctx| lease::claim(ctx, req))
    }

    fn next_due_ms(&self, req: &ClaimRequest) -> Result<Option<i64>> {
        query::next_due_ms(self.live()?, req)
    }

    fn has_work(&self, req: &ClaimRequest) -> bool {
        self.live()
            .and_then(|sh| query::has_work(sh, req))
            .unwrap_or(false)
    }

    fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job> {
        rules::check_result(self.live()?.cfg.payload_limit, result.as_ref())?;
        self.write_lease(|ctx| {
            let old = lease::leased(ctx, id, token)?;
            Ok(lease::complete_leased(ctx, old, result.clone()))
        })
    }

    fn complete_batch(&self, batch: Vec<Completion>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let cfg = &self.live()?.cfg;
        let batch: Vec<Completion> = batch
            .into_iter()
            .filter(|c| rules::check_result(cfg.payload_limit, c.result.as_ref()).is_ok())
            .collect();
        let ids: Vec<JobId> = batch.iter().map(|c| c.id).collect();
        self.write(|ctx| {
            let jobs = ctx.load_locked(&ids, false)?;
            let mut by_id: std::collections::HashMap<JobId, Job> =
                jobs.into_iter().map(|(_, j)| (j.id, j)).collect();
            for c in &batch {
                let Some(job) = by_id.remove(&c.id) else {
                    continue;
                };
                // A stale completion is dropped (an expired lease is expired here).
                if lease::check_lease(ctx, &job, c.token).is_ok() {
                    lease::complete_leased(ctx, job, c.result.clone());
                }
            }
            Ok(())
        })
    }

    fn fail(&self, id: JobId, token: u64, error: String, retry: Retry) -> Result<Job> {
        self.write_lease(|ctx| {
            let old = lease::leased(ctx, id, token)?;
            Ok(lease::fail_attempt(ctx, old, error.clone(), retry))
        })
    }

    fn extend(&self, id: JobId, token: u64, lease_ms: u64) -> Result<Job> {
        self.write_lease(|ctx| {
            let old = lease::leased(ctx, id, token)?;
            Ok(lease::extend(ctx, old, token, lease_ms))
        })
    }

    fn release(&self, id: JobId, token: u64) -> Result<Job> {
        self.write_lease(|ctx| {
            let old = lease::leased(ctx, id, token)?;
            Ok(lease::release(ctx, old))
        })
    }

    fn expire_leases(&self) -> Result<usize> {
        let mut n = self.write(maint::expire_leases)?;
        if self.sh.owner.is_some() {
            n += self.write(maint::recover_dead_owners)?;
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn redrive(&self, target: RedriveTarget) -> Result<Vec<Job>> {
        self.write(|ctx| maint::redrive(ctx, target.clone()))
    }

    fn prune(&self, retention: &Retention) -> Result<u64> {
        let mut total = 0;
        loop {
            match self.write(|ctx| maint::prune(ctx, retention))? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    fn set_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.write(|ctx| maint::set_paused(ctx, queue, paused))
    }

    fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        s.validate(self.live()?.cfg.payload_limit)?;
        self.write(|ctx| schedule::create_schedule(ctx, s.clone()))
    }

    fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        self.write(|ctx| schedule::toggle_schedule(ctx, name, enabled))
    }

    fn delete_schedule(&self, name: &str) -> Result<()> {
        self.write(|ctx| schedule::delete_schedule(ctx, name))
    }

    fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        schedule::list(self.live()?)
    }

    fn fire_due_schedules(&self) -> Result<u64> {
        self.write(schedule::fire_due)
    }

    fn next_schedule_due(&self) -> Result<Option<i64>> {
        query::next_schedule_due(self.live()?)
    }

    fn flush(&self) -> Result<()> {
        notify::flush(self.live()?)
    }

    fn metrics(&self) -> Metrics {
        let commits = self.sh.commits.load(Ordering::Relaxed);
        Metrics {
            ops: self.sh.ops.load(Ordering::Relaxed),
            groups: commits,
            fsyncs: if self.sh.buffered() {
                self.sh.flushes.load(Ordering::Relaxed)
            } else {
                commits
            },
            unapplied_groups: 0,
            journal_bytes: 0,
            live_bytes: 0,
        }
    }

    fn close(&self) -> Result<()> {
        if self.sh.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.sh.staged_cv.notify_all();
        for h in std::mem::take(&mut *self.threads.lock()) {
            let _ = h.join();
        }
        // Durable (`Buffered`), numbered and delivered before the handle goes.
        let result = if self.sh.buffered() {
            notify::flush(&self.sh)
        } else {
            notify::number_and_deliver(&self.sh)
        };
        self.sh.pool.clear();
        self.sh.observer.work_available();
        result
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
