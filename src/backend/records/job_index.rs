//! What the in-memory indexes need of a job record, read from its bytes without building
//! the [`Job`]: opening a large database reads every record, and most of a record (its
//! strings, metadata, executions) only has to be checked, not kept.
//!
//! [`JobIndex::decode`] accepts exactly the records [`codec::decode`] accepts for a `Job`:
//! the view has the record's field order and shapes (strings borrowed instead of owned,
//! the metadata map and the executions checked element by element and dropped), and it
//! makes the same timestamp checks. A record it refuses is decoded again the full way, so
//! the `CORRUPTION` error is the very one a reader of that record gets.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{time_ok, IdRecord};
use crate::backend::codec;
use crate::model::error::Error;
use crate::model::job::{Job, JobId, JobStatus};

/// The fields of a job record the indexes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobIndex<'a> {
    pub id: JobId,
    pub queue: &'a str,
    pub kind: &'a str,
    pub status: JobStatus,
    pub priority: i32,
    /// When it may run: `scheduled_at`, else `created_at` (ms).
    pub due_ms: i64,
    /// When it finished: `completed_at`, else `updated_at` (ms; used for terminal jobs).
    pub finished_ms: i64,
    /// The lease's expiry (ms), when it has one.
    pub lease_expires_ms: Option<i64>,
}

impl<'a> JobIndex<'a> {
    /// The index fields of a decoded job.
    #[cfg(test)]
    pub(crate) fn of(job: &'a Job) -> Self {
        JobIndex {
            id: job.id,
            queue: &job.queue,
            kind: &job.kind,
            status: job.status,
            priority: job.priority,
            due_ms: job.due_ms(),
            finished_ms: job
                .completed_at
                .unwrap_or(job.updated_at)
                .timestamp_millis(),
            lease_expires_ms: job.lease.as_ref().map(|l| l.expires_ms),
        }
    }

    /// Reads the index fields of the job record `bytes` stored under `key` in `tree`,
    /// checking the whole record; a defect is the `CORRUPTION` error of
    /// [`codec::decode`].
    pub(crate) fn decode(tree: &'static str, key: &[u8], bytes: &'a [u8]) -> Result<Self, Error> {
        if let Some(view) = codec::decode_view::<JobView<'a>>(bytes) {
            if let Some(ix) = view.checked() {
                return Ok(ix);
            }
        }
        // Refused: the full decode says why (and would only accept what the view accepts).
        codec::decode::<Job>(tree, key, bytes)?;
        Err(Error::Corruption {
            tree,
            key: codec::show_key(key),
            detail: "the job record does not decode".into(),
        })
    }
}

/// A job record as stored, borrowing its strings (field order and shapes of `JobRecord`).
/// The fields the indexes do not use are read only to be checked.
#[derive(Deserialize)]
#[allow(dead_code)]
struct JobView<'a> {
    id: IdRecord,
    kind: &'a str,
    version: &'a str,
    queue: &'a str,
    status: super::job::StatusRecord,
    priority: i32,
    attempts: u32,
    max_attempts: u32,
    created_at: i64,
    updated_at: i64,
    scheduled_at: Option<i64>,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    #[serde(borrow)]
    last_error: Option<&'a str>,
    timeout_ms: Option<u64>,
    #[serde(borrow)]
    dedupe_key: Option<&'a str>,
    #[serde(borrow)]
    tenant_id: Option<&'a str>,
    #[serde(borrow)]
    user_id: Option<&'a str>,
    #[serde(borrow)]
    trace_id: Option<&'a str>,
    metadata: CheckedMap,
    #[serde(borrow)]
    result: Option<&'a [u8]>,
    executions: CheckedExecutions,
    backoff: Option<super::job::BackoffRecord>,
    lease: Option<super::job::LeaseRecord>,
}

impl<'a> JobView<'a> {
    /// The index fields, after the checks `Job::try_from(JobRecord)` makes.
    fn checked(self) -> Option<JobIndex<'a>> {
        let ok = |ms: Option<i64>| ms.map_or(true, time_ok);
        let valid = time_ok(self.created_at)
            && time_ok(self.updated_at)
            && ok(self.scheduled_at)
            && ok(self.started_at)
            && ok(self.completed_at)
            && self.executions.0;
        if !valid {
            return None;
        }
        Some(JobIndex {
            id: self.id.into(),
            queue: self.queue,
            kind: self.kind,
            status: self.status.into(),
            priority: self.priority,
            due_ms: self.scheduled_at.unwrap_or(self.created_at),
            finished_ms: self.completed_at.unwrap_or(self.updated_at),
            lease_expires_ms: self.lease.map(|l| l.expires_ms),
        })
    }
}

/// A `BTreeMap<String, String>` read and checked (its strings valid UTF-8), not kept.
struct CheckedMap;

impl<'de> Deserialize<'de> for CheckedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CheckedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckedMap, A::Error> {
                while map.next_entry::<&'de str, &'de str>()?.is_some() {}
                Ok(CheckedMap)
            }
        }
        d.deserialize_map(V)
    }
}

/// The executions read and checked (as `ExecutionRecord`s, their timestamps in range),
/// not kept: `true` when every timestamp is valid.
struct CheckedExecutions(bool);

/// An execution record as stored (field order and shapes of `ExecutionRecord`).
#[derive(Deserialize)]
#[allow(dead_code)]
struct ExecutionView<'a> {
    attempt_number: u32,
    started_at: i64,
    completed_at: Option<i64>,
    duration_ms: Option<u64>,
    success: Option<bool>,
    #[serde(borrow)]
    error: Option<&'a str>,
    #[serde(borrow)]
    worker_id: Option<&'a str>,
    released: bool,
}

impl<'de> Deserialize<'de> for CheckedExecutions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CheckedExecutions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of executions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut valid = true;
                while let Some(e) = seq.next_element::<ExecutionView<'de>>()? {
                    valid &= time_ok(e.started_at) && e.completed_at.map_or(true, time_ok);
                }
                Ok(CheckedExecutions(valid))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests;
