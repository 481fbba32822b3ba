//! [`Subscription`]: a live feed of durable events.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use crate::model::event::EventRecord;

/// A live feed of events from [`Spool::subscribe`](crate::Spool::subscribe), each sent once
/// it is durable, in sequence order. A subscriber that falls 65,536 events behind is
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
    pub(crate) fn new(rx: Receiver<EventRecord>) -> Self {
        Subscription { rx }
    }

    /// The next event, waiting as long as it takes.
    ///
    /// # Errors
    /// [`SubscriptionError::Closed`] once the feed ended.
    pub fn recv(&self) -> Result<EventRecord, SubscriptionError> {
        self.rx.recv().map_err(|_| SubscriptionError::Closed)
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SubscriptionError::Empty`] when none came in time, `Closed` once the feed ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EventRecord, SubscriptionError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => SubscriptionError::Empty,
            RecvTimeoutError::Disconnected => SubscriptionError::Closed,
        })
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// [`SubscriptionError::Empty`] when none is waiting, `Closed` once the feed ended.
    pub fn try_recv(&self) -> Result<EventRecord, SubscriptionError> {
        self.rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => SubscriptionError::Empty,
            TryRecvError::Disconnected => SubscriptionError::Closed,
        })
    }

    /// The events waiting now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = EventRecord> + '_ {
        self.rx.try_iter()
    }

    /// Every event until the feed ends, blocking for each.
    pub fn iter(&self) -> impl Iterator<Item = EventRecord> + '_ {
        self.rx.iter()
    }
}

/// Every event until the feed ends, blocking for each (`for ev in spool.subscribe()`).
impl IntoIterator for Subscription {
    type Item = EventRecord;
    type IntoIter = Events;
    fn into_iter(self) -> Events {
        Events(self.rx.into_iter())
    }
}

/// The events of a [`Subscription`] until its feed ends (its `IntoIterator`).
#[derive(Debug)]
pub struct Events(crossbeam_channel::IntoIter<EventRecord>);

impl Iterator for Events {
    type Item = EventRecord;
    fn next(&mut self) -> Option<EventRecord> {
        self.0.next()
    }
}
