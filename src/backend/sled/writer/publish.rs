//! Durable events to live subscribers.

use crossbeam_channel::TrySendError;

use crate::backend::sled::Shared;
use crate::model::event::EventRecord;

/// Sends durable events to live subscribers. A subscriber that falls `SUBSCRIBER_BUFFER`
/// events behind is dropped (its channel disconnects); it can resume from the log by seq.
pub(super) fn publish(shared: &Shared, events: Vec<EventRecord>) {
    if events.is_empty() {
        return;
    }
    let mut subs = shared.subscribers.lock();
    if subs.is_empty() {
        return;
    }
    subs.retain(|tx| {
        for ev in &events {
            match tx.try_send(ev.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return false,
            }
        }
        true
    });
}

/// Capacity of a live subscription channel.
pub(crate) const SUBSCRIBER_BUFFER: usize = 65_536;
