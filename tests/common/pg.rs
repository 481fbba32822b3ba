//! A PostgreSQL server for the tests.
//!
//! [`url`] is the server the PostgreSQL tests use: `JOBSPOOL_TEST_PG_URL` when it is set,
//! otherwise one throwaway cluster per test process, started on first use from the server
//! binaries found on the machine (`PATH`, then `/usr/lib/postgresql/*/bin`). Tests isolate
//! themselves with a schema each ([`unique_schema`]).
//!
//! A cluster lives in a temp dir and listens on 127.0.0.1 on a free port, with its Unix
//! socket in that dir. When the tests run as root (`initdb` refuses root), the server runs
//! as the `postgres` user through `setpriv` (or `runuser`). A watchdog process per cluster
//! ([`Cluster::start`]) stops the server and removes its directory once the test process is
//! gone, however it ends (the test harness has no exit hook): it waits for the end of a pipe
//! whose other end only the test process holds.
//!
//! [`Cluster`] is also the API of tests that need a server of their own (e.g. to crash and
//! restart it): [`Cluster::start`] with [`Options`], [`Cluster::stop_immediate`],
//! [`Cluster::restart`].

mod cluster;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub use cluster::{Cluster, Options};

/// The environment variable naming an existing server to test against (a `postgres://` URL
/// of a role allowed to create schemas). When set, no cluster is started.
pub const URL_ENV: &str = "JOBSPOOL_TEST_PG_URL";

/// The URL of the server the PostgreSQL tests run against, or why there is none (one line,
/// saying what to install or set). The first call may start the process's shared cluster;
/// later calls return the same answer.
pub fn url() -> Result<String, String> {
    if let Ok(u) = std::env::var(URL_ENV) {
        if !u.trim().is_empty() {
            return Ok(u);
        }
    }
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| Cluster::start(&Options::functional()))
        .as_ref()
        .map(Cluster::url)
        .map_err(Clone::clone)
}

/// [`url`] for the test `test`, or `None` after printing one line saying why it is skipped
/// (to the process's stderr, past the harness's capture). Fails instead when `postgres` (or
/// `all`) is listed in [`super::REQUIRE_ENV`] (CI).
pub fn url_or_skip(test: &str) -> Option<String> {
    match url() {
        Ok(u) => Some(u),
        Err(why) => {
            skip_or_fail(test, &why);
            None
        }
    }
}

/// Skips `test` loudly because of `why`, or panics when PostgreSQL is required (see
/// [`url_or_skip`]).
pub fn skip_or_fail(test: &str, why: &str) {
    let required = std::env::var(super::REQUIRE_ENV).unwrap_or_default();
    let required = required
        .split(',')
        .map(str::trim)
        .any(|n| n == "all" || n == "postgres");
    assert!(
        !required,
        "{test}: PostgreSQL is required ({}) but not available: {why}",
        super::REQUIRE_ENV
    );
    // The leading newline: the harness may have begun its "test ... " line.
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED {test}: PostgreSQL not available: {why}"
    );
}

/// A schema name no other test (in this process or another) uses: `prefix` (lowercase
/// letters, digits and `_`), the process id and a counter.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `sql` (one or more statements, stopping at the first error) on the server at
/// `url` and returns the rows it returned as `psql -A -t` prints them: one line per row,
/// columns separated by `|`, text values as the server sends them. Through the `postgres`
/// client when the feature is on, otherwise through the `psql` program.
#[cfg(feature = "postgres")]
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let messages = c
        .simple_query(sql)
        .map_err(|e| format!("{sql:?} failed: {e}"))?;
    let rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect();
    Ok(rows.join("\n"))
}

/// Runs `sql` with `psql` on the server at `url` (stopping at the first error) and returns
/// its unaligned, tuples-only output.
#[cfg(not(feature = "postgres"))]
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let psql = find_tool("psql").ok_or("no psql found (install postgresql-client)")?;
    let out = Command::new(&psql)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", psql.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "psql {sql:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
/// The directory holding `initdb` and `postgres`: the one on `PATH`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout, not on `PATH`).
pub fn bin_dir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(initdb) = on_path("initdb") {
        // Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin).
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(d) = real.parent().filter(|d| has_both(d)) {
            return Some(d.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// A client tool (`psql`, `pg_isready`): beside the server binaries, else on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    bin_dir()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .or_else(|| on_path(name))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
