//! Changes journaled but not yet in sled.
//!
//! A group's changes go to sled only after its journal entry is fsync'd, so sled never holds
//! a change the journal could lose (and a torn group in sled is always completed by the
//! replay). Until then they live here, and every read (the writer's and the readers') looks
//! here first, then in sled.

use std::collections::BTreeMap;
use std::ops::Bound;

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::backend::sled::journal::Change;
use crate::model::error::Result;

/// Pending changes by key: the journal lsn of the group that made each, and the value
/// (`None` = removed); with their approximate size, which the writer keeps bounded.
#[derive(Default)]
pub(crate) struct Overlay {
    map: Mutex<Pending>,
    /// Signalled when changes leave (reach sled).
    shrunk: Condvar,
    /// Keys whose reads fail (tests of what an op does when a read fails).
    #[cfg(test)]
    fail_reads: Mutex<Vec<Vec<u8>>>,
}

#[derive(Default)]
struct Pending {
    map: BTreeMap<sled::IVec, (u64, Option<sled::IVec>)>,
    bytes: usize,
}

/// Bytes an entry is counted for: key, value, and the map's own overhead.
fn cost(k: &[u8], v: Option<&sled::IVec>) -> usize {
    k.len() + v.map_or(0, |v| v.len()) + 64
}

impl Overlay {
    /// The pending value of `key`: `None` if no change is pending, `Some(None)` if it was
    /// removed.
    pub fn get(&self, key: &[u8]) -> Option<Option<sled::IVec>> {
        self.map.lock().map.get(key).map(|(_, v)| v.clone())
    }

    /// Records a journaled group's changes.
    pub fn insert(&self, lsn: u64, changes: &[Change]) {
        let mut p = self.map.lock();
        for (k, v) in changes {
            p.bytes += cost(k, v.as_ref());
            if let Some((_, old)) = p.map.insert(k.clone(), (lsn, v.clone())) {
                p.bytes -= cost(k, old.as_ref());
            }
        }
    }

    /// Forgets the changes of group `lsn` now in sled (keys a later group changed again stay).
    pub fn applied(&self, lsn: u64, changes: &[Change]) {
        let mut p = self.map.lock();
        for (k, _) in changes {
            if p.map.get(k).is_some_and(|(at, _)| *at == lsn) {
                if let Some((_, old)) = p.map.remove(k) {
                    p.bytes -= cost(k, old.as_ref());
                }
            }
        }
        drop(p);
        self.shrunk.notify_all();
    }

    /// Waits until the pending changes take at most `limit` bytes, or `give_up` says to stop
    /// waiting (checked every 10 ms). Keeps memory bounded when sled falls behind.
    pub fn wait_below(&self, limit: usize, give_up: impl Fn() -> bool) {
        let mut p = self.map.lock();
        while p.bytes > limit && !give_up() {
            self.shrunk.wait_for(&mut p, Duration::from_millis(10));
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

    /// The pending changes with keys in `[from, to)`, in key order (a snapshot).
    fn range(&self, from: &[u8], to: &[u8]) -> Vec<(sled::IVec, Option<sled::IVec>)> {
        self.map
            .lock()
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    /// The greatest pending key in `[from, to)` that is not a removal.
    pub fn last_key(&self, from: &[u8], to: &[u8]) -> Option<sled::IVec> {
        self.map
            .lock()
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .rev()
            .find(|(_, (_, v))| v.is_some())
            .map(|(k, _)| k.clone())
    }

    /// Makes every later [`Overlay::read`] of `key` fail with a `STORAGE` error.
    #[cfg(test)]
    pub fn fail_reads_of(&self, key: &[u8]) {
        self.fail_reads.lock().push(key.to_vec());
    }

    /// `tree.get(key)` as it will be once every pending change is in sled.
    pub fn read(&self, tree: &sled::Tree, key: &[u8]) -> Result<Option<sled::IVec>> {
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
            None => Ok(tree.get(key)?),
        }
    }

    /// Iterates `[from, to)` of sled merged with the pending changes, in key order. The
    /// snapshot of pending changes is taken first: a group that reaches sled meanwhile is
    /// found there.
    pub fn scan<'a>(
        &self,
        tree: &'a sled::Tree,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a {
        Merge {
            pending: self.range(from, to).into_iter().peekable(),
            sled: tree.range(from.to_vec()..to.to_vec()).peekable(),
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
    S: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
{
    type Item = Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let from_sled = match self.sled.peek() {
                Some(Ok((k, _))) => Some(k.clone()),
                Some(Err(_)) => {
                    let e = self.sled.next()?.err()?;
                    return Some(Err(e.into()));
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
            return self.sled.next().map(|r| r.map_err(Into::into));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(k: &str, v: Option<&str>) -> Change {
        (k.as_bytes().into(), v.map(|v| v.as_bytes().into()))
    }

    #[test]
    fn reads_and_scans_see_pending_changes_over_sled() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for k in ["a", "b", "d", "f"] {
            db.insert(k, k).unwrap();
        }
        let o = Overlay::default();
        o.insert(1, &[c("b", None), c("c", Some("C")), c("d", Some("D"))]);
        o.insert(2, &[c("g", Some("G")), c("c", Some("C2"))]);
        assert_eq!(o.read(&db, b"b").unwrap(), None);
        assert_eq!(o.read(&db, b"a").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(o.read(&db, b"c").unwrap().as_deref(), Some(&b"C2"[..]));
        let all: Vec<(String, String)> = o
            .scan(&db, b"a", b"z")
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    String::from_utf8(k.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect();
        let want = [("a", "a"), ("c", "C2"), ("d", "D"), ("f", "f"), ("g", "G")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(all, want);
        assert_eq!(o.scan(&db, b"b", b"d").count(), 1);
        // Group 1 reaches sled: its keys go, except `c`, which group 2 changed again.
        let before = o.bytes();
        o.applied(1, &[c("b", None), c("c", Some("C")), c("d", Some("D"))]);
        assert_eq!(o.len(), 2);
        assert_eq!(o.get(b"c"), Some(Some(sled::IVec::from("C2"))));
        assert!(o.bytes() < before);
        // `c` and `g` remain: (1 + 2 + 64) + (1 + 1 + 64).
        assert_eq!(o.bytes(), 133);
        o.applied(2, &[c("g", Some("G")), c("c", Some("C2"))]);
        assert_eq!((o.len(), o.bytes()), (0, 0));
        o.wait_below(0, || false); // returns at once
    }
}
