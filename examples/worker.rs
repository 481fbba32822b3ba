//! A worker service: holds the database, runs typed handlers on a worker pool, serves the
//! control socket so that producers and the `jobspool` CLI reach the queue while it runs,
//! and stops gracefully on SIGTERM or SIGINT (Ctrl-C).
//!
//! ```sh
//! cargo run --example worker -- ./queue                    # until SIGTERM / Ctrl-C
//! cargo run --example worker -- ./queue --exit-when-idle   # drain, then exit (for CI)
//! ```
//!
//! While it runs: `cargo run --example producer -- ./queue`, or
//! `jobspool --db ./queue stats`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobspool::{JobError, Spool, TypedJob, WorkerPool};
use serde::{Deserialize, Serialize};
use signal_hook::consts::{SIGINT, SIGTERM};

/// How long running handlers get to finish at shutdown; jobs still running after that go
/// back to pending (their attempt is not counted) and run again on the next start.
const GRACE: Duration = Duration::from_secs(10);

/// With `--exit-when-idle` and no job ever arriving, give up after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The payload of an `email.send` job, as the producer enqueues it.
#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
}

impl TypedJob for SendEmail {
    const KIND: &'static str = "email.send";
}

/// Sends one email (here: pretends to). The `String` returned is stored as the job's
/// result; an error fails the attempt.
fn send_email(email: &SendEmail) -> Result<String, JobError> {
    if email.to.is_empty() {
        // Retrying cannot help: fail the job for good, no more attempts.
        return Err(JobError::permanent("no recipient"));
    }
    std::thread::sleep(Duration::from_millis(5)); // stands for the SMTP round trip
    Ok(format!("sent to {}", email.to))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut db = "./queue".to_string();
    let mut exit_when_idle = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--exit-when-idle" => exit_when_idle = true,
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}").into()),
            path => db = path.to_string(),
        }
    }

    // SIGTERM (systemd, Kubernetes, `kill`) and SIGINT (Ctrl-C) only raise a flag that the
    // main loop below watches; the shutdown itself runs on the main thread. (Repeated
    // signals change nothing: the grace period bounds the shutdown.)
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }

    // Holding the database: crash recovery, the scheduler and maintenance threads run here.
    let spool = Spool::open(&db)?;
    // Other processes cannot open the database now; the control socket lets them in.
    let socket = jobspool::control::serve(&spool)?;
    println!(
        "worker: pid {} holding {db}, control socket at {}",
        std::process::id(),
        socket.path().display()
    );

    let pool = WorkerPool::builder(&spool)
        .concurrency(4)
        .handle(|ctx, email: SendEmail| {
            let result = send_email(&email);
            match &result {
                Ok(_) => println!(
                    "worker: job {} sent {:?} to {}",
                    ctx.job().id,
                    email.subject,
                    email.to
                ),
                Err(e) => println!("worker: job {} failed: {}", ctx.job().id, e.message()),
            }
            result
        })
        .start()?;

    let started = Instant::now();
    let reason = loop {
        if stop.load(Ordering::Relaxed) {
            break "signal received";
        }
        if exit_when_idle {
            let now = spool.stats()?.total;
            let ran = pool.stats();
            let ran_some = ran.completed + ran.failed > 0;
            if now.pending + now.running == 0 && (ran_some || started.elapsed() > IDLE_TIMEOUT) {
                break "idle";
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let ran = pool.stats();
    println!(
        "worker: stopping ({reason}; {} completed, {} failed so far), waiting up to {GRACE:?} \
         for running jobs",
        ran.completed, ran.failed
    );
    let handed_back = pool.shutdown(GRACE);
    // Stop the control socket (no new requests), then flush and release the database.
    drop(socket);
    spool.close()?;
    println!("worker: shut down cleanly ({handed_back} unfinished jobs handed back to pending)");
    Ok(())
}
