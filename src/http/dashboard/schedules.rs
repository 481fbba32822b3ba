//! Schedules (`/schedules`): cron, time zone, type, enabled, last and next run; toggle and
//! delete.

use std::fmt::Write as _;

use crate::{Result, ScheduledJob, Spool};

use super::html::{action_form, esc, layout, time_opt, View};

/// Reads the schedules and renders the page.
pub(crate) fn page(spool: &Spool, view: &View<'_>) -> Result<String> {
    Ok(render(view, &spool.list_schedules()?))
}

/// The page from its data.
pub(crate) fn render(view: &View<'_>, list: &[ScheduledJob]) -> String {
    let mut b = String::with_capacity(2048 + list.len() * 512);
    if list.is_empty() {
        b.push_str(
            "<p class=\"muted\">No schedules. Create one with <code>jobspool schedule create</code> \
             or <code>Spool::create_schedule</code>.</p>",
        );
        return layout(view, "Schedules", "/schedules", "", &b);
    }
    b.push_str(
        "<div class=\"scroll\"><table class=\"grid\" id=\"schedules\"><thead><tr><th>name</th>\
         <th>cron</th><th>time zone</th><th>job type</th><th>queue</th><th>enabled</th>\
         <th>last run</th><th>next run</th><th></th></tr></thead><tbody>",
    );
    for s in list {
        let _ = write!(
            b,
            "<tr data-schedule=\"{n}\" data-enabled=\"{en}\"><th>{n}",
            n = esc(&s.name),
            en = s.enabled
        );
        if let Some(d) = &s.description {
            let _ = write!(b, "<br><small class=\"muted\">{}</small>", esc(d));
        }
        let _ = write!(
            b,
            "</th><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"actions\">",
            esc(&s.cron_expression),
            esc(&s.timezone),
            esc(&s.job_type),
            esc(s.queue.as_deref().unwrap_or("default")),
            if s.enabled {
                "<span class=\"badge on\">on</span>"
            } else {
                "<span class=\"badge off\">off</span>"
            },
            time_opt(s.last_run_at),
            time_opt(s.next_run_at),
        );
        let (label, to) = if s.enabled {
            ("Disable", "false")
        } else {
            ("Enable", "true")
        };
        b.push_str(&action_form(
            view,
            "schedule-toggle",
            &[("name", &s.name), ("enabled", to)],
            label,
            "small",
            None,
        ));
        let confirm = format!("Delete the schedule {}?", s.name);
        b.push_str(&action_form(
            view,
            "schedule-delete",
            &[("name", &s.name)],
            "Delete",
            "small danger",
            Some(&confirm),
        ));
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table></div>");
    layout(view, "Schedules", "/schedules", "", &b)
}
