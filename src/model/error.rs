//! The one error type of the crate, with the contract codes of SPEC.md section 7.

use std::fmt;
use std::path::PathBuf;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in jobspool.
///
/// Each variant maps to one contract code ([`Error::code`]) that the CLI and the control
/// protocol print verbatim. Messages say what happened and what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No job with that id exists (`JOB_NOT_FOUND`).
    JobNotFound {
        /// The id that was looked up.
        id: String,
    },
    /// Cancel of a job that is not pending (`JOB_NOT_PENDING`).
    JobNotPending {
        /// The job's id.
        id: String,
        /// The job's current status, as its contract name.
        status: String,
    },
    /// Input that the operation rejects; nothing was changed (`INVALID_ARGUMENT`).
    InvalidArgument(String),
    /// A payload or result larger than the configured limit (`PAYLOAD_TOO_LARGE`).
    PayloadTooLarge {
        /// What was too large (`payload` or `result`).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A schedule with that name exists already (`SCHEDULE_EXISTS`).
    ScheduleExists(String),
    /// No schedule with that name (`SCHEDULE_NOT_FOUND`).
    ScheduleNotFound(String),
    /// A cron expression was rejected (`INVALID_CRON`).
    InvalidCron(String),
    /// An unknown IANA time zone (`INVALID_TIMEZONE`).
    InvalidTimezone(String),
    /// Complete, fail, extend or release with a lease token that no longer holds (`STALE_LEASE`).
    StaleLease {
        /// The job's id.
        id: String,
    },
    /// Another process holds the database (`DATABASE_IN_USE`).
    DatabaseInUse {
        /// The database directory.
        path: PathBuf,
    },
    /// A stored record failed to decode (`CORRUPTION`).
    Corruption {
        /// The logical tree the record lives in (`jobs`, `events`, ...).
        tree: &'static str,
        /// The record's key, printed readably.
        key: String,
        /// What was wrong with it.
        detail: String,
    },
    /// An I/O failure, disk full included (`STORAGE`).
    Storage {
        /// What was being done.
        context: String,
        /// The underlying failure, if any.
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The handle is closing or closed (`SHUTTING_DOWN`).
    ShuttingDown,
    /// An error reported by the process serving a control socket: its contract code and
    /// message exactly as that process sent them.
    Remote {
        /// The contract code, e.g. `JOB_NOT_FOUND` (`STORAGE` for a code this version does
        /// not know).
        code: &'static str,
        /// The message as sent.
        message: String,
    },
}

/// Every contract code, for turning a code received over the wire back into a `&'static str`.
pub(crate) const CODES: [&str; 13] = [
    "JOB_NOT_FOUND",
    "JOB_NOT_PENDING",
    "INVALID_ARGUMENT",
    "PAYLOAD_TOO_LARGE",
    "SCHEDULE_EXISTS",
    "SCHEDULE_NOT_FOUND",
    "INVALID_CRON",
    "INVALID_TIMEZONE",
    "STALE_LEASE",
    "DATABASE_IN_USE",
    "CORRUPTION",
    "STORAGE",
    "SHUTTING_DOWN",
];

impl Error {
    /// The contract code of SPEC.md section 7, e.g. `JOB_NOT_FOUND`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::JobNotFound { .. } => "JOB_NOT_FOUND",
            Error::JobNotPending { .. } => "JOB_NOT_PENDING",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::ScheduleExists(_) => "SCHEDULE_EXISTS",
            Error::ScheduleNotFound(_) => "SCHEDULE_NOT_FOUND",
            Error::InvalidCron(_) => "INVALID_CRON",
            Error::InvalidTimezone(_) => "INVALID_TIMEZONE",
            Error::StaleLease { .. } => "STALE_LEASE",
            Error::DatabaseInUse { .. } => "DATABASE_IN_USE",
            Error::Corruption { .. } => "CORRUPTION",
            Error::Storage { .. } => "STORAGE",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::Remote { code, .. } => code,
        }
    }

    /// The HTTP-like status the seed contract attaches to the code (404, 409, 400, ...).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Remote { code, .. } => match *code {
                "JOB_NOT_FOUND" | "SCHEDULE_NOT_FOUND" => 404,
                "JOB_NOT_PENDING" | "SCHEDULE_EXISTS" | "STALE_LEASE" => 409,
                "INVALID_ARGUMENT" | "INVALID_CRON" | "INVALID_TIMEZONE" => 400,
                "PAYLOAD_TOO_LARGE" => 413,
                "DATABASE_IN_USE" | "SHUTTING_DOWN" => 503,
                _ => 500,
            },
            Error::JobNotFound { .. } | Error::ScheduleNotFound(_) => 404,
            Error::JobNotPending { .. } | Error::ScheduleExists(_) | Error::StaleLease { .. } => {
                409
            }
            Error::InvalidArgument(_) | Error::InvalidCron(_) | Error::InvalidTimezone(_) => 400,
            Error::PayloadTooLarge { .. } => 413,
            Error::DatabaseInUse { .. } | Error::ShuttingDown => 503,
            Error::Corruption { .. } | Error::Storage { .. } => 500,
        }
    }

    /// True for `JOB_NOT_FOUND` and `SCHEDULE_NOT_FOUND`.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::JobNotFound { .. } | Error::ScheduleNotFound(_))
            || matches!(self, Error::Remote { code, .. }
                if matches!(*code, "JOB_NOT_FOUND" | "SCHEDULE_NOT_FOUND"))
    }

    /// True when the caller's input was rejected (nothing changed).
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidArgument(_)
                | Error::PayloadTooLarge { .. }
                | Error::InvalidCron(_)
                | Error::InvalidTimezone(_)
        )
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn storage(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Storage {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn not_found(id: impl fmt::Display) -> Error {
        Error::JobNotFound { id: id.to_string() }
    }
}

impl Error {
    /// The message without the code prefix (the JSON `message` field).
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Error::JobNotFound { id } => format!("no job with id {id}"),
            Error::JobNotPending { id, status } => {
                format!("job {id} is {status}; only pending jobs can be cancelled")
            }
            Error::InvalidArgument(msg) => msg.clone(),
            Error::PayloadTooLarge { what, size, limit } => format!(
                "{what} is {size} bytes, over the limit of {limit} bytes; \
                 store large data elsewhere and pass a reference, or raise the limit"
            ),
            Error::ScheduleExists(name) => {
                format!("a schedule named {name:?} exists; pick another name or ask to replace it")
            }
            Error::ScheduleNotFound(name) => {
                format!("no schedule named {name:?}")
            }
            Error::InvalidCron(msg) => msg.clone(),
            Error::InvalidTimezone(msg) => msg.clone(),
            Error::StaleLease { id } => format!(
                "the lease on job {id} no longer holds (it expired, or the job was \
                 claimed again); the outcome was discarded"
            ),
            Error::DatabaseInUse { path } => format!(
                "database at {} is in use by another process that serves no reachable \
                 control socket; stop it, use another path, or have the holder enable its \
                 control socket (Builder::control_socket; `jobspool work` enables it) so \
                 commands reach it",
                path.display()
            ),
            Error::Corruption { tree, key, detail } => format!(
                "record {key} in tree {tree} failed to decode ({detail}); restore \
                 from a backup or remove the record"
            ),
            Error::Storage { context, source } => match source {
                Some(s) => format!("{context}: {s}"),
                None => context.clone(),
            },
            Error::ShuttingDown => "the spool is closing; reopen it to continue".to_string(),
            Error::Remote { message, .. } => message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage {
                source: Some(s), ..
            } => Some(s.as_ref()),
            _ => None,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::storage("sled", e)
    }
}
