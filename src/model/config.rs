//! Settings of an open spool: durability, cache, limits, retention, clock.

use std::sync::Arc;
use std::time::Duration;

use crate::model::clock::{Clock, SystemClock};
use crate::model::job::Backoff;

/// When a change reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// An operation returns only after its change is fsync'd. Concurrent callers share
    /// fsyncs (group commit). The default.
    #[default]
    Immediate,
    /// Operations return at once; changes reach stable storage within `max_delay`. A crash
    /// may lose that window, never corrupt the database.
    Buffered {
        /// Longest time a change may wait for its fsync.
        max_delay: Duration,
    },
}

/// How long finished jobs and events are kept (the contract's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep `completed` jobs this long after they finish. Default = 24 h.
    pub completed: Duration,
    /// Keep `cancelled` jobs this long. Default = 24 h.
    pub cancelled: Duration,
    /// Keep `failed` jobs this long. Default = 7 days.
    pub failed: Duration,
    /// Keep `dead_letter` jobs this long. Default = 7 days.
    pub dead_letter: Duration,
    /// Keep event-log entries this long. Default = 7 days.
    pub events: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Retention {
            completed: Duration::from_secs(DAY),
            cancelled: Duration::from_secs(DAY),
            failed: Duration::from_secs(7 * DAY),
            dead_letter: Duration::from_secs(7 * DAY),
            events: Duration::from_secs(7 * DAY),
        }
    }
}

/// Everything `open` needs, validated there.
#[derive(Clone)]
pub(crate) struct Config {
    pub durability: Durability,
    pub cache_bytes: u64,
    pub payload_limit: usize,
    pub retention: Retention,
    pub clock: Arc<dyn Clock>,
    pub default_max_attempts: u32,
    pub default_backoff: Backoff,
    pub default_lease: Duration,
    pub maintenance: bool,
    pub scheduler: bool,
    pub maintenance_interval: Duration,
    pub journal_segment_bytes: u64,
    /// Create the database when the directory holds none (else `DATABASE_NOT_FOUND`).
    pub create_if_missing: bool,
    /// Mode of the database's files (0600, or 0640 shared with the group); directories get
    /// search permission where this grants read (0700, 0750).
    pub file_mode: u32,
    /// PostgreSQL: the schema holding the tables (default `jobspool`).
    pub pg_schema: String,
    /// PostgreSQL: no LISTEN connection (for transaction-pooling proxies); wake-ups by
    /// polling only.
    pub pg_poll_only: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::Immediate,
            cache_bytes: 64 * 1024 * 1024,
            payload_limit: crate::model::limits::DEFAULT_PAYLOAD_LIMIT,
            retention: Retention::default(),
            clock: Arc::new(SystemClock),
            default_max_attempts: 3,
            default_backoff: Backoff::default(),
            default_lease: Duration::from_secs(30),
            maintenance: true,
            scheduler: true,
            maintenance_interval: Duration::from_secs(1),
            journal_segment_bytes: 32 * 1024 * 1024,
            create_if_missing: true,
            file_mode: 0o600,
            pg_schema: "jobspool".into(),
            pg_poll_only: false,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("durability", &self.durability)
            .field("cache_bytes", &self.cache_bytes)
            .field("payload_limit", &self.payload_limit)
            .field("retention", &self.retention)
            .field("default_max_attempts", &self.default_max_attempts)
            .field("default_lease", &self.default_lease)
            .field("maintenance", &self.maintenance)
            .field("scheduler", &self.scheduler)
            .field("journal_segment_bytes", &self.journal_segment_bytes)
            .field("create_if_missing", &self.create_if_missing)
            .field("file_mode", &format_args!("{:#o}", self.file_mode))
            .field("pg_schema", &self.pg_schema)
            .field("pg_poll_only", &self.pg_poll_only)
            .finish_non_exhaustive()
    }
}
