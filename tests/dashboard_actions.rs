//! The dashboard's actions and paging over real TCP: each action changes the queue through
//! the public API and redirects back with a flash message; bulk actions are capped and
//! confirmed; the jobs cursor stays stable while jobs are enqueued.

mod common;
mod dashboard_common;

use std::collections::HashSet;

use common::{conformance, TestBackend};
use dashboard_common::{attr_values, get, post, request, serve_spool, unescape, Served};
use jobspool::{Event, JobId, JobStatus, ListQuery, NewJob, NewSchedule, Spool};

conformance!(
    single_actions_change_the_queue_and_flash_the_outcome,
    redrive_from_the_dashboard_makes_a_dead_job_pending,
    enqueue_form_creates_the_job_or_shows_the_error_with_the_values,
    bulk_on_everything_matching_is_capped_at_1000_and_confirmed_first,
    bulk_on_a_selection_acts_on_those_ids_only_and_refuses_over_the_cap,
    pagination_is_stable_while_jobs_are_enqueued,
);

/// A spool on a fresh store of `b`, opened with `builder` (scheduler and maintenance off),
/// served over HTTP.
fn served(b: TestBackend, builder: jobspool::Builder, read_only: bool) -> Served {
    let store = b.store();
    let spool = store.open(builder.scheduler(false).maintenance(false));
    serve_spool(spool, Box::new(store), read_only)
}

/// The flash cookie an action answer sets (`name=value`), and the page it redirects to.
fn redirect(a: &dashboard_common::Answer) -> (String, String) {
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = a
        .headers("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("jobspool_flash="))
        .expect("a flash cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (a.header("location").unwrap().to_owned(), cookie)
}

/// The page at `to` shown with `cookie`: it carries the flash once, then clears it.
fn flash_on(s: &dashboard_common::Served, to: &str, cookie: &str) -> String {
    let a = request(s.addr, "GET", to, &[("Cookie", cookie)], b"");
    assert_eq!(a.status, 200);
    assert!(a
        .headers("set-cookie")
        .iter()
        .any(|c| c.starts_with("jobspool_flash=;") && c.contains("Max-Age=0")));
    let i = a.body.find("<p class=\"flash").expect("a flash message");
    let end = a.body[i..].find("</p>").unwrap();
    a.body[i..i + end].to_owned()
}

fn cancelled_by(spool: &Spool, id: JobId) -> Option<String> {
    common::all_events(spool)
        .into_iter()
        .find_map(|r| match r.event {
            Event::JobCancelled {
                job_id,
                cancelled_by,
                ..
            } if job_id == id => cancelled_by,
            _ => None,
        })
}

fn single_actions_change_the_queue_and_flash_the_outcome(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let job = s.spool.enqueue(NewJob::new("k", b"{}".to_vec())).unwrap();
    let id = job.id.to_string();

    // Cancel: back to the page it came from, recorded as the dashboard's.
    let a = post(
        s.addr,
        "/actions/cancel",
        &[("id", &id), ("back", "/jobs?status=pending")],
    );
    let (to, cookie) = redirect(&a);
    assert_eq!(to, "/jobs?status=pending");
    assert_eq!(s.spool.get(job.id).unwrap().status, JobStatus::Cancelled);
    assert_eq!(cancelled_by(&s.spool, job.id).as_deref(), Some("dashboard"));
    let flash = flash_on(&s, &to, &cookie);
    assert!(flash.contains("flash ok") && flash.contains(&format!("Cancelled job {id}")));

    // Cancelling again fails with the contract's code, shown as an error.
    let (to, cookie) = redirect(&post(s.addr, "/actions/cancel", &[("id", &id)]));
    assert_eq!(to, "/jobs");
    let flash = flash_on(&s, &to, &cookie);
    assert!(
        flash.contains("flash err") && flash.contains("JOB_NOT_PENDING"),
        "{flash}"
    );

    // A `back` off this site is ignored.
    let (to, _) = redirect(&post(
        s.addr,
        "/actions/pause",
        &[("queue", "default"), ("back", "//evil.example/x")],
    ));
    assert_eq!(to, "/");
    assert!(s.spool.stats().unwrap().queues["default"].paused);
    redirect(&post(s.addr, "/actions/resume", &[("queue", "default")]));
    assert!(!s.spool.stats().unwrap().queues["default"].paused);

    // Schedules: toggle, then delete.
    s.spool
        .create_schedule(NewSchedule::new("nightly", "0 3 * * *", "k"))
        .unwrap();
    let (to, _) = redirect(&post(
        s.addr,
        "/actions/schedule-toggle",
        &[("name", "nightly"), ("enabled", "false")],
    ));
    assert_eq!(to, "/schedules");
    assert!(!s.spool.list_schedules().unwrap()[0].enabled);
    assert!(get(s.addr, "/schedules")
        .body
        .contains("data-enabled=\"false\""));
    let (_, cookie) = redirect(&post(
        s.addr,
        "/actions/schedule-toggle",
        &[("name", "nightly"), ("enabled", "maybe")],
    ));
    assert!(flash_on(&s, "/schedules", &cookie).contains("INVALID_ARGUMENT"));
    redirect(&post(
        s.addr,
        "/actions/schedule-delete",
        &[("name", "nightly")],
    ));
    assert!(s.spool.list_schedules().unwrap().is_empty());

    // A missing field is an error message, not a failure.
    let (_, cookie) = redirect(&post(s.addr, "/actions/redrive", &[]));
    assert!(unescape(&flash_on(&s, "/dead", &cookie)).contains("no \"id\" field"));
}

fn redrive_from_the_dashboard_makes_a_dead_job_pending(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let job = s
        .spool
        .enqueue(
            NewJob::new("k", b"{}".to_vec())
                .max_attempts(1)
                .tenant_id("t1")
                .dedupe_key("d1"),
        )
        .unwrap();
    let other = s.spool.enqueue(NewJob::new("other", vec![])).unwrap();
    let mut req = s.spool.claim_request(1);
    req.kinds = vec!["k".into()];
    let claimed = s.spool.claim(&req).unwrap().remove(0);
    s.spool
        .fail(claimed.lease, "boom <b>", jobspool::Retry::Backoff)
        .unwrap();
    assert_eq!(s.spool.get(job.id).unwrap().status, JobStatus::DeadLetter);
    let dead = get(s.addr, "/dead").body;
    assert!(dead.contains(&format!("data-id=\"{}\"", job.id)));
    assert!(dead.contains("boom &lt;b&gt;"));
    // Every filter of the jobs page works here too; a pending job is not a dead letter.
    let row = format!("data-id=\"{}\"", job.id);
    for (q, shown) in [
        (format!("id={}", job.id), true),
        ("tenant=t1&type=k".to_owned(), true),
        ("dedupe=d1".to_owned(), true),
        (format!("id={}", other.id), false),
        ("tenant=t2".to_owned(), false),
        ("dedupe=d2".to_owned(), false),
    ] {
        let page = get(s.addr, &format!("/dead?{q}"));
        assert_eq!(page.status, 200);
        assert_eq!(page.body.contains(&row), shown, "/dead?{q}");
    }
    assert!(get(s.addr, "/dead?id=nope").body.contains("flash err"));
    let detail = get(s.addr, &format!("/jobs/{}", job.id)).body;
    assert!(detail.contains("id=\"executions\"") && detail.contains("job.dead_lettered"));
    assert!(detail.contains("action=\"/actions/redrive\""));
    let (to, _) = redirect(&post(
        s.addr,
        "/actions/redrive",
        &[
            ("id", &job.id.to_string()),
            ("back", &format!("/jobs/{}", job.id)),
        ],
    ));
    assert_eq!(to, format!("/jobs/{}", job.id));
    assert_eq!(s.spool.get(job.id).unwrap().status, JobStatus::Pending);
}

fn enqueue_form_creates_the_job_or_shows_the_error_with_the_values(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let a = post(
        s.addr,
        "/actions/enqueue",
        &[
            ("queue", "mail"),
            ("type", "email.send"),
            ("payload", "{\"to\": \"a@b.c\"}"),
            ("priority", "5"),
            ("delay", "60"),
        ],
    );
    let (to, _) = redirect(&a);
    let id: JobId = to.strip_prefix("/jobs/").unwrap().parse().unwrap();
    let job = s.spool.get(id).unwrap();
    assert_eq!(
        (job.queue.as_str(), job.kind.as_str(), job.priority),
        ("mail", "email.send", 5)
    );
    assert_eq!(job.payload, b"{\"to\": \"a@b.c\"}");
    assert!(job.scheduled_at.unwrap() > job.created_at);

    for (fields, code) in [
        (
            vec![("type", "t"), ("payload", "{not json")],
            "not valid JSON",
        ),
        (
            vec![("type", "t"), ("priority", "high")],
            "priority must be",
        ),
        (vec![("type", "t"), ("delay", "-1")], "delay must be"),
        (vec![("payload", "{}")], "no \\\"type\\\" field"),
    ] {
        let a = post(s.addr, "/actions/enqueue", &fields);
        assert_eq!(a.status, 400, "{fields:?}");
        assert!(
            unescape(&a.body).contains(&code.replace("\\\"", "\"")),
            "{code}: {}",
            a.body
        );
        assert!(a.body.contains("id=\"enqueue\""), "the form is shown again");
    }
    // The typed payload comes back in the form.
    let a = post(
        s.addr,
        "/actions/enqueue",
        &[("type", "t"), ("payload", "{<oops")],
    );
    assert!(a.body.contains("{&lt;oops</textarea>"));
    assert_eq!(s.spool.stats().unwrap().total.pending, 1);
}

fn bulk_on_everything_matching_is_capped_at_1000_and_confirmed_first(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let jobs: Vec<NewJob> = (0..1005)
        .map(|i| NewJob::new("bulk", vec![]).queue(if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    let made = s.spool.enqueue_batch(jobs).unwrap();
    let other = s.spool.enqueue(NewJob::new("other", vec![])).unwrap();

    // First answer: a confirmation page with the count, changing nothing.
    let a = post(
        s.addr,
        "/actions/bulk",
        &[
            ("scope", "matching"),
            ("action", "cancel"),
            ("type", "bulk"),
            ("back", "/jobs?type=bulk"),
        ],
    );
    assert_eq!(a.status, 200);
    assert!(a.body.contains("data-count=\"1000\""), "{}", a.body);
    assert!(a.body.contains("More than 1000 jobs match"));
    assert_eq!(s.spool.stats().unwrap().total.cancelled, 0);
    // The confirmation carries the newest id counted: jobs enqueued since are left alone.
    let upto = field_value(&a.body, "upto");
    assert_eq!(upto, made[999].id.to_string());
    let late = s.spool.enqueue(NewJob::new("bulk", vec![])).unwrap();

    let (to, cookie) = redirect(&post(
        s.addr,
        "/actions/bulk",
        &[
            ("scope", "matching"),
            ("action", "cancel"),
            ("type", "bulk"),
            ("confirm", "1"),
            ("upto", &upto),
            ("back", "/jobs?type=bulk"),
        ],
    ));
    assert_eq!(to, "/jobs?type=bulk");
    let stats = s.spool.stats().unwrap();
    assert_eq!(stats.total.cancelled, 1000);
    for j in &made[..1000] {
        assert_eq!(s.spool.get(j.id).unwrap().status, JobStatus::Cancelled);
    }
    for j in made[1000..]
        .iter()
        .map(|e| &e.job)
        .chain([&late.job, &other.job])
    {
        assert_eq!(s.spool.get(j.id).unwrap().status, JobStatus::Pending);
    }
    assert_eq!(
        cancelled_by(&s.spool, made[0].id).as_deref(),
        Some("dashboard")
    );
    assert!(flash_on(&s, &to, &cookie).contains("Cancelled 1\u{202f}000 jobs."));

    // A filter the action cannot apply to is refused before anything happens.
    let (_, cookie) = redirect(&post(
        s.addr,
        "/actions/bulk",
        &[
            ("scope", "matching"),
            ("action", "redrive"),
            ("status", "pending"),
        ],
    ));
    assert!(flash_on(&s, "/jobs", &cookie).contains("INVALID_ARGUMENT"));

    // Nothing matching: a page that says so, without a confirm button.
    let a = post(
        s.addr,
        "/actions/bulk",
        &[("scope", "matching"), ("action", "redrive"), ("queue", "a")],
    );
    assert!(a.body.contains("data-count=\"0\"") && !a.body.contains("id=\"confirm\""));
}

fn bulk_on_a_selection_acts_on_those_ids_only_and_refuses_over_the_cap(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let ids: Vec<JobId> = (0..4)
        .map(|_| s.spool.enqueue(NewJob::new("k", vec![])).unwrap().id)
        .collect();
    let (a, b) = (ids[0].to_string(), ids[2].to_string());
    // A job ticked twice (a crafted form) counts once.
    let (_, cookie) = redirect(&post(
        s.addr,
        "/actions/bulk",
        &[
            ("action", "cancel"),
            ("id", &a),
            ("id", &b),
            ("id", &a),
            ("back", "/jobs"),
        ],
    ));
    assert!(flash_on(&s, "/jobs", &cookie).contains("Cancelled 2 jobs."));
    let st: Vec<JobStatus> = ids
        .iter()
        .map(|i| s.spool.get(*i).unwrap().status)
        .collect();
    assert_eq!(
        st,
        [
            JobStatus::Cancelled,
            JobStatus::Pending,
            JobStatus::Cancelled,
            JobStatus::Pending
        ]
    );
    // Again: both fail, and the message says how many and why.
    let (_, cookie) = redirect(&post(
        s.addr,
        "/actions/bulk",
        &[("action", "cancel"), ("id", &a), ("id", &b)],
    ));
    let flash = flash_on(&s, "/jobs", &cookie);
    assert!(
        flash.contains("Cancelled 0 jobs; 2 could not be") && flash.contains("JOB_NOT_PENDING")
    );
    // Over the cap: refused whole.
    let many: Vec<String> = (0..1001u32)
        .map(|i| format!("01900000-0000-7000-8000-{i:012}"))
        .chain([ids[1].to_string()])
        .collect();
    let fields: Vec<(&str, &str)> = std::iter::once(("action", "cancel"))
        .chain(many.iter().map(|i| ("id", i.as_str())))
        .collect();
    let (_, cookie) = redirect(&post(s.addr, "/actions/bulk", &fields));
    assert!(flash_on(&s, "/jobs", &cookie).contains("at most 1000"));
    assert_eq!(s.spool.get(ids[1]).unwrap().status, JobStatus::Pending);
    // No selection.
    let (_, cookie) = redirect(&post(s.addr, "/actions/bulk", &[("action", "cancel")]));
    assert!(flash_on(&s, "/jobs", &cookie).contains("no job selected"));
}

/// The value of the hidden field `name` in `html`.
fn field_value(html: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = html.find(&pat).expect(name) + pat.len();
    unescape(&html[i..i + html[i..].find('"').unwrap()])
}

/// The ids of a jobs page, and its "next page" link.
fn page_ids(html: &str) -> (Vec<JobId>, Option<String>) {
    let ids = attr_values(html, "data-id")
        .into_iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let next = html.find("id=\"next\" href=\"").map(|i| {
        let rest = &html[i + "id=\"next\" href=\"".len()..];
        unescape(&rest[..rest.find('"').unwrap()])
    });
    (ids, next)
}

fn pagination_is_stable_while_jobs_are_enqueued(b: TestBackend) {
    let s = served(b, Spool::builder(), false);
    let first: Vec<JobId> = (0..25)
        .map(|_| s.spool.enqueue(NewJob::new("p", vec![])).unwrap().id)
        .collect();
    let mut seen: Vec<JobId> = Vec::new();
    let mut next = Some("/jobs?type=p&limit=10".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let a = get(s.addr, &url);
        assert_eq!(a.status, 200);
        let (ids, n) = page_ids(&a.body);
        assert!(ids.len() <= 10);
        seen.extend(ids);
        next = n;
        pages += 1;
        // New jobs arrive between page loads; they sort after every id already shown.
        if pages <= 2 {
            for _ in 0..3 {
                s.spool.enqueue(NewJob::new("p", vec![])).unwrap();
            }
        }
        assert!(pages < 10, "the cursor does not end");
    }
    // Every job exactly once, in id order: the original ones, then the new ones.
    let unique: HashSet<&JobId> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a job was shown twice");
    assert_eq!(&seen[..25], &first[..]);
    assert_eq!(seen.len(), 31);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let all = s
        .spool
        .list(&ListQuery {
            kind: Some("p".into()),
            limit: Some(100),
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(seen, all.iter().map(|j| j.id).collect::<Vec<_>>());
}
