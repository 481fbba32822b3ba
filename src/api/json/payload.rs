//! How payload and result bytes appear in the contract JSON, both ways.
//!
//! Bytes that are one JSON value (not `null`, no surrounding whitespace, no line break)
//! print verbatim: `"payload": {"n": 12345678901234567890123}` keeps every digit, because
//! the text is emitted as a [`RawValue`], never re-serialized through `f64`. Any other bytes
//! print as a base64 string with a sibling saying so: `"payload": "/wA=",
//! "payloadEncoding": "base64"` (`result` / `resultEncoding` likewise), which no JSON payload
//! can be confused with. Empty bytes print as `null`. Input takes the same shape, so a job's
//! `payload` (with its `payloadEncoding`) can be sent back as it was printed.

use base64::Engine as _;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// The value of a `payloadEncoding` / `resultEncoding` field: the payload is a base64
/// string of raw bytes.
pub const BASE64: &str = "base64";

/// Standard base64 (RFC 4648) with padding.
#[must_use]
pub fn base64(input: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Standard base64, padding optional; `None` for anything else.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// How some bytes print.
pub(crate) enum Shown<'a> {
    /// Empty: `null`.
    Empty,
    /// One JSON value, printed as its own text.
    Json(&'a RawValue),
    /// Anything else: a base64 string (plus an `...Encoding: "base64"` sibling).
    Base64(&'a [u8]),
}

impl<'a> Shown<'a> {
    pub(crate) fn of(b: &'a [u8]) -> Shown<'a> {
        if b.is_empty() {
            return Shown::Empty;
        }
        match verbatim(b) {
            Some(raw) => Shown::Json(raw),
            None => Shown::Base64(b),
        }
    }

    /// The sibling `...Encoding` field's value.
    pub(crate) fn encoding(&self) -> Option<&'static str> {
        matches!(self, Shown::Base64(_)).then_some(BASE64)
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Empty => s.serialize_none(),
            Shown::Json(raw) => raw.serialize(s),
            Shown::Base64(b) => s.serialize_str(&base64(b)),
        }
    }
}

/// The bytes as one JSON value printed verbatim, when they can be: valid JSON, not `null`
/// (which stands for "no payload"), no whitespace around it (it would be lost) and no line
/// break (the control protocol is one JSON document per line).
fn verbatim(b: &[u8]) -> Option<&RawValue> {
    let s = std::str::from_utf8(b).ok()?;
    if s.contains(['\n', '\r']) {
        return None;
    }
    let raw: &RawValue = serde_json::from_str(s).ok()?;
    (raw.get().len() == s.len() && raw.get() != "null").then_some(raw)
}

/// Payload or result bytes as the value of their JSON field: the JSON value when they print
/// verbatim, else their base64 string (then [`bytes_encoding`] is `Some("base64")`); `null`
/// when empty. (A `Value` holds numbers as `f64` or 64-bit integers; the views print the
/// exact text.)
#[must_use]
pub fn bytes(b: &[u8]) -> Value {
    match Shown::of(b) {
        Shown::Empty => Value::Null,
        Shown::Json(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
        Shown::Base64(b) => Value::String(base64(b)),
    }
}

/// The `payloadEncoding` / `resultEncoding` that goes with [`bytes`]: `Some("base64")` for
/// bytes that do not print as JSON.
#[must_use]
pub fn bytes_encoding(b: &[u8]) -> Option<&'static str> {
    Shown::of(b).encoding()
}

/// The bytes a JSON field stands for: `value` with its `encoding` sibling (`None` or
/// `"base64"`). `null` or absent is empty; a JSON value without encoding is its text.
pub(crate) fn decode(
    field: &str,
    value: Option<&RawValue>,
    encoding: Option<&str>,
) -> Result<Vec<u8>, String> {
    match (value, encoding) {
        (None, None) => Ok(Vec::new()),
        (Some(v), None) if v.get() == "null" => Ok(Vec::new()),
        (Some(v), None) => Ok(v.get().as_bytes().to_vec()),
        (v, Some(BASE64)) => {
            let s: String = match v {
                None => String::new(),
                Some(v) => serde_json::from_str(v.get()).map_err(|_| {
                    format!("{field} must be a base64 string when {field}Encoding is \"base64\"")
                })?,
            };
            decode_base64(&s).ok_or_else(|| format!("{field} is not valid base64"))
        }
        (_, Some(other)) => Err(format!(
            "{field}Encoding {other:?} is not known; the only encoding is \"base64\""
        )),
    }
}

/// As [`decode`], for a field already parsed into a `Value`.
pub(crate) fn decode_value(
    field: &str,
    value: Option<&Value>,
    encoding: Option<&str>,
) -> Result<Vec<u8>, String> {
    match (value, encoding) {
        (None | Some(Value::Null), None) => Ok(Vec::new()),
        (Some(v), None) => {
            serde_json::to_vec(v).map_err(|e| format!("{field} cannot be encoded: {e}"))
        }
        (None | Some(Value::Null), Some(BASE64)) => Ok(Vec::new()),
        (Some(Value::String(s)), Some(BASE64)) => {
            decode_base64(s).ok_or_else(|| format!("{field} is not valid base64"))
        }
        (Some(_), Some(BASE64)) => Err(format!(
            "{field} must be a base64 string when {field}Encoding is \"base64\""
        )),
        (_, Some(other)) => Err(format!(
            "{field}Encoding {other:?} is not known; the only encoding is \"base64\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn printed(b: &[u8]) -> String {
        serde_json::to_string(&Shown::of(b)).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
            assert_eq!(decode_base64(o).as_deref(), Some(i.as_bytes()));
            assert_eq!(
                decode_base64(o.trim_end_matches('=')).as_deref(),
                Some(i.as_bytes())
            );
        }
        assert_eq!(decode_base64("Zm9v!"), None);
        assert_eq!(decode_base64("Z"), None);
    }

    #[test]
    fn json_prints_verbatim_and_other_bytes_as_base64() {
        let big = br#"{"n":12345678901234567890123,"d":0.10000000000000000555}"#;
        assert_eq!(printed(big), std::str::from_utf8(big).unwrap());
        assert_eq!(printed(b"[1, 2]"), "[1, 2]");
        assert_eq!(bytes(br#"{"a":1}"#), json!({"a":1}));
        assert_eq!(bytes_encoding(br#"{"a":1}"#), None);
        for raw in [&b"\xff\x00"[..], b"null", b" 1", b"{\n}", b"nope"] {
            assert_eq!(printed(raw), format!("\"{}\"", base64(raw)), "{raw:?}");
            assert_eq!(bytes_encoding(raw), Some(BASE64));
        }
        assert_eq!(printed(b""), "null");
    }

    #[test]
    fn decoding_inverts_printing() {
        for b in [
            &b""[..],
            b"\xff\x00",
            b"null",
            br#"{"base64":"Zm9v"}"#,
            b"12345678901234567890123",
        ] {
            let v = serde_json::to_string(&Shown::of(b)).unwrap();
            let raw: Box<RawValue> = serde_json::from_str(&v).unwrap();
            let raw = (v != "null").then_some(raw.as_ref());
            assert_eq!(decode("payload", raw, bytes_encoding(b)).unwrap(), b);
        }
        assert!(decode_value("payload", Some(&json!(1)), Some(BASE64)).is_err());
        assert!(decode_value("payload", Some(&json!("!!")), Some(BASE64)).is_err());
        assert!(decode_value("payload", Some(&json!("AA")), Some("hex")).is_err());
        assert_eq!(
            decode_value("payload", Some(&json!({"base64": "AA"})), None).unwrap(),
            br#"{"base64":"AA"}"#
        );
    }
}
