#![no_main]
//! Job options as a caller (CLI, control socket) passes them: accepted or rejected with a
//! typed input error, never a panic.
use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    kind: String,
    payload: Vec<u8>,
    queue: Option<String>,
    priority: i32,
    delay_ms: Option<u64>,
    run_at_ms: Option<i64>,
    max_attempts: Option<u32>,
    timeout_ms: Option<u64>,
    dedupe_key: Option<String>,
    metadata: BTreeMap<String, String>,
    backoff: Option<(u64, f64, u64, f64)>,
    now_ms: i64,
}

fuzz_target!(|i: Input| {
    let mut job = jobspool::NewJob::new(i.kind, i.payload);
    job.queue = i.queue;
    job.priority = i.priority;
    job.delay = i.delay_ms.map(Duration::from_millis);
    job.run_at = i.run_at_ms.and_then(chrono::DateTime::from_timestamp_millis);
    job.max_attempts = i.max_attempts;
    job.timeout = i.timeout_ms.map(std::time::Duration::from_millis);
    job.dedupe_key = i.dedupe_key;
    job.metadata = i.metadata;
    job.backoff = i.backoff.map(|(initial_ms, multiplier, max_ms, jitter)| jobspool::Backoff {
        initial: std::time::Duration::from_millis(initial_ms),
        multiplier,
        max: std::time::Duration::from_millis(max_ms),
        jitter,
    });
    if let Err(e) = jobspool::fuzzing::validate_job(&job, i.now_ms) {
        assert!(e.is_invalid_input(), "{e}");
    }
});
