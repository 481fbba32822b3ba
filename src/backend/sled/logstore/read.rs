//! Reading through the directory: key ranges (read in chunks) and [`Base`], what the
//! overlay reads under its pending changes.

use std::fs::File;
use std::ops::Bound;
use std::sync::Arc;

use super::{resident, unfixed, Key, Loc, LogStore};
use crate::backend::codec::keys;
use crate::model::error::Result;

/// `key` in the directory's key space (cut to its width, zeros after): as a bound, at or
/// after every key it is a prefix of.
pub(super) fn pad(key: &[u8]) -> Key {
    let Some((&prefix, rest)) = key.split_first() else {
        return (0, 0);
    };
    let mut b = [0u8; 16];
    let n = rest.len().min(16);
    b[..n].copy_from_slice(&rest[..n]);
    (prefix, u128::from_be_bytes(b))
}

/// Iterates a key range of the directory, reading values as it goes (in chunks, each
/// under a short read lock).
pub(crate) struct LogRange<'a> {
    pub(super) log: &'a LogStore,
    pub(super) next: Option<Bound<Key>>,
    pub(super) to: Bound<Key>,
    pub(super) buf: std::collections::VecDeque<(Key, Loc, Option<Arc<File>>)>,
}

impl Iterator for LogRange<'_> {
    type Item = Result<(sled::IVec, sled::IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            let from = self.next.take()?;
            let chunk = self.log.locs_in(from, self.to, 256);
            if let Some((k, _, _)) = chunk.last() {
                self.next = Some(Bound::Excluded(*k));
            }
            self.buf.extend(chunk);
        }
        let (k, loc, file) = self.buf.pop_front()?;
        let key = unfixed(&k);
        Some(self.log.read_in(file, &key, loc).map(|v| (key, v)))
    }
}

/// What the overlay reads under its pending changes: resident keys from the journal's
/// segments, the rest from sled.
pub(crate) struct Base {
    pub tree: sled::Tree,
    pub log: Arc<LogStore>,
}

impl Base {
    /// sled alone, with an empty directory (unit tests of what reads through the overlay).
    #[cfg(test)]
    pub fn sled_only(tree: sled::Tree) -> Base {
        Base {
            tree,
            log: Arc::new(LogStore::new(std::path::Path::new("."))),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        if resident(key) {
            self.log.get(key)
        } else {
            Ok(self.tree.get(key)?)
        }
    }

    /// `[from, to)` in key order. A range within a resident prefix (`j`, `p`, `e`) is read
    /// from the directory, any other from sled.
    pub fn range<'a>(
        &'a self,
        from: &[u8],
        to: &[u8],
    ) -> Box<dyn Iterator<Item = Result<(sled::IVec, sled::IVec)>> + 'a> {
        let in_log = from
            .first()
            .is_some_and(|p| [keys::JOB, keys::PAYLOAD, keys::EVENT].contains(p))
            && to <= &[from[0] + 1][..];
        if in_log {
            Box::new(self.log.range(from, to))
        } else {
            Box::new(
                self.tree
                    .range(from.to_vec()..to.to_vec())
                    .map(|r| r.map_err(Into::into)),
            )
        }
    }
}
