//! The actions (`POST /actions/<name>`): each runs through the public `Spool` API and
//! redirects back with a flash message; a bulk action on everything matching a filter
//! first answers a confirmation page with the count.
//!
//! Every change is an event in the log: cancels record `dashboard` as who cancelled
//! (`job.cancelled`'s `cancelledBy`), redrives append `job.redriven`, queue and schedule
//! changes their own events.

use std::fmt::Write as _;
use std::time::Duration;

use crate::{Error, JobId, JobStatus, NewJob, Result, Spool};

use super::filter::{Filter, BULK_CAP};
use super::form::Form;
use super::html::{esc, layout, num, FlashKind, View};

/// Who the dashboard's cancels are recorded as.
pub(crate) const ACTOR: &str = "dashboard";
/// Threads a bulk action uses, so its changes share fsyncs (group commit).
const BULK_THREADS: usize = 8;
/// Longest flash message kept (it travels in a cookie).
const FLASH_MAX: usize = 300;

/// What an action answers.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done (or refused): go back to `to` and show the message.
    Redirect {
        to: String,
        flash: (FlashKind, String),
    },
    /// A page instead (a confirmation, or a form shown again with its error).
    Page { status: u16, html: String },
}

/// `back` if it is a local path (no scheme, no `//`), else `fallback`.
pub(crate) fn safe_back(back: Option<&str>, fallback: &str) -> String {
    match back {
        Some(b)
            if b.starts_with('/')
                && !b.starts_with("//")
                && !b.starts_with("/\\")
                && b.len() <= 2048
                && !b.chars().any(|c| c.is_control() || c == '\\') =>
        {
            b.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

fn done(to: String, r: Result<String>) -> Outcome {
    match r {
        Ok(m) => flash(to, (FlashKind::Ok, m)),
        Err(e) => flash(to, (FlashKind::Error, e.to_string())),
    }
}

/// Back to `to` with the message (shortened to [`FLASH_MAX`] characters).
fn flash(to: String, (kind, mut msg): (FlashKind, String)) -> Outcome {
    if let Some((i, _)) = msg.char_indices().nth(FLASH_MAX) {
        msg.truncate(i);
        msg.push('…');
    }
    Outcome::Redirect {
        to,
        flash: (kind, msg),
    }
}

fn need<'a>(f: &'a Form, name: &str) -> Result<&'a str> {
    f.get(name)
        .ok_or_else(|| Error::invalid(format!("the form has no {name:?} field; reload the page")))
}

fn job_id(f: &Form) -> Result<JobId> {
    need(f, "id")?.parse()
}

/// Runs `action`; `None` for an unknown action.
pub(crate) fn run(spool: &Spool, view: &View<'_>, action: &str, f: &Form) -> Option<Outcome> {
    let back = |fallback: &str| safe_back(f.get("back"), fallback);
    Some(match action {
        "cancel" => done(
            back("/jobs"),
            job_id(f).and_then(|id| {
                spool.cancel_by(id, ACTOR)?;
                Ok(format!("Cancelled job {id}."))
            }),
        ),
        "redrive" => done(
            back("/dead"),
            job_id(f).and_then(|id| {
                spool.redrive(id)?;
                Ok(format!("Redriven job {id}: it is pending again."))
            }),
        ),
        "pause" | "resume" => done(
            back("/"),
            need(f, "queue").and_then(|q| {
                if action == "pause" {
                    spool.pause_queue(q)?;
                    Ok(format!("Paused queue {q}."))
                } else {
                    spool.resume_queue(q)?;
                    Ok(format!("Resumed queue {q}."))
                }
            }),
        ),
        "schedule-toggle" => done(
            back("/schedules"),
            need(f, "name").and_then(|name| {
                let on = match need(f, "enabled")? {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(Error::invalid(format!(
                            "enabled must be true or false, not {other:?}"
                        )))
                    }
                };
                spool.toggle_schedule(name, on)?;
                Ok(format!(
                    "Schedule {name} {}.",
                    if on { "enabled" } else { "disabled" }
                ))
            }),
        ),
        "schedule-delete" => done(
            back("/schedules"),
            need(f, "name").and_then(|name| {
                spool.delete_schedule(name)?;
                Ok(format!("Deleted schedule {name}."))
            }),
        ),
        "enqueue" => enqueue(spool, view, f),
        "bulk" => bulk(spool, view, f),
        _ => return None,
    })
}

/// The enqueue form's job: queue, type, JSON payload, priority, delay in seconds.
fn new_job(f: &Form) -> Result<NewJob> {
    let kind = need(f, "type")?;
    let payload = f.raw("payload").unwrap_or("").trim();
    if !payload.is_empty() {
        serde_json::from_str::<serde_json::Value>(payload)
            .map_err(|e| Error::invalid(format!("the payload is not valid JSON: {e}")))?;
    }
    let mut job = NewJob::new(kind, payload.as_bytes().to_vec());
    if let Some(q) = f.get("queue") {
        job = job.queue(q);
    }
    if let Some(p) = f.get("priority") {
        job =
            job.priority(p.parse().map_err(|_| {
                Error::invalid(format!("priority must be a whole number, not {p:?}"))
            })?);
    }
    if let Some(d) = f.get("delay") {
        let secs: u64 = d.parse().map_err(|_| {
            Error::invalid(format!(
                "delay must be a whole number of seconds, not {d:?}"
            ))
        })?;
        if secs > 0 {
            job = job.delay(Duration::from_secs(secs));
        }
    }
    Ok(job)
}

fn enqueue(spool: &Spool, view: &View<'_>, f: &Form) -> Outcome {
    match new_job(f).and_then(|j| spool.enqueue(j)) {
        Ok(e) => done(
            format!("/jobs/{}", e.id),
            Ok(if e.deduplicated {
                format!("A live job holds that dedupe key: {}.", e.id)
            } else {
                format!("Enqueued job {}.", e.id)
            }),
        ),
        Err(e) => {
            let v = View {
                nonce: view.nonce,
                read_only: view.read_only,
                flash: Some((FlashKind::Error, e.to_string())),
                here: "/jobs/new".into(),
            };
            Outcome::Page {
                status: e.code().http_status(),
                html: super::jobs::new_form(&v, f),
            }
        }
    }
}

/// The statuses a bulk action applies to, given the filter's status.
fn statuses(action: &str, filter: &Filter) -> Result<Vec<JobStatus>> {
    let all: &[JobStatus] = match action {
        "cancel" => &[JobStatus::Pending],
        "redrive" => &[JobStatus::DeadLetter, JobStatus::Failed],
        other => {
            return Err(Error::invalid(format!(
                "unknown bulk action {other:?}; expected cancel or redrive"
            )))
        }
    };
    match filter.status {
        None => Ok(all.to_vec()),
        Some(s) if all.contains(&s) => Ok(vec![s]),
        Some(s) => Err(Error::invalid(format!(
            "{action} applies to {} jobs, and the filter selects {s} jobs",
            all.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

/// Applies `action` to `ids` from a few threads; returns how many succeeded and the first
/// error.
fn apply(spool: &Spool, action: &str, ids: &[JobId]) -> (usize, usize, Option<Error>) {
    let chunk = ids.len().div_ceil(BULK_THREADS).max(1);
    let results: Vec<(usize, usize, Option<Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let (mut ok, mut bad, mut first) = (0, 0, None);
                    for id in part {
                        let r = if action == "cancel" {
                            spool.cancel_by(*id, ACTOR).map(drop)
                        } else {
                            spool.redrive(*id).map(drop)
                        };
                        match r {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                bad += 1;
                                first.get_or_insert(e);
                            }
                        }
                    }
                    (ok, bad, first)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        0,
                        0,
                        Some(Error::invalid("a bulk action thread panicked".to_owned())),
                    )
                })
            })
            .collect()
    });
    results
        .into_iter()
        .fold((0, 0, None), |(ok, bad, first), (o, b, f)| {
            (ok + o, bad + b, first.or(f))
        })
}

/// "3 jobs", "1 job".
fn jobs(n: usize) -> String {
    format!("{} job{}", num(n as u64), if n == 1 { "" } else { "s" })
}

/// The flash of a bulk action: what was done, and what could not be and why.
fn summary(action: &str, ok: usize, bad: usize, first: Option<Error>) -> (FlashKind, String) {
    let verb = if action == "cancel" {
        "Cancelled"
    } else {
        "Redriven"
    };
    match first {
        None => (FlashKind::Ok, format!("{verb} {}.", jobs(ok))),
        Some(e) => (
            FlashKind::Error,
            format!(
                "{verb} {}; {} could not be ({e}).",
                jobs(ok),
                num(bad as u64)
            ),
        ),
    }
}

/// A bulk action: on the selected ids, or (`scope=matching`) on every job matching the
/// filter, after a confirmation page (`confirm=1` with `upto`, the newest id counted, so
/// jobs enqueued since are left alone).
fn bulk(spool: &Spool, view: &View<'_>, f: &Form) -> Outcome {
    let action = f.get("action").unwrap_or("");
    let to = safe_back(f.get("back"), "/jobs");
    if f.get("scope") != Some("matching") {
        let ids: Result<Vec<JobId>> = f.all("id").map(str::parse).collect();
        let r = ids.and_then(|mut ids| {
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                return Err(Error::invalid(
                    "no job selected; tick the jobs first".to_owned(),
                ));
            }
            if ids.len() > BULK_CAP {
                return Err(Error::invalid(format!(
                    "{} jobs selected; a bulk action takes at most {BULK_CAP}",
                    ids.len()
                )));
            }
            if !matches!(action, "cancel" | "redrive") {
                return Err(Error::invalid(format!(
                    "unknown bulk action {action:?}; expected cancel or redrive"
                )));
            }
            Ok(apply(spool, action, &ids))
        });
        return match r {
            Ok((ok, bad, first)) => flash(to, summary(action, ok, bad, first)),
            Err(e) => done(to, Err(e)),
        };
    }
    let selected = Filter::from_form(f).and_then(|filter| {
        let st = statuses(action, &filter)?;
        let upto = f.get("upto").map(str::parse::<JobId>).transpose()?;
        let (ids, more) = filter.select(spool, &st, upto)?;
        Ok((filter, ids, more))
    });
    let (filter, ids, more) = match selected {
        Ok(x) => x,
        Err(e) => return done(to, Err(e)),
    };
    if f.get("confirm") == Some("1") {
        let (ok, bad, first) = apply(spool, action, &ids);
        return flash(to, summary(action, ok, bad, first));
    }
    Outcome::Page {
        status: 200,
        html: confirm_page(view, action, &filter, &ids, more, &to),
    }
}

fn confirm_page(
    view: &View<'_>,
    action: &str,
    filter: &Filter,
    ids: &[JobId],
    more: bool,
    back: &str,
) -> String {
    let verb = if action == "cancel" {
        "Cancel"
    } else {
        "Redrive"
    };
    let mut b = String::with_capacity(2048);
    let desc: Vec<String> = filter
        .pairs()
        .into_iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    let desc = if desc.is_empty() {
        "no filter".to_owned()
    } else {
        desc.join(", ")
    };
    let _ = write!(
        b,
        "<p id=\"bulk-count\" data-count=\"{}\">{} {} ({}).</p>",
        ids.len(),
        jobs(ids.len()),
        if ids.len() == 1 { "matches" } else { "match" },
        esc(&desc)
    );
    if more {
        let _ = write!(
            b,
            "<p class=\"flash err\">More than {BULK_CAP} jobs match: only the oldest {BULK_CAP} \
             are covered. Run it again for the rest.</p>"
        );
    }
    if ids.is_empty() {
        let _ = write!(b, "<p><a href=\"{}\">Back</a></p>", esc(back));
        return layout(view, &format!("{verb}: nothing to do"), "", "", &b);
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/actions/bulk\" id=\"confirm\">\
         <input type=\"hidden\" name=\"action\" value=\"{}\">\
         <input type=\"hidden\" name=\"scope\" value=\"matching\">\
         <input type=\"hidden\" name=\"confirm\" value=\"1\">\
         <input type=\"hidden\" name=\"upto\" value=\"{}\">\
         <input type=\"hidden\" name=\"back\" value=\"{}\">",
        esc(action),
        ids.last().map(ToString::to_string).unwrap_or_default(),
        esc(back)
    );
    filter.hidden_inputs(&mut b);
    let _ = write!(
        b,
        "<button type=\"submit\" class=\"danger\">{verb} {}</button> \
         <a href=\"{}\">Back</a></form>",
        jobs(ids.len()),
        esc(back)
    );
    layout(view, &format!("{verb} {}?", jobs(ids.len())), "", "", &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_must_be_a_local_path() {
        assert_eq!(
            safe_back(Some("/jobs?status=pending"), "/"),
            "/jobs?status=pending"
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "jobs",
            "/a\nb",
        ] {
            assert_eq!(safe_back(Some(bad), "/x"), "/x", "{bad:?}");
        }
        assert_eq!(safe_back(None, "/x"), "/x");
    }

    #[test]
    fn bulk_statuses_follow_the_action_and_filter() {
        let f = Filter::default();
        assert_eq!(statuses("cancel", &f).unwrap(), vec![JobStatus::Pending]);
        assert_eq!(statuses("redrive", &f).unwrap().len(), 2);
        let dead = Filter {
            status: Some(JobStatus::Failed),
            ..Filter::default()
        };
        assert_eq!(statuses("redrive", &dead).unwrap(), vec![JobStatus::Failed]);
        assert!(statuses("cancel", &dead).is_err());
        assert!(statuses("delete", &f).is_err());
    }
}
