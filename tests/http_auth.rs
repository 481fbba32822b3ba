//! Who may ask: the token (bearer for programs, a cookie for pages), the Host allow-list,
//! the same-origin rule for POSTs, and the headers every answer carries.

mod common;

use common::fresh;
use common::http::{get, op, raw, request, serve, serve_with, Reply, TOKEN};
use jobspool::http::HttpConfig;
use jobspool::ErrorCode;
use serde_json::json;

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// Logs in at `/?token=T`; the `name=value` of the session cookie set.
fn login(addr: std::net::SocketAddr) -> String {
    let r = request(addr, "GET", &format!("/?token={TOKEN}"), &[], b"");
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").expect("a cookie");
    set.split(';').next().unwrap().to_string()
}

#[test]
fn without_the_token_the_api_metrics_and_pages_answer_401() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    for path in ["/api/v1/openapi.json", "/metrics", "/api/v1/events"] {
        let r = request(addr, "GET", path, &[], b"");
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(r.code(), "UNAUTHORIZED");
    }
    for auth in [
        "Bearer wrong",
        "Basic dGVzdA==",
        "Bearer",
        &format!("Bearer {TOKEN}x"),
    ] {
        let r = request(
            addr,
            "POST",
            "/api/v1/ops/jobs.enqueue",
            &[("Authorization", auth)],
            br#"{"type":"t"}"#,
        );
        assert_eq!(r.status, 401, "{auth}");
    }
    // A wrong cookie is no cookie.
    let r = request(
        addr,
        "GET",
        "/metrics",
        &[("Cookie", &format!("jobspool_session_{}=nope", addr.port()))],
        b"",
    );
    assert_eq!(r.status, 401);
    // A page: the login form, 401.
    let r = request(addr, "GET", "/", &[], b"");
    assert_eq!(r.status, 401);
    assert!(
        r.text()
            .contains("<form method=\"post\" action=\"/login\">"),
        "{}",
        r.text()
    );
    assert_eq!(spool.stats().unwrap().total.pending, 0, "nothing ran");
    // The health check needs no token.
    assert_eq!(request(addr, "GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn a_token_in_a_page_url_becomes_a_cookie_and_leaves_the_url() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let r = request(
        addr,
        "GET",
        &format!("/jobs?status=dead_letter&token={TOKEN}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/jobs?status=dead_letter"));
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.starts_with(&format!("jobspool_session_{}=", addr.port())),
        "{set}"
    );
    let cookie = || set.split(';').next().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    // A wrong token in the URL: the login page, no cookie.
    let r = request(addr, "GET", "/?token=wrong", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    // With the cookie, pages pass the check (the dashboard answers them, or 404).
    let r = request(addr, "GET", "/no-such-page", &[("Cookie", &cookie())], b"");
    assert_eq!(r.status, 404);
    // The cookie works for the API too (the pages' scripts use it).
    let r = request(
        addr,
        "GET",
        "/api/v1/openapi.json",
        &[("Cookie", &format!("a=b; {}", cookie()))],
        b"",
    );
    assert_eq!(r.status, 200);
    // The login form.
    let r = request(
        addr,
        "POST",
        "/login",
        &[
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("token={TOKEN}&next=%2Fjobs").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/jobs"));
    assert!(r.header("set-cookie").is_some());
    let r = request(
        addr,
        "POST",
        "/login",
        &[("Sec-Fetch-Site", "same-origin")],
        format!("token={TOKEN}&next=https%3A%2F%2Fevil.example%2F").as_bytes(),
    );
    assert_eq!(
        r.header("location"),
        Some("/"),
        "never redirects off the site"
    );
    let r = request(
        addr,
        "POST",
        "/login",
        &[("Sec-Fetch-Site", "same-origin")],
        b"token=bad",
    );
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "POST",
        "/login",
        &[("Sec-Fetch-Site", "cross-site")],
        format!("token={TOKEN}").as_bytes(),
    );
    assert_eq!(r.status, 403, "login CSRF");
    // Logging out forgets the cookie.
    let r = request(
        addr,
        "POST",
        "/logout",
        &[("Cookie", &cookie()), ("Sec-Fetch-Site", "same-origin")],
        b"",
    );
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[test]
fn a_host_not_on_the_list_gets_421() {
    let (_dir, _clock, spool) = fresh();
    let server = serve_with(&spool, |c| c.allow_host("queue.example"));
    let addr = server.addr();
    let port = addr.port();
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("localhost:{}", port + 1),
        "127.0.0.2",
    ] {
        let r = request(
            addr,
            "GET",
            "/metrics",
            &[("Host", host), ("Authorization", &bearer())],
            b"",
        );
        assert_eq!(r.status, 421, "{host}");
    }
    for host in [
        addr.to_string(),
        format!("localhost:{port}"),
        "LOCALHOST".into(),
        "queue.example".into(),
        format!("queue.example:{port}"),
    ] {
        let r = request(
            addr,
            "GET",
            "/metrics",
            &[("Host", &host), ("Authorization", &bearer())],
            b"",
        );
        assert_eq!(r.status, 200, "{host}");
    }
    // No Host at all (HTTP/1.0 may omit it): refused too.
    let r = raw(addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 400);
}

#[test]
fn cross_origin_posts_are_refused() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let enqueue = |headers: &[(&str, &str)]| -> Reply {
        request(
            addr,
            "POST",
            "/api/v1/ops/jobs.enqueue",
            headers,
            br#"{"type":"t"}"#,
        )
    };
    let c = login(addr);
    let origin = format!("http://{addr}");
    // A browser with the cookie: only from this site.
    for h in [
        vec![("Cookie", c.as_str())],
        vec![("Cookie", &c), ("Sec-Fetch-Site", "cross-site")],
        vec![("Cookie", &c), ("Sec-Fetch-Site", "same-site")],
        vec![("Cookie", &c), ("Origin", "http://evil.example")],
        vec![("Cookie", &c), ("Origin", "null")],
    ] {
        let r = enqueue(&h);
        assert_eq!((r.status, r.code().as_str()), (403, "FORBIDDEN"), "{h:?}");
    }
    assert_eq!(spool.stats().unwrap().total.pending, 0);
    for h in [
        vec![("Cookie", c.as_str()), ("Sec-Fetch-Site", "same-origin")],
        vec![("Cookie", &c), ("Origin", &origin)],
    ] {
        assert_eq!(enqueue(&h).status, 200, "{h:?}");
    }
    // A program with the bearer token sends neither header: fine; a page of another site
    // that got hold of it is still refused.
    let b = bearer();
    assert_eq!(enqueue(&[("Authorization", &b)]).status, 200);
    assert_eq!(
        enqueue(&[("Authorization", &b), ("Sec-Fetch-Site", "cross-site")]).status,
        403
    );
    assert_eq!(
        enqueue(&[("Authorization", &b), ("Origin", "http://evil.example")]).status,
        403
    );
    assert_eq!(spool.stats().unwrap().total.pending, 3);
    // Page POSTs (the dashboard's forms) follow the same rule, and read-only refuses them.
    let r = request(addr, "POST", "/jobs/cancel", &[("Cookie", &c)], b"");
    assert_eq!(r.status, 403);
    let ro = serve_with(&spool, |c| c.read_only(true));
    let ro_cookie = login(ro.addr());
    let r = request(
        ro.addr(),
        "POST",
        "/jobs/cancel",
        &[("Cookie", &ro_cookie), ("Sec-Fetch-Site", "same-origin")],
        b"",
    );
    assert_eq!(r.status, 403);
    assert!(r.text().contains("read-only"), "{}", r.text());
}

#[test]
fn every_answer_carries_the_safety_headers() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let page = request(addr, "GET", "/login", &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap();
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        page.text().contains(&format!("<style nonce=\"{nonce}\">")),
        "the page's style carries the nonce"
    );
    assert_eq!(page.header("cache-control"), Some("private, no-store"));
    let again = request(addr, "GET", "/login", &[], b"");
    assert_ne!(
        again.header("content-security-policy"),
        Some(csp),
        "a nonce per answer"
    );
    for r in [
        page,
        get(addr, "/metrics"),
        op(addr, "jobs.get", &json!({})),
        request(addr, "GET", "/", &[("Host", "evil")], b""),
    ] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(r.header("cache-control").is_some());
    }
}

#[test]
fn a_non_loopback_bind_needs_a_token_and_a_default_token_is_generated() {
    let (_dir, _clock, spool) = fresh();
    let e =
        jobspool::http::serve(&spool, HttpConfig::new("0.0.0.0:0".parse().unwrap())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(e.to_string().contains("token"), "{e}");
    for bad in ["", "a b", "a;b", "a\r\nSet-Cookie: x=1", "é"] {
        let cfg = HttpConfig::new("127.0.0.1:0".parse().unwrap()).token(bad);
        let e = jobspool::http::serve(&spool, cfg).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad:?}");
    }
    let cfg = HttpConfig::new("127.0.0.1:0".parse().unwrap()).token("secret-value");
    assert!(
        !format!("{cfg:?}").contains("secret-value"),
        "Debug hides the token"
    );
    // Loopback without a token: a random one, in the login URL.
    let server =
        jobspool::http::serve(&spool, HttpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let url = server.login_url().to_string();
    let prefix = format!("http://{}/?token=", server.addr());
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    assert_eq!(token.len(), 32, "128 bits in hex: {token}");
    let other =
        jobspool::http::serve(&spool, HttpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    assert_ne!(
        other.login_url().rsplit('=').next(),
        Some(token),
        "random per server"
    );
    let r = request(
        server.addr(),
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(r.status, 200);
    // With a token (and a host name, see below), a non-loopback address is allowed.
    let open = jobspool::http::serve(
        &spool,
        HttpConfig::new("0.0.0.0:0".parse().unwrap())
            .token(TOKEN)
            .allow_host("q.example"),
    )
    .unwrap();
    let port = open.addr().port();
    let local: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = request(local, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    // Stopping closes the port.
    open.shutdown();
    assert!(std::net::TcpStream::connect(local).is_err());
}

#[test]
fn binding_the_unspecified_address_needs_allow_host_and_accepts_loopback_names() {
    let (_dir, _clock, spool) = fresh();
    let any = || HttpConfig::new("0.0.0.0:0".parse().unwrap()).token(TOKEN);
    // No host name: refused at start, saying what to give.
    let e = jobspool::http::serve(&spool, any()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(e.to_string().contains("--allow-host"), "{e}");
    let server = jobspool::http::serve(&spool, any().allow_host("q.example")).unwrap();
    let port = server.addr().port();
    let local: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for (host, status) in [
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
        (format!("q.example:{port}"), 200),
        ("q.example".to_string(), 200),
        (format!("0.0.0.0:{port}"), 421),
        (format!("evil.example:{port}"), 421),
    ] {
        let r = request(local, "GET", "/healthz", &[("Host", &host)], b"");
        assert_eq!(r.status, status, "{host}");
    }
    // The URL printed names a host clients can use.
    assert!(
        server
            .login_url()
            .starts_with(&format!("http://q.example:{port}/?token=")),
        "{}",
        server.login_url()
    );
    assert_eq!(server.url(), format!("http://q.example:{port}/"));
}

#[test]
fn the_login_cookie_holds_a_session_id_named_per_port_and_logout_revokes_it() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let name = format!("jobspool_session_{}", addr.port());
    let c = login(addr);
    let (k, v) = c.split_once('=').unwrap();
    assert_eq!(k, name);
    assert_ne!(v, TOKEN, "the cookie does not hold the token");
    assert!(!v.contains(TOKEN));
    let with = |cookie: &str| request(addr, "GET", "/metrics", &[("Cookie", cookie)], b"");
    assert_eq!(with(&c).status, 200);
    // The token itself is no session.
    assert_eq!(with(&format!("{name}={TOKEN}")).status, 401);
    // Another server (another port) does not take this one's session.
    let other = serve(&spool);
    let moved = format!("jobspool_session_{}={v}", other.addr().port());
    let r = request(other.addr(), "GET", "/metrics", &[("Cookie", &moved)], b"");
    assert_eq!(r.status, 401);
    // Logging out ends the session on the server, not only in the browser.
    let second = login(addr);
    let r = request(
        addr,
        "POST",
        "/logout",
        &[("Cookie", &c), ("Sec-Fetch-Site", "same-origin")],
        b"",
    );
    assert_eq!(r.status, 303);
    assert!(r
        .header("set-cookie")
        .unwrap()
        .starts_with(&format!("{name}=;")));
    assert_eq!(with(&c).status, 401, "revoked");
    assert_eq!(with(&second).status, 200, "other sessions stay");
}

/// The login form sent a page's visitor back to its path only: the filters in its query
/// were lost.
#[test]
fn regression_the_login_form_keeps_the_pages_query() {
    let (_dir, _clock, spool) = fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let r = request(
        addr,
        "GET",
        "/jobs?status=dead_letter&queue=a%20b",
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
    let page = r.text();
    assert!(
        page.contains("name=\"next\" value=\"/jobs?status=dead_letter&amp;queue=a%20b\""),
        "{page}"
    );
}
