//! Turning flags into operation inputs: payloads read from files or stdin (bounded), and
//! numbers converted to their types with errors that name the flag. Names and keys are
//! checked here too, by the rules of [`limits`], only so that an error names the flag the
//! user typed (`--type`) rather than the field (`kind (type)`); no rule is made here.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::RangeInclusive;

use jobspool::{limits, payload_json, EnqueueInput, Error, JobId};

use super::args::EnqueueArgs;

pub(crate) fn parse_id(s: &str) -> Result<JobId, Error> {
    s.parse()
}

/// A whole-number flag as its type: out of `range` is `INVALID_ARGUMENT` naming the flag
/// and the range (exit 1, like every other value the operation rejects).
pub(crate) fn in_range<T: TryFrom<i128>>(
    flag: &str,
    v: i128,
    range: RangeInclusive<i128>,
) -> Result<T, Error> {
    if range.contains(&v) {
        if let Ok(t) = T::try_from(v) {
            return Ok(t);
        }
    }
    Err(Error::InvalidArgument(format!(
        "{} is out of range; use {}..={}",
        shown(flag, v),
        range.start(),
        range.end()
    )))
}

/// The flag and its value as given (a number too long for any type is not repeated).
fn shown(flag: &str, v: i128) -> String {
    if v == i128::MAX || v == i128::MIN {
        format!("{flag} (a number of over 38 digits)")
    } else {
        format!("{flag} {v}")
    }
}

/// An optional whole-number flag as its type (see [`in_range`]).
pub(crate) fn opt_in_range<T: TryFrom<i128>>(
    flag: &str,
    v: Option<i128>,
    range: RangeInclusive<i128>,
) -> Result<Option<T>, Error> {
    v.map(|v| in_range(flag, v, range)).transpose()
}

/// `--limit`, in the range of the `limit` field.
pub(crate) fn limit(limit: Option<i128>) -> Result<Option<u64>, Error> {
    opt_in_range("--limit", limit, 1..=limits::MAX_PAGE as i128)
}

/// `--since`: a sequence number.
pub(crate) fn since(n: i128) -> Result<u64, Error> {
    u64::try_from(n).map_err(|_| {
        Error::InvalidArgument(format!(
            "{} must be a non-negative sequence number (0..={})",
            shown("--since", n),
            u64::MAX
        ))
    })
}

/// `--delay`, checked by the same rule as `delaySeconds`, named as the flag.
pub(crate) fn delay(d: Option<f64>) -> Result<Option<f64>, Error> {
    d.map(|d| limits::delay_from_secs("--delay", d).map(|_| d))
        .transpose()
}

/// `--max-retries`: total attempts, 1..=[`limits::MAX_ATTEMPTS_LIMIT`].
pub(crate) fn max_retries(n: Option<i128>) -> Result<Option<u32>, Error> {
    opt_in_range(
        "--max-retries",
        n,
        1..=i128::from(limits::MAX_ATTEMPTS_LIMIT),
    )
}

/// `--timeout-ms`: 1 ms..=[`limits::MAX_DELAY_MS`] (10 years), the range of `timeoutMs`.
pub(crate) fn timeout_ms(n: Option<i128>) -> Result<Option<u64>, Error> {
    opt_in_range("--timeout-ms", n, 1..=i128::from(limits::MAX_DELAY_MS))
}

/// Names given as flags (`--type`, `--queue`, ...), checked by the library's rule for names
/// ([`limits::validate_name`]) so that an error names the flag, not the field. The operation
/// checks them again, by the same rule.
pub(crate) fn names(flags: &[(&str, Option<&String>)]) -> Result<(), Error> {
    flags
        .iter()
        .filter_map(|(flag, name)| name.map(|n| (flag, n)))
        .try_for_each(|(flag, name)| limits::validate_name(flag, name))
}

/// `--priority`: a 32-bit signed number, higher first.
pub(crate) fn priority(n: Option<i128>) -> Result<Option<i32>, Error> {
    opt_in_range("--priority", n, i128::from(i32::MIN)..=i128::from(i32::MAX))
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
    let priority = priority(a.priority)?;
    let max_retries = max_retries(a.max_retries)?;
    let timeout_ms = timeout_ms(a.timeout_ms)?;
    names(&[("--type", Some(&a.kind)), ("--queue", a.queue.as_ref())])?;
    for (flag, key) in [
        ("--dedupe-key", &a.dedupe_key),
        ("--tenant-id", &a.tenant_id),
        ("--user-id", &a.user_id),
        ("--trace-id", &a.trace_id),
    ] {
        limits::validate_key(flag, key.as_ref())?;
    }
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
        if metadata.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Error::InvalidArgument(format!(
                "--metadata gives key {k:?} more than once; give each key one value"
            )));
        }
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
