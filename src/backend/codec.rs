//! Record encoding: a format-version byte, then bincode, decoded from slices with a size limit.
//! Keys are big-endian byte strings built by hand.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::error::Error;
use crate::model::job::JobId;

/// Version byte in front of every stored value. Bump on any change of a stored type.
///
/// - 2: bincode with variable-length integers (a length or small number takes one byte):
///   a pending job's record is 87 bytes instead of 138.
/// - 1: the same records with fixed-width integers (every length 8 bytes). Still read, so a
///   database written by an older build opens, and its records are rewritten as version 2
///   when they next change.
pub(crate) const FORMAT_VERSION: u8 = 2;

/// The older format [`decode`] still reads (see [`FORMAT_VERSION`]).
const FORMAT_V1: u8 = 1;

/// The largest record decode will allocate for (payloads are stored raw, not through here).
pub(crate) const DECODE_LIMIT: u64 = 64 * 1024 * 1024;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_big_endian()
        .with_limit(DECODE_LIMIT)
        .reject_trailing_bytes()
}

/// The options of format version 1.
fn options_v1() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_big_endian()
        .with_limit(DECODE_LIMIT)
        .reject_trailing_bytes()
}

/// A value stored through the codec, and the private record type that is its disk format.
///
/// Public types are never serialized directly: a field added to one must not change what is
/// on disk. The records live in `backend::records` (jobs, schedules) and
/// `backend::sled::records` (what only sled stores).
pub(crate) trait Stored: Sized {
    /// The record as encoded: its serde shape is the format.
    type Record: Serialize + DeserializeOwned;
    fn to_record(&self) -> Self::Record;
    /// The value back from its record; `Err` says why the record is not a valid value.
    fn from_record(record: Self::Record) -> std::result::Result<Self, String>;
}

/// Encodes `value`'s record behind the format-version byte. Fails (`STORAGE`) only for a
/// record over the size limit.
pub(crate) fn encode<T: Stored>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![FORMAT_VERSION];
    options()
        .serialize_into(&mut out, &value.to_record())
        .map_err(|e| Error::storage("encoding a record", e))?;
    Ok(out)
}

/// Decodes a value written by [`encode`]; any defect is a `CORRUPTION` error naming the key.
pub(crate) fn decode<T: Stored>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, Error> {
    let corrupt = |detail: String| Error::Corruption {
        tree,
        key: show_key(key),
        detail,
    };
    let record = match bytes.split_first() {
        None => return Err(corrupt("empty value".into())),
        Some((&FORMAT_VERSION, rest)) => options().deserialize::<T::Record>(rest),
        Some((&FORMAT_V1, rest)) => options_v1().deserialize::<T::Record>(rest),
        Some((v, _)) => {
            return Err(corrupt(format!(
                "format version {v}, this build reads versions {FORMAT_V1} and {FORMAT_VERSION}"
            )))
        }
    };
    record
        .map_err(|e| corrupt(e.to_string()))
        .and_then(|r| T::from_record(r).map_err(corrupt))
}

/// Decodes a record written by [`encode`] into `T`, a view of it that may borrow from
/// `bytes` (same options as [`decode`]); `None` for any defect, which the caller reports
/// by decoding the record with [`decode`].
pub(crate) fn decode_view<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => options().deserialize::<T>(rest).ok(),
        Some((&FORMAT_V1, rest)) => options_v1().deserialize::<T>(rest).ok(),
        _ => None,
    }
}

/// A key, printed as its prefix letter then hex.
pub(crate) fn show_key(key: &[u8]) -> String {
    match key.split_first() {
        Some((p, rest)) if p.is_ascii_alphabetic() => {
            let mut s = String::with_capacity(2 + rest.len() * 2);
            s.push(char::from(*p));
            s.push('/');
            if rest.len() == 16 && matches!(p, b'j' | b'p') {
                s.push_str(&JobId::from_bytes(rest.try_into().unwrap_or([0; 16])).to_string());
            } else if rest.len() == 8 && *p == b'e' {
                s.push_str(&u64::from_be_bytes(rest.try_into().unwrap_or([0; 8])).to_string());
            } else {
                for b in rest {
                    s.push_str(&format!("{b:02x}"));
                }
            }
            s
        }
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Logical trees, as one-byte key prefixes inside the one sled tree (so `apply_batch`
/// changes several of them atomically without sled's multi-tree transactions).
pub(crate) mod keys {
    use crate::model::job::JobId;

    /// Job record (without payload): `j` + id.
    pub const JOB: u8 = b'j';
    /// Payload bytes, raw, written once: `p` + id.
    pub const PAYLOAD: u8 = b'p';
    /// Event log: `e` + seq (u64 BE).
    pub const EVENT: u8 = b'e';
    /// Dedupe key -> job id while the job is live: `d` + key bytes.
    pub const DEDUPE: u8 = b'd';
    /// Schedules: `s` + name.
    pub const SCHEDULE: u8 = b's';
    /// Queue settings (paused): `q` + name.
    pub const QUEUE: u8 = b'q';

    pub fn job(id: &JobId) -> [u8; 17] {
        with_id(JOB, id)
    }
    pub fn payload(id: &JobId) -> [u8; 17] {
        with_id(PAYLOAD, id)
    }
    fn with_id(prefix: u8, id: &JobId) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[0] = prefix;
        k[1..].copy_from_slice(id.as_bytes());
        k
    }
    pub fn event(seq: u64) -> [u8; 9] {
        let mut k = [0u8; 9];
        k[0] = EVENT;
        k[1..].copy_from_slice(&seq.to_be_bytes());
        k
    }
    pub fn named(prefix: u8, name: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + name.len());
        k.push(prefix);
        k.extend_from_slice(name.as_bytes());
        k
    }
    pub fn id_of(key: &[u8]) -> Option<JobId> {
        let bytes: [u8; 16] = key.get(1..17)?.try_into().ok()?;
        Some(JobId::from_bytes(bytes))
    }
    pub fn seq_of(key: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
    }
    pub const META_STATE: &[u8] = b"mstate";
    /// The last journal entry (its lsn, u64 BE) whose changes sled holds: written by the
    /// applier after each batch and by the replay at open; sled only, never journaled. Lsns
    /// go on across sessions, so at open the journal must start at or before the entry
    /// after it (else its head is missing: see `journal::scan`).
    pub const META_JOURNAL: &[u8] = b"mjournal";
    /// The first lsn of the oldest journal segment a checkpoint kept (u64 BE; the
    /// segments before it hold no live value and are deleted). sled only, never journaled:
    /// at open the journal's first segment must start there (else segments holding job
    /// records, payloads or events are missing).
    pub const META_LOG_START: &[u8] = b"mlogstart";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test value, stored as a tuple.
    #[derive(Debug, PartialEq)]
    struct Pair(u32, String);

    impl Stored for Pair {
        type Record = (u32, String);
        fn to_record(&self) -> (u32, String) {
            (self.0, self.1.clone())
        }
        fn from_record(r: (u32, String)) -> std::result::Result<Self, String> {
            if r.0 == 13 {
                return Err("13 is not a valid value".into());
            }
            Ok(Pair(r.0, r.1))
        }
    }

    #[test]
    fn round_trip_and_version_byte() {
        let v = Pair(7, "x".into());
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: Pair = decode("t", b"k", &bytes).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn an_invalid_record_is_corruption() {
        let bytes = encode(&Pair(13, "x".into())).unwrap();
        let err = decode::<Pair>("jobs", b"jabc", &bytes).unwrap_err();
        assert_eq!(err.code(), "CORRUPTION");
        assert!(err.to_string().contains("13 is not a valid value"), "{err}");
    }

    #[test]
    fn a_record_over_the_limit_is_a_storage_error() {
        let big = Pair(1, "x".repeat(DECODE_LIMIT as usize));
        assert_eq!(encode(&big).unwrap_err().code(), "STORAGE");
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let err = decode::<Pair>("jobs", b"jabc", &[]).unwrap_err();
        assert_eq!(err.code(), "CORRUPTION");
        let err = decode::<Pair>("jobs", b"jabc", &[9, 1, 2]).unwrap_err();
        assert!(err.to_string().contains("format version 9"));
        // A length prefix claiming 2^60 bytes must not allocate, in either format: format 2
        // writes the u32 as one byte and the length as the marker 253 and 8 bytes.
        let mut evil = vec![FORMAT_VERSION, 7, 253];
        evil.extend_from_slice(&(1u64 << 60).to_be_bytes());
        evil.extend_from_slice(&[b'a'; 12]);
        let err = decode::<Pair>("jobs", b"jabc", &evil).unwrap_err();
        assert!(err.to_string().contains("jobs"));
        let mut evil = vec![FORMAT_V1, 0, 0, 0, 7];
        evil.extend_from_slice(&(1u64 << 60).to_be_bytes());
        evil.extend_from_slice(&[b'a'; 12]);
        let err = decode::<Pair>("jobs", b"jabc", &evil).unwrap_err();
        assert!(err.to_string().contains("jobs"));
    }

    #[test]
    fn event_keys_sort_by_sequence() {
        assert!(keys::event(2) < keys::event(10));
        assert!(keys::event(255) < keys::event(256));
        assert_eq!(keys::seq_of(&keys::event(300)), Some(300));
    }
}
