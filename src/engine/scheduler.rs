//! The scheduler thread: sleeps until the next enabled cron schedule is due or schedules
//! change, then fires what is due. Ticks missed while the process was down fire once, on
//! the first pass.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::backend::Backend;
use crate::engine::retry::ErrorBackoff;
use crate::engine::Background;
use crate::model::clock::Clock;
use crate::model::error::{Error, Result};

/// Longest the scheduler sleeps without looking, so a wall-clock jump is noticed within a
/// minute. With a manual clock, call `Spool::fire_due_schedules` after moving it.
const SCHEDULER_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Starts the thread; [`Background::wake`] tells it schedules changed, and it stops when
/// the returned handle does.
pub(crate) fn start(backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Result<Background> {
    Background::spawn("jobspool-scheduler", move |wake| {
        run(&*backend, &*clock, wake)
    })
}

fn run(backend: &dyn Backend, clock: &dyn Clock, wake: &Receiver<()>) {
    let mut backoff = ErrorBackoff::default();
    loop {
        // A failed pass (a lost database connection, a server restarting) is retried after a
        // growing wait; the loop ends only when its spool stops it.
        let pass = backend
            .fire_due_schedules()
            .and_then(|_| backend.next_schedule_due());
        let wait = match pass {
            Ok(Some(due)) => {
                backoff.succeeded();
                let ms = due.saturating_sub(clock.now_ms()).max(1);
                Duration::from_millis(u64::try_from(ms).unwrap_or(1)).min(SCHEDULER_MAX_SLEEP)
            }
            Ok(None) => {
                backoff.succeeded();
                SCHEDULER_MAX_SLEEP
            }
            Err(Error::ShuttingDown) => return,
            Err(e) => backoff.failed("scheduler", &e),
        };
        match wake.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
