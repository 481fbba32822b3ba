//! The key directory's map: one B-tree per resident prefix, keyed by the key's 16 bytes as
//! a number. Comparing a `u128` is cheaper than comparing a `(prefix, u128)` pair, and each
//! tree holds only keys written in about the same order (ids grow with time), so open's two
//! million inserts walk shorter, hotter paths (about a fifth less time than one tree).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Key, Loc};
use crate::backend::codec::keys;

/// The resident prefixes, in key order.
const PREFIXES: [u8; 3] = [keys::EVENT, keys::JOB, keys::PAYLOAD];

#[derive(Default)]
pub(super) struct DirMap {
    trees: [BTreeMap<u128, Loc>; 3],
}

fn slot(prefix: u8) -> Option<usize> {
    PREFIXES.iter().position(|p| *p == prefix)
}

impl DirMap {
    pub fn get(&self, k: &Key) -> Option<&Loc> {
        self.trees[slot(k.0)?].get(&k.1)
    }

    /// Sets `k` (a resident key: see `fixed`); returns its previous location.
    pub fn insert(&mut self, k: Key, loc: Loc) -> Option<Loc> {
        let i = slot(k.0).expect("a resident key has a resident prefix");
        self.trees[i].insert(k.1, loc)
    }

    pub fn remove(&mut self, k: &Key) -> Option<Loc> {
        self.trees[slot(k.0)?].remove(&k.1)
    }

    /// Every key and its location, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Loc)> {
        PREFIXES
            .iter()
            .zip(&self.trees)
            .flat_map(|(p, t)| t.iter().map(move |(n, l)| ((*p, *n), l)))
    }

    /// The keys of one prefix and their locations, in key order.
    pub fn of_prefix(&self, prefix: u8) -> impl Iterator<Item = (Key, &Loc)> {
        slot(prefix)
            .map(|i| &self.trees[i])
            .into_iter()
            .flat_map(move |t| t.iter().map(move |(n, l)| ((prefix, *n), l)))
    }

    /// The keys in `(from, to)`, in key order (from either end).
    pub fn range(
        &self,
        from: Bound<Key>,
        to: Bound<Key>,
    ) -> impl DoubleEndedIterator<Item = (Key, &Loc)> {
        PREFIXES
            .iter()
            .zip(&self.trees)
            .filter_map(move |(&p, t)| {
                let lo = within(from, p, Ordering::Less)?;
                let hi = within(to, p, Ordering::Greater)?;
                (!empty(lo, hi)).then(|| t.range((lo, hi)).map(move |(n, l)| ((p, *n), l)))
            })
            .flatten()
    }
}

/// `bound` as a bound within prefix `p`'s tree: the same number when it is in `p`,
/// unbounded when its prefix is `open_when` of `p` (before it, for a lower bound; after it,
/// for an upper one), and `None` when the range misses `p` altogether.
fn within(bound: Bound<Key>, p: u8, open_when: Ordering) -> Option<Bound<u128>> {
    let (Bound::Included((q, n)) | Bound::Excluded((q, n))) = bound else {
        return Some(Bound::Unbounded);
    };
    match q.cmp(&p) {
        Ordering::Equal if matches!(bound, Bound::Included(_)) => Some(Bound::Included(n)),
        Ordering::Equal => Some(Bound::Excluded(n)),
        o if o == open_when => Some(Bound::Unbounded),
        _ => None,
    }
}

/// Whether `(lo, hi)` holds nothing (`BTreeMap::range` panics on some of those).
fn empty(lo: Bound<u128>, hi: Bound<u128>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(n: u64) -> Loc {
        Loc {
            seg: 1,
            off: n,
            len: 1,
            crc: 0,
        }
    }

    /// Every range, from either end, gives what one map of `(prefix, u128)` keys gives.
    #[test]
    fn ranges_read_as_one_ordered_map_would() {
        let mut dir = DirMap::default();
        let mut one: BTreeMap<Key, Loc> = BTreeMap::new();
        for p in PREFIXES {
            for n in [0u128, 1, 5, 9, u128::MAX] {
                let k = (p, n);
                dir.insert(k, loc(n as u64));
                one.insert(k, loc(n as u64));
            }
        }
        let mut points: Vec<Key> = Vec::new();
        for p in [
            b'a',
            keys::EVENT,
            keys::EVENT + 1,
            keys::JOB,
            keys::JOB + 1,
            keys::PAYLOAD,
            b'z',
        ] {
            for n in [0u128, 1, 4, 5, 6, 9, u128::MAX] {
                points.push((p, n));
            }
        }
        let bounds = |k: Key| [Bound::Included(k), Bound::Excluded(k)];
        let mut checked = 0;
        for &a in &points {
            for &b in &points {
                for lo in bounds(a).into_iter().chain([Bound::Unbounded]) {
                    for hi in bounds(b).into_iter().chain([Bound::Unbounded]) {
                        let ok = match (lo, hi) {
                            (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y))
                            | (Bound::Included(x), Bound::Excluded(y)) => x <= y,
                            (Bound::Excluded(x), Bound::Excluded(y)) => x < y,
                            _ => true,
                        };
                        if !ok {
                            continue; // (BTreeMap::range panics there)
                        }
                        let want: Vec<_> = one.range((lo, hi)).map(|(k, l)| (*k, *l)).collect();
                        let got: Vec<_> = dir.range(lo, hi).map(|(k, l)| (k, *l)).collect();
                        assert_eq!(got, want, "{lo:?}..{hi:?}");
                        let back: Vec<_> = dir.range(lo, hi).rev().map(|(k, l)| (k, *l)).collect();
                        assert_eq!(back, want.iter().rev().copied().collect::<Vec<_>>());
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
        let all: Vec<_> = dir.iter().map(|(k, l)| (k, *l)).collect();
        assert_eq!(all, one.iter().map(|(k, l)| (*k, *l)).collect::<Vec<_>>());
        assert_eq!(dir.of_prefix(keys::JOB).count(), 5);
        assert_eq!(dir.remove(&(keys::JOB, 5)), Some(loc(5)));
        assert_eq!(dir.get(&(keys::JOB, 5)), None);
        assert_eq!(dir.get(&(b'x', 5)), None);
    }
}
