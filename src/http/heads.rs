//! The request reader: one thread holds every connection whose request has not fully
//! arrived, reads what each has sent without blocking, and hands a connection to the
//! workers only once its whole request (head and body) has come. A request that is refused
//! whatever its body holds (malformed, over a limit, late, or refused by the router's checks
//! on its head: Host, method, token, same origin) is answered here, also without blocking,
//! before its body is read. So a silent or trickling client, in its head or in its body,
//! costs a buffer here, never a worker, and each request has one deadline for its head and
//! body together, however slowly its bytes come.

use std::any::Any;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::auth;
use super::request::{Method, Request};
use super::response::Response;
use super::router::{self, Settings};
use super::server::{write_response, Conn};
use super::wire::{self, Framed, Reject, HEAD_LIMIT};

/// What the workers get: a connection and its whole request, which passed the checks a
/// head alone can fail.
pub(crate) struct Job {
    pub(crate) conn: Conn,
    pub(crate) req: Request,
}

/// What the reader needs to know.
pub(crate) struct Reader<'a> {
    /// The router's settings, for the checks on a head.
    pub(crate) settings: &'a Settings,
    /// The time a client has to send a whole request.
    pub(crate) limit: Duration,
    /// The time a client has to take a refusal.
    pub(crate) write_timeout: Duration,
    /// The largest body.
    pub(crate) body_limit: usize,
}

/// A connection the reader holds.
struct Pending {
    conn: Conn,
    /// What has come: the head, then the body.
    buf: Vec<u8>,
    /// When the whole request must have come.
    deadline: Instant,
    state: State,
}

enum State {
    /// Reading the head, then, once the head is whole and passed the checks, the body.
    Reading {
        framed: Option<Framed>,
        /// Bytes to send before the answer (a `100 Continue`), not yet written.
        owed: Vec<u8>,
    },
    /// Writing a refusal (`out[at..]` is left), by `until`.
    Answering {
        out: Vec<u8>,
        at: usize,
        until: Instant,
    },
    /// The refusal is out and the writing side shut: reading and dropping what the client
    /// still sends (at most `left` bytes, until `until`), so that closing does not reset the
    /// connection before the client has read the answer.
    Draining { until: Instant, left: usize },
}

/// How long the reader sleeps between passes over its connections when none had anything.
const POLL: Duration = Duration::from_millis(5);

/// How long a refused connection is drained, at most, and how much is read from it.
const DRAIN_TIME: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// What a server that reads the body after a `100-continue` expectation sends first.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Runs until `incoming` is closed (the accept thread ended) and no connection is pending,
/// or `stopping` is set (pending connections are then closed):
/// takes new connections from `incoming`, reads their requests, sends whole ones on to
/// `workers` and answers the refused ones itself.
pub(crate) fn run(
    incoming: &Receiver<Conn>,
    workers: &Sender<Job>,
    reader: &Reader<'_>,
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
                Ok(conn) => admit(&mut pending, conn, reader.limit),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    continue;
                }
            }
        }
        while let Ok(conn) = incoming.try_recv() {
            admit(&mut pending, conn, reader.limit);
        }
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut progressed = false;
        let now = Instant::now();
        let mut i = 0;
        while i < pending.len() {
            match step(&mut pending[i], now, reader) {
                Step::Wait => i += 1,
                Step::Progress => {
                    progressed = true;
                    i += 1;
                }
                Step::Drop => {
                    pending.swap_remove(i);
                }
                Step::Ready(req) => {
                    progressed = true;
                    let conn = pending.swap_remove(i).conn;
                    // Blocking again: the worker's writes carry the write timeout.
                    if conn.stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    if let Some(p) = hand(workers, Job { conn, req }, now, reader) {
                        pending.push(p);
                    }
                }
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
        state: State::Reading {
            framed: None,
            owed: Vec::new(),
        },
    });
}

/// Gives `job` to a worker; when every worker is busy and the queue is full (or no worker
/// runs), the connection back, to be answered 503 here.
fn hand(workers: &Sender<Job>, job: Job, now: Instant, reader: &Reader<'_>) -> Option<Pending> {
    let (conn, why) = match workers.try_send(job) {
        Ok(()) => return None,
        Err(TrySendError::Full(job)) => (
            job.conn,
            "every HTTP worker is busy and the queue is full; retry later",
        ),
        Err(TrySendError::Disconnected(job)) => (
            job.conn,
            "no HTTP worker is running (the server is stopping); retry later",
        ),
    };
    conn.stream.set_nonblocking(true).ok()?;
    let mut p = Pending {
        conn,
        buf: Vec::new(),
        deadline: now,
        state: State::Draining {
            until: now,
            left: 0,
        },
    };
    p.answer(
        now,
        reader,
        &Response::text(503, why).header("Retry-After", "1"),
        false,
    );
    Some(p)
}

enum Step {
    /// Nothing new.
    Wait,
    /// Some bytes came or went.
    Progress,
    /// Done with (closed, failed, silent past the deadline, or answered): close quietly.
    Drop,
    /// The whole request: for a worker.
    Ready(Request),
}

fn step(p: &mut Pending, now: Instant, reader: &Reader<'_>) -> Step {
    match p.state {
        State::Reading { .. } => p.read(now, reader),
        State::Answering { .. } => p.write(now),
        State::Draining { .. } => p.drain(now),
    }
}

impl Pending {
    /// Reads what has come of the request and checks its head once whole.
    fn read(&mut self, now: Instant, reader: &Reader<'_>) -> Step {
        let mut progressed = false;
        if let State::Reading { owed, .. } = &mut self.state {
            match write_some(&self.conn.stream, owed) {
                Ok(true) => progressed = true,
                Ok(false) => {}
                Err(()) => return Step::Drop,
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let State::Reading { framed, owed } = &mut self.state else {
                return Step::Progress;
            };
            if framed.is_none() && wire::find_head_end(&self.buf).is_some() {
                let f = match wire::frame(&self.buf, reader.body_limit, auth::nonce()) {
                    Some(Ok(f)) => f,
                    Some(Err(reject)) => return self.refuse(now, reader, &reject),
                    None => return self.refuse(now, reader, &Reject::new(400, "no head")),
                };
                let head_only = f.req.method == Method::Head;
                if let Some(r) = head_refusal(reader.settings, &f.req) {
                    return self.answer(now, reader, &r, head_only);
                }
                let expect = f.req.header("expect");
                if let Some(v) = expect.filter(|v| !v.eq_ignore_ascii_case("100-continue")) {
                    let msg = format!("Expect: {v:?} is not understood; only 100-continue is");
                    return self.answer(now, reader, &Response::text(417, &msg), head_only);
                }
                // (An HTTP/1.0 client knows no 100; a body already here needs none.)
                if expect.is_some() && !f.http10 && self.buf.len() < f.body_start + f.body_len {
                    owed.extend_from_slice(CONTINUE);
                    if write_some(&self.conn.stream, owed).is_err() {
                        return Step::Drop;
                    }
                }
                *framed = Some(f);
            }
            let want = match framed {
                Some(f) => {
                    let end = f.body_start + f.body_len;
                    if self.buf.len() >= end && owed.is_empty() {
                        let Some(Framed {
                            mut req,
                            body_start,
                            body_len,
                            ..
                        }) = framed.take()
                        else {
                            return Step::Drop;
                        };
                        let mut body = self.buf.split_off(body_start.min(self.buf.len()));
                        // Pipelined bytes after the body: one request per connection anyway.
                        body.truncate(body_len);
                        req.body = body;
                        return Step::Ready(req);
                    }
                    end.saturating_sub(self.buf.len())
                }
                None => {
                    if self.buf.len() >= HEAD_LIMIT {
                        return self.refuse(now, reader, &wire::head_too_long());
                    }
                    HEAD_LIMIT + 4 - self.buf.len()
                }
            };
            if want == 0 {
                // The body is whole, a `100 Continue` is still on its way out.
                break;
            }
            let want = want.min(chunk.len());
            let in_head = framed.is_none();
            match self.conn.stream.read(&mut chunk[..want]) {
                Ok(0) if self.buf.is_empty() => return Step::Drop,
                Ok(0) => {
                    let msg = if in_head {
                        "the connection closed inside the request head"
                    } else {
                        "the connection closed inside the body"
                    };
                    return self.refuse(now, reader, &Reject::new(400, msg));
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    progressed = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return Step::Drop,
            }
        }
        if now >= self.deadline {
            if self.buf.is_empty() {
                return Step::Drop;
            }
            let in_head = matches!(self.state, State::Reading { framed: None, .. });
            let msg = if in_head {
                "the request head was not sent in time"
            } else {
                "the request body was not sent in time"
            };
            return self.refuse(now, reader, &Reject::new(408, msg));
        }
        if progressed {
            Step::Progress
        } else {
            Step::Wait
        }
    }

    /// Answers a request that could not be read (nothing for a peer that sent nothing).
    fn refuse(&mut self, now: Instant, reader: &Reader<'_>, e: &Reject) -> Step {
        let Some(status) = e.status else {
            return Step::Drop;
        };
        self.answer(now, reader, &Response::text(status, &e.message), false)
    }

    /// Starts writing `r` (then the connection closes).
    fn answer(&mut self, now: Instant, reader: &Reader<'_>, r: &Response, head_only: bool) -> Step {
        tracing::debug!(status = r.status, "http: request refused unread");
        let mut out = Vec::new();
        if let State::Reading { owed, .. } = &self.state {
            // The rest of a `100 Continue` goes out first.
            out.extend_from_slice(owed);
        }
        if write_response(&mut out, r, head_only).is_err() {
            return Step::Drop;
        }
        self.buf = Vec::new();
        self.state = State::Answering {
            out,
            at: 0,
            until: now + reader.write_timeout,
        };
        self.write(now)
    }

    /// Writes what is left of the answer; once out, shuts the writing side and drains.
    fn write(&mut self, now: Instant) -> Step {
        let State::Answering { out, at, until } = &mut self.state else {
            return Step::Drop;
        };
        let mut progressed = false;
        while *at < out.len() {
            match (&self.conn.stream).write(&out[*at..]) {
                Ok(0) => return Step::Drop,
                Ok(n) => {
                    *at += n;
                    progressed = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if now >= *until {
                        return Step::Drop;
                    }
                    return if progressed {
                        Step::Progress
                    } else {
                        Step::Wait
                    };
                }
                Err(_) => return Step::Drop,
            }
        }
        let _ = self.conn.stream.shutdown(std::net::Shutdown::Write);
        self.state = State::Draining {
            until: now + DRAIN_TIME,
            left: DRAIN_BYTES,
        };
        self.drain(now)
    }

    /// Reads and drops what the client still sends, until it closes or the time is up.
    fn drain(&mut self, now: Instant) -> Step {
        let State::Draining { until, left } = &mut self.state else {
            return Step::Drop;
        };
        let mut sink = [0u8; 16 * 1024];
        let mut progressed = false;
        while *left > 0 && now < *until {
            match self.conn.stream.read(&mut sink) {
                Ok(0) => return Step::Drop,
                Ok(n) => {
                    *left = left.saturating_sub(n);
                    progressed = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return if progressed {
                        Step::Progress
                    } else {
                        Step::Wait
                    };
                }
                Err(_) => return Step::Drop,
            }
        }
        Step::Drop
    }
}

/// The router's refusal of a head, if any; a panic in it is a 500 (this thread must live).
fn head_refusal(settings: &Settings, req: &Request) -> Option<Response> {
    catch_unwind(AssertUnwindSafe(|| router::refusal(settings, req))).unwrap_or_else(
        |panic: Box<dyn Any + Send>| {
            tracing::error!(
                panic = super::server::panic_text(&*panic),
                "http: checking a request head panicked"
            );
            Some(Response::text(
                500,
                "internal error: the server failed while reading the request",
            ))
        },
    )
}

/// Writes what it can of `owed` without blocking, dropping what went out: whether anything
/// did; `Err` when the connection failed.
fn write_some(stream: &std::net::TcpStream, owed: &mut Vec<u8>) -> Result<bool, ()> {
    let mut sent = 0;
    while sent < owed.len() {
        match (&*stream).write(&owed[sent..]) {
            Ok(0) => return Err(()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => return Err(()),
        }
    }
    owed.drain(..sent);
    Ok(sent > 0)
}
