//! A web app's producer: enqueues typed jobs into a queue that a worker process may hold.
//!
//! sled lets one process open a database. If a worker (`examples/worker.rs`, or
//! `jobspool work`) holds it, this program goes through that worker's control socket with
//! the typed client; if nobody does, it opens the database itself. The enqueueing code is
//! written once, over `impl jobspool::Queue`, and does not care which one it got.
//!
//! ```sh
//! cargo run --example producer -- ./queue 10     # database path, number of jobs
//! ```

use std::time::Duration;

use jobspool::control::Client;
use jobspool::{Error, JobId, NewJob, Queue, Spool, TypedJob};
use serde::{Deserialize, Serialize};

/// The payload of an `email.send` job. The worker declares the same type (in a real
/// application both would import it from a shared crate).
#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
}

impl TypedJob for SendEmail {
    const KIND: &'static str = "email.send";
}

/// The queue, however we reached it.
enum Target {
    /// Through the control socket of the process that holds the database.
    Remote(Client),
    /// Opened here: nobody else holds it.
    Direct(Spool),
}

/// Reaches the queue the way a second process should: a live control socket first (its
/// process holds the database, so opening it would fail); else the database itself; and
/// if that fails because the database is held after all (a worker that just started),
/// the socket once more.
fn connect(db: &str) -> Result<Target, Error> {
    if let Ok(client) = Client::connect_db(db) {
        return Ok(Target::Remote(client));
    }
    // A producer only enqueues: it runs no scheduler and no maintenance thread (the worker
    // that opens the database next does).
    let opened = Spool::builder()
        .scheduler(false)
        .maintenance(false)
        .open(db);
    match opened {
        Ok(spool) => Ok(Target::Direct(spool)),
        Err(held @ Error::DatabaseInUse { .. }) => {
            Client::connect_db(db).map(Target::Remote).map_err(|_| held)
        }
        Err(e) => Err(e),
    }
}

/// The application code: generic over a local [`Spool`] or a remote [`Client`].
fn enqueue_emails(q: &impl Queue, n: usize) -> Result<Vec<JobId>, Error> {
    let mut ids = Vec::with_capacity(n);
    for i in 1..=n {
        let email = SendEmail {
            to: format!("user{i}@example.com"),
            subject: "Welcome!".into(),
        };
        // The dedupe key makes a retried request (a double click, a client retry) harmless:
        // while a job with the key is pending or running, enqueueing it again returns that
        // job instead of creating a second one.
        let job = q.enqueue(NewJob::typed(&email)?.dedupe_key(format!("welcome-user{i}")))?;
        println!("enqueued {} ({} -> {})", job.id, job.kind, email.to);
        ids.push(job.id);
    }

    // A dedupe hit: a weekly digest, due in 2 s, requested twice. The second request finds
    // the first job still pending and creates nothing (`deduplicated`).
    let digest = SendEmail {
        to: "user1@example.com".into(),
        subject: "Your weekly digest".into(),
    };
    let request = || -> Result<NewJob, Error> {
        Ok(NewJob::typed(&digest)?
            .delay(Duration::from_secs(2))
            .dedupe_key("digest-user1"))
    };
    let first = q.enqueue(request()?)?;
    let again = q.enqueue(request()?)?;
    println!(
        "enqueued {} (digest, due in 2 s); requested again: {} (deduplicated={})",
        first.id, again.id, again.deduplicated
    );
    assert!(again.deduplicated && again.id == first.id);
    ids.push(first.id);
    Ok(ids)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = args.next().unwrap_or_else(|| "./queue".into());
    let n: usize = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|e| format!("number of jobs {s:?}: {e}"))?,
        None => 10,
    };

    let ids = match connect(&db)? {
        Target::Remote(client) => {
            println!(
                "producer: {db} is held by a worker; enqueueing through its control socket {}",
                client.path().display()
            );
            enqueue_emails(&client, n)?
        }
        Target::Direct(spool) => {
            println!("producer: no worker holds {db}; opened the database directly");
            let ids = enqueue_emails(&spool, n)?;
            // Closing flushes and releases the database for the worker that comes next.
            spool.close()?;
            ids
        }
    };
    println!("producer: done, {} jobs enqueued", ids.len());
    Ok(())
}
