//! Where a command's operations go: the database opened directly, or the control socket of
//! the process holding it. Both run the same [`Op`], and output is printed from the JSON it
//! returns, so the two print the same.

use std::time::Duration;

use jobspool::{control, Error, EventsInput, Op, Spool};

use super::args::Cli;
use super::output::{Doc, Out};

pub(crate) fn db_path(cli: &Cli) -> Result<std::path::PathBuf, Error> {
    cli.db.clone().ok_or_else(|| {
        Error::InvalidArgument("no database given: pass --db PATH or set JOBSPOOL_DB".into())
    })
}

/// Whether a command may create the database: only commands that store something do; the
/// others fail with `DATABASE_NOT_FOUND` on a path without one, creating nothing (so a
/// mistyped `--db` is reported, not turned into a new empty database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    IfMissing,
    Never,
}

/// One-shot commands open the database (running crash recovery), work, and close; no
/// maintenance or scheduler thread runs in them.
fn open(cli: &Cli, create: Create) -> Result<Spool, Error> {
    builder(cli)
        .maintenance(false)
        .scheduler(false)
        .create_if_missing(create == Create::IfMissing)
        .open(db_path(cli)?)
}

/// The settings every command opens with (the PostgreSQL schema, when given).
pub(crate) fn builder(cli: &Cli) -> jobspool::Builder {
    let b = Spool::builder();
    match &cli.schema {
        Some(s) => b.schema(s.as_str()),
        None => b,
    }
}

/// Whether `--db` names a PostgreSQL database: every process connects to it directly (no
/// control socket).
pub(crate) fn is_postgres(db: &std::path::Path) -> bool {
    db.to_str().is_some_and(jobspool::is_postgres_url)
}

pub(crate) enum Target {
    Direct(Spool),
    Remote(control::Client),
}

impl Target {
    /// A live socket first (its process holds the database, so opening would only wait for
    /// the lock); else the database itself; and if that turns out to be held, its socket
    /// once more (the holder may have just started).
    pub(crate) fn connect(cli: &Cli, create: Create) -> Result<Target, Error> {
        let db = db_path(cli)?;
        if is_postgres(&db) {
            return open(cli, create).map(Target::Direct);
        }
        if let Ok(c) = control::Client::connect_db(&db) {
            return Ok(Target::Remote(c));
        }
        match open(cli, create) {
            Ok(spool) => Ok(Target::Direct(spool)),
            Err(e @ Error::DatabaseInUse { .. }) => control::Client::connect_db(&db)
                .map(Target::Remote)
                .map_err(|_| e),
            Err(e) => Err(e),
        }
    }

    /// Runs `op`; its output keeps its exact JSON text for `--json`.
    pub(crate) fn call(&self, op: Op) -> Result<Doc, Error> {
        match self {
            Target::Direct(spool) => {
                let out = op.run(spool)?;
                let raw = serde_json::to_string(&out).map_err(|e| Error::Storage {
                    context: format!("encoding an output: {e}"),
                    source: None,
                })?;
                Doc::from_raw(raw)
            }
            Target::Remote(client) => Doc::from_raw(client.call_raw(op.name(), op.input_json())?),
        }
    }

    pub(crate) fn close(self) -> Result<(), Error> {
        match self {
            Target::Direct(spool) => spool.close(),
            Target::Remote(_) => Ok(()),
        }
    }
}

/// Runs `op` on the database (directly or through its control socket) and closes it.
/// Operations that only read, or change something that must exist already, need the
/// database to exist.
pub(crate) fn call(cli: &Cli, op: Op) -> Result<Doc, Error> {
    let create = if creates(&op) {
        Create::IfMissing
    } else {
        Create::Never
    };
    let target = Target::connect(cli, create)?;
    let out = target.call(op)?;
    target.close()?;
    Ok(out)
}

/// Whether `op` stores something on an empty database (so it may create one).
fn creates(op: &Op) -> bool {
    matches!(
        op,
        Op::Enqueue(_)
            | Op::EnqueueBatch(_)
            | Op::ScheduleCreate(_)
            | Op::QueuePause(_)
            | Op::QueueResume(_)
    )
}

/// How often `events --follow` asks a control socket for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Prints one `jobs.events` page; returns how many events it held.
fn print_events(page: &Doc, last: &mut u64, out: &Out) -> usize {
    let evs = page["events"].as_array().map_or(&[][..], Vec::as_slice);
    for ev in evs {
        out.event(&Doc::from_value(ev.clone()));
        *last = ev["seq"].as_u64().unwrap_or(*last);
    }
    evs.len()
}

/// `events [--since N] [--follow]`.
pub(crate) fn events(target: &Target, since: u64, follow: bool, out: &Out) -> Result<(), Error> {
    let page = |after: u64| {
        target.call(Op::Events(EventsInput {
            since: Some(after),
            limit: None,
        }))
    };
    // Subscribe before reading the log so nothing falls between the two.
    let live = match target {
        Target::Direct(spool) if follow => Some(spool.subscribe()),
        _ => None,
    };
    let mut last = since;
    while print_events(&page(last)?, &mut last, out) > 0 {}
    if !follow {
        return Ok(());
    }
    let Some(live) = live else {
        // Through a control socket: poll until the serving process goes away.
        loop {
            std::thread::sleep(FOLLOW_POLL);
            loop {
                match page(last) {
                    Ok(p) if print_events(&p, &mut last, out) == 0 => break,
                    Ok(_) => {}
                    // The connection broke or the process is closing: the stream ends, as
                    // it does when a directly opened spool closes.
                    Err(Error::Storage { .. }) => return Ok(()),
                    Err(e) if e.code() == "SHUTTING_DOWN" => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
    };
    loop {
        match live.recv() {
            Ok(ev) if ev.seq <= last => {}
            Ok(ev) if ev.seq == last + 1 => {
                out.event(&Doc::from_value(jobspool::json::event(&ev)));
                last = ev.seq;
            }
            // A gap (we fell behind and were dropped, or missed some): read them from the log.
            Ok(_) | Err(_) => {
                if print_events(&page(last)?, &mut last, out) == 0 {
                    // Disconnected with nothing new: the spool closed.
                    return Ok(());
                }
            }
        }
    }
}
