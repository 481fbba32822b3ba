//! The workloads themselves (burn-down, steady, enqueue), the same on every backend: each
//! returns a [`Run`] with its rates, its latencies and the completions sampled every
//! [`SAMPLE_EVERY`] while it ran.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobspool::{Error, NewJob, Spool, WorkerPool};
use parking_lot::Mutex;

use super::probe::{current_rss, dir_bytes};
use super::{now_us, payload, progress, BenchOptions};

/// How often the completions are sampled for the throughput series.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Which burn-down ran (printed and in the summary).
pub(super) const DEFAULT_VARIANT: &str = "default";
/// See [`DEFAULT_VARIANT`].
pub(super) const SETTLED_VARIANT: &str = "settled";

/// What a workload measured.
pub(super) struct Run {
    pub enqueue_per_sec: f64,
    pub processed_per_sec: f64,
    /// Microseconds; what they measure is `latency_of`.
    pub latencies_us: Vec<u64>,
    pub latency_of: &'static str,
    /// (seconds since the clock started, jobs completed by then), every [`SAMPLE_EVERY`].
    pub samples: Vec<(f64, u64)>,
}

impl Run {
    /// A run that measured nothing but (maybe) an enqueue rate.
    pub fn enqueue_only(enqueue_per_sec: f64) -> Self {
        Run {
            enqueue_per_sec,
            processed_per_sec: 0.0,
            latencies_us: Vec::new(),
            latency_of: "",
            samples: Vec::new(),
        }
    }
}

/// Records the completed count every [`SAMPLE_EVERY`] from a polling loop.
pub(super) struct Sampler {
    start: Instant,
    base: u64,
    next: Duration,
    points: Vec<(f64, u64)>,
}

impl Sampler {
    /// Starts at `start`, counting completions above `base`.
    pub fn new(start: Instant, base: u64) -> Self {
        Sampler {
            start,
            base,
            next: SAMPLE_EVERY,
            points: vec![(0.0, 0)],
        }
    }

    /// Takes `count` (completions so far, `base` included) when a sample is due.
    pub fn observe(&mut self, count: u64) {
        let at = self.start.elapsed();
        if at >= self.next {
            self.points
                .push((at.as_secs_f64(), count.saturating_sub(self.base)));
            // The next sample one period after this one (a late poll does not bunch them).
            self.next = at + SAMPLE_EVERY;
        }
    }

    /// The samples, with a last one at `count` now.
    pub fn finish(mut self, count: u64) -> Vec<(f64, u64)> {
        self.points.push((
            self.start.elapsed().as_secs_f64(),
            count.saturating_sub(self.base),
        ));
        self.points
    }
}

/// Enqueues `--jobs` in batches of 1000; returns the rate and each call's duration (µs).
pub(super) fn batch_enqueue(spool: &Spool, opts: &BenchOptions) -> Result<(f64, Vec<u64>), Error> {
    let pb = progress(opts.jobs, opts.json, "enqueue");
    let mut calls = Vec::with_capacity(usize::try_from(opts.jobs / 1000 + 1).unwrap_or(0));
    let start = Instant::now();
    let mut left = opts.jobs;
    while left > 0 {
        let n = left.min(1000);
        let jobs = (0..n)
            .map(|_| NewJob::new("bench", payload(opts.payload_bytes)))
            .collect();
        let call = Instant::now();
        spool.enqueue_batch(jobs)?;
        calls.push(u64::try_from(call.elapsed().as_micros()).unwrap_or(u64::MAX));
        left -= n;
        pb.inc(n);
    }
    pb.finish_and_clear();
    Ok((opts.jobs as f64 / start.elapsed().as_secs_f64(), calls))
}

/// A pool of `--workers` no-op bench handlers, otherwise with the pool's defaults
/// (`--prefetch` only when given).
pub(super) fn pool(
    spool: &Spool,
    opts: &BenchOptions,
    lat: Option<Arc<Mutex<Vec<u64>>>>,
    done: Arc<AtomicU64>,
) -> Result<WorkerPool, Error> {
    let mut builder =
        WorkerPool::builder(spool).concurrency(usize::try_from(opts.workers).unwrap_or(1));
    if let Some(n) = opts.prefetch {
        builder = builder.prefetch(n);
    }
    builder
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

/// Polls `stats()` until `n` jobs are completed, sampling them.
fn wait_completed(
    spool: &Spool,
    n: u64,
    pb: &indicatif::ProgressBar,
    sampler: &mut Sampler,
) -> Result<u64, Error> {
    loop {
        let c = spool.stats()?.total.completed;
        pb.set_position(c);
        sampler.observe(c);
        if c >= n {
            return Ok(c);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Burn-down: batch-enqueue the backlog, then drain it with a pool. The default variant
/// starts the pool at once (the applier may still be moving the backlog into sled) and
/// stops the clock when `stats()` counts every job completed and one flush (a durable
/// write after all of them) has returned. `--settled` first waits for the backlog to be
/// applied and does not count the flush.
pub(super) fn burn_down(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let before = spool.stats()?.total.completed;
    let (enqueue_per_sec, calls) = batch_enqueue(spool, opts)?;
    if opts.settled {
        // A backlog that was enqueued earlier: let the applier finish moving it into sled.
        while spool.metrics().unapplied_groups > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let pb = progress(opts.jobs, opts.json, "burn-down");
    let start = Instant::now();
    let mut sampler = Sampler::new(start, before);
    let p = pool(spool, opts, None, Arc::new(AtomicU64::new(0)))?;
    let end = wait_completed(spool, before.saturating_add(opts.jobs), &pb, &mut sampler)?;
    if !opts.settled {
        // The barrier: every completion counted above is durable once this returns.
        spool.flush()?;
    }
    let processed_per_sec = opts.jobs as f64 / start.elapsed().as_secs_f64();
    let samples = sampler.finish(end);
    pb.finish_and_clear();
    p.shutdown(Duration::from_secs(5));
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec,
        latencies_us: calls,
        latency_of: "enqueue_batch call (1000 jobs)",
        samples,
    })
}

/// Producers enqueue one job at a time (at `rate` jobs/s in total if given) while the
/// workers run; latency is enqueue call to handler start.
pub(super) fn steady(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let lat = Arc::new(Mutex::new(Vec::with_capacity(
        usize::try_from(opts.jobs).unwrap_or(0),
    )));
    let done = Arc::new(AtomicU64::new(0));
    let p = pool(spool, opts, Some(lat.clone()), done.clone())?;
    let pb = progress(opts.jobs, opts.json, "steady");
    let start = Instant::now();
    // With retention on (a soak), sample RSS and disk use every 10 s on stderr.
    let sampling = Arc::new(AtomicBool::new(opts.retention_secs.is_some()));
    let sampler = {
        let (sampling, done, db) = (sampling.clone(), done.clone(), spool.path().to_path_buf());
        let spool = spool.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while sampling.load(Ordering::Relaxed) {
                eprintln!(
                    "soak t={:>5.0}s processed={} rssBytes={} dbBytes={} liveBytes={}",
                    t0.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed),
                    current_rss(),
                    dir_bytes(&db),
                    spool.metrics().live_bytes
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
    // The producers run on threads of their own; this thread samples meanwhile.
    let waited = std::thread::scope(|s| {
        let mut producing = Some(s.spawn(|| producers(spool, opts, true)));
        let mut enq = None;
        let mut series = Sampler::new(start, 0);
        // Counted by the handler: pruning may remove completed jobs from the stats meanwhile.
        while done.load(Ordering::Relaxed) < opts.jobs {
            if let Some(h) = producing.take() {
                if h.is_finished() {
                    // A producer that failed ends the wait: its jobs will never run.
                    enq = Some(join_producers(h)?);
                } else {
                    producing = Some(h);
                }
            }
            let d = done.load(Ordering::Relaxed);
            pb.set_position(d);
            series.observe(d);
            std::thread::sleep(Duration::from_millis(2));
        }
        let processed_per_sec = opts.jobs as f64 / start.elapsed().as_secs_f64();
        let samples = series.finish(done.load(Ordering::Relaxed));
        let enq = match (enq, producing) {
            (Some(e), _) => e,
            (None, Some(h)) => join_producers(h)?,
            (None, None) => (0.0, Vec::new()),
        };
        Ok::<_, Error>((enq.0, processed_per_sec, samples))
    });
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    pb.finish_and_clear();
    p.shutdown(Duration::from_secs(5));
    let (enqueue_per_sec, processed_per_sec, samples) = waited?;
    let latencies_us = std::mem::take(&mut *lat.lock());
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec,
        latencies_us,
        latency_of: "enqueue to handler start",
        samples,
    })
}

fn join_producers(
    h: std::thread::ScopedJoinHandle<'_, Result<(f64, Vec<u64>), Error>>,
) -> Result<(f64, Vec<u64>), Error> {
    h.join().map_err(|_| Error::Storage {
        context: "a producer thread panicked".into(),
        source: None,
    })?
}

pub(super) fn enqueue_only(spool: &Spool, opts: &BenchOptions) -> Result<Run, Error> {
    let start = Instant::now();
    let (enqueue_per_sec, latencies_us) = producers(spool, opts, false)?;
    let samples = vec![(0.0, 0), (start.elapsed().as_secs_f64(), 0)];
    Ok(Run {
        enqueue_per_sec,
        processed_per_sec: 0.0,
        latencies_us,
        latency_of: "enqueue call",
        samples,
    })
}

/// Runs the producers; returns the enqueue rate and (when not `steady`) per-call latencies.
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
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(lat)) => all.extend(lat),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(Error::Storage {
                    context: "a producer thread panicked".into(),
                    source: None,
                });
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok((opts.jobs as f64 / start.elapsed().as_secs_f64(), all))
}
