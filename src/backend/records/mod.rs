//! The records both backends store, in the same format: jobs and schedules (sled under
//! its `j` and `s` keys, PostgreSQL in the `record` columns of `job` and `schedule`).
//!
//! The public types (`Job`, `ScheduledJob`, ...) are the API: a field added there must not
//! silently change what is stored. So every stored value goes through a record type, with
//! its own serde derives, converted from and to the public type ([`Stored`]). The records
//! keep the field order and serde shape the public types had when the format was frozen
//! (timestamps as milliseconds, a job id as uuid's 16 bytes), and the golden tests
//! (`sled/records/golden.rs`, `tests/fixtures/records/`) prove the bytes did not move.
//! The records only sled stores (its event log, its counters) are in `sled/records/`.
//!
//! Changing a record changes the format: bump `codec::FORMAT_VERSION` and keep reading the
//! old one.
//!
//! [`Stored`]: crate::backend::codec::Stored

mod job;
mod job_index;
mod schedule;

pub(crate) use job_index::JobIndex;

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::job::JobId;

/// A job id as stored: its 16 bytes, as uuid's serde writes them for a binary format
/// (`serialize_bytes`: a length, then the bytes).
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

/// Whether [`time`] accepts `ms` (the times chrono represents are one range of
/// milliseconds), without building the time.
pub(crate) fn time_ok(ms: i64) -> bool {
    (DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis())
        .contains(&ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ok_is_what_time_accepts() {
        let min = DateTime::<Utc>::MIN_UTC.timestamp_millis();
        let max = DateTime::<Utc>::MAX_UTC.timestamp_millis();
        for edge in [min, max, 0, 1_795_896_000_000] {
            for ms in edge.saturating_sub(3)..=edge.saturating_add(3) {
                assert_eq!(time_ok(ms), time(ms).is_ok(), "{ms}");
            }
        }
        for ms in [i64::MIN, i64::MAX, -1, min / 2, max / 2] {
            assert_eq!(time_ok(ms), time(ms).is_ok(), "{ms}");
        }
        assert!(time_ok(max) && !time_ok(max + 1) && time_ok(min) && !time_ok(min - 1));
    }
}
