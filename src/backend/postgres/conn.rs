//! Connections: the URL, a small pool of clients, error mapping, and the one-transaction
//! helper every operation runs through.

use std::collections::HashMap;
use std::str::FromStr;

use parking_lot::Mutex;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

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
/// at most 48 bytes (the notification channel adds a prefix and must fit in 63), and not
/// starting with `pg_`, which PostgreSQL keeps for its own schemas.
pub(crate) fn validate_schema(name: &str) -> Result<()> {
    if name.starts_with("pg_") {
        return Err(Error::invalid(format!(
            "schema {name:?} starts with \"pg_\", which PostgreSQL keeps for its own \
             schemas; choose another name"
        )));
    }
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

/// Statements prepared on one connection, by SQL text (the set of texts is fixed, so it
/// stays small): each statement is parsed once per connection instead of once per call.
/// Off for connection poolers, where a prepared statement may not be on the next
/// transaction's server connection.
pub(crate) struct StmtCache {
    map: HashMap<String, Statement>,
    on: bool,
}

impl StmtCache {
    fn prepared<C: GenericClient>(
        &mut self,
        c: &mut C,
        sql: &str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(st) = self.map.get(sql) {
            return Ok(st.clone());
        }
        let st = c.prepare(sql)?;
        self.map.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];
type PgResult<T> = std::result::Result<T, postgres::Error>;

/// The statements of [`Conn`] and [`Tx`], through the cache when it is on.
macro_rules! cached_statements {
    ($ty:ty, $client:ident) => {
        #[allow(dead_code)] // (not every statement kind is used on both)
        impl $ty {
            pub fn query(&mut self, sql: &str, params: Params<'_>) -> PgResult<Vec<Row>> {
                if self.cache.on {
                    let st = self.cache.prepared(&mut self.$client, sql)?;
                    self.$client.query(&st, params)
                } else {
                    self.$client.query(sql, params)
                }
            }
            /// Not through the cache: planned for its parameters on every call. For the
            /// statements whose filters a generic plan misjudges (e.g. "every queue, or
            /// these"), where it would sort the whole table instead of reading the index.
            pub fn query_planned(&mut self, sql: &str, params: Params<'_>) -> PgResult<Vec<Row>> {
                self.$client.query(sql, params)
            }
            pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> PgResult<Row> {
                if self.cache.on {
                    let st = self.cache.prepared(&mut self.$client, sql)?;
                    self.$client.query_one(&st, params)
                } else {
                    self.$client.query_one(sql, params)
                }
            }
            pub fn query_opt(&mut self, sql: &str, params: Params<'_>) -> PgResult<Option<Row>> {
                if self.cache.on {
                    let st = self.cache.prepared(&mut self.$client, sql)?;
                    self.$client.query_opt(&st, params)
                } else {
                    self.$client.query_opt(sql, params)
                }
            }
            pub fn execute(&mut self, sql: &str, params: Params<'_>) -> PgResult<u64> {
                if self.cache.on {
                    let st = self.cache.prepared(&mut self.$client, sql)?;
                    self.$client.execute(&st, params)
                } else {
                    self.$client.execute(sql, params)
                }
            }
            pub fn batch_execute(&mut self, sql: &str) -> PgResult<()> {
                self.$client.batch_execute(sql)
            }
        }
    };
}

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    cache: StmtCache,
}

cached_statements!(Conn, client);

/// An open transaction on a pooled connection.
pub(crate) struct Tx<'c> {
    t: Transaction<'c>,
    cache: &'c mut StmtCache,
}

cached_statements!(Tx<'_>, t);

/// A pool of clients to one database.
pub(crate) struct Pool {
    config: postgres::Config,
    url: String,
    idle: Mutex<Vec<Conn>>,
    /// Whether a pooled connection turns `synchronous_commit` off for its whole session
    /// when it opens: under `Buffered`, on a connection of its own. (Not as a startup
    /// option: poolers in session mode refuse `-c synchronous_commit`.)
    session_async: bool,
    /// Whether a transaction must turn `synchronous_commit` off itself: under `Buffered`
    /// through a connection pooler in transaction mode, where a session setting would not
    /// stay with this client.
    set_local_async: bool,
    cache_statements: bool,
}

impl Pool {
    pub fn new(url: &str, durability: Durability, cache_statements: bool) -> Result<Pool> {
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
        let buffered = matches!(durability, Durability::Buffered { .. });
        Ok(Pool {
            config,
            url: redact(url),
            idle: Mutex::new(Vec::new()),
            session_async: buffered && cache_statements,
            set_local_async: buffered && !cache_statements,
            cache_statements,
        })
    }

    /// Whether an autocommit statement must turn `synchronous_commit` off itself to commit
    /// as `Buffered` wants: through a connection pooler, where the session does not have it
    /// off.
    pub fn statements_set_async(&self) -> bool {
        self.set_local_async
    }

    /// A new connection (not from the pool): the listener's own, and the migration's.
    pub fn connect(&self) -> Result<Client> {
        let url = &self.url;
        self.config.connect(NoTls).map_err(|e| {
            let mut why = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                why.push_str(": ");
                why.push_str(&s.to_string());
                src = s.source();
            }
            Error::Storage {
                context: format!(
                    "cannot connect to {url} ({why}); check that the server runs and the URL"
                ),
                source: None,
            }
        })
    }

    fn take(&self) -> Result<Conn> {
        loop {
            let c = self.idle.lock().pop();
            match c {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => return Ok(c),
                None => {
                    let mut client = self.connect()?;
                    if self.session_async {
                        client
                            .batch_execute("SET synchronous_commit = off")
                            .map_err(|e| storage("setting up a connection", &e))?;
                    }
                    return Ok(Conn {
                        client,
                        cache: StmtCache {
                            map: HashMap::new(),
                            on: self.cache_statements,
                        },
                    });
                }
            }
        }
    }

    fn give_back(&self, c: Conn) {
        if c.client.is_closed() {
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

    /// [`Pool::give_back`], unless `err` says the connection is gone: then it is dropped
    /// with every idle one (they most likely went with it).
    fn give_back_unless_lost(&self, c: Conn, err: Option<&Error>) {
        if err.is_some_and(lost) {
            self.clear();
        } else {
            self.give_back(c);
        }
    }

    /// Drops every idle connection (at close).
    pub fn clear(&self) {
        self.idle.lock().clear();
    }

    /// Runs `f` on a pooled client outside any explicit transaction (one statement).
    pub fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut c = self.take()?;
        let out = f(&mut c).map_err(|e| storage("a query", &e));
        self.give_back_unless_lost(c, out.as_ref().err());
        out
    }

    /// Runs `f` in one transaction and commits it; a deadlock or serialization failure runs
    /// it again (from the start: `f` must not have effects outside the transaction). Any
    /// other error rolls back. A lost connection is dropped (the next call opens another)
    /// and reported as `STORAGE`.
    pub fn with_tx<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.take()?;
            let r = run_tx(&mut c, self.set_local_async, &mut f);
            self.give_back_unless_lost(
                c,
                match &r {
                    Err(TxError::Retry(e) | TxError::Other(e)) => Some(e),
                    Ok(_) => None,
                },
            );
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

/// Runs `f` in a transaction on `c`; with `set_local_async`, the transaction first turns
/// `synchronous_commit` off for itself.
fn run_tx<T>(
    c: &mut Conn,
    set_local_async: bool,
    f: &mut impl FnMut(&mut Tx<'_>) -> Result<T>,
) -> std::result::Result<T, TxError> {
    let classify = |e: postgres::Error| {
        let err = storage("a transaction", &e);
        if is_retryable(&e) {
            TxError::Retry(err)
        } else {
            TxError::Other(err)
        }
    };
    let t = c.client.transaction().map_err(classify)?;
    let mut tx = Tx {
        t,
        cache: &mut c.cache,
    };
    if set_local_async {
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .map_err(classify)?;
    }
    match f(&mut tx) {
        Ok(v) => {
            tx.t.commit().map_err(classify)?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.t.rollback();
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
    // Closed, an I/O error, or the server ending the session (57P: shutdown, terminated;
    // 08: connection exceptions).
    let lost = e.is_closed()
        || std::error::Error::source(e).is_some_and(<dyn std::error::Error>::is::<std::io::Error>)
        || e.code()
            .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"));
    let context = if lost {
        format!("{what} on PostgreSQL failed (connection lost; the next call reconnects)")
    } else {
        format!("{what} on PostgreSQL failed")
    };
    Error::Storage {
        context,
        source: Some(Box::new(PgError {
            text: match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            },
            retryable: is_retryable(e),
            lost,
        })),
    }
}

/// The text of a PostgreSQL error (the source of a `STORAGE` error).
#[derive(Debug)]
pub(crate) struct PgError {
    text: String,
    retryable: bool,
    /// The connection is gone.
    lost: bool,
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

/// Whether `e` (from [`Pg::pg`]) says the connection is gone.
fn lost(e: &Error) -> bool {
    match e {
        Error::Storage {
            source: Some(s), ..
        } => s.downcast_ref::<PgError>().is_some_and(|p| p.lost),
        _ => false,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Pool;
    use crate::model::config::Durability;

    const BUFFERED: Durability = Durability::Buffered {
        max_delay: Duration::from_millis(50),
    };

    /// Before, every `Buffered` transaction spent a round trip on `SET LOCAL`, and enqueues
    /// took a transaction's four round trips: `Buffered` enqueued at half the rate of
    /// `Immediate`.
    #[test]
    fn regression_buffered_sessions_turn_synchronous_commit_off_once() {
        let p = Pool::new("postgres://u@h/db", BUFFERED, true).unwrap();
        assert!(p.session_async);
        assert!(!p.set_local_async);
        assert!(!p.statements_set_async());
    }

    #[test]
    fn immediate_sessions_and_pooler_sessions_keep_the_server_default() {
        let p = Pool::new("postgres://u@h/db", Durability::Immediate, true).unwrap();
        assert!(!p.session_async && !p.set_local_async && !p.statements_set_async());
        // Through a pooler (no prepared statements, no session state): each transaction or
        // statement turns it off for itself.
        let p = Pool::new("postgres://u@h/db", BUFFERED, false).unwrap();
        assert!(!p.session_async);
        assert!(p.set_local_async && p.statements_set_async());
    }
}
