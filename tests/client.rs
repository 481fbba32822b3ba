//! A second process: the typed client against a running `jobspool work`, which holds the
//! database. Opening the database fails with DATABASE_IN_USE naming that process; the
//! client enqueues a typed job, sees it complete, and gets `Error::JobNotFound` for an
//! unknown id, exactly as from a local spool.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobspool::control::Client;
use jobspool::{Error, JobId, JobStatus, NewJob, Queue, Spool};

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Generic over local and remote: what an application's producer would write.
fn produce(q: &impl Queue, body: &[u8]) -> jobspool::Result<JobId> {
    Ok(q.enqueue(NewJob::new("t", body.to_vec()).queue("default"))?
        .id)
}

#[test]
fn a_typed_client_reaches_a_running_worker() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue");
    let worker = Worker(
        Command::new(env!("CARGO_BIN_EXE_jobspool"))
            .arg("--db")
            .arg(&db)
            .args(["work", "--handler", "t=cat"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = wait_for("the worker's control socket", || {
        Client::connect_db(&db).ok()
    });

    // The database is held: opening it names the holder and says how to reach it.
    let e = Spool::open(&db).unwrap_err();
    assert!(
        matches!(&e, Error::DatabaseInUse { holder: Some(pid), .. } if *pid == worker.0.id()),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("process {} (jobspool)", worker.0.id())),
        "{msg}"
    );
    assert!(msg.contains("control::Client::connect_db"), "{msg}");

    let body = b"\xff\x00 bytes, then {\"json\": 12345678901234567890123}";
    let id = produce(&client, body).unwrap();
    let done = wait_for("the job to complete", || {
        let j = client.get(id).unwrap();
        (j.status == JobStatus::Completed).then_some(j)
    });
    assert_eq!(done.payload, body);
    assert_eq!(
        done.result.as_deref(),
        Some(&body[..]),
        "cat echoes the payload"
    );
    assert_eq!(done.attempts, 1);

    let unknown: JobId = "01936b5e-4d2a-7c3e-9f00-00000000dead".parse().unwrap();
    let e = client.get(unknown).unwrap_err();
    assert!(matches!(e, Error::JobNotFound { .. }), "{e:?}");
    assert!(e.is_not_found());
    drop(worker);
}
