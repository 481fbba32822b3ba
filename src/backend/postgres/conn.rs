//! Connections: the URL, a small pool of clients, error mapping, and the one-transaction
//! helper every operation runs through.

use std::str::FromStr;

use parking_lot::Mutex;
use postgres::{Client, NoTls, Transaction};

use crate::model::config::Durability;
use crate::model::error::{Error, Result};

/// Idle connections kept for reuse; more are opened on demand and closed after use.
const MAX_IDLE: usize = 16;

/// How often a transaction that lost a deadlock or a serialization conflict is run again.
const RETRIES: usize = 8;

/// The URL without its password, for messages and [`crate::Spool::path`].
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (Some(a), h),
        _ => (None, rest),
    };
    match auth {
        Some(a) => {
            let user = a.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => format!("{scheme}://{host}"),
    }
}

/// A schema name: lower-case ASCII letters, digits and `_`, starting with a letter or `_`,
/// at most 48 bytes (the notification channel adds a prefix and must fit in 63).
pub(crate) fn validate_schema(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "schema {name:?} is not a valid name: use 1 to 48 lower-case letters, digits and \
             '_', not starting with a digit"
        )))
    }
}

/// A pool of clients to one database.
pub(crate) struct Pool {
    config: postgres::Config,
    url: String,
    idle: Mutex<Vec<Client>>,
    durability: Durability,
}

impl Pool {
    pub fn new(url: &str, durability: Durability) -> Result<Pool> {
        let mut config = postgres::Config::from_str(url).map_err(|e| {
            Error::invalid(format!(
                "{} is not a valid PostgreSQL URL: {e}",
                redact(url)
            ))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("jobspool");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(Pool {
            config,
            url: redact(url),
            idle: Mutex::new(Vec::new()),
            durability,
        })
    }

    /// A new connection (not from the pool): the listener's own.
    pub fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|e| Error::Storage {
            context: format!("connecting to {}", self.url),
            source: Some(Box::new(e)),
        })
    }

    fn take(&self) -> Result<Client> {
        loop {
            let c = self.idle.lock().pop();
            match c {
                Some(c) if c.is_closed() => continue,
                Some(c) => return Ok(c),
                None => return self.connect(),
            }
        }
    }

    fn give_back(&self, c: Client) {
        if c.is_closed() {
            // Lost: the idle ones most likely went with it (a server restart, a proxy):
            // drop them too, so the next call opens a fresh connection.
            self.clear();
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(c);
        }
    }

    /// Drops every idle connection (at close).
    pub fn clear(&self) {
        self.idle.lock().clear();
    }

    /// Runs `f` on a pooled client outside any explicit transaction (one statement).
    pub fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut c = self.take()?;
        let out = f(&mut c).map_err(|e| storage("a query", &e));
        self.give_back(c);
        out
    }

    /// Runs `f` in one transaction and commits it; a deadlock or serialization failure runs
    /// it again (from the start: `f` must not have effects outside the transaction). Any
    /// other error rolls back. A lost connection is dropped (the next call opens another)
    /// and reported as `STORAGE`.
    pub fn with_tx<T>(&self, mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.take()?;
            let r = run_tx(&mut c, self.durability, &mut f);
            self.give_back(c);
            match r {
                Err(TxError::Retry(_)) if attempt < RETRIES => continue,
                Err(TxError::Retry(e) | TxError::Other(e)) => return Err(e),
                Ok(v) => return Ok(v),
            }
        }
    }
}

enum TxError {
    Retry(Error),
    Other(Error),
}

fn run_tx<T>(
    c: &mut Client,
    durability: Durability,
    f: &mut impl FnMut(&mut Transaction<'_>) -> Result<T>,
) -> std::result::Result<T, TxError> {
    let classify = |e: postgres::Error| {
        let err = storage("a transaction", &e);
        if is_retryable(&e) {
            TxError::Retry(err)
        } else {
            TxError::Other(err)
        }
    };
    let mut tx = c.transaction().map_err(classify)?;
    if matches!(durability, Durability::Buffered { .. }) {
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .map_err(classify)?;
    }
    match f(&mut tx) {
        Ok(v) => {
            tx.commit().map_err(classify)?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback();
            if retryable(&e) {
                Err(TxError::Retry(e))
            } else {
                Err(TxError::Other(e))
            }
        }
    }
}

fn is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// A PostgreSQL error as `STORAGE`, saying what was being done.
pub(crate) fn storage(what: &str, e: &postgres::Error) -> Error {
    let lost = e.is_closed()
        || std::error::Error::source(e).is_some_and(<dyn std::error::Error>::is::<std::io::Error>);
    let context = if lost {
        format!("{what} on PostgreSQL failed (connection lost; the next call reconnects)")
    } else {
        format!("{what} on PostgreSQL failed")
    };
    Error::Storage {
        context,
        source: Some(Box::new(clone_err(e))),
    }
}

/// `postgres::Error` is not `Clone`; keep its text.
fn clone_err(e: &postgres::Error) -> PgError {
    PgError {
        text: match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        },
        retryable: is_retryable(e),
    }
}

/// The text of a PostgreSQL error (the source of a `STORAGE` error).
#[derive(Debug)]
pub(crate) struct PgError {
    text: String,
    retryable: bool,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for PgError {}

/// `?` on a `postgres::Error` inside a transaction: `STORAGE`, kept retryable.
pub(crate) trait Pg<T> {
    fn pg(self, what: &str) -> Result<T>;
}

impl<T> Pg<T> for std::result::Result<T, postgres::Error> {
    fn pg(self, what: &str) -> Result<T> {
        self.map_err(|e| storage(what, &e))
    }
}

/// Whether `e` (from [`Pg::pg`]) was a deadlock or serialization failure.
pub(crate) fn retryable(e: &Error) -> bool {
    match e {
        Error::Storage {
            source: Some(s), ..
        } => s.downcast_ref::<PgError>().is_some_and(|p| p.retryable),
        _ => false,
    }
}
