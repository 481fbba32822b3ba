//! Reading one HTTP/1.1 request off a connection, within bounds: the head (request line and
//! headers) at most [`HEAD_LIMIT`] bytes and [`MAX_HEADERS`] lines, a body only with
//! `Content-Length` and at most the configured limit. Whatever does not parse is a
//! [`Reject`] carrying the 4xx/5xx status to answer; nothing here panics or allocates past
//! those bounds.

#[cfg(any(test, feature = "fuzzing"))]
use std::io::Read;

use super::request::{parse_query, Method, Request};

/// Longest request head (request line plus headers), in bytes.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;
/// Most header lines in one request.
pub(crate) const MAX_HEADERS: usize = 64;

/// Why a request was not read: the status to answer (`None`: the peer closed or timed out
/// before sending anything, answer nothing) and a message for the body.
#[derive(Debug)]
pub(crate) struct Reject {
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl Reject {
    /// A refusal answered with `status`.
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Reject {
        Reject {
            status: Some(status),
            message: message.into(),
        }
    }
}

fn reject(status: u16, message: impl Into<String>) -> Reject {
    Reject::new(status, message)
}

/// The refusal of a head over [`HEAD_LIMIT`].
pub(crate) fn head_too_long() -> Reject {
    reject(
        431,
        format!("the request line and headers exceed {HEAD_LIMIT} bytes"),
    )
}

/// Reads one request from `r` (blocking; the server reads requests without blocking in
/// `heads.rs`), with a body of at most `body_limit` bytes. `nonce` becomes the request's
/// CSP nonce.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_request(
    r: &mut impl Read,
    body_limit: usize,
    nonce: String,
) -> Result<Request, Reject> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= HEAD_LIMIT {
            return Err(head_too_long());
        }
        let want = (HEAD_LIMIT + 4 - buf.len()).min(chunk.len());
        match r.read(&mut chunk[..want]) {
            Ok(0) if buf.is_empty() => {
                return Err(Reject {
                    status: None,
                    message: "closed".into(),
                })
            }
            Ok(0) => return Err(reject(400, "the connection closed inside the request head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) && buf.is_empty() => {
                return Err(Reject {
                    status: None,
                    message: "idle".into(),
                })
            }
            Err(e) if is_timeout(&e) => {
                return Err(reject(408, "the request head was not sent in time"))
            }
            Err(e) => {
                return Err(Reject {
                    status: None,
                    message: e.to_string(),
                })
            }
        }
    };
    let _ = head_end;
    read_rest(buf, r, body_limit, nonce, || true)
}

/// A whole head, parsed: the request (its body still empty), where its body starts in the
/// buffer, how long the body is (`Content-Length`, within the limit), and whether the
/// request said HTTP/1.0.
#[derive(Debug)]
pub(crate) struct Framed {
    pub(crate) req: Request,
    pub(crate) body_start: usize,
    pub(crate) body_len: usize,
    pub(crate) http10: bool,
}

/// Parses the head at the start of `buf` (`None`: it is not whole yet) and the body's
/// framing, with a body of at most `body_limit` bytes.
pub(crate) fn frame(
    buf: &[u8],
    body_limit: usize,
    nonce: String,
) -> Option<Result<Framed, Reject>> {
    let (head, sep) = find_head_end(buf)?;
    Some(parse_head(&buf[..head], nonce).and_then(|req| {
        let body_len = body_length(&req, body_limit)?;
        let http10 = buf[..head]
            .split(|&b| b == b'\n')
            .next()
            .is_some_and(|l| l.strip_suffix(b"\r").unwrap_or(l).ends_with(b" HTTP/1.0"));
        Ok(Framed {
            req,
            body_start: head + sep,
            body_len,
            http10,
        })
    }))
}

/// Parses the whole head at the start of `buf` and reads the rest of the body from `r`
/// (blocking). `before_read` runs before each read of `r` and answers whether there is
/// still time; no time left is a 408.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_rest(
    mut buf: Vec<u8>,
    r: &mut impl Read,
    body_limit: usize,
    nonce: String,
    mut before_read: impl FnMut() -> bool,
) -> Result<Request, Reject> {
    let Some(framed) = frame(&buf, body_limit, nonce) else {
        return Err(reject(400, "the request head is not complete"));
    };
    let Framed {
        mut req,
        body_start,
        body_len: length,
        ..
    } = framed?;
    let mut body = buf.split_off(body_start.min(buf.len()));
    if body.len() > length {
        // Pipelined bytes after the body: the connection closes after one answer anyway.
        body.truncate(length);
    }
    if body.len() < length {
        let start = body.len();
        body.resize(length, 0);
        let mut filled = start;
        while filled < length {
            if !before_read() {
                return Err(reject(408, "the request body was not sent in time"));
            }
            match r.read(&mut body[filled..]) {
                Ok(0) => return Err(reject(400, "the connection closed inside the body")),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(reject(408, "the request body was not sent in time"))
                }
                Err(e) => {
                    return Err(Reject {
                        status: None,
                        message: e.to_string(),
                    })
                }
            }
        }
    }
    req.body = body;
    Ok(req)
}

#[cfg(any(test, feature = "fuzzing"))]
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Where the head ends: (its length, the separator's length), for `\r\n\r\n` or `\n\n`.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1..i + 3) == Some(b"\r\n") {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

/// Parses the request line and headers (everything before the blank line, without the
/// head's last newline).
pub(crate) fn parse_head(head: &[u8], nonce: String) -> Result<Request, Reject> {
    let text =
        std::str::from_utf8(head).map_err(|_| reject(400, "the request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(
            400,
            "the request line must be METHOD SP TARGET SP HTTP/1.1",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(reject(400, "the method is not a token"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(reject(505, "only HTTP/1.1 and HTTP/1.0 are served"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(reject(
            400,
            "the request target must be a path starting with /",
        ));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(reject(431, format!("more than {MAX_HEADERS} headers")));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(reject(400, "a header line has no colon"));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(reject(
                400,
                "a header name is not a token (folded header lines are not accepted)",
            ));
        }
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(reject(400, "a header value holds a control character"));
        }
        headers.push((
            name.to_ascii_lowercase(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    let hosts = headers.iter().filter(|(k, _)| k == "host").count();
    if hosts > 1 || (hosts == 0 && version == "HTTP/1.1") {
        return Err(reject(
            400,
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    Ok(Request {
        method: Method::parse(method),
        path: path.to_string(),
        query: parse_query(query),
        headers,
        body: Vec::new(),
        nonce,
    })
}

/// The body's length from `Content-Length` (0 without one); chunked bodies are refused.
fn body_length(req: &Request, limit: usize) -> Result<usize, Reject> {
    if req.header("transfer-encoding").is_some() {
        return Err(reject(
            411,
            "chunked request bodies are not accepted; send Content-Length",
        ));
    }
    let mut length = None;
    for (_, v) in req.headers.iter().filter(|(k, _)| k == "content-length") {
        if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(reject(400, "Content-Length is not a number"));
        }
        let n: u64 = v
            .parse()
            .map_err(|_| reject(400, "Content-Length is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err(reject(400, "two different Content-Length headers"));
        }
        length = Some(n);
    }
    let n = length.unwrap_or(0);
    if n > limit as u64 {
        return Err(reject(
            413,
            format!("the body is {n} bytes, over the limit of {limit} bytes"),
        ));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// `tchar` of RFC 9110.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Request, Reject> {
        read_request(&mut std::io::Cursor::new(bytes.to_vec()), 16, "n".into())
    }

    #[test]
    fn a_request_with_a_body_reads_whole() {
        let r =
            read(b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query("x"), Some("1"));
        assert_eq!(r.header("host"), Some("h"));
        assert_eq!(r.body, b"abc");
    }

    #[test]
    fn malformed_requests_get_their_status() {
        for (bytes, status) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], 400),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
            (b"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n",
                413,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab",
                400,
            ),
            (b"GET / HTTP/1.1\r\nHost: h\r\n", 400),
        ] {
            let e = read(bytes).unwrap_err();
            assert_eq!(
                e.status,
                Some(status),
                "{:?}: {}",
                String::from_utf8_lossy(bytes),
                e.message
            );
        }
        assert_eq!(read(b"").unwrap_err().status, None);
        let long = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(HEAD_LIMIT)
        );
        assert_eq!(read(long.as_bytes()).unwrap_err().status, Some(431));
        let many = format!(
            "GET / HTTP/1.1\r\nHost: h\r\n{}\r\n",
            "X: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(read(many.as_bytes()).unwrap_err().status, Some(431));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_as_a_request_or_a_4xx_5xx(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            match read(&bytes) {
                Ok(r) => proptest::prop_assert!(r.body.len() <= 16),
                Err(e) => if let Some(s) = e.status {
                    proptest::prop_assert!((400..=505).contains(&s), "{}", s);
                },
            }
        }

        #[test]
        fn mutated_requests_never_panic(cut in 0usize..80, flip in 0usize..80, byte in proptest::num::u8::ANY) {
            let mut b = b"POST /api/v1/ops/jobs.get?x=%41 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}".to_vec();
            let flip = flip % b.len();
            b[flip] = byte;
            b.truncate(b.len() - cut.min(b.len()));
            let _ = read(&b);
        }
    }
}
