//! [`Builder`]: the settings of [`Spool::open`], checked when the spool opens.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::api::spool::Spool;
use crate::model::clock::Clock;
use crate::model::config::{Config, Durability, Retention};
use crate::model::error::{Error, Result};
use crate::model::job::Backoff;
use crate::model::limits::MAX_PAYLOAD_LIMIT;

/// Settings for [`Spool::open`]; every one is checked in [`Builder::open`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    cfg: Config,
}

impl Builder {
    /// When changes reach stable storage. Default = [`Durability::Immediate`].
    #[must_use]
    pub fn durability(mut self, d: Durability) -> Self {
        self.cfg.durability = d;
        self
    }
    /// sled page-cache size in bytes. Default = 64 MiB (sled's own default is 1 GiB).
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cfg.cache_bytes = bytes;
        self
    }
    /// Size of each journal segment file, preallocated (clamped to 64 KiB .. 1 GiB).
    /// Default = 32 MiB. Commits append to the current segment; a full one is sealed and
    /// deleted once a checkpoint covers it.
    #[must_use]
    pub fn journal_segment_bytes(mut self, bytes: u64) -> Self {
        self.cfg.journal_segment_bytes = bytes.clamp(64 * 1024, 1024 * 1024 * 1024);
        self
    }
    /// Largest payload (and handler result) accepted, in bytes. Default = 1 MiB.
    #[must_use]
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.cfg.payload_limit = bytes;
        self
    }
    /// How long finished jobs and events are kept. Default = [`Retention::default`].
    #[must_use]
    pub fn retention(mut self, r: Retention) -> Self {
        self.cfg.retention = r;
        self
    }
    /// The time source. Default = the system clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.cfg.clock = Arc::new(clock);
        self
    }
    /// `maxRetries` of jobs that do not set it. Default = 3.
    #[must_use]
    pub fn default_max_attempts(mut self, n: u32) -> Self {
        self.cfg.default_max_attempts = n;
        self
    }
    /// Backoff of jobs that do not set one. Default = 1 s, x2, max 60 s, ±20%.
    #[must_use]
    pub fn default_backoff(mut self, b: Backoff) -> Self {
        self.cfg.default_backoff = b;
        self
    }
    /// Lease granted by a claim when none is given. Default = 30 s.
    #[must_use]
    pub fn default_lease(mut self, d: Duration) -> Self {
        self.cfg.default_lease = d;
        self
    }
    /// Run the maintenance thread (lease expiry, pruning). Default = true. One-shot tools
    /// turn it off.
    #[must_use]
    pub fn maintenance(mut self, on: bool) -> Self {
        self.cfg.maintenance = on;
        self
    }
    /// Run the scheduler thread, which fires due cron schedules. Default = true. One-shot
    /// tools turn it off.
    #[must_use]
    pub fn scheduler(mut self, on: bool) -> Self {
        self.cfg.scheduler = on;
        self
    }
    /// How often the maintenance thread runs. Default = 1 s.
    #[must_use]
    pub fn maintenance_interval(mut self, d: Duration) -> Self {
        self.cfg.maintenance_interval = d;
        self
    }

    /// Create the database when `path` holds none. Default = true. With `false`, opening a
    /// path without a jobspool database fails with `DATABASE_NOT_FOUND` and creates
    /// nothing (no directory, no files): read-only tools use it so that a mistyped path is
    /// reported instead of becoming a new, empty database.
    #[must_use]
    pub fn create_if_missing(mut self, on: bool) -> Self {
        self.cfg.create_if_missing = on;
        self
    }

    /// Let the owner's group read the database. Default = false: the database directory
    /// (and every directory in it) is 0700 and its files 0600, whatever the umask; with
    /// `true` they are 0750 and 0640, for a backup or inspection account in the group (the
    /// group cannot write, so it cannot open the spool itself). The modes are set on every
    /// open, so opening a database made by an older version, or with the other setting,
    /// changes the modes of its files (files owned by another user are left as they are).
    /// The control socket stays 0600.
    #[must_use]
    pub fn share_with_group(mut self, on: bool) -> Self {
        self.cfg.file_mode = if on { 0o640 } else { 0o600 };
        self
    }

    /// PostgreSQL only: the schema that holds jobspool's tables. Default = `jobspool`.
    /// Lower-case letters, digits and `_` (1 to 48 of them, not starting with a digit or
    /// `pg_`, which PostgreSQL keeps for itself):
    /// several independent queues can share one database, one schema each.
    #[must_use]
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.cfg.pg_schema = name.into();
        self
    }

    /// PostgreSQL only: do not LISTEN for other processes' commits, poll every second
    /// instead (and recover other processes' jobs only when their leases expire). For
    /// connection poolers in transaction mode (PgBouncer), which support neither LISTEN nor
    /// session advisory locks. Default = false.
    #[must_use]
    pub fn poll_only(mut self, on: bool) -> Self {
        self.cfg.pg_poll_only = on;
        self
    }

    /// Opens (creating if needed, see [`Builder::create_if_missing`]) the database directory
    /// at `path`, recovering jobs left running by a previous process.
    ///
    /// A `postgres://` or `postgresql://` URL opens a PostgreSQL database instead (with the
    /// cargo feature `postgres`; without it, `INVALID_ARGUMENT` says to enable it): the
    /// tables are created in [`Builder::schema`] (or migrated) on open, and the jobs left
    /// running by processes that have stopped are recovered.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for a bad setting or a `path` that is a file,
    /// `DATABASE_NOT_FOUND` when `path` holds no database and `create_if_missing` is off,
    /// `DATABASE_IN_USE` when another process holds the database, `CORRUPTION` or `STORAGE`
    /// when it cannot be read (for PostgreSQL: cannot be reached, or its tables are of a
    /// newer version than this build knows).
    pub fn open(self, path: impl AsRef<Path>) -> Result<Spool> {
        let cfg = self.cfg;
        if cfg.payload_limit == 0 || cfg.payload_limit > MAX_PAYLOAD_LIMIT {
            return Err(Error::invalid(
                "payload_limit must be between 1 byte and 64 MiB",
            ));
        }
        if cfg.default_max_attempts == 0 {
            return Err(Error::invalid("default_max_attempts must be at least 1"));
        }
        if cfg.cache_bytes < 1024 * 1024 {
            return Err(Error::invalid("cache_bytes must be at least 1 MiB"));
        }
        if cfg.default_lease.is_zero() || cfg.maintenance_interval.is_zero() {
            return Err(Error::invalid(
                "default_lease and maintenance_interval must be positive",
            ));
        }
        if let Durability::Buffered { max_delay } = cfg.durability {
            if max_delay.is_zero() {
                return Err(Error::invalid(
                    "Buffered max_delay must be positive; use Immediate",
                ));
            }
        }
        cfg.default_backoff.validate()?;
        if path.as_ref().as_os_str().is_empty() {
            return Err(Error::invalid(
                "the database is empty: give a directory path or a postgres:// URL",
            ));
        }
        Spool::start(cfg, path.as_ref())
    }

    /// Salvages a database whose journal is damaged (open fails with `CORRUPTION` naming a
    /// journal segment and offset): reads every readable journal entry, skipping the
    /// damaged stretches, writes the job records, payloads and events still there into fresh
    /// segments, makes the result durable and deletes the old segments, so the database
    /// opens again. The report names every stretch skipped and the entries lost with it.
    /// With `dry_run` the journal is only read (the database's lock is not taken) and
    /// nothing changes. On an intact journal this does what open's recovery does.
    ///
    /// # Errors
    /// `DATABASE_NOT_FOUND`, `DATABASE_IN_USE` (not for a dry run), `STORAGE`.
    pub fn repair(self, path: impl AsRef<Path>, dry_run: bool) -> Result<crate::RepairReport> {
        crate::api::spool::repair(path.as_ref(), &self.cfg, dry_run)
    }
}

/// Salvages a database whose journal is damaged; see [`Builder::repair`].
///
/// # Errors
/// As [`Builder::repair`].
pub fn repair(path: impl AsRef<Path>, dry_run: bool) -> Result<crate::RepairReport> {
    crate::Spool::builder().repair(path, dry_run)
}
