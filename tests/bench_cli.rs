//! `jobspool bench` on sled: which burn-down ran, and the `--report` picture (well-formed
//! SVG / HTML holding the throughput series, the limit lines measured in the same run and
//! the latency curve). Small runs; nothing here asserts a speed.

#[path = "common/bench.rs"]
mod bench_run;

use bench_run::bench_json;
use std::path::Path;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every '&' in `text` starts one of the entities the report writes.
fn assert_entities(text: &str) {
    for (i, _) in text.match_indices('&') {
        let rest = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "bare '&' at {:?}",
            &rest[..rest.len().min(20)]
        );
    }
}

/// A small XML well-formedness check: tags nest and close, attribute quotes pair up,
/// every '&' is an entity, and one root element holds everything. (`<?...?>` and
/// `<!...>` declarations are skipped.) Returns the root element's name.
fn assert_well_formed(doc: &str) -> String {
    let mut stack: Vec<String> = Vec::new();
    let mut root = None;
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        assert_entities(text);
        if stack.is_empty() {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        let after = &rest[i + 1..];
        let end = after.find('>').expect("an unclosed tag");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            assert!(root.is_none(), "a declaration after the root: {tag:?}");
            continue;
        }
        assert_eq!(tag.matches('"').count() % 2, 0, "unpaired quote in <{tag}>");
        assert!(!tag.contains('<'), "'<' inside a tag: {tag:?}");
        assert_entities(tag);
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name.trim(), "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        assert!(!name.is_empty(), "a tag without a name: <{tag}>");
        if stack.is_empty() {
            assert!(root.is_none(), "a second root element <{name}>");
            root = Some(name.clone());
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    root.expect("no root element")
}

/// The `points` of the elements with `class="{class}"` (one string per element).
fn points_of(doc: &str, class: &str) -> Vec<Vec<(f64, f64)>> {
    let needle = format!("class=\"{class}\"");
    doc.match_indices(&needle)
        .map(|(i, _)| {
            let tag_end = i + doc[i..].find('>').unwrap();
            let tag = &doc[i..tag_end];
            let p = tag.find("points=\"").unwrap() + "points=\"".len();
            let q = p + tag[p..].find('"').unwrap();
            tag[p..q]
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

#[test]
fn default_burn_down_report_svg_holds_the_series_and_the_limit_lines() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.svg");
    let r = bench_json(&[
        "--jobs",
        "2000",
        "--db",
        s(&dir.path().join("db")),
        "--report",
        s(&report),
    ]);
    assert_eq!(r["mode"], "burn-down", "{r}");
    assert_eq!(r["variant"], "default", "{r}");
    assert_eq!(r["workers"], 32, "{r}");
    assert!(r["prefetch"].is_null(), "no prefetch unless given: {r}");
    assert!(r["processedPerSec"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(r["latencyOf"], "enqueue_batch call (1000 jobs)", "{r}");
    let doc = std::fs::read_to_string(&report).unwrap();
    assert!(doc.starts_with("<?xml"), "{doc:.100}");
    assert_eq!(assert_well_formed(&doc), "svg");
    assert!(doc.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(doc.contains("<g id=\"throughput\">") && doc.contains("<g id=\"latency\">"));
    // The throughput series: steps of the completions per interval, inside the plot.
    let series = points_of(&doc, "series");
    assert_eq!(series.len(), 1, "one backend, one series");
    assert!(series[0].len() >= 2, "{:?}", series[0]);
    assert!(series[0]
        .iter()
        .all(|&(x, y)| (90.0..=870.0).contains(&x) && (70.0..=360.0).contains(&y)));
    assert!(
        series[0].iter().any(|&(_, y)| y < 360.0),
        "some interval completed jobs: {:?}",
        series[0]
    );
    // The three limits measured in this run, each a labelled horizontal line.
    assert_eq!(doc.matches("class=\"limit\"").count(), 3, "{doc}");
    let labels: Vec<&str> = doc
        .match_indices("class=\"limit-label\"")
        .map(|(i, _)| {
            let from = i + doc[i..].find('>').unwrap() + 1;
            &doc[from..from + doc[from..].find('<').unwrap()]
        })
        .collect();
    let sled = r["sledInsertPerSec"].as_f64().unwrap();
    for (what, key) in [
        ("fdatasync/s appending", "fsyncPerSec"),
        ("fdatasync/s in place", "fsyncInPlacePerSec"),
        ("sled inserts/s", "sledInsertPerSec"),
    ] {
        let label = labels
            .iter()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no {what} line: {labels:?}"));
        let shown: f64 = label[what.len()..].trim().replace(',', "").parse().unwrap();
        assert_eq!(shown, r[key].as_f64().unwrap(), "{label}");
    }
    assert!(sled > 0.0);
    // burn-down's latencies: one per enqueue_batch call (2 calls of 1000).
    assert_eq!(points_of(&doc, "latency").len(), 1);
}

#[test]
fn steady_report_html_has_the_latency_curve_and_the_summary_table() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.html");
    let r = bench_json(&[
        "--mode",
        "steady",
        "--jobs",
        "2000",
        "--producers",
        "4",
        "--workers",
        "4",
        "--db",
        s(&dir.path().join("db")),
        "--report",
        s(&report),
    ]);
    assert_eq!(r["latencyOf"], "enqueue to handler start", "{r}");
    assert!(
        r.get("variant").is_none(),
        "only burn-down has variants: {r}"
    );
    let doc = std::fs::read_to_string(&report).unwrap();
    assert!(doc.starts_with("<!DOCTYPE html>"), "{doc:.100}");
    assert_eq!(assert_well_formed(&doc), "html");
    assert!(doc.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(points_of(&doc, "series").len(), 1);
    assert_eq!(doc.matches("class=\"limit\"").count(), 3);
    // The percentile curve rises (or stays) from p0 to p99.9: SVG y grows downwards.
    let curve = &points_of(&doc, "latency")[0];
    assert_eq!(curve.len(), 1000);
    assert!(curve
        .windows(2)
        .all(|w| w[1].0 > w[0].0 && w[1].1 <= w[0].1));
    // The summary table: every field of the --json summary, with its value.
    assert!(doc.contains("<table id=\"summary\">"));
    for (k, v) in r.as_object().unwrap() {
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        let row = format!("<tr><td>{k}</td><td>{value}</td></tr>");
        assert!(doc.contains(&row), "no row {row}");
    }
}

#[test]
fn settled_burn_down_is_named_and_takes_the_given_prefetch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let r = bench_json(&[
        "--jobs",
        "1000",
        "--settled",
        "--prefetch",
        "64",
        "--workers",
        "2",
        "--db",
        s(&db),
    ]);
    assert_eq!(r["variant"], "settled", "{r}");
    assert_eq!(r["prefetch"], 64, "{r}");
    assert_eq!(r["workers"], 2, "{r}");
    // Without --json the variant is printed too (the same database: a second backlog).
    let out = bench(&["--jobs", "1000", "--workers", "2", "--db", s(&db)]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("variant: default (pool of 2 workers"),
        "{text}"
    );
    assert!(text.contains("processed:"), "{text}");
}

#[test]
fn bad_report_settled_and_compare_options_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let png = dir.path().join("run.png");
    let svg = dir.path().join("run.svg");
    for args in [
        vec!["--report", s(&png)],
        vec!["--mode", "fill", "--report", s(&svg)],
        vec!["--mode", "steady", "--settled"],
        vec!["--compare", "/not/a/url"],
        vec![
            "--compare",
            "postgres://nobody@127.0.0.1:1/x",
            "--processes",
            "2",
        ],
        vec![
            "--compare",
            "postgres://nobody@127.0.0.1:1/x",
            "--mode",
            "fill",
        ],
        vec!["--prefetch", "-1"],
    ] {
        let out = bench(&[&["--jobs", "10", "--db", s(&db)][..], &args[..]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("INVALID_ARGUMENT"), "{args:?}: {err}");
    }
    assert!(!png.exists() && !svg.exists());
    assert!(!db.exists(), "rejected before anything was created");
}

/// The run says what the journal was written and what of it is still current: every
/// payload at least once, and each job's record more than once (claimed, completed).
#[test]
fn burn_down_reports_journal_bytes_a_job_and_live_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let r = bench_json(&["--jobs", "1000", "--workers", "2", "--db", s(&db)]);
    let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(num("storedJobs"), 1000.0, "{r}");
    assert!(num("journalBytes") >= 1000.0 * 100.0, "{r}");
    assert!(num("journalBytesPerJob") >= 100.0, "{r}");
    assert!(num("liveBytes") >= 1000.0 * 100.0, "{r}");
    assert!(num("liveBytesPerStoredJob") >= 100.0, "{r}");
    assert!(
        num("journalBytes") > num("liveBytes"),
        "superseded records were written too: {r}"
    );
    let out = bench(&["--jobs", "500", "--workers", "2", "--db", s(&db)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bytes appended"), "{text}");
    assert!(text.contains("live values"), "{text}");
}
