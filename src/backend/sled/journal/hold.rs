//! Test hook: holds the journal fsyncs of one database directory, so a test can look at a
//! spool whose group is written to the journal but not yet durable.

use std::path::{Path, PathBuf};

use parking_lot::{Condvar, Mutex};

/// Held directories, and how many fsyncs of each wait.
static HELD: Mutex<Vec<(PathBuf, usize)>> = Mutex::new(Vec::new());
static CHANGED: Condvar = Condvar::new();

/// From now on, fsyncs of the journal of `db_dir` wait until [`release`].
pub(crate) fn hold(db_dir: &Path) {
    HELD.lock().push((db_dir.to_path_buf(), 0));
}

/// Lets the fsyncs of `db_dir` go.
pub(crate) fn release(db_dir: &Path) {
    HELD.lock().retain(|(p, _)| p != db_dir);
    CHANGED.notify_all();
}

/// Waits (up to 10 s) until an fsync of `db_dir`'s journal is held; returns whether one is.
pub(crate) fn until_waiting(db_dir: &Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut held = HELD.lock();
    loop {
        if held.iter().any(|(p, n)| p == db_dir && *n > 0) {
            return true;
        }
        if CHANGED.wait_until(&mut held, deadline).timed_out() {
            return false;
        }
    }
}

/// Called before each journal fsync: waits while `db_dir` is held.
pub(super) fn wait(db_dir: &Path) {
    let mut held = HELD.lock();
    let Some(i) = held.iter().position(|(p, _)| p == db_dir) else {
        return;
    };
    held[i].1 += 1;
    CHANGED.notify_all();
    while held.iter().any(|(p, _)| p == db_dir) {
        CHANGED.wait(&mut held);
    }
}
