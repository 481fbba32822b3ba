//! Who may ask what: the `Host` allow-list (against DNS rebinding), the token (bearer header
//! for the API, a cookie for the pages), the same-origin rule for POSTs (against CSRF).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

use parking_lot::Mutex;

use base64::Engine as _;

use super::request::Request;

/// Prefix of the login cookie's name; the server's port follows (`jobspool_session_7420`),
/// so servers on other ports of the same host keep their own sessions.
pub(crate) const COOKIE_PREFIX: &str = "jobspool_session_";

/// Most sessions kept at once; logging in past that forgets the oldest.
pub(crate) const MAX_SESSIONS: usize = 1024;

/// The login sessions: random ids handed out in the cookie when a browser proves it knows
/// the token (the cookie never holds the token itself), forgotten at logout, when the
/// server stops, or when [`MAX_SESSIONS`] newer ones push them out.
pub(crate) struct Sessions {
    cookie: String,
    ids: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("cookie", &self.cookie)
            .field("open", &self.ids.lock().0.len())
            .finish()
    }
}

impl Sessions {
    /// No sessions yet, for the server on `port`.
    pub(crate) fn new(port: u16) -> Sessions {
        Sessions {
            cookie: format!("{COOKIE_PREFIX}{port}"),
            ids: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// A new session; its `Set-Cookie` value: not readable by scripts, never sent on
    /// requests from other sites.
    pub(crate) fn open(&self) -> crate::Result<String> {
        let id = random_token()?;
        let mut g = self.ids.lock();
        let (set, order) = &mut *g;
        while order.len() >= MAX_SESSIONS {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        set.insert(id.clone());
        order.push_back(id.clone());
        Ok(format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie
        ))
    }

    /// Whether the request's cookie names an open session.
    pub(crate) fn valid(&self, req: &Request) -> bool {
        req.cookie(&self.cookie)
            .is_some_and(|id| self.ids.lock().0.contains(id))
    }

    /// Forgets the request's session; the `Set-Cookie` value that clears the cookie.
    pub(crate) fn close(&self, req: &Request) -> String {
        if let Some(id) = req.cookie(&self.cookie) {
            let mut g = self.ids.lock();
            let (set, order) = &mut *g;
            if set.remove(id) {
                order.retain(|x| x != id);
            }
        }
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        )
    }
}

/// A fresh random token: 128 bits from the operating system, as 32 hex digits.
pub(crate) fn random_token() -> crate::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| crate::Error::storage("reading random bytes for the HTTP token", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A fresh CSP nonce (128 bits, base64); an all-zero one if the OS has no randomness to give
/// (the policy still holds: only this origin's files and elements carrying it run).
pub(crate) fn nonce() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a request proved it knows the token, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// `Authorization: Bearer <token>`: a program; browsers never add it on their own.
    Bearer,
    /// The cookie: a browser, which also sends it on requests other sites trigger (hence
    /// the same-origin rule for POSTs).
    Cookie,
    /// Nothing valid.
    None,
}

/// Checks the request's bearer header against `token` (the scheme's name in any case),
/// then its session cookie.
pub(crate) fn proof(req: &Request, token: &str, sessions: &Sessions) -> Proof {
    if let Some(auth) = req.header("authorization") {
        let given = auth
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t);
        return match given {
            Some(t) if constant_time_eq(t.trim().as_bytes(), token.as_bytes()) => Proof::Bearer,
            _ => Proof::None,
        };
    }
    if sessions.valid(req) {
        Proof::Cookie
    } else {
        Proof::None
    }
}

/// The host names a request may address: the bound address, the loopback names when bound
/// to loopback or to the unspecified address (`0.0.0.0`, `::`: which is not itself a name
/// clients use, so it is left out), and the configured ones.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    names: Vec<String>,
    port: u16,
}

impl Hosts {
    pub(crate) fn new(bound: SocketAddr, extra: &[String]) -> Hosts {
        let mut names = Vec::new();
        if !bound.ip().is_unspecified() {
            names.push(match bound {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
        }
        if bound.ip().is_loopback() || bound.ip().is_unspecified() {
            names.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
        }
        names.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
        Hosts {
            names,
            port: bound.port(),
        }
    }

    /// Whether `host` (a `Host` header: `name[:port]`) is on the list; a port, when given,
    /// must be the bound one, unless the configured entry names another port.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.names.contains(&host) {
            return true;
        }
        let (name, port) = split_port(&host);
        port.map_or(true, |p| p == self.port) && self.names.iter().any(|n| n == name)
    }
}

/// `name:port` -> (`name`, port); `[v6]:port` keeps its brackets.
fn split_port(host: &str) -> (&str, Option<u16>) {
    if let Some((name, port)) = host.rsplit_once(':') {
        if !name.is_empty() && (!name.contains(':') || name.ends_with(']')) {
            if let Ok(p) = port.parse() {
                return (name, Some(p));
            }
            return (host, Some(0));
        }
    }
    (host, None)
}

/// Whether a POST comes from this site: `Sec-Fetch-Site` is `same-origin` or `none` (typed
/// by the user); without that header, an `Origin` whose host is the request's `Host`.
/// `strict`: a request with neither header fails (a cookie-authenticated browser request
/// always carries one of them); otherwise it passes (a program with the bearer token).
pub(crate) fn same_origin(req: &Request, strict: bool) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match req.header("origin") {
        Some(origin) => {
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            matches!((host, req.header("host")), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
        None => !strict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_on_the_list_pass() {
        let h = Hosts::new("127.0.0.1:7420".parse().unwrap(), &["q.example".into()]);
        for ok in [
            "127.0.0.1:7420",
            "localhost:7420",
            "LOCALHOST",
            "[::1]:7420",
            "q.example",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost:80",
            "127.0.0.1:x",
            "localhost.evil:7420",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        let any = Hosts::new("0.0.0.0:9".parse().unwrap(), &["q.example".into()]);
        for ok in ["localhost:9", "127.0.0.1:9", "[::1]", "q.example:9"] {
            assert!(any.allows(ok), "{ok}");
        }
        assert!(!any.allows("0.0.0.0:9"));
        assert!(!any.allows("evil.example:9"));
        let v6 = Hosts::new("[::1]:9".parse().unwrap(), &[]);
        assert!(v6.allows("[::1]:9"));
        assert!(!v6.allows("[::2]:9"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let t = random_token().unwrap();
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token().unwrap());
    }
}
