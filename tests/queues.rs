//! Queue settings: pause and resume are idempotent (no change, no event), and a queue known
//! only from its setting leaves stats once the setting is gone.

mod common;

use common::{all_events, conformance, TestBackend};
use jobspool::{NewJob, Spool};

// The conformance tests of this file: each runs once per backend (`sled::name`, ...).
conformance!(
    pausing_a_paused_queue_emits_no_second_queue_paused_event,
    resuming_a_running_queue_emits_no_queue_resumed_event,
    pause_of_a_queue_without_jobs_leaves_no_stats_row_after_resume,
    pause_and_resume_are_idempotent_across_reopen
);

fn event_names(spool: &Spool) -> Vec<&'static str> {
    all_events(spool).iter().map(|e| e.event.name()).collect()
}

fn pausing_a_paused_queue_emits_no_second_queue_paused_event(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool.pause_queue("mail").unwrap();
    let seq = spool.last_seq();
    // Still a success, but nothing changes and nothing is logged.
    spool.pause_queue("mail").unwrap();
    spool.pause_queue("mail").unwrap();
    assert_eq!(spool.last_seq(), seq);
    assert_eq!(event_names(&spool), ["queue.paused"]);
    assert!(spool.stats().unwrap().queues["mail"].paused);

    spool.resume_queue("mail").unwrap();
    spool.resume_queue("mail").unwrap();
    assert_eq!(event_names(&spool), ["queue.paused", "queue.resumed"]);
}

fn resuming_a_running_queue_emits_no_queue_resumed_event(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    // A queue never paused, with and without jobs.
    spool.resume_queue("never-seen").unwrap();
    spool
        .enqueue(NewJob::new("email.send", b"x".to_vec()).queue("mail"))
        .unwrap();
    spool.resume_queue("mail").unwrap();
    assert_eq!(event_names(&spool), ["job.enqueued"]);
    let stats = spool.stats().unwrap();
    assert!(!stats.queues["mail"].paused);
    assert!(!stats.queues.contains_key("never-seen"), "{stats:?}");
}

fn pause_of_a_queue_without_jobs_leaves_no_stats_row_after_resume(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool.pause_queue("empty").unwrap();
    let stats = spool.stats().unwrap();
    assert!(stats.queues["empty"].paused, "{stats:?}");
    spool.resume_queue("empty").unwrap();
    let stats = spool.stats().unwrap();
    assert!(!stats.queues.contains_key("empty"), "{stats:?}");

    // A queue with jobs keeps its row after resume, unpaused.
    spool
        .enqueue(NewJob::new("email.send", b"x".to_vec()).queue("mail"))
        .unwrap();
    spool.pause_queue("mail").unwrap();
    spool.resume_queue("mail").unwrap();
    let stats = spool.stats().unwrap();
    assert!(!stats.queues["mail"].paused);
    assert_eq!(stats.queues["mail"].counts.pending, 1);
    assert_eq!(stats.queues.len(), 1, "{stats:?}");
}

fn pause_and_resume_are_idempotent_across_reopen(b: TestBackend) {
    let store = b.store();
    let clock = jobspool::ManualClock::new(common::t0());
    let spool = store.open_manual(&clock);
    spool.pause_queue("mail").unwrap();
    spool.pause_queue("idle").unwrap();
    spool.resume_queue("idle").unwrap();
    spool.close().unwrap();

    let spool = store.open_manual(&clock);
    let seq = spool.last_seq();
    // The setting survived the reopen: pausing again changes nothing.
    spool.pause_queue("mail").unwrap();
    assert_eq!(spool.last_seq(), seq);
    let stats = spool.stats().unwrap();
    assert!(stats.queues["mail"].paused);
    assert!(!stats.queues.contains_key("idle"), "{stats:?}");
    spool.resume_queue("mail").unwrap();
    assert_eq!(spool.last_seq(), seq + 1);
    assert!(!spool.stats().unwrap().queues.contains_key("mail"));
}
