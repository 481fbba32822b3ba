//! `jobspool bench`: a standard workload with the machine's own limits measured in the same
//! run (raw fdatasync rate, raw sled insert rate; on PostgreSQL the server's commit rate,
//! see `pg.rs`), so results read as ratios to them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobspool::{Durability, Error};

mod compare;
mod pg;
mod probe;
mod report;
mod sled;
mod workload;
use serde_json::{json, Value};
use workload::Run;

pub(crate) struct BenchOptions {
    pub db: Option<PathBuf>,
    pub mode: String,
    pub jobs: u64,
    pub producers: u64,
    pub workers: u64,
    pub payload_bytes: usize,
    pub durability: String,
    pub rate: Option<u64>,
    /// Jobs the pool claims ahead of its workers; `None`: the pool's default.
    pub prefetch: Option<usize>,
    /// Burn-down: start the clock once the backlog is applied (the older variant).
    pub settled: bool,
    /// Write the run as a picture to this `.svg` or `.html` file.
    pub report: Option<PathBuf>,
    /// Also run the workload on this PostgreSQL database and print both side by side.
    pub compare: Option<String>,
    /// Soak: run maintenance with this retention (all kinds) and sample RSS and disk use.
    pub retention_secs: Option<u64>,
    /// PostgreSQL: the schema to run in (`--schema`); default a schema of the run's own.
    pub schema: Option<String>,
    /// PostgreSQL burn-down: worker processes draining the backlog at once.
    pub processes: u64,
    pub json: bool,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0))
}

/// Payload: the enqueue time in microseconds, then filler up to `size`.
fn payload(size: usize) -> Vec<u8> {
    let mut p = now_us().to_be_bytes().to_vec();
    p.resize(size.max(8), b'x');
    p
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn progress(total: u64, json: bool, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_message(what.to_owned());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} {per_sec}")
    {
        pb.set_style(style);
    }
    pb
}

/// One backend's result: its summary (the `--json` object), the run behind it, and the
/// limits measured beside it.
struct Outcome {
    pub backend: &'static str,
    pub summary: Value,
    pub run: Run,
    /// Every limit measured in the same run: (what, per second).
    pub limits: Vec<(String, f64)>,
    /// The limit the enqueue rate is compared to.
    pub enqueue_limit: (String, f64),
    /// The limit the processing rate is compared to.
    pub processed_limit: (String, f64),
    /// What the run prints without `--json`.
    pub text: Vec<String>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How a burn-down ran, in words (empty for the other modes).
fn variant_line(opts: &BenchOptions) -> String {
    if opts.mode != "burn-down" {
        return String::new();
    }
    let prefetch = opts
        .prefetch
        .map_or("the pool's default prefetch".to_owned(), |n| {
            format!("prefetch {n}")
        });
    if opts.settled {
        format!(
            "  variant: settled (clock starts once the backlog is applied; {} workers, {prefetch})",
            opts.workers
        )
    } else {
        format!(
            "  variant: default (pool of {} workers, {prefetch}, started right after the \
             enqueue; clock from its start to all completed plus one durable flush)",
            opts.workers
        )
    }
}

/// The workload's settings, as every summary starts.
fn workload_json(opts: &BenchOptions) -> Value {
    json!({
        "mode": opts.mode,
        "jobs": opts.jobs,
        "durability": opts.durability,
        "producers": opts.producers,
        "workers": opts.workers,
        "payloadBytes": opts.payload_bytes,
    })
}

/// The summary fields every backend shares.
fn common_summary(opts: &BenchOptions, r: &Run) -> Value {
    let (p50, p99) = (
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
    );
    let mut out = workload_json(opts);
    out["prefetch"] = json!(opts.prefetch);
    out["enqueuePerSec"] = json!(r.enqueue_per_sec.round());
    out["processedPerSec"] = json!(r.processed_per_sec.round());
    out["latencyP50Ms"] = json!(p50);
    out["latencyP99Ms"] = json!(p99);
    out["latencyOf"] = json!(r.latency_of);
    if opts.mode == "burn-down" {
        out["variant"] = json!(if opts.settled {
            workload::SETTLED_VARIANT
        } else {
            workload::DEFAULT_VARIANT
        });
    }
    out
}

fn parse_durability(s: &str) -> Result<Durability, Error> {
    match s {
        "immediate" => Ok(Durability::Immediate),
        "buffered" => Ok(Durability::Buffered {
            max_delay: Duration::from_millis(10),
        }),
        other => Err(Error::InvalidArgument(format!(
            "--durability {other:?}: use immediate or buffered"
        ))),
    }
}

/// Checks the options that do not depend on the backend.
fn check(opts: &BenchOptions, pg_url: Option<&String>) -> Result<(), Error> {
    if !matches!(
        opts.mode.as_str(),
        "burn-down" | "steady" | "enqueue" | "fill" | "open" | "drain"
    ) {
        return Err(Error::InvalidArgument(format!(
            "--mode {:?}: use burn-down, steady, enqueue, fill, open or drain",
            opts.mode
        )));
    }
    let workload = matches!(opts.mode.as_str(), "burn-down" | "steady" | "enqueue");
    if let Some(path) = &opts.report {
        report::check_path(path)?;
        if !workload {
            return Err(Error::InvalidArgument(format!(
                "--report draws burn-down, steady or enqueue, not --mode {}",
                opts.mode
            )));
        }
    }
    if opts.settled && opts.mode != "burn-down" {
        return Err(Error::InvalidArgument(format!(
            "--settled is for --mode burn-down, not {}",
            opts.mode
        )));
    }
    if let Some(url) = &opts.compare {
        if !pg::is_url(url) {
            return Err(Error::InvalidArgument(
                "--compare takes a PostgreSQL URL (postgres://user@host/db); the sled side \
                 runs in --db or a temporary directory"
                    .into(),
            ));
        }
        if pg_url.is_some() || !workload || opts.processes > 1 {
            return Err(Error::InvalidArgument(
                "--compare runs burn-down, steady or enqueue in one process on both backends: \
                 give --db a directory (or none) and no --processes"
                    .into(),
            ));
        }
    }
    if pg_url.is_none() && (opts.mode == "drain" || opts.processes > 1) {
        return Err(Error::InvalidArgument(
            "--mode drain and --processes need a PostgreSQL --db (postgres://...): a sled \
             database is held by one process"
                .into(),
        ));
    }
    Ok(())
}

pub(crate) fn run(opts: &BenchOptions) -> Result<(), Error> {
    let durability = parse_durability(&opts.durability)?;
    let pg_url = pg::url(opts);
    check(opts, pg_url.as_ref())?;
    if pg_url.is_none() && matches!(opts.mode.as_str(), "fill" | "open") {
        return sled::fill_or_open(opts, durability);
    }
    if opts.jobs == 0
        || opts.producers == 0
        || opts.workers == 0
        || opts.payload_bytes > 1024 * 1024
    {
        return Err(Error::InvalidArgument(
            "--jobs, --producers and --workers must be positive; --payload-bytes at most 1 MiB"
                .into(),
        ));
    }
    let outcomes = if let Some(url) = &opts.compare {
        let sled = sled::run(opts, durability)?;
        let pg = pg::run(opts, durability, url)?;
        sled.into_iter().chain(pg).collect()
    } else if let Some(url) = pg_url {
        match pg::run(opts, durability, &url)? {
            Some(o) => vec![o],
            // drain prints its own line.
            None => return Ok(()),
        }
    } else {
        sled::run(opts, durability)?.into_iter().collect::<Vec<_>>()
    };
    let summary = if opts.compare.is_some() {
        compare::summary(opts, &outcomes)
    } else {
        outcomes.first().map_or(Value::Null, |o| o.summary.clone())
    };
    if opts.json {
        println!("{summary}");
    } else if opts.compare.is_some() {
        print!("{}", compare::table(opts, &outcomes));
    } else {
        for line in outcomes.iter().flat_map(|o| &o.text) {
            println!("{line}");
        }
    }
    if let Some(path) = &opts.report {
        report::write(path, opts, &outcomes, &summary)?;
        if !opts.json {
            println!("  report: {}", path.display());
        }
    }
    Ok(())
}

/// The same retention for every kind (a soak).
fn retention(secs: u64) -> jobspool::Retention {
    let keep = Duration::from_secs(secs);
    jobspool::Retention {
        completed: keep,
        cancelled: keep,
        failed: keep,
        dead_letter: keep,
        events: keep,
    }
}

/// Whether `p` is a file name ending in `.ext` (any case).
fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
