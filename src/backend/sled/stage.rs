//! What one writer group stages before it is written: changed job records, other keys,
//! and events; and the shapes of the log and meta records. Below both the ops that fill it
//! and the writer that writes it.

use fxhash::FxHashMap;

use crate::model::event::{Event, EventRecord};
use crate::model::job::{Job, JobId};

/// An event as stored in the log (in blocks, one per writer group): the time it was
/// appended, for retention.
#[derive(Debug, PartialEq)]
pub(crate) struct StoredEvent {
    pub at_ms: i64,
    pub event: Event,
}

/// A log block: the events of one writer group, from the seq in its key.
pub(crate) type StoredEventBlock = Vec<StoredEvent>;

/// Persisted counters: the next event sequence number (never reused, even after pruning).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Meta {
    pub next_seq: u64,
}

/// One group's changes, not yet written.
#[derive(Default)]
pub(crate) struct Staged {
    /// Job records (payload excluded); `None` deletes.
    pub jobs: FxHashMap<JobId, Option<Job>>,
    /// Every other key; `None` deletes.
    pub raw: FxHashMap<Vec<u8>, Option<sled::IVec>>,
    pub events: Vec<EventRecord>,
    /// When each event was appended (for retention), parallel to `events`.
    pub event_times: Vec<i64>,
    /// Resident values copied forward unchanged (compaction), written first in the entry,
    /// so any change of the same key in the group comes after and wins.
    pub compact: Vec<(sled::IVec, sled::IVec)>,
}

impl Staged {
    pub fn put_raw(&mut self, key: Vec<u8>, value: Option<sled::IVec>) {
        self.raw.insert(key, value);
    }

    pub fn push_event(&mut self, seq: u64, at_ms: i64, event: Event) {
        self.events.push(EventRecord { seq, event });
        self.event_times.push(at_ms);
    }

    /// Empties it for the next group, keeping the capacity (the writer reuses one `Staged`
    /// for every group, so a group of thousands of jobs does not grow its maps from
    /// scratch each time).
    pub fn clear(&mut self) {
        self.jobs.clear();
        self.raw.clear();
        self.events.clear();
        self.event_times.clear();
        self.compact.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.raw.is_empty()
            && self.events.is_empty()
            && self.compact.is_empty()
    }
}
