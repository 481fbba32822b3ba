//! The workload on a sled database, with the disk's raw fdatasync rates and sled's raw
//! insert rate measured first in the same run; and the sled-only modes `fill` and `open`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jobspool::{Durability, Error, Spool};
use serde_json::json;

use super::probe::{current_rss, dir_bytes, fsync_rate, io_err, peak_rss, sled_rate};
use super::workload::{batch_enqueue, burn_down, enqueue_only, steady};
use super::{common_summary, percentile, retention, round2, variant_line, BenchOptions, Outcome};

/// Runs the workload on a sled database (`--db`, or a directory of this run's own that is
/// removed afterwards), with the disk's fsync rates and sled's insert rate measured first.
pub(super) fn run(opts: &BenchOptions, durability: Durability) -> Result<Option<Outcome>, Error> {
    let (base, owned) = match &opts.db {
        Some(p) => (p.clone(), false),
        None => (
            PathBuf::from(format!("jobspool-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&base).map_err(|e| io_err("creating the bench directory", e))?;
    let db_path = base.join("db");
    let fsync = fsync_rate(&base, Duration::from_secs(1), false)?;
    let fsync_in_place = fsync_rate(&base, Duration::from_secs(1), true)?;
    let sled_ips = sled_rate(&base, opts.payload_bytes + 160, Duration::from_secs(1))?;
    let mut builder = Spool::builder().durability(durability).scheduler(false);
    builder = match opts.retention_secs {
        Some(secs) => builder.maintenance(true).retention(retention(secs)),
        None => builder.maintenance(false),
    };
    let spool = builder.open(&db_path)?;
    // Every CLI process holding a database serves its control socket.
    let _socket = jobspool::control::serve(&spool)?;
    let result = match opts.mode.as_str() {
        "burn-down" => burn_down(&spool, opts),
        "steady" => steady(&spool, opts),
        _ => enqueue_only(&spool, opts),
    };
    let db_bytes = dir_bytes(&db_path);
    let metrics = spool.metrics();
    // (Readers see only durable changes: the flush makes the last ones count.)
    let stored = spool.flush().and_then(|()| spool.stats()).map(|s| {
        let t = s.total;
        t.pending + t.running + t.completed + t.failed + t.cancelled + t.dead_letter
    });
    spool.close()?;
    let stored = stored?;
    if owned {
        let _ = std::fs::remove_dir_all(&base);
    }
    let mut r = result?;
    r.latencies_us.sort_unstable();
    let (p50, p99) = (
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
    );
    let mut out = common_summary(opts, &r);
    for (k, v) in [
        ("backend", json!("sled")),
        ("fsyncPerSec", json!(fsync.round())),
        ("fsyncInPlacePerSec", json!(fsync_in_place.round())),
        ("sledInsertPerSec", json!(sled_ips.round())),
        ("enqueueVsFsync", json!(round2(r.enqueue_per_sec / fsync))),
        (
            "enqueueVsFsyncInPlace",
            json!(round2(r.enqueue_per_sec / fsync_in_place)),
        ),
        (
            "processedVsSledInsert",
            json!(round2(r.processed_per_sec / sled_ips)),
        ),
        ("fsyncs", json!(metrics.fsyncs)),
        ("writerGroups", json!(metrics.groups)),
        ("dbBytes", json!(db_bytes)),
        ("journalBytes", json!(metrics.journal_bytes)),
        (
            "journalBytesPerJob",
            json!(per(metrics.journal_bytes, opts.jobs)),
        ),
        ("liveBytes", json!(metrics.live_bytes)),
        ("storedJobs", json!(stored)),
        (
            "liveBytesPerStoredJob",
            json!(per(metrics.live_bytes, stored)),
        ),
        ("peakRssBytes", json!(peak_rss())),
    ] {
        out[k] = v;
    }
    let mut text = vec![format!(
        "mode {} | sled | {} jobs | durability {} | producers {} | workers {} | payload {} B",
        opts.mode, opts.jobs, opts.durability, opts.producers, opts.workers, opts.payload_bytes
    )];
    let variant = variant_line(opts);
    if !variant.is_empty() {
        text.push(variant);
    }
    text.push(format!(
        "  machine: fdatasync {fsync:.0}/s appending, {fsync_in_place:.0}/s in place; \
         sled insert {sled_ips:.0}/s"
    ));
    if r.enqueue_per_sec > 0.0 {
        text.push(format!(
            "  enqueue:   {:>10.0} jobs/s  ({:.2}x appending fsync rate, {:.2}x in place)",
            r.enqueue_per_sec,
            r.enqueue_per_sec / fsync,
            r.enqueue_per_sec / fsync_in_place
        ));
    }
    if r.processed_per_sec > 0.0 {
        text.push(format!(
            "  processed: {:>10.0} jobs/s  ({:.2}x sled insert rate)",
            r.processed_per_sec,
            r.processed_per_sec / sled_ips
        ));
    }
    if !r.latencies_us.is_empty() {
        text.push(format!(
            "  latency ({}): p50 {p50:.3} ms, p99 {p99:.3} ms",
            r.latency_of
        ));
    }
    text.push(format!(
        "  fsyncs {} in {} writer groups; db {} bytes; peak RSS {} bytes",
        metrics.fsyncs,
        metrics.groups,
        db_bytes,
        peak_rss()
    ));
    text.push(format!(
        "  journal: {} bytes appended, {:.0} a job; live values {} bytes, {:.0} for each of \
         the {} jobs stored",
        metrics.journal_bytes,
        per(metrics.journal_bytes, opts.jobs),
        metrics.live_bytes,
        per(metrics.live_bytes, stored),
        stored
    ));
    Ok(Some(Outcome {
        backend: "sled",
        summary: out,
        run: r,
        limits: vec![
            ("fdatasync/s appending".into(), fsync),
            ("fdatasync/s in place".into(), fsync_in_place),
            ("sled inserts/s".into(), sled_ips),
        ],
        enqueue_limit: ("fdatasync/s in place".into(), fsync_in_place),
        processed_limit: ("sled inserts/s".into(), sled_ips),
        text,
    }))
}

/// `fill`: batch-enqueue `--jobs` into `--db` and keep it. `open`: time opening `--db`
/// (crash recovery and index rebuild included) in this fresh process, and report its RSS.
pub(super) fn fill_or_open(opts: &BenchOptions, durability: Durability) -> Result<(), Error> {
    let Some(db) = &opts.db else {
        return Err(Error::InvalidArgument(format!(
            "--mode {} needs --db",
            opts.mode
        )));
    };
    let start = Instant::now();
    let spool = Spool::builder()
        .durability(durability)
        .maintenance(false)
        .scheduler(false)
        .open(db)?;
    let open_ms = start.elapsed().as_secs_f64() * 1000.0;
    let rss_after_open = current_rss();
    // Every CLI process holding a database serves its control socket.
    let _socket = jobspool::control::serve(&spool)?;
    let mut out = json!({ "mode": opts.mode, "db": db.display().to_string() });
    if opts.mode == "fill" {
        let (rate, _) = batch_enqueue(&spool, opts)?;
        out["jobs"] = json!(opts.jobs);
        out["enqueuePerSec"] = json!(rate.round());
        out["logicalBytes"] = json!(opts.jobs * (opts.payload_bytes as u64 + 16 + 4 + 7));
    } else {
        out["openMs"] = json!((open_ms * 10.0).round() / 10.0);
        out["rssAfterOpenBytes"] = json!(rss_after_open);
    }
    // Readers see only durable changes: under `Buffered` the last batches show after a flush.
    spool.flush()?;
    let stats = spool.stats()?.total;
    out["pending"] = json!(stats.pending);
    let metrics = spool.metrics();
    out["liveBytes"] = json!(metrics.live_bytes);
    if opts.mode == "fill" {
        out["journalBytes"] = json!(metrics.journal_bytes);
    }
    spool.close()?;
    out["dbBytes"] = json!(dir_bytes(db));
    out["peakRssBytes"] = json!(peak_rss());
    if opts.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(())
}

/// `bytes` a job, to one decimal (0 without jobs).
fn per(bytes: u64, jobs: u64) -> f64 {
    if jobs == 0 {
        return 0.0;
    }
    (bytes as f64 / jobs as f64 * 10.0).round() / 10.0
}
