//! Entry points for the fuzz targets under `fuzz/` (not part of the stable API).
//!
//! Compiled only with the `fuzzing` cargo feature, which `fuzz/Cargo.toml` turns on.
//!
//! Each function must return (an error is fine) for every input: no panic, no unbounded
//! allocation.

use crate::backend::codec;
use crate::backend::sled::StoredEventBlock;
use crate::model::error::Result;
use crate::model::job::{Job, NewJob};
use crate::model::schedule::{parse_tz, Cron};

/// Decodes `bytes` as a stored job record.
///
/// # Errors
/// `CORRUPTION` for anything that is not a valid record.
pub fn decode_job(bytes: &[u8]) -> Result<()> {
    let job: Job = codec::decode("jobs", b"jfuzz", bytes)?;
    // Whatever decodes must render and re-encode.
    let _ = crate::api::json::job(&job);
    let again: Job = codec::decode("jobs", b"jfuzz", &codec::encode(&job)?)?;
    // (Not full equality: a decoded backoff may hold NaN, which is never equal to itself.)
    assert_eq!(again.id, job.id, "a decoded record re-encodes to itself");
    assert_eq!(again.executions.len(), job.executions.len());
    Ok(())
}

/// Decodes `bytes` as a stored event-log block.
///
/// # Errors
/// `CORRUPTION` for anything that is not a valid block.
pub fn decode_event_block(bytes: &[u8]) -> Result<()> {
    let block: StoredEventBlock = codec::decode("events", b"efuzz", bytes)?;
    for (i, e) in block.into_iter().enumerate() {
        let _ = crate::api::json::event(&crate::model::event::EventRecord {
            seq: i as u64 + 1,
            event: e.event,
        });
    }
    Ok(())
}

/// Reads `bytes` as a journal segment: every entry decodes or ends the segment (torn), what
/// decodes re-encodes to the same bytes, and the in-place reader open uses (`raw_ops`) sees
/// the same ops, each value at the offset it gives.
///
/// # Errors
/// None expected: a bad entry ends the read, it is not an error.
pub fn read_journal(bytes: &[u8]) -> Result<()> {
    use crate::backend::sled::journal;
    let mut again = Vec::new();
    let (_, seal) = journal::read_entries(
        bytes,
        bytes.len() as u64,
        std::path::Path::new("fuzz"),
        |lsn, c| {
            let start = again.len();
            journal::encode_entry(&mut again, lsn, &c);
            let body = &again[start + 8..];
            let mut n = 0;
            for (op, (k, v)) in journal::raw_ops(body).zip(&c) {
                assert_eq!(op.key, k.as_ref());
                match (op.value, v) {
                    (Some((off, got)), Some(v)) => {
                        assert_eq!(got, v.as_ref());
                        assert_eq!(&body[off..off + got.len()], v.as_ref());
                    }
                    (None, None) => {}
                    _ => panic!("raw_ops and decode_body disagree on a removal"),
                }
                n += 1;
            }
            assert_eq!(n, c.len(), "raw_ops reads every op");
            Ok(true)
        },
    )?;
    if let Some(next) = seal {
        journal::encode(&mut again, &journal::Entry::Seal(next));
    }
    assert!(
        bytes.starts_with(&again),
        "decoded entries re-encode to their bytes"
    );
    Ok(())
}

/// Parses a cron expression and a zone, and computes a few ticks after `now_ms`.
///
/// # Errors
/// `INVALID_CRON` or `INVALID_TIMEZONE`.
pub fn parse_schedule(expr: &str, tz: &str, now_ms: i64) -> Result<()> {
    let cron = Cron::parse(expr)?;
    let tz = parse_tz(tz)?;
    let mut t = crate::model::clock::to_datetime(now_ms.clamp(0, 4_000_000_000_000));
    for _ in 0..3 {
        match cron.next_after(t, tz) {
            Some(n) => {
                assert!(n > t, "ticks move forward");
                t = n;
            }
            None => break,
        }
    }
    Ok(())
}

/// Validates a job built from arbitrary field values, and renders a payload as JSON.
///
/// # Errors
/// `INVALID_ARGUMENT` or `PAYLOAD_TOO_LARGE`.
pub fn validate_job(job: &NewJob, now_ms: i64) -> Result<()> {
    let _ = crate::api::json::bytes(&job.payload);
    job.validate(now_ms, 1024 * 1024)
}

/// Runs one control-socket request line against `spool`, as the server does, and returns
/// the response line.
#[must_use]
pub fn control_line(spool: &crate::api::spool::Spool, line: &[u8]) -> serde_json::Value {
    let (id, parsed) = crate::control::protocol::parse_request(line);
    let result = parsed.and_then(|(op, input)| crate::Op::from_json(&op, input)?.run(spool));
    let response = crate::control::protocol::response(id, result);
    // The line as the server writes it, read back.
    let text = serde_json::to_string(&response).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Reads `bytes` as one HTTP request and routes it on `spool` (token `fuzz-token`, host
/// `127.0.0.1:7420`; a first byte `R` turns read-only on); the status answered, 0 when the
/// bytes end before a request does.
#[cfg(feature = "http")]
#[must_use]
pub fn http_request(spool: &crate::api::spool::Spool, bytes: &[u8]) -> u16 {
    crate::http::fuzz_request(spool, bytes)
}
