//! End to end in one process: open a spool, enqueue jobs, run them with a worker pool
//! (one succeeds, one retries then succeeds, one fails for good), and print what happened.
//!
//! `cargo run --release --example quickstart`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobspool::{Backoff, JobError, JobStatus, NewJob, Spool, WorkerPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let spool = Spool::open(dir.path().join("queue"))?;
    let events = spool.subscribe();

    let fast = Backoff {
        initial: std::time::Duration::from_millis(50),
        multiplier: 2.0,
        max: std::time::Duration::from_millis(200),
        jitter: 0.0,
    };
    let hello = spool.enqueue(NewJob::new("greet", br#"{"name":"world"}"#.to_vec()))?;
    let flaky = spool.enqueue(NewJob::new("flaky", Vec::new()).backoff(fast))?;
    let bad = spool.enqueue(NewJob::new("reject", b"not json".to_vec()))?;

    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let pool = WorkerPool::builder(&spool)
        .concurrency(2)
        .handler("greet", |ctx| {
            let v: serde_json::Value = serde_json::from_slice(ctx.payload())?;
            Ok(Some(
                format!("hello, {}", v["name"].as_str().unwrap_or("?")).into_bytes(),
            ))
        })
        .handler("flaky", move |_ctx| {
            if t.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(JobError::retry("first try always fails"))
            } else {
                Ok(None)
            }
        })
        .handler("reject", |_ctx| {
            Err(JobError::permanent("payload is not JSON"))
        })
        .start()?;

    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let s = spool.stats()?.total;
        if s.pending + s.running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pool.shutdown(Duration::from_secs(5));

    for id in [hello.id, flaky.id, bad.id] {
        let j = spool.get(id)?;
        let result = j
            .result
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        println!(
            "{:<7} {:<10} attempts={} result={result:?} lastError={:?}",
            j.kind,
            j.status.as_str(),
            j.attempts,
            j.last_error
        );
    }
    println!("\nevent log:");
    for ev in events.try_iter() {
        println!("  {}", jobspool::json::event(&ev));
    }
    let s = spool.stats()?.total;
    println!(
        "\nstats: completed={} failed={} deadLetter={}",
        s.completed, s.failed, s.dead_letter
    );
    assert_eq!(spool.get(hello.id)?.status, JobStatus::Completed);
    assert_eq!(spool.get(flaky.id)?.status, JobStatus::Completed);
    assert_eq!(spool.get(bad.id)?.status, JobStatus::Failed);
    spool.close()?;
    Ok(())
}
