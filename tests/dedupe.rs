//! Dedupe keys: a live holder absorbs new enqueues, without events;
//! batches collapse duplicates; the key frees up when the holder finishes; race-free.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Barrier;

use common::{all_events, all_jobs, conformance, snapshot, TestBackend};
use jobspool::{JobStatus, ListQuery, NewJob, Retry};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    dedupe_hit_returns_existing_job_and_emits_no_event,
    dedupe_hit_through_batch_returns_existing_job,
    duplicates_inside_one_batch_collapse_to_the_first,
    dedupe_key_is_free_again_after_holder_completes,
    dedupe_key_is_free_again_after_holder_is_cancelled,
    dedupe_key_is_free_again_after_holder_fails_or_is_dead_lettered,
    dedupe_holds_across_reopen,
    concurrent_enqueues_with_the_same_key_create_exactly_one_job,
    dedupe_hit_can_be_told_from_a_new_job
);

/// Regression: a dedupe hit returned the holder exactly as a new job would, so a caller
/// could not tell that nothing was created. The Rust API and the JSON doors now say so.
fn dedupe_hit_can_be_told_from_a_new_job(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let first = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    assert!(!first.deduplicated);
    let again = spool
        .enqueue(NewJob::new("t", b"other".to_vec()).dedupe_key("k"))
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.id, first.id);
    let batch = spool
        .enqueue_batch(vec![
            NewJob::new("t", Vec::new()).dedupe_key("fresh"),
            NewJob::new("t", Vec::new()).dedupe_key("fresh"),
            NewJob::new("t", Vec::new()).dedupe_key("k"),
        ])
        .unwrap();
    let flags: Vec<bool> = batch.iter().map(|e| e.deduplicated).collect();
    assert_eq!(flags, [false, true, true]);

    // Through the operation every door runs: `"deduplicated": true` beside the job, and
    // no such field on a new job.
    let input = serde_json::json!({"type": "t", "dedupeKey": "k"});
    let out = jobspool::control::dispatch(&spool, "jobs.enqueue", &input).unwrap();
    assert_eq!(out["deduplicated"], true);
    assert_eq!(out["id"], first.id.to_string());
    let input = serde_json::json!({"type": "t", "dedupeKey": "new"});
    let out = jobspool::control::dispatch(&spool, "jobs.enqueue", &input).unwrap();
    assert!(out.get("deduplicated").is_none(), "{out}");
}

fn dedupe_hit_returns_existing_job_and_emits_no_event(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let first = spool
        .enqueue(NewJob::new("email.send", b"first".to_vec()).dedupe_key("user-42"))
        .unwrap();
    let before = snapshot(&spool);

    let hit = spool
        .enqueue(
            NewJob::new("other.type", b"second".to_vec())
                .dedupe_key("user-42")
                .priority(9)
                .queue("elsewhere"),
        )
        .unwrap();
    assert_eq!(hit.id, first.id);
    assert_eq!(
        hit.job, first.job,
        "the existing job is returned as stored, payload included"
    );
    assert_eq!(hit.payload, b"first".to_vec());
    assert_eq!(
        snapshot(&spool),
        before,
        "a dedupe hit creates nothing and emits nothing"
    );

    // Still a hit while the holder is running.
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    assert_eq!(c.job.id, first.id);
    let before = snapshot(&spool);
    let hit = spool
        .enqueue(NewJob::new("email.send", b"third".to_vec()).dedupe_key("user-42"))
        .unwrap();
    assert_eq!(hit.id, first.id);
    assert_eq!(hit.status, JobStatus::Running);
    assert_eq!(snapshot(&spool), before);

    // A different key is not a hit.
    let other = spool
        .enqueue(NewJob::new("email.send", Vec::new()).dedupe_key("user-43"))
        .unwrap();
    assert_ne!(other.id, first.id);
}

fn dedupe_hit_through_batch_returns_existing_job(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let held = spool
        .enqueue(NewJob::new("t", b"held".to_vec()).dedupe_key("k"))
        .unwrap();
    let seq = spool.last_seq();
    let out = spool
        .enqueue_batch(vec![
            NewJob::new("t", b"new".to_vec()),
            NewJob::new("t", b"dup".to_vec()).dedupe_key("k"),
        ])
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_ne!(out[0].id, held.id);
    assert_eq!(out[1].id, held.id);
    assert_eq!(out[1].payload, b"held".to_vec());
    assert_eq!(
        spool.last_seq(),
        seq + 1,
        "only the new job emits job.enqueued"
    );
    assert_eq!(spool.stats().unwrap().total.pending, 2);
}

fn duplicates_inside_one_batch_collapse_to_the_first(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let out = spool
        .enqueue_batch(vec![
            NewJob::new("a", b"A".to_vec()).dedupe_key("k"),
            NewJob::new("b", b"B".to_vec()).dedupe_key("k"),
            NewJob::new("c", b"C".to_vec()),
            NewJob::new("d", b"D".to_vec()).dedupe_key("k2"),
            NewJob::new("e", b"E".to_vec()).dedupe_key("k"),
            NewJob::new("f", b"F".to_vec()).dedupe_key("k2"),
        ])
        .unwrap();
    assert_eq!(out.len(), 6, "one result per input, in input order");
    assert_eq!(out[1].id, out[0].id);
    assert_eq!(out[4].id, out[0].id);
    assert_eq!(out[5].id, out[3].id);
    assert_eq!(out[1].kind, "a");
    assert_eq!(out[1].payload, b"A".to_vec());
    assert_eq!(out[5].payload, b"D".to_vec());
    let distinct: HashSet<_> = out.iter().map(|j| j.id).collect();
    assert_eq!(distinct.len(), 3);

    let jobs = all_jobs(&spool, &ListQuery::default());
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, vec!["a", "c", "d"]);
    assert_eq!(
        all_events(&spool).len(),
        3,
        "one job.enqueued per created job"
    );
    assert_eq!(spool.stats().unwrap().total.pending, 3);
}

fn dedupe_key_is_free_again_after_holder_completes(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let first = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .complete(jobspool::Lease::new(first.id, c.lease.token), None)
        .unwrap();

    let second = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.status, JobStatus::Pending);
    assert_eq!(spool.get(first.id).unwrap().status, JobStatus::Completed);
    // And the new holder now absorbs duplicates.
    let third = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    assert_eq!(third.id, second.id);
}

fn dedupe_key_is_free_again_after_holder_is_cancelled(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let first = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    spool.cancel(first.id).unwrap();
    let second = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(spool.stats().unwrap().total.pending, 1);
    assert_eq!(spool.stats().unwrap().total.cancelled, 1);
}

fn dedupe_key_is_free_again_after_holder_fails_or_is_dead_lettered(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let a = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("perm"))
        .unwrap();
    let c = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    spool
        .fail(
            jobspool::Lease::new(a.id, c.lease.token),
            "bad input",
            Retry::Never,
        )
        .unwrap();
    assert_eq!(spool.get(a.id).unwrap().status, JobStatus::Failed);
    let a2 = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("perm"))
        .unwrap();
    assert_ne!(a2.id, a.id);

    let b = spool
        .enqueue(
            NewJob::new("u", Vec::new())
                .dedupe_key("dead")
                .max_attempts(1),
        )
        .unwrap();
    let mut req = spool.claim_request(1);
    req.kinds = vec!["u".into()];
    let c = spool.claim(&req).unwrap().remove(0);
    spool
        .fail(
            jobspool::Lease::new(b.id, c.lease.token),
            "boom",
            Retry::Backoff,
        )
        .unwrap();
    assert_eq!(spool.get(b.id).unwrap().status, JobStatus::DeadLetter);
    let b2 = spool
        .enqueue(NewJob::new("u", Vec::new()).dedupe_key("dead"))
        .unwrap();
    assert_ne!(b2.id, b.id);
}

fn dedupe_holds_across_reopen(b: TestBackend) {
    let (store, clock, spool) = b.fresh();
    let first = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    spool.close().unwrap();
    drop(spool);
    let spool = store.open_manual(&clock);
    let hit = spool
        .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
        .unwrap();
    assert_eq!(hit.id, first.id);
    assert_eq!(spool.stats().unwrap().total.pending, 1);
}

fn concurrent_enqueues_with_the_same_key_create_exactly_one_job(b: TestBackend) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 40;
    let (_store, _clock, spool) = b.fresh();
    let barrier = Barrier::new(THREADS);

    let per_thread: Vec<Vec<jobspool::JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let spool = spool.clone();
                let barrier = &barrier;
                s.spawn(move || {
                    let mut ids = Vec::with_capacity(ROUNDS);
                    for round in 0..ROUNDS {
                        barrier.wait();
                        let j = spool
                            .enqueue(
                                NewJob::new("race", format!("t{t}").into_bytes())
                                    .dedupe_key(format!("key-{round}")),
                            )
                            .unwrap();
                        ids.push(j.id);
                    }
                    ids
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    for round in 0..ROUNDS {
        let ids: HashSet<_> = per_thread.iter().map(|v| v[round]).collect();
        assert_eq!(
            ids.len(),
            1,
            "round {round}: all threads must get the same job id, got {ids:?}"
        );
    }
    let jobs = all_jobs(&spool, &ListQuery::default());
    assert_eq!(jobs.len(), ROUNDS, "exactly one job per key");
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for j in &jobs {
        *per_key.entry(j.dedupe_key.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(per_key.len(), ROUNDS);
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    let s = spool.stats().unwrap();
    assert_eq!(s.total.pending, ROUNDS as u64);
    assert_eq!(all_events(&spool).len(), ROUNDS, "one job.enqueued per key");
    // The job each thread got is the one that exists.
    for (round, id) in per_thread[0].iter().enumerate() {
        let j = spool.get(*id).unwrap();
        assert_eq!(
            j.dedupe_key.as_deref(),
            Some(format!("key-{round}").as_str())
        );
    }
}
