//! The embedded backend: one sled tree, logical trees as key prefixes, a single writer
//! thread with group commit, and in-memory indexes rebuilt on open.

pub(crate) mod journal;
mod ops;
mod overlay;
mod records;
mod stage;
mod state;
mod writer;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use parking_lot::{Mutex, RwLock};

use crate::backend::codec::{self, keys};
use crate::backend::{Backend, Completion, Observer};
use crate::model::config::{Config, Retention};
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::schedule::{NewSchedule, ScheduledJob};
use crate::model::types::{
    ClaimRequest, Claimed, ListQuery, Metrics, RedriveTarget, Retry, Stats, MAX_PAGE,
};

use ops::{Op, Reply};
#[cfg(feature = "fuzzing")]
pub(crate) use stage::StoredEventBlock;
use stage::{Meta, StoredEvent};
use state::State;
use writer::Command;

/// sled segment size for new databases. sled moves pages over a quarter of it (64 KiB here)
/// to files under `blobs/`; every sync fsyncs new blob files, so large payloads stay
/// durable. Measured: with 512 KiB or larger segments sled 0.34's memory grows with every
/// write (1M 400-byte inserts: >1.5 GB at 1 MiB), with 256 KiB it stays flat (~130 MB); see
/// README, Performance.
const SEGMENT_SIZE: usize = 256 * 1024;

/// The segment size an existing database was created with (sled refuses another one).
fn segment_size_of(path: &Path) -> usize {
    std::fs::read(path.join("conf"))
        .ok()
        .and_then(|conf| {
            // The file ends in a binary checksum: read it as lossy text.
            String::from_utf8_lossy(&conf)
                .lines()
                .find_map(|l| l.strip_prefix("segment_size: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .filter(|n| n.is_power_of_two())
        .unwrap_or(SEGMENT_SIZE)
}

/// How long `open` retries sled's file lock (sled releases it asynchronously after a drop).
const LOCK_RETRY: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(crate) struct Counters {
    pub ops: AtomicU64,
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub unapplied: AtomicU64,
}

/// What the writer, the readers and the backend handle share.
pub(crate) struct Shared {
    pub path: PathBuf,
    pub db: sled::Db,
    pub tree: sled::Tree,
    pub data_file: File,
    pub cfg: Config,
    pub state: Mutex<State>,
    /// Told of durable events, and when the state's epoch moves (work may be claimable).
    pub observer: Arc<dyn Observer>,
    pub metrics: Arc<Counters>,
    pub poisoned: Mutex<Option<String>>,
    pub synced_blobs: Mutex<HashSet<OsString>>,
    /// The last journal entry applied to sled.
    pub applied_lsn: AtomicU64,
    /// The last journal entry sled holds durably (checkpointed).
    pub durable_lsn: AtomicU64,
    pub checkpoint_lock: Mutex<()>,
    /// Changes journaled but not yet in sled; reads look here first.
    pub overlay: overlay::Overlay,
    /// The writer is applying a group or has requests queued (the syncer's gather hint).
    pub writer_busy: AtomicBool,
    /// Written groups handed to the syncer and not yet answered by it. At 0 the writer may
    /// commit a group itself.
    pub syncer_pending: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub fn poison(&self, e: &Error) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(e.to_string());
        }
    }

    pub fn poisoned_error(&self) -> Option<Error> {
        self.poisoned.lock().as_ref().map(|msg| Error::Storage {
            context: format!(
                "an earlier storage failure stopped this handle ({msg}); reopen the database"
            ),
            source: None,
        })
    }
}

/// The sled backend (see the module docs).
pub(crate) struct SledBackend {
    /// `None` once closed: dropping the last `Arc<Shared>` drops the `sled::Db` and with
    /// it the file lock, even while clones of the `Spool` are still around.
    live: RwLock<Option<Arc<Shared>>>,
    counters: Arc<Counters>,
    tx: Mutex<Option<Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

fn open_db(path: &Path, cfg: &Config) -> Result<sled::Db> {
    let deadline = Instant::now() + LOCK_RETRY;
    loop {
        let res = sled::Config::new()
            .path(path)
            .cache_capacity(cfg.cache_bytes)
            .segment_size(segment_size_of(path))
            .flush_every_ms(None)
            .open();
        match res {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(Error::DatabaseInUse {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Error::storage(
                    format!("opening the database at {}", path.display()),
                    e,
                ))
            }
        }
    }
}

impl SledBackend {
    pub fn open(path: &Path, cfg: Config, observer: Arc<dyn Observer>) -> Result<SledBackend> {
        std::fs::create_dir_all(path)
            .map_err(|e| Error::storage(format!("creating {}", path.display()), e))?;
        let db = open_db(path, &cfg)?;
        let tree: sled::Tree = (*db).clone();
        let data_file = File::open(path.join("db"))
            .map_err(|e| Error::storage("opening the data file for fsync", e))?;
        // Make the files' directory entries durable once, at creation.
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::storage("fsync of the database directory", e))?;

        let synced_blobs = Mutex::new(HashSet::new());
        recover_journal(&db, &tree, path, &data_file, &synced_blobs)?;
        let journal = journal::Journal::create(path, 1, cfg.journal_segment_bytes)?;

        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        let mut st = State::new(seed);
        let now = cfg.clock.now_ms();
        load(&tree, &mut st, now)?;

        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            db,
            tree,
            data_file,
            cfg,
            state: Mutex::new(st),
            observer,
            metrics: Arc::new(Counters::default()),
            poisoned: Mutex::new(None),
            synced_blobs,
            applied_lsn: AtomicU64::new(0),
            durable_lsn: AtomicU64::new(0),
            checkpoint_lock: Mutex::new(()),
            overlay: overlay::Overlay::default(),
            writer_busy: AtomicBool::new(false),
            syncer_pending: std::sync::atomic::AtomicUsize::new(0),
        });
        let (tx, rx) = bounded(4096);
        let s2 = shared.clone();
        let writer = std::thread::Builder::new()
            .name("jobspool-writer".into())
            .spawn(move || writer::run(s2, journal, rx))
            .map_err(|e| Error::storage("starting the writer thread", e))?;
        let backend = SledBackend {
            counters: shared.metrics.clone(),
            live: RwLock::new(Some(shared)),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            closed: AtomicBool::new(false),
        };
        // Crash recovery: jobs left running by the previous process lost their attempt.
        backend.call(Op::Recover)?;
        Ok(backend)
    }

    /// The live state, or `SHUTTING_DOWN` after close.
    fn sh(&self) -> Result<Arc<Shared>> {
        self.live.read().clone().ok_or(Error::ShuttingDown)
    }

    fn send(&self, cmd: Command) -> Result<()> {
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        tx.send(cmd).map_err(|_| self.dead())
    }

    fn dead(&self) -> Error {
        self.sh()
            .ok()
            .and_then(|sh| sh.poisoned_error())
            .unwrap_or(Error::ShuttingDown)
    }

    fn call(&self, op: Op) -> Result<Reply> {
        if let Some(e) = self.sh()?.poisoned_error() {
            return Err(e);
        }
        let (rtx, rrx) = bounded(1);
        self.send(Command::Apply(op, rtx))?;
        rrx.recv().map_err(|_| self.dead())?
    }

    fn call_job(&self, op: Op) -> Result<Job> {
        match self.call(op)? {
            Reply::Job(j) => Ok(*j),
            other => Err(unexpected(&other)),
        }
    }

    fn read_job(&self, id: JobId, with_payload: bool) -> Result<Option<Job>> {
        let sh = self.sh()?;
        let key = keys::job(&id);
        let Some(bytes) = sh.overlay.read(&sh.tree, &key)? else {
            return Ok(None);
        };
        let mut job: Job = codec::decode("jobs", &key, &bytes)?;
        if with_payload {
            if let Some(p) = sh.overlay.read(&sh.tree, &keys::payload(&id))? {
                job.payload = p.to_vec();
            }
        }
        Ok(Some(job))
    }
}

fn unexpected(r: &Reply) -> Error {
    Error::Storage {
        context: format!("internal: unexpected writer reply {r:?}"),
        source: None,
    }
}

/// Applies the journal to sled (sled is made durable only by checkpoints, so it may have
/// lost the latest groups), makes the result durable and empties the journal.
fn recover_journal(
    db: &sled::Db,
    tree: &sled::Tree,
    path: &Path,
    data_file: &File,
    synced_blobs: &Mutex<HashSet<OsString>>,
) -> Result<()> {
    journal::replay(path, |changes| writer::apply_changes(tree, &changes))?;
    // Even with nothing replayed: what sled read back may still sit only in the page cache
    // (the last process was killed before a checkpoint), and the journal goes next.
    writer::sync_sled(db, path, data_file, synced_blobs)?;
    journal::clear(path)
}

/// Jobs the second loading thread decodes per chunk.
const LOAD_CHUNK: usize = 1024;

/// Indexes every job record. sled's iteration and the decoding dominate opening a large
/// database, so a second thread reads the upper half of the id range (ids are time-ordered
/// UUIDs; the split is at the midpoint of the first and last) and hands decoded chunks over
/// a small bounded channel, while this thread reads the lower half and indexes both.
fn load_jobs(tree: &sled::Tree, st: &mut State, now: i64) -> Result<()> {
    let bound = |item: Option<sled::Result<(sled::IVec, sled::IVec)>>| -> Result<Option<u128>> {
        Ok(match item {
            Some(kv) => keys::id_of(&kv?.0).map(|id| id.0.as_u128()),
            None => None,
        })
    };
    let first = bound(tree.scan_prefix([keys::JOB]).next())?;
    let last = bound(tree.scan_prefix([keys::JOB]).next_back())?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    let mid = first / 2 + last / 2 + (first & last & 1);
    let mut split = vec![keys::JOB];
    split.extend_from_slice(&mid.to_be_bytes());
    let mut index = |job: &Job| {
        st.apply(None, Some(job), now);
        st.last_id = st.last_id.max(job.id.0.as_u128());
    };
    std::thread::scope(|scope| {
        let (tx, rx) = bounded::<Result<Vec<Job>>>(4);
        let upper = split.clone();
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(LOAD_CHUNK);
            for item in tree.range(upper..vec![keys::JOB + 1]) {
                let decoded = item
                    .map_err(Error::from)
                    .and_then(|(k, v)| codec::decode::<Job>("jobs", &k, &v));
                match decoded {
                    Ok(job) => chunk.push(job),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                if chunk.len() == LOAD_CHUNK && tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(chunk));
        });
        for item in tree.range(vec![keys::JOB]..split) {
            let (k, v) = item?;
            let job: Job = codec::decode("jobs", &k, &v)?;
            index(&job);
            while let Ok(chunk) = rx.try_recv() {
                chunk?.iter().for_each(&mut index);
            }
        }
        // (Dropping `rx` on an early return stops the other thread at its next send.)
        for chunk in rx {
            chunk?.iter().for_each(&mut index);
        }
        Ok(())
    })
}

/// Rebuilds the in-memory indexes from the records.
fn load(tree: &sled::Tree, st: &mut State, now: i64) -> Result<()> {
    match tree.get(b"mformat")? {
        None => {
            tree.insert(b"mformat", &[codec::FORMAT_VERSION])?;
        }
        Some(v) if v.as_ref() == [codec::FORMAT_VERSION] => {}
        Some(v) => {
            return Err(Error::Corruption {
                tree: "meta",
                key: "m/format".into(),
                detail: format!(
                "database format {:?}, this build reads format {}; use a matching jobspool version",
                v.as_ref(),
                codec::FORMAT_VERSION
            ),
            })
        }
    }
    load_jobs(tree, st, now)?;
    for item in tree.scan_prefix([keys::QUEUE]) {
        let (k, v) = item?;
        let paused: bool = codec::decode("queues", &k, &v)?;
        let name = String::from_utf8_lossy(&k[1..]).into_owned();
        st.set_paused(&name, paused);
    }
    let mut next_seq = 1;
    if let Some(v) = tree.get(keys::META_STATE)? {
        let meta: Meta = codec::decode("meta", keys::META_STATE, &v)?;
        next_seq = meta.next_seq.max(1);
    }
    if let Some((k, v)) = tree.scan_prefix([keys::EVENT]).next_back().transpose()? {
        let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
        if let Some(first) = keys::seq_of(&k) {
            next_seq = next_seq.max(first + block.len() as u64);
        }
    }
    st.next_seq = next_seq;
    Ok(())
}

impl Backend for SledBackend {
    fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        let sh = self.sh()?;
        // Checks that need no state run here, off the writer thread.
        let now = sh.cfg.clock.now_ms();
        for j in &jobs {
            j.validate(now, sh.cfg.payload_limit)?;
        }
        match self.call(Op::Enqueue(jobs))? {
            Reply::Jobs(j) => Ok(j),
            other => Err(unexpected(&other)),
        }
    }

    fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.read_job(id, true)
    }

    fn cancel(&self, id: JobId, by: Option<String>) -> Result<Job> {
        self.call_job(Op::Cancel { id, by })
    }

    fn list(&self, q: &ListQuery) -> Result<Vec<Job>> {
        let sh = self.sh()?;
        let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
        let matches = |j: &Job| {
            q.queue.as_ref().map_or(true, |x| *x == j.queue)
                && q.kind.as_ref().map_or(true, |x| *x == j.kind)
        };
        let mut out = Vec::new();
        if let Some(status) = q.status {
            let mut after = q.after;
            loop {
                let ids = sh.state.lock().ids_with_status(status, after, 512);
                let Some(last) = ids.last().copied() else {
                    break;
                };
                for id in ids {
                    if let Some(j) = self.read_job(id, true)? {
                        if j.status == status && matches(&j) {
                            out.push(j);
                            if out.len() == limit {
                                return Ok(out);
                            }
                        }
                    }
                }
                after = Some(last);
            }
        } else {
            let start = q.after.map_or_else(
                || vec![keys::JOB],
                |a| {
                    let mut k = keys::job(&a).to_vec();
                    k.push(0);
                    k
                },
            );
            for item in sh.overlay.scan(&sh.tree, &start, &[keys::JOB + 1]) {
                let (k, v) = item?;
                let mut j: Job = codec::decode("jobs", &k, &v)?;
                if matches(&j) {
                    if let Some(p) = sh.overlay.read(&sh.tree, &keys::payload(&j.id))? {
                        j.payload = p.to_vec();
                    }
                    out.push(j);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn stats(&self) -> Result<Stats> {
        let sh = self.sh()?;
        // After a failed write the counters may hold changes that never reached the disk.
        if let Some(e) = sh.poisoned_error() {
            return Err(e);
        }
        let now = sh.cfg.clock.now_ms();
        let mut st = sh.state.lock();
        st.promote(now);
        Ok(st.stats())
    }

    fn events_since(&self, after_seq: u64, limit: usize) -> Result<Vec<EventRecord>> {
        let sh = self.sh()?;
        let want = after_seq.saturating_add(1);
        // The block holding `want` starts at or before it: step back to it, then forward.
        // (Blocks pending in the overlay count: they are the newest.)
        let mut upto = keys::event(want).to_vec();
        upto.push(0);
        let in_sled = match sh.tree.range(vec![keys::EVENT]..upto.clone()).next_back() {
            Some(item) => Some(item?.0),
            None => None,
        };
        let pending = sh.overlay.last_key(&[keys::EVENT], &upto);
        let from = match in_sled.max(pending) {
            Some(k) => k.to_vec(),
            None => keys::event(want).to_vec(),
        };
        let mut out = Vec::new();
        for item in sh.overlay.scan(&sh.tree, &from, &[keys::EVENT + 1]) {
            let (k, v) = item?;
            let first = keys::seq_of(&k).unwrap_or(0);
            let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
            for (i, stored) in block.into_iter().enumerate() {
                let seq = first + i as u64;
                if seq >= want {
                    out.push(EventRecord {
                        seq,
                        event: stored.event,
                    });
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn last_seq(&self) -> u64 {
        self.sh().map_or(0, |sh| sh.state.lock().next_seq - 1)
    }

    fn claim(&self, req: &ClaimRequest) -> Result<Vec<Claimed>> {
        match self.call(Op::Claim(req.clone()))? {
            Reply::Claimed(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    fn next_due_ms(&self, req: &ClaimRequest) -> Result<Option<i64>> {
        let sh = self.sh()?;
        let now = sh.cfg.clock.now_ms();
        let mut st = sh.state.lock();
        // Due ones become ready (and the next claim takes them): the answer is in the future.
        st.promote(now);
        Ok(st.next_due_for(req))
    }

    fn has_work(&self, req: &ClaimRequest) -> bool {
        self.sh().is_ok_and(|sh| sh.state.lock().has_work_for(req))
    }

    fn complete(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<Job> {
        self.call_job(Op::Complete { id, token, result })
    }

    fn complete_batch(&self, batch: Vec<Completion>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.call(Op::CompleteBatch(batch)).map(|_| ())
    }

    fn fail(&self, id: JobId, token: u64, error: String, retry: Retry) -> Result<Job> {
        self.call_job(Op::Fail {
            id,
            token,
            error,
            retry,
        })
    }

    fn extend(&self, id: JobId, token: u64, lease_ms: u64) -> Result<Job> {
        self.call_job(Op::Extend {
            id,
            token,
            lease_ms,
        })
    }

    fn release(&self, id: JobId, token: u64) -> Result<Job> {
        self.call_job(Op::Release { id, token })
    }

    fn expire_leases(&self) -> Result<usize> {
        match self.call(Op::ExpireLeases)? {
            Reply::Count(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            other => Err(unexpected(&other)),
        }
    }

    fn redrive(&self, target: RedriveTarget) -> Result<Vec<Job>> {
        match self.call(Op::Redrive(target))? {
            Reply::Jobs(j) => Ok(j),
            other => Err(unexpected(&other)),
        }
    }

    fn prune(&self, retention: &Retention) -> Result<u64> {
        let mut total = 0;
        loop {
            match self.call(Op::Prune(*retention))? {
                Reply::Count(0) => return Ok(total),
                Reply::Count(n) => total += n,
                other => return Err(unexpected(&other)),
            }
        }
    }

    fn set_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.call(Op::SetPaused {
            queue: queue.to_owned(),
            paused,
        })
        .map(|_| ())
    }

    fn create_schedule(&self, s: NewSchedule) -> Result<ScheduledJob> {
        let sh = self.sh()?;
        s.validate(sh.cfg.payload_limit)?;
        match self.call(Op::CreateSchedule(s))? {
            Reply::Schedule(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    fn toggle_schedule(&self, name: &str, enabled: bool) -> Result<ScheduledJob> {
        match self.call(Op::ToggleSchedule {
            name: name.to_owned(),
            enabled,
        })? {
            Reply::Schedule(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    fn delete_schedule(&self, name: &str) -> Result<()> {
        self.call(Op::DeleteSchedule(name.to_owned())).map(|_| ())
    }

    fn list_schedules(&self) -> Result<Vec<ScheduledJob>> {
        let sh = self.sh()?;
        let mut out = Vec::new();
        for item in sh
            .overlay
            .scan(&sh.tree, &[keys::SCHEDULE], &[keys::SCHEDULE + 1])
        {
            let (k, v) = item?;
            out.push(codec::decode("schedules", &k, &v)?);
        }
        Ok(out)
    }

    fn fire_due_schedules(&self) -> Result<u64> {
        match self.call(Op::FireDueSchedules)? {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    fn next_schedule_due(&self) -> Result<Option<i64>> {
        Ok(self
            .list_schedules()?
            .iter()
            .filter(|s| s.enabled)
            .filter_map(|s| s.next_run_at.map(|t| t.timestamp_millis()))
            .min())
    }

    fn flush(&self) -> Result<()> {
        let (rtx, rrx) = bounded(1);
        self.send(Command::Sync(rtx))?;
        rrx.recv().map_err(|_| self.dead())?.map(|_| ())
    }

    fn metrics(&self) -> Metrics {
        let m = &self.counters;
        Metrics {
            ops: m.ops.load(Ordering::Relaxed),
            groups: m.groups.load(Ordering::Relaxed),
            fsyncs: m.fsyncs.load(Ordering::Relaxed),
            unapplied_groups: m.unapplied.load(Ordering::Relaxed),
        }
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut result = Ok(());
        if let Some(tx) = self.tx.lock().take() {
            let (rtx, rrx) = bounded(1);
            if tx.send(Command::Shutdown(rtx)).is_ok() {
                result = rrx
                    .recv()
                    .map_err(|_| self.dead())
                    .and_then(|r| r.map(|_| ()));
            }
        }
        if let Some(h) = self.writer.lock().take() {
            if h.join().is_err() && result.is_ok() {
                result = Err(Error::Storage {
                    context: "the writer thread panicked".into(),
                    source: None,
                });
            }
        }
        if let Some(sh) = self.live.write().take() {
            // Waiting claimers look again and find the handle closed.
            sh.observer.work_available();
        }
        result
    }
}

impl Drop for SledBackend {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
