//! `GET /metrics`: Prometheus' text format (version 0.0.4).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `jobspool_jobs` | gauge | `queue`, `status` (pending, running, completed, failed, cancelled, dead_letter) |
//! | `jobspool_jobs_delayed` | gauge | `queue`: pending jobs not due yet (counted in pending too) |
//! | `jobspool_queue_paused` | gauge | `queue`: 1 when paused |
//! | `jobspool_events_total` | counter | `event`: events seen by this process (job.enqueued, job.completed, ...) |
//! | `jobspool_lease_expiries_total` | counter | attempts failed for an expired lease |
//! | `jobspool_handler_duration_seconds` | histogram | `outcome`: the worker pool's handlers |
//! | `jobspool_storage_ops_total`, `_groups_total`, `_fsyncs_total` | counter | the store's work |
//! | `jobspool_storage_unapplied_groups` | gauge | groups durable in the journal only |
//! | `jobspool_storage_journal_bytes_total` | counter | bytes appended to the journal (sled) |
//! | `jobspool_storage_live_bytes` | gauge | bytes of current values in the journal (sled) |
//! | `jobspool_last_event_seq` | gauge | the newest event's sequence number |
//!
//! Counters count from this process's start (the queue's totals are the gauges).

use std::fmt::Write;

use super::response::Response;
use crate::model::types::Counts;
use crate::{Spool, HANDLER_BUCKETS};

/// The metrics page, or the error that kept the stats from being read.
pub(crate) fn render(spool: &Spool) -> Response {
    match text(spool) {
        Ok(body) => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", body),
        Err(e) => super::api::error(&e),
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and newline.
pub(crate) fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn statuses(c: &Counts) -> [(&'static str, u64); 6] {
    [
        ("pending", c.pending),
        ("running", c.running),
        ("completed", c.completed),
        ("failed", c.failed),
        ("cancelled", c.cancelled),
        ("dead_letter", c.dead_letter),
    ]
}

fn text(spool: &Spool) -> crate::Result<String> {
    let stats = spool.stats()?;
    let activity = spool.activity();
    let storage = spool.metrics();
    let mut out = String::with_capacity(4096);
    header(
        &mut out,
        "jobspool_jobs",
        "gauge",
        "Jobs by queue and status.",
    );
    for (q, qs) in &stats.queues {
        for (status, n) in statuses(&qs.counts) {
            let _ = writeln!(
                out,
                "jobspool_jobs{{queue=\"{}\",status=\"{status}\"}} {n}",
                label(q)
            );
        }
    }
    header(
        &mut out,
        "jobspool_jobs_delayed",
        "gauge",
        "Pending jobs not due yet, by queue (also counted as pending).",
    );
    for (q, qs) in &stats.queues {
        let _ = writeln!(
            out,
            "jobspool_jobs_delayed{{queue=\"{}\"}} {}",
            label(q),
            qs.counts.delayed
        );
    }
    header(
        &mut out,
        "jobspool_queue_paused",
        "gauge",
        "1 when the queue is paused.",
    );
    for (q, qs) in &stats.queues {
        let _ = writeln!(
            out,
            "jobspool_queue_paused{{queue=\"{}\"}} {}",
            label(q),
            u8::from(qs.paused)
        );
    }
    header(
        &mut out,
        "jobspool_events_total",
        "counter",
        "Events committed since this process opened the queue, by event name.",
    );
    for (name, n) in &activity.events {
        let _ = writeln!(
            out,
            "jobspool_events_total{{event=\"{}\"}} {n}",
            label(name)
        );
    }
    header(
        &mut out,
        "jobspool_lease_expiries_total",
        "counter",
        "Attempts failed because their lease expired.",
    );
    let _ = writeln!(
        out,
        "jobspool_lease_expiries_total {}",
        activity.lease_expiries
    );
    header(
        &mut out,
        "jobspool_handler_duration_seconds",
        "histogram",
        "How long the worker pool's handlers ran, by outcome.",
    );
    for (outcome, h) in &activity.handler_seconds {
        let outcome = label(outcome);
        for (bound, n) in HANDLER_BUCKETS.iter().zip(&h.buckets) {
            let _ = writeln!(
                out,
                "jobspool_handler_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "jobspool_handler_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {}\n\
             jobspool_handler_duration_seconds_sum{{outcome=\"{outcome}\"}} {}\n\
             jobspool_handler_duration_seconds_count{{outcome=\"{outcome}\"}} {}",
            h.count, h.sum, h.count
        );
    }
    for (name, kind, help, v) in [
        (
            "jobspool_storage_ops_total",
            "counter",
            "Operations applied by the store.",
            storage.ops,
        ),
        (
            "jobspool_storage_groups_total",
            "counter",
            "Groups of operations committed (one journal entry each).",
            storage.groups,
        ),
        (
            "jobspool_storage_fsyncs_total",
            "counter",
            "fsync/fdatasync calls made for durability.",
            storage.fsyncs,
        ),
        (
            "jobspool_storage_unapplied_groups",
            "gauge",
            "Committed groups durable in the journal, not yet in the store's files.",
            storage.unapplied_groups,
        ),
        (
            "jobspool_storage_journal_bytes_total",
            "counter",
            "Bytes appended to the journal (sled; 0 on PostgreSQL).",
            storage.journal_bytes,
        ),
        (
            "jobspool_storage_live_bytes",
            "gauge",
            "Bytes of the values the journal holds that are still current (sled; 0 on PostgreSQL).",
            storage.live_bytes,
        ),
        (
            "jobspool_last_event_seq",
            "gauge",
            "Sequence number of the newest event.",
            spool.last_seq(),
        ),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    Ok(out)
}
