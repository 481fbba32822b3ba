//! The server's bounds, over real sockets: malformed requests get a 4xx and leave the
//! server serving, bodies and heads are bounded, slow clients time out, connections and
//! event streams are capped.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fresh;
use common::http::{get, op_ok, raw, read_reply, serve, serve_with, TOKEN};
use serde_json::json;

#[test]
fn malformed_requests_get_a_4xx_and_the_server_keeps_serving() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let host = format!("Host: {addr}\r\n");
    let long_header = format!("GET / HTTP/1.1\r\n{host}X: {}\r\n\r\n", "a".repeat(20_000));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"\r\n\r\n".to_vec(), 400),
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (format!("GET / HTTP/9.9\r\n{host}\r\n").into_bytes(), 505),
        (format!("GET http://x/ HTTP/1.1\r\n{host}\r\n").into_bytes(), 400),
        (format!("GET / HTTP/1.1\r\n{host}Bad Header: x\r\n\r\n").into_bytes(), 400),
        (format!("GET / HTTP/1.1\r\n{host}X: a\x01b\r\n\r\n").into_bytes(), 400),
        ([b"GET /".as_slice(), &[0xff], format!(" HTTP/1.1\r\n{host}\r\n").as_bytes()].concat(), 400),
        (format!("POST /api/v1/ops/jobs.get HTTP/1.1\r\n{host}Content-Length: x\r\n\r\n").into_bytes(), 400),
        (format!("POST /api/v1/ops/jobs.get HTTP/1.1\r\n{host}Content-Length: 99999999999999999999\r\n\r\n").into_bytes(), 400),
        (format!("POST /api/v1/ops/jobs.get HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(), 411),
        (long_header.into_bytes(), 431),
        (format!("BREW / HTTP/1.1\r\n{host}\r\n").into_bytes(), 405),
    ];
    for (bytes, status) in cases {
        let r = raw(addr, &bytes);
        assert_eq!(
            r.status,
            status,
            "{:?}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)]),
            r.text()
        );
    }
    // A client that connects and closes, or sends half a line and closes: nothing to answer.
    drop(TcpStream::connect(addr).unwrap());
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HT").unwrap();
    drop(s);
    // Still serving.
    assert_eq!(op_ok(addr, "jobs.ping", &json!({}))["pong"], true);
}

#[test]
fn a_body_over_the_limit_is_refused_unread() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.body_limit(1024));
    let addr = server.addr();
    let body = vec![b' '; 10 * 1024 * 1024];
    let head = format!(
        "POST /api/v1/ops/jobs.enqueue HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The answer comes without the body being sent.
    let r = read_reply(&mut s);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("1024"), "names the limit: {}", r.text());
}

#[test]
fn a_slow_client_times_out() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| {
        c.timeouts(Duration::from_millis(200), Duration::from_millis(200))
            .workers(1)
    });
    let addr = server.addr();
    // Half a head, then nothing: 408 once the read timeout passes.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("POST /api/v1/ops/jobs.get HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .unwrap();
    let started = Instant::now();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(10));
    // A body that stops short (its head passed the checks): 408 too, and the only worker is
    // free again.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!(
            "POST /api/v1/ops/jobs.get HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.text().contains("body"), "{}", r.text());
    // Without the token: 401 at once, the body unread.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!(
            "POST /api/v1/ops/jobs.get HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_reply(&mut s).status, 401);
    // An idle connection is closed without an answer.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(idle.read_to_end(&mut buf).unwrap(), 0);
    assert_eq!(get(addr, "/metrics").status, 200);
}

#[test]
fn connections_over_the_cap_get_503() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| {
        c.workers(1)
            .max_connections(2)
            .timeouts(Duration::from_secs(5), Duration::from_secs(5))
    });
    let addr = server.addr();
    // Two silent connections hold both places (one in the worker, one waiting).
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The server counts a connection once it accepted it: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = raw(
            addr,
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
        );
        if r.status == 503 {
            assert_eq!(r.header("retry-after"), Some("1"));
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {}", r.status);
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
    // The places free up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw(
        addr,
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .status
        != 200
    {
        assert!(Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn event_streams_over_the_cap_get_503() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.max_event_streams(2));
    let addr = server.addr();
    let open = || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
        s
    };
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut s = open();
        let mut head = [0u8; 15];
        s.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200 OK");
        streams.push(s);
    }
    let r = read_reply(&mut open());
    assert_eq!((r.status, r.code().as_str()), (503, "BUSY"), "{}", r.text());
    // Other requests are still served.
    assert_eq!(get(addr, "/metrics").status, 200);
    // A closed stream frees its place once its thread notices.
    drop(streams.pop());
    spool.enqueue(jobspool::NewJob::new("t", vec![])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = open();
        let mut head = [0u8; 15];
        s.read_exact(&mut head).unwrap();
        if &head == b"HTTP/1.1 200 OK" {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never freed");
        spool.enqueue(jobspool::NewJob::new("t", vec![])).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn regression_expect_100_continue_gets_a_100_before_the_body() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.body_limit(1024));
    let addr = server.addr();
    let send_head = |auth: &str, expect: &str, length: usize| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "POST /api/v1/ops/jobs.ping HTTP/1.1\r\nHost: {addr}\r\n{auth}Expect: {expect}\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        s
    };
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    // The 100 comes before the body is sent (the read would time out otherwise), then the
    // answer once it is.
    let body = b"{}";
    let mut s = send_head(&bearer, "100-continue", body.len());
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body).unwrap();
    let r = read_reply(&mut s);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pong"], true);
    // Refused from the head: the final answer at once, no 100.
    for (auth, length, status) in [("", 2, 401), (bearer.as_str(), 4096, 413)] {
        let r = read_reply(&mut send_head(auth, "100-Continue", length));
        assert_eq!(r.status, status, "{}", r.text());
    }
    // Any other expectation: 417.
    let r = read_reply(&mut send_head(&bearer, "something-else", 2));
    assert_eq!(r.status, 417, "{}", r.text());
}

#[test]
fn regression_a_closed_event_stream_frees_its_slot_promptly() {
    let (_dir, _clock, spool) = fresh();
    // The default heartbeat (15 s), and no events: nothing is written to the streams, so
    // only watching the peer can tell that they closed.
    let server = serve_with(&spool, |c| c.max_event_streams(2));
    let addr = server.addr();
    // The status of a new stream; the connection, open.
    let open = || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        (String::from_utf8_lossy(&head[9..]).into_owned(), s)
    };
    let streams: Vec<TcpStream> = (0..2)
        .map(|_| {
            let (status, s) = open();
            assert_eq!(status, "200");
            s
        })
        .collect();
    assert_eq!(open().0, "503");
    let closed = Instant::now();
    drop(streams);
    let mut kept = Vec::new();
    loop {
        let (status, s) = open();
        if status == "200" {
            kept.push(s);
            if kept.len() == 2 {
                break;
            }
            continue;
        }
        assert!(
            closed.elapsed() < Duration::from_secs(5),
            "the places were not freed within 5 s of the streams closing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both places were taken again, well before a heartbeat would have found them closed.
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "{:?}",
        closed.elapsed()
    );
    assert_eq!(open().0, "503");
}

#[test]
fn regression_other_methods_on_the_api_get_a_json_405() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let bearer = format!("Bearer {TOKEN}");
    for (method, path, allow) in [
        ("PUT", "/api/v1/ops/jobs.get", "POST"),
        ("DELETE", "/api/v1/ops/jobs.get", "POST"),
        ("OPTIONS", "/api/v1/ops/jobs.enqueue", "POST"),
        ("PUT", "/api/v1/events", "GET, HEAD"),
        ("DELETE", "/metrics", "GET, HEAD"),
        ("PATCH", "/api/v1/nothing", "GET, HEAD, POST"),
    ] {
        // With the token or without: the method is checked first.
        for auth in [&[("Authorization", bearer.as_str())][..], &[]] {
            let r = common::http::request(addr, method, path, auth, b"");
            assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
            assert_eq!(r.code(), "METHOD_NOT_ALLOWED", "{method} {path}");
            assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        }
    }
    // Pages keep their plain-text 405.
    let r = common::http::request(addr, "PUT", "/jobs", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
}

#[test]
fn regression_an_event_stream_carries_the_headers_of_every_answer() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in [
        "Content-Type: text/event-stream",
        "X-Content-Type-Options: nosniff",
        "X-Frame-Options: DENY",
        "Referrer-Policy: no-referrer",
        "Cache-Control: no-store",
    ] {
        assert!(head.contains(&format!("\r\n{line}\r\n")), "{line}: {head}");
    }
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
}
