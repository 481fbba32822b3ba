//! Clients that stall or misbehave cannot take the server down: idle and trickling
//! connections hold no worker, a panicking handler costs one 500, not a thread.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fresh;
use common::http::{read_reply, serve, TOKEN};

/// Whether the server still holds `s` open (it has neither answered nor closed it).
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let open = matches!((&*s).read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

#[test]
fn idle_and_trickling_connections_do_not_block_other_requests() {
    let (_dir, _clock, spool) = fresh();
    // The defaults: 4 workers, 10 s to send a request.
    let server = serve(&spool);
    let addr = server.addr();
    let silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tricklers = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .unwrap();
        let stop = stop.clone();
        tricklers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if s.write_all(b"X-Slow: 1\r\n").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            s
        }));
    }
    // Answered before any stalled connection has used up its 10 s: the client gives up
    // at 8 s, and every stalled connection is still open afterwards.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 200, "{}", r.text());
    stop.store(true, Ordering::SeqCst);
    let tricklers: Vec<TcpStream> = tricklers.into_iter().map(|t| t.join().unwrap()).collect();
    for c in silent.iter().chain(&tricklers) {
        assert!(still_open(c), "a stalled connection was already closed");
    }
}

/// A clock that panics while `panicking` is set, when read on one of the HTTP server's
/// threads (the spool's own threads read it too, and are not under test here).
#[derive(Clone)]
struct PanickyClock {
    panicking: Arc<AtomicBool>,
}

impl jobspool::Clock for PanickyClock {
    fn now_ms(&self) -> i64 {
        let on_http = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("jobspool-http"));
        assert!(
            !(on_http && self.panicking.load(Ordering::SeqCst)),
            "the test clock panics on purpose"
        );
        common::t0().timestamp_millis()
    }
}

#[test]
fn a_panicking_handler_answers_500_and_keeps_its_worker() {
    let dir = common::tempdir();
    let panicking = Arc::new(AtomicBool::new(false));
    let spool = jobspool::Spool::builder()
        .clock(PanickyClock {
            panicking: panicking.clone(),
        })
        .maintenance(false)
        .scheduler(false)
        .open(common::db_path(&dir))
        .unwrap();
    let server = common::http::serve_with(&spool, |c| c.workers(2));
    let addr = server.addr();
    // The overview page reads the spool's clock on the worker thread.
    let overview = || common::http::get(addr, "/");
    assert_eq!(overview().status, 200);
    panicking.store(true, Ordering::SeqCst);
    // More panics than workers: each one is a 500, and the server keeps answering.
    for _ in 0..5 {
        let r = overview();
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("internal error"), "{}", r.text());
    }
    panicking.store(false, Ordering::SeqCst);
    assert_eq!(overview().status, 200);
    assert_eq!(common::http::get(addr, "/healthz").status, 200);
}

#[test]
fn regression_stalled_bodies_hold_no_worker() {
    let (_dir, _clock, spool) = fresh();
    // The defaults: 4 workers, 10 s to send a request.
    let server = serve(&spool);
    let addr = server.addr();
    let stalled_head = |auth: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        s.write_all(
            format!("POST /api/v1/ops/jobs.ping HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 10\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        s
    };
    // With the token: twice as many bodies as workers, each stalled after the head (and one
    // after two bytes of its body).
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let mut held: Vec<TcpStream> = (0..8).map(|_| stalled_head(&bearer)).collect();
    held[0].write_all(b"{}").unwrap();
    // Without it: answered 401 from the head, the body never read.
    for _ in 0..8 {
        let r = read_reply(&mut stalled_head(""));
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    }
    // (Time for the server to take the held ones, were it to give them to workers.)
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let r = common::http::get(addr, "/healthz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/healthz took {:?} behind stalled bodies",
        started.elapsed()
    );
    // An API request too, with every stalled body still waiting for its bytes.
    assert_eq!(
        common::http::op_ok(addr, "jobs.ping", &serde_json::json!({}))["pong"],
        true
    );
    for s in &held {
        assert!(still_open(s), "a stalled body was already answered");
    }
    // A held body that comes whole is answered.
    held[1].write_all(b"{}        ").unwrap();
    let r = read_reply(&mut held[1]);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The login form needs no token, and its body was bounded only by the API's 2 MiB: 64
/// connections without the token could make the server hold 132 MiB of half-sent forms.
#[test]
fn regression_login_bodies_are_bounded_before_they_are_read() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntoken="
        )
        .as_bytes(),
    )
    .unwrap();
    // Answered from the head, without waiting for the 100,000 bytes.
    let r = read_reply(&mut s);
    assert_eq!(r.status, 413, "{}", r.text());
    // The other requests served without the token take no body at all.
    for head in [
        "GET /healthz HTTP/1.1",
        "GET /login HTTP/1.1",
        "GET /jobs?token=wrong HTTP/1.1",
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        s.write_all(
            format!("{head}\r\nHost: {addr}\r\nContent-Length: 2000000\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let r = read_reply(&mut s);
        assert_eq!(r.status, 413, "{head}: {}", r.text());
    }
    // A form of the usual size still logs in.
    let body = format!("token={TOKEN}&next=%2F");
    let r = common::http::raw(
        addr,
        format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
}
