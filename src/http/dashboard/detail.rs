//! One job (`/jobs/<id>`): its fields, payload and result, every execution the job keeps,
//! and its events from the log.
//!
//! The event log has no index by job, so the timeline is found by time: a binary search
//! over sequence numbers (one-event reads) for the first event at or after the job's
//! creation, then a forward read up to the job's last change, bounded by [`SCAN_MAX`]
//! events; the page says when the bound cut it short.

use std::fmt::Write as _;

use crate::{EventRecord, Job, JobId, JobStatus, Result, Spool};

use super::chart::event_time_ms;
use super::html::{action_form, badge, esc, layout, num, time_el, time_opt, View};

/// Events read at most for one job's timeline.
pub(crate) const SCAN_MAX: usize = 20_000;
/// Events of the job shown at most.
const SHOWN_MAX: usize = 500;
/// Bytes of a payload or result shown at most.
const SHOW_BYTES: usize = 64 * 1024;

/// The job's events and whether the scan stopped at its bound.
pub(crate) struct Timeline {
    pub events: Vec<EventRecord>,
    pub truncated: bool,
}

/// Reads the job and its timeline and renders the page (`None`: no such job).
pub(crate) fn page(spool: &Spool, view: &View<'_>, id: JobId) -> Result<Option<String>> {
    let job = match spool.get(id) {
        Ok(j) => j,
        Err(crate::Error::JobNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let tl = timeline(spool, &job)?;
    Ok(Some(render(view, &job, &tl)))
}

/// The first sequence number to read after, so that the next event is the first one at or
/// after `t_ms` (binary search; events are appended in time order).
fn seek(spool: &Spool, t_ms: i64) -> Result<u64> {
    let mut lo = 0u64;
    let mut hi = spool.last_seq();
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let evs = spool.events_since(mid, 8)?;
        let Some(first) = evs.first() else {
            hi = mid;
            continue;
        };
        let at = evs
            .iter()
            .find_map(|r| event_time_ms(&r.event).map(|t| (r.seq, t)));
        match at {
            Some((seq, t)) if t < t_ms => lo = seq.max(first.seq).min(hi),
            Some(_) => hi = mid,
            // Eight events without a time of their own: step over them.
            None => lo = evs.last().map_or(hi, |r| r.seq).min(hi),
        }
    }
    Ok(lo)
}

/// The job's events, from its creation to its last change.
pub(crate) fn timeline(spool: &Spool, job: &Job) -> Result<Timeline> {
    let mut after = seek(spool, job.created_at.timestamp_millis())?;
    let end_ms = job.updated_at.timestamp_millis();
    let mut events = Vec::new();
    let mut scanned = 0usize;
    loop {
        if scanned >= SCAN_MAX || events.len() >= SHOWN_MAX {
            return Ok(Timeline {
                events,
                truncated: true,
            });
        }
        let chunk = spool.events_since(after, 1000.min(SCAN_MAX - scanned))?;
        let Some(last) = chunk.last() else {
            break;
        };
        after = last.seq;
        scanned += chunk.len();
        for r in chunk {
            if event_time_ms(&r.event).is_some_and(|t| t > end_ms) {
                return Ok(Timeline {
                    events,
                    truncated: false,
                });
            }
            if r.event.job_id() == Some(job.id) {
                events.push(r);
            }
        }
    }
    Ok(Timeline {
        events,
        truncated: false,
    })
}

/// Bytes shown as pretty JSON when they are JSON, else as hex and base64 (first
/// [`SHOW_BYTES`] bytes).
pub(crate) fn bytes_block(b: &[u8]) -> String {
    if b.is_empty() {
        return "<p class=\"muted\">(empty)</p>".to_owned();
    }
    if b.len() <= SHOW_BYTES {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
            return format!("<pre class=\"json\">{}</pre>", esc(&pretty));
        }
    }
    let shown = &b[..b.len().min(SHOW_BYTES)];
    let mut hex = String::with_capacity(shown.len() * 3);
    for (i, byte) in shown.iter().enumerate() {
        if i > 0 {
            hex.push(if i % 16 == 0 { '\n' } else { ' ' });
        }
        let _ = write!(hex, "{byte:02x}");
    }
    let note = if shown.len() < b.len() {
        format!(
            "<p class=\"muted\">First {} of {} bytes shown.</p>",
            num(shown.len() as u64),
            num(b.len() as u64)
        )
    } else {
        format!(
            "<p class=\"muted\">{} bytes, not JSON.</p>",
            num(b.len() as u64)
        )
    };
    format!(
        "{note}<details open><summary>hex</summary><pre class=\"hex\">{}</pre></details>\
         <details><summary>base64</summary><pre class=\"b64\">{}</pre></details>",
        esc(&hex),
        esc(&crate::json::base64(shown))
    )
}

fn render(view: &View<'_>, j: &Job, tl: &Timeline) -> String {
    let mut b = String::with_capacity(8192 + j.payload.len() * 2);
    let id = j.id.to_string();
    b.push_str("<p class=\"tools\">");
    if j.status == JobStatus::Pending {
        b.push_str(&action_form(
            view,
            "cancel",
            &[("id", &id)],
            "Cancel",
            "danger",
            Some("Cancel this job?"),
        ));
    }
    if matches!(j.status, JobStatus::DeadLetter | JobStatus::Failed) {
        b.push_str(&action_form(
            view,
            "redrive",
            &[("id", &id)],
            "Redrive",
            "primary",
            Some("Send this job back to pending?"),
        ));
    }
    b.push_str("</p>");

    let timeout = j.timeout.map(|d| format!("{} ms", d.as_millis()));
    let rows: Vec<(&str, String)> = vec![
        (
            "id",
            format!("<span class=\"mono\" id=\"job-id\">{}</span>", esc(&id)),
        ),
        (
            "status",
            format!("<span id=\"job-status\">{}</span>", badge(j.status)),
        ),
        ("type", esc(&j.kind).to_string()),
        ("version", esc(&j.version).to_string()),
        ("queue", esc(&j.queue).to_string()),
        ("priority", j.priority.to_string()),
        ("attempts", format!("{} of {}", j.attempts, j.max_attempts)),
        ("created", time_el(j.created_at)),
        ("updated", time_el(j.updated_at)),
        ("scheduled", time_opt(j.scheduled_at)),
        ("started", time_opt(j.started_at)),
        ("finished", time_opt(j.completed_at)),
        ("lease until", time_opt(j.lease_expires_at())),
        (
            "timeout",
            esc(timeout.as_deref().unwrap_or("–")).to_string(),
        ),
        (
            "dedupe key",
            esc(j.dedupe_key.as_deref().unwrap_or("–")).to_string(),
        ),
        (
            "tenant",
            esc(j.tenant_id.as_deref().unwrap_or("–")).to_string(),
        ),
        ("user", esc(j.user_id.as_deref().unwrap_or("–")).to_string()),
        (
            "trace",
            esc(j.trace_id.as_deref().unwrap_or("–")).to_string(),
        ),
    ];
    b.push_str("<dl class=\"fields\">");
    for (k, v) in rows {
        let _ = write!(b, "<dt>{k}</dt><dd>{v}</dd>");
    }
    for (k, v) in &j.metadata {
        let _ = write!(b, "<dt>meta: {}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    b.push_str("</dl>");
    if let Some(e) = &j.last_error {
        let _ = write!(
            b,
            "<h2>Last error</h2><pre class=\"err\" id=\"last-error\">{}</pre>",
            esc(e)
        );
    }
    b.push_str("<h2>Payload</h2><div id=\"payload\">");
    b.push_str(&bytes_block(&j.payload));
    b.push_str("</div>");
    if let Some(r) = &j.result {
        b.push_str("<h2>Result</h2><div id=\"result\">");
        b.push_str(&bytes_block(r));
        b.push_str("</div>");
    }

    let _ = write!(b, "<h2>Executions ({})</h2>", j.executions.len());
    if j.executions.is_empty() {
        b.push_str("<p class=\"muted\">Not run yet.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table class=\"grid\" id=\"executions\"><thead><tr>\
             <th class=\"num\">#</th><th>started</th><th>ended</th><th class=\"num\">ms</th>\
             <th>outcome</th><th>worker</th><th>error</th></tr></thead><tbody>",
        );
        for e in &j.executions {
            let outcome = match (e.success, e.released) {
                (_, true) => "released",
                (Some(true), _) => "ok",
                (Some(false), _) => "failed",
                (None, _) => "running",
            };
            let _ = write!(
                b,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"out-{outcome}\">{outcome}</td><td>{}</td><td class=\"err\">{}</td></tr>",
                e.attempt_number,
                time_el(e.started_at),
                time_opt(e.completed_at),
                e.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
                esc(e.worker_id.as_deref().unwrap_or("–")),
                esc(e.error.as_deref().unwrap_or("")),
            );
        }
        b.push_str("</tbody></table></div>");
    }

    b.push_str("<h2>Events</h2>");
    super::events::event_table(&mut b, &tl.events, false, false);
    if tl.truncated {
        let _ = write!(
            b,
            "<p class=\"muted\">The search stopped after {} events of the log; older or later \
             events of this job may exist (see <a href=\"/events\">Events</a>).</p>",
            num(SCAN_MAX as u64)
        );
    }
    let title = format!("Job {}", j.kind);
    layout(view, &title, "/jobs", "", &b)
}
