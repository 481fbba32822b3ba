//! The router: every request passes the checks in order (Host, method, token, same-origin
//! POST, read-only), then goes to the API, the metrics, or the dashboard's pages.

use super::auth::{self, Hosts, Proof};
use super::dashboard::html::esc;
use super::request::{percent_encode, Method, Request};
use super::response::Response;
use super::{dashboard, Ctx};
use crate::WeakSpool;

/// What the router needs besides the request: the token, the mode, the host list and the
/// login sessions.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) token: String,
    pub(crate) read_only: bool,
    pub(crate) hosts: Hosts,
    pub(crate) sessions: auth::Sessions,
}

/// The router's answer: a response to write, or an event stream to start.
#[derive(Debug)]
pub(crate) enum Routed {
    /// Write this and close.
    Done(Response),
    /// Stream the events after this sequence number (already authorized).
    Events {
        /// The last sequence number the client has (`None`: only new events).
        after: Option<u64>,
    },
}

impl From<Response> for Routed {
    fn from(r: Response) -> Routed {
        Routed::Done(r)
    }
}

/// The largest login form body (a token of at most 1,024 characters, URL-encoded, and
/// where to go next).
const LOGIN_BODY_LIMIT: u64 = 8 * 1024;

/// The answer to a request refused whatever its body holds: a `Host` not on the list, a
/// method not served, no token (or a wrong one) where one is needed, a cross-origin POST.
/// The server asks this as soon as a request's head has come, so such a request is answered
/// without its body being read; [`route`] asks it again first.
pub(crate) fn refusal(settings: &Settings, req: &Request) -> Option<Response> {
    match req.header("host") {
        Some(h) if settings.hosts.allows(h) => {}
        Some(h) => {
            return Some(Response::text(
                421,
                &format!(
                    "this server does not answer for host {h:?}; add it with --allow-host if \
                     it is yours"
                ),
            ))
        }
        None => return Some(Response::text(400, "the request needs a Host header")),
    }
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let api = is_api(&segs);
    if req.method == Method::Other {
        if api {
            // As the API answers a served method on the wrong route: JSON, with the route's
            // methods.
            let allow = super::api::allow(&segs).unwrap_or("GET, HEAD, POST");
            return Some(
                Response::error(405, "METHOD_NOT_ALLOWED", &format!("use {allow}"))
                    .header("Allow", allow),
            );
        }
        return Some(
            Response::text(405, "only GET, HEAD and POST are served")
                .header("Allow", "GET, HEAD, POST"),
        );
    }
    // Open to all: the health check and the login form; and a page address carrying the
    // token, which `route` checks. Their bodies are read before anyone is known, so they
    // stay small: a login form (a token and where to go next) at most, nothing for the rest.
    let open = matches!(
        (req.method, segs.as_slice()),
        (Method::Get | Method::Head, ["healthz" | "login"]) | (Method::Post, ["login"])
    ) || (!api && req.method != Method::Post && req.query("token").is_some());
    if open {
        let length = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let limit = if req.method == Method::Post {
            LOGIN_BODY_LIMIT
        } else {
            0
        };
        if length > limit {
            return Some(Response::text(
                413,
                &format!(
                    "this request is answered without the token, so its body may be at most \
                     {limit} bytes"
                ),
            ));
        }
        return None;
    }
    let proof = auth::proof(req, &settings.token, &settings.sessions);
    if proof == Proof::None {
        return Some(if api {
            Response::error(
                401,
                "UNAUTHORIZED",
                "give the server's token: Authorization: Bearer <token>",
            )
            .header("WWW-Authenticate", "Bearer")
        } else {
            login_page(req, 401, "")
        });
    }
    if req.method == Method::Post && !auth::same_origin(req, proof == Proof::Cookie) {
        let msg = "cross-origin POST refused: send it from this site's pages, or from a \
                   program with the bearer token";
        return Some(if api {
            Response::error(403, "FORBIDDEN", msg)
        } else {
            Response::text(403, msg)
        });
    }
    None
}

/// Whether the path's segments are the API's (or the metrics).
fn is_api(segs: &[&str]) -> bool {
    matches!(segs.first(), Some(&"api")) || segs == ["metrics"]
}

/// Routes one request.
pub(crate) fn route(settings: &Settings, spool: &WeakSpool, req: &Request) -> Routed {
    if let Some(refused) = refusal(settings, req) {
        return refused.into();
    }
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let api = is_api(&segs);
    match (req.method, segs.as_slice()) {
        (Method::Get | Method::Head, ["healthz"]) => return Response::text(200, "ok\n").into(),
        (Method::Get | Method::Head, ["login"]) => return login_page(req, 200, "").into(),
        (Method::Post, ["login"]) => return login(settings, req).into(),
        _ => {}
    }
    // A page address carrying the token: store it in the cookie and drop it from the URL.
    if !api && req.method != Method::Post {
        if let Some(t) = req.query("token") {
            if !auth::constant_time_eq(t.as_bytes(), settings.token.as_bytes()) {
                return login_page(req, 401, "That token is not the server's token.").into();
            }
            let rest: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k != "token")
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
            let to = if rest.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, rest.join("&"))
            };
            return logged_in(settings, &to).into();
        }
    }
    if let (Method::Post, ["logout"]) = (req.method, segs.as_slice()) {
        return Response::see_other("/login")
            .header("Set-Cookie", &settings.sessions.close(req))
            .into();
    }
    let Some(spool) = spool.upgrade() else {
        return Response::error(503, "SHUTTING_DOWN", "the spool is closing").into();
    };
    let ctx = Ctx {
        spool,
        read_only: settings.read_only,
    };
    if api {
        return super::api::route(&ctx, req, &segs);
    }
    if req.method == Method::Post && ctx.read_only {
        return Response::text(403, "this server is read-only: actions are disabled").into();
    }
    match dashboard::handle(&ctx, req) {
        Some(r) => r.into(),
        None => Response::text(404, "no such page").into(),
    }
}

/// Checks the login form's token; right: the cookie and a redirect to `next` (or `/`).
fn login(settings: &Settings, req: &Request) -> Response {
    if !auth::same_origin(req, true) {
        return Response::text(403, "cross-origin login refused");
    }
    let form = req.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("token") {
        Some(t) if auth::constant_time_eq(t.as_bytes(), settings.token.as_bytes()) => {
            logged_in(settings, field("next").unwrap_or("/"))
        }
        _ => login_page(req, 401, "That token is not the server's token."),
    }
}

/// A redirect to `to` with a new session's cookie (500 if no random id can be made).
fn logged_in(settings: &Settings, to: &str) -> Response {
    match settings.sessions.open() {
        Ok(cookie) => Response::see_other(to).header("Set-Cookie", &cookie),
        Err(e) => Response::text(500, &e.to_string()),
    }
}

/// The login form (also the answer to a page request without the token).
fn login_page(req: &Request, status: u16, error: &str) -> Response {
    // Back to the page asked for, its filters included (but never a token in the address).
    let next = if req.path == "/login" {
        "/".to_string()
    } else {
        let query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    super::request::percent_encode(k),
                    super::request::percent_encode(v)
                )
            })
            .collect();
        if query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{}", req.path, query.join("&"))
        }
    };
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"err\">{}</p>", esc(error))
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>jobspool: log in</title><style nonce=\"{nonce}\">body{{font-family:system-ui,\
         sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}input{{width:100%;\
         padding:.5rem;margin:.5rem 0}}.err{{color:#b00020}}</style></head><body>\
         <h1>jobspool</h1>{error}<p>Give the server's token (printed when it started, or the \
         one it was started with).</p><form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" autofocus>\
         </label><button type=\"submit\">Log in</button></form></body></html>",
        nonce = req.nonce,
        next = esc(&next),
    );
    Response::html(status, &req.nonce, body)
}
