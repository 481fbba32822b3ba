//! The engine's [`Observer`]: fans durable events out to live subscribers, and wakes
//! claimers waiting for work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};

use crate::backend::Observer;
use crate::model::event::EventRecord;

/// Capacity of a live subscription channel.
pub(crate) const SUBSCRIBER_BUFFER: usize = 65_536;

/// See the module docs.
#[derive(Default)]
pub(crate) struct Notifier {
    subscribers: Mutex<Vec<Sender<EventRecord>>>,
    /// Moves whenever work may have become claimable (or the backend stopped).
    epoch: Mutex<u64>,
    work: Condvar,
    closed: AtomicBool,
}

impl Observer for Notifier {
    /// Sends durable events to live subscribers. A subscriber that falls
    /// `SUBSCRIBER_BUFFER` events behind is dropped (its channel disconnects); it can resume
    /// from the log by seq.
    fn committed(&self, events: &[EventRecord]) {
        if events.is_empty() {
            return;
        }
        let mut subs = self.subscribers.lock();
        if subs.is_empty() {
            return;
        }
        subs.retain(|tx| {
            for ev in events {
                match tx.try_send(ev.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }

    fn work_available(&self) {
        *self.epoch.lock() += 1;
        self.work.notify_all();
    }
}

impl Notifier {
    /// A live feed of durable events from now on; disconnected at once after close.
    pub fn subscribe(&self) -> Receiver<EventRecord> {
        let (tx, rx) = bounded(SUBSCRIBER_BUFFER);
        let mut subs = self.subscribers.lock();
        // After close the sender drops here, so the receiver reports disconnection.
        if !self.closed.load(Ordering::Acquire) {
            subs.push(tx);
        }
        rx
    }

    /// The current work epoch: read it before looking for work, then
    /// [`Notifier::wait`] with it.
    pub fn epoch(&self) -> u64 {
        *self.epoch.lock()
    }

    /// Blocks until the epoch moves past `epoch`, the notifier closes, or `until`.
    pub fn wait(&self, epoch: u64, until: Instant) {
        let mut e = self.epoch.lock();
        while *e == epoch && !self.closed.load(Ordering::Acquire) {
            if self.work.wait_until(&mut e, until).timed_out() {
                return;
            }
        }
    }

    /// Disconnects every subscriber and wakes every waiter, for good.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.subscribers.lock().clear();
        self.work_available();
    }
}
