//! The jobs page (`/jobs`): the filter form, one page of jobs with a cursor (`after=<id>`,
//! never an offset), selection for bulk actions; and the enqueue form (`/jobs/new`).

use std::fmt::Write as _;

use crate::{Job, JobId, JobStatus, Result, Spool};

use super::filter::{rows, Filter, BULK_CAP, DEFAULT_ROWS};
use super::form::Form;
use super::html::{badge, esc, href, layout, short, time_el, View};

/// Reads the page and renders it; a bad filter is shown as an error above an empty list.
pub(crate) fn page(spool: &Spool, view: &View<'_>, query: &Form) -> Result<String> {
    let limit = rows(query);
    let (filter, error) = match Filter::from_form(query) {
        Ok(f) => (f, None),
        Err(e) => (Filter::default(), Some(e.to_string())),
    };
    let after = match query.get("after").map(str::parse::<JobId>).transpose() {
        Ok(a) => a,
        Err(e) => {
            return Ok(render(
                view,
                &filter,
                &[],
                None,
                false,
                limit,
                Some(e.to_string()),
            ))
        }
    };
    if error.is_some() {
        return Ok(render(view, &filter, &[], None, false, limit, error));
    }
    let (jobs, more) = filter.page(spool, after, limit)?;
    Ok(render(view, &filter, &jobs, after, more, limit, None))
}

/// The filter form (outside the refreshed area, so typing is not lost).
pub(crate) fn filter_form(filter: &Filter, action: &str, with_status: bool) -> String {
    let mut b = format!(
        "<form class=\"filters\" method=\"get\" action=\"{}\" role=\"search\">",
        esc(action)
    );
    if with_status {
        b.push_str("<label>status <select name=\"status\"><option value=\"\">any</option>");
        for s in JobStatus::ALL {
            let sel = if filter.status == Some(s) {
                " selected"
            } else {
                ""
            };
            let _ = write!(b, "<option{sel}>{}</option>", s.as_str());
        }
        b.push_str("</select></label>");
    }
    let id = filter.id.map(|i| i.to_string());
    for (name, label, value) in [
        ("queue", "queue", filter.queue.as_deref()),
        ("type", "type", filter.kind.as_deref()),
        ("tenant", "tenant", filter.tenant.as_deref()),
        ("id", "id", id.as_deref()),
        ("dedupe", "dedupe key", filter.dedupe.as_deref()),
    ] {
        let _ = write!(
            b,
            "<label>{label} <input name=\"{name}\" value=\"{}\" autocomplete=\"off\"></label>",
            esc(value.unwrap_or(""))
        );
    }
    let _ = write!(
        b,
        "<button type=\"submit\">Filter</button> <a href=\"{}\">Clear</a></form>",
        esc(action)
    );
    b
}

fn render(
    view: &View<'_>,
    filter: &Filter,
    jobs: &[Job],
    after: Option<JobId>,
    more: bool,
    limit: usize,
    error: Option<String>,
) -> String {
    let mut top = filter_form(filter, "/jobs", true);
    if !view.read_only {
        top.push_str(
            "<p class=\"tools\"><a class=\"button\" href=\"/jobs/new\">Enqueue a job</a></p>",
        );
    }
    let mut b = String::with_capacity(4096 + jobs.len() * 512);
    if let Some(e) = error {
        let _ = write!(b, "<p class=\"flash err\">{}</p>", esc(&e));
    }
    job_table(&mut b, view, jobs, "bulk", None);
    pager(&mut b, "/jobs", filter, jobs, after, more, limit);
    if !view.read_only {
        bulk_forms(&mut b, view, filter, jobs.is_empty());
    }
    layout(view, "Jobs", "/jobs", &top, &b)
}

/// A last cell per row (e.g. a button of another form).
pub(crate) type RowExtra<'a> = &'a dyn Fn(&Job) -> String;

/// The table of jobs; with actions allowed, each row has a checkbox belonging to the form
/// `form_id` (a form outside the table, so rows may hold other forms' buttons too), and
/// `extra`'s cell when given.
pub(crate) fn job_table(
    b: &mut String,
    view: &View<'_>,
    jobs: &[Job],
    form_id: &str,
    extra: Option<RowExtra<'_>>,
) {
    if jobs.is_empty() {
        b.push_str("<p class=\"muted\" id=\"no-jobs\">No jobs match.</p>");
        return;
    }
    b.push_str("<div class=\"scroll\"><table class=\"grid jobs\" id=\"jobs\"><thead><tr>");
    if !view.read_only {
        b.push_str("<th class=\"sel\"><span class=\"sr\">select</span></th>");
    }
    b.push_str(
        "<th>id</th><th>status</th><th>type</th><th>queue</th><th class=\"num\">attempts</th>\
         <th class=\"num opt\">pri</th><th class=\"opt\">created</th><th>last error</th>",
    );
    if extra.is_some() {
        b.push_str("<th></th>");
    }
    b.push_str("</tr></thead><tbody>");
    for j in jobs {
        let _ = write!(b, "<tr data-id=\"{}\" data-status=\"{}\">", j.id, j.status);
        if !view.read_only {
            let _ = write!(
                b,
                "<td class=\"sel\"><input type=\"checkbox\" name=\"id\" value=\"{}\" form=\"{}\" \
                 aria-label=\"select {}\"></td>",
                j.id,
                esc(form_id),
                j.id
            );
        }
        let _ = write!(
            b,
            "<td><a class=\"mono\" href=\"/jobs/{id}\" title=\"{id}\">{sid}</a></td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"num\">{}/{}</td><td class=\"num opt\">{}</td>\
             <td class=\"opt\">{}</td><td class=\"err\">{}</td>",
            badge(j.status),
            esc(&short(&j.kind, 60)),
            esc(&j.queue),
            j.attempts,
            j.max_attempts,
            j.priority,
            time_el(j.created_at),
            esc(&short(j.last_error.as_deref().unwrap_or(""), 80)),
            id = j.id,
            sid = short(&j.id.to_string(), 13),
        );
        if let Some(f) = extra {
            let _ = write!(b, "<td>{}</td>", f(j));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></div>");
}

/// "First page" and "Next page" links (the cursor is the last id shown).
pub(crate) fn pager(
    b: &mut String,
    path: &str,
    filter: &Filter,
    jobs: &[Job],
    after: Option<JobId>,
    more: bool,
    limit: usize,
) {
    let mut pairs = filter.pairs();
    if limit != DEFAULT_ROWS {
        pairs.push(("limit", limit.to_string()));
    }
    let as_refs = |extra: Option<(&'static str, String)>| {
        let mut v: Vec<(&str, String)> = pairs.clone();
        v.extend(extra);
        v
    };
    b.push_str("<nav class=\"pager\">");
    if after.is_some() {
        let v = as_refs(None);
        let r: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = write!(b, "<a href=\"{}\">« First page</a>", esc(&href(path, &r)));
    }
    if let (true, Some(last)) = (more, jobs.last()) {
        let v = as_refs(Some(("after", last.id.to_string())));
        let r: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = write!(
            b,
            "<a id=\"next\" href=\"{}\">Next page »</a>",
            esc(&href(path, &r))
        );
    }
    b.push_str("</nav>");
}

/// The bulk forms: on the selection (the checkboxes), and on everything matching the
/// filter (answered with a confirmation page that shows the count).
fn bulk_forms(b: &mut String, view: &View<'_>, filter: &Filter, empty: bool) {
    let _ = write!(
        b,
        "<form id=\"bulk\" class=\"bulk\" method=\"post\" action=\"/actions/bulk\" \
         data-confirm-selection=\"1\"><input type=\"hidden\" name=\"back\" value=\"{}\">\
         <span>Selected: </span>\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel selected</button> \
         <button type=\"submit\" name=\"action\" value=\"redrive\">Redrive selected</button>\
         </form>",
        esc(&view.here)
    );
    if empty {
        return;
    }
    let _ = write!(
        b,
        "<form class=\"bulk\" method=\"post\" action=\"/actions/bulk\">\
         <input type=\"hidden\" name=\"scope\" value=\"matching\">\
         <input type=\"hidden\" name=\"back\" value=\"{}\">",
        esc(&view.here)
    );
    filter.hidden_inputs(b);
    let _ = write!(
        b,
        "<span>Everything matching (up to {BULK_CAP}): </span>\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel all…</button> \
         <button type=\"submit\" name=\"action\" value=\"redrive\">Redrive all…</button></form>"
    );
}

/// The enqueue form (`/jobs/new`).
pub(crate) fn new_form(view: &View<'_>, values: &Form) -> String {
    let v = |k: &str| esc(values.raw(k).unwrap_or("")).to_string();
    let queue = values.get("queue").unwrap_or("default");
    let body = format!(
        "<form class=\"stack\" method=\"post\" action=\"/actions/enqueue\" id=\"enqueue\">\
         <input type=\"hidden\" name=\"back\" value=\"/jobs/new\">\
         <label>queue <input name=\"queue\" value=\"{}\" required></label>\
         <label>type <input name=\"type\" value=\"{}\" required></label>\
         <label>payload (JSON) <textarea name=\"payload\" rows=\"6\" spellcheck=\"false\">{}</textarea></label>\
         <label>priority <input name=\"priority\" type=\"number\" value=\"{}\" step=\"1\"></label>\
         <label>delay (seconds) <input name=\"delay\" type=\"number\" min=\"0\" value=\"{}\" step=\"1\"></label>\
         <button type=\"submit\">Enqueue</button></form>",
        esc(queue),
        v("type"),
        v("payload"),
        values.get("priority").map_or_else(|| "0".to_owned(), |p| esc(p).to_string()),
        values.get("delay").map_or_else(|| "0".to_owned(), |p| esc(p).to_string()),
    );
    let body = if view.read_only {
        "<p class=\"muted\">Read-only mode: enqueueing is off.</p>".to_owned()
    } else {
        body
    };
    layout(view, "Enqueue a job", "/jobs", &body, "")
}
