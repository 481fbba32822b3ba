//! Turning flags into operation inputs: payloads read from files or stdin (bounded), and
//! numbers converted to their types with errors that name the flag.

use std::collections::BTreeMap;
use std::io::Read;

use jobspool::{limits, payload_json, EnqueueInput, Error, JobId};

use super::args::EnqueueArgs;

pub(crate) fn parse_id(s: &str) -> Result<JobId, Error> {
    s.parse()
}

/// `--limit`, checked by the same rule as the `limit` field, named as the flag.
pub(crate) fn limit(limit: Option<i64>) -> Result<Option<u64>, Error> {
    let Some(n) = limit else { return Ok(None) };
    // A negative size is out of range like 0 is; the message shows it as given.
    let page = u64::try_from(n).unwrap_or(0);
    limits::check_page_size("--limit", page, limits::MAX_PAGE)
        .map(|_| Some(page))
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "--limit {n} is out of range; use 1..={}",
                limits::MAX_PAGE
            ))
        })
}

/// `--delay`, checked by the same rule as `delaySeconds`, named as the flag.
pub(crate) fn delay(d: Option<f64>) -> Result<Option<f64>, Error> {
    d.map(|d| limits::delay_from_secs("--delay", d).map(|_| d))
        .transpose()
}

/// `--max-retries`, as the u32 the contract takes (the library checks the range).
pub(crate) fn max_retries(n: Option<i64>) -> Result<Option<u32>, Error> {
    n.map(|n| {
        u32::try_from(n).map_err(|_| {
            Error::InvalidArgument(format!(
                "--max-retries {n} is out of range; it must be at least 1"
            ))
        })
    })
    .transpose()
}

/// Reads at most `limit + 1` bytes, so an oversized payload is refused without reading it all.
fn read_bounded(mut r: impl Read, limit: usize) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::InvalidArgument(format!("cannot read the payload: {e}")))?;
    if buf.len() > limit {
        return Err(Error::PayloadTooLarge {
            what: "payload",
            size: buf.len(),
            limit,
        });
    }
    Ok(buf)
}

/// The payload limit the CLI enforces while reading (the library checks again).
const CLI_PAYLOAD_LIMIT: usize = jobspool::limits::DEFAULT_PAYLOAD_LIMIT;

pub(crate) fn read_payload(arg: Option<&str>) -> Result<Vec<u8>, Error> {
    match arg {
        None => Ok(Vec::new()),
        Some("-") => read_bounded(std::io::stdin().lock(), CLI_PAYLOAD_LIMIT),
        Some(s) if s.starts_with('@') => {
            let f = std::fs::File::open(&s[1..]).map_err(|e| {
                Error::InvalidArgument(format!("cannot open payload file {}: {e}", &s[1..]))
            })?;
            read_bounded(f, CLI_PAYLOAD_LIMIT)
        }
        Some(inline) => {
            serde_json::from_str::<serde_json::Value>(inline).map_err(|e| {
                Error::InvalidArgument(format!(
                    "--payload is not valid JSON ({e}); quote it, or use @FILE / - for raw bytes"
                ))
            })?;
            Ok(inline.as_bytes().to_vec())
        }
    }
}

/// The `jobs.enqueue` input of the arguments. Flags are converted to their types here, so a
/// flag that does not fit its type is named; every rule about the values is the library's.
pub(crate) fn enqueue_input(a: &EnqueueArgs) -> Result<EnqueueInput, Error> {
    let payload = read_payload(a.payload.as_deref())?;
    let priority = a
        .priority
        .map(|p| {
            i32::try_from(p).map_err(|_| {
                Error::InvalidArgument(format!("--priority {p} does not fit in 32 bits"))
            })
        })
        .transpose()?;
    let max_retries = max_retries(a.max_retries)?;
    let timeout_ms = a
        .timeout_ms
        .map(|t| {
            u64::try_from(t)
                .map_err(|_| Error::InvalidArgument(format!("--timeout-ms {t} must be positive")))
        })
        .transpose()?;
    let mut metadata = BTreeMap::new();
    for kv in &a.metadata {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            Error::InvalidArgument(format!("--metadata {kv:?} is not of the form key=value"))
        })?;
        if k.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "--metadata {kv:?} has an empty key"
            )));
        }
        metadata.insert(k.to_owned(), v.to_owned());
    }
    Ok(EnqueueInput {
        kind: a.kind.clone(),
        payload: payload_json(&payload),
        delay_seconds: delay(a.delay)?,
        max_retries,
        priority,
        timeout_ms,
        dedupe_key: a.dedupe_key.clone(),
        queue: a.queue.clone(),
        run_at: a.run_at.clone(),
        tenant_id: a.tenant_id.clone(),
        user_id: a.user_id.clone(),
        trace_id: a.trace_id.clone(),
        metadata: (!metadata.is_empty()).then_some(metadata),
        version: None,
    })
}
