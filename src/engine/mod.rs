//! The engine: the in-process machinery over a [`Backend`]. The backend holds the queue
//! and its atomic transitions; the engine adds what exists only inside one process:
//!
//! - [`notify`]: the backend's [`Observer`] — live event subscribers, and the wake-up of
//!   claimers waiting for work;
//! - [`wait`]: claiming with a wait (`claim_wait`, the worker pool's idle wait), woken by
//!   the notifier or when a delayed job is due;
//! - [`complete`]: the completer, which batches completions nobody waits for;
//! - [`maintenance`] and [`scheduler`]: the background threads (lease expiry and pruning;
//!   cron schedules).
//!
//! It builds on `model` and `backend` only; the public API (`crate::api`) builds on it.

mod complete;
mod maintenance;
mod notify;
pub(crate) mod retry;
mod scheduler;
mod wait;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::backend::{Backend, Completion, Observer};
use crate::model::activity::Activity;
use crate::model::clock::Clock;
use crate::model::config::Config;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::model::job::JobId;

use complete::Completer;
use notify::Notifier;

/// See the module docs.
pub(crate) struct Engine {
    backend: Arc<dyn Backend>,
    notifier: Arc<Notifier>,
    clock: Arc<dyn Clock>,
    completer: Completer,
    maintenance: Mutex<Option<Background>>,
    /// The scheduler thread; woken when schedules change.
    scheduler: Mutex<Option<Background>>,
}

impl Engine {
    /// Opens the backend with `open_backend` (handing it the engine's observer), then
    /// starts the completer and, as `cfg` says, the maintenance and scheduler threads.
    ///
    /// # Errors
    /// Whatever `open_backend` returns; `STORAGE` when a thread cannot start.
    pub fn open(
        cfg: &Config,
        open_backend: impl FnOnce(Arc<dyn Observer>) -> Result<Arc<dyn Backend>>,
    ) -> Result<Engine> {
        let notifier = Arc::new(Notifier::default());
        let backend = open_backend(notifier.clone())?;
        let completer = match Completer::start(backend.clone()) {
            Ok(c) => c,
            Err(e) => {
                let _ = backend.close();
                return Err(e);
            }
        };
        let engine = Engine {
            backend,
            notifier,
            clock: cfg.clock.clone(),
            completer,
            maintenance: Mutex::new(None),
            scheduler: Mutex::new(None),
        };
        // On an error from here on, dropping `engine` closes it.
        if cfg.scheduler {
            let bg = scheduler::start(engine.backend.clone(), cfg.clock.clone())?;
            *engine.scheduler.lock() = Some(bg);
        }
        if cfg.maintenance {
            let bg = maintenance::start(
                engine.backend.clone(),
                engine.notifier.clone(),
                cfg.retention,
                cfg.maintenance_interval,
            )?;
            *engine.maintenance.lock() = Some(bg);
        }
        Ok(engine)
    }

    /// The backend, for the transitions and queries the engine adds nothing to.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// A live feed of events, each sent once it is durable. A subscriber that falls
    /// `SUBSCRIBER_BUFFER` events behind is disconnected.
    pub fn subscribe(&self) -> Receiver<EventRecord> {
        self.notifier.subscribe()
    }

    /// What this process has seen happen since it opened (see [`Activity`]).
    pub fn activity(&self) -> Activity {
        self.notifier.activity.lock().clone()
    }

    /// Counts `n` attempts failed for an expired lease (by a caller other than the
    /// maintenance thread, which counts its own).
    pub fn count_lease_expiries(&self, n: usize) {
        if n > 0 {
            self.notifier.activity.lock().lease_expiries += n as u64;
        }
    }

    /// Records that a handler ran `seconds` with `outcome` (`completed`, `failed`, ...).
    pub fn observe_handler(&self, outcome: &'static str, seconds: f64) {
        self.notifier
            .activity
            .lock()
            .handler_seconds
            .entry(outcome)
            .or_default()
            .observe(seconds);
    }

    /// Queues a completion nobody waits for (see [`complete`]).
    ///
    /// # Errors
    /// `SHUTTING_DOWN` once closing.
    pub fn complete_later(&self, id: JobId, token: u64, result: Option<Vec<u8>>) -> Result<()> {
        self.completer.submit(Completion { id, token, result })
    }

    /// Waits until every completion queued so far has been committed (or dropped).
    pub fn flush_completions(&self) {
        self.completer.flush();
    }

    /// Makes every change so far durable, queued completions included.
    ///
    /// # Errors
    /// `STORAGE`.
    pub fn flush(&self) -> Result<()> {
        self.completer.flush();
        self.backend.flush()
    }

    /// Tells the scheduler thread that schedules changed.
    pub fn schedules_changed(&self) {
        if let Some(bg) = self.scheduler.lock().as_ref() {
            bg.wake();
        }
    }

    /// Stops the background threads, commits queued completions, closes the backend and
    /// disconnects subscribers. Later calls do nothing but close the backend again.
    ///
    /// # Errors
    /// `STORAGE` if the backend's final flush fails.
    pub fn close(&self) -> Result<()> {
        for slot in [&self.maintenance, &self.scheduler] {
            let taken = slot.lock().take();
            if let Some(bg) = taken {
                bg.stop();
            }
        }
        self.completer.close();
        let result = self.backend.close();
        self.notifier.close();
        result
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// A background thread and its channel: a message wakes it, dropping the sender stops it.
pub(crate) struct Background {
    tx: Sender<()>,
    handle: JoinHandle<()>,
}

impl Background {
    fn spawn(name: &str, f: impl FnOnce(&Receiver<()>) + Send + 'static) -> Result<Background> {
        let (tx, rx) = bounded(1);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || f(&rx))
            .map_err(|e| Error::storage(format!("starting the {name} thread"), e))?;
        Ok(Background { tx, handle })
    }

    fn wake(&self) {
        let _ = self.tx.try_send(());
    }

    fn stop(self) {
        drop(self.tx);
        if self.handle.thread().id() != std::thread::current().id() {
            let _ = self.handle.join();
        }
    }
}
