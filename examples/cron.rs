//! A cron service: durable schedules plus the worker pool that runs the jobs they fire.
//!
//! Creates two schedules (a heartbeat every second and a nightly report at 03:00 Berlin
//! time), runs a worker pool, prints the scheduler's and the workers' events as they
//! happen, and exits once N heartbeat jobs have completed.
//!
//! ```sh
//! cargo run --example cron              # 3 heartbeats on a temporary database, ~3 s
//! cargo run --example cron -- 5 ./queue # 5 heartbeats, schedules kept in ./queue
//! ```

use std::time::Duration;

use jobspool::{Event, NewSchedule, Spool, TypedJob, WorkerPool};
use serde::{Deserialize, Serialize};

/// Fired every second.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    service: String,
}

impl TypedJob for Heartbeat {
    const KIND: &'static str = "heartbeat";
}

/// Fired nightly (not within this example's few seconds, unless you run it at 03:00).
#[derive(Debug, Serialize, Deserialize)]
struct NightlyReport {
    recipients: Vec<String>,
}

impl TypedJob for NightlyReport {
    const KIND: &'static str = "report.nightly";
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let wanted: u64 = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|e| format!("number of heartbeats {s:?}: {e}"))?,
        None => 3,
    };
    // A temporary database unless a path is given (kept alive until the end of main).
    let tmp = tempfile::tempdir()?;
    let db = args
        .next()
        .map_or_else(|| tmp.path().join("queue"), Into::into);

    // The scheduler thread starts with the spool: it fires each due schedule once per tick
    // (and a tick missed while the process was down, once, on the next start).
    let spool = Spool::open(&db)?;
    // Subscribe before creating the schedules, so that no event is missed.
    let events = spool.subscribe();

    // `replace(true)`: a service creates its schedules at every start; replacing keeps the
    // definition in the code authoritative instead of failing with SCHEDULE_EXISTS.
    let schedules = [
        // 6 fields: with seconds first.
        NewSchedule::new("heartbeat", "*/1 * * * * *", Heartbeat::KIND)
            .payload(serde_json::to_vec(&Heartbeat {
                service: "cron-example".into(),
            })?)
            .replace(true),
        // 5 fields: a classic crontab line, in the zone's local time (DST included).
        NewSchedule::new("nightly-report", "0 3 * * *", NightlyReport::KIND)
            .timezone("Europe/Berlin")
            .payload(serde_json::to_vec(&NightlyReport {
                recipients: vec!["ops@example.com".into()],
            })?)
            .replace(true),
    ];
    for s in schedules {
        let s = spool.create_schedule(s)?;
        let next = s.next_run_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        println!(
            "schedule {:<15} {:<14} {:<14} next run {next}",
            s.name, s.cron_expression, s.timezone
        );
    }

    let pool = WorkerPool::builder(&spool)
        .concurrency(2)
        // A real heartbeat would ping a monitor; the returned value is the job's result.
        .handle(|_ctx, beat: Heartbeat| Ok(format!("{} is alive", beat.service)))
        .handle(|_ctx, report: NightlyReport| {
            Ok(format!("report sent to {}", report.recipients.join(", ")))
        })
        .start()?;

    // The event feed: every change, once durable, in order.
    let mut completed = 0;
    while completed < wanted {
        let rec = events.recv_timeout(Duration::from_secs(10))?;
        match &rec.event {
            Event::SchedulerJobTriggered {
                schedule_name,
                job_id,
                triggered_at,
                ..
            } => println!(
                "#{:<4} {} schedule {schedule_name} fired job {job_id} at {}",
                rec.seq,
                rec.event.name(),
                triggered_at.format("%H:%M:%S%.3f")
            ),
            Event::JobCompleted {
                job_id,
                kind,
                duration_ms,
                ..
            } => {
                println!(
                    "#{:<4} {} {kind} job {job_id} in {duration_ms} ms",
                    rec.seq,
                    rec.event.name()
                );
                if kind == Heartbeat::KIND {
                    completed += 1;
                }
            }
            _ => {} // enqueued, started, ...: not shown
        }
    }

    println!("cron: {completed} heartbeats completed, stopping");
    pool.shutdown(Duration::from_secs(5));
    spool.close()?;
    Ok(())
}
