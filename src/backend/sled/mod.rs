//! The embedded backend: one sled tree, logical trees as key prefixes, a single writer
//! thread with group commit, and in-memory indexes rebuilt on open.

mod holder;
pub(crate) mod journal;
pub(crate) mod logstore;
mod open;
mod ops;
mod overlay;
mod perms;
mod records;
pub(crate) mod sledcheck;
mod stage;
mod state;
mod transitions;
mod writer;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use parking_lot::{Mutex, RwLock};

use crate::backend::codec::{self, keys};
use crate::backend::{Backend, Observer};
use crate::model::config::Config;
use crate::model::error::{Error, ErrorCode, Result};
use crate::model::job::{Job, JobId};

use open::{load, open_db, recover, recover_journal};
use ops::{Op, Reply};
#[cfg(feature = "fuzzing")]
pub(crate) use stage::StoredEventBlock;
use state::State;
use writer::Command;

#[derive(Default)]
pub(crate) struct Counters {
    pub ops: AtomicU64,
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub unapplied: AtomicU64,
    pub journal_bytes: AtomicU64,
}

/// What the writer, the readers and the backend handle share.
pub(crate) struct Shared {
    pub path: PathBuf,
    pub db: sled::Db,
    pub tree: sled::Tree,
    /// Where the job records, payloads and event blocks are: the journal's segments.
    pub log: Arc<logstore::LogStore>,
    /// sled and the log, for the overlay's reads.
    pub base: logstore::Base,
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
    /// Changes journaled but not yet in sled; reads look here first (readers only at the
    /// durable ones).
    pub overlay: overlay::Overlay,
    /// The last event seq that is durable (what readers are told the log reaches).
    pub durable_seq: AtomicU64,
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

impl SledBackend {
    /// Salvages a journal that open refuses as damaged: reads every readable entry, skipping
    /// damaged stretches, writes the live values into fresh segments, makes sled durable and
    /// deletes the old segments; with `dry_run` only reads the journal (without taking the
    /// database's lock) and changes nothing.
    pub fn repair(
        path: &Path,
        cfg: &Config,
        dry_run: bool,
    ) -> Result<crate::model::repair::RepairReport> {
        open::prepare_dir(path, false, cfg.file_mode)?;
        let plan = if dry_run {
            // (Without sled open, where the journal must start is not known here.)
            journal::scan::plan(path, true, None)?
        } else {
            let db = open_db(path, cfg)?;
            let tree: sled::Tree = (*db).clone();
            let data_file = File::open(path.join("db"))
                .map_err(|e| Error::storage("opening the data file for fsync", e))?;
            // What repair drops is no longer what the last clean close counted.
            sledcheck::unseal(path, cfg.file_mode)?;
            let synced_blobs = Mutex::new(HashSet::new());
            let log = Arc::new(logstore::LogStore::new(path));
            let (plan, next_lsn, _) = recover(
                &db,
                &tree,
                path,
                &data_file,
                &synced_blobs,
                cfg.file_mode,
                true,
                &log,
                open::Index { seed: 0, now: 0 },
            )?;
            if !open::old_layout(&tree) {
                open::rewrite_journal(&tree, path, &log, next_lsn, cfg, || {
                    writer::sync_sled(&db, path, &data_file, &synced_blobs, cfg.file_mode)
                })?;
            }
            plan
        };
        Ok(crate::model::repair::RepairReport {
            dry_run,
            applied: plan.entries,
            dropped: plan.dropped,
        })
    }

    pub fn open(path: &Path, cfg: Config, observer: Arc<dyn Observer>) -> Result<SledBackend> {
        open::prepare_dir(path, cfg.create_if_missing, cfg.file_mode)?;
        // sled's recovery rewrites damaged files as it opens them: keep them aside until
        // they are checked (see `sledcheck`), and put them back when the check fails.
        let kept = sledcheck::preserve(path);
        // (The error, and whether sled's files may be put back: not once a replay moved
        // what the journal held into sled and the journal was cleared.)
        let opened = (|| -> std::result::Result<_, (Error, bool)> {
            let db = open_db(path, &cfg).map_err(|e| (e, true))?;
            let tree: sled::Tree = (*db).clone();
            // Before the replay writes anything: sled holds at least what was last
            // checkpointed.
            sledcheck::verify(&tree, path).map_err(|e| (sledcheck::at_path(path, e), true))?;
            let data_file = File::open(path.join("db"))
                .map_err(|e| (Error::storage("opening the data file for fsync", e), true))?;
            // Make the files' directory entries durable once, at creation.
            File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(|e| (Error::storage("fsync of the database directory", e), true))?;
            let nothing_to_replay = journal::segments(&path.join(journal::DIR))
                .map_err(|e| (e, true))?
                .is_empty();
            // A database of format 1 or 2 has its journal replayed into sled and emptied
            // (sled's files can no longer be put back after that); format 3 keeps it.
            let old_layout = open::old_layout(&tree);
            let restorable = nothing_to_replay || !old_layout;
            let log = Arc::new(logstore::LogStore::new(path));
            let synced_blobs = Mutex::new(HashSet::new());
            // (The job records are indexed as the journal is read, on a second thread.)
            let index = open::Index {
                seed: uuid::Uuid::new_v4().as_u64_pair().0,
                now: cfg.clock.now_ms(),
            };
            let (next_lsn, tail, indexed) = recover_journal(
                &db,
                &tree,
                path,
                &data_file,
                &synced_blobs,
                cfg.file_mode,
                &log,
                index,
            )
            .map_err(|e| (e, restorable))?;
            let mut journal = match tail {
                Some(t) => journal::Journal::resume(
                    path,
                    t.first,
                    t.end,
                    next_lsn,
                    cfg.journal_segment_bytes,
                    cfg.file_mode,
                    log.clone(),
                ),
                None => journal::Journal::create(
                    path,
                    next_lsn,
                    cfg.journal_segment_bytes,
                    cfg.file_mode,
                    log.clone(),
                ),
            }
            .map_err(|e| (e, restorable))?;
            open::migrate(&tree, path, &mut journal, &log, || {
                writer::sync_sled(&db, path, &data_file, &synced_blobs, cfg.file_mode)
            })
            .map_err(|e| (sledcheck::at_path(path, e), restorable))?;

            let mut st = State::new(index.seed);
            let digest = load(&tree, &log, &mut st, index.now, indexed)
                .map_err(|e| (sledcheck::at_path(path, e), restorable))?;
            // The job records must be the ones the last clean close counted; from here on
            // the database changes, and the record no longer counts them.
            sledcheck::verify_jobs(path, &digest).map_err(|e| (e, restorable))?;
            sledcheck::unseal(path, cfg.file_mode).map_err(|e| (e, restorable))?;
            Ok((
                db,
                tree,
                data_file,
                synced_blobs,
                st,
                next_lsn,
                log,
                journal,
            ))
        })();
        let (db, tree, data_file, synced_blobs, st, next_lsn, log, journal) = match opened {
            Ok(opened) => {
                if let Some(k) = kept {
                    k.discard();
                }
                opened
            }
            Err((e, restorable)) => {
                return Err(match kept {
                    Some(k) if restorable && e.code() == ErrorCode::Corruption => k.restore(e),
                    Some(k) => {
                        k.discard();
                        e
                    }
                    None => e,
                })
            }
        };
        // sled made its files with the umask; a database from an older version (or opened
        // with the other `share_with_group`) has other modes: set them all (see `perms`).
        perms::tighten_tree(path, cfg.file_mode)?;

        let durable_seq = AtomicU64::new(st.next_seq.saturating_sub(1));
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            db,
            base: logstore::Base {
                tree: tree.clone(),
                log: log.clone(),
            },
            tree,
            log,
            data_file,
            cfg,
            state: Mutex::new(st),
            observer,
            metrics: Arc::new(Counters::default()),
            poisoned: Mutex::new(None),
            synced_blobs,
            applied_lsn: AtomicU64::new(next_lsn - 1),
            durable_lsn: AtomicU64::new(next_lsn - 1),
            checkpoint_lock: Mutex::new(()),
            overlay: overlay::Overlay::default(),
            durable_seq,
            writer_busy: AtomicBool::new(false),
            syncer_pending: std::sync::atomic::AtomicUsize::new(0),
        });
        let (tx, rx) = bounded(4096);
        let s2 = shared.clone();
        let writer = std::thread::Builder::new()
            .name("jobspool-writer".into())
            .spawn({
                let compact_tx = tx.clone();
                move || writer::run(s2, journal, rx, compact_tx)
            })
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
        if let Some(e) = self.sh().ok().and_then(|sh| sh.poisoned_error()) {
            return e;
        }
        if self.closed.load(Ordering::Acquire) {
            return Error::ShuttingDown;
        }
        // Not closing, yet the writer dropped the answer: it is unwinding from a panic (its
        // guard poisons the handle just after dropping the callers' answers).
        Error::Storage {
            context: "the writer thread stopped without answering (it panicked); reopen the \
                      database"
                .into(),
            source: None,
        }
    }

    /// `e` with the database's path when it is damage sled met (`CORRUPTION` in tree
    /// `sled`, which sled's own errors cannot name).
    pub(super) fn named<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| match self.sh() {
            Ok(sh) => sledcheck::at_path(&sh.path, e),
            Err(_) => e,
        })
    }

    fn call(&self, op: Op) -> Result<Reply> {
        let r = self.call_unnamed(op);
        self.named(r)
    }

    fn call_unnamed(&self, op: Op) -> Result<Reply> {
        let sh = self.sh()?;
        if let Some(e) = sh.poisoned_error() {
            return Err(e);
        }
        // Bulk producers wait here while sled lags, not in the writer.
        writer::admit(&sh, &op);
        drop(sh);
        let (rtx, rrx) = writer::answer_slot();
        self.send(Command::Apply(op, rtx))?;
        self.wait(&rrx)?
    }

    /// The writer's answer on `rrx`. A writer that died (a panic) never answers the commands
    /// still queued to it, and the channel keeps them (its senders live on here): so look
    /// every 50 ms whether the writer thread has ended, and give up with `dead()` then.
    fn wait<T>(&self, rrx: &writer::AnswerRx<T>) -> Result<T> {
        loop {
            match rrx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(r) => return Ok(r),
                Err(writer::NoAnswer::Dropped) => return Err(self.dead()),
                Err(writer::NoAnswer::Timeout) => {
                    let ended = self
                        .writer
                        .lock()
                        .as_ref()
                        .map_or(true, JoinHandle::is_finished);
                    if ended {
                        // It may have answered just before it ended.
                        return rrx.try_recv().map_err(|_| self.dead());
                    }
                }
            }
        }
    }

    /// Runs the checkpointer's journal upkeep now and waits until what it asked for is
    /// durable and in the directory (tests: the checkpointer runs once a second).
    #[cfg(test)]
    pub(crate) fn maintain_journal(&self) -> Result<()> {
        let settle = || -> Result<()> {
            self.flush()?;
            let sh = self.sh()?;
            while sh.metrics.unapplied.load(Ordering::Acquire) > 0 {
                std::thread::yield_now();
            }
            Ok(())
        };
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        for _ in 0..8 {
            settle()?;
            writer::maintain_journal(&*self.sh()?, &tx)?;
        }
        // A last checkpoint deletes what the last compaction emptied.
        settle()?;
        writer::maintain_journal(&*self.sh()?, &crossbeam_channel::bounded(0).0)
    }

    fn call_job(&self, op: Op) -> Result<Job> {
        match self.call(op)? {
            Reply::Job(j) => Ok(*j),
            other => Err(unexpected(&other)),
        }
    }

    /// A job as a reader may see it: its durable record (nothing a crash could take back).
    fn read_job(&self, id: JobId, with_payload: bool) -> Result<Option<Job>> {
        let r = self.read_job_unnamed(id, with_payload);
        self.named(r)
    }

    fn read_job_unnamed(&self, id: JobId, with_payload: bool) -> Result<Option<Job>> {
        let sh = self.sh()?;
        let key = keys::job(&id);
        let Some(bytes) = sh.overlay.read_durable(&sh.base, &key)? else {
            return Ok(None);
        };
        let mut job: Job = codec::decode("jobs", &key, &bytes)?;
        if with_payload {
            if let Some(p) = sh.overlay.read_durable(&sh.base, &keys::payload(&id))? {
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

impl Drop for SledBackend {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
