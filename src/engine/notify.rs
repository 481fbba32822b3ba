//! The engine's [`Observer`]: fans durable events out to live subscribers, and wakes
//! claimers waiting for work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};

use crate::backend::Observer;
use crate::model::activity::Activity;
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
    /// What this process has seen happen (events counted here; lease expiries and handler
    /// durations by their callers).
    pub(crate) activity: Mutex<Activity>,
}

impl Observer for Notifier {
    /// Sends durable events to live subscribers. A subscriber that falls
    /// `SUBSCRIBER_BUFFER` events behind is dropped (its channel disconnects); it can resume
    /// from the log by seq.
    fn committed(&self, events: &[EventRecord]) {
        if events.is_empty() {
            return;
        }
        {
            let mut a = self.activity.lock();
            for ev in events {
                *a.events.entry(ev.event.name()).or_insert(0) += 1;
            }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::event::Event;

    fn record(seq: u64) -> EventRecord {
        EventRecord {
            seq,
            event: Event::QueuePaused {
                queue: "q".into(),
                paused: true,
                at: crate::model::clock::to_datetime(0),
            },
        }
    }

    #[test]
    fn a_waiter_wakes_on_work_and_not_before() {
        let n = std::sync::Arc::new(Notifier::default());
        let epoch = n.epoch();
        // Nothing happened: the wait runs to its deadline.
        let t = Instant::now();
        n.wait(epoch, t + Duration::from_millis(30));
        assert!(t.elapsed() >= Duration::from_millis(30));
        // Work reported before the wait starts is not missed.
        n.work_available();
        let t = Instant::now();
        n.wait(epoch, t + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
        // Nor is work reported while waiting.
        let epoch = n.epoch();
        let n2 = n.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            n2.work_available();
        });
        let t = Instant::now();
        n.wait(epoch, t + Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
    }

    #[test]
    fn subscribers_get_committed_events_and_a_slow_one_is_dropped() {
        let n = Notifier::default();
        let slow = n.subscribe();
        let fast = n.subscribe();
        let batch: Vec<EventRecord> = (1..=SUBSCRIBER_BUFFER as u64).map(record).collect();
        n.committed(&batch);
        assert_eq!(fast.try_iter().count(), SUBSCRIBER_BUFFER);
        assert_eq!(slow.len(), SUBSCRIBER_BUFFER);
        // One more: `slow` has no room and is dropped; `fast` gets it.
        n.committed(&[record(SUBSCRIBER_BUFFER as u64 + 1)]);
        assert_eq!(fast.recv().unwrap().seq, SUBSCRIBER_BUFFER as u64 + 1);
        assert_eq!(slow.try_iter().count(), SUBSCRIBER_BUFFER);
        assert!(slow.recv().is_err(), "disconnected");
        // Close disconnects everyone, and later subscribers at once.
        n.close();
        assert!(fast.recv().is_err());
        assert!(n.subscribe().recv().is_err());
        // And a closed notifier never blocks a waiter.
        n.wait(n.epoch(), Instant::now() + Duration::from_secs(10));
    }
}
