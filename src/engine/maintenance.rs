//! The maintenance thread: fails attempts whose lease expired, every interval, and prunes
//! finished jobs and old events every `PRUNE_EVERY` intervals.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::backend::Backend;
use crate::engine::notify::Notifier;
use crate::engine::Background;
use crate::model::config::Retention;
use crate::model::error::Result;

/// How many maintenance ticks between pruning passes.
const PRUNE_EVERY: u32 = 60;

/// Starts the thread; it stops when the returned handle does.
pub(crate) fn start(
    backend: Arc<dyn Backend>,
    notifier: Arc<Notifier>,
    retention: Retention,
    interval: Duration,
) -> Result<Background> {
    Background::spawn("jobspool-maintenance", move |stop| {
        run(&*backend, &notifier, &retention, interval, stop);
    })
}

fn run(
    backend: &dyn Backend,
    notifier: &Notifier,
    retention: &Retention,
    interval: Duration,
    stop: &Receiver<()>,
) {
    let mut tick: u32 = 0;
    loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        // Errors here are storage errors: the backend poisons itself and every caller sees
        // them, so the thread only has to stop.
        match backend.expire_leases() {
            Ok(0) => {}
            Ok(n) => notifier.activity.lock().lease_expiries += n as u64,
            Err(_) => return,
        }
        if tick % PRUNE_EVERY == 0 && backend.prune(retention).is_err() {
            return;
        }
        tick = tick.wrapping_add(1);
    }
}
