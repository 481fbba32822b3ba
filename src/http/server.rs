//! The server's threads: one accepts connections (at most `max_connections` open at once,
//! the rest answered 503 and closed), one reads their requests, heads and bodies, without
//! blocking and answers those refused from the head alone (`heads.rs`: a silent or slow
//! client holds no worker), a fixed pool of workers routes each whole request and writes
//! the answer, and each event stream gets a thread of its own (at most
//! `max_event_streams`). Each request has one deadline for its head and body together (the
//! read timeout); writes carry the write timeout.

use std::any::Any;
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver};
use parking_lot::Mutex;

use super::auth::{self, Hosts};
use super::heads::{self, Job, Reader};
use super::request::{Method, Request};
use super::response::{reason, Response, DEFAULT_CSP};
use super::router::{route, Routed, Settings};
use super::HttpConfig;
use crate::model::error::{Error, Result};
use crate::WeakSpool;

/// What every thread shares.
struct Shared {
    settings: Settings,
    spool: WeakSpool,
    body_limit: usize,
    read_timeout: Duration,
    write_timeout: Duration,
    heartbeat: Duration,
    max_connections: usize,
    max_event_streams: usize,
    stopping: AtomicBool,
    connections: AtomicUsize,
    event_streams: AtomicUsize,
    /// The open event streams' sockets, so stopping can shut them down at once.
    streams: Mutex<HashMap<u64, TcpStream>>,
    next_stream: AtomicU64,
}

/// A running server.
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `config.bind` and starts the threads.
    pub(crate) fn start(spool: WeakSpool, config: HttpConfig, token: String) -> Result<Server> {
        let listener = TcpListener::bind(config.bind)
            .map_err(|e| Error::storage(format!("binding the HTTP address {}", config.bind), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::storage("reading the bound HTTP address", e))?;
        let shared = Arc::new(Shared {
            settings: Settings {
                token,
                read_only: config.read_only,
                hosts: Hosts::new(addr, &config.allowed_hosts),
                sessions: auth::Sessions::new(addr.port()),
            },
            spool,
            body_limit: config.body_limit,
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            heartbeat: config.heartbeat,
            max_connections: config.max_connections,
            max_event_streams: config.max_event_streams,
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            event_streams: AtomicUsize::new(0),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(0),
        });
        let (tx, incoming) = bounded::<Conn>(config.max_connections);
        let (to_workers, rx) = bounded::<Job>(config.max_connections);
        let reader_shared = shared.clone();
        std::thread::Builder::new()
            .name("jobspool-http-heads".into())
            .spawn(move || {
                let reader = Reader {
                    settings: &reader_shared.settings,
                    limit: reader_shared.read_timeout,
                    write_timeout: reader_shared.write_timeout,
                    body_limit: reader_shared.body_limit,
                };
                heads::run(&incoming, &to_workers, &reader, &reader_shared.stopping);
            })
            .map_err(|e| Error::storage("starting the HTTP head reader thread", e))?;
        for i in 0..config.workers {
            let rx: Receiver<Job> = rx.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("jobspool-http-{i}"))
                .spawn(move || {
                    for job in rx {
                        serve(&shared, job);
                    }
                })
                .map_err(|e| Error::storage("starting an HTTP worker thread", e))?;
        }
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name("jobspool-http".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else {
                        // Out of file descriptors and the like: do not spin.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    let conn = Conn::new(stream, &accept_shared);
                    if accept_shared.connections.load(Ordering::SeqCst)
                        > accept_shared.max_connections
                    {
                        refuse(conn, "too many connections are open; retry later");
                        continue;
                    }
                    if let Err(e) = tx.try_send(conn) {
                        refuse(
                            e.into_inner(),
                            "too many connections are waiting to be read; retry later",
                        );
                    }
                }
            })
            .map_err(|e| Error::storage("starting the HTTP accept thread", e))?;
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn token(&self) -> &str {
        &self.shared.settings.token
    }

    /// Stops accepting (the listener closes) and shuts event streams down; workers finish
    /// the request in hand and exit.
    pub(crate) fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for s in self.shared.streams.lock().values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(handle) = self.accept.take() {
            // accept() blocks: one connection wakes it, and it sees `stopping`.
            let mut wake = self.addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok();
            if woke && handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An accepted connection, counted until dropped.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    shared: Arc<Shared>,
}

impl Conn {
    fn new(stream: TcpStream, shared: &Arc<Shared>) -> Conn {
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_read_timeout(Some(shared.read_timeout));
        let _ = stream.set_write_timeout(Some(shared.write_timeout));
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            shared: shared.clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers 503 at once and closes (the accept thread cannot wait on a slow client).
pub(crate) fn refuse(mut conn: Conn, why: &str) {
    let _ = conn
        .stream
        .set_write_timeout(Some(Duration::from_millis(200)));
    let r = Response::text(503, why).header("Retry-After", "1");
    let _ = write_response(&mut conn.stream, &r, false);
}

/// Answers one whole request, closes.
fn serve(shared: &Shared, job: Job) {
    let Job { mut conn, req } = job;
    if shared.stopping.load(Ordering::SeqCst) {
        return;
    }
    let started = Instant::now();
    let span = tracing::debug_span!("http.request", method = ?req.method, path = %req.path);
    let _enter = span.enter();
    let routed = catch_unwind(AssertUnwindSafe(|| {
        route(&shared.settings, &shared.spool, &req)
    }))
    .unwrap_or_else(|panic| Routed::Done(internal_error(&req, &*panic)));
    match routed {
        Routed::Done(resp) => {
            let head_only = req.method == Method::Head;
            let written = catch_unwind(AssertUnwindSafe(|| {
                write_response(&mut conn.stream, &resp, head_only)
            }));
            if let Err(panic) = written {
                tracing::error!(
                    panic = panic_text(&*panic),
                    "http: writing an answer panicked"
                );
            }
            tracing::debug!(
                status = resp.status,
                micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "http: answered"
            );
        }
        Routed::Events { after } => start_stream(shared, conn, after),
    }
}

/// The answer to a request whose handler panicked (logged here): 500, code `STORAGE` on the
/// API, the same words on a page.
fn internal_error(req: &Request, panic: &(dyn Any + Send)) -> Response {
    let text = panic_text(panic);
    tracing::error!(method = ?req.method, path = %req.path, panic = text, "http: a handler panicked");
    let msg = "internal error: the server failed while answering (its log has the details); \
               retry, and report it if it persists";
    if req.path.starts_with("/api/") || req.path == "/metrics" {
        Response::error(500, "STORAGE", msg)
    } else {
        Response::text(500, msg)
    }
}

/// A panic's message, when it is a string.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// Hands the connection to a thread of its own for an event stream, or answers 503 when
/// `max_event_streams` are open.
fn start_stream(shared: &Shared, conn: Conn, after: Option<u64>) {
    let open = shared.event_streams.fetch_add(1, Ordering::SeqCst);
    if open >= shared.max_event_streams {
        shared.event_streams.fetch_sub(1, Ordering::SeqCst);
        let mut conn = conn;
        let r = Response::error(
            503,
            "BUSY",
            &format!(
                "{} event streams are open, the most this server serves; retry later",
                shared.max_event_streams
            ),
        )
        .header("Retry-After", "5");
        let _ = write_response(&mut conn.stream, &r, false);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("jobspool-http-events".into())
        .spawn(move || {
            let mut conn = conn;
            let shared = conn.shared.clone();
            let id = shared.next_stream.fetch_add(1, Ordering::SeqCst);
            if let Ok(s) = conn.stream.try_clone() {
                shared.streams.lock().insert(id, s);
            }
            // (Checked after registering: a stop from here on shuts the socket down.)
            if !shared.stopping.load(Ordering::SeqCst) {
                tracing::debug!(?after, "http: event stream opened");
                // (A panic ends this stream only; the count below stays right.)
                let peer = conn.stream.try_clone().ok();
                let streamed = catch_unwind(AssertUnwindSafe(|| {
                    super::sse::stream(
                        &mut conn.stream,
                        &shared.spool,
                        after,
                        shared.heartbeat,
                        &shared.stopping,
                        || peer.as_ref().is_some_and(peer_gone),
                    )
                }));
                if let Err(panic) = streamed {
                    tracing::error!(
                        panic = panic_text(&*panic),
                        "http: an event stream panicked"
                    );
                }
            }
            shared.streams.lock().remove(&id);
            shared.event_streams.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!("http: event stream closed");
        });
    if spawned.is_err() {
        shared.event_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the client of an event stream has gone: its side of the connection is closed (a
/// read finds the end, or fails). Waits at most a millisecond; what a client sends on a
/// stream is read and dropped.
fn peer_gone(stream: &TcpStream) -> bool {
    use std::io::{ErrorKind, Read};
    // (The socket's read timeout; its writes keep theirs.)
    if stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .is_err()
    {
        return false;
    }
    let mut sink = [0u8; 512];
    match (&*stream).read(&mut sink) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
        ),
    }
}

/// Writes `r` with the headers every response carries.
pub(crate) fn write_response(
    out: &mut impl Write,
    r: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    for (name, default) in [
        ("Content-Security-Policy", DEFAULT_CSP),
        ("Cache-Control", "no-store"),
    ] {
        if r.get_header(name).is_none() {
            head.push_str(&format!("{name}: {default}\r\n"));
        }
    }
    head.push_str(&format!(
        "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
         Referrer-Policy: no-referrer\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all(&r.body)?;
    }
    out.flush()
}
