//! The storage backends the conformance suite runs against, and the [`conformance!`] macro
//! that turns each behaviour test into one `#[test]` per backend. See `tests/README.md`.
//!
//! Adding a backend is one variant of [`TestBackend`] (with its arms in the `match`es
//! below: name, availability, how a fresh store is made and opened) and one line in
//! [`conformance!`].

use jobspool::{Builder, ManualClock, Result, Spool};

use super::{db_path, pg, t0, tempdir};

/// Comma-separated backend names (or `all`) that must be available: a conformance test on
/// a listed backend that is not available fails instead of skipping. For CI, where a
/// missing database must not go unnoticed.
pub const REQUIRE_ENV: &str = "JOBSPOOL_TEST_REQUIRE_BACKENDS";

/// A storage backend a conformance test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    /// sled in a fresh temporary directory. Always available.
    Sled,
    /// PostgreSQL: the server of [`pg::url`] (`JOBSPOOL_TEST_PG_URL`, or a throwaway cluster
    /// this test process starts), each store a fresh schema dropped with the `Store`.
    Postgres,
}

impl TestBackend {
    /// The name used in test paths (`sled::enqueue_then_get`) and messages.
    pub fn name(self) -> &'static str {
        match self {
            TestBackend::Sled => "sled",
            TestBackend::Postgres => "postgres",
        }
    }

    /// `Ok` when tests can run on this backend here; otherwise why not (e.g. the env var
    /// naming its server is not set).
    pub fn availability(self) -> std::result::Result<(), String> {
        match self {
            TestBackend::Sled => Ok(()),
            TestBackend::Postgres => pg::url().map(|_| ()),
        }
    }

    /// A new, empty store of this backend. It lives as long as the returned [`Store`]; open
    /// spools on it (again, for reopen tests) with [`Store::open`].
    pub fn store(self) -> Store {
        match self {
            TestBackend::Sled => Store::Sled { dir: tempdir() },
            TestBackend::Postgres => Store::Postgres {
                url: pg::url().expect("PostgreSQL is available (checked by TestBackend::run)"),
                schema: pg::unique_schema("t"),
            },
        }
    }

    /// A fresh store, a manual clock at [`t0`] and a spool on it with no background threads
    /// (the backend-neutral [`super::fresh`]).
    pub fn fresh(self) -> (Store, ManualClock, Spool) {
        let store = self.store();
        let clock = ManualClock::new(t0());
        let spool = store.open_manual(&clock);
        (store, clock, spool)
    }

    /// Runs the conformance test `test` (named `name`) on this backend, or, when the backend
    /// is not available, skips it loudly: the reason goes straight to the process's stderr
    /// (past the test harness's output capture), so it shows in a plain `cargo test` run.
    /// A backend listed in [`REQUIRE_ENV`] fails instead.
    pub fn run(self, name: &str, test: fn(TestBackend)) {
        match self.availability() {
            Ok(()) => test(self),
            Err(why) => {
                let required = std::env::var(REQUIRE_ENV).unwrap_or_default();
                let required = required
                    .split(',')
                    .map(str::trim)
                    .any(|n| n == "all" || n == self.name());
                assert!(
                    !required,
                    "{}::{name}: backend {} is required ({REQUIRE_ENV}) but not available: {why}",
                    self.name(),
                    self.name()
                );
                use std::io::Write;
                // The leading newline: the harness may have begun its "test ... " line.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED {}::{name}: backend {} not available: {why}",
                    self.name(),
                    self.name()
                );
            }
        }
    }
}

/// One backend's storage for one test: what a spool is opened on, and reopened on.
pub enum Store {
    /// A sled database directory inside a temp dir (removed when dropped).
    Sled {
        /// The temp dir holding the database directory.
        dir: tempfile::TempDir,
    },
    /// A schema of its own on the test server, dropped (with every table in it) when the
    /// store is dropped.
    Postgres {
        /// The server.
        url: String,
        /// The schema.
        schema: String,
    },
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres { url, schema } = self {
            let _ = pg::psql(url, &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
        }
    }
}

impl Store {
    /// Opens a spool on this store with `builder`'s settings (clock, durability, ...).
    pub fn try_open(&self, builder: Builder) -> Result<Spool> {
        match self {
            Store::Sled { dir } => builder.open(db_path(dir)),
            Store::Postgres { url, schema } => builder.schema(schema.as_str()).open(url),
        }
    }

    /// [`Store::try_open`], panicking on an error.
    pub fn open(&self, builder: Builder) -> Spool {
        self.try_open(builder).expect("opening the spool")
    }

    /// A spool with `clock` and no maintenance or scheduler thread (the backend-neutral
    /// [`super::open_manual`]).
    pub fn open_manual(&self, clock: &ManualClock) -> Spool {
        self.open(
            Spool::builder()
                .clock(clock.clone())
                .maintenance(false)
                .scheduler(false),
        )
    }
}

/// Expands to one `#[test]` per backend for each named conformance test: the file defines
/// `fn name(b: TestBackend)`, and `conformance!(name, ...)` adds `sled::name` (and one module
/// per further backend), so `cargo test --test lifecycle sled::` runs a file on sled.
///
/// A test defined but not listed is dead code (a warning, an error under clippy's
/// `-D warnings`); one listed twice is a duplicate definition.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        // One line per backend: module name (the test path prefix), TestBackend variant.
        $crate::common::conformance!(@backend sled, Sled; $($test),+);
        $crate::common::conformance!(@backend postgres, Postgres; $($test),+);
    };
    (@backend $module:ident, $variant:ident; $($test:ident),+) => {
        /// The conformance tests of this file on one backend.
        mod $module {
            $(
                #[test]
                fn $test() {
                    $crate::common::TestBackend::$variant.run(stringify!($test), super::$test);
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use conformance;
