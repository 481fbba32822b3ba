//! The dashboard's pages over real TCP: every page answers, values are escaped, the CSP
//! nonce is on the script, read-only mode hides and refuses actions, assets are cached.

mod common;
mod dashboard_common;

use common::{conformance, TestBackend};
use dashboard_common::{attr_values, get, post, serve_spool, Answer, Served};
use jobspool::{chrono, JobStatus, ManualClock, NewJob, NewSchedule, Spool};

conformance!(
    every_page_answers_200_with_the_nonce_and_no_inline_code,
    bad_input_gets_a_4xx_page_and_unknown_paths_404,
    job_type_and_payload_with_script_tags_are_escaped_everywhere,
    read_only_mode_hides_the_actions_and_refuses_them,
    assets_are_versioned_and_cached_for_a_year,
    overview_counts_match_stats_per_queue_and_status,
    a_jobs_timeline_is_found_by_time_past_the_scan_bound,
    a_wrong_tenant_finds_nothing,
);

/// A spool on a fresh store of `b`, opened with `builder` (scheduler and maintenance off),
/// served over HTTP.
fn served(b: TestBackend, builder: jobspool::Builder, read_only: bool) -> Served {
    let store = b.store();
    let spool = store.open(builder.scheduler(false).maintenance(false));
    serve_spool(spool, Box::new(store), read_only)
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn assert_page(a: &Answer, what: &str) {
    assert_eq!(a.status, 200, "{what}: {}", a.body);
    assert_eq!(
        a.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{what}"
    );
    assert_eq!(
        a.header("cache-control"),
        Some("private, no-store"),
        "{what}"
    );
    // The one script carries the nonce the policy names; nothing inline besides.
    let csp = a.header("content-security-policy").expect("a CSP");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a nonce in the CSP");
    assert!(
        a.body.contains(&format!(
            "<script src=\"/assets/app.{VERSION}.js\" nonce=\"{nonce}\" defer></script>"
        )),
        "{what}: the script lacks the nonce"
    );
    assert_eq!(
        a.body.matches("<script").count(),
        1,
        "{what}: an extra script"
    );
    assert!(
        !a.body.contains(" style="),
        "{what}: an inline style attribute"
    );
    assert!(
        !a.body.contains("<style"),
        "{what}: an inline style element"
    );
    assert!(
        !has_inline_handler(&a.body),
        "{what}: an inline event handler"
    );
}

/// Whether `html` has an attribute like ` onclick=`.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

fn every_page_answers_200_with_the_nonce_and_no_inline_code(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let job = s
        .spool
        .enqueue(NewJob::new("email.send", br#"{"to":"a@b.c"}"#.to_vec()).tenant_id("t1"))
        .unwrap();
    s.spool
        .create_schedule(NewSchedule::new("nightly", "0 3 * * *", "report.build"))
        .unwrap();
    for path in [
        "/".to_owned(),
        "/jobs".into(),
        "/jobs?status=pending&queue=default&type=email.send&tenant=t1".into(),
        format!("/jobs?id={}", job.id),
        "/jobs?dedupe=nope&limit=5".into(),
        format!("/jobs/{}", job.id),
        "/jobs/new".into(),
        "/dead".into(),
        "/dead?queue=default&type=x".into(),
        "/schedules".into(),
        "/events".into(),
        "/events?before=2".into(),
    ] {
        let a = get(s.addr, &path);
        assert_page(&a, &path);
    }
    // HEAD answers like GET, without a body.
    let a = dashboard_common::request(s.addr, "HEAD", "/jobs", &[], b"");
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty());
    // A filter finds the job by id, tenant and status; a wrong tenant finds nothing.
    let by_id = get(s.addr, &format!("/jobs?id={}", job.id));
    assert!(by_id.body.contains(&format!("data-id=\"{}\"", job.id)));
}

/// Regression (PostgreSQL): its `list` once ignored the tenant and dedupe-key filters, so a
/// wrong tenant listed every job.
fn a_wrong_tenant_finds_nothing(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    s.spool
        .enqueue(NewJob::new("t", vec![]).tenant_id("t1"))
        .unwrap();
    let one = get(s.addr, "/jobs?tenant=t1");
    assert_eq!(one.body.matches("data-id=").count(), 1, "{}", one.body);
    let none = get(s.addr, "/jobs?tenant=t2");
    assert!(none.body.contains("id=\"no-jobs\""));
}

fn bad_input_gets_a_4xx_page_and_unknown_paths_404(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let a = get(s.addr, "/jobs/not-a-uuid");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("not a valid job id"));
    let a = get(s.addr, "/jobs/01900000-0000-7000-8000-000000000000");
    assert_eq!(a.status, 404);
    assert!(a.body.contains("No such job"));
    assert_eq!(get(s.addr, "/nope").status, 404);
    assert_eq!(get(s.addr, "/jobs/a/b").status, 404);
    // A bad filter is shown on the page, not a failure.
    let a = get(s.addr, "/jobs?status=bogus&after=zz");
    assert_eq!(a.status, 200);
    assert!(a.body.contains("flash err"));
    // An unknown action is 404; a GET of an action is not an action.
    assert_eq!(post(s.addr, "/actions/explode", &[]).status, 404);
    assert_eq!(get(s.addr, "/actions/cancel").status, 404);
}

fn job_type_and_payload_with_script_tags_are_escaped_everywhere(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let evil = "<script>alert(1)</script>";
    let job = s
        .spool
        .enqueue(
            NewJob::new(
                evil,
                format!(r#"{{"html":"{evil}","q":"'\""}}"#).into_bytes(),
            )
            .queue("q<b>")
            .tenant_id("\"><img src=x>")
            .meta("k<", "v>"),
        )
        .unwrap();
    // Bytes that are not JSON: shown as hex and base64.
    let raw = s
        .spool
        .enqueue(NewJob::new("raw", b"<script>\xff\x00".to_vec()))
        .unwrap();
    for path in [
        "/".to_owned(),
        "/jobs".into(),
        format!("/jobs/{}", job.id),
        format!("/jobs/{}", raw.id),
        "/events".into(),
        format!("/jobs?type={}", dashboard_common::enc(evil)),
    ] {
        let a = get(s.addr, &path);
        assert_eq!(a.status, 200, "{path}");
        assert!(
            !a.body.contains("<script>"),
            "{path}: raw <script> in the page"
        );
        assert!(!a.body.contains("<img"), "{path}: raw <img> in the page");
        assert!(!a.body.contains("<b>"), "{path}: raw <b> in the page");
    }
    let detail = get(s.addr, &format!("/jobs/{}", job.id)).body;
    assert!(detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(detail.contains("&quot;&gt;&lt;img src=x&gt;"));
    // The payload is pretty JSON, escaped.
    assert!(detail.contains("<pre class=\"json\">{\n  &quot;html&quot;: &quot;&lt;script&gt;"));
    let raw_page = get(s.addr, &format!("/jobs/{}", raw.id)).body;
    assert!(
        raw_page.contains("3c 73 63 72 69 70 74 3e ff 00"),
        "hex of the payload"
    );
    assert!(
        raw_page.contains("PHNjcmlwdD7/AA=="),
        "base64 of the payload"
    );
    // The filter form echoes the typed value escaped.
    let filtered = get(
        s.addr,
        &format!("/jobs?type={}", dashboard_common::enc(evil)),
    )
    .body;
    assert!(filtered.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
}

fn read_only_mode_hides_the_actions_and_refuses_them(b: TestBackend) {
    let s = served(b, Spool::builder(), true);
    let job = s.spool.enqueue(NewJob::new("k", b"{}".to_vec())).unwrap();
    s.spool
        .create_schedule(NewSchedule::new("nightly", "0 3 * * *", "k"))
        .unwrap();
    for path in [
        "/".to_owned(),
        "/jobs".into(),
        format!("/jobs/{}", job.id),
        "/dead".into(),
        "/schedules".into(),
        "/jobs/new".into(),
    ] {
        let a = get(s.addr, &path);
        assert_eq!(a.status, 200, "{path}");
        assert!(!a.body.contains("method=\"post\""), "{path} has a form");
        assert!(
            !a.body.contains("type=\"checkbox\""),
            "{path} has a checkbox"
        );
        assert!(
            a.body.contains("read-only"),
            "{path} does not say read-only"
        );
    }
    let a = post(s.addr, "/actions/cancel", &[("id", &job.id.to_string())]);
    assert_eq!(a.status, 403);
    let a = post(
        s.addr,
        "/actions/bulk",
        &[
            ("scope", "matching"),
            ("action", "cancel"),
            ("confirm", "1"),
        ],
    );
    assert_eq!(a.status, 403);
    assert_eq!(s.spool.get(job.id).unwrap().status, JobStatus::Pending);
    assert!(s.spool.list_schedules().unwrap()[0].enabled);
}

fn assets_are_versioned_and_cached_for_a_year(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    for (ext, ctype, needle) in [
        ("css", "text/css; charset=utf-8", "table.grid"),
        ("js", "text/javascript; charset=utf-8", "localStorage"),
    ] {
        let a = get(s.addr, &format!("/assets/app.{VERSION}.{ext}"));
        assert_eq!(a.status, 200, "{ext}");
        assert_eq!(a.header("content-type"), Some(ctype));
        assert_eq!(
            a.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(a.body.contains(needle), "{ext} content");
    }
    assert_eq!(get(s.addr, "/assets/app.0.0.0-old.css").status, 404);
    assert_eq!(
        get(s.addr, &format!("/assets/app.{VERSION}.map")).status,
        404
    );
    assert_eq!(get(s.addr, "/assets/other.css").status, 404);
    // The pages name exactly these.
    let page = get(s.addr, "/").body;
    assert!(page.contains(&format!("href=\"/assets/app.{VERSION}.css\"")));
}

fn overview_counts_match_stats_per_queue_and_status(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    for i in 0..7 {
        let q = if i % 2 == 0 { "even" } else { "odd" };
        s.spool
            .enqueue(NewJob::new("k", b"{}".to_vec()).queue(q))
            .unwrap();
    }
    let c = s
        .spool
        .enqueue(NewJob::new("k", vec![]).queue("odd"))
        .unwrap();
    s.spool.cancel(c.id).unwrap();
    s.spool.pause_queue("odd").unwrap();
    let a = get(s.addr, "/");
    let stats = s.spool.stats().unwrap();
    let count = |key: &str| -> u64 {
        let pat = format!("data-count=\"{key}\">");
        let i = a.body.find(&pat).expect(key) + pat.len();
        a.body[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '\u{202f}')
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    assert_eq!(count("pending"), stats.total.pending);
    assert_eq!(count("cancelled"), stats.total.cancelled);
    assert_eq!(count("pending"), 7);
    assert!(a.body.contains("<tr data-queue=\"odd\">"));
    assert!(a.body.contains("badge paused"));
    assert!(a.body.contains("action=\"/actions/resume\""));
    assert!(a.body.contains("action=\"/actions/pause\""));
    assert!(a.body.contains("<svg class=\"chart\""));
    assert!(a.body.contains("8 enqueued"));
}

fn a_jobs_timeline_is_found_by_time_past_the_scan_bound(b: TestBackend) {
    let clock = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-28T20:00:00Z")
            .unwrap()
            .into(),
    );
    let s = served(b, Spool::builder().clock(clock.clone()), false);
    let batch = |n: usize| {
        for _ in 0..n / 5000 {
            let jobs = (0..5000).map(|_| NewJob::new("noise", vec![])).collect();
            s.spool.enqueue_batch(jobs).unwrap();
        }
    };
    // More events before the job than one timeline reads at most (20,000).
    batch(25_000);
    clock.advance_ms(60_000);
    let job = s.spool.enqueue(NewJob::new("target", vec![])).unwrap();
    batch(5000);
    clock.advance_ms(60_000);
    s.spool.cancel(job.id).unwrap();
    clock.advance_ms(60_000);
    batch(5000);
    let a = get(s.addr, &format!("/jobs/{}", job.id));
    assert_eq!(a.status, 200);
    let seqs: Vec<u64> = attr_values(&a.body, "data-seq")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(seqs, [25_001, 30_002], "{}", a.body);
    assert!(a.body.contains("job.enqueued") && a.body.contains("job.cancelled"));
    assert!(!a.body.contains("The search stopped"));
}
