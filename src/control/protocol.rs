//! Requests and responses: one JSON object per line, ops with the SPEC's input and output
//! shapes. Every input is checked completely before the spool is touched, so a bad request
//! changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::model::error::{Error, Result};
use crate::model::job::{JobId, JobStatus, NewJob, MAX_DELAY_MS};
use crate::api::json;
use crate::model::schedule::NewSchedule;
use crate::api::spool::Spool;
use crate::model::types::{ListQuery, MAX_PAGE};

/// Most events one `jobs.events` call returns.
const MAX_EVENTS_PAGE: u64 = 10_000;

/// Runs one control operation against `spool` and returns its output, exactly as the
/// control socket would (`op` names and shapes as in README.md, "Control socket").
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
    if !OPS.contains(&op) {
        return Err(unknown_op(op));
    }
    let mut inp = Input::new(op, input)?;
    match op {
        "jobs.enqueue" => {
            let job = new_job(&mut inp)?;
            inp.finish()?;
            Ok(json::job(&spool.enqueue(job)?))
        }
        "jobs.enqueue.batch" => {
            let list = inp.array("jobs")?.ok_or_else(|| missing(op, "jobs"))?;
            inp.finish()?;
            let mut jobs = Vec::with_capacity(list.len());
            for (i, v) in list.iter().enumerate() {
                let mut item = Input::new(op, v).map_err(|e| at_index(i, &e))?;
                let job = new_job(&mut item).map_err(|e| at_index(i, &e))?;
                item.finish().map_err(|e| at_index(i, &e))?;
                jobs.push(job);
            }
            let out = spool.enqueue_batch(jobs)?;
            Ok(json!({ "jobs": out.iter().map(json::job).collect::<Vec<_>>() }))
        }
        "jobs.cancel" => {
            let id = inp.job_id("jobId")?;
            let by = inp.string("cancelledBy")?;
            inp.finish()?;
            match by {
                Some(by) => spool.cancel_by(id, by)?,
                None => spool.cancel(id)?,
            };
            Ok(json!({ "success": true }))
        }
        "jobs.get" => {
            let id = inp.job_id("jobId")?;
            inp.finish()?;
            Ok(json::job(&spool.get(id)?))
        }
        "jobs.stats" => {
            inp.finish()?;
            Ok(json::stats(&spool.stats()?))
        }
        "jobs.list" => {
            let status = inp
                .string("status")?
                .map(|s| s.parse::<JobStatus>())
                .transpose()?;
            let q = ListQuery {
                status,
                queue: inp.string("queue")?,
                kind: inp.string("type")?,
                after: inp.opt_job_id("after")?,
                limit: inp.limit("limit", MAX_PAGE as u64)?,
            };
            inp.finish()?;
            Ok(jobs(&spool.list(&q)?))
        }
        "jobs.dead.list" => {
            let q = ListQuery {
                queue: inp.string("queue")?,
                kind: inp.string("type")?,
                limit: inp.limit("limit", MAX_PAGE as u64)?,
                ..ListQuery::default()
            };
            inp.finish()?;
            Ok(jobs(&spool.dead_letters(&q)?))
        }
        "jobs.dead.redrive" => {
            let id = inp.opt_job_id("jobId")?;
            let all = inp.boolean("all")?.unwrap_or(false);
            let queue = inp.string("queue")?;
            let kind = inp.string("type")?;
            inp.finish()?;
            let redriven = match (id, all) {
                (Some(id), false) if queue.is_none() && kind.is_none() => {
                    vec![spool.redrive(id)?]
                }
                (None, true) => spool.redrive_all(queue, kind)?,
                _ => {
                    return Err(Error::invalid(format!(
                        "{op}: give either jobId, or all: true with optional queue and type"
                    )))
                }
            };
            let ids: Vec<String> = redriven.iter().map(|j| j.id.to_string()).collect();
            Ok(json!({ "redriven": redriven.len(), "jobIds": ids }))
        }
        "jobs.schedule.create" => {
            let s = new_schedule(&mut inp)?;
            inp.finish()?;
            Ok(json::schedule(&spool.create_schedule(s)?))
        }
        "jobs.schedule.toggle" => {
            let name = inp.req_string("name")?;
            let enabled = inp
                .boolean("enabled")?
                .ok_or_else(|| missing(op, "enabled"))?;
            inp.finish()?;
            Ok(json::schedule(&spool.toggle_schedule(&name, enabled)?))
        }
        "jobs.schedule.list" => {
            inp.finish()?;
            Ok(json::schedules(&spool.list_schedules()?))
        }
        "jobs.schedule.delete" => {
            let name = inp.req_string("name")?;
            inp.finish()?;
            spool.delete_schedule(&name)?;
            Ok(json!({ "success": true }))
        }
        "jobs.queue.pause" | "jobs.queue.resume" => {
            let queue = inp.req_string("queue")?;
            inp.finish()?;
            let paused = op == "jobs.queue.pause";
            if paused {
                spool.pause_queue(&queue)?;
            } else {
                spool.resume_queue(&queue)?;
            }
            Ok(json!({ "queue": queue, "paused": paused }))
        }
        "jobs.events" => {
            let since = inp.uint("since", u64::MAX)?.unwrap_or(0);
            let limit = inp.limit("limit", MAX_EVENTS_PAGE)?.unwrap_or(1000);
            inp.finish()?;
            let evs = spool.events_since(since, limit)?;
            Ok(json!({ "events": evs.iter().map(json::event).collect::<Vec<_>>() }))
        }
        "jobs.prune" => {
            inp.finish()?;
            Ok(json!({ "pruned": spool.prune()? }))
        }
        "jobs.ping" => {
            inp.finish()?;
            Ok(json!({ "pong": true, "lastSeq": spool.last_seq() }))
        }
        _ => Err(unknown_op(op)),
    }
}

fn unknown_op(op: &str) -> Error {
    Error::invalid(format!("unknown op {op:?}; known ops: {}", OPS.join(", ")))
}

/// Every op [`dispatch`] knows.
pub(crate) const OPS: [&str; 17] = [
    "jobs.enqueue",
    "jobs.enqueue.batch",
    "jobs.cancel",
    "jobs.get",
    "jobs.stats",
    "jobs.list",
    "jobs.dead.list",
    "jobs.dead.redrive",
    "jobs.schedule.create",
    "jobs.schedule.toggle",
    "jobs.schedule.list",
    "jobs.schedule.delete",
    "jobs.queue.pause",
    "jobs.queue.resume",
    "jobs.events",
    "jobs.prune",
    "jobs.ping",
];

fn jobs(list: &[crate::model::job::Job]) -> Value {
    json!({ "jobs": list.iter().map(json::job).collect::<Vec<_>>() })
}

fn at_index(i: usize, e: &Error) -> Error {
    Error::invalid(format!("jobs[{i}]: {}", e.message()))
}

fn missing(op: &str, key: &str) -> Error {
    Error::invalid(format!("{op}: field {key:?} is required"))
}

fn new_job(inp: &mut Input<'_>) -> Result<NewJob> {
    let kind = inp.req_string("type")?;
    let mut job = NewJob::new(kind, inp.payload("payload")?);
    job.version = inp.string("version")?;
    job.queue = inp.string("queue")?;
    if let Some(p) = inp.int("priority", i64::from(i32::MIN), i64::from(i32::MAX))? {
        job.priority = i32::try_from(p).unwrap_or_default();
    }
    if let Some(d) = inp.number("delaySeconds")? {
        if !d.is_finite() || d < 0.0 {
            return Err(Error::invalid(format!(
                "delaySeconds {d} must be zero or positive seconds"
            )));
        }
        if d * 1000.0 > MAX_DELAY_MS as f64 {
            return Err(Error::invalid("delaySeconds must be at most 10 years"));
        }
        job.delay = Some(Duration::from_secs_f64(d));
    }
    if let Some(at) = inp.string("runAt")? {
        let t = chrono::DateTime::parse_from_rfc3339(&at)
            .map_err(|e| Error::invalid(format!("runAt {at:?} is not an RFC 3339 time ({e})")))?;
        job.run_at = Some(t.with_timezone(&chrono::Utc));
    }
    job.max_attempts = inp.max_retries()?;
    job.timeout_ms = inp.uint("timeoutMs", u64::MAX)?;
    job.dedupe_key = inp.string("dedupeKey")?;
    job.tenant_id = inp.string("tenantId")?;
    job.user_id = inp.string("userId")?;
    job.trace_id = inp.string("traceId")?;
    job.metadata = inp.string_map("metadata")?.unwrap_or_default();
    Ok(job)
}

fn new_schedule(inp: &mut Input<'_>) -> Result<NewSchedule> {
    let mut s = NewSchedule::new(
        inp.req_string("name")?,
        inp.req_string("cronExpression")?,
        inp.req_string("jobType")?,
    );
    s.description = inp.string("description")?;
    s.timezone = inp.string("timezone")?;
    s.payload = inp.payload("payload")?;
    s.max_attempts = inp.max_retries()?;
    s.enabled = inp.boolean("enabled")?;
    s.queue = inp.string("queue")?;
    if let Some(p) = inp.int("priority", i64::from(i32::MIN), i64::from(i32::MAX))? {
        s.priority = i32::try_from(p).unwrap_or_default();
    }
    s.replace = inp.boolean("replace")?.unwrap_or(false);
    Ok(s)
}

/// One op's input object, read field by field; [`Input::finish`] rejects fields no getter
/// asked for.
struct Input<'a> {
    op: &'a str,
    map: Option<&'a Map<String, Value>>,
    known: Vec<&'static str>,
}

impl<'a> Input<'a> {
    fn new(op: &'a str, input: &'a Value) -> Result<Self> {
        let map = match input {
            Value::Object(m) => Some(m),
            Value::Null => None,
            _ => return Err(Error::invalid(format!("{op}: input must be a JSON object"))),
        };
        Ok(Input {
            op,
            map,
            known: Vec::new(),
        })
    }

    /// The field, `None` when absent or `null`.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, what: &str) -> Error {
        Error::invalid(format!("{}: field {key:?} must be {what}", self.op))
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn req_string(&mut self, key: &'static str) -> Result<String> {
        self.string(key)?.ok_or_else(|| missing(self.op, key))
    }

    fn boolean(&mut self, key: &'static str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn number(&mut self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(self.wrong(key, "a number")),
        }
    }

    fn int(&mut self, key: &'static str, min: i64, max: i64) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
                _ => Err(self.wrong(key, &format!("an integer in {min}..={max}"))),
            },
            Some(_) => Err(self.wrong(key, &format!("an integer in {min}..={max}"))),
        }
    }

    fn uint(&mut self, key: &'static str, max: u64) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(i) if i <= max => Ok(Some(i)),
                _ => Err(self.wrong(key, &format!("an integer in 0..={max}"))),
            },
            Some(_) => Err(self.wrong(key, &format!("an integer in 0..={max}"))),
        }
    }

    fn limit(&mut self, key: &'static str, max: u64) -> Result<Option<usize>> {
        match self.uint(key, max)? {
            Some(0) => Err(self.wrong(key, &format!("an integer in 1..={max}"))),
            Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            None => Ok(None),
        }
    }

    fn max_retries(&mut self) -> Result<Option<u32>> {
        // 0 passes through: the spool rejects it with the same message as a direct call.
        Ok(self
            .uint("maxRetries", u64::from(u32::MAX))?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    fn job_id(&mut self, key: &'static str) -> Result<JobId> {
        self.opt_job_id(key)?.ok_or_else(|| missing(self.op, key))
    }

    fn opt_job_id(&mut self, key: &'static str) -> Result<Option<JobId>> {
        self.string(key)?.map(|s| s.parse()).transpose()
    }

    fn array(&mut self, key: &'static str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.wrong(key, "an array")),
        }
    }

    fn string_map(&mut self, key: &'static str) -> Result<Option<BTreeMap<String, String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(self.wrong(key, "an object of string values")),
                })
                .collect::<Result<_>>()
                .map(Some),
            Some(_) => Err(self.wrong(key, "an object of string values")),
        }
    }

    /// Payload bytes: `{"base64": "..."}` decodes to raw bytes; any other JSON value is
    /// stored as its JSON text; absent or `null` is empty.
    fn payload(&mut self, key: &'static str) -> Result<Vec<u8>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) if m.len() == 1 && m.contains_key("base64") => {
                match m.get("base64") {
                    Some(Value::String(s)) => decode_base64(s).ok_or_else(|| {
                        Error::invalid(format!("{}: {key}.base64 is not valid base64", self.op))
                    }),
                    _ => Err(self.wrong("base64", "a base64 string")),
                }
            }
            Some(v) => serde_json::to_vec(v)
                .map_err(|e| Error::invalid(format!("{}: {key} cannot be encoded: {e}", self.op))),
        }
    }

    fn finish(self) -> Result<()> {
        let Some(map) = self.map else { return Ok(()) };
        if let Some(k) = map.keys().find(|k| !self.known.contains(&k.as_str())) {
            return Err(Error::invalid(format!(
                "{}: unknown field {k:?}; known fields: {}",
                self.op,
                self.known.join(", ")
            )));
        }
        Ok(())
    }
}

/// Standard base64 (RFC 4648), padding optional; `None` for anything else.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let trimmed = match bytes {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if bytes.len() % 4 == 0 => rest,
        _ => bytes,
    };
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() / 4 * 3 + 2);
    for chunk in trimmed.chunks(4) {
        let mut n: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let [_, a, b, c] = n.to_be_bytes();
        out.push(a);
        if chunk.len() > 2 {
            out.push(b);
        }
        if chunk.len() > 3 {
            out.push(c);
        }
    }
    Some(out)
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

/// The response line for `id`.
pub(crate) fn response(id: Value, result: Result<Value>) -> Value {
    match result {
        Ok(output) => json!({ "id": id, "ok": true, "output": output }),
        Err(e) => json!({
            "id": id,
            "ok": false,
            "error": { "code": e.code(), "message": e.message() },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"\xff\x00\x10",
        ] {
            let enc = json::base64(input);
            assert_eq!(decode_base64(&enc).as_deref(), Some(input));
            assert_eq!(
                decode_base64(enc.trim_end_matches('=')).as_deref(),
                Some(input)
            );
        }
        assert_eq!(decode_base64("Zm9v!"), None);
        assert_eq!(decode_base64("Z"), None);
    }

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
