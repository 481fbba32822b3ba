//! The typed API: serde payloads tied to their job type, typed handlers, `?` over the common
//! error types in handlers, and payloads that do not decode failing at once.

mod common;

use common::{conformance, Store, TestBackend};
use std::time::{Duration, Instant};

use jobspool::{Job, JobError, JobId, JobStatus, NewJob, Spool, TypedJob, WorkerPool};
use serde::{Deserialize, Serialize};

conformance!(
    typed_job_round_trips_through_a_typed_handler,
    payload_that_does_not_decode_fails_permanently_without_retries,
    handler_errors_convert_with_the_question_mark
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Resize {
    url: String,
    width: u32,
}

impl TypedJob for Resize {
    const KIND: &'static str = "image.resize";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Resized {
    url: String,
    pixels: u64,
}

const DEADLINE: Duration = Duration::from_secs(20);

fn open(store: &Store) -> Spool {
    store.open(Spool::builder())
}

fn wait_status(spool: &Spool, id: JobId, status: JobStatus) -> Job {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let job = spool.get(id).unwrap();
        if job.status == status {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never became {status}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn typed_job_round_trips_through_a_typed_handler(b: TestBackend) {
    let store = b.store();
    let spool = open(&store);
    let want = Resize {
        url: "https://x/y.png".into(),
        width: 640,
    };
    let job = spool
        .enqueue(NewJob::typed(&want).unwrap().queue("images").priority(3))
        .unwrap();
    assert_eq!(job.kind, "image.resize");
    assert_eq!(job.queue, "images");
    let plain = spool.enqueue_typed(&want).unwrap();
    let pool = WorkerPool::builder(&spool)
        .queues(["images", "default"])
        .handle(|ctx, r: Resize| {
            assert_eq!(ctx.job().kind, Resize::KIND);
            Ok(Resized {
                url: r.url,
                pixels: u64::from(r.width) * 480,
            })
        })
        .start()
        .unwrap();
    for id in [job.id, plain.id] {
        let done = wait_status(&spool, id, JobStatus::Completed);
        let out: Resized = serde_json::from_slice(done.result.as_deref().unwrap()).unwrap();
        assert_eq!(
            out,
            Resized {
                url: want.url.clone(),
                pixels: 640 * 480
            }
        );
    }
    pool.shutdown(Duration::from_secs(5));
}

/// Regression: a payload that did not decode was retried (and dead-lettered after the
/// last attempt) although no retry can make it decode.
fn payload_that_does_not_decode_fails_permanently_without_retries(b: TestBackend) {
    let store = b.store();
    let spool = open(&store);
    let bad = spool
        .enqueue(NewJob::new(Resize::KIND, b"{not json".to_vec()).max_attempts(5))
        .unwrap();
    let wrong_shape = spool
        .enqueue(NewJob::new(Resize::KIND, br#"{"url": 7}"#.to_vec()).max_attempts(5))
        .unwrap();
    let pool = WorkerPool::builder(&spool)
        .handle(|_ctx, _r: Resize| Ok(()))
        .start()
        .unwrap();
    for id in [bad.id, wrong_shape.id] {
        let job = wait_status(&spool, id, JobStatus::Failed);
        assert_eq!(job.attempts, 1, "not retried");
        let err = job.last_error.unwrap();
        assert!(err.contains("does not decode as"), "{err}");
        assert!(err.contains("Resize"), "{err}");
    }
    pool.shutdown(Duration::from_secs(5));
}

#[derive(Debug)]
struct Flaky;

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("flaky upstream")
    }
}

impl std::error::Error for Flaky {}

fn with_anyhow(fail: bool) -> anyhow::Result<u32> {
    if fail {
        anyhow::bail!("anyhow says no");
    }
    Ok(1)
}

fn with_std(fail: bool) -> Result<u32, Flaky> {
    if fail {
        Err(Flaky)
    } else {
        Ok(1)
    }
}

/// `?` on `anyhow::Error`, a `std::error::Error` type, `String` and `&str` all compile in a
/// handler and retry the attempt; `JobError::permanent` stays the explicit way not to.
fn handler_errors_convert_with_the_question_mark(b: TestBackend) {
    let store = b.store();
    let spool = open(&store);
    let mk = |kind: &str| {
        spool
            .enqueue(NewJob::new(kind, Vec::new()).max_attempts(1))
            .unwrap()
            .id
    };
    let (a, s, st, perm) = (mk("anyhow"), mk("std"), mk("string"), mk("perm"));
    let pool = WorkerPool::builder(&spool)
        .handler("anyhow", |_| {
            with_anyhow(true)?;
            Ok(None)
        })
        .handler("std", |_| {
            with_std(true)?;
            Ok(None)
        })
        .handler("string", |_| {
            let r: Result<(), String> = Err("a string error".to_string());
            r?;
            Ok(None)
        })
        .handler("perm", |_| Err(JobError::permanent("never again")))
        .start()
        .unwrap();
    // One attempt each: a retryable error dead-letters, a permanent one fails.
    for (id, msg) in [
        (a, "anyhow says no"),
        (s, "flaky upstream"),
        (st, "a string error"),
    ] {
        let job = wait_status(&spool, id, JobStatus::DeadLetter);
        assert_eq!(job.last_error.as_deref(), Some(msg));
    }
    let job = wait_status(&spool, perm, JobStatus::Failed);
    assert_eq!(job.last_error.as_deref(), Some("never again"));
    pool.shutdown(Duration::from_secs(5));
}
