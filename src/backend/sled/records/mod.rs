//! The disk format of what only sled stores: private record types that [`codec`] encodes
//! in place of the public types (the event log's blocks, the event counter, a queue's
//! paused flag). Jobs and schedules, which the PostgreSQL backend stores in the same
//! format, have theirs in `backend::records` (same rules: see there). The golden tests
//! (`golden.rs`, `tests/fixtures/records/`) prove the bytes of every kind did not move.
//!
//! Changing a record changes the format: bump `codec::FORMAT_VERSION` and keep reading the
//! old one.
//!
//! [`codec`]: crate::backend::codec

mod event;
#[cfg(test)]
mod golden;

use serde::{Deserialize, Serialize};

use crate::backend::codec::Stored;
use crate::backend::sled::stage::Meta;

/// The `mstate` record.
#[derive(Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    next_seq: u64,
}

impl Stored for Meta {
    type Record = MetaRecord;
    fn to_record(&self) -> MetaRecord {
        MetaRecord {
            next_seq: self.next_seq,
        }
    }
    fn from_record(r: MetaRecord) -> Result<Self, String> {
        Ok(Meta {
            next_seq: r.next_seq,
        })
    }
}

/// A queue's settings record (`q` + name): whether it is paused, a bare bool.
impl Stored for bool {
    type Record = bool;
    fn to_record(&self) -> bool {
        *self
    }
    fn from_record(r: bool) -> Result<Self, String> {
        Ok(r)
    }
}
