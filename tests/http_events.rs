//! `GET /api/v1/events`: Server-Sent Events with `id: <seq>`, resumable with
//! `Last-Event-ID` or `?after=`, live events after the backlog, heartbeats.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::http::{get, serve, serve_with, TOKEN};
use common::{conformance, TestBackend};
use jobspool::NewJob;
use serde_json::Value;

conformance!(
    a_stream_resumes_after_last_event_id_then_goes_live,
    after_zero_replays_the_log_and_no_position_means_only_new_events,
    an_idle_stream_sends_heartbeats,
    a_position_past_the_newest_event_gets_the_next_ones,
    shutdown_ends_open_streams_at_once
);

/// An open event stream, read message by message.
struct Stream {
    reader: BufReader<TcpStream>,
}

impl Stream {
    fn open(addr: SocketAddr, path: &str, extra: &str) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        assert_eq!(head[0], "HTTP/1.1 200 OK", "{head:?}");
        assert!(
            head.iter().any(|h| h == "Content-Type: text/event-stream"),
            "{head:?}"
        );
        Stream { reader }
    }

    /// The next message's lines (comments included), up to its blank line.
    fn next_block(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "the stream ended");
            let line = line.trim_end_matches('\n').to_string();
            if line.is_empty() {
                if lines.is_empty() {
                    continue;
                }
                return lines;
            }
            lines.push(line);
        }
    }

    /// The next event: (id, data as JSON); skips `retry:` and heartbeats. Fails after 30 s
    /// (heartbeats would keep the socket's read timeout from firing).
    fn next_event(&mut self) -> (u64, Value) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(std::time::Instant::now() < deadline, "no event came");
            let block = self.next_block();
            let id = block.iter().find_map(|l| l.strip_prefix("id: "));
            let data = block.iter().find_map(|l| l.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                return (id.parse().unwrap(), serde_json::from_str(data).unwrap());
            }
        }
    }
}

fn a_stream_resumes_after_last_event_id_then_goes_live(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let ids: Vec<_> = (0..3)
        .map(|i| {
            spool
                .enqueue(NewJob::new(format!("t{i}"), vec![]))
                .unwrap()
                .job
                .id
        })
        .collect();
    let server = serve(&spool);
    let mut s = Stream::open(server.addr(), "/api/v1/events", "Last-Event-ID: 1\r\n");
    let (id, data) = s.next_event();
    assert_eq!(id, 2);
    assert_eq!(data["seq"], 2);
    assert_eq!(data["name"], "job.enqueued");
    assert_eq!(data["jobId"], ids[1].to_string());
    assert_eq!(s.next_event().0, 3);
    // Live from here.
    let live = spool.enqueue(NewJob::new("live", vec![])).unwrap().job.id;
    let (id, data) = s.next_event();
    assert_eq!(id, 4);
    assert_eq!(data["jobId"], live.to_string());
    spool.cancel(live).unwrap();
    let (id, data) = s.next_event();
    assert_eq!((id, data["name"].as_str()), (5, Some("job.cancelled")));
    // Last-Event-ID wins over ?after=; a bad one is 400.
    let mut s = Stream::open(
        server.addr(),
        "/api/v1/events?after=0",
        "Last-Event-ID: 4\r\n",
    );
    assert_eq!(s.next_event().0, 5);
    let r = get(server.addr(), "/api/v1/events?after=x");
    assert_eq!((r.status, r.code().as_str()), (400, "INVALID_ARGUMENT"));
}

fn after_zero_replays_the_log_and_no_position_means_only_new_events(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    for i in 0..1500 {
        spool.enqueue(NewJob::new(format!("t{i}"), vec![])).unwrap();
    }
    let server = serve(&spool);
    let mut all = Stream::open(server.addr(), "/api/v1/events?after=0", "");
    let mut fresh = Stream::open(server.addr(), "/api/v1/events", "");
    // The whole log, in order, across backfill pages.
    for want in 1..=1500 {
        assert_eq!(all.next_event().0, want);
    }
    spool.enqueue(NewJob::new("new", vec![])).unwrap();
    assert_eq!(all.next_event().0, 1501);
    let (id, data) = fresh.next_event();
    assert_eq!((id, data["type"].as_str()), (1501, Some("new")));
}

fn an_idle_stream_sends_heartbeats(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let server = serve_with(&spool, |c| c.heartbeat(Duration::from_millis(50)));
    let mut s = Stream::open(server.addr(), "/api/v1/events", "");
    assert_eq!(s.next_block(), ["retry: 2000"]);
    assert_eq!(s.next_block(), [": heartbeat"]);
    assert_eq!(s.next_block(), [": heartbeat"]);
    // Closing the spool ends the stream.
    spool.close().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut s.reader, &mut rest);
}

fn a_position_past_the_newest_event_gets_the_next_ones(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    spool.enqueue(NewJob::new("t", vec![])).unwrap();
    let server = serve(&spool);
    // A Last-Event-ID from another database, far ahead of this one's log.
    let mut s = Stream::open(server.addr(), "/api/v1/events", "Last-Event-ID: 999\r\n");
    spool.enqueue(NewJob::new("t", vec![])).unwrap();
    assert_eq!(s.next_event().0, 2);
}

fn shutdown_ends_open_streams_at_once(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    // The default heartbeat is 15 s: the stream must end well before one.
    let server = serve(&spool);
    let mut s = Stream::open(server.addr(), "/api/v1/events", "");
    assert_eq!(s.next_block(), ["retry: 2000"]);
    let started = std::time::Instant::now();
    server.shutdown();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut s.reader, &mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rest, "");
}
