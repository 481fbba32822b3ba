//! Payloads in operation inputs: a JSON value, or raw bytes (base64 on the wire).

use serde_json::Value;

use crate::api::json;
use crate::model::error::{Error, Result};

/// A payload in an op's input. On the wire it is the `payload` field, plus
/// `"payloadEncoding": "base64"` for [`Payload::Bytes`] (see [`crate::json::bytes`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON value, stored as its JSON text.
    Json(Value),
    /// Raw bytes, stored exactly (base64 on the wire).
    Bytes(Vec<u8>),
}

impl Payload {
    /// The `payload` and `payloadEncoding` fields.
    pub(super) fn into_wire(self) -> (Option<Value>, Option<String>) {
        match self {
            Payload::Json(v) => (Some(v), None),
            Payload::Bytes(b) => (
                Some(Value::String(json::base64(&b))),
                Some(json::BASE64.to_owned()),
            ),
        }
    }

    /// From the `payload` and `payloadEncoding` fields; `None` for no payload.
    pub(super) fn from_wire(
        value: Option<Value>,
        encoding: Option<String>,
    ) -> Result<Option<Payload>, String> {
        match (value, encoding) {
            (None | Some(Value::Null), None) => Ok(None),
            (Some(v), None) => Ok(Some(Payload::Json(v))),
            (v, Some(enc)) => json::decode_value("payload", v.as_ref(), Some(&enc))
                .map(|b| Some(Payload::Bytes(b))),
        }
    }

    /// The bytes stored.
    pub(super) fn into_bytes(self, op: &str) -> Result<Vec<u8>> {
        match self {
            Payload::Json(v) => serde_json::to_vec(&v)
                .map_err(|e| Error::invalid(format!("{op}: payload cannot be encoded: {e}"))),
            Payload::Bytes(b) => Ok(b),
        }
    }
}

pub(super) fn payload_bytes(op: &str, p: Option<Payload>) -> Result<Vec<u8>> {
    p.map_or_else(|| Ok(Vec::new()), |p| p.into_bytes(op))
}

/// Bytes as an input payload: [`Payload::Bytes`], so they arrive exactly as given; `None`
/// when empty.
#[must_use]
pub fn payload_json(bytes: &[u8]) -> Option<Payload> {
    (!bytes.is_empty()).then(|| Payload::Bytes(bytes.to_vec()))
}
