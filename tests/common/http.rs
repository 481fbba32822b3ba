//! A tiny HTTP/1.1 client over `std::net::TcpStream` for the `http_*` tests, and a server on
//! a test spool.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jobspool::http::{HttpConfig, HttpServer};
use jobspool::Spool;
use serde_json::Value;

/// The token the test servers use.
pub const TOKEN: &str = "test-token-0123456789";

/// Serves `spool` on 127.0.0.1 (a free port) with [`TOKEN`], adjusted by `f`.
pub fn serve_with(spool: &Spool, f: impl FnOnce(HttpConfig) -> HttpConfig) -> HttpServer {
    let cfg = f(HttpConfig::new("127.0.0.1:0".parse().unwrap()).token(TOKEN));
    jobspool::http::serve(spool, cfg).expect("serving HTTP")
}

/// Serves `spool` with the defaults and [`TOKEN`].
pub fn serve(spool: &Spool) -> HttpServer {
    serve_with(spool, |c| c)
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an API error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends `bytes` as they are, reads the answer to the end (the server closes).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (and close) before reading everything, e.g. a 413.
    let _ = s.write_all(bytes);
    read_reply(&mut s)
}

/// Reads one answer to the end of the stream.
pub fn read_reply(s: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => panic!(
                "reading the answer: {e} (read so far: {:?})",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    parse_reply(&buf)
}

/// Parses a whole answer (head and body).
pub fn parse_reply(buf: &[u8]) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).expect("head is UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = buf[end + 4..].to_vec();
    // (An answer to HEAD names the length of the body it leaves out.)
    if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length" && !body.is_empty())
    {
        assert_eq!(n.1.parse::<usize>().unwrap(), body.len(), "Content-Length");
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// One request: `Host` is the server's address and `Content-Length` is added; `headers`
/// come after them.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

/// `POST /api/v1/ops/<op>` with the bearer token and `input` as the body.
pub fn op(addr: SocketAddr, name: &str, input: &Value) -> Reply {
    let bearer = format!("Bearer {TOKEN}");
    request(
        addr,
        "POST",
        &format!("/api/v1/ops/{name}"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        input.to_string().as_bytes(),
    )
}

/// `op` that must succeed; its output.
pub fn op_ok(addr: SocketAddr, name: &str, input: &Value) -> Value {
    let r = op(addr, name, input);
    assert_eq!(r.status, 200, "{name} {input}: {}", r.text());
    r.json()
}

/// `GET path` with the bearer token.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    let bearer = format!("Bearer {TOKEN}");
    request(addr, "GET", path, &[("Authorization", &bearer)], b"")
}
