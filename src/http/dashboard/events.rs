//! The live event tail (`/events`): the newest events of the log, newest first, refreshed
//! by the page's live refresh; `before=<seq>` pages back. One bounded read per page.

use std::fmt::Write as _;

use crate::{EventRecord, Result, Spool};

use super::chart::event_time_ms;
use super::form::Form;
use super::html::{esc, layout, short, time_el, View};

/// Events per page.
const ROWS: u64 = 100;

/// Reads the newest events (or those before `before`) and renders the page.
pub(crate) fn page(spool: &Spool, view: &View<'_>, query: &Form) -> Result<String> {
    let last = spool.last_seq();
    let before = query
        .get("before")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(last + 1, |b| b.min(last + 1));
    let from = before.saturating_sub(ROWS + 1);
    let mut events = spool.events_since(from, usize::try_from(ROWS).unwrap_or(100))?;
    events.retain(|r| r.seq < before);
    events.reverse();
    let mut b = String::with_capacity(16384);
    let newest = query.get("before").is_none();
    if newest {
        // The script follows the log from here over Server-Sent Events.
        let _ = write!(
            b,
            "<div data-live=\"sse\"><p class=\"muted\">Live: newest event \
             <span id=\"last-seq\">{last}</span>; new ones appear on top.</p></div>"
        );
    } else {
        let _ = write!(b, "<p class=\"muted\">Events before {before}.</p>");
    }
    event_table(&mut b, &events, true, newest);
    if let Some(oldest) = events.last() {
        if oldest.seq > 1 {
            let _ = write!(
                b,
                "<nav class=\"pager\"><a href=\"/events\">« Newest</a><a href=\"/events?before={}\">\
                 Older »</a></nav>",
                oldest.seq
            );
        }
    }
    Ok(layout(view, "Events", "/events", "", &b))
}

/// A table of events: seq, time, name, job (a link), and the other fields; `always`: the
/// table even when empty (the live tail adds rows to it).
pub(crate) fn event_table(b: &mut String, events: &[EventRecord], with_job: bool, always: bool) {
    if events.is_empty() && !always {
        b.push_str("<p class=\"muted\">No events.</p>");
        return;
    }
    b.push_str(
        "<div class=\"scroll\"><table class=\"grid events\" id=\"events\"><thead><tr>\
         <th class=\"num\">seq</th><th>time</th><th>event</th>",
    );
    if with_job {
        b.push_str("<th>job</th>");
    }
    b.push_str("<th>details</th></tr></thead><tbody>");
    for r in events {
        let at = event_time_ms(&r.event)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(time_el)
            .unwrap_or_default();
        let _ = write!(
            b,
            "<tr data-seq=\"{}\"><td class=\"num\">{}</td><td>{at}</td><td><code>{}</code></td>",
            r.seq,
            r.seq,
            r.event.name()
        );
        if with_job {
            match r.event.job_id() {
                Some(id) => {
                    let _ = write!(
                        b,
                        "<td><a class=\"mono\" href=\"/jobs/{id}\">{}</a></td>",
                        short(&id.to_string(), 13)
                    );
                }
                None => b.push_str("<td></td>"),
            }
        }
        let _ = write!(b, "<td class=\"details\">{}</td></tr>", esc(&details(r)));
    }
    b.push_str("</tbody></table></div>");
}

/// The event's fields other than seq, name and job id, as `key=value` pairs.
fn details(r: &EventRecord) -> String {
    let v = crate::json::event(r);
    let mut out = String::new();
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            if matches!(k.as_str(), "seq" | "name" | "jobId") || v.is_null() {
                continue;
            }
            if !out.is_empty() {
                out.push_str("  ");
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(out, "{k}={}", short(&text, 200));
        }
    }
    out
}
