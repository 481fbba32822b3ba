//! The crate's layering, checked on its source text.
//!
//! `src/` is organised in layers, lowest first. A module may import from its own layer and
//! from lower ones, never from a higher one:
//!
//! | layer | modules        | what it holds                                          |
//! |-------|----------------|--------------------------------------------------------|
//! | 0     | `model`        | contract types, errors, config, clock                  |
//! | 1     | `backend`      | the `Backend` trait, the codec, the sled store         |
//! | 2     | `engine`       | maintenance and scheduler threads, notifications       |
//! | 3     | `api`          | `Spool`, the worker pool, the JSON views               |
//! | 4     | `control`      | the control-socket adapter over the API                |
//! | 4     | `http`         | the HTTP server (API, events, metrics, dashboard)      |
//! | 5     | `cli`          | the binary's modules (compiled through `src/main.rs`)  |
//!
//! `src/lib.rs`, `src/main.rs` and `src/fuzzing.rs` sit on top of all of them and may
//! import anything; no layered module may import them (except the crate root's re-exports,
//! which are resolved to the item they name: `crate::Result` is `crate::model::error::Result`).
//!
//! Modules that share a layer (`control` and `http`) are siblings: neither may import the
//! other.
//!
//! Besides the order, the sled store is reached through the `Backend` trait only: nothing
//! outside `src/backend/` (other than the top files) may name `crate::backend::sled`.
//!
//! What counts as an import: every path rooted at `crate::`, `super::` or `self::` anywhere in
//! the code (in `use` items, grouped `use a::{b, c::{d, e}}` trees over several lines, and
//! paths written inline such as `crate::model::clock::to_datetime(..)`), test modules
//! included; in the binary's files (`src/main.rs`, `src/cli/`) also `jobspool::` paths, which
//! name the library. `super::` and `self::` are resolved against the module the path is
//! written in (the file's module plus any inline `mod name { .. }` around it). Comments
//! (doc comments and their intra-doc links included) and string and char literals are blanked
//! before anything is read. Relative `use` paths (`use output::Out;`) are not read: outside
//! the crate root they can only name the module's own children or other crates, never
//! another layer.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

/// Layers by the first segment of a module path (under the library root, or under the
/// binary's root for `cli`).
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("backend", 1),
    ("engine", 2),
    ("api", 3),
    ("control", 4),
    ("http", 4),
    ("cli", 5),
];

/// The layer of the top files (`lib.rs`, `main.rs`, `fuzzing.rs`): above every other.
const TOP: u8 = u8::MAX;

/// Files allowed to name `crate::backend::sled` from outside `src/backend/`, each with the
/// one path it may name and why. Keep this list short: everything else goes through the
/// `Backend` trait.
const SLED_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "src/api/spool.rs",
        "crate::backend::sled::SledBackend",
        // `Builder::open` picks the store: the one place the concrete backend is constructed
        // (`SledBackend::open`) before it is handed on as an `Arc<dyn Backend>`.
        "the constructor site in Builder::open",
    ),
    (
        "src/api/spool.rs",
        "crate::backend::postgres::PgBackend",
        // The same constructor site, for `postgres://` URLs.
        "the constructor site in Builder::open",
    ),
];

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs_files(&src, &mut files);
    assert!(
        files.iter().any(|(p, _)| p == "src/lib.rs"),
        "src/lib.rs not found under {}",
        src.display()
    );
    assert!(
        files.len() > 10,
        "expected the crate's source files, found {}",
        files.len()
    );

    let report = check(&files);
    let mut problems: Vec<String> = report.errors.clone();
    // No exceptions: every upward import fails the test.
    problems.extend(report.violations.iter().map(ToString::to_string));
    for (f, p, _) in SLED_EXCEPTIONS {
        if !report
            .sled_exceptions_used
            .contains(&((*f).to_string(), (*p).to_string()))
        {
            problems.push(format!(
                "SLED_EXCEPTIONS lists {f} -> {p}, which no longer occurs: delete that entry"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layering problems ({}):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Reads every `.rs` file under `dir`, as `(path relative to the package, text)`.
fn collect_rs_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rs_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let rel = path
                .strip_prefix(root)
                .expect("under the package")
                .to_string_lossy();
            out.push((rel.replace('\\', "/"), text));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checker: pure functions of `(file path, file text)` pairs, so it can be tested on
// synthetic files below.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    /// The imported path, resolved to an absolute one (`crate::...`, or `jobspool::...`
    /// from the binary's files).
    path: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Imports layer `to` from layer `from`, `to > from`.
    Layer { to: u8, from: u8 },
    /// Names `crate::backend::sled` from outside `src/backend/`.
    Sled,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Layer { to, from } => write!(
                f,
                "{}:{} imports {} (layer {}) from layer {}",
                self.file,
                self.line,
                self.path,
                layer_name(to),
                layer_name(from)
            ),
            Kind::Sled => write!(
                f,
                "{}:{} imports {}: the sled store is reached through the Backend trait only",
                self.file, self.line, self.path
            ),
        }
    }
}

fn layer_name(l: u8) -> String {
    if l == TOP {
        "top (lib.rs/main.rs/fuzzing.rs)".to_string()
    } else {
        l.to_string()
    }
}

#[derive(Debug, Default)]
struct Report {
    violations: Vec<Violation>,
    /// Files or paths the checker cannot place (a new top-level module, an unknown root
    /// name): each must be added to `LAYERS` or resolved, so they fail the test too.
    errors: Vec<String>,
    /// The `SLED_EXCEPTIONS` entries (file, path) that matched an import.
    sled_exceptions_used: BTreeSet<(String, String)>,
}

/// Which crate a file belongs to: the library (`src/lib.rs` and its modules) or the binary
/// (`src/main.rs` and `src/cli/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crate {
    Lib,
    Bin,
}

fn check(files: &[(String, String)]) -> Report {
    let mut report = Report::default();
    let root_names = files
        .iter()
        .find(|(p, _)| p == "src/lib.rs")
        .map(|(_, text)| root_names(text))
        .unwrap_or_default();

    for (file, text) in files {
        let Some((krate, module)) = module_of(file) else {
            report
                .errors
                .push(format!("{file}: not a module file under src/"));
            continue;
        };
        let from = match module.first() {
            None => TOP,
            Some(m) if krate == Crate::Lib && (m == "fuzzing" || m == "faults") => TOP,
            Some(m) => match layer_of_segment(m) {
                Some(l) => l,
                None => {
                    report.errors.push(format!(
                        "{file}: module `{m}` is in no layer: add it to LAYERS in tests/layers.rs"
                    ));
                    continue;
                }
            },
        };
        if from == TOP {
            continue;
        }
        let in_backend = module.first().is_some_and(|m| m == "backend");

        for import in imports(text, krate, &module) {
            let (lib_path, shown) = match import.target {
                Target::Lib(p) => {
                    let shown = format!("crate::{}", p.join("::"));
                    (p, shown)
                }
                Target::ExternLib(p) => {
                    let shown = format!("jobspool::{}", p.join("::"));
                    (p, shown)
                }
                Target::Bin(p) => {
                    // The binary's own modules: only `cli` exists below main.rs.
                    let shown = format!("crate::{}", p.join("::"));
                    let to = match p.first().map(String::as_str) {
                        None => TOP,
                        Some("cli") => 5,
                        Some(_) => {
                            report
                                .errors
                                .push(format!("{file}:{}: cannot place {shown}", import.line));
                            continue;
                        }
                    };
                    if to > from {
                        report.violations.push(Violation {
                            file: file.clone(),
                            line: import.line,
                            path: shown,
                            kind: Kind::Layer { to, from },
                        });
                    }
                    continue;
                }
            };
            let Some(resolved) = resolve_lib(&lib_path, &root_names) else {
                report.errors.push(format!(
                    "{file}:{}: cannot place {shown} (not a layered module, `fuzzing`, \
                     or a re-export in src/lib.rs)",
                    import.line
                ));
                continue;
            };
            let to = match resolved.first().map(String::as_str) {
                None | Some("fuzzing") => TOP,
                Some(m) => layer_of_segment(m).unwrap_or(TOP),
            };
            // Siblings (two modules of one layer) may not import each other.
            let sibling = to == from && resolved.first() != module.first();
            if to > from || sibling {
                report.violations.push(Violation {
                    file: file.clone(),
                    line: import.line,
                    path: shown.clone(),
                    kind: Kind::Layer { to, from },
                });
            }
            // A concrete store: sled, or PostgreSQL (the same rule).
            let names_sled = resolved.len() >= 2
                && resolved[0] == "backend"
                && matches!(resolved[1].as_str(), "sled" | "postgres");
            if names_sled && !in_backend {
                if SLED_EXCEPTIONS
                    .iter()
                    .any(|(f, p, _)| *f == file && *p == shown)
                {
                    report.sled_exceptions_used.insert((file.clone(), shown));
                    continue;
                }
                report.violations.push(Violation {
                    file: file.clone(),
                    line: import.line,
                    path: shown,
                    kind: Kind::Sled,
                });
            }
        }
    }
    report
}

fn layer_of_segment(m: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == m).map(|(_, l)| *l)
}

/// The crate and module path of a file: `src/backend/sled/mod.rs` is the library's
/// `backend::sled`, `src/cli/work.rs` the binary's `cli::work`, `src/lib.rs` a root.
fn module_of(file: &str) -> Option<(Crate, Vec<String>)> {
    let rel = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut segs: Vec<String> = rel.split('/').map(str::to_string).collect();
    match segs.as_slice() {
        [one] if one == "lib" => return Some((Crate::Lib, Vec::new())),
        [one] if one == "main" => return Some((Crate::Bin, Vec::new())),
        _ => {}
    }
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    let krate = if segs.first().is_some_and(|s| s == "cli") {
        Crate::Bin
    } else {
        Crate::Lib
    };
    Some((krate, segs))
}

/// What the crate root makes visible by name: its modules and its `use` items
/// (`pub use api::spool::{Builder, Spool};` makes `Spool` name `api::spool::Spool`).
fn root_names(lib_rs: &str) -> HashMap<String, Vec<String>> {
    let stripped = strip(lib_rs);
    let toks = tokenize(&stripped);
    let mut names = HashMap::new();
    let mut i = 0;
    while i < toks.len() {
        match toks[i].text.as_str() {
            "mod" if toks.get(i + 1).is_some_and(Tok::is_ident) => {
                let name = toks[i + 1].text.clone();
                names.insert(name.clone(), vec![name]);
                i += 2;
            }
            "use" => {
                let mut leaves = Vec::new();
                i = parse_tree(&toks, i + 1, &[], &mut leaves);
                for leaf in leaves {
                    let mut path = leaf.segs;
                    if path.first().is_some_and(|s| s == "crate") {
                        path.remove(0);
                    }
                    if path.last().is_some_and(|s| s == "self") {
                        path.pop();
                    }
                    let name = leaf.alias.or_else(|| path.last().cloned());
                    if let Some(name) = name {
                        if name != "*" && name != "_" {
                            names.insert(name, path);
                        }
                    }
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Resolves a library path (without `crate::`) to one that starts with a module, through the
/// root's re-exports. `None` when its first segment is neither.
fn resolve_lib(path: &[String], root: &HashMap<String, Vec<String>>) -> Option<Vec<String>> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let first = path.first()?;
        if layer_of_segment(first).is_some() || first == "fuzzing" {
            return Some(path);
        }
        let target = root.get(first)?;
        if target.first() == Some(first) && target.len() == 1 {
            return None; // a root module that is in no layer (reported for its files)
        }
        let mut next = target.clone();
        next.extend_from_slice(&path[1..]);
        path = next;
    }
    None
}

#[derive(Debug)]
enum Target {
    /// A path in the library, without `crate::`.
    Lib(Vec<String>),
    /// A path in the library named from the binary (`jobspool::...`), without the prefix.
    ExternLib(Vec<String>),
    /// A path in the binary's own crate, without `crate::`.
    Bin(Vec<String>),
}

#[derive(Debug)]
struct Import {
    line: usize,
    target: Target,
}

/// Every path a file names from its own crate (or, for the binary, from the library).
fn imports(text: &str, krate: Crate, module: &[String]) -> Vec<Import> {
    let stripped = strip(text);
    let toks = tokenize(&stripped);
    let scopes = inline_modules(&toks);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let is_root = matches!(t.text.as_str(), "crate" | "super" | "self")
            || (krate == Crate::Bin && t.text == "jobspool");
        let starts_path = is_root
            && toks.get(i + 1).is_some_and(|n| n.text == "::")
            && !(i > 0 && toks[i - 1].text == "::");
        if !starts_path {
            i += 1;
            continue;
        }
        let mut leaves = Vec::new();
        let next = parse_tree(&toks, i, &[], &mut leaves);
        // The module this path is written in: the file's, plus inline `mod`s around it.
        let mut here: Vec<String> = module.to_vec();
        here.extend(scopes[i].iter().cloned());
        for leaf in leaves {
            let extern_lib = leaf.segs.first().is_some_and(|s| s == "jobspool");
            let Some(path) = absolute(&leaf.segs, &here) else {
                continue; // `super` above the root: rustc rejects it anyway
            };
            let target = if extern_lib {
                Target::ExternLib(path)
            } else if krate == Crate::Bin {
                Target::Bin(path)
            } else {
                Target::Lib(path)
            };
            out.push(Import {
                line: leaf.line,
                target,
            });
        }
        i = next.max(i + 1);
    }
    out
}

/// Makes a path absolute (without its `crate::`/`jobspool::` root): `super::x` written in
/// `a::b` is `a::x`. A trailing `self` (from `use a::{self, ..}`) names the module itself.
fn absolute(segs: &[String], here: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = segs;
    match segs.first().map(String::as_str) {
        Some("crate" | "jobspool") => rest = &segs[1..],
        Some("self") => {
            out = here.to_vec();
            rest = &segs[1..];
        }
        Some("super") => {
            out = here.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                out.pop()?;
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    for s in rest {
        if s != "self" {
            out.push(s.clone());
        }
    }
    Some(out)
}

#[derive(Debug)]
struct Leaf {
    segs: Vec<String>,
    line: usize,
    alias: Option<String>,
}

/// Parses a path or use tree starting at token `i` (`a::b`, `a::{b, c::{d, e as f}}`,
/// `a::*`), appending one leaf per imported path. Returns the index after it.
fn parse_tree(toks: &[Tok], mut i: usize, prefix: &[String], out: &mut Vec<Leaf>) -> usize {
    let mut segs = prefix.to_vec();
    let mut line = toks.get(i).map_or(0, |t| t.line);
    let mut leading = true;
    while let Some(t) = toks.get(i) {
        if t.text == "{" {
            i += 1;
            loop {
                match toks.get(i).map(|t| t.text.as_str()) {
                    None => return i,
                    Some("}") => return i + 1,
                    Some(",") => i += 1,
                    Some(_) => {
                        let j = parse_tree(toks, i, &segs, out);
                        // Skip anything the tree parser did not take, up to `,` or `}`.
                        i = j.max(i + 1);
                        while let Some(t) = toks.get(i) {
                            if t.text == "," || t.text == "}" {
                                break;
                            }
                            i += 1;
                        }
                    }
                }
            }
        }
        if t.is_ident() || t.text == "*" {
            if leading {
                line = t.line;
                leading = false;
            }
            segs.push(t.text.clone());
            i += 1;
            if t.text != "*" && toks.get(i).is_some_and(|n| n.text == "::") {
                i += 1;
                continue;
            }
        }
        break;
    }
    let mut alias = None;
    if toks.get(i).is_some_and(|t| t.text == "as") {
        alias = toks
            .get(i + 1)
            .filter(|t| t.is_ident())
            .map(|t| t.text.clone());
        i += 2;
    }
    if segs.len() > prefix.len() {
        out.push(Leaf { segs, line, alias });
    }
    i
}

/// For each token, the inline modules (`mod tests { .. }`) it sits in, outermost first.
fn inline_modules(toks: &[Tok]) -> Vec<Vec<String>> {
    let mut stack: Vec<(String, usize)> = Vec::new(); // (name, brace depth inside it)
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(toks.len());
    let mut pending: Option<String> = None;
    for (i, t) in toks.iter().enumerate() {
        out.push(stack.iter().map(|(n, _)| n.clone()).collect());
        match t.text.as_str() {
            "mod"
                if toks.get(i + 1).is_some_and(Tok::is_ident)
                    && toks.get(i + 2).is_some_and(|n| n.text == "{") =>
            {
                pending = Some(toks[i + 1].text.clone());
            }
            "{" => {
                depth += 1;
                if let Some(name) = pending.take() {
                    stack.push((name, depth));
                }
            }
            "}" => {
                if stack.last().is_some_and(|(_, d)| *d == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug)]
struct Tok {
    text: String,
    line: usize,
}

impl Tok {
    fn is_ident(&self) -> bool {
        self.text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    }
}

/// Splits stripped source into identifiers (raw identifiers without their `r#`), `::`, and
/// single punctuation characters, each with its line.
fn tokenize(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut text: String = chars[start..i].iter().collect();
            if text == "r" && chars.get(i) == Some(&'#') {
                // r#ident
                let s2 = i + 1;
                let mut j = s2;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                text = chars[s2..j].iter().collect();
                i = j;
            }
            toks.push(Tok { text, line });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            toks.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            toks.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    toks
}

/// Blanks comments (line, block, nested block, doc) and the contents of string, byte-string,
/// raw-string and char literals with spaces, keeping every newline so lines still match.
fn strip(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, cs: &[char]| {
        for &c in cs {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let start = i;
            while i < n && chars[i] != '\n' {
                i += 1;
            }
            blank(&mut out, &chars[start..i]);
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < n {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut out, &chars[start..i.min(n)]);
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < n && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&word);
            if matches!(word.as_str(), "r" | "br" | "cr") {
                // A raw string: r"..", r#".."#, br##".."##.
                let mut j = i;
                while j < n && chars[j] == '#' {
                    j += 1;
                }
                if chars.get(j) == Some(&'"') {
                    let hashes = j - i;
                    let body = j + 1;
                    let mut k = body;
                    loop {
                        if k >= n {
                            break;
                        }
                        if chars[k] == '"'
                            && chars[k + 1..]
                                .iter()
                                .take(hashes)
                                .filter(|&&h| h == '#')
                                .count()
                                == hashes
                        {
                            break;
                        }
                        k += 1;
                    }
                    let end = (k + 1 + hashes).min(n);
                    blank(&mut out, &chars[i..end]);
                    i = end;
                }
            }
            // `b"..."`, `c"..."` and `b'x'` fall through to the literal cases next round.
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < n && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(n);
            blank(&mut out, &chars[start..i]);
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}', '"') or a lifetime/label ('a).
            let end = if next == Some('\\') {
                let mut k = i + 2;
                k += 1; // the escaped character
                while k < n && chars[k] != '\'' {
                    k += 1;
                }
                Some(k + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(e) => {
                    let e = e.min(n);
                    blank(&mut out, &chars[i..e]);
                    i = e;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The checker on synthetic trees: it must be able to fail.

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
        .collect()
}

const LIB: &str = "mod model;\nmod backend;\nmod api;\npub mod control;\npub use api::json;\n\
                   pub use api::spool::{Builder, Spool};\npub use model::error::{Error, Result};\n";

#[test]
fn checker_reports_a_model_file_importing_the_api() {
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        (
            "src/model/job.rs",
            "use crate::model::error::Error;\nuse crate::api::spool::Spool;\n",
        ),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let shown: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["src/model/job.rs:2 imports crate::api::spool::Spool (layer 3) from layer 0"]
    );
}

#[test]
fn checker_keeps_the_http_and_control_siblings_apart() {
    let lib = format!("{LIB}pub mod http;\n");
    let report = check(&files(&[
        ("src/lib.rs", &lib),
        (
            "src/http/api.rs",
            "use crate::api::ops::Op;\nuse crate::http::response::Response;\nuse crate::control::dispatch;\n",
        ),
        ("src/control/server.rs", "use crate::http::serve;\n"),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let shown: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "src/http/api.rs:3 imports crate::control::dispatch (layer 4) from layer 4",
            "src/control/server.rs:1 imports crate::http::serve (layer 4) from layer 4",
        ]
    );
}

#[test]
fn checker_reads_grouped_inline_super_and_reexported_paths() {
    let model = "\
use crate::{
    model::clock::Clock,
    backend::{codec::{self, keys}, Backend as B},
};
fn f() -> crate::Spool { crate::control::dispatch(1) }
mod tests {
    use super::*;
    use super::super::job::Job;
}
";
    let control = "use super::protocol::x;\nuse super::super::cli::Thing;\n";
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        ("src/model/clock.rs", model),
        ("src/control/server.rs", control),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let got: Vec<(usize, &str, &str)> = report
        .violations
        .iter()
        .map(|v| (v.line, v.file.as_str(), v.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "src/model/clock.rs", "crate::backend::codec"),
            (3, "src/model/clock.rs", "crate::backend::codec::keys"),
            (3, "src/model/clock.rs", "crate::backend::Backend"),
            (5, "src/model/clock.rs", "crate::Spool"),
            (5, "src/model/clock.rs", "crate::control::dispatch"),
            (2, "src/control/server.rs", "crate::cli::Thing"),
        ]
    );
}

#[test]
fn checker_ignores_comments_strings_and_lower_layers() {
    let api = r##"
//! See [`crate::cli::x`] and crate::control::y.
/// [`Spool`](crate::control::Z) /* crate::control::a */
/* outer /* nested crate::control::b */ still crate::control::c */
use crate::model::job::Job;
fn f<'a>(x: &'a str) -> char {
    let _ = "crate::control::d \" crate::control::e";
    let _ = r#"crate::control::f " crate::control::g"#;
    let _ = b"crate::control::h";
    let _ = '"'; let _ = '\''; let _ = 'x';
    crate::backend::Backend::g(); // crate::control::i
    '\u{1F600}'
}
"##;
    let report = check(&files(&[("src/lib.rs", LIB), ("src/api/spool.rs", api)]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn checker_forbids_sled_outside_backend_except_the_listed_site() {
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        (
            "src/api/spool.rs",
            "use crate::backend::sled::SledBackend;\n",
        ),
        (
            "src/api/worker.rs",
            "use crate::backend::sled::{journal, SledBackend};\n",
        ),
        (
            "src/backend/codec.rs",
            "use crate::backend::sled::journal;\n",
        ),
        (
            "src/fuzzing.rs",
            "use crate::backend::sled::StoredEventBlock;\n",
        ),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let got: Vec<String> = report
        .violations
        .iter()
        .map(|v| format!("{}:{}", v.file, v.path))
        .collect();
    assert_eq!(
        got,
        [
            "src/api/worker.rs:crate::backend::sled::journal",
            "src/api/worker.rs:crate::backend::sled::SledBackend",
        ]
    );
    assert!(report.violations.iter().all(|v| v.kind == Kind::Sled));
    assert_eq!(
        report.sled_exceptions_used.len(),
        1,
        "the listed site was matched"
    );
}

#[test]
fn checker_places_new_modules_and_unknown_paths_as_errors() {
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        ("src/extras/mod.rs", "use crate::model::job::Job;\n"),
        (
            "src/model/job.rs",
            "use crate::nowhere::X;\nuse crate::fuzzing::decode_job;\n",
        ),
    ]));
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(report.errors[0].contains("extras"), "{:?}", report.errors);
    assert!(
        report.errors[1].contains("crate::nowhere::X"),
        "{:?}",
        report.errors
    );
    let shown: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["src/model/job.rs:2 imports crate::fuzzing::decode_job (layer top (lib.rs/main.rs/fuzzing.rs)) from layer 0"]
    );
}

#[test]
fn checker_places_the_binary_files() {
    let cli = "use jobspool::{control, Spool};\nuse crate::cli::output::Out;\nfn f() { jobspool::json::x(); }\n";
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        ("src/main.rs", "mod cli;"),
        ("src/cli/work.rs", cli),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    // And the other way: a control file naming the binary's `cli` is a violation.
    let report = check(&files(&[
        ("src/lib.rs", LIB),
        ("src/control/mod.rs", "use crate::cli::x;\n"),
    ]));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.violations.len(), 1);
}
