//! The counters as readers see them: the live ones (ahead by the groups the writer staged
//! and the journal has not made durable yet) minus those groups' changes.
//!
//! Every counter change the writer makes is also noted in the current group's undo record;
//! at the end of the group the record is kept under the journal lsn the group gets. `stats`
//! takes the live counters and undoes, newest first, every group above the synced watermark.
//! The writer drops the records of durable groups at the start of each group, so at most the
//! groups in flight (a few) are kept.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::State;
use crate::model::types::{Counts, QueueStats, Stats};

/// Slot of the delayed count (after the six statuses).
const DELAYED: usize = 6;

/// One group's counter changes, per queue (the six statuses by index, then delayed), and the
/// paused flags it changed, with their value before.
#[derive(Debug, Default)]
pub(crate) struct Undo {
    counts: HashMap<String, [i64; 7]>,
    paused: Vec<(String, bool)>,
}

impl Undo {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.paused.is_empty()
    }
}

/// Undo records of the current group and of the groups not yet known durable.
#[derive(Debug, Default)]
pub(crate) struct Unsynced {
    current: Undo,
    groups: VecDeque<(u64, Undo)>,
}

impl Unsynced {
    /// Notes that `queue`'s counter `slot` moved by `by` (status index, or delayed).
    fn count(&mut self, queue: &str, slot: usize, by: i64) {
        if let Some(c) = self.current.counts.get_mut(queue) {
            c[slot] += by;
        } else {
            let mut c = [0; 7];
            c[slot] = by;
            self.current.counts.insert(queue.to_owned(), c);
        }
    }

    /// Starts a group: forgets what is durable up to `synced`, and anything noted outside a
    /// group (the indexing on open).
    pub fn begin(&mut self, synced: u64) {
        self.current = Undo::default();
        while self.groups.front().is_some_and(|(lsn, _)| *lsn <= synced) {
            self.groups.pop_front();
        }
    }

    /// Ends a group that will be journal entry `lsn`.
    pub fn end(&mut self, lsn: u64) {
        let undo = std::mem::take(&mut self.current);
        if !undo.is_empty() {
            self.groups.push_back((lsn, undo));
        }
    }
}

/// `c`'s counter `slot` (status index, or delayed).
fn slot(c: &mut Counts, slot: usize) -> &mut u64 {
    match slot {
        0..=5 => c.slot(crate::model::job::JobStatus::ALL[slot]),
        _ => &mut c.delayed,
    }
}

impl State {
    /// Notes a status counter change of `queue` for the durable view.
    pub(super) fn note_status(&mut self, queue: &str, status_index: usize, by: i64) {
        self.unsynced.count(queue, status_index, by);
    }

    /// Notes a delayed counter change of `queue` for the durable view.
    pub(super) fn note_delayed(&mut self, queue: &str, by: i64) {
        self.unsynced.count(queue, DELAYED, by);
    }

    /// Notes that `queue`'s paused flag is about to change (from `before`).
    pub(super) fn note_paused(&mut self, queue: &str, before: bool) {
        self.unsynced
            .current
            .paused
            .push((queue.to_owned(), before));
    }

    /// The counters as of journal entry `synced` (every later group undone): what a reader
    /// may be shown, since a crash cannot take it back. (Delayed jobs that became due since
    /// count as due; a count never goes below zero.)
    pub fn durable_stats(&self, synced: u64) -> Stats {
        let mut queues: BTreeMap<String, (Counts, bool)> = self
            .queues
            .iter()
            .map(|(name, q)| (name.clone(), (q.counts, q.paused)))
            .collect();
        for (_, undo) in self
            .unsynced
            .groups
            .iter()
            .rev()
            .take_while(|(lsn, _)| *lsn > synced)
        {
            for (queue, by) in &undo.counts {
                let (counts, _) = queues.entry(queue.clone()).or_default();
                for (i, by) in by.iter().enumerate() {
                    let s = slot(counts, i);
                    *s = s.saturating_add_signed(-by);
                }
            }
            for (queue, before) in undo.paused.iter().rev() {
                queues.entry(queue.clone()).or_default().1 = *before;
            }
        }
        let mut s = Stats::default();
        for (name, (counts, paused)) in queues {
            // A queue with no jobs and no setting is not listed (as after a reopen).
            if counts == Counts::default() && !paused {
                continue;
            }
            s.total.add(&counts);
            s.queues.insert(name, QueueStats { counts, paused });
        }
        s
    }
}
