//! The transition rules, once for every backend: what each transition does to a job (or a
//! schedule) and which events it appends, as plain functions over the records both
//! backends store (`Job`, `ScheduledJob`).
//!
//! A rule takes the current record, the time (ms, from the caller's clock) and the
//! operation's arguments, and returns the new record with the events to append, in order
//! ([`Change`]). Rules do no I/O and cannot fail once their inputs are read: a backend reads
//! and checks first, then applies rules and stages what they return (sled's writer relies
//! on that: nothing fails after the first staged write). Storage, locking, indexes and
//! counters stay in each backend, which compares the old and new record's status.
//!
//! `lease` (claim and the end of an attempt: complete, fail, extend, release, expiry),
//! `job` (a new job from its input, cancel, redrive, prune), `schedule` (a schedule built,
//! toggled and fired).

mod job;
mod lease;
mod schedule;
#[cfg(test)]
mod tests;

pub(crate) use job::{
    cancel, enqueued_event, new_job, prune_cutoffs, pruned_event, redrive, RedrivePicker,
};
pub(crate) use lease::{
    check_lease, check_result, claim, complete, extend, fail, release, LeaseCheck, LEASE_EXPIRED,
    PROCESS_LOST,
};
pub(crate) use schedule::{build_schedule, changed_event, fire, is_due, toggle, triggered_event};

use crate::model::event::Event;
use crate::model::job::Job;

/// A job's new record and the events its change appends, in order.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a change does nothing until the backend stages it"]
pub(crate) struct Change {
    /// The record after the transition.
    pub job: Job,
    /// The events to append, in this order.
    pub events: Vec<Event>,
}

/// Milliseconds as `i64`, saturating.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
