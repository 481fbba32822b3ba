//! Durable events to the observer (the engine's live subscribers).

use crate::backend::sled::Shared;
use crate::model::event::EventRecord;

/// Reports durable events to the observer, in seq order, after moving the last durable
/// seq (what readers are told the log reaches) past them.
pub(super) fn publish(shared: &Shared, events: Vec<EventRecord>) {
    let Some(last) = events.last() else {
        return;
    };
    shared
        .durable_seq
        .fetch_max(last.seq, std::sync::atomic::Ordering::AcqRel);
    shared.observer.committed(&events);
}
