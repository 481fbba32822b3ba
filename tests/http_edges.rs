//! Edge cases of the HTTP layer: the bearer scheme's case, HEAD on the event stream, an
//! empty `Last-Event-ID`, the exact connection cap.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fresh;
use common::http::{raw, request, serve, serve_with, TOKEN};

/// Sends `head` and reads what comes within about `wait` in all (the server closing ends
/// it early); whether the server closed.
fn first_bytes(addr: std::net::SocketAddr, head: &str, wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let until = Instant::now() + wait;
    let closed = loop {
        if Instant::now() >= until {
            break false;
        }
        match s.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {TOKEN}");
        let r = request(
            server.addr(),
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(r.status, 200, "{scheme}");
    }
    let r = request(
        server.addr(),
        "GET",
        "/metrics",
        &[("Authorization", &format!("Basic {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 401);
}

#[test]
fn head_on_the_event_stream_does_not_start_a_stream() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.heartbeat(Duration::from_millis(50)));
    let addr = server.addr();
    let (text, closed) = first_bytes(
        addr,
        &format!(
            "HEAD /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ),
        Duration::from_secs(5),
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(!text.contains("heartbeat"), "no stream body: {text}");
    assert!(closed, "the connection closes after the head: {text}");
}

#[test]
fn an_empty_last_event_id_is_no_position() {
    let (_dir, _clock, spool) = fresh();
    spool.enqueue(jobspool::NewJob::new("t", vec![])).unwrap();
    let server = serve(&spool);
    let addr = server.addr();
    // Empty: as if absent, so `?after=0` decides (the whole log).
    let (text, _) = first_bytes(
        addr,
        &format!(
            "GET /api/v1/events?after=0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nLast-Event-ID: \r\n\r\n"
        ),
        Duration::from_millis(1500),
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("id: 1\n"), "{text}");
}

#[test]
fn exactly_max_connections_are_served() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.max_connections(3));
    let addr = server.addr();
    let healthz = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // Two silent connections and this one: three, the cap, all served.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert_eq!(raw(addr, healthz.as_bytes()).status, 200);
    // A third silent one: the fourth connection is over the cap (the server may take a
    // moment to count the third).
    let third = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw(addr, healthz.as_bytes()).status != 503 {
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((held, third));
}
