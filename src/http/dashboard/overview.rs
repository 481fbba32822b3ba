//! The overview (`/`): counts per queue and status, throughput per minute, the running
//! jobs (held leases). Costs: stats from counters, one bounded read of the newest events,
//! one page of running jobs.

use std::fmt::Write as _;

use crate::{Job, JobStatus, ListQuery, Result, Spool, Stats};

use super::chart::{self, Throughput};
use super::html::{action_form, esc, href, layout, num, short, time_el, View};

/// Running jobs listed at most.
const RUNNING_SHOWN: usize = 20;

/// The statuses as columns: (status key, label, count).
fn columns(c: &crate::Counts) -> [(&'static str, &'static str, u64); 7] {
    [
        ("pending", "pending", c.pending),
        ("delayed", "of which delayed", c.delayed),
        ("running", "running", c.running),
        ("completed", "completed", c.completed),
        ("failed", "failed", c.failed),
        ("dead_letter", "dead letter", c.dead_letter),
        ("cancelled", "cancelled", c.cancelled),
    ]
}

/// Reads what the page shows and renders it.
pub(crate) fn page(spool: &Spool, view: &View<'_>) -> Result<String> {
    let stats = spool.stats()?;
    let last = spool.last_seq();
    let from = last.saturating_sub(chart::MAX_EVENTS as u64);
    let events = spool.events_since(from, chart::MAX_EVENTS)?;
    let tp = chart::throughput(&events, spool.now_ms(), from == 0);
    let (running, _) = super::filter::light_page(
        |q| spool.list(q),
        ListQuery {
            status: Some(JobStatus::Running),
            ..ListQuery::default()
        },
        RUNNING_SHOWN,
    )?;
    Ok(render(view, &stats, &tp, &running))
}

/// The page from its data.
pub(crate) fn render(view: &View<'_>, stats: &Stats, tp: &Throughput, running: &[Job]) -> String {
    let mut b = String::with_capacity(8192);
    // Totals.
    b.push_str("<section class=\"cards\">");
    for (key, label, n) in columns(&stats.total) {
        let status = if key == "delayed" { "pending" } else { key };
        let _ = write!(
            b,
            "<a class=\"card st-{key}\" href=\"{}\"><span class=\"n\" data-count=\"{key}\">{}</span>\
             <span class=\"l\">{label}</span></a>",
            esc(&href("/jobs", &[("status", status)])),
            num(n),
        );
    }
    b.push_str("</section>");

    // Queues.
    b.push_str(
        "<section><h2>Queues</h2><div class=\"scroll\"><table class=\"grid\" id=\"queues\">\
         <thead><tr><th>queue</th>",
    );
    for (_, label, _) in columns(&stats.total) {
        let _ = write!(b, "<th class=\"num\">{label}</th>");
    }
    b.push_str("<th></th></tr></thead><tbody>");
    if stats.queues.is_empty() {
        b.push_str("<tr><td colspan=\"9\" class=\"muted\">No queues yet.</td></tr>");
    }
    for (name, q) in &stats.queues {
        let _ = write!(
            b,
            "<tr data-queue=\"{qn}\"><th><a href=\"{}\">{qn}</a>{}</th>",
            esc(&href("/jobs", &[("queue", name)])),
            if q.paused {
                " <span class=\"badge paused\">paused</span>"
            } else {
                ""
            },
            qn = esc(name),
        );
        for (key, _, n) in columns(&q.counts) {
            let status = if key == "delayed" { "pending" } else { key };
            let _ = write!(
                b,
                "<td class=\"num\"><a data-status=\"{key}\" href=\"{}\">{}</a></td>",
                esc(&href("/jobs", &[("queue", name), ("status", status)])),
                num(n)
            );
        }
        let (act, label) = if q.paused {
            ("resume", "Resume")
        } else {
            ("pause", "Pause")
        };
        let _ = write!(
            b,
            "<td>{}</td></tr>",
            action_form(view, act, &[("queue", name)], label, "small", None)
        );
    }
    b.push_str("</tbody></table></div></section>");

    // Throughput.
    b.push_str(
        "<section><h2>Throughput per minute</h2><p class=\"legend\">\
         <span class=\"key s-enq\">enqueued</span> <span class=\"key s-done\">completed</span> \
         <span class=\"key s-fail\">failed attempts</span></p>",
    );
    b.push_str(&chart::svg(tp));
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let _ = write!(
        b,
        "<p class=\"muted\">Last {} minutes: {} enqueued, {} completed, {} failed attempts.",
        chart::MINUTES,
        num(sum(&tp.enqueued)),
        num(sum(&tp.completed)),
        num(sum(&tp.failed))
    );
    if let Some(from) = tp
        .partial_from_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
    {
        let _ = write!(
            b,
            " Only the newest {} events are read: counts start at {}.",
            num(chart::MAX_EVENTS as u64),
            time_el(from)
        );
    }
    b.push_str("</p></section>");

    // Running jobs and their leases.
    let _ = write!(
        b,
        "<section><h2>Running ({})</h2>",
        num(stats.total.running)
    );
    if running.is_empty() {
        b.push_str("<p class=\"muted\">No job holds a lease.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table class=\"grid\"><thead><tr><th>job</th><th>type</th>\
             <th>queue</th><th>attempt</th><th>worker</th><th>started</th><th>lease until</th>\
             </tr></thead><tbody>",
        );
        for j in running {
            let worker = j
                .executions
                .last()
                .and_then(|e| e.worker_id.as_deref())
                .unwrap_or("–");
            let _ = write!(
                b,
                "<tr><td><a class=\"mono\" href=\"/jobs/{id}\">{sid}</a></td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}/{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&j.kind),
                esc(&j.queue),
                j.attempts,
                j.max_attempts,
                esc(worker),
                j.started_at.map(time_el).unwrap_or_default(),
                j.lease_expires_at().map(time_el).unwrap_or_default(),
                id = j.id,
                sid = short(&j.id.to_string(), 13),
            );
        }
        b.push_str("</tbody></table></div>");
        if stats.total.running > running.len() as u64 {
            let _ = write!(
                b,
                "<p><a href=\"/jobs?status=running\">All {} running jobs</a></p>",
                num(stats.total.running)
            );
        }
    }
    b.push_str("</section>");
    layout(view, "Overview", "/", "", &b)
}
