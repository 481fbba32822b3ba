//! The completer: completions nobody waits for (the worker pool's), gathered from any
//! number of threads and handed to the backend as one transition per batch.
//!
//! A worker hands its job's outcome over and takes its next job at once; the completer
//! commits whatever gathered while the previous batch was being made durable (one writer
//! group and one fsync on sled, one transaction on SQL). A stale token is dropped silently
//! by the backend. Until its batch is durable a job is still `running` on disk, so a crash
//! meanwhile loses only the outcome: the job is recovered and runs again.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::backend::{Backend, Completion};
use crate::model::error::{Error, Result};

/// Most completions handed to the backend in one batch.
const MAX_BATCH: usize = 4096;

#[derive(Default)]
struct Queue {
    pending: Vec<Completion>,
    /// Completions handed in since open, and those whose batch has returned.
    submitted: u64,
    finished: u64,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the queue gets its first completion or is stopped.
    arrived: Condvar,
    /// Signalled when a batch has returned.
    finished: Condvar,
}

/// See the module docs.
pub(crate) struct Completer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Completer {
    pub fn start(backend: Arc<dyn Backend>) -> Result<Completer> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("jobspool-completer".into())
            .spawn(move || run(&s, &*backend))
            .map_err(|e| Error::storage("starting the completer thread", e))?;
        Ok(Completer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a completion without waiting for it: the job counts as completed once its
    /// batch is durable; a stale token is dropped the same way, silently.
    ///
    /// # Errors
    /// `SHUTTING_DOWN` once the engine is closing.
    pub fn submit(&self, c: Completion) -> Result<()> {
        let mut q = self.shared.queue.lock();
        if q.stopping {
            return Err(Error::ShuttingDown);
        }
        q.pending.push(c);
        q.submitted += 1;
        if q.pending.len() == 1 {
            self.shared.arrived.notify_one();
        }
        Ok(())
    }

    /// Waits until every completion submitted before this call has been handed to the
    /// backend and its batch has returned (durable, or failed with the handle poisoned).
    pub fn flush(&self) {
        let mut q = self.shared.queue.lock();
        let target = q.submitted;
        while q.finished < target {
            self.shared.finished.wait(&mut q);
        }
    }

    /// Commits what is queued, then stops the thread; later submissions fail.
    pub fn close(&self) {
        self.shared.queue.lock().stopping = true;
        self.shared.arrived.notify_one();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
    }
}

/// On the thread's way out, even by a panic: flushers stop waiting, submitters get
/// `SHUTTING_DOWN`.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock();
        q.stopping = true;
        q.finished = q.submitted;
        drop(q);
        self.0.finished.notify_all();
    }
}

fn run(s: &Shared, backend: &dyn Backend) {
    let _guard = ExitGuard(s);
    loop {
        let batch = {
            let mut q = s.queue.lock();
            while q.pending.is_empty() && !q.stopping {
                s.arrived.wait(&mut q);
            }
            if q.pending.is_empty() {
                return;
            }
            if q.pending.len() <= MAX_BATCH {
                std::mem::take(&mut q.pending)
            } else {
                q.pending.drain(..MAX_BATCH).collect()
            }
        };
        let n = batch.len() as u64;
        // An error here is a storage failure (the backend poisons itself and every caller
        // sees it) or a closed handle: either way there is nobody to tell.
        let _ = backend.complete_batch(batch);
        s.queue.lock().finished += n;
        s.finished.notify_all();
    }
}
