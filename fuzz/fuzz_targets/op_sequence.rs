#![no_main]
//! Operation sequences on a real spool (manual clock, restarts included): no panic, and the
//! stats counters always agree with the records.
use std::time::Duration;

use arbitrary::Arbitrary;
use jobspool::{Clock, JobStatus, ListQuery, ManualClock, NewJob, Retry, Spool};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Enqueue { kind: u8, queue: u8, priority: i8, delay_ms: u16, key: Option<u8>, attempts: u8 },
    Claim(u8),
    Complete(u8),
    Fail(u8, bool),
    Release(u8),
    Cancel(u8),
    Redrive(u8),
    Advance(u32),
    Expire,
    Prune,
    Restart,
}

fn open(dir: &std::path::Path, clock: &ManualClock) -> Spool {
    Spool::builder()
        .clock(clock.clone())
        .maintenance(false)
        .scheduler(false)
        .durability(jobspool::Durability::Buffered { max_delay: Duration::from_secs(60) })
        .open(dir)
        .expect("open")
}

fuzz_target!(|ops: Vec<Op>| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let clock = ManualClock::new(chrono::DateTime::from_timestamp_millis(1_800_000_000_000).expect("t0"));
    let mut spool = open(&path, &clock);
    let mut held = Vec::new();
    let mut ids = Vec::new();
    for op in ops.into_iter().take(200) {
        match op {
            Op::Enqueue { kind, queue, priority, delay_ms, key, attempts } => {
                let mut j = NewJob::new(format!("k{}", kind % 3), vec![kind])
                    .queue(format!("q{}", queue % 2))
                    .priority(i32::from(priority))
                    .max_attempts(u32::from(attempts % 4).max(1))
                    .delay(Duration::from_millis(u64::from(delay_ms)));
                if let Some(k) = key {
                    j = j.dedupe_key(format!("d{}", k % 3));
                }
                ids.push(spool.enqueue(j).expect("enqueue").id);
            }
            Op::Claim(n) => {
                let req = spool.claim_request(usize::from(n % 4) + 1);
                for c in spool.claim(&req).expect("claim") {
                    held.push((c.job.id, c.lease.token));
                }
            }
            Op::Complete(i) | Op::Fail(i, _) | Op::Release(i) if !held.is_empty() => {
                let (id, token) = held.remove(usize::from(i) % held.len());
                let r = match op {
                    Op::Complete(_) => spool.complete(jobspool::Lease::new(id, token), None),
                    Op::Fail(_, permanent) => {
                        spool.fail(jobspool::Lease::new(id, token), "x", if permanent { Retry::Never } else { Retry::Backoff })
                    }
                    _ => spool.release(jobspool::Lease::new(id, token)),
                };
                if let Err(e) = r {
                    assert_eq!(e.code(), "STALE_LEASE", "{e}");
                }
            }
            Op::Cancel(i) | Op::Redrive(i) if !ids.is_empty() => {
                let id = ids[usize::from(i) % ids.len()];
                let r = if matches!(op, Op::Cancel(_)) { spool.cancel(id).map(|_| ()) } else { spool.redrive(id).map(|_| ()) };
                if let Err(e) = r {
                    assert!(matches!(e.code().as_str(), "JOB_NOT_PENDING" | "INVALID_ARGUMENT" | "JOB_NOT_FOUND"), "{e}");
                }
            }
            Op::Advance(ms) => clock.advance_ms(i64::from(ms % 100_000_000)),
            Op::Expire => {
                spool.expire_leases().expect("expire");
            }
            Op::Prune => {
                spool.prune().expect("prune");
            }
            Op::Restart => {
                spool.close().expect("close");
                spool = open(&path, &clock);
                held.clear();
            }
            _ => {}
        }
    }
    let stats = spool.stats().expect("stats").total;
    let jobs = spool.list(&ListQuery { limit: Some(10_000), ..ListQuery::default() }).expect("list");
    for s in JobStatus::ALL {
        assert_eq!(stats.of(s), jobs.iter().filter(|j| j.status == s).count() as u64, "{s}");
    }
    let _ = clock.now_ms();
});
