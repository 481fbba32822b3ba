//! Throughput per minute from the event log, and its inline SVG chart.
//!
//! The overview reads at most [`MAX_EVENTS`] of the newest events (one bounded read), so
//! its cost does not grow with the log; when the window holds more events than that, the
//! chart starts at the oldest event read and says so.

use std::fmt::Write as _;

use crate::{Event, EventRecord};

use super::html::esc;

/// Minutes shown.
pub(crate) const MINUTES: usize = 30;
/// Events read at most for the chart.
pub(crate) const MAX_EVENTS: usize = 3000;

/// Counts per minute, oldest first; `[MINUTES]` buckets ending at the current minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Throughput {
    /// The start of the first bucket (ms since the epoch, a whole minute).
    pub start_ms: i64,
    /// `job.enqueued` per minute.
    pub enqueued: Vec<u64>,
    /// `job.completed` per minute.
    pub completed: Vec<u64>,
    /// `job.failed` (failed attempts) per minute.
    pub failed: Vec<u64>,
    /// Events before this time were not read (the window held more than the bound), when
    /// that cut into the window.
    pub partial_from_ms: Option<i64>,
}

/// Buckets `events` (oldest first) into the [`MINUTES`] minutes ending at `now_ms`.
/// `complete` says whether `events` reaches back past the window's start (or to the first
/// event of the log).
pub(crate) fn throughput(events: &[EventRecord], now_ms: i64, complete: bool) -> Throughput {
    let minute = 60_000;
    let end = now_ms.div_euclid(minute) * minute + minute;
    let start = end - minute * MINUTES as i64;
    let mut t = Throughput {
        start_ms: start,
        enqueued: vec![0; MINUTES],
        completed: vec![0; MINUTES],
        failed: vec![0; MINUTES],
        partial_from_ms: None,
    };
    let slot = |at: i64| -> Option<usize> {
        (start..end)
            .contains(&at)
            .then(|| usize::try_from((at - start) / minute).unwrap_or(0))
    };
    for r in events {
        let (series, at) = match &r.event {
            Event::JobEnqueued { enqueued_at, .. } => (&mut t.enqueued, enqueued_at),
            Event::JobCompleted { completed_at, .. } => (&mut t.completed, completed_at),
            Event::JobFailed { failed_at, .. } => (&mut t.failed, failed_at),
            _ => continue,
        };
        if let Some(i) = slot(at.timestamp_millis()) {
            series[i] += 1;
        }
    }
    if !complete {
        if let Some(first) = events.first().and_then(|r| event_time_ms(&r.event)) {
            if first > start {
                t.partial_from_ms = Some(first);
            }
        }
    }
    t
}

/// The time an event happened, in ms since the epoch.
pub(crate) fn event_time_ms(e: &Event) -> Option<i64> {
    let at = match e {
        Event::JobEnqueued { enqueued_at, .. } => enqueued_at,
        Event::JobStarted { started_at, .. } => started_at,
        Event::JobCompleted { completed_at, .. } => completed_at,
        Event::JobFailed { failed_at, .. } => failed_at,
        // Written when the attempt failed, but it carries only the next attempt's time.
        Event::JobRetrying { .. } => return None,
        Event::JobDeadLettered {
            dead_lettered_at, ..
        } => dead_lettered_at,
        Event::JobCancelled { cancelled_at, .. } => cancelled_at,
        Event::SchedulerJobTriggered { triggered_at, .. } => triggered_at,
        Event::JobReleased { released_at, .. } => released_at,
        Event::JobRedriven { redriven_at, .. } => redriven_at,
        Event::JobsPruned { pruned_at, .. } => pruned_at,
        Event::ScheduleChanged { at, .. } | Event::QueuePaused { at, .. } => at,
    };
    Some(at.timestamp_millis())
}

const W: u32 = 600;
const H: u32 = 160;
const PAD_L: u32 = 36;
const PAD_B: u32 = 18;

/// The chart: one line per series over the minutes, with a y scale and the first / last
/// minute on the x axis. Colours come from classes in the stylesheet (no inline style).
pub(crate) fn svg(t: &Throughput) -> String {
    let max = t
        .enqueued
        .iter()
        .chain(&t.completed)
        .chain(&t.failed)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = W - PAD_L - 4;
    let plot_h = H - PAD_B - 6;
    let x = |i: usize| -> f64 {
        f64::from(PAD_L) + f64::from(plot_w) * (i as f64) / ((MINUTES - 1) as f64)
    };
    let y = |v: u64| -> f64 { 6.0 + f64::from(plot_h) * (1.0 - (v as f64) / (max as f64)) };
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"Jobs per minute over the last {MINUTES} minutes\">"
    );
    // Axes and the y scale (0 and max).
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{PAD_L}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>\
         <line class=\"axis\" x1=\"{PAD_L}\" y1=\"6\" x2=\"{PAD_L}\" y2=\"{b}\"/>\
         <text class=\"tick\" x=\"{tx}\" y=\"{b}\" text-anchor=\"end\">0</text>\
         <text class=\"tick\" x=\"{tx}\" y=\"14\" text-anchor=\"end\">{max}</text>",
        b = 6 + plot_h,
        r = W - 4,
        tx = PAD_L - 4,
    );
    let first = chrono::DateTime::from_timestamp_millis(t.start_ms)
        .map(|d| d.format("%H:%M").to_string())
        .unwrap_or_default();
    let last = chrono::DateTime::from_timestamp_millis(t.start_ms + 60_000 * (MINUTES as i64 - 1))
        .map(|d| d.format("%H:%M").to_string())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<text class=\"tick\" x=\"{PAD_L}\" y=\"{H}\">{}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{H}\" text-anchor=\"end\">{}</text>",
        esc(&first),
        W - 4,
        esc(&last)
    );
    for (class, series) in [
        ("s-enq", &t.enqueued),
        ("s-done", &t.completed),
        ("s-fail", &t.failed),
    ] {
        let pts: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"{class}\" fill=\"none\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn rec(seq: u64, e: Event) -> EventRecord {
        EventRecord { seq, event: e }
    }

    #[test]
    fn buckets_by_minute_and_ignores_outside_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 30, 20).unwrap();
        let at = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 12, 1, 12, m, s).unwrap();
        let id = crate::JobId::from_bytes([1; 16]);
        let evs = vec![
            rec(
                1,
                Event::JobEnqueued {
                    job_id: id,
                    kind: "k".into(),
                    priority: 0,
                    enqueued_at: at(0, 0), // before the window (12:01..12:31)
                    scheduled_at: None,
                    tenant_id: None,
                },
            ),
            rec(
                2,
                Event::JobEnqueued {
                    job_id: id,
                    kind: "k".into(),
                    priority: 0,
                    enqueued_at: at(30, 1),
                    scheduled_at: None,
                    tenant_id: None,
                },
            ),
            rec(
                3,
                Event::JobCompleted {
                    job_id: id,
                    kind: "k".into(),
                    attempt: 1,
                    duration_ms: 3,
                    completed_at: at(29, 59),
                },
            ),
        ];
        let t = throughput(&evs, now.timestamp_millis(), true);
        assert_eq!(t.enqueued.iter().sum::<u64>(), 1);
        assert_eq!(t.enqueued[MINUTES - 1], 1);
        assert_eq!(t.completed[MINUTES - 2], 1);
        assert_eq!(t.partial_from_ms, None);
        // Cut short: the first event read is inside the window.
        let t = throughput(&evs[1..], now.timestamp_millis(), false);
        assert_eq!(t.partial_from_ms, Some(at(30, 1).timestamp_millis()));
        let s = svg(&t);
        assert!(s.starts_with("<svg") && s.contains("s-enq") && !s.contains("style"));
    }
}
