//! A response, built whole before it is written (Server-Sent Events are the one streamed
//! answer, see `sse.rs`).

use serde::Serialize;

/// One response: status, headers and body. The server adds `Content-Length`,
/// `Connection: close` and the headers every response carries (`nosniff`, no framing, a
/// default `Content-Security-Policy` and `Cache-Control` when the response sets none).
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// Headers as (name, value); names as written.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// A response with `Content-Type: content_type` and `body`.
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// An HTML page: `text/html; charset=utf-8`, `Cache-Control: private, no-store`, and a
    /// `Content-Security-Policy` that allows scripts and styles only from this origin or
    /// marked with `nonce` (the request's [`super::Request::nonce`]), no framing, forms
    /// posting only to this origin.
    pub(crate) fn html(status: u16, nonce: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
            .header("Content-Security-Policy", &page_csp(nonce))
            .header("Cache-Control", "private, no-store")
    }

    /// A JSON body (`application/json`), serialized from `value`.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(status, "application/json", body),
            Err(e) => Response::error(500, "STORAGE", &format!("encoding the response: {e}")),
        }
    }

    /// A plain-text body.
    pub(crate) fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// The API's error body, `{"error":{"code":..,"message":..}}`.
    pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({"error": {"code": code, "message": message}}),
        )
    }

    /// `303 See Other` to `location`, the answer to a form POST (the browser then GETs it).
    /// Only a path of this site is followed: anything that is not `/...` (or that starts
    /// with `//`, another host) redirects to `/`.
    pub(crate) fn see_other(location: &str) -> Response {
        let local = location.starts_with('/')
            && !location.starts_with("//")
            && !location.starts_with("/\\")
            && !location.bytes().any(|b| b.is_ascii_control());
        Response::text(303, "").header("Location", if local { location } else { "/" })
    }

    /// A static asset that never changes under its (versioned) name: cached for a year.
    #[allow(dead_code)] // for the dashboard's assets
    pub(crate) fn asset(content_type: &str, body: &'static [u8]) -> Response {
        Response::new(200, content_type, body)
            .header("Cache-Control", "public, max-age=31536000, immutable")
    }

    /// Adds a header (replacing none: add each name once).
    #[must_use]
    pub(crate) fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header named `name` (case-insensitive), if set.
    pub(crate) fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The policy of HTML pages, with this response's nonce.
pub(crate) fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' \
         'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The policy of everything that is not a page: nothing may load from it.
pub(crate) const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The reason phrase of `status`.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn see_other_stays_on_this_site() {
        for (to, want) in [
            ("/jobs?status=dead", "/jobs?status=dead"),
            ("//evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("/a\r\nSet-Cookie: x=1", "/"),
        ] {
            assert_eq!(Response::see_other(to).get_header("location"), Some(want));
        }
    }
}
