//! The head reader: one thread holds every connection whose request head has not fully
//! arrived, reads what each has sent without blocking, and hands a connection to the
//! workers only once its head is whole (or it must be refused). So a silent or trickling
//! client costs a buffer here, never a worker, and each request has one deadline for its
//! head and body together, however slowly its bytes come.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::server::Conn;
use super::wire::{self, Reject, HEAD_LIMIT};

/// What the workers get.
pub(crate) enum Job {
    /// A connection whose head is whole: `buf` holds it and whatever body bytes came with
    /// it; `deadline` is when the whole request must have arrived.
    Request {
        conn: Conn,
        buf: Vec<u8>,
        deadline: Instant,
    },
    /// A connection to answer with this refusal (and close).
    Refuse { conn: Conn, reject: Reject },
}

/// A connection still sending its head.
struct Pending {
    conn: Conn,
    buf: Vec<u8>,
    deadline: Instant,
}

/// How long the reader sleeps between passes over its connections when none had anything.
const POLL: Duration = Duration::from_millis(5);

/// Runs until `incoming` is closed (the accept thread ended) and no connection is pending,
/// or `stopping` is set (pending connections are then closed):
/// takes new connections from `incoming`, reads their heads, sends them on to `workers`.
/// `limit` is the time a client has to send a whole request.
pub(crate) fn run(
    incoming: &Receiver<Conn>,
    workers: &Sender<Job>,
    limit: Duration,
    stopping: &AtomicBool,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut closed = false;
    loop {
        // Take new connections: wait for one when idle, else only what is queued.
        if pending.is_empty() {
            if closed {
                return;
            }
            match incoming.recv_timeout(Duration::from_millis(200)) {
                Ok(conn) => admit(&mut pending, conn, limit),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    continue;
                }
            }
        }
        while let Ok(conn) = incoming.try_recv() {
            admit(&mut pending, conn, limit);
        }
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut progressed = false;
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            let job = match step(&mut pending[i], now) {
                Step::Wait => {
                    i += 1;
                    continue;
                }
                Step::Progress => {
                    progressed = true;
                    i += 1;
                    continue;
                }
                Step::Drop => {
                    pending.swap_remove(i);
                    continue;
                }
                Step::Ready => {
                    let Pending {
                        conn,
                        buf,
                        deadline,
                    } = pending.swap_remove(i);
                    Job::Request {
                        conn,
                        buf,
                        deadline,
                    }
                }
                Step::Refuse(reject) => Job::Refuse {
                    conn: pending.swap_remove(i).conn,
                    reject,
                },
            };
            progressed = true;
            let conn = match &job {
                Job::Request { conn, .. } | Job::Refuse { conn, .. } => conn,
            };
            // Blocking again: the worker's reads carry timeouts bounded by the deadline.
            if conn.stream.set_nonblocking(false).is_ok() {
                hand(workers, job);
            }
        }
        if !progressed && !pending.is_empty() {
            std::thread::sleep(POLL);
        }
    }
}

fn admit(pending: &mut Vec<Pending>, conn: Conn, limit: Duration) {
    if conn.stream.set_nonblocking(true).is_err() {
        return;
    }
    pending.push(Pending {
        conn,
        buf: Vec::new(),
        deadline: Instant::now() + limit,
    });
}

/// Gives `job` to a worker; when every worker is busy and the queue is full, answers 503
/// (a request) or drops the connection (a refusal).
fn hand(workers: &Sender<Job>, job: Job) {
    match workers.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(Job::Request { conn, .. })) => super::server::refuse(
            conn,
            "every HTTP worker is busy and the queue is full; retry later",
        ),
        Err(TrySendError::Disconnected(Job::Request { conn, .. })) => {
            super::server::refuse(
                conn,
                "no HTTP worker is running (the server is stopping); retry later",
            );
        }
        Err(_) => {}
    }
}

enum Step {
    /// Nothing new.
    Wait,
    /// Some bytes came, the head is not whole yet.
    Progress,
    /// Closed or failed before sending anything, or silent past the deadline: close quietly.
    Drop,
    /// The head is whole: for a worker.
    Ready,
    /// To be answered with this refusal.
    Refuse(Reject),
}

fn step(p: &mut Pending, now: Instant) -> Step {
    let mut chunk = [0u8; 4096];
    let mut progressed = false;
    loop {
        if wire::find_head_end(&p.buf).is_some() {
            return Step::Ready;
        }
        if p.buf.len() >= HEAD_LIMIT {
            return Step::Refuse(wire::head_too_long());
        }
        let want = (HEAD_LIMIT + 4 - p.buf.len()).min(chunk.len());
        match p.conn.stream.read(&mut chunk[..want]) {
            Ok(0) if p.buf.is_empty() => return Step::Drop,
            Ok(0) => {
                return Step::Refuse(Reject::new(
                    400,
                    "the connection closed inside the request head",
                ))
            }
            Ok(n) => {
                p.buf.extend_from_slice(&chunk[..n]);
                progressed = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => return Step::Drop,
        }
    }
    if now >= p.deadline {
        if p.buf.is_empty() {
            return Step::Drop;
        }
        return Step::Refuse(Reject::new(408, "the request head was not sent in time"));
    }
    if progressed {
        Step::Progress
    } else {
        Step::Wait
    }
}
