//! [`Subscription`]: a live feed of durable events.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use crate::model::event::EventRecord;

/// A live feed of events from [`Spool::subscribe`](crate::Spool::subscribe), each sent once
/// it is durable, in sequence order: the events of every change committed after the
/// subscription began (none of those before). A subscriber that falls 65,536 events behind is
/// dropped (its feed ends); it can resume from the log with
/// [`Spool::events_since`](crate::Spool::events_since) and the last `seq` it saw.
///
/// ```
/// use jobspool::{NewJob, Spool};
/// use std::time::Duration;
/// # let dir = tempfile::tempdir().unwrap();
/// let spool = Spool::open(dir.path().join("q"))?;
/// let feed = spool.subscribe();
/// spool.enqueue(NewJob::new("t", Vec::new()))?;
/// let ev = feed.recv_timeout(Duration::from_secs(5)).expect("an event");
/// assert_eq!(ev.event.name(), "job.enqueued");
/// # Ok::<(), jobspool::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<EventRecord>,
    /// Events up to this seq were committed before the subscription began: not sent.
    after: u64,
}

/// Why a [`Subscription`] gave no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionError {
    /// Nothing arrived in time (`recv_timeout`), or nothing is waiting (`try_recv`).
    Empty,
    /// The feed ended: the spool closed, or this subscriber fell too far behind and was
    /// dropped. Resume from the log with `events_since`.
    Closed,
}

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SubscriptionError::Empty => "no event yet",
            SubscriptionError::Closed => {
                "the event feed ended (the spool closed, or this subscriber fell behind); \
                 resume with events_since"
            }
        })
    }
}

impl std::error::Error for SubscriptionError {}

impl Subscription {
    /// A feed of the events on `rx` whose seq is above `after` (the newest seq when the
    /// subscription began: a backend may deliver events of earlier commits a little later).
    pub(crate) fn new(rx: Receiver<EventRecord>, after: u64) -> Self {
        Subscription { rx, after }
    }

    fn fresh(&self, ev: &EventRecord) -> bool {
        ev.seq > self.after
    }

    /// The next event, waiting as long as it takes.
    ///
    /// # Errors
    /// [`SubscriptionError::Closed`] once the feed ended.
    pub fn recv(&self) -> Result<EventRecord, SubscriptionError> {
        loop {
            let ev = self.rx.recv().map_err(|_| SubscriptionError::Closed)?;
            if self.fresh(&ev) {
                return Ok(ev);
            }
        }
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SubscriptionError::Empty`] when none came in time, `Closed` once the feed ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EventRecord, SubscriptionError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let ev = self.rx.recv_deadline(deadline).map_err(|e| match e {
                RecvTimeoutError::Timeout => SubscriptionError::Empty,
                RecvTimeoutError::Disconnected => SubscriptionError::Closed,
            })?;
            if self.fresh(&ev) {
                return Ok(ev);
            }
        }
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// [`SubscriptionError::Empty`] when none is waiting, `Closed` once the feed ended.
    pub fn try_recv(&self) -> Result<EventRecord, SubscriptionError> {
        loop {
            let ev = self.rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => SubscriptionError::Empty,
                TryRecvError::Disconnected => SubscriptionError::Closed,
            })?;
            if self.fresh(&ev) {
                return Ok(ev);
            }
        }
    }

    /// The events waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = EventRecord> + '_ {
        self.rx.try_iter().filter(|ev| self.fresh(ev))
    }

    /// Every event until the feed ends, blocking for each.
    pub fn iter(&self) -> impl Iterator<Item = EventRecord> + '_ {
        self.rx.iter().filter(|ev| self.fresh(ev))
    }
}

/// Every event until the feed ends, blocking for each (`for ev in spool.subscribe()`).
impl IntoIterator for Subscription {
    type Item = EventRecord;
    type IntoIter = Events;
    fn into_iter(self) -> Events {
        Events {
            rx: self.rx.into_iter(),
            after: self.after,
        }
    }
}

/// The events of a [`Subscription`] until its feed ends (its `IntoIterator`).
#[derive(Debug)]
pub struct Events {
    rx: crossbeam_channel::IntoIter<EventRecord>,
    after: u64,
}

impl Iterator for Events {
    type Item = EventRecord;
    fn next(&mut self) -> Option<EventRecord> {
        let after = self.after;
        self.rx.find(|ev| ev.seq > after)
    }
}
