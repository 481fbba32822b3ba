//! Criterion benchmarks of the hot paths: enqueue per durability mode, batch enqueue,
//! claim + complete, and draining a backlog with the worker pool (tuned, and with its
//! default settings). `cargo bench --bench queue`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jobspool::{Durability, NewJob, Spool};

fn open(durability: Durability) -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Spool::builder()
        .durability(durability)
        .maintenance(false)
        .open(dir.path().join("db"))
        .expect("open");
    (dir, spool)
}

fn payload() -> Vec<u8> {
    vec![b'x'; 100]
}

/// The durability modes compared.
fn modes() -> [(&'static str, Durability); 2] {
    [
        ("immediate", Durability::Immediate),
        (
            "buffered",
            Durability::Buffered {
                max_delay: Duration::from_millis(10),
            },
        ),
    ]
}

fn enqueue(c: &mut Criterion) {
    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    for (name, d) in modes() {
        let (_dir, spool) = open(d);
        g.bench_function(name, |b| {
            b.iter(|| {
                spool
                    .enqueue(NewJob::new("bench", payload()))
                    .expect("enqueue")
            })
        });
    }
    g.finish();

    // 16 producer threads, one job per call: group commit shares the fsyncs.
    let mut g = c.benchmark_group("enqueue_16_producers");
    g.throughput(Throughput::Elements(16 * 20));
    for (name, d) in modes() {
        let (_dir, spool) = open(d);
        g.bench_function(name, |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..16 {
                        s.spawn(|| {
                            for _ in 0..20 {
                                spool
                                    .enqueue(NewJob::new("bench", payload()))
                                    .expect("enqueue");
                            }
                        });
                    }
                });
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("enqueue_batch");
    g.throughput(Throughput::Elements(1000));
    let (_dir, spool) = open(Durability::Immediate);
    g.bench_function("immediate_1000", |b| {
        b.iter_batched(
            || {
                (0..1000)
                    .map(|_| NewJob::new("bench", payload()))
                    .collect::<Vec<_>>()
            },
            |jobs| spool.enqueue_batch(jobs).expect("batch"),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn claim_complete(c: &mut Criterion) {
    let mut g = c.benchmark_group("claim_complete");
    for batch in [1usize, 100] {
        g.throughput(Throughput::Elements(batch as u64));
        let (_dir, spool) = open(Durability::Buffered {
            max_delay: Duration::from_millis(10),
        });
        let req = spool.claim_request(batch);
        g.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    let jobs = (0..batch)
                        .map(|_| NewJob::new("bench", payload()))
                        .collect();
                    spool.enqueue_batch(jobs).expect("seed");
                },
                |()| {
                    for c in spool.claim(&req).expect("claim") {
                        spool.complete(c.lease, None).expect("complete");
                    }
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

/// End to end: 2,000 pre-enqueued no-op jobs drained by a 2-thread WorkerPool.
fn burn_down(c: &mut Criterion) {
    let mut g = c.benchmark_group("burn_down");
    g.throughput(Throughput::Elements(2000));
    g.sample_size(10);
    let (_dir, spool) = open(Durability::Immediate);
    g.bench_function("pool_2_workers_2000_jobs", |b| {
        b.iter_batched(
            || {
                let jobs = (0..2000).map(|_| NewJob::new("noop", payload())).collect();
                spool.enqueue_batch(jobs).expect("seed");
                spool.stats().expect("stats").total.completed
            },
            |before| {
                let pool = jobspool::WorkerPool::builder(&spool)
                    .concurrency(2)
                    .prefetch(512)
                    .handler("noop", |_| Ok(None))
                    .start()
                    .expect("pool");
                while spool.stats().expect("stats").total.completed < before + 2000 {
                    std::thread::sleep(Duration::from_micros(200));
                }
                pool.shutdown(Duration::from_secs(5));
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

/// Jobs in each backlog [`default_pool`] drains.
const BACKLOG: u64 = 10_000;

/// As users run it: a backlog of [`BACKLOG`] jobs enqueued with `enqueue_batch` (1000 per
/// call), drained at once by a `WorkerPool` with default settings but its concurrency;
/// timed from the pool's start until `stats()` counts every job completed.
fn default_pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("default_pool");
    g.throughput(Throughput::Elements(BACKLOG));
    g.sample_size(10);
    for workers in [32usize, 2] {
        let (_dir, spool) = open(Durability::Immediate);
        g.bench_function(format!("concurrency_{workers}_{BACKLOG}_jobs"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = spool.stats().expect("stats").total.completed;
                    for _ in 0..BACKLOG / 1000 {
                        let jobs = (0..1000).map(|_| NewJob::new("noop", payload())).collect();
                        spool.enqueue_batch(jobs).expect("seed");
                    }
                    let start = std::time::Instant::now();
                    let pool = jobspool::WorkerPool::builder(&spool)
                        .concurrency(workers)
                        .handler("noop", |_| Ok(None))
                        .start()
                        .expect("pool");
                    while spool.stats().expect("stats").total.completed < before + BACKLOG {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    total += start.elapsed();
                    pool.shutdown(Duration::from_secs(5));
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = enqueue, claim_complete, burn_down, default_pool
}
criterion_main!(benches);
