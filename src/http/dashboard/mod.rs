//! The dashboard: server-rendered pages over the public `Spool` API, one small script and
//! one stylesheet embedded in the binary.
//!
//! | path | page |
//! |---|---|
//! | `/` | overview: counts per queue and status, throughput per minute, running jobs |
//! | `/jobs` | jobs by status, queue, type, tenant, id or dedupe key; cursor `after=<id>` |
//! | `/jobs/new` | the enqueue form |
//! | `/jobs/<id>` | one job: fields, payload, result, executions, its events |
//! | `/dead` | dead-lettered and failed jobs; redrive one, some or all matching |
//! | `/schedules` | schedules: toggle, delete |
//! | `/events` | the newest events of the log (live) |
//! | `POST /actions/<name>` | cancel, redrive, pause, resume, schedule-toggle, schedule-delete, enqueue, bulk |
//! | `/assets/app.<version>.css` (and `.js`) | the assets, cached for a year |
//!
//! Every page reads a bounded amount: one page of jobs, counters for the counts, at most a
//! few thousand events; see each module for its cost.
//!
//! The contract with the router (`src/http/router.rs`): requests arrive here only after its
//! Host, token and same-origin checks; in read-only mode it refuses every `POST` before it
//! reaches here, and the pages hide their forms. Pages go out with [`Response::html`] (CSP
//! with the request's nonce, `private, no-store`); actions answer `303 See Other` back to
//! the page they came from, with the outcome in a short-lived flash cookie.

mod actions;
mod assets;
mod chart;
mod dead;
mod detail;
mod events;
mod filter;
mod form;
pub(crate) mod html;
mod jobs;
mod overview;
mod schedules;

use super::request::{percent_decode, percent_encode, Method};
use super::{Ctx, Request, Response};
use crate::JobId;

use actions::Outcome;
use form::Form;
use html::{esc, layout, FlashKind, View};

/// The cookie that carries an action's outcome to the next page.
const FLASH_COOKIE: &str = "jobspool_flash";

/// Answers a page request, or `None` for a path the dashboard does not serve (the router
/// then answers 404). See the module documentation for the contract with the router.
pub(crate) fn handle(ctx: &Ctx, req: &Request) -> Option<Response> {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = matches!(req.method, Method::Get | Method::Head);
    if let (true, ["assets", name]) = (get, segs.as_slice()) {
        return assets::serve(name);
    }
    let flash = read_flash(req);
    let view = View {
        nonce: &req.nonce,
        read_only: ctx.read_only,
        flash: flash.clone(),
        here: here(req),
    };
    let spool = &ctx.spool;
    let query = Form::from_pairs(req.query.clone());
    let page: crate::Result<Option<String>> = match (get, segs.as_slice()) {
        (true, []) => overview::page(spool, &view).map(Some),
        (true, ["jobs"]) => jobs::page(spool, &view, &query).map(Some),
        (true, ["jobs", "new"]) => Ok(Some(jobs::new_form(&view, &query))),
        (true, ["jobs", id]) => match id.parse::<JobId>() {
            Ok(id) => detail::page(spool, &view, id),
            Err(e) => Err(e),
        },
        (true, ["dead"]) => dead::page(spool, &view, &query).map(Some),
        (true, ["schedules"]) => schedules::page(spool, &view).map(Some),
        (true, ["events"]) => events::page(spool, &view, &query).map(Some),
        (false, ["actions", name]) if req.method == Method::Post => {
            let form = Form::from_pairs(req.form());
            return Some(match actions::run(spool, &view, name, &form)? {
                Outcome::Redirect { to, flash } => {
                    Response::see_other(&to).header("Set-Cookie", &flash_cookie(&flash))
                }
                Outcome::Page { status, html } => Response::html(status, &req.nonce, html),
            });
        }
        _ => return None,
    };
    let resp = match page {
        Ok(Some(html)) => Response::html(200, &req.nonce, html),
        Ok(None) => error_page(&view, 404, "No such job: it may have been pruned."),
        Err(e) => error_page(&view, e.code().http_status(), &e.to_string()),
    };
    Some(if flash.is_some() {
        resp.header(
            "Set-Cookie",
            &format!("{FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
        )
    } else {
        resp
    })
}

fn error_page(view: &View<'_>, status: u16, msg: &str) -> Response {
    let body = format!(
        "<p class=\"flash err\" id=\"error\">{}</p><p><a href=\"/\">Overview</a></p>",
        esc(msg)
    );
    Response::html(status, view.nonce, layout(view, "Error", "", "", &body))
}

/// This page's path and query (what forms send back as `back`).
fn here(req: &Request) -> String {
    let mut out = req.path.clone();
    let mut sep = '?';
    for (k, v) in &req.query {
        out.push(sep);
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
        sep = '&';
    }
    out
}

/// `Set-Cookie` value carrying an action's outcome for one minute.
fn flash_cookie((kind, msg): &(FlashKind, String)) -> String {
    let k = match kind {
        FlashKind::Ok => 'o',
        FlashKind::Error => 'e',
    };
    format!(
        "{FLASH_COOKIE}={k}.{}; Path=/; Max-Age=60; HttpOnly; SameSite=Strict",
        percent_encode(msg)
    )
}

fn read_flash(req: &Request) -> Option<(FlashKind, String)> {
    let v = req.cookie(FLASH_COOKIE)?;
    let (k, msg) = v.split_once('.')?;
    let kind = match k {
        "o" => FlashKind::Ok,
        "e" => FlashKind::Error,
        _ => return None,
    };
    let msg = percent_decode(msg, false)?;
    (!msg.is_empty()).then_some((kind, msg))
}
