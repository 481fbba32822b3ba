//! `jobspool bench --db postgres://...`: the same workloads on a PostgreSQL database, with
//! the server's own limit measured in the same run (the commit rate of a trivial one-row
//! `INSERT` transaction from one client), so results read as ratios to it.
//!
//! burn-down, steady and enqueue run in a schema of their own (`jobspool_bench_<pid>`),
//! dropped at the end; fill and open use the schema `jobspool_bench`, kept between runs
//! (fill it, then time opening it); `--schema` names another (never dropped).
//!
//! `--processes N` drains a burn-down's backlog with N worker processes: this binary again,
//! in `--mode drain`, which works off the schema's bench jobs and exits once none is left.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobspool::{Durability, Error, Spool};
use serde_json::json;

use super::probe::{io_err, peak_rss};
use super::workload::{batch_enqueue, burn_down, enqueue_only, steady, Run, Sampler};
use super::{common_summary, percentile, retention, round2, variant_line, BenchOptions, Outcome};

/// The schema of `fill` and `open`, kept between runs.
const KEPT_SCHEMA: &str = "jobspool_bench";

/// How long the commit-rate probe runs.
const PROBE: Duration = Duration::from_secs(2);

fn storage(what: &str, e: &postgres::Error) -> Error {
    // The client's own message is terse ("error connecting to server"): add its cause.
    let cause = std::error::Error::source(e).map_or(String::new(), |c| format!(": {c}"));
    Error::Storage {
        context: format!("bench on PostgreSQL: {what}: {e}{cause}"),
        source: None,
    }
}

/// The URL in `--db`, when it names a PostgreSQL database rather than a directory.
pub(super) fn url(opts: &BenchOptions) -> Option<String> {
    let db = opts.db.as_ref()?.to_str()?;
    is_url(db).then(|| db.to_owned())
}

/// Whether `s` is a `postgres://` (or `postgresql://`) URL.
pub(super) fn is_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn connect(url: &str) -> Result<postgres::Client, Error> {
    postgres::Client::connect(url, postgres::NoTls).map_err(|e| storage("connecting", &e))
}

/// Commits per second of `clients` clients, each running `INSERT INTO t VALUES ($1)` as a
/// transaction of its own on a connection of its own, for at least `min`: with
/// `synchronous_commit` on, each commit waits for the WAL flush (what
/// `Durability::Immediate` gets); off, it does not (`Buffered`). With several clients, the
/// server flushes the commits that meet in one WAL flush, so this is the machine's own limit
/// for that many concurrent writers of the simplest transaction. The table is made in
/// `schema` (created if missing) and dropped afterwards.
fn commit_rate(
    url: &str,
    schema: &str,
    synchronous: bool,
    min: Duration,
    clients: usize,
) -> Result<f64, Error> {
    let mut c = connect(url)?;
    let table = format!("{schema}.commit_probe_{}", std::process::id());
    c.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; DROP TABLE IF EXISTS {table}; \
         CREATE TABLE {table} (id bigint)"
    ))
    .map_err(|e| storage("creating the probe table", &e))?;
    let probe = |mut c: postgres::Client| -> Result<u64, Error> {
        c.batch_execute(&format!(
            "SET synchronous_commit = {}",
            if synchronous { "on" } else { "off" }
        ))
        .map_err(|e| storage("setting up the probe", &e))?;
        let insert = c
            .prepare(&format!("INSERT INTO {table} VALUES ($1)"))
            .map_err(|e| storage("preparing the probe insert", &e))?;
        let start = Instant::now();
        let mut n: i64 = 0;
        while start.elapsed() < min {
            c.execute(&insert, &[&n])
                .map_err(|e| storage("probe insert", &e))?;
            n += 1;
        }
        Ok(n.unsigned_abs())
    };
    let others: Vec<postgres::Client> = (1..clients.max(1))
        .map(|_| connect(url))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let total = std::thread::scope(|s| {
        let handles: Vec<_> = others
            .into_iter()
            .map(|c| s.spawn(move || probe(c)))
            .collect();
        let mut total = probe(connect(url)?)?;
        for h in handles {
            total += h.join().map_err(|_| Error::Storage {
                context: "a probe thread panicked".into(),
                source: None,
            })??;
        }
        Ok::<u64, Error>(total)
    })?;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    c.batch_execute(&format!("DROP TABLE {table}"))
        .map_err(|e| storage("dropping the probe table", &e))?;
    Ok(rate)
}

/// Bytes of `schema`'s tables, indexes and TOAST.
fn schema_bytes(url: &str, schema: &str) -> Result<u64, Error> {
    let mut c = connect(url)?;
    let row = c
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema],
        )
        .map_err(|e| storage("measuring the schema", &e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

fn drop_schema(url: &str, schema: &str) -> Result<(), Error> {
    connect(url)?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .map_err(|e| storage("dropping the bench schema", &e))
}

/// A schema name the SQL here may quote as is (the spool checks the same rule).
fn check_schema(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "--schema {name:?}: use 1 to 48 lower-case letters, digits and '_', not starting \
             with a digit"
        )))
    }
}

/// Runs `opts.mode` on the database at `url`; `None` for drain (which prints its own line).
pub(super) fn run(
    opts: &BenchOptions,
    durability: Durability,
    url: &str,
) -> Result<Option<Outcome>, Error> {
    let kept = matches!(opts.mode.as_str(), "fill" | "open");
    // (schema, whether this run made it and drops it)
    let (schema, owned) = match &opts.schema {
        Some(s) => (s.clone(), false),
        None if kept => (KEPT_SCHEMA.to_owned(), false),
        None if opts.mode == "drain" => {
            return Err(Error::InvalidArgument(
                "--mode drain needs --schema (the schema of the run it helps)".into(),
            ))
        }
        None => (format!("jobspool_bench_{}", std::process::id()), true),
    };
    check_schema(&schema)?;
    if opts.processes > 1 && opts.mode != "burn-down" {
        return Err(Error::InvalidArgument(format!(
            "--processes is for --mode burn-down, not {}",
            opts.mode
        )));
    }
    if opts.mode == "drain" {
        return drain(opts, durability, url, &schema).map(|()| None);
    }
    let immediate = matches!(durability, Durability::Immediate);
    // The server's limit, before the workload (so its table is gone when that runs).
    let commits = commit_rate(url, &schema, immediate, PROBE, 1)?;
    // With concurrent producers, also the limit at their concurrency.
    let concurrent = if opts.producers > 1 && matches!(opts.mode.as_str(), "enqueue" | "steady") {
        Some(commit_rate(
            url,
            &schema,
            immediate,
            PROBE,
            opts.producers as usize,
        )?)
    } else {
        None
    };
    let mut builder = Spool::builder()
        .schema(&schema)
        .durability(durability)
        .scheduler(false);
    builder = match opts.retention_secs {
        Some(secs) => builder.maintenance(true).retention(retention(secs)),
        None => builder.maintenance(false),
    };
    let opened = Instant::now();
    let spool = builder.open(url);
    let open_ms = opened.elapsed().as_secs_f64() * 1000.0;
    let spool = match spool {
        Ok(s) => s,
        Err(e) => {
            if owned {
                let _ = drop_schema(url, &schema);
            }
            return Err(e);
        }
    };
    let result = match opts.mode.as_str() {
        "burn-down" if opts.processes > 1 => burn_down_processes(&spool, opts, url, &schema),
        "burn-down" => burn_down(&spool, opts),
        "steady" => steady(&spool, opts),
        "enqueue" => enqueue_only(&spool, opts),
        "fill" => batch_enqueue(&spool, opts).map(|(rate, _)| Run::enqueue_only(rate)),
        // open: the time is measured above.
        _ => Ok(Run::enqueue_only(0.0)),
    };
    let pending = spool.stats().map(|s| s.total.pending);
    let db_bytes = schema_bytes(url, &schema).unwrap_or(0);
    let closed = spool.close();
    if owned {
        drop_schema(url, &schema)?;
    }
    let mut r = result?;
    closed?;
    r.latencies_us.sort_unstable();
    let (p50, p99) = (
        percentile(&r.latencies_us, 0.5),
        percentile(&r.latencies_us, 0.99),
    );
    let commit_kind = if immediate {
        "serverCommitPerSec"
    } else {
        "serverAsyncCommitPerSec"
    };
    let mut out = common_summary(opts, &r);
    for (k, v) in [
        ("backend", json!("postgres")),
        ("schema", json!(schema)),
        ("processes", json!(opts.processes)),
        (commit_kind, json!(commits.round())),
        (
            "enqueueVsServerCommit",
            json!(round2(r.enqueue_per_sec / commits)),
        ),
        (
            "processedVsServerCommit",
            json!(round2(r.processed_per_sec / commits)),
        ),
        ("openMs", json!((open_ms * 10.0).round() / 10.0)),
        ("pending", json!(pending?)),
        ("dbBytes", json!(db_bytes)),
        ("peakRssBytes", json!(peak_rss())),
    ] {
        out[k] = v;
    }
    if let Some(cc) = concurrent {
        out["serverCommitClients"] = json!(opts.producers);
        out["serverCommitPerSecAtClients"] = json!(cc.round());
        out["enqueueVsServerCommitAtClients"] = json!(round2(r.enqueue_per_sec / cc));
    }
    let mut text = vec![format!(
        "mode {} | postgres schema {schema} | {} jobs | durability {} | producers {} | \
         workers {} x {} processes | payload {} B",
        opts.mode,
        opts.jobs,
        opts.durability,
        opts.producers,
        opts.workers,
        opts.processes,
        opts.payload_bytes
    )];
    let variant = variant_line(opts);
    if !variant.is_empty() {
        text.push(variant);
    }
    let sync = if immediate { "on" } else { "off" };
    text.push(format!(
        "  server: {commits:.0} one-row INSERT commits/s from one client (synchronous_commit \
         {sync})"
    ));
    if let Some(cc) = concurrent {
        text.push(format!(
            "  server: {cc:.0} commits/s from {} clients at once ({:.2}x one client)",
            opts.producers,
            cc / commits
        ));
    }
    if r.enqueue_per_sec > 0.0 {
        text.push(format!(
            "  enqueue:   {:>10.0} jobs/s  ({:.2}x the server's commit rate{})",
            r.enqueue_per_sec,
            r.enqueue_per_sec / commits,
            concurrent.map_or(String::new(), |cc| format!(
                "; {:.2}x what {} clients commit",
                r.enqueue_per_sec / cc,
                opts.producers
            ))
        ));
    }
    if r.processed_per_sec > 0.0 {
        text.push(format!(
            "  processed: {:>10.0} jobs/s  ({:.2}x the server's commit rate)",
            r.processed_per_sec,
            r.processed_per_sec / commits
        ));
    }
    if !r.latencies_us.is_empty() {
        text.push(format!(
            "  latency ({}): p50 {p50:.3} ms, p99 {p99:.3} ms",
            r.latency_of
        ));
    }
    text.push(format!(
        "  open {open_ms:.1} ms; schema {db_bytes} bytes; peak RSS {} bytes",
        peak_rss()
    ));
    let limit = (
        format!("server commits/s (synchronous_commit {sync})"),
        commits,
    );
    Ok(Some(Outcome {
        backend: "postgres",
        summary: out,
        run: r,
        limits: vec![limit.clone()],
        enqueue_limit: limit.clone(),
        processed_limit: limit,
        text,
    }))
}

/// Burn-down with `opts.processes` worker processes: batch-enqueue the backlog here, then
/// start the drainers and time until every job is completed (process start-up included).
fn burn_down_processes(
    spool: &Spool,
    opts: &BenchOptions,
    url: &str,
    schema: &str,
) -> Result<Run, Error> {
    let (enqueue_per_sec, calls) = batch_enqueue(spool, opts)?;
    let exe = std::env::current_exe().map_err(|e| io_err("finding this binary", e))?;
    let pb = super::progress(opts.jobs, opts.json, "burn-down");
    let start = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut sampler = Sampler::new(start, 0);
    let result = (|| {
        for _ in 0..opts.processes {
            let child = Command::new(&exe)
                .args(["bench", "--mode", "drain", "--durability", &opts.durability])
                .args(["--workers", &opts.workers.to_string()])
                .args(
                    opts.prefetch
                        .map(|n| ["--prefetch".to_owned(), n.to_string()])
                        .into_iter()
                        .flatten(),
                )
                // The URL in the environment, not the command line (it may hold a password).
                .env("JOBSPOOL_DB", url)
                .env("JOBSPOOL_SCHEMA", schema)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| io_err("starting a drain process", e))?;
            children.push(child);
        }
        loop {
            let done = spool.stats()?.total.completed;
            pb.set_position(done);
            sampler.observe(done);
            if done >= opts.jobs {
                return Ok((opts.jobs as f64 / start.elapsed().as_secs_f64(), done));
            }
            for c in &mut children {
                if let Some(status) = c.try_wait().map_err(|e| io_err("waiting", e))? {
                    if !status.success() {
                        return Err(Error::Storage {
                            context: format!("a drain process failed ({status})"),
                            source: None,
                        });
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })();
    pb.finish_and_clear();
    for c in &mut children {
        if result.is_err() {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
    let (processed_per_sec, done) = result?;
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec,
        latencies_us: calls,
        latency_of: "enqueue_batch call (1000 jobs)",
        samples: sampler.finish(done),
    })
}

/// `--mode drain`: run `--workers` no-op bench handlers on `schema` until nothing is left
/// to claim or running there, then print how many this process ran.
fn drain(
    opts: &BenchOptions,
    durability: Durability,
    url: &str,
    schema: &str,
) -> Result<(), Error> {
    let spool = Spool::builder()
        .schema(schema)
        .durability(durability)
        .maintenance(false)
        .scheduler(false)
        .create_if_missing(false)
        .open(url)?;
    let ran = Arc::new(AtomicU64::new(0));
    let pool = super::workload::pool(&spool, opts, None, ran.clone())?;
    let any = spool.claim_request(1);
    while spool.has_work(&any) {
        std::thread::sleep(Duration::from_millis(20));
    }
    pool.shutdown(Duration::from_secs(5));
    spool.close()?;
    println!(
        "{}",
        json!({ "mode": "drain", "schema": schema, "processed": ran.load(Ordering::Relaxed) })
    );
    Ok(())
}
