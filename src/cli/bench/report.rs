//! `--report FILE.svg|FILE.html`: the run as a picture. Top: throughput over time (jobs
//! completed per sampling interval, as jobs/s) with the limits measured in the same run as
//! labelled horizontal lines; bottom: the latency distribution as a percentile curve. The
//! `.html` file is the same SVG inline plus the run's summary as a table. Hand-written
//! SVG; every text taken from the run is escaped.

use std::fmt::Write as _;
use std::path::Path;

use jobspool::Error;
use serde_json::Value;

use super::probe::io_err;
use super::{has_ext, BenchOptions, Outcome};

mod html;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 760.0;
/// The plot area's left and right edges (both panels).
const LEFT: f64 = 90.0;
const RIGHT: f64 = 870.0;
/// The throughput panel's top and bottom.
const TP_TOP: f64 = 70.0;
const TP_BOTTOM: f64 = 360.0;
/// The latency panel's top and bottom.
const LAT_TOP: f64 = 450.0;
const LAT_BOTTOM: f64 = 700.0;
/// At most this many points per drawn curve (longer series are merged into wider steps).
const MAX_POINTS: usize = 1000;

/// Checks that `path` names a file this module can write (`.svg`, `.html` or `.htm`).
pub(super) fn check_path(path: &Path) -> Result<(), Error> {
    if ["svg", "html", "htm"].iter().any(|e| has_ext(path, e)) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "--report {}: name a .svg file (the picture) or a .html file (the picture and the \
             summary table)",
            path.display()
        )))
    }
}

/// Writes the report of `outcomes` to `path` (SVG or HTML by its extension).
pub(super) fn write(
    path: &Path,
    opts: &BenchOptions,
    outcomes: &[Outcome],
    summary: &Value,
) -> Result<(), Error> {
    check_path(path)?;
    let picture = svg(opts, outcomes);
    let text = if has_ext(path, "svg") {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{picture}")
    } else {
        html::page(&title(opts, outcomes), &picture, outcomes, summary)
    };
    std::fs::write(path, text).map_err(|e| io_err(&format!("writing {}", path.display()), e))
}

/// Escapes `s` for XML/HTML text and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn color(backend: &str) -> &'static str {
    match backend {
        "postgres" => "#c0392b",
        _ => "#1f5fa8",
    }
}

/// (seconds, jobs/s) per interval between samples, merged to at most [`MAX_POINTS`].
fn rates(samples: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let step = samples.len().saturating_sub(1).div_ceil(MAX_POINTS).max(1);
    let picked: Vec<(f64, u64)> = samples
        .iter()
        .step_by(step)
        .chain(samples.last().filter(|_| (samples.len() - 1) % step != 0))
        .copied()
        .collect();
    picked
        .windows(2)
        .filter_map(|w| {
            let (t0, c0) = w[0];
            let (t1, c1) = w[1];
            let dt = t1 - t0;
            (dt > 0.0).then(|| (t1, c1.saturating_sub(c0) as f64 / dt))
        })
        .collect()
}

/// A round step for about `n` ticks up to `max`.
fn tick_step(max: f64, n: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{:.0}", x.round());
        // Thousands separators.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Axes, grid and tick labels of a panel with `y` from 0 to `y_max` and `x` from 0 to
/// `x_max`.
#[allow(clippy::too_many_arguments)]
fn axes(
    out: &mut String,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
    x_label: &str,
    y_label: &str,
) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{}" height="{}" fill="#fff" stroke="#888"/>"##,
        RIGHT - LEFT,
        bottom - top
    );
    let ys = tick_step(y_max, 5.0);
    let mut y = 0.0;
    while y <= y_max * 1.0001 {
        let py = bottom - y / y_max * (bottom - top);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            LEFT - 6.0,
            py + 4.0,
            fmt_num(y)
        );
        y += ys;
    }
    let xs = tick_step(x_max, 8.0);
    let mut x = 0.0;
    while x <= x_max * 1.0001 {
        let px = LEFT + x / x_max * (RIGHT - LEFT);
        let _ = writeln!(
            out,
            r##"<text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            bottom + 15.0,
            fmt_num(x)
        );
        x += xs;
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"##,
        (LEFT + RIGHT) / 2.0,
        bottom + 32.0,
        esc(x_label)
    );
    let _ = writeln!(
        out,
        r##"<text x="16" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {:.1})">{}</text>"##,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        esc(y_label)
    );
}

fn throughput_panel(out: &mut String, outcomes: &[Outcome]) {
    let series: Vec<(&Outcome, Vec<(f64, f64)>)> = outcomes
        .iter()
        .map(|o| (o, rates(&o.run.samples)))
        .collect();
    let x_max = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .fold(0.0, f64::max)
        .max(0.1);
    let top_rate = series
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let top_limit = outcomes
        .iter()
        .flat_map(|o| o.limits.iter().map(|l| l.1))
        .fold(0.0, f64::max);
    let y_max = (top_rate.max(top_limit) * 1.1).max(1.0);
    let _ = writeln!(out, r#"<g id="throughput">"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">Throughput: jobs completed per {} ms, as jobs/s</text>"#,
        TP_TOP - 10.0,
        super::workload::SAMPLE_EVERY.as_millis()
    );
    axes(
        out,
        TP_TOP,
        TP_BOTTOM,
        x_max,
        y_max,
        "seconds since the clock started",
        "jobs/s",
    );
    let scale = |t: f64, v: f64| {
        (
            LEFT + t / x_max * (RIGHT - LEFT),
            TP_BOTTOM - v / y_max * (TP_BOTTOM - TP_TOP),
        )
    };
    for (o, s) in &series {
        // Steps: each interval's rate held from its start to its end.
        let mut pts = String::new();
        let mut prev_t = 0.0;
        for &(t, v) in s {
            let (x0, y) = scale(prev_t, v);
            let (x1, _) = scale(t, v);
            let _ = write!(pts, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
            prev_t = t;
        }
        let _ = writeln!(
            out,
            r#"<polyline class="series" data-backend="{}" fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            esc(o.backend),
            color(o.backend),
            pts.trim_end()
        );
    }
    let prefix = outcomes.len() > 1;
    for (i, o) in outcomes.iter().enumerate() {
        for (j, (what, per_sec)) in o.limits.iter().enumerate() {
            let (_, y) = scale(0.0, *per_sec);
            let label = if prefix {
                format!("{}: {what} {}", o.backend, fmt_num(per_sec.round()))
            } else {
                format!("{what} {}", fmt_num(per_sec.round()))
            };
            let _ = writeln!(
                out,
                r#"<line class="limit" data-backend="{}" x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{}" stroke-dasharray="6 4"/>"#,
                esc(o.backend),
                color(o.backend)
            );
            // Labels of lines close together are staggered along the line.
            let _ = writeln!(
                out,
                r#"<text class="limit-label" x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="{}">{}</text>"#,
                RIGHT - 6.0 - (i * 3 + j) as f64 * 200.0 % (RIGHT - LEFT - 220.0),
                y - 4.0,
                color(o.backend),
                esc(&label)
            );
        }
    }
    legend(out, outcomes, TP_TOP + 16.0);
    if top_rate == 0.0 {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">no jobs processed in this mode</text>"#,
            (LEFT + RIGHT) / 2.0,
            (TP_TOP + TP_BOTTOM) / 2.0
        );
    }
    let _ = writeln!(out, "</g>");
}

fn legend(out: &mut String, outcomes: &[Outcome], y: f64) {
    for (i, o) in outcomes.iter().enumerate() {
        let x = LEFT + 10.0 + i as f64 * 110.0;
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            x + 20.0,
            color(o.backend),
            x + 25.0,
            y + 4.0,
            esc(o.backend)
        );
    }
}

/// The value at percentile `p` (0..=1) of sorted `v`, in milliseconds.
fn at(v: &[u64], p: f64) -> f64 {
    super::percentile(v, p)
}

fn latency_panel(out: &mut String, outcomes: &[Outcome]) {
    let what = outcomes
        .iter()
        .map(|o| o.run.latency_of)
        .find(|s| !s.is_empty())
        .unwrap_or("none");
    let _ = writeln!(out, r#"<g id="latency">"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">Latency percentiles: {}</text>"#,
        LAT_TOP - 10.0,
        esc(what)
    );
    // Up to p99.9 (the maximum is one sample: it would flatten the curve).
    let y_max = outcomes
        .iter()
        .map(|o| at(&o.run.latencies_us, 0.999))
        .fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    axes(
        out,
        LAT_TOP,
        LAT_BOTTOM,
        100.0,
        y_max,
        "percentile",
        "milliseconds",
    );
    let mut any = false;
    for o in outcomes {
        let v = &o.run.latencies_us;
        if v.is_empty() {
            continue;
        }
        any = true;
        let mut pts = String::new();
        for i in 0..=999 {
            let p = f64::from(i) / 1000.0;
            let x = LEFT + p * (RIGHT - LEFT);
            let y = LAT_BOTTOM - at(v, p).min(y_max) / y_max * (LAT_BOTTOM - LAT_TOP);
            let _ = write!(pts, "{x:.1},{y:.1} ");
        }
        let _ = writeln!(
            out,
            r#"<polyline class="latency" data-backend="{}" fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            esc(o.backend),
            color(o.backend),
            pts.trim_end()
        );
        for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
            let ms = at(v, p);
            let x = LEFT + p * (RIGHT - LEFT);
            let y = LAT_BOTTOM - ms.min(y_max) / y_max * (LAT_BOTTOM - LAT_TOP);
            let _ = writeln!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{} {name} {} ms</text>"#,
                color(o.backend),
                x - 5.0,
                y - 5.0,
                esc(o.backend),
                fmt_num(ms)
            );
        }
    }
    if !any {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">no latencies measured in this mode</text>"#,
            (LEFT + RIGHT) / 2.0,
            (LAT_TOP + LAT_BOTTOM) / 2.0
        );
    }
    let _ = writeln!(out, "</g>");
}

fn title(opts: &BenchOptions, outcomes: &[Outcome]) -> String {
    let backends: Vec<&str> = outcomes.iter().map(|o| o.backend).collect();
    let mut t = format!(
        "jobspool bench --mode {}: {} jobs, {} workers, durability {}, on {}",
        opts.mode,
        opts.jobs,
        opts.workers,
        opts.durability,
        backends.join(" and ")
    );
    if opts.mode == "burn-down" {
        t.push_str(if opts.settled {
            " (settled variant)"
        } else {
            " (default variant)"
        });
    }
    t
}

/// The picture, an `<svg>` element.
fn svg(opts: &BenchOptions, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
    );
    let t = title(opts, outcomes);
    let _ = writeln!(out, "<title>{}</title>", esc(&t));
    let _ = writeln!(
        out,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#fafafa"/><text x="{LEFT}" y="28" font-size="15">{}</text>"##,
        esc(&t)
    );
    throughput_panel(&mut out, outcomes);
    latency_panel(&mut out, outcomes);
    let _ = writeln!(out, "</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(esc("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&#39;\u{fffd}");
    }

    #[test]
    fn rates_are_per_interval_and_merged_when_long() {
        let r = rates(&[(0.0, 0), (0.1, 10), (0.2, 30)]);
        assert_eq!(r.len(), 2);
        assert!((r[0].1 - 100.0).abs() < 1e-6 && (r[1].1 - 200.0).abs() < 1e-6);
        let long: Vec<(f64, u64)> = (0..=5000u32)
            .map(|i| (f64::from(i) / 10.0, 7 * u64::from(i)))
            .collect();
        let r = rates(&long);
        assert!(r.len() <= MAX_POINTS + 1, "{}", r.len());
        assert!(r.iter().all(|p| (p.1 - 70.0).abs() < 1e-6));
        assert!((r.last().unwrap().0 - 500.0).abs() < 1e-9);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0, 5.0), 20.0);
        assert_eq!(tick_step(73_000.0, 5.0), 20_000.0);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(12.5), "12.5");
    }
}
