//! Printing: JSON documents under `--json`, plain lines otherwise. Everything is printed from
//! the JSON an operation returns, so output is the same whether the database was opened
//! directly or reached through a control socket. A closed stdout (a
//! broken pipe, e.g. `| head`) ends the process quietly.
//!
//! Plain-text output never passes a control character through: job and event fields hold
//! text from anyone who can enqueue (payloads, a failed command's stderr), and a raw newline
//! would let such text print lines of its own, a raw escape sequence drive the terminal.
//! Every string printed goes through [`escaped`] (`--json` output is left exactly as
//! produced: JSON escapes what needs it).

use std::borrow::Cow;
use std::io::Write;

use jobspool::{json, Error};
use serde_json::Value;

/// An operation's output: its JSON text exactly as produced (so `--json` prints payloads
/// verbatim, big numbers included), and the same parsed for the plain-text printers.
pub(crate) struct Doc {
    pub raw: String,
    pub value: Value,
}

impl Doc {
    pub fn from_raw(raw: String) -> Result<Doc, Error> {
        let value = serde_json::from_str(&raw).map_err(|e| Error::Storage {
            context: format!("an operation's output is not JSON: {e}"),
            source: None,
        })?;
        Ok(Doc { raw, value })
    }

    pub fn from_value(value: Value) -> Doc {
        Doc {
            raw: value.to_string(),
            value,
        }
    }
}

impl std::ops::Deref for Doc {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

pub(crate) struct Out {
    json: bool,
}

fn line(s: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{s}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

impl Out {
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    pub fn value(&self, d: &Doc, human: &str) {
        if self.json {
            line(&d.raw);
        } else {
            line(human);
        }
    }

    pub fn error(&self, e: &Error) {
        if self.json {
            line(&json::error(e).to_string());
        } else {
            eprintln!("error: {e}");
        }
    }

    /// A job (`jobs.get` output).
    pub fn job(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
            return;
        }
        line(&job_text(v));
    }

    /// A `{"jobs": [...]}` page.
    pub fn jobs(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
            return;
        }
        let jobs = v["jobs"].as_array().map_or(&[][..], Vec::as_slice);
        if jobs.is_empty() {
            line("no jobs");
            return;
        }
        line(&format!(
            "{:<36}  {:<11}  {:<12}  {:<20}  {:>8}  {}",
            "ID", "STATUS", "QUEUE", "TYPE", "ATTEMPTS", "CREATED"
        ));
        for j in jobs {
            line(&format!(
                "{:<36}  {:<11}  {:<12}  {:<20}  {:>4}/{:<3}  {}",
                text(&j["id"]),
                text(&j["status"]),
                text(&j["queue"]),
                text(&j["type"]),
                num(&j["attempts"]),
                num(&j["maxRetries"]),
                text(&j["createdAt"])
            ));
        }
    }

    /// Stats (`jobs.stats` output).
    pub fn stats(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
            return;
        }
        let row = |name: &str, c: &Value| {
            format!(
                "{:<16} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9}{}",
                name,
                num(&c["pending"]),
                num(&c["running"]),
                num(&c["completed"]),
                num(&c["failed"]),
                num(&c["deadLetter"]),
                num(&c["cancelled"]),
                num(&c["delayed"]),
                if c["paused"] == Value::Bool(true) {
                    "  (paused)"
                } else {
                    ""
                }
            )
        };
        line(&format!(
            "{:<16} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10} {:>9}",
            "QUEUE", "PENDING", "RUNNING", "COMPLETED", "FAILED", "DEAD", "CANCELLED", "DELAYED"
        ));
        if let Value::Object(queues) = &v["queues"] {
            for (name, q) in queues {
                line(&row(&escaped(name), q));
            }
        }
        // The totals carry no `paused`.
        line(&row("(all)", v));
    }

    /// One schedule (`jobs.schedule.create` / `toggle` output).
    pub fn schedule(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
        } else {
            self.schedule_rows(std::slice::from_ref(v));
        }
    }

    /// A `{"schedules": [...]}` list.
    pub fn schedules(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
            return;
        }
        self.schedule_rows(v["schedules"].as_array().map_or(&[][..], Vec::as_slice));
    }

    fn schedule_rows(&self, list: &[Value]) {
        if list.is_empty() {
            line("no schedules");
            return;
        }
        line(&format!(
            "{:<20} {:<16} {:<16} {:<16} {:<8} {:<25} {}",
            "NAME", "CRON", "TIMEZONE", "JOB TYPE", "ENABLED", "NEXT RUN", "LAST RUN"
        ));
        let or_dash = |v: &Value| escaped(v.as_str().unwrap_or("-")).into_owned();
        for s in list {
            line(&format!(
                "{:<20} {:<16} {:<16} {:<16} {:<8} {:<25} {}",
                text(&s["name"]),
                text(&s["cronExpression"]),
                text(&s["timezone"]),
                text(&s["jobType"]),
                s["enabled"].as_bool().unwrap_or_default(),
                or_dash(&s["nextRunAt"]),
                or_dash(&s["lastRunAt"])
            ));
        }
    }

    /// One event line: `seq`, `name`, then its fields.
    pub fn event(&self, d: &Doc) {
        let v: &Value = d;
        if self.json {
            line(&d.raw);
            return;
        }
        let mut rest = String::new();
        if let Value::Object(m) = v {
            for (k, v) in m.iter().filter(|(k, _)| *k != "seq" && *k != "name") {
                rest.push_str(&format!(" {}={}", escaped(k), shown(v)));
            }
        }
        line(&format!(
            "{:>8} {:<24}{rest}",
            num(&v["seq"]),
            text(&v["name"])
        ));
    }
}

/// A job as `key: value` lines, the keys right-aligned to the longest.
fn job_text(v: &Value) -> String {
    let Value::Object(m) = v else {
        return String::new();
    };
    let keys: Vec<Cow<'_, str>> = m.keys().map(|k| escaped(k)).collect();
    let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let mut s = String::new();
    for (k, v) in keys.iter().zip(m.values()) {
        s.push_str(&format!("{k:>width$}: {}\n", shown(v)));
    }
    s.truncate(s.trim_end().len());
    s
}

/// A string field as its text, anything else as JSON; control characters escaped either
/// way (see [`escaped`]).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => escaped(s).into_owned(),
        other => json_escaped(&other.to_string()).into_owned(),
    }
}

/// A string field (empty when missing), control characters escaped.
fn text(v: &Value) -> Cow<'_, str> {
    escaped(v.as_str().unwrap_or_default())
}

/// Whether `c` must not reach a terminal as it is: a control character (C0, DEL, C1), or
/// one that moves or hides text without being visible (the line and paragraph separators,
/// the bidirectional controls that can reorder a line, zero-width characters, the BOM).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `s` safe to print on a terminal: every character of [`unsafe_char`] (C0, `\n`, `\r` and
/// `\t` and ESC among them, DEL, C1, bidirectional and zero-width controls) written as an
/// escape, `\n`, `\r`, `\t`, or `\u{1b}` for the others, and a backslash doubled, so that
/// text which itself reads `\n` is told from an escaped newline. Other text, non-ASCII
/// included, is printed as it is.
fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || unsafe_char(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text (an object, an array) safe to print: JSON already escapes C0 characters in its
/// strings but not DEL and C1, which get JSON's own `\u007f` form here, so the text stays
/// JSON.
fn json_escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A counter field (0 when missing).
fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_get_keys_stay_aligned() {
        // A job whose payload and result are not JSON: the two longest keys there are.
        let job = serde_json::json!({
            "id": "01a23666-5894-740a-977e-f3ea1d980cae",
            "type": "t",
            "payload": "AAE=",
            "payloadEncoding": "base64",
            "maxRetries": 3,
            "result": "/w==",
            "resultEncoding": "base64",
        });
        let text = job_text(&job);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        let colons: Vec<usize> = lines.iter().map(|l| l.find(": ").unwrap()).collect();
        assert!(colons.iter().all(|c| *c == colons[0]), "{text}");
        assert!(lines.contains(&"payloadEncoding: base64"), "{text}");
        assert!(lines.contains(&"             id: 01a23666-5894-740a-977e-f3ea1d980cae"));
    }

    #[test]
    fn escaped_shows_every_control_character_as_an_escape() {
        assert_eq!(escaped("plain, ünïcode"), "plain, ünïcode");
        assert_eq!(escaped("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(
            escaped("\u{1b}[2J\u{0}\u{7f}\u{9b}"),
            "\\u{1b}[2J\\u{0}\\u{7f}\\u{9b}"
        );
        assert_eq!(escaped("C:\\dir\\n"), "C:\\\\dir\\\\n");
        // Characters that reorder or hide text within a line.
        assert_eq!(
            escaped("a\u{202e}b\u{2066}c\u{200b}d\u{2028}e\u{feff}"),
            "a\\u{202e}b\\u{2066}c\\u{200b}d\\u{2028}e\\u{feff}"
        );
        assert_eq!(
            shown(&serde_json::json!({"k": "\u{1b}\u{9b}\n"})),
            "{\"k\":\"\\u001b\\u009b\\n\"}"
        );
    }
}
