//! Dead letters (`/dead`): `dead_letter` and `failed` jobs, with the jobs page's filters
//! (but status), one page per cursor; redrive one (confirmed in the browser) or all
//! matching (a confirmation page with the count).

use std::fmt::Write as _;

use crate::{JobId, JobStatus, Result, Spool};

use super::filter::{light_page, rows, Filter, BULK_CAP, FETCH};
use super::form::Form;
use super::html::{esc, layout, View};
use super::jobs::{filter_form, job_table, pager};

/// Reads one page of dead jobs and renders it.
pub(crate) fn page(spool: &Spool, view: &View<'_>, query: &Form) -> Result<String> {
    let limit = rows(query);
    // Every filter but the status (the page's own: dead_letter and failed).
    let parsed = Filter::from_form(query).and_then(|mut f| {
        f.status = None;
        let after = query.get("after").map(str::parse::<JobId>).transpose()?;
        Ok((f, after))
    });
    let (filter, after) = match parsed {
        Ok(x) => x,
        Err(e) => {
            let top = filter_form(&Filter::default(), "/dead", false);
            let b = format!("<p class=\"flash err\">{}</p>", esc(&e.to_string()));
            return Ok(layout(view, "Dead letters", "/dead", &top, &b));
        }
    };
    let top = filter_form(&filter, "/dead", false);
    let (jobs, more) = if filter.id.is_some() {
        // A direct read; shown only if it is dead.
        let (mut jobs, _) = filter.page(spool, after, limit)?;
        jobs.retain(|j| matches!(j.status, JobStatus::DeadLetter | JobStatus::Failed));
        (jobs, false)
    } else {
        light_page(
            |q| spool.dead_letters(q),
            filter.query(None, after, FETCH),
            limit,
        )?
    };

    let mut b = String::with_capacity(4096 + jobs.len() * 512);
    let stats = spool.stats()?;
    let _ = write!(
        b,
        "<p class=\"muted\">{} dead-lettered and {} failed jobs in all.</p>",
        stats.total.dead_letter, stats.total.failed
    );
    let button = |j: &crate::Job| {
        format!(
            "<button form=\"redrive-one\" name=\"id\" value=\"{}\" class=\"small primary\">\
             Redrive</button>",
            j.id
        )
    };
    let extra: Option<&dyn Fn(&crate::Job) -> String> =
        if view.read_only { None } else { Some(&button) };
    job_table(&mut b, view, &jobs, "bulk", extra);
    if !view.read_only && !jobs.is_empty() {
        // One form for every row's button: each button sends its own id.
        let _ = write!(
            b,
            "<form id=\"redrive-one\" method=\"post\" action=\"/actions/redrive\" \
             data-confirm=\"Redrive this job?\"><input type=\"hidden\" name=\"back\" value=\"{}\">\
             </form>",
            esc(&view.here)
        );
    }
    pager(&mut b, "/dead", &filter, &jobs, after, more, limit);
    if !view.read_only {
        let _ = write!(
            b,
            "<form id=\"bulk\" class=\"bulk\" method=\"post\" action=\"/actions/bulk\" \
             data-confirm-selection=\"1\"><input type=\"hidden\" name=\"back\" value=\"{h}\">\
             <span>Selected: </span><button type=\"submit\" name=\"action\" value=\"redrive\">\
             Redrive selected</button></form>\
             <form class=\"bulk\" method=\"post\" action=\"/actions/bulk\">\
             <input type=\"hidden\" name=\"scope\" value=\"matching\">\
             <input type=\"hidden\" name=\"action\" value=\"redrive\">\
             <input type=\"hidden\" name=\"back\" value=\"{h}\">",
            h = esc(&view.here)
        );
        filter.hidden_inputs(&mut b);
        let _ = write!(
            b,
            "<span>Everything matching (up to {BULK_CAP}): </span>\
             <button type=\"submit\" id=\"redrive-all\">Redrive all…</button></form>"
        );
    }
    Ok(layout(view, "Dead letters", "/dead", &top, &b))
}
