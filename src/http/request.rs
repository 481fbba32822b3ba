//! A parsed HTTP request, as the router and the dashboard see it.

/// The request methods the server answers; anything else is [`Method::Other`] (405).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: answered as `GET` without the body.
    Head,
    /// `POST`.
    Post,
    /// Any other method.
    Other,
}

impl Method {
    pub(crate) fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            _ => Method::Other,
        }
    }
}

/// One request, read whole (the body is bounded by the server's limit).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The method.
    pub(crate) method: Method,
    /// The path as sent, without the query (`/jobs/019a...`), still percent-encoded; see
    /// [`Request::segments`] for the decoded segments.
    pub(crate) path: String,
    /// The query's pairs, percent-decoded (`+` is a space), in order.
    pub(crate) query: Vec<(String, String)>,
    /// The headers, names lower-cased, values trimmed, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (empty without one).
    pub(crate) body: Vec<u8>,
    /// The CSP nonce of this request's response: an HTML page marks its `<script>` and
    /// `<style>` elements with `nonce="{nonce}"` ([`super::Response::html`] puts it in the
    /// `Content-Security-Policy` header).
    pub(crate) nonce: String,
}

impl Request {
    /// The first header named `name` (lower case), if any.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`, decoded.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments, percent-decoded, empty ones dropped: `/api/v1/ops/jobs.get` is
    /// `["api", "v1", "ops", "jobs.get"]`, `/` is `[]`. A segment that does not decode to
    /// UTF-8 is kept as sent.
    pub(crate) fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false).unwrap_or_else(|| s.to_string()))
            .collect()
    }

    /// The body as `application/x-www-form-urlencoded` pairs, decoded (what an HTML form
    /// posts). Pairs that do not decode are skipped.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        std::str::from_utf8(&self.body)
            .map(parse_query)
            .unwrap_or_default()
    }

    /// The value of the cookie named `name`, if the request carries it.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Pairs of a query string or form body (`a=1&b=x+y`), decoded; pairs that do not decode
/// are skipped, a pair without `=` has an empty value.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set); `None` for a bad escape or
/// bytes that are not UTF-8.
pub(crate) fn percent_decode(s: &str, plus: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                // Two hex digits, nothing else (`from_str_radix` alone takes a sign).
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes `s` for a query value or path segment: everything but `A-Z a-z 0-9 - _ . ~`
/// as `%XX`.
pub(crate) fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_escapes_decode() {
        assert_eq!(
            parse_query("a=1&b=x+y%2F&c&=z&bad=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/".into()),
                ("c".into(), String::new()),
                (String::new(), "z".into()),
            ]
        );
        assert_eq!(percent_decode("%", false), None);
        assert_eq!(percent_decode("%ff", false), None, "not UTF-8");
        assert_eq!(percent_decode("%+1", false), None, "a sign is no hex digit");
        assert_eq!(percent_decode("%-1x", true), None);
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(
            percent_decode(&percent_encode("x&y=z é"), true).as_deref(),
            Some("x&y=z é")
        );
    }
}
