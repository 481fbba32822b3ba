//! `jobspool bench`: a standard workload with the machine's own limits measured in the same
//! run (raw fdatasync rate, raw sled insert rate; on PostgreSQL the server's commit rate,
//! see `pg.rs`), so results read as ratios to them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jobspool::{Durability, Error, NewJob, Spool, WorkerPool};

mod pg;
mod probe;
use parking_lot::Mutex;
use probe::{current_rss, dir_bytes, fsync_rate, io_err, peak_rss, sled_rate};
use serde_json::json;

pub(crate) struct BenchOptions {
    pub db: Option<PathBuf>,
    pub mode: String,
    pub jobs: u64,
    pub producers: u64,
    pub workers: u64,
    pub payload_bytes: usize,
    pub durability: String,
    pub rate: Option<u64>,
    pub prefetch: usize,
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

struct Run {
    enqueue_per_sec: f64,
    processed_per_sec: f64,
    latencies_us: Vec<u64>,
}

pub(crate) fn run(opts: &BenchOptions) -> Result<(), Error> {
    let durability = match opts.durability.as_str() {
        "immediate" => Durability::Immediate,
        "buffered" => Durability::Buffered {
            max_delay: Duration::from_millis(10),
        },
        other => {
            return Err(Error::InvalidArgument(format!(
                "--durability {other:?}: use immediate or buffered"
            )))
        }
    };
    if !matches!(
        opts.mode.as_str(),
        "burn-down" | "steady" | "enqueue" | "fill" | "open" | "drain"
    ) {
        return Err(Error::InvalidArgument(format!(
            "--mode {:?}: use burn-down, steady, enqueue, fill, open or drain",
            opts.mode
        )));
    }
    let pg_url = pg::url(opts);
    if pg_url.is_none() && (opts.mode == "drain" || opts.processes > 1) {
        return Err(Error::InvalidArgument(
            "--mode drain and --processes need a PostgreSQL --db (postgres://...): a sled \
             database is held by one process"
                .into(),
        ));
    }
    if pg_url.is_none() && matches!(opts.mode.as_str(), "fill" | "open") {
        return fill_or_open(opts, durability);
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
    if let Some(url) = pg_url {
        return pg::run(opts, durability, &url);
    }
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
        Some(secs) => {
            let keep = Duration::from_secs(secs);
            builder.maintenance(true).retention(jobspool::Retention {
                completed: keep,
                cancelled: keep,
                failed: keep,
                dead_letter: keep,
                events: keep,
            })
        }
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
    spool.close()?;
    if owned {
        let _ = std::fs::remove_dir_all(&base);
    }
    let mut r = result?;
    r.latencies_us.sort_unstable();
    let (p50, p99) = (
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
    );
    let out = json!({
        "mode": opts.mode,
        "jobs": opts.jobs,
        "durability": opts.durability,
        "producers": opts.producers,
        "workers": opts.workers,
        "payloadBytes": opts.payload_bytes,
        "prefetch": opts.prefetch,
        "enqueuePerSec": r.enqueue_per_sec.round(),
        "processedPerSec": r.processed_per_sec.round(),
        "latencyP50Ms": p50,
        "latencyP99Ms": p99,
        "fsyncPerSec": fsync.round(),
        "fsyncInPlacePerSec": fsync_in_place.round(),
        "sledInsertPerSec": sled_ips.round(),
        "enqueueVsFsync": (r.enqueue_per_sec / fsync * 100.0).round() / 100.0,
        "enqueueVsFsyncInPlace": (r.enqueue_per_sec / fsync_in_place * 100.0).round() / 100.0,
        "processedVsSledInsert": (r.processed_per_sec / sled_ips * 100.0).round() / 100.0,
        "fsyncs": metrics.fsyncs,
        "writerGroups": metrics.groups,
        "dbBytes": db_bytes,
        "peakRssBytes": peak_rss(),
    });
    if opts.json {
        println!("{out}");
    } else {
        println!(
            "mode {} | {} jobs | durability {} | producers {} | workers {} | payload {} B",
            opts.mode, opts.jobs, opts.durability, opts.producers, opts.workers, opts.payload_bytes
        );
        println!(
            "  machine: fdatasync {fsync:.0}/s appending, {fsync_in_place:.0}/s in place; \
             sled insert {sled_ips:.0}/s"
        );
        if r.enqueue_per_sec > 0.0 {
            println!(
                "  enqueue:   {:>10.0} jobs/s  ({:.2}x appending fsync rate, {:.2}x in place)",
                r.enqueue_per_sec,
                r.enqueue_per_sec / fsync,
                r.enqueue_per_sec / fsync_in_place
            );
        }
        if r.processed_per_sec > 0.0 {
            println!(
                "  processed: {:>10.0} jobs/s  ({:.2}x sled insert rate)",
                r.processed_per_sec,
                r.processed_per_sec / sled_ips
            );
        }
        if !r.latencies_us.is_empty() {
            println!("  latency:   p50 {p50:.3} ms, p99 {p99:.3} ms");
        }
        println!(
            "  fsyncs {} in {} writer groups; db {} bytes; peak RSS {} bytes",
            metrics.fsyncs,
            metrics.groups,
            db_bytes,
            peak_rss()
        );
    }
    Ok(())
}

fn batch_enqueue(spool: &Spool, opts: &BenchOptions) -> Result<f64, Error> {
    let pb = progress(opts.jobs, opts.json, "enqueue");
    let start = Instant::now();
    let mut left = opts.jobs;
    while left > 0 {
        let n = left.min(1000);
        let jobs = (0..n)
            .map(|_| NewJob::new("bench", payload(opts.payload_bytes)))
            .collect();
        spool.enqueue_batch(jobs)?;
        left -= n;
        pb.inc(n);
    }
    pb.finish_and_clear();
    Ok(opts.jobs as f64 / start.elapsed().as_secs_f64())
}

fn pool(
    spool: &Spool,
    opts: &BenchOptions,
    lat: Option<Arc<Mutex<Vec<u64>>>>,
    done: Arc<AtomicU64>,
) -> Result<WorkerPool, Error> {
    WorkerPool::builder(spool)
        .concurrency(usize::try_from(opts.workers).unwrap_or(1))
        .prefetch(opts.prefetch)
        .handler("bench", move |ctx| {
            if let Some(lat) = &lat {
                let sent = ctx
                    .payload()
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                lat.lock().push(now_us().saturating_sub(sent));
            }
            done.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        })
        .start()
}

fn wait_completed(spool: &Spool, n: u64, pb: &indicatif::ProgressBar) -> Result<(), Error> {
    loop {
        let c = spool.stats()?.total.completed;
        pb.set_position(c);
        if c >= n {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn burn_down(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let enqueue_per_sec = batch_enqueue(spool, opts)?;
    // A backlog that was enqueued earlier: let the applier finish moving it into sled.
    while spool.metrics().unapplied_groups > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pb = progress(opts.jobs, opts.json, "burn-down");
    let start = Instant::now();
    let p = pool(spool, opts, None, Arc::new(AtomicU64::new(0)))?;
    wait_completed(spool, opts.jobs, &pb)?;
    let processed_per_sec = opts.jobs as f64 / start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    p.shutdown(Duration::from_secs(5));
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec,
        latencies_us: Vec::new(),
    })
}

/// Producers enqueue one job at a time (at `rate` jobs/s in total if given) while the
/// workers run; latency is enqueue call to handler start.
fn steady(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let lat = Arc::new(Mutex::new(Vec::with_capacity(
        usize::try_from(opts.jobs).unwrap_or(0),
    )));
    let done = Arc::new(AtomicU64::new(0));
    let p = pool(spool, opts, Some(lat.clone()), done.clone())?;
    let pb = progress(opts.jobs, opts.json, "steady");
    let start = Instant::now();
    // With retention on (a soak), sample RSS and disk use every 10 s on stderr.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(
        opts.retention_secs.is_some(),
    ));
    let sampler = {
        let (sampling, done, db) = (sampling.clone(), done.clone(), spool.path().to_path_buf());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                eprintln!(
                    "soak t={:>5.0}s processed={} rssBytes={} dbBytes={}",
                    t0.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed),
                    current_rss(),
                    dir_bytes(&db)
                );
                for _ in 0..100 {
                    if !sampling.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    let enq = producers(spool, opts, true)?;
    // Counted by the handler: pruning may remove completed jobs from the stats meanwhile.
    while done.load(Ordering::Relaxed) < opts.jobs {
        pb.set_position(done.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(2));
    }
    let processed_per_sec = opts.jobs as f64 / start.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    pb.finish_and_clear();
    p.shutdown(Duration::from_secs(5));
    let latencies_us = std::mem::take(&mut *lat.lock());
    Ok(Run {
        enqueue_per_sec: enq.0,
        processed_per_sec,
        latencies_us,
    })
}

/// `fill`: batch-enqueue `--jobs` into `--db` and keep it. `open`: time opening `--db`
/// (crash recovery and index rebuild included) in this fresh process, and report its RSS.
fn fill_or_open(opts: &BenchOptions, durability: Durability) -> Result<(), Error> {
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
        let rate = batch_enqueue(&spool, opts)?;
        out["jobs"] = json!(opts.jobs);
        out["enqueuePerSec"] = json!(rate.round());
        out["logicalBytes"] = json!(opts.jobs * (opts.payload_bytes as u64 + 16 + 4 + 7));
    } else {
        out["openMs"] = json!((open_ms * 10.0).round() / 10.0);
        out["rssAfterOpenBytes"] = json!(rss_after_open);
    }
    let stats = spool.stats()?.total;
    out["pending"] = json!(stats.pending);
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

fn enqueue_only(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let (enqueue_per_sec, latencies_us) = producers(spool, opts, false)?;
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec: 0.0,
        latencies_us,
    })
}

/// Runs the producers; returns the enqueue rate and (when not `paced_only`) per-call latencies.
fn producers(spool: &Spool, opts: &BenchOptions, steady: bool) -> Result<(f64, Vec<u64>), Error> {
    let per = opts.jobs / opts.producers;
    let extra = opts.jobs % opts.producers;
    let interval = opts
        .rate
        .map(|r| Duration::from_secs_f64(opts.producers as f64 / r.max(1) as f64));
    let start = Instant::now();
    let handles: Vec<_> = (0..opts.producers)
        .map(|i| {
            let spool = spool.clone();
            let n = per + u64::from(i < extra);
            let size = opts.payload_bytes;
            std::thread::spawn(move || -> Result<Vec<u64>, Error> {
                let mut lat = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                let t0 = Instant::now();
                for k in 0..n {
                    if let Some(iv) = interval {
                        let due = t0 + iv.mul_f64(k as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let s = Instant::now();
                    spool.enqueue(NewJob::new("bench", payload(size)))?;
                    if !steady {
                        lat.push(u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX));
                    }
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        let lat = h.join().map_err(|_| Error::Storage {
            context: "a producer thread panicked".into(),
            source: None,
        })??;
        all.extend(lat);
    }
    Ok((opts.jobs as f64 / start.elapsed().as_secs_f64(), all))
}
