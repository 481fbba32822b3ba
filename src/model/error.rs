//! The one error type of the crate, with the contract's error codes.

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
    /// Another process holds the database (`DATABASE_IN_USE`). The message names the
    /// holder and how to reach it (its control socket).
    DatabaseInUse {
        /// The database directory.
        path: PathBuf,
        /// The holding process's id, when it recorded one (`<db>/holder`).
        holder: Option<u32>,
        /// The holder's command name, when `/proc` tells it.
        holder_command: Option<String>,
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
    /// A read-only command on a path that holds no database; nothing was created
    /// (`DATABASE_NOT_FOUND`).
    DatabaseNotFound {
        /// The path that was given.
        path: PathBuf,
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
    /// An error reported by the process serving a control socket that this version cannot
    /// map back to its own variant (an unknown code, or details missing): its code and
    /// message exactly as that process sent them. Known errors come back as their own
    /// variant (`JobNotFound`, ...), as from a local spool.
    Remote {
        /// The contract code (`STORAGE` for a code this version does not know).
        code: ErrorCode,
        /// The message as sent.
        message: String,
    },
}

/// The contract's error codes: one per kind of failure, printed verbatim by every door
/// (the CLI, the control socket, JSON output). `Display` and serde use the wire names
/// (`JOB_NOT_FOUND`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No job with that id.
    JobNotFound,
    /// Cancel of a job that is not pending.
    JobNotPending,
    /// Input the operation rejects; nothing changed.
    InvalidArgument,
    /// A payload or result over the configured limit.
    PayloadTooLarge,
    /// A schedule name is taken.
    ScheduleExists,
    /// No schedule with that name.
    ScheduleNotFound,
    /// A cron expression was rejected.
    InvalidCron,
    /// An unknown IANA time zone.
    InvalidTimezone,
    /// A lease token that no longer holds.
    StaleLease,
    /// Another process holds the database and serves no reachable socket.
    DatabaseInUse,
    /// Stored data failed to decode or check.
    Corruption,
    /// A read-only command on a path that holds no database (nothing was created).
    DatabaseNotFound,
    /// An I/O failure, disk full included.
    Storage,
    /// The handle is closing.
    ShuttingDown,
}

impl ErrorCode {
    /// Every code, in the order of the contract's table.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::JobNotFound,
        ErrorCode::JobNotPending,
        ErrorCode::InvalidArgument,
        ErrorCode::PayloadTooLarge,
        ErrorCode::ScheduleExists,
        ErrorCode::ScheduleNotFound,
        ErrorCode::InvalidCron,
        ErrorCode::InvalidTimezone,
        ErrorCode::StaleLease,
        ErrorCode::DatabaseInUse,
        ErrorCode::Corruption,
        ErrorCode::DatabaseNotFound,
        ErrorCode::Storage,
        ErrorCode::ShuttingDown,
    ];

    /// The wire name, e.g. `JOB_NOT_FOUND`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::JobNotFound => "JOB_NOT_FOUND",
            ErrorCode::JobNotPending => "JOB_NOT_PENDING",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::ScheduleExists => "SCHEDULE_EXISTS",
            ErrorCode::ScheduleNotFound => "SCHEDULE_NOT_FOUND",
            ErrorCode::InvalidCron => "INVALID_CRON",
            ErrorCode::InvalidTimezone => "INVALID_TIMEZONE",
            ErrorCode::StaleLease => "STALE_LEASE",
            ErrorCode::DatabaseInUse => "DATABASE_IN_USE",
            ErrorCode::Corruption => "CORRUPTION",
            ErrorCode::DatabaseNotFound => "DATABASE_NOT_FOUND",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// The code with wire name `s`, if there is one.
    #[must_use]
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status that fits the code (404, 409, 400, 413, 503 or 500).
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::JobNotFound | ErrorCode::ScheduleNotFound | ErrorCode::DatabaseNotFound => {
                404
            }
            ErrorCode::JobNotPending | ErrorCode::ScheduleExists | ErrorCode::StaleLease => 409,
            ErrorCode::InvalidArgument | ErrorCode::InvalidCron | ErrorCode::InvalidTimezone => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::DatabaseInUse | ErrorCode::ShuttingDown => 503,
            ErrorCode::Corruption | ErrorCode::Storage => 500,
        }
    }

    /// True when the caller's input was rejected (nothing changed).
    #[must_use]
    pub fn is_invalid_input(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidArgument
                | ErrorCode::PayloadTooLarge
                | ErrorCode::InvalidCron
                | ErrorCode::InvalidTimezone
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl Error {
    /// The contract code, e.g. [`ErrorCode::JobNotFound`] (`JOB_NOT_FOUND` on the wire).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::JobNotFound { .. } => ErrorCode::JobNotFound,
            Error::JobNotPending { .. } => ErrorCode::JobNotPending,
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::ScheduleExists(_) => ErrorCode::ScheduleExists,
            Error::ScheduleNotFound(_) => ErrorCode::ScheduleNotFound,
            Error::InvalidCron(_) => ErrorCode::InvalidCron,
            Error::InvalidTimezone(_) => ErrorCode::InvalidTimezone,
            Error::StaleLease { .. } => ErrorCode::StaleLease,
            Error::DatabaseInUse { .. } => ErrorCode::DatabaseInUse,
            Error::Corruption { .. } => ErrorCode::Corruption,
            Error::DatabaseNotFound { .. } => ErrorCode::DatabaseNotFound,
            Error::Storage { .. } => ErrorCode::Storage,
            Error::ShuttingDown => ErrorCode::ShuttingDown,
            Error::Remote { code, .. } => *code,
        }
    }

    /// The HTTP status that fits the error's code (404, 409, 400, ...).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }

    /// True for `JOB_NOT_FOUND` and `SCHEDULE_NOT_FOUND`.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            ErrorCode::JobNotFound | ErrorCode::ScheduleNotFound
        )
    }

    /// True when the caller's input was rejected (nothing changed).
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        self.code().is_invalid_input()
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
            Error::DatabaseInUse {
                path,
                holder,
                holder_command,
            } => {
                let who = match (holder, holder_command) {
                    (Some(pid), Some(cmd)) => format!("process {pid} ({cmd})"),
                    (Some(pid), None) => format!("process {pid}"),
                    (None, _) => "another process".to_string(),
                };
                format!(
                    "database at {p} is in use by {who}; only one process can open it. Reach \
                     it through the holder's control socket instead: \
                     jobspool::control::Client::connect_db({p:?}) from Rust, or `jobspool \
                     --db {p} ...` (the holder serves one when it runs `jobspool work` or calls \
                     jobspool::control::serve); or stop that process, or use another path",
                    p = path.display()
                )
            }
            Error::Corruption { tree, key, detail } if *tree == "journal" => {
                format!("the journal is damaged at {key}: {detail}")
            }
            Error::Corruption {
                tree: "checkpoint",
                key,
                detail,
            } => format!(
                "the checkpoint record {key} is damaged ({detail}), so sled's files cannot be \
                 checked against it. If they are intact, moving {key} aside lets the database \
                 open unchecked (it gets a new record at its next checkpoint); else restore \
                 the database directory from a backup"
            ),
            Error::Corruption {
                tree: "sled",
                key,
                detail,
            } => format!(
                "the storage engine's files at {key} are damaged or were rolled back \
                 ({detail}). Restore the database directory from a backup (keep this copy \
                 for inspection)"
            ),
            Error::Corruption { tree, key, detail } => format!(
                "record {key} in tree {tree} failed to decode ({detail}); restore \
                 from a backup or remove the record"
            ),
            Error::DatabaseNotFound { path } => format!(
                "no jobspool database at {}; check the path (--db / JOBSPOOL_DB), or create \
                 one by enqueueing a job or running `jobspool work`",
                path.display()
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
    /// sled's "read corrupted data" (its `Corruption`, or an IO error carrying it) is
    /// `CORRUPTION` in tree `sled`; anything else is `STORAGE`. Callers that know the
    /// database path put it in the key (`backend::sled::sledcheck`).
    fn from(e: sled::Error) -> Self {
        let detail = match &e {
            sled::Error::Corruption { at, .. } => Some(match at {
                Some(at) => format!("sled read damaged data at {at:?}"),
                None => "sled read damaged data".to_string(),
            }),
            sled::Error::Io(io) if io.to_string().contains("corrupted data") => {
                Some("sled read damaged data".to_string())
            }
            _ => None,
        };
        match detail {
            Some(detail) => Error::Corruption {
                tree: "sled",
                key: "the database's sled files".to_string(),
                detail,
            },
            None => Error::storage("sled", e),
        }
    }
}
