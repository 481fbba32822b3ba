//! The `.html` report: the picture inline, then the run's summary as a table (a column
//! per backend when comparing).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::esc;
use crate::cli::bench::Outcome;

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => esc(s),
        Some(other) => esc(&other.to_string()),
    }
}

/// The page: the picture and the summary (a column per backend when comparing).
pub(super) fn page(t: &str, picture: &str, outcomes: &[Outcome], summary: &Value) -> String {
    let empty = Map::new();
    let columns: Vec<(&str, &Map<String, Value>)> = if outcomes.len() > 1 {
        outcomes
            .iter()
            .map(|o| (o.backend, summary[o.backend].as_object().unwrap_or(&empty)))
            .collect()
    } else {
        vec![("value", summary.as_object().unwrap_or(&empty))]
    };
    let mut keys: Vec<&String> = Vec::new();
    for (_, m) in &columns {
        for k in m.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}</style>\n</head>\n<body>\n<h1>{}</h1>",
        esc(t),
        esc(t)
    );
    out.push_str(picture);
    let _ = writeln!(out, "<h2>Summary</h2>\n<table id=\"summary\">");
    let _ = write!(out, "<tr><th>field</th>");
    for (name, _) in &columns {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    let _ = writeln!(out, "</tr>");
    for k in keys {
        let _ = write!(out, "<tr><td>{}</td>", esc(k));
        for (_, m) in &columns {
            let _ = write!(out, "<td>{}</td>", cell(m.get(k)));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</table>\n</body>\n</html>");
    out
}
