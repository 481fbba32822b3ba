//! `--compare postgres://...`: the same workload on sled and on PostgreSQL in one run,
//! printed as one table (a column per backend) or, under `--json`, as one object.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::{round2, variant_line, workload_json, BenchOptions, Outcome};

/// The `--json` object of a comparison: the workload, then each backend's own summary
/// under its name.
pub(super) fn summary(opts: &BenchOptions, outcomes: &[Outcome]) -> Value {
    let mut out = workload_json(opts);
    out["backends"] = json!(outcomes.iter().map(|o| o.backend).collect::<Vec<_>>());
    for o in outcomes {
        out[o.backend] = o.summary.clone();
    }
    out
}

fn rate(x: f64) -> String {
    if x > 0.0 {
        format!("{x:.0}")
    } else {
        "-".into()
    }
}

fn ratio(x: f64, limit: f64) -> String {
    if x > 0.0 && limit > 0.0 {
        format!("{:.2}x", round2(x / limit))
    } else {
        "-".into()
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.3}"))
}

/// The table: a row per measure, a column per backend.
pub(super) fn table(opts: &BenchOptions, outcomes: &[Outcome]) -> String {
    let rows: Vec<(String, Vec<String>)> = vec![
        (
            String::new(),
            outcomes.iter().map(|o| o.backend.into()).collect(),
        ),
        (
            "enqueue jobs/s".into(),
            outcomes
                .iter()
                .map(|o| rate(o.run.enqueue_per_sec))
                .collect(),
        ),
        (
            "processed jobs/s".into(),
            outcomes
                .iter()
                .map(|o| rate(o.run.processed_per_sec))
                .collect(),
        ),
        (
            "latency p50 ms".into(),
            outcomes
                .iter()
                .map(|o| ms(&o.summary["latencyP50Ms"]))
                .collect(),
        ),
        (
            "latency p99 ms".into(),
            outcomes
                .iter()
                .map(|o| ms(&o.summary["latencyP99Ms"]))
                .collect(),
        ),
        (
            "enqueue limit/s".into(),
            outcomes.iter().map(|o| rate(o.enqueue_limit.1)).collect(),
        ),
        (
            "enqueue / limit".into(),
            outcomes
                .iter()
                .map(|o| ratio(o.run.enqueue_per_sec, o.enqueue_limit.1))
                .collect(),
        ),
        (
            "processing limit/s".into(),
            outcomes.iter().map(|o| rate(o.processed_limit.1)).collect(),
        ),
        (
            "processed / limit".into(),
            outcomes
                .iter()
                .map(|o| ratio(o.run.processed_per_sec, o.processed_limit.1))
                .collect(),
        ),
    ];
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let col_w: Vec<usize> = (0..outcomes.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.1.get(i).map(String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "mode {} | {} jobs | durability {} | producers {} | workers {} | payload {} B\n",
        opts.mode, opts.jobs, opts.durability, opts.producers, opts.workers, opts.payload_bytes
    );
    let variant = variant_line(opts);
    if !variant.is_empty() {
        out.push_str(&variant);
        out.push('\n');
    }
    for (label, cells) in &rows {
        let _ = write!(out, "  {label:<label_w$}");
        for (i, c) in cells.iter().enumerate() {
            let w = col_w.get(i).copied().unwrap_or(0);
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
    }
    for o in outcomes {
        let _ = writeln!(
            out,
            "  {}: enqueue limit = {}, processing limit = {}",
            o.backend, o.enqueue_limit.0, o.processed_limit.0
        );
    }
    if let Some(o) = outcomes.first().filter(|o| !o.run.latency_of.is_empty()) {
        let _ = writeln!(out, "  latency: {}", o.run.latency_of);
    }
    out
}
