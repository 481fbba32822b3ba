//! The maintenance thread: fails attempts whose lease expired, every interval, and prunes
//! finished jobs and old events every [`prune_every`] intervals.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::backend::Backend;
use crate::engine::notify::Notifier;
use crate::engine::retry::ErrorBackoff;
use crate::engine::Background;
use crate::model::config::Retention;
use crate::model::error::{Error, Result};

/// Longest time between pruning passes.
const PRUNE_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// How many maintenance ticks of `interval` between pruning passes: a tenth of the
/// shortest retention, so what waits to be pruned stays within a tenth of what is kept
/// (disk under a 60 s retention: a pass every 6 s, not a saw-tooth of a minute's worth),
/// and at most a minute (the default retentions, a day or more: once a minute); every
/// tick when ticks are further apart than that. A pass with nothing due only walks the
/// start of the finished-jobs index.
fn prune_every(retention: &Retention, interval: Duration) -> u32 {
    let shortest = [
        retention.completed,
        retention.cancelled,
        retention.failed,
        retention.dead_letter,
        retention.events,
    ]
    .into_iter()
    .min()
    .unwrap_or(PRUNE_AT_MOST_EVERY);
    let every = (shortest / 10).min(PRUNE_AT_MOST_EVERY);
    let ticks = every.as_nanos() / interval.as_nanos().max(1);
    u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
}

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
    let prune_every = prune_every(retention, interval);
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
            if tick % prune_every == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(secs: u64) -> Retention {
        Retention {
            completed: Duration::from_secs(secs),
            ..Retention::default()
        }
    }

    #[test]
    fn pruning_runs_every_tenth_of_the_shortest_retention_at_most_every_minute() {
        let second = Duration::from_secs(1);
        assert_eq!(prune_every(&Retention::default(), second), 60);
        assert_eq!(prune_every(&retention(60), second), 6);
        assert_eq!(prune_every(&retention(60), Duration::from_millis(500)), 12);
        // The shortest of the five counts, events included.
        let events = Retention {
            events: Duration::from_secs(120),
            ..Retention::default()
        };
        assert_eq!(prune_every(&events, second), 12);
        // Retention shorter than ten ticks: every tick; never zero, whatever the interval.
        assert_eq!(prune_every(&retention(3), second), 1);
        assert_eq!(prune_every(&retention(0), second), 1);
        assert_eq!(
            prune_every(&retention(60), Duration::from_micros(100)),
            60_000
        );
        assert_eq!(prune_every(&retention(60), Duration::ZERO), u32::MAX);
        assert_eq!(
            prune_every(&Retention::default(), Duration::from_secs(600)),
            1
        );
    }
}
