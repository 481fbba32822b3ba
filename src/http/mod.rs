//! The HTTP door: the operations as a JSON API, an OpenAPI document, the event log as
//! Server-Sent Events, Prometheus metrics and the dashboard's pages, served from a spool
//! (feature `http`; the binary's `jobspool serve --http ADDR` runs it).
//!
//! ```no_run
//! use jobspool::{http::HttpConfig, Spool};
//!
//! let spool = Spool::open("queue")?;
//! let server = jobspool::http::serve(&spool, HttpConfig::new("127.0.0.1:7420".parse().unwrap()))?;
//! println!("open {}", server.login_url());      // carries the token generated at start
//! // curl -H "Authorization: Bearer $TOKEN" -d '{"jobId":"..."}' \
//! //      http://127.0.0.1:7420/api/v1/ops/jobs.get
//! # Ok::<(), jobspool::Error>(())
//! ```
//!
//! The server is a small blocking HTTP/1.1 server of our own (one request per connection,
//! bounded heads and bodies, one deadline per request): an accept thread, a thread that
//! reads requests (heads and bodies) without blocking, a fixed pool of worker threads that
//! get only whole requests, and one thread per event stream (at most [`HttpConfig::max_event_streams`]).
//! Every request runs through the same checks, in this order: the `Host` header must be on
//! the allow-list (else 421), the token must be given (bearer header or login cookie; else
//! 401), a POST must come from this site (else 403), a mutation is refused in read-only mode
//! (403). The API runs each request as an [`crate::Op`] on the spool, so it answers exactly
//! what the control socket answers.

mod api;
mod auth;
pub(crate) mod dashboard;
mod heads;
mod metrics;
mod openapi;
mod request;
mod response;
mod router;
mod server;
mod sse;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::model::error::{Error, Result};
use crate::Spool;

// `Method` is for the dashboard's pages.
#[allow(unused_imports)]
pub(crate) use request::{Method, Request};
pub(crate) use response::Response;

/// What the dashboard and the API handlers get with each request.
pub(crate) struct Ctx {
    /// The spool the server serves (run [`crate::Op`]s on it, or read through its methods).
    pub(crate) spool: Spool,
    /// Read-only mode: mutations are refused (403) before they reach a handler; pages hide
    /// their actions.
    pub(crate) read_only: bool,
}

/// Default largest request body, in bytes: a 1 MiB payload in base64 plus room for the
/// other fields (the spool's own payload limit applies after that).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024 + 64 * 1024;

/// How to serve: the address, the token and the bounds. Start from [`HttpConfig::new`].
/// (`Debug` leaves the token out.)
#[derive(Clone)]
pub struct HttpConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) token: Option<String>,
    pub(crate) read_only: bool,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) workers: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_event_streams: usize,
    pub(crate) body_limit: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) heartbeat: Duration,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("read_only", &self.read_only)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("workers", &self.workers)
            .field("max_connections", &self.max_connections)
            .field("max_event_streams", &self.max_event_streams)
            .field("body_limit", &self.body_limit)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl Default for HttpConfig {
    /// `127.0.0.1:7420`, otherwise as [`HttpConfig::new`].
    fn default() -> HttpConfig {
        HttpConfig::new(SocketAddr::from(([127, 0, 0, 1], 7420)))
    }
}

impl HttpConfig {
    /// Serve on `bind` (port 0 picks a free one; see [`HttpServer::addr`]), with a random
    /// token, 4 workers, at most 64 connections and 8 event streams, bodies up to
    /// [`DEFAULT_BODY_LIMIT`], 10 s to send a request and for each write, a heartbeat every 15 s on
    /// event streams.
    #[must_use]
    pub fn new(bind: SocketAddr) -> HttpConfig {
        HttpConfig {
            bind,
            token: None,
            read_only: false,
            allowed_hosts: Vec::new(),
            workers: 4,
            max_connections: 64,
            max_event_streams: 8,
            body_limit: DEFAULT_BODY_LIMIT,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(15),
        }
    }

    /// The token clients must give (`Authorization: Bearer T`, or `/?token=T` once in a
    /// browser). Without one, a random 128-bit token is made at start
    /// ([`HttpServer::login_url`] carries it); a non-loopback address needs one.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> HttpConfig {
        self.token = Some(token.into());
        self
    }

    /// Refuse every mutation (403); reads, pages and events still work.
    #[must_use]
    pub fn read_only(mut self, on: bool) -> HttpConfig {
        self.read_only = on;
        self
    }

    /// Also accept requests addressed to `host` (`name` or `name:port`), e.g. the name of a
    /// reverse proxy in front of the server. The bound address is always accepted, and
    /// `localhost`, `127.0.0.1` and `[::1]` when bound to loopback; bound to `0.0.0.0` or
    /// `::`, those loopback names and at least one allowed name are needed (the first makes
    /// [`HttpServer::url`]).
    #[must_use]
    pub fn allow_host(mut self, host: impl Into<String>) -> HttpConfig {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Threads answering requests (at least 1).
    #[must_use]
    pub fn workers(mut self, n: usize) -> HttpConfig {
        self.workers = n.max(1);
        self
    }

    /// Connections open at once (waiting ones included); more are answered 503 and closed.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> HttpConfig {
        self.max_connections = n.max(1);
        self
    }

    /// Event streams open at once; more are answered 503.
    #[must_use]
    pub fn max_event_streams(mut self, n: usize) -> HttpConfig {
        self.max_event_streams = n;
        self
    }

    /// Largest request body in bytes; larger ones are answered 413 unread.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> HttpConfig {
        self.body_limit = bytes;
        self
    }

    /// How long a client may take to send a whole request (head and body, counted from the
    /// connection's accept, however slowly its bytes come; else 408), and to take each
    /// write of the answer.
    #[must_use]
    pub fn timeouts(mut self, read: Duration, write: Duration) -> HttpConfig {
        self.read_timeout = read.max(Duration::from_millis(1));
        self.write_timeout = write.max(Duration::from_millis(1));
        self
    }

    /// How often an idle event stream sends a comment line, so proxies and clients know it
    /// is alive.
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> HttpConfig {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }
}

/// Serves `spool` over HTTP until [`HttpServer::shutdown`], the handle's drop, or the
/// spool's close.
///
/// # Errors
/// `INVALID_ARGUMENT` for a non-loopback address without a token, an unspecified address
/// (`0.0.0.0`, `::`) without an allowed host name, or an empty token;
/// `STORAGE` when the address cannot be bound or the threads cannot start.
pub fn serve(spool: &Spool, config: HttpConfig) -> Result<HttpServer> {
    if let Some(t) = &config.token {
        // It travels in a header and a cookie: visible ASCII without the cookie's separators.
        let bad = |b: u8| !b.is_ascii_graphic() || matches!(b, b';' | b',' | b'"' | b'\\');
        if t.is_empty() || t.len() > 1024 || t.bytes().any(bad) {
            return Err(Error::invalid(
                "the HTTP token must be 1 to 1024 visible ASCII characters without spaces, \
                 ';', ',', '\"' or '\\'",
            ));
        }
    }
    if !config.bind.ip().is_loopback() && config.token.is_none() {
        return Err(Error::invalid(format!(
            "refusing to serve HTTP on {}, which is not a loopback address, without a token: \
             give one (--token T or JOBSPOOL_HTTP_TOKEN), or bind 127.0.0.1",
            config.bind
        )));
    }
    if config.bind.ip().is_unspecified() && config.allowed_hosts.is_empty() {
        return Err(Error::invalid(format!(
            "serving HTTP on {} (every interface) needs the host names clients will use: \
             give each with --allow-host NAME (HttpConfig::allow_host), e.g. the machine's \
             name; localhost and 127.0.0.1 are accepted as well",
            config.bind
        )));
    }
    let token = match &config.token {
        Some(t) => t.clone(),
        None => auth::random_token()?,
    };
    let config_hosts = config.allowed_hosts.clone();
    let server = server::Server::start(spool.downgrade(), config, token)?;
    let addr = server.addr();
    let url = base_url(addr, &config_hosts);
    let login_url = format!("{url}?token={}", request::percent_encode(server.token()));
    let slot = Arc::new(Mutex::new(Some(server)));
    let on_close = Arc::downgrade(&slot);
    spool.on_close(move || {
        if let Some(slot) = on_close.upgrade() {
            if let Some(mut server) = slot.lock().take() {
                server.stop();
            }
        }
    });
    Ok(HttpServer {
        addr,
        url,
        login_url,
        server: slot,
    })
}

/// `http://HOST:PORT/` for the bound address; for an unspecified one (`0.0.0.0`, `::`),
/// the first allowed host name (with the bound port unless it names one).
fn base_url(addr: SocketAddr, hosts: &[String]) -> String {
    match hosts.first() {
        Some(h) if addr.ip().is_unspecified() => {
            let has_port = h.rsplit_once(':').is_some_and(|(name, p)| {
                !name.ends_with(':')
                    && p.parse::<u16>().is_ok()
                    && (!name.contains(':') || name.ends_with(']'))
            });
            if has_port {
                format!("http://{h}/")
            } else {
                format!("http://{h}:{}/", addr.port())
            }
        }
        _ => format!("http://{addr}/"),
    }
}

/// A running HTTP server; dropping it (or closing the spool) stops it.
pub struct HttpServer {
    addr: SocketAddr,
    url: String,
    login_url: String,
    server: Arc<Mutex<Option<server::Server>>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("serving", &self.server.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// The address it listens on (the real port when bound to port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`: the address clients use (bound to `0.0.0.0` or `::`, the first
    /// allowed host name, with the bound port unless the name gives one).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// [`HttpServer::url`] with `?token=T`: opening it in a browser logs in (the token moves into a
    /// cookie and out of the address bar). It holds the token: show it only to the operator.
    #[must_use]
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// Stops serving: the listener closes, event streams are shut down, requests being
    /// answered finish.
    pub fn shutdown(&self) {
        if let Some(mut server) = self.server.lock().take() {
            server.stop();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads `bytes` as one request and routes it on `spool` (token `fuzz-token`, bound to
/// 127.0.0.1:7420), as the server would; the status answered (an event stream is 200 and
/// not streamed). For the fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_request(spool: &Spool, bytes: &[u8]) -> u16 {
    let settings = router::Settings {
        token: "fuzz-token".into(),
        read_only: bytes.first() == Some(&b'R'),
        hosts: auth::Hosts::new(SocketAddr::from(([127, 0, 0, 1], 7420)), &[]),
        sessions: auth::Sessions::new(7420),
    };
    let mut input = std::io::Cursor::new(bytes);
    match wire::read_request(&mut input, 64 * 1024, "fuzz".into()) {
        Err(e) => e.status.unwrap_or(0),
        Ok(req) => match router::route(&settings, &spool.downgrade(), &req) {
            router::Routed::Done(r) => {
                let mut out = Vec::new();
                let _ = server::write_response(&mut out, &r, req.method == Method::Head);
                assert!(out.starts_with(b"HTTP/1.1 "), "a status line");
                r.status
            }
            router::Routed::Events { .. } => 200,
        },
    }
}
