//! The socket's framing: one JSON request object per line, one response object per line.
//! What an op means, its input and output, is [`crate::Op`]'s business; this file only
//! parses and writes lines.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::api::json::ErrorView;
use crate::api::ops::{Op, Output};
use crate::api::spool::Spool;
use crate::model::error::{Error, Result};

/// Runs one operation against `spool` and returns its output, exactly as the control
/// socket would: [`Op::from_json`], [`Op::run`], [`Output::to_json`](crate::Output::to_json).
///
/// ```
/// use jobspool::{control::dispatch, Spool};
/// use serde_json::json;
/// # let dir = tempfile::tempdir().unwrap();
/// let spool = Spool::open(dir.path().join("q"))?;
/// let job = dispatch(&spool, "jobs.enqueue", &json!({"type": "t", "payload": [1, 2]}))?;
/// let same = dispatch(&spool, "jobs.get", &json!({"jobId": job["id"]}))?;
/// assert_eq!(same["payload"], json!([1, 2]));
/// # Ok::<(), jobspool::Error>(())
/// ```
///
/// # Errors
/// `INVALID_ARGUMENT` for an unknown op, an input that is not an object, an unknown field,
/// a field of the wrong type or an out-of-range value; otherwise what the operation returns.
pub fn dispatch(spool: &Spool, op: &str, input: &Value) -> Result<Value> {
    Ok(Op::from_json(op, input.clone())?.run(spool)?.to_json())
}

/// A parsed request line: its `id` (echoed back, `null` when absent) and op + input, or why
/// the line is not a request.
pub(crate) fn parse_request(line: &[u8]) -> (Value, Result<(String, Value)>) {
    let v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return (
                Value::Null,
                Err(Error::invalid(format!("request is not valid JSON: {e}"))),
            )
        }
    };
    let Value::Object(mut m) = v else {
        return (
            Value::Null,
            Err(Error::invalid(
                "request must be a JSON object {\"id\":..,\"op\":..,\"input\":{..}}",
            )),
        );
    };
    let id = m.remove("id").unwrap_or(Value::Null);
    let op = match m.remove("op") {
        Some(Value::String(op)) => op,
        _ => {
            return (
                id,
                Err(Error::invalid(
                    "request needs \"op\", a string such as \"jobs.get\"",
                )),
            )
        }
    };
    let input = m.remove("input").unwrap_or(Value::Null);
    if let Some(k) = m.keys().next() {
        return (
            id,
            Err(Error::invalid(format!(
                "unknown request field {k:?}; a request has id, op and input"
            ))),
        );
    }
    (id, Ok((op, input)))
}

/// The response for `id`: `{"id":..,"ok":true,"output":..}` or
/// `{"id":..,"ok":false,"error":{..}}`. It serializes the [`Output`] itself (never through a
/// `serde_json::Value`), so payloads print verbatim.
pub(crate) fn response(id: Value, result: Result<Output>) -> Response {
    Response { id, result }
}

/// One response line (without its newline); see [`response`].
pub(crate) struct Response {
    id: Value,
    result: Result<Output>,
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &self.id)?;
        match &self.result {
            Ok(output) => {
                m.serialize_entry("ok", &true)?;
                m.serialize_entry("output", output)?;
            }
            Err(e) => {
                m.serialize_entry("ok", &false)?;
                m.serialize_entry("error", &ErrorView::from(e))?;
            }
        }
        m.end()
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_requests_keep_their_id() {
        let (id, r) = parse_request(br#"{"id":7,"op":3}"#);
        assert_eq!(id, json!(7));
        assert_eq!(r.unwrap_err().code(), "INVALID_ARGUMENT");
        let (id, r) = parse_request(b"{nope");
        assert_eq!(id, Value::Null);
        assert!(r.is_err());
    }
}
