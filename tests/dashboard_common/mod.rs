//! Helpers of the dashboard tests: a spool served over HTTP on loopback, and a minimal
//! HTTP/1.1 client over `std::net::TcpStream` (one request per connection, as the server
//! answers).

#![allow(dead_code)] // each test file uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jobspool::http::{HttpConfig, HttpServer};
use jobspool::Spool;

pub const TOKEN: &str = "dashboard-test-token";

/// A spool in a temp dir with the HTTP server on 127.0.0.1:0.
pub struct Served {
    pub spool: Spool,
    pub server: HttpServer,
    pub addr: SocketAddr,
    /// What keeps the store alive (a temp dir, or a conformance backend's store).
    _keep: Box<dyn std::any::Any>,
}

/// Serves a fresh spool; `read_only` as the server's mode.
pub fn serve(read_only: bool) -> Served {
    serve_with(Spool::builder(), read_only)
}

/// Serves a fresh spool opened with `builder` (scheduler and maintenance off).
pub fn serve_with(builder: jobspool::Builder, read_only: bool) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = builder
        .scheduler(false)
        .maintenance(false)
        .open(dir.path().join("q"))
        .expect("open spool");
    let config = HttpConfig::new("127.0.0.1:0".parse().expect("addr"))
        .token(TOKEN)
        .read_only(read_only);
    let server = jobspool::http::serve(&spool, config).expect("serve");
    let addr = server.addr();
    Served {
        spool,
        server,
        addr,
        _keep: Box::new(dir),
    }
}

/// Serves `spool` (kept alive with `keep`, e.g. its store); `read_only` as the server's mode.
pub fn serve_spool(spool: Spool, keep: Box<dyn std::any::Any>, read_only: bool) -> Served {
    let config = HttpConfig::new("127.0.0.1:0".parse().expect("addr"))
        .token(TOKEN)
        .read_only(read_only);
    let server = jobspool::http::serve(&spool, config).expect("serve");
    let addr = server.addr();
    Served {
        spool,
        server,
        addr,
        _keep: keep,
    }
}

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name`.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends one request with the bearer token and `extra` headers; reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Connection: close\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// GET with the token.
pub fn get(addr: SocketAddr, target: &str) -> Answer {
    request(addr, "GET", target, &[], b"")
}

/// A form POST from this site's pages (`Sec-Fetch-Site: same-origin`).
pub fn post(addr: SocketAddr, target: &str, fields: &[(&str, &str)]) -> Answer {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    request(
        addr,
        "POST",
        target,
        &[("Sec-Fetch-Site", "same-origin")],
        body.join("&").as_bytes(),
    )
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The values of `attr="..."` in `html`, in order.
pub fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let pat = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&pat) {
        rest = &rest[i + pat.len()..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// Undoes the HTML escaping of an attribute value.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
