//! Changes journaled but not yet in sled.
//!
//! A group's changes go to sled only after its journal entry is fsync'd, so sled never holds
//! a change the journal could lose (and a torn group in sled is always completed by the
//! replay). Until then they live here, and every read looks here first, then in sled.
//!
//! Two views: the writer's reads (inside ops) see every staged group ([`Overlay::read`]);
//! readers outside the writer (`get`, `list`, events, schedules) see only groups whose
//! journal entry is durable (the `*_durable` methods). So each key keeps its versions, by
//! group lsn, until they are durable: a durable read takes the newest version at or below
//! the synced watermark (advanced by the syncer after each fsync, before anyone is told),
//! or sled's value when there is none (sled only ever holds durable groups).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::backend::sled::journal::Change;
use crate::backend::sled::logstore::Base;
use crate::model::error::Result;

/// One pending value: the journal lsn of the group that wrote it, and the value (`None` =
/// removed).
type Version = (u64, Option<sled::IVec>);

/// A key's pending values, oldest first. Nearly always one (no allocation beyond the map's).
enum Versions {
    One(Version),
    Many(Vec<Version>),
}

impl Versions {
    fn as_slice(&self) -> &[Version] {
        match self {
            Versions::One(v) => std::slice::from_ref(v),
            Versions::Many(vs) => vs,
        }
    }

    fn push(&mut self, v: Version) {
        match self {
            Versions::Many(vs) => vs.push(v),
            Versions::One(_) => {
                let Versions::One(first) = std::mem::replace(self, Versions::Many(Vec::new()))
                else {
                    unreachable!("matched One above")
                };
                *self = Versions::Many(vec![first, v]);
            }
        }
    }

    /// Removes the `n` oldest versions, calling `gone` on each; returns whether none is left.
    fn drop_oldest(&mut self, n: usize, mut gone: impl FnMut(&Version)) -> bool {
        match self {
            Versions::One(v) => {
                if n > 0 {
                    gone(v);
                }
                n > 0
            }
            Versions::Many(vs) => {
                for v in vs.drain(..n.min(vs.len())) {
                    gone(&v);
                }
                vs.is_empty()
            }
        }
    }
}

/// Pending changes by key, with their approximate size, which the writer keeps bounded.
#[derive(Default)]
pub(crate) struct Overlay {
    map: Mutex<Pending>,
    /// The last journal lsn known durable (fsync'd): what readers may see.
    synced: AtomicU64,
    /// Signalled when changes leave (reach sled).
    shrunk: Condvar,
    /// Test hooks: the backpressure limit in place of the writer's, and a held applier.
    #[cfg(test)]
    hooks: TestHooks,
    /// Keys whose reads fail (tests of what an op does when a read fails).
    #[cfg(test)]
    fail_reads: Mutex<Vec<Vec<u8>>>,
}

#[derive(Default)]
struct Pending {
    map: BTreeMap<sled::IVec, Versions>,
    bytes: usize,
    /// Bytes of every change journaled and not yet in sled, versions dropped from `map`
    /// included: the applier's queue still holds them. What backpressure bounds.
    queued: usize,
}

/// See [`Overlay::hold_applied`] and [`Overlay::set_limit`].
#[cfg(test)]
#[derive(Default)]
struct TestHooks {
    limit: Mutex<Option<usize>>,
    /// The applier is held, and how many times it waited.
    held: Mutex<(bool, usize)>,
    changed: Condvar,
}

/// Bytes an entry is counted for: key, value, and the map's own overhead.
fn cost(k: &[u8], v: Option<&sled::IVec>) -> usize {
    k.len() + v.map_or(0, |v| v.len()) + 64
}

/// The newest version of `vs` (the writer's view).
fn newest(vs: &Versions) -> Option<&Option<sled::IVec>> {
    vs.as_slice().last().map(|(_, v)| v)
}

/// The newest version of `vs` at or below `synced` (a reader's view); `None` if every
/// version is newer (sled's value is then the durable one).
fn durable(vs: &Versions, synced: u64) -> Option<&Option<sled::IVec>> {
    vs.as_slice()
        .iter()
        .rev()
        .find(|(at, _)| *at <= synced)
        .map(|(_, v)| v)
}

impl Overlay {
    /// The pending value of `key`: `None` if no change is pending, `Some(None)` if it was
    /// removed.
    pub fn get(&self, key: &[u8]) -> Option<Option<sled::IVec>> {
        self.map.lock().map.get(key).and_then(newest).cloned()
    }

    /// Whether any change of `key` is pending.
    pub fn pending(&self, key: &[u8]) -> bool {
        self.map.lock().map.contains_key(key)
    }

    /// The durable pending value of `key` (as [`Overlay::get`], durable groups only).
    fn get_durable(&self, key: &[u8], synced: u64) -> Option<Option<sled::IVec>> {
        self.map
            .lock()
            .map
            .get(key)
            .and_then(|vs| durable(vs, synced))
            .cloned()
    }

    /// The last journal lsn readers may see.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Groups up to `lsn` are durable: readers see them from now on. (Called by the syncer
    /// after the fsync, before it publishes events or answers anyone.)
    pub fn mark_synced(&self, lsn: u64) {
        self.synced.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Records a journaled group's changes. Versions of a key older than its newest durable
    /// one are dropped (no reader needs them).
    pub fn insert(&self, lsn: u64, changes: &[Change]) {
        let synced = self.synced();
        let mut p = self.map.lock();
        let Pending { map, bytes, queued } = &mut *p;
        for (k, v) in changes {
            *bytes += cost(k, v.as_ref());
            *queued += cost(k, v.as_ref());
            // One search per key (keys are short: an `IVec` clone of one is a copy).
            match map.entry(k.clone()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Versions::One((lsn, v.clone())));
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let vs = slot.get_mut();
                    // Keep the newest durable version (and the newer ones).
                    if let Some(keep) = vs.as_slice().iter().rposition(|(at, _)| *at <= synced) {
                        vs.drop_oldest(keep, |(_, old)| *bytes -= cost(k, old.as_ref()));
                    }
                    vs.push((lsn, v.clone()));
                }
            }
        }
    }

    /// Forgets the changes of group `lsn` now in sled, and any older version of their keys
    /// (versions of a later group stay).
    pub fn applied(&self, lsn: u64, changes: &[Change]) {
        #[cfg(test)]
        self.wait_while_held();
        let mut p = self.map.lock();
        let Pending { map, bytes, queued } = &mut *p;
        for (k, v) in changes {
            *queued = queued.saturating_sub(cost(k, v.as_ref()));
            // One search per key, the removal included.
            let std::collections::btree_map::Entry::Occupied(mut slot) = map.entry(k.clone())
            else {
                continue;
            };
            let vs = slot.get_mut();
            let gone = vs
                .as_slice()
                .iter()
                .take_while(|(at, _)| *at <= lsn)
                .count();
            if vs.drop_oldest(gone, |(_, old)| *bytes -= cost(k, old.as_ref())) {
                slot.remove();
            }
        }
        drop(p);
        self.shrunk.notify_all();
    }

    /// Waits until the changes not yet in sled take at most `limit` bytes, or `give_up` says
    /// to stop waiting (checked every 10 ms). Keeps memory bounded when sled falls behind.
    pub fn wait_below(&self, limit: usize, give_up: impl Fn() -> bool) {
        let mut p = self.map.lock();
        while p.queued > limit && !give_up() {
            self.shrunk.wait_for(&mut p, Duration::from_millis(10));
        }
    }

    /// The backpressure limit: `limit`, or the one a test set.
    pub fn limit(&self, limit: usize) -> usize {
        #[cfg(test)]
        if let Some(l) = *self.hooks.limit.lock() {
            return l;
        }
        limit
    }

    /// Replaces the writer's backpressure limit (see [`Overlay::limit`]).
    #[cfg(test)]
    pub fn set_limit(&self, limit: usize) {
        *self.hooks.limit.lock() = Some(limit);
    }

    /// Bytes of changes not yet in sled (what [`Overlay::wait_below`] bounds).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.map.lock().queued
    }

    /// While `on`, the applier waits before it drops an applied group from here (it has
    /// written it to sled): nothing leaves the overlay.
    #[cfg(test)]
    pub fn hold_applied(&self, on: bool) {
        self.hooks.held.lock().0 = on;
        self.hooks.changed.notify_all();
    }

    /// Waits (up to 10 s) until the applier waits in a hold; returns whether it does.
    #[cfg(test)]
    pub fn until_applier_held(&self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut held = self.hooks.held.lock();
        while held.1 == 0 {
            if self
                .hooks
                .changed
                .wait_until(&mut held, deadline)
                .timed_out()
            {
                return false;
            }
        }
        true
    }

    #[cfg(test)]
    fn wait_while_held(&self) {
        let mut held = self.hooks.held.lock();
        if held.0 {
            held.1 += 1;
            self.hooks.changed.notify_all();
        }
        while held.0 {
            self.hooks.changed.wait(&mut held);
        }
    }

    /// Approximate bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.map.lock().bytes
    }

    /// Number of pending keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().map.len()
    }

    /// The pending changes with keys in `[from, to)`, in key order (a snapshot): the
    /// newest version of each, or with `synced`, the newest durable one (keys with none are
    /// left out: sled has their durable value).
    fn range(
        &self,
        from: &[u8],
        to: &[u8],
        synced: Option<u64>,
    ) -> Vec<(sled::IVec, Option<sled::IVec>)> {
        self.map
            .lock()
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .filter_map(|(k, vs)| {
                let v = match synced {
                    None => newest(vs),
                    Some(s) => durable(vs, s),
                };
                v.map(|v| (k.clone(), v.clone()))
            })
            .collect()
    }

    /// The greatest durable pending key in `[from, to)` that is not a removal.
    pub fn last_key_durable(&self, from: &[u8], to: &[u8]) -> Option<sled::IVec> {
        let synced = self.synced();
        self.map
            .lock()
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .rev()
            .find(|(_, vs)| durable(vs, synced).is_some_and(Option::is_some))
            .map(|(k, _)| k.clone())
    }

    /// Keys in `[from, to)` with a version not yet durable (their durable value may differ
    /// from the writer's), in key order.
    pub fn unsynced_keys(&self, from: &[u8], to: &[u8]) -> Vec<sled::IVec> {
        let synced = self.synced();
        self.map
            .lock()
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .filter(|(_, vs)| vs.as_slice().last().is_some_and(|(at, _)| *at > synced))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Makes every later [`Overlay::read`] of `key` fail with a `STORAGE` error.
    #[cfg(test)]
    pub fn fail_reads_of(&self, key: &[u8]) {
        self.fail_reads.lock().push(key.to_vec());
    }

    /// `tree.get(key)` as it will be once every pending change is in sled: the writer's view.
    pub fn read(&self, tree: &Base, key: &[u8]) -> Result<Option<sled::IVec>> {
        #[cfg(test)]
        if self.fail_reads.lock().iter().any(|k| k == key) {
            return Err(crate::model::error::Error::Storage {
                context: format!(
                    "injected read failure of {}",
                    crate::backend::codec::show_key(key)
                ),
                source: None,
            });
        }
        match self.get(key) {
            Some(v) => Ok(v),
            None => tree.get(key),
        }
    }

    /// `tree.get(key)` as it is once every durable change is in sled: a reader's view,
    /// nothing a crash could take back.
    pub fn read_durable(&self, tree: &Base, key: &[u8]) -> Result<Option<sled::IVec>> {
        match self.get_durable(key, self.synced()) {
            Some(v) => Ok(v),
            None => tree.get(key),
        }
    }

    /// Iterates `[from, to)` of sled merged with the pending changes, in key order: the
    /// writer's view. The snapshot of pending changes is taken first: a group that reaches
    /// sled meanwhile is found there.
    pub fn scan<'a>(
        &self,
        tree: &'a Base,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a {
        Merge {
            pending: self.range(from, to, None).into_iter().peekable(),
            sled: tree.range(from, to).peekable(),
        }
    }

    /// As [`Overlay::scan`], durable changes only: a reader's view.
    pub fn scan_durable<'a>(
        &self,
        tree: &'a Base,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a {
        Merge {
            pending: self
                .range(from, to, Some(self.synced()))
                .into_iter()
                .peekable(),
            sled: tree.range(from, to).peekable(),
        }
    }
}

struct Merge<P: Iterator, S: Iterator> {
    pending: std::iter::Peekable<P>,
    sled: std::iter::Peekable<S>,
}

impl<P, S> Iterator for Merge<P, S>
where
    P: Iterator<Item = (sled::IVec, Option<sled::IVec>)>,
    S: Iterator<Item = Result<(sled::IVec, sled::IVec)>>,
{
    type Item = Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let from_sled = match self.sled.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => {
                    let e = self.sled.next()?.err()?;
                    return Some(Err(e));
                }
                None => None,
            };
            let take_pending = match (self.pending.peek(), &from_sled) {
                (Some((pk, _)), Some(sk)) => {
                    if pk == sk {
                        self.sled.next(); // the pending change replaces it
                    }
                    pk <= sk
                }
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if take_pending {
                let (k, v) = self.pending.next()?;
                match v {
                    Some(v) => return Some(Ok((k, v))),
                    None => continue, // removed
                }
            }
            return self.sled.next();
        }
    }
}

#[cfg(test)]
mod tests;
