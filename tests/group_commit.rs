//! Concurrent enqueues: callers enqueueing at the same time may share a commit (PostgreSQL
//! combines them into one statement), and each still gets exactly its own jobs, in its
//! order, each with one `job.enqueued` event.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{all_events, assert_contiguous_from_one, conformance, TestBackend};
use jobspool::{Event, NewJob};

conformance!(concurrent_enqueues_each_get_their_own_jobs_and_one_event_per_job);

const THREADS: usize = 8;
const CALLS: usize = 30;

fn concurrent_enqueues_each_get_their_own_jobs_and_one_event_per_job(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let barrier = std::sync::Barrier::new(THREADS);
    let results: Vec<Vec<(String, jobspool::Job)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let spool = spool.clone();
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::new();
                    for i in 0..CALLS {
                        let tag = |k: usize| format!("{t}-{i}-{k}");
                        let job = |k: usize| {
                            let mut j = NewJob::new(format!("kind{t}"), tag(k).into_bytes())
                                .queue(format!("q{}", t % 3))
                                .priority(i32::try_from(i % 4).unwrap());
                            if i % 5 == 1 {
                                j = j.delay(Duration::from_secs(60));
                            }
                            if i % 7 == 3 {
                                j = j.dedupe_key(tag(k));
                            }
                            j
                        };
                        if i % 3 == 2 {
                            let out = spool.enqueue_batch((0..3).map(job).collect()).unwrap();
                            for (k, e) in out.into_iter().enumerate() {
                                assert!(!e.deduplicated);
                                mine.push((tag(k), e.job));
                            }
                        } else {
                            let e = spool.enqueue(job(0)).unwrap();
                            assert!(!e.deduplicated);
                            mine.push((tag(0), e.job));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids = HashSet::new();
    let mut want_pending: BTreeMap<String, u64> = BTreeMap::new();
    for (t, mine) in results.iter().enumerate() {
        // Each caller's ids increase in the order it enqueued.
        assert!(mine.windows(2).all(|w| w[0].1.id < w[1].1.id), "thread {t}");
        for (tag, job) in mine {
            assert_eq!(job.payload, tag.as_bytes(), "a caller got another's job");
            assert_eq!(job.kind, format!("kind{t}"));
            assert_eq!(job.queue, format!("q{}", t % 3));
            assert!(ids.insert(job.id), "id {} handed out twice", job.id);
            let stored = spool.get(job.id).unwrap();
            assert_eq!(&stored, job);
            *want_pending.entry(job.queue.clone()).or_default() += 1;
        }
    }
    let stats = spool.stats().unwrap();
    for (q, n) in &want_pending {
        assert_eq!(stats.queues[q].counts.pending, *n, "queue {q}");
    }
    let events = all_events(&spool);
    assert_contiguous_from_one(&events);
    let mut enqueued = HashSet::new();
    for e in &events {
        if let Event::JobEnqueued { job_id, .. } = &e.event {
            assert!(enqueued.insert(*job_id), "two job.enqueued for {job_id}");
        }
    }
    assert_eq!(enqueued, ids);
}
