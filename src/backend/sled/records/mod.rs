//! The disk format: private record types, one per stored kind, that [`codec`] encodes in
//! place of the public types.
//!
//! The public types (`Job`, `Event`, `ScheduledJob`, ...) are the API: a field added there
//! must not silently change what is on disk. So every stored value goes through a record
//! type here, with its own serde derives, converted from and to the public type
//! ([`Stored`]). The records keep the field order and serde shape the public types had when
//! the format was frozen (timestamps as milliseconds, a job id as uuid's 16 bytes), and the
//! golden tests (`golden.rs`, `tests/fixtures/records/`) prove the bytes did not move.
//!
//! Changing a record changes the format: bump `codec::FORMAT_VERSION` and keep reading the
//! old one.
//!
//! [`codec`]: crate::backend::codec

mod event;
#[cfg(test)]
mod golden;
mod job;
mod schedule;

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::codec::Stored;
use crate::backend::sled::stage::Meta;
use crate::model::job::JobId;

/// A job id as stored: its 16 bytes, as uuid's serde writes them for a binary format
/// (`serialize_bytes`: a u64 length, then the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRecord([u8; 16]);

impl From<JobId> for IdRecord {
    fn from(id: JobId) -> Self {
        IdRecord(*id.as_bytes())
    }
}

impl From<IdRecord> for JobId {
    fn from(r: IdRecord) -> Self {
        JobId::from_bytes(r.0)
    }
}

impl Serialize for IdRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = IdRecord;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("16 bytes of a job id")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<IdRecord, E> {
                v.try_into()
                    .map(IdRecord)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// A stored timestamp (milliseconds since the epoch) back to a time; out of range is corrupt.
pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
}

pub(crate) fn time_opt(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, String> {
    ms.map(time).transpose()
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn ms_opt(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

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
