//! What only the PostgreSQL backend has: versioned tables, several spools (processes) on one
//! schema, wake-ups and events from another spool, recovery of a stopped spool's jobs, and
//! a lost connection. Each test skips (one line on stderr) when no server is available, and
//! fails instead under `JOBSPOOL_TEST_REQUIRE_BACKENDS=postgres`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::pg;
use jobspool::{
    Builder, Durability, ErrorCode, JobStatus, ListQuery, ManualClock, NewJob, NewSchedule, Spool,
};

/// A schema of its own on the test server, dropped at the end.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(test: &str) -> Option<Schema> {
        let url = pg::url_or_skip(test)?;
        Some(Schema {
            url,
            name: pg::unique_schema("pgb"),
        })
    }

    fn builder(&self, clock: &ManualClock) -> Builder {
        Spool::builder()
            .schema(self.name.as_str())
            .clock(clock.clone())
            .maintenance(false)
            .scheduler(false)
    }

    fn open(&self, clock: &ManualClock) -> Spool {
        self.builder(clock)
            .open(&self.url)
            .expect("opening the spool")
    }

    fn psql(&self, sql: &str) -> String {
        pg::psql(&self.url, sql).expect("psql")
    }

    /// Loads `dump` (tables an older version wrote, `@SCHEMA@` for the schema), opens the
    /// spool, and checks the tables were migrated to the current version.
    fn open_migrated(&self, dump: &str, clock: &ManualClock) -> Spool {
        self.psql(&dump.replace("@SCHEMA@", &format!("\"{}\"", self.name)));
        let spool = self.open(clock);
        assert_eq!(
            self.psql(&format!(
                "SELECT version FROM \"{}\".schema_version",
                self.name
            )),
            "4"
        );
        spool
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = pg::psql(
            &self.url,
            &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
        );
    }
}

fn clock() -> ManualClock {
    ManualClock::new(common::t0())
}

/// Polls `f` until it holds or 20 s pass.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tables_are_versioned_and_a_newer_version_is_refused() {
    let Some(s) = Schema::new("pg_backend::tables_are_versioned") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    spool.close().unwrap();
    assert_eq!(
        s.psql(&format!(
            "SELECT version FROM \"{}\".schema_version",
            s.name
        )),
        "4"
    );
    // Reopening the same version keeps the data.
    let spool = s.open(&c);
    assert_eq!(spool.stats().unwrap().total.pending, 1);
    spool.close().unwrap();

    s.psql(&format!(
        "UPDATE \"{}\".schema_version SET version = 99",
        s.name
    ));
    let err = s.builder(&c).open(&s.url).unwrap_err();
    assert_eq!(err.code(), "STORAGE");
    let msg = err.to_string();
    assert!(
        msg.contains("version 99") && msg.contains("upgrade jobspool"),
        "{msg}"
    );
}

/// Version 2 moved events to a staging table numbered after commit and sharded the count
/// rows: a schema that version 1 wrote must open with its jobs, counts, dedupe keys and
/// events, and number new events after the old ones.
#[test]
fn regression_a_version_1_schema_migrates_keeping_jobs_counts_and_events() {
    let Some(s) = Schema::new("pg_backend::a_version_1_schema_migrates") else {
        return;
    };
    let c = clock();
    let spool = s.open_migrated(include_str!("fixtures/pg-v1.sql"), &c);
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.cancelled), (4, 1));
    assert_eq!(st.queues["other"].counts.pending, 1);
    let old = spool.events_since(0, 100).unwrap();
    assert_eq!(
        old.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(old[5].event.name(), "job.cancelled");
    let dup = spool
        .enqueue(
            NewJob::new("mail", Vec::new())
                .queue("other")
                .dedupe_key("k1"),
        )
        .unwrap();
    assert!(dup.deduplicated, "the old job still holds its dedupe key");
    let fresh = spool.enqueue(NewJob::new("mail", Vec::new())).unwrap();
    let new = spool.events_since(6, 100).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!((new[0].seq, new[0].event.job_id()), (7, Some(fresh.id)));
    assert_eq!(spool.stats().unwrap().total.pending, 5);
    spool.close().unwrap();
}

/// Version 4 moved the counts from every commit to the sequencer. A schema that version 3
/// left with a commit not numbered yet (its staged row carries no count deltas: the commit
/// counted itself) and counts in several sessions' shards must open with each job counted
/// once, number the staged event after the old ones, and count new commits once.
#[test]
fn regression_a_version_3_schema_with_a_staged_commit_migrates_counting_each_job_once() {
    let Some(s) = Schema::new("pg_backend::a_version_3_schema_migrates") else {
        return;
    };
    let c = clock();
    let spool = s.open_migrated(include_str!("fixtures/pg-v3.sql"), &c);
    let st = spool.stats().unwrap();
    assert_eq!(st.total.pending, 4);
    assert_eq!(st.queues["other"].counts.pending, 2);
    let evs = spool.events_since(0, 100).unwrap();
    assert_eq!(
        evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=4).collect::<Vec<_>>()
    );
    assert_eq!(
        evs[3].event.job_id().map(|id| id.to_string()).as_deref(),
        Some("01a236e4-ee67-7ce6-b9d4-d3fc6e8d4ecc"),
        "the staged commit's event comes after the numbered ones"
    );
    let fresh = spool
        .enqueue(NewJob::new("mail", Vec::new()).queue("other"))
        .unwrap();
    let st = spool.stats().unwrap();
    assert_eq!(
        (st.total.pending, st.queues["other"].counts.pending),
        (5, 3)
    );
    let new = spool.events_since(4, 100).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!((new[0].seq, new[0].event.job_id()), (5, Some(fresh.id)));
    assert_eq!(
        s.psql(&format!(
            "SELECT sum(n) FROM \"{}\".job_count WHERE shard = 0",
            s.name
        )),
        "1",
        "the sequencer counted the new job, and only it"
    );
    spool.close().unwrap();
}

/// A transaction with more events than one staged row holds (512) stages several rows; its
/// count deltas ride on the first only, so each job is counted once, however many rows.
#[test]
fn a_transaction_staged_in_several_rows_counts_each_job_once() {
    let Some(s) = Schema::new("pg_backend::a_transaction_staged_in_several_rows") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    spool
        .enqueue_batch((0..1300).map(|_| NewJob::new("t", Vec::new())).collect())
        .unwrap();
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.running), (1300, 0));
    assert_eq!(spool.claim(&spool.claim_request(600)).unwrap().len(), 600);
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.running), (700, 600));
    assert_eq!(spool.events_since(0, 5000).unwrap().len(), 1900);
    spool.close().unwrap();
}

/// `stats` moved at most 1,000 due delayed jobs to ready per call, so with more due (and no
/// claim running to move them) `delayed` still counted jobs that were due.
#[test]
fn regression_stats_count_every_due_job_as_ready_beyond_one_chunk() {
    let Some(s) = Schema::new("pg_backend::stats_count_every_due_job_as_ready") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    spool
        .enqueue_batch(
            (0..2500)
                .map(|_| NewJob::new("t", Vec::new()).delay(Duration::from_secs(60)))
                .collect(),
        )
        .unwrap();
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.delayed), (2500, 2500));
    c.advance_ms(61_000);
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.delayed), (2500, 0));
    spool.close().unwrap();
}

/// Counts move with the numbering of commits: a transaction that changes counts without
/// appending an event (delayed jobs becoming due) stages a row of no events, which the
/// sequencer counts and the event log does not keep.
#[test]
fn counts_of_a_commit_without_events_are_applied_and_leave_no_log_row() {
    let Some(s) = Schema::new("pg_backend::counts_of_a_commit_without_events") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    spool
        .enqueue(NewJob::new("t", Vec::new()).delay(Duration::from_secs(60)))
        .unwrap();
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.delayed), (1, 1));
    c.advance_ms(61_000);
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.delayed), (1, 0));
    assert_eq!(
        s.psql(&format!(
            "SELECT count(*) || ' ' || coalesce(sum(n), 0) FROM \"{}\".event_log",
            s.name
        )),
        "1 1",
        "one log row, the enqueue's"
    );
    assert_eq!(
        s.psql(&format!("SELECT count(*) FROM \"{}\".event_staged", s.name)),
        "0"
    );
    assert_eq!(spool.events_since(0, 10).unwrap().len(), 1);
    spool.close().unwrap();
}

/// A damaged row of the event log (an event that does not decode, or fewer events than
/// the row says) is `CORRUPTION` naming its seq, never skipped.
#[test]
fn a_damaged_event_row_is_corruption_not_skipped() {
    let Some(s) = Schema::new("pg_backend::a_damaged_event_row_is_corruption") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    for _ in 0..3 {
        spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    }
    assert_eq!(spool.events_since(0, 10).unwrap().len(), 3);
    s.psql(&format!(
        "UPDATE \"{}\".event_log SET events = '[{{\"name\":\"job.nonsense\"}}]' WHERE last_seq = 2",
        s.name
    ));
    let err = spool.events_since(0, 10).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    assert!(err.to_string().contains("seq 2"), "{err}");
    // Events before the damage still read.
    assert_eq!(spool.events_since(0, 1).unwrap().len(), 1);
    s.psql(&format!(
        "UPDATE \"{}\".event_log SET n = 2 WHERE last_seq = 3",
        s.name
    ));
    let err = spool.events_since(2, 10).unwrap_err();
    assert_eq!(err.code(), "CORRUPTION", "{err}");
    assert!(err.to_string().contains("says 2 events"), "{err}");
    // Closing delivers what is left to subscribers: that stops at the damage, the close
    // does not fail (it did in CI, when the damage came before the delivery).
    spool.close().unwrap();
}

/// A spool closing with events still to deliver to its subscribers, one of them damaged in
/// the log: the close succeeds (delivery stops at the damage; readers of the log get the
/// `CORRUPTION`). A poll-only spool delivers another spool's events only on its 1 s poll,
/// so the damage comes before the delivery.
#[test]
fn regression_close_succeeds_when_an_undelivered_event_row_is_damaged() {
    let Some(s) = Schema::new("pg_backend::close_succeeds_when_an_undelivered_event") else {
        return;
    };
    let c = clock();
    let reader = s.builder(&c).poll_only(true).open(&s.url).unwrap();
    let writer = s.open(&c);
    for _ in 0..3 {
        writer.enqueue(NewJob::new("t", Vec::new())).unwrap();
    }
    writer.close().unwrap();
    s.psql(&format!(
        "UPDATE \"{}\".event_log SET events = '[{{\"name\":\"job.nonsense\"}}]' WHERE last_seq = 2",
        s.name
    ));
    assert_eq!(reader.events_since(0, 10).unwrap_err().code(), "CORRUPTION");
    reader.close().unwrap();
}

/// A backlog that arrives faster than autovacuum analyzes the table leaves the planner
/// estimating a few hundred ready rows; the claim must still read the claim index in order
/// (it had sorted every ready row on each claim: 118 ms instead of 6 ms for 1,500 of
/// 50,000). Checked in the server's index statistics, which a backend reports when it goes
/// idle (within about 10 s).
#[test]
fn regression_claims_read_the_claim_index_before_the_table_is_analyzed() {
    let Some(s) = Schema::new("pg_backend::claims_read_the_claim_index") else {
        return;
    };
    let c = clock();
    let spool = s.open(&c);
    s.psql(&format!(
        "ALTER TABLE \"{}\".job SET (autovacuum_enabled = false)",
        s.name
    ));
    // (Jobs of 100-byte payloads in batches of 1,000, as `jobspool bench` fills: with empty
    // payloads the planner happened to pick the index anyway.)
    for _ in 0..50 {
        spool
            .enqueue_batch(
                (0..1000)
                    .map(|_| NewJob::new("t", vec![7u8; 100]))
                    .collect(),
            )
            .unwrap();
    }
    let scans = |index: &str| -> i64 {
        s.psql(&format!(
            "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes \
             WHERE schemaname = '{}' AND indexrelname = '{index}'",
            s.name
        ))
        .parse()
        .unwrap()
    };
    let before = (scans("job_claim"), scans("job_status"));
    // (More than the planner's default guess of the matching rows: that is when the sort
    // looked cheaper.)
    // As a worker pool claims: the types it has handlers for.
    let mut req = spool.claim_request(1500);
    req.kinds = vec!["t".into()];
    for _ in 0..3 {
        assert_eq!(spool.claim(&req).unwrap().len(), 1500);
    }
    eventually("the claims' index scans to be reported", || {
        scans("job_claim") >= before.0 + 3
    });
    assert_eq!(
        scans("job_status"),
        before.1,
        "a claim read the status index (and sorted what it found)"
    );
    spool.close().unwrap();
}

#[test]
fn an_empty_schema_is_database_not_found_without_create_and_nothing_is_created() {
    let Some(s) = Schema::new("pg_backend::an_empty_schema_is_database_not_found") else {
        return;
    };
    let err = s
        .builder(&clock())
        .create_if_missing(false)
        .open(&s.url)
        .unwrap_err();
    assert_eq!(err.code(), "DATABASE_NOT_FOUND");
    assert_eq!(
        s.psql(&format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
            s.name
        )),
        "0"
    );
}

#[test]
fn a_bad_schema_name_is_invalid_argument() {
    let Some(url) = pg::url_or_skip("pg_backend::a_bad_schema_name_is_invalid_argument") else {
        return;
    };
    for bad in ["", "Upper", "has space", "x\"; DROP", "9starts_with_digit"] {
        let err = Spool::builder().schema(bad).open(&url).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{bad:?}");
    }
}

#[test]
fn two_spools_on_one_schema_claim_disjointly_and_complete_everything() {
    let Some(s) = Schema::new("pg_backend::two_spools_claim_disjointly") else {
        return;
    };
    let c = clock();
    let a = s.open(&c);
    let b = s.open(&c);
    const N: usize = 300;
    a.enqueue_batch((0..N).map(|i| NewJob::new("t", vec![i as u8])).collect())
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|spool| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                loop {
                    let got = spool.claim(&spool.claim_request(7)).unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    for c in got {
                        spool.complete(c.lease, None).unwrap();
                        mine.push(c.job.id);
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut per_spool = Vec::new();
    for w in workers {
        let ids = w.join().unwrap();
        per_spool.push(ids.len());
        for id in ids {
            assert!(seen.insert(id), "job {id} claimed by both spools");
        }
    }
    assert_eq!(seen.len(), N, "per spool: {per_spool:?}");
    let st = b.stats().unwrap();
    assert_eq!((st.total.completed, st.total.pending), (N as u64, 0));
    // Every event once, contiguous from 1: N enqueued + N started + N completed.
    let events = common::all_events(&a);
    assert_eq!(events.len(), 3 * N);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
}

#[test]
fn another_spools_commits_reach_subscribers_and_waiting_claimers() {
    let Some(s) = Schema::new("pg_backend::another_spools_commits") else {
        return;
    };
    let c = clock();
    let a = s.open(&c);
    let b = s.open(&c);
    let sub = b.subscribe();
    // A claimer waiting on `b` wakes for a job enqueued through `a` (NOTIFY, or the poll).
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.claim_wait(&b.claim_request(1), Duration::from_secs(20)))
    };
    std::thread::sleep(Duration::from_millis(100));
    let job = a.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let claimed = waiter.join().unwrap().unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job.id, job.id);
    // `b`'s subscriber sees `a`'s event, then its own claim's, in seq order, once each.
    let first = sub.recv_timeout(Duration::from_secs(20)).unwrap();
    let second = sub.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((first.seq, first.event.name()), (1, "job.enqueued"));
    assert_eq!((second.seq, second.event.name()), (2, "job.started"));
    assert!(sub.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn poll_only_spools_still_see_each_other() {
    let Some(s) = Schema::new("pg_backend::poll_only_spools") else {
        return;
    };
    let c = clock();
    let a = s.builder(&c).poll_only(true).open(&s.url).unwrap();
    let b = s.builder(&c).poll_only(true).open(&s.url).unwrap();
    let sub = b.subscribe();
    a.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let ev = sub.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((ev.seq, ev.event.name()), (1, "job.enqueued"));
    let got = b.claim(&b.claim_request(1)).unwrap();
    assert_eq!(got.len(), 1);
}

/// `Buffered` enqueues run as one statement committing with `synchronous_commit` off: the
/// session has it off, or, through a pooler (poll-only), the statement turns it off itself.
/// Either way every job and event is there after `flush`, for this spool and the next.
#[test]
fn buffered_enqueues_are_durable_after_flush_with_and_without_a_pooler() {
    for poll_only in [false, true] {
        let Some(s) = Schema::new("pg_backend::buffered_enqueues") else {
            return;
        };
        let c = clock();
        let spool = s
            .builder(&c)
            .durability(Durability::Buffered {
                max_delay: Duration::from_millis(20),
            })
            .poll_only(poll_only)
            .open(&s.url)
            .unwrap();
        let sub = spool.subscribe();
        spool.enqueue(NewJob::new("t", b"one".to_vec())).unwrap();
        let batch: Vec<NewJob> = (0..3).map(|i| NewJob::new("t", vec![i])).collect();
        assert_eq!(spool.enqueue_batch(batch).unwrap().len(), 3);
        // A dedupe key takes a transaction.
        spool
            .enqueue(NewJob::new("t", Vec::new()).dedupe_key("k"))
            .unwrap();
        spool.flush().unwrap();
        let seqs: Vec<u64> = (0..5)
            .map(|_| sub.recv_timeout(Duration::from_secs(20)).unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5], "poll_only {poll_only}");
        spool.close().unwrap();
        let again = s.open(&c);
        assert_eq!(
            again.stats().unwrap().total.pending,
            5,
            "poll_only {poll_only}"
        );
        let jobs = again.list(&ListQuery::default()).unwrap();
        assert_eq!(jobs[0].payload, b"one".to_vec());
    }
}

/// A `Buffered` commit the server loses in a crash (`synchronous_commit = off`) can lose
/// the advance of the `event_batch` sequence with it, so after the restart another
/// transaction draws the same batch number. The process whose commit was lost must not
/// deliver its lost events in place of the other transaction's: its subscribers get what
/// the log holds. (The crash is simulated: the lost commit's staged row and job are removed
/// and the sequence is set back, which is what recovery leaves.)
#[test]
fn regression_a_buffered_commit_lost_in_a_crash_is_not_delivered_for_a_reused_batch() {
    let Some(s) = Schema::new("pg_backend::regression_a_buffered_commit_lost_in_a_crash") else {
        return;
    };
    let c = clock();
    let p = s
        .builder(&c)
        .durability(Durability::Buffered {
            max_delay: Duration::from_secs(600),
        })
        .open(&s.url)
        .unwrap();
    let sub = p.subscribe();
    let lost = p.enqueue(NewJob::new("t", b"lost".to_vec())).unwrap();
    let batch = s.psql(&format!("SELECT batch FROM \"{}\".event_staged", s.name));
    assert!(!batch.is_empty(), "the commit is staged, not numbered yet");
    s.psql(&format!(
        "DELETE FROM \"{0}\".event_staged; DELETE FROM \"{0}\".job; \
         SELECT setval('\"{0}\".event_batch', {1}, false)",
        s.name, batch
    ));
    let q = s.open(&c);
    let kept = q.enqueue(NewJob::new("t", b"kept".to_vec())).unwrap();
    q.flush().unwrap();
    assert_eq!(
        s.psql(&format!("SELECT batch FROM \"{}\".event_log", s.name)),
        batch,
        "the surviving commit drew the lost commit's batch number"
    );
    let first = sub.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.event.name(), "job.enqueued");
    assert_eq!(
        first.event.job_id(),
        Some(kept.id),
        "delivered the lost job {} instead of the logged one",
        lost.id
    );
    assert_eq!(p.events_since(0, 10).unwrap(), vec![first]);
    q.close().unwrap();
    p.close().unwrap();
}

#[test]
fn a_stopped_spools_running_jobs_are_recovered_by_another_without_waiting_for_the_lease() {
    let Some(s) = Schema::new("pg_backend::a_stopped_spools_running_jobs") else {
        return;
    };
    let c = clock();
    let a = s.open(&c);
    let job = a.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let kept = a.enqueue(NewJob::new("u", Vec::new())).unwrap();
    // `b` runs maintenance (lease expiry and recovery) often; the clock never moves, so no
    // lease expires: only the recovery of a stopped process can move the job.
    let b = s
        .builder(&c)
        .maintenance(true)
        .maintenance_interval(Duration::from_millis(20))
        .open(&s.url)
        .unwrap();
    let claimed = b
        .claim(&jobspool::ClaimRequest {
            kinds: vec!["u".into()],
            ..b.claim_request(1)
        })
        .unwrap();
    assert_eq!(claimed[0].job.id, kept.id);
    let mine = a.claim(&a.claim_request(1)).unwrap();
    assert_eq!(mine[0].job.id, job.id);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        b.get(job.id).unwrap().status,
        JobStatus::Running,
        "a is alive"
    );
    a.close().unwrap();
    eventually("the stopped spool's job to be recovered", || {
        b.get(job.id).unwrap().status == JobStatus::Pending
    });
    let j = b.get(job.id).unwrap();
    assert_eq!(j.attempts, 1);
    assert_eq!(
        j.last_error.as_deref(),
        Some("lost when the process stopped")
    );
    // `b`'s own running job is left alone.
    assert_eq!(b.get(kept.id).unwrap().status, JobStatus::Running);
    b.complete(claimed[0].lease, None).unwrap();
}

#[test]
fn several_spools_fire_a_schedule_tick_once() {
    let Some(s) = Schema::new("pg_backend::several_spools_fire_a_schedule_tick_once") else {
        return;
    };
    let c = clock();
    let spools: Vec<Spool> = (0..3).map(|_| s.open(&c)).collect();
    spools[0]
        .create_schedule(NewSchedule::new("every-minute", "* * * * *", "tick"))
        .unwrap();
    for round in 1..=3u64 {
        c.advance_ms(60_000);
        let barrier = Arc::new(Barrier::new(spools.len()));
        let fired: u64 = spools
            .iter()
            .cloned()
            .map(|sp| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    sp.fire_due_schedules().unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(fired, 1, "round {round}");
        let jobs = spools[1]
            .list(&ListQuery {
                kind: Some("tick".into()),
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(jobs.len() as u64, round);
    }
}

#[test]
fn a_lost_connection_is_storage_and_the_next_call_reconnects() {
    let Some(url) = pg::url_or_skip("pg_backend::a_lost_connection") else {
        return;
    };
    let app = pg::unique_schema("lost");
    let s = Schema {
        url: format!("{url}?application_name={app}"),
        name: pg::unique_schema("pgb"),
    };
    let c = clock();
    let spool = s.open(&c);
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    let claimed = spool.claim(&spool.claim_request(1)).unwrap().remove(0);
    // The spool's own threads (the sequencer, the listener's poll) also take pooled
    // connections: one of them may meet the dead connection first, and the pool then
    // reconnects before the test's call. So: kill, call, until a call meets it (each
    // call that got through enqueued one job).
    let mut through = 0;
    let err = (0..20)
        .find_map(|_| {
            let killed = pg::psql(
                &url,
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = '{app}'"
                ),
            )
            .unwrap();
            assert_ne!(killed, "0", "the spool's connections were found");
            match spool.enqueue(NewJob::new("t", Vec::new())) {
                Ok(_) => {
                    through += 1;
                    None
                }
                Err(e) => Some(e),
            }
        })
        .expect("no call met the lost connection in 20 tries");
    // The pooled connection was gone: the call failed with STORAGE, and changed nothing...
    assert_eq!(err.code(), ErrorCode::Storage.as_str(), "{err}");
    assert!(err.to_string().contains("reconnects"), "{err}");
    // ...and the next call reconnects; the lease taken before still holds.
    let st = spool.stats().unwrap();
    assert_eq!((st.total.pending, st.total.running), (through, 1));
    let done = spool.complete(claimed.lease, None).unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    assert_eq!(spool.stats().unwrap().total.pending, through + 1);
}

/// The sequencer thread added `Buffered`'s `max_delay` to an `Instant` and panicked on
/// overflow for `Duration::MAX` (sled takes it as "only when flushed"): from then on no
/// commit of the spool was numbered except by an explicit flush.
#[test]
fn regression_buffered_with_the_longest_max_delay_does_not_panic_the_sequencer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(schema) = Schema::new("regression_buffered_longest_max_delay") else {
        return;
    };
    // Count panics on the sequencer threads (the previous hook still runs).
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let prev = Arc::new(std::panic::take_hook());
    let chained = Arc::clone(&prev);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("jobspool-pg-seq") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        chained(info);
    }));
    let spool = schema
        .builder(&clock())
        .durability(Durability::Buffered {
            max_delay: Duration::MAX,
        })
        .open(&schema.url)
        .expect("opening the spool");
    let rx = spool.subscribe();
    spool.enqueue(NewJob::new("t", Vec::new())).unwrap();
    // Give the sequencer time to look at the staged commit.
    std::thread::sleep(Duration::from_millis(300));
    spool.flush().unwrap();
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("sent once flushed");
    assert_eq!(ev.seq, 1);
    spool.close().unwrap();
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| prev(info)));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the sequencer panicked");
}
