//! The maintenance thread: fails attempts whose lease expired, every interval, and prunes
//! finished jobs and old events every `PRUNE_EVERY` intervals.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::backend::Backend;
use crate::engine::notify::Notifier;
use crate::engine::retry::ErrorBackoff;
use crate::engine::Background;
use crate::model::config::Retention;
use crate::model::error::{Error, Result};

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
    let mut backoff = ErrorBackoff::default();
    let mut wait = interval;
    loop {
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        // A failed pass (a lost database connection, a server restarting) is retried; the
        // loop ends only when its spool stops it.
        let pass = backend.expire_leases().and_then(|n| {
            if n > 0 {
                notifier.activity.lock().lease_expiries += n as u64;
            }
            if tick % PRUNE_EVERY == 0 {
                backend.prune(retention)?;
            }
            Ok(())
        });
        match pass {
            Ok(()) => {
                backoff.succeeded();
                wait = interval;
                tick = tick.wrapping_add(1);
            }
            Err(Error::ShuttingDown) => return,
            Err(e) => wait = backoff.failed("maintenance", &e).min(interval),
        }
    }
}
