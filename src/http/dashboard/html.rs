//! HTML building blocks: the one escaping helper, the page shell, and small pieces every
//! page uses (times, status badges, links with query strings, action forms).
//!
//! Every piece of data goes through [`esc`] (text and attribute values alike) or
//! [`url_enc`] (query-string parts, then `esc` for the attribute). Nothing here writes a
//! `style` attribute or an inline script: the pages run under a CSP that allows only the
//! embedded assets and scripts carrying the response's nonce.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};

use crate::JobStatus;

/// Text escaped for HTML text and double- or single-quoted attribute values.
pub(crate) struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut last = 0;
        for (i, c) in s.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&s[last..i])?;
            f.write_str(rep)?;
            last = i + c.len_utf8();
        }
        f.write_str(&s[last..])
    }
}

/// Escapes `s` for HTML (see [`Esc`]).
pub(crate) fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// Percent-encodes `s` for a query-string value or a path segment (everything but
/// unreserved characters): the request module's encoder, under the dashboard's short name.
pub(crate) use crate::http::request::percent_encode as url_enc;

/// `path?k=v&...` from the pairs whose value is not empty (values percent-encoded).
pub(crate) fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = path.to_owned();
    let mut sep = '?';
    for (k, v) in pairs {
        if v.is_empty() {
            continue;
        }
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&url_enc(v));
        sep = '&';
    }
    out
}

/// A time as `2026-12-01 20:40:12Z` (UTC, seconds).
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An optional time, or a dash.
pub(crate) fn time_opt(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "–".to_owned(), time)
}

/// A `<time>` element: the short form shown, the full RFC 3339 value in `datetime`.
pub(crate) fn time_el(t: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        esc(&crate::json::time(t)),
        esc(&time(t))
    )
}

/// A status badge.
pub(crate) fn badge(status: JobStatus) -> String {
    format!(
        "<span class=\"badge st-{s}\">{s}</span>",
        s = status.as_str()
    )
}

/// What a page needs from the request beyond its own data.
pub(crate) struct View<'a> {
    /// The CSP nonce of this response (scripts carry it).
    pub nonce: &'a str,
    /// Read-only mode: no action forms.
    pub read_only: bool,
    /// A message left by the last action (kind, text).
    pub flash: Option<(FlashKind, String)>,
    /// The path and query of this page (forms send it back as `back`).
    pub here: String,
}

/// How a flash message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlashKind {
    /// The action succeeded.
    Ok,
    /// The action failed (the message says why).
    Error,
}

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/dead", "Dead letters"),
    ("/schedules", "Schedules"),
    ("/events", "Events"),
];

/// The whole document: head, navigation, the refresh picker, the flash, `top` (outside the
/// refreshed area: filter forms keep what is typed), and `body` inside `#page`, which the
/// live refresh replaces.
pub(crate) fn layout(view: &View<'_>, title: &str, active: &str, top: &str, body: &str) -> String {
    let v = env!("CARGO_PKG_VERSION");
    let mut out = String::with_capacity(body.len() + top.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · jobspool</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/assets/app.{v}.css\">\
         <script src=\"/assets/app.{v}.js\" nonce=\"{n}\" defer></script>\
         </head><body{ro}>\n<header class=\"bar\"><a class=\"brand\" href=\"/\">jobspool</a><nav>",
        t = esc(title),
        n = esc(view.nonce),
        ro = if view.read_only {
            " data-read-only=\"1\""
        } else {
            ""
        },
    );
    for (path, label) in NAV {
        let cur = if *path == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(out, "<a href=\"{path}\"{cur}>{label}</a>");
    }
    out.push_str(
        "</nav><label class=\"refresh\">Refresh <select id=\"refresh\" \
         aria-label=\"Refresh interval\"><option value=\"0\">Pause</option>\
         <option value=\"1\">1 s</option><option value=\"2\">2 s</option>\
         <option value=\"5\" selected>5 s</option><option value=\"10\">10 s</option>\
         <option value=\"30\">30 s</option></select></label>\
         <span id=\"updated\" class=\"muted\"></span>",
    );
    if view.read_only {
        out.push_str("<span class=\"badge ro\">read-only</span>");
    }
    out.push_str("</header>\n<main>");
    if let Some((kind, msg)) = &view.flash {
        let cls = match kind {
            FlashKind::Ok => "ok",
            FlashKind::Error => "err",
        };
        let _ = write!(
            out,
            "<p class=\"flash {cls}\" role=\"status\">{}</p>",
            esc(msg)
        );
    }
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    out.push_str(top);
    out.push_str("\n<div id=\"page\">");
    out.push_str(body);
    out.push_str("</div></main></body></html>\n");
    out
}

/// A one-button POST form to `/actions/<action>` with hidden `fields` and the page to
/// return to; `confirm` asks first (in the browser). Empty in read-only mode.
pub(crate) fn action_form(
    view: &View<'_>,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> String {
    if view.read_only {
        return String::new();
    }
    let mut out = format!(
        "<form class=\"inline\" method=\"post\" action=\"/actions/{}\"",
        esc(action)
    );
    if let Some(c) = confirm {
        let _ = write!(out, " data-confirm=\"{}\"", esc(c));
    }
    out.push('>');
    for (k, v) in fields {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        );
    }
    let _ = write!(
        out,
        "<input type=\"hidden\" name=\"back\" value=\"{}\">\
         <button type=\"submit\" class=\"{}\">{}</button></form>",
        esc(&view.here),
        esc(class),
        esc(label)
    );
    out
}

/// A number with thin thousands separators (`1 234 567`).
pub(crate) fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Shortens `s` to at most `max` characters, with an ellipsis when cut.
pub(crate) fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            esc("<script>alert('x')&\"</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
        assert_eq!(esc("plain ü").to_string(), "plain ü");
    }

    #[test]
    fn url_encoding_and_hrefs() {
        assert_eq!(url_enc("a b/&=ü"), "a%20b%2F%26%3D%C3%BC");
        assert_eq!(
            href(
                "/jobs",
                &[("status", "pending"), ("queue", ""), ("type", "a&b")]
            ),
            "/jobs?status=pending&type=a%26b"
        );
    }

    #[test]
    fn numbers_and_shortening() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(short("abcdef", 3), "abc…");
        assert_eq!(short("ab", 3), "ab");
    }
}
