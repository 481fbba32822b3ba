//! Every limit and input rule of the contract, in one place. Each door (the Rust API, the
//! control socket, the CLI) and each backend checks input through these functions, so a
//! rule cannot differ between them: a schedule accepts exactly the job options its jobs
//! would be accepted with.
//!
//! Messages name a field by its Rust name, then its JSON name where that differs
//! (`max_attempts (maxRetries)`), so they read right from every door.

use std::collections::BTreeMap;

use crate::model::error::Error;

/// The longest delay accepted anywhere (delay, runAt, timeouts, backoff): 10 years.
pub const MAX_DELAY_MS: u64 = 10 * 366 * 24 * 3600 * 1000;

/// Longest job type, queue, version or schedule name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Longest dedupe key, tenant, user or trace id, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Largest metadata map (keys and values together), in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Highest `maxRetries` (total attempts) accepted.
pub const MAX_ATTEMPTS_LIMIT: u32 = 1_000_000;

/// Longest schedule description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// Default payload (and result) limit, in bytes.
pub const DEFAULT_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// Highest payload limit a spool can be opened with, in bytes.
pub const MAX_PAYLOAD_LIMIT: usize = 64 * 1024 * 1024;

/// The largest page `list` and `dead list` return.
pub const MAX_PAGE: usize = 10_000;

/// The page size of `list` and `dead list` when none is given.
pub const DEFAULT_PAGE: usize = 100;

/// Most events one `events` call returns.
pub const MAX_EVENTS_PAGE: usize = 10_000;

/// Events one `events` call returns when no limit is given.
pub const DEFAULT_EVENTS_PAGE: usize = 1000;

/// A page size given over the wire or on the command line: `1..=max`. `what` names the
/// field or flag in the error.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `what`.
pub fn check_page_size(what: &str, n: u64, max: usize) -> Result<usize, Error> {
    match usize::try_from(n) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(Error::invalid(format!(
            "{what} {n} is out of range; use 1..={max}"
        ))),
    }
}

/// A page size as asked (`None` = the default), clamped to `1..=MAX_PAGE`.
pub(crate) fn page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// A name (type, queue, version, schedule): not empty or blank, at most [`MAX_NAME_LEN`] bytes, no
/// control characters. `what` names the field or flag in the error.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `what`.
pub fn validate_name(what: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if s.trim().is_empty() {
        return Err(Error::invalid(format!(
            "{what} must not be blank (whitespace only)"
        )));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

/// An optional key or id carried through: not empty, at most [`MAX_KEY_LEN`] bytes, without
/// the NUL character. `what` names the field or flag in the error.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `what`.
pub fn validate_key(what: &str, s: Option<&String>) -> Result<(), Error> {
    match s {
        Some(s) if s.len() > MAX_KEY_LEN => Err(Error::invalid(format!(
            "{what} is longer than {MAX_KEY_LEN} bytes"
        ))),
        Some(s) if s.is_empty() => Err(Error::invalid(format!("{what} must not be empty"))),
        // (A database's text columns cannot hold it: PostgreSQL refuses it.)
        Some(s) if s.contains('\0') => Err(Error::invalid(format!(
            "{what} must not contain the NUL character (U+0000)"
        ))),
        _ => Ok(()),
    }
}

/// `maxRetries` (total attempts): 1..=[`MAX_ATTEMPTS_LIMIT`] when given.
pub(crate) fn validate_max_attempts(n: Option<u32>) -> Result<(), Error> {
    match n {
        Some(0) => Err(Error::invalid(
            "max_attempts (maxRetries) must be at least 1",
        )),
        Some(n) if n > MAX_ATTEMPTS_LIMIT => Err(Error::invalid(format!(
            "max_attempts (maxRetries) must be at most {MAX_ATTEMPTS_LIMIT}"
        ))),
        _ => Ok(()),
    }
}

/// Payload or result bytes against the spool's limit.
pub(crate) fn validate_payload(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<(), Error> {
    if bytes.len() > limit {
        return Err(Error::PayloadTooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }
    Ok(())
}

/// The metadata map: at most [`MAX_METADATA_BYTES`] of keys and values.
pub(crate) fn validate_metadata(m: &BTreeMap<String, String>) -> Result<(), Error> {
    let bytes: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "metadata is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A delay in (possibly fractional) seconds, as the JSON doors and the CLI take it: finite,
/// not negative, at most 10 years. `what` names the field or flag in the error.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `what`.
pub fn delay_from_secs(what: &str, secs: f64) -> Result<std::time::Duration, Error> {
    if !secs.is_finite() {
        return Err(Error::invalid(format!(
            "{what} {secs} must be a finite number of seconds (0 to 10 years)"
        )));
    }
    if secs < 0.0 {
        return Err(Error::invalid(format!(
            "{what} {secs} must be zero or positive seconds"
        )));
    }
    if secs * 1000.0 > MAX_DELAY_MS as f64 {
        return Err(Error::invalid(format!("{what} must be at most 10 years")));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
