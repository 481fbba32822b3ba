//! Durable events to the observer (the engine's live subscribers).

use crate::backend::sled::Shared;
use crate::model::event::EventRecord;

/// Reports durable events to the observer, in seq order.
pub(super) fn publish(shared: &Shared, events: Vec<EventRecord>) {
    if events.is_empty() {
        return;
    }
    shared.observer.committed(&events);
}
