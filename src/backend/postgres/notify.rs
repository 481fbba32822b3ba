//! Telling the engine what committed: events in seq order, and wake-ups of claimers.
//!
//! Transactions stage their events unnumbered (no row is locked by every commit, and no
//! commit sends a notification, so commits do not queue behind each other); [`sequence`]
//! numbers them. Two threads per spool:
//!
//! - the sequencer ([`run_sequencer`]) numbers and delivers this process's commits: at once
//!   under `Immediate` (but at most once per [`NUMBERING_GAP`]), once `max_delay` has passed
//!   under `Buffered` (numbering waits for a WAL flush); numbering notifies the schema's
//!   channel with the last seq;
//! - the listener ([`run`]) LISTENs on that channel and delivers what other processes
//!   numbered (or polls every second, which also numbers what a stopped process left
//!   staged), and holds the session advisory lock on this spool's owner id, which tells
//!   other processes that this one is alive (see `maint::recover_dead_owners`).
//!
//! Readers (`events_since`, `last_seq`, `stats`) number first ([`number`]), so a caller reads
//! its own events and sees its own jobs counted.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

use super::conn::Pg;
use super::tx::EVENTS_PER_ROW;
use super::Shared;
use crate::model::config::Durability;
use crate::model::error::{Error, Result};
use crate::model::event::{Event, EventRecord};

/// How often the database is polled for other processes' commits when no notification
/// came (or in poll-only mode).
pub(super) const POLL: Duration = Duration::from_secs(1);

/// How long the listener waits for a notification before looking at its stop flag.
const TICK: Duration = Duration::from_millis(100);

/// The shortest time between the end of one numbering and the start of the next. Numbering
/// commits, and waits for a WAL flush of its own, and costs the server about 0.3 ms (moving
/// the staged rows, adding their counts): numbering after every commit of a producer that
/// commits one job at a time would double its flushes. At most every 2 ms, numbering still
/// took about a tenth of that producer's time; at most every 10 ms, a few percent. Other
/// processes hear of new work, and subscribers get events, at most this much later; this
/// process's own workers are woken at commit, not by numbering.
pub(super) const NUMBERING_GAP: Duration = Duration::from_millis(10);

/// Most events read from the log per query while catching up.
const FETCH: i64 = 1000;

/// Numbers the staged events of every committed transaction (see the schema's
/// `sequence_events`): one round trip, which writes and waits for a WAL flush only when
/// there are events to number. Returns the last numbered seq: every event up to it is
/// durable and readable, with no gap.
fn sequence(sh: &Shared) -> Result<u64> {
    let sql = sh.sql("SELECT @.sequence_events($1)");
    let channel = (!sh.cfg.pg_poll_only).then(|| sh.channel.clone());
    let v: i64 = sh
        .pool
        .with_client(|c| c.query_one(&sql, &[&channel]).map(|r| r.get(0)))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// Makes every commit so far durable (a transaction that has an id commits with
/// `synchronous_commit` on, the session default under `Immediate`, and waits for the WAL
/// flush up to its commit record, which covers every commit before it), then numbers the
/// events and delivers them. A log row that does not decode stops the delivery (readers of
/// the log get its `CORRUPTION`), not the flush.
pub(super) fn flush(sh: &Shared) -> Result<()> {
    sh.pool.with_client(|c| {
        c.batch_execute("BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT")
    })?;
    sh.flushes.fetch_add(1, Ordering::Relaxed);
    number_and_deliver(sh)
}

/// Numbers what is staged and delivers it; only numbering's errors are returned (see
/// [`flush`]).
pub(super) fn number_and_deliver(sh: &Shared) -> Result<()> {
    let upto = newest(sh, true)?;
    let _ = deliver(sh, upto);
    Ok(())
}

/// Delivers every numbered event not delivered yet (this process's and other processes'
/// commits alike), in seq order; with `number`, numbers what is staged first.
pub(super) fn catch_up(sh: &Shared, number: bool) -> Result<()> {
    let upto = newest(sh, number)?;
    deliver(sh, upto)
}

/// Numbers what is staged (anyone's), for a reader: returns the last numbered seq. Under
/// `Buffered`, numbering this process's commits waited for a WAL flush, which counts as one.
pub(super) fn number(sh: &Shared) -> Result<u64> {
    newest(sh, true)
}

/// The newest numbered seq; with `number`, after numbering what is staged.
fn newest(sh: &Shared, number: bool) -> Result<u64> {
    if !number {
        return read_last_seq(sh);
    }
    // Everything this process committed so far is numbered by this call.
    let since = sh.staged.lock().take();
    let last = match sequence(sh) {
        Ok(last) => last,
        Err(e) => {
            if let Some(t) = since {
                sh.staged.lock().get_or_insert(t);
            }
            return Err(e);
        }
    };
    if since.is_some() && sh.buffered() {
        // (Numbering this process's `Buffered` commits waited for a WAL flush.)
        sh.flushes.fetch_add(1, Ordering::Relaxed);
    }
    Ok(last)
}

/// Hands the events after the last delivered one, up to `upto`, to the observer.
fn deliver(sh: &Shared, upto: u64) -> Result<()> {
    loop {
        let mut delivered = sh.delivered.lock();
        if *delivered >= upto {
            return Ok(());
        }
        let to = upto.min(*delivered + FETCH as u64);
        let evs = fetch(sh, *delivered, to)?;
        // (Pruned events are skipped.)
        *delivered = evs.last().map_or(to, |e| e.seq.max(to));
        sh.observer.committed(&evs);
    }
}

/// The newest numbered event's seq (without numbering what is staged).
pub(super) fn read_last_seq(sh: &Shared) -> Result<u64> {
    let sql = sh.sql("SELECT value FROM @.counter WHERE name = 'event_seq'");
    let v: i64 = sh
        .pool
        .with_client(|c| c.query_one(&sql, &[]).map(|r| r.get(0)))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// This process's staged events not delivered yet, by batch number, with when they
/// committed. A cache: a batch missing from it is read from the log as JSON.
pub(crate) type Own = HashMap<i64, (Instant, Vec<Event>)>;

/// Most batches kept in [`Own`] (beyond it, events are read back from the log).
pub(crate) const MAX_OWN_BATCHES: usize = 65_536;

/// How long a batch stays in [`Own`] (one whose row was read as JSON first, when its commit
/// was numbered and delivered before it was put there, would otherwise stay).
const OWN_TTL: Duration = Duration::from_secs(60);

/// Events with `after < seq <= upto`, in order, at most [`FETCH`] of them; this process's
/// own from memory.
pub(super) fn fetch(sh: &Shared, after: u64, upto: u64) -> Result<Vec<EventRecord>> {
    read_log(sh, after, upto, FETCH as usize, Some(&sh.own))
}

/// Drops batches older than [`OWN_TTL`] from [`Own`].
pub(super) fn sweep_own(sh: &Shared) {
    sh.own.lock().retain(|_, (at, _)| at.elapsed() < OWN_TTL);
}

/// Rows of the event log read per query.
const LOG_ROWS: i64 = 64;

/// Up to `limit` events with `after < seq <= upto`, in order, from the event log's rows
/// (each holds a transaction's events, or 512 of them, the last numbered `last_seq`). With
/// `own`, the rows of batches found there are not sent as JSON: their events come from it,
/// and a batch is dropped from it once its last row is read.
pub(super) fn read_log(
    sh: &Shared,
    after: u64,
    upto: u64,
    limit: usize,
    own: Option<&parking_lot::Mutex<Own>>,
) -> Result<Vec<EventRecord>> {
    let sql = sh.sql(
        "SELECT last_seq, n, batch, part, \
                CASE WHEN batch = ANY($3) THEN NULL ELSE events END \
         FROM @.event_log WHERE last_seq > $1 ORDER BY last_seq LIMIT $2",
    );
    let mut out = Vec::new();
    let mut from = i64::try_from(after).unwrap_or(i64::MAX);
    loop {
        let mine: Vec<i64> = own.map_or_else(Vec::new, |o| o.lock().keys().copied().collect());
        let rows = sh
            .pool
            .with_client(|c| c.query(&sql, &[&from, &LOG_ROWS, &mine]))?;
        for r in &rows {
            let last: i64 = r.get(0);
            let n: i32 = r.get(1);
            // (A row past what is asked for is not decoded: damage there is not this
            // read's.)
            let first = u64::try_from(last - i64::from(n) + 1).unwrap_or(0);
            if out.len() >= limit || first > upto {
                return Ok(out);
            }
            let events = match r.get::<_, Option<serde_json::Value>>(4) {
                Some(json) => decode_row(last, n, json)?,
                None => own_row(own, last, n, r.get(2), r.get(3))?,
            };
            for ev in events {
                if ev.seq > upto || out.len() >= limit {
                    return Ok(out);
                }
                if ev.seq > after {
                    out.push(ev);
                }
            }
            from = last;
        }
        if rows.len() < LOG_ROWS as usize {
            return Ok(out);
        }
    }
}

/// The events of row (`batch`, `part`) from [`Own`]; the batch leaves it with its last row.
fn own_row(
    own: Option<&parking_lot::Mutex<Own>>,
    last: i64,
    n: i32,
    batch: i64,
    part: i32,
) -> Result<Vec<EventRecord>> {
    let missing = || Error::Storage {
        context: format!(
            "event log row seq {last} (batch {batch}, part {part}) was not sent and is not \
             in memory; this is a jobspool bug, please report it"
        ),
        source: None,
    };
    let mut own = own.ok_or_else(missing)?.lock();
    let (_, events) = own.get(&batch).ok_or_else(missing)?;
    let start = usize::try_from(part - 1).unwrap_or(0) * EVENTS_PER_ROW;
    let end = (start + EVENTS_PER_ROW).min(events.len());
    let chunk = events.get(start..end).ok_or_else(missing)?;
    if chunk.len() != usize::try_from(n).unwrap_or(0) {
        return Err(missing());
    }
    let first = last - i64::from(n) + 1;
    let out = chunk
        .iter()
        .zip(first..)
        .map(|(event, seq)| EventRecord {
            seq: u64::try_from(seq).unwrap_or(0),
            event: event.clone(),
        })
        .collect();
    if end == events.len() {
        own.remove(&batch);
    }
    Ok(out)
}

/// The events of one event-log row: `n` events, the last numbered `last`.
pub(super) fn decode_row(last: i64, n: i32, events: serde_json::Value) -> Result<Vec<EventRecord>> {
    let bad = |detail: String| Error::Corruption {
        tree: "events",
        key: format!("seq {last}"),
        detail,
    };
    let serde_json::Value::Array(items) = events else {
        return Err(bad("the row's events are not a JSON array".into()));
    };
    let first = last - i64::from(n) + 1;
    if n < 1 || first < 1 || items.len() != n as usize {
        return Err(bad(format!(
            "the row says {n} events ending at seq {last} and holds {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .zip(first..)
        .map(|(item, seq)| {
            let event: Event =
                serde_json::from_value(item).map_err(|e| bad(format!("event seq {seq}: {e}")))?;
            Ok(EventRecord {
                seq: u64::try_from(seq).unwrap_or(0),
                event,
            })
        })
        .collect()
}

/// Opens the listener's connection: LISTEN, and the owner's advisory lock and row.
pub(super) fn connect(sh: &Shared) -> Result<Client> {
    let mut c = sh.pool.connect()?;
    c.batch_execute(&format!("LISTEN \"{}\"", sh.channel))
        .pg("listening for notifications")?;
    if let Some(owner) = sh.owner {
        c.execute("SELECT pg_advisory_lock($1)", &[&owner])
            .pg("registering this process")?;
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let now = sh.cfg.clock.now_ms();
        c.execute(
            &sh.sql(
                "INSERT INTO @.owner (id, host, pid, opened_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
            ),
            &[&owner, &host, &pid, &now],
        )
        .pg("registering this process")?;
    }
    Ok(c)
}

/// The newest seq announced so far: numbering's notification carries the last seq it
/// numbered; one without a readable seq (a commit's, with events to number) counts as
/// unknown, which always calls for a catch-up.
fn newest_seq(so_far: Option<Option<u64>>, payload: &str) -> Option<Option<u64>> {
    let seq = payload.parse::<u64>().ok();
    Some(match (so_far, seq) {
        (Some(None), _) | (_, None) => None,
        (Some(Some(a)), Some(b)) => Some(a.max(b)),
        (None, Some(b)) => Some(b),
    })
}

/// Whether a burst of notifications announced anything not delivered yet.
fn news(sh: &Shared, newest: Option<Option<u64>>) -> bool {
    match newest {
        None => false,
        Some(None) => true,
        Some(Some(seq)) => seq > *sh.delivered.lock(),
    }
}

/// How long after this process's first unnumbered commit the sequencer numbers it.
fn numbering_delay(sh: &Shared) -> Duration {
    match sh.cfg.durability {
        Durability::Immediate => Duration::ZERO,
        Durability::Buffered { max_delay } => max_delay,
    }
}

/// The sequencer thread's loop (see the module docs): waits for this process's commits,
/// then numbers and delivers them.
pub(super) fn run_sequencer(sh: &Arc<Shared>) {
    let delay = numbering_delay(sh);
    let mut last: Option<Instant> = None;
    loop {
        {
            let mut staged = sh.staged.lock();
            loop {
                if sh.closed.load(Ordering::Acquire) {
                    return;
                }
                let wait = match *staged {
                    None => TICK,
                    Some(since) => match since.checked_add(delay) {
                        // A `max_delay` beyond what an `Instant` can hold: numbered only
                        // when flushed (or read), as on sled.
                        None => TICK,
                        Some(due) => {
                            let due = match last {
                                Some(l) => due.max(l + NUMBERING_GAP),
                                None => due,
                            };
                            match due.checked_duration_since(Instant::now()) {
                                Some(w) if !w.is_zero() => w,
                                _ => break,
                            }
                        }
                    },
                };
                sh.staged_cv.wait_for(&mut staged, wait);
            }
        }
        if catch_up(sh, true).is_err() {
            // (Connection lost: the pool reconnects; try again shortly.)
            std::thread::sleep(TICK);
        }
        last = Some(Instant::now());
    }
}

/// The listener thread's loop (see the module docs). `client` is `None` in poll-only mode.
pub(super) fn run(sh: &Arc<Shared>, mut client: Option<Client>) {
    let listen = !sh.cfg.pg_poll_only;
    let mut last_poll = Instant::now();
    let mut last_sweep = Instant::now();
    while !sh.closed.load(Ordering::Acquire) {
        let mut woke = false;
        if listen {
            if client.as_ref().map_or(true, Client::is_closed) {
                client = connect(sh).ok();
                // Commits may have happened while disconnected.
                woke = true;
            }
            let got = match client.as_mut() {
                Some(c) => {
                    let mut ns = c.notifications();
                    let first = ns.timeout_iter(TICK).next();
                    // Every notification that has arrived meanwhile is answered by the
                    // same catch-up (one a notification would cost a round trip per
                    // commit), and none when they only announce numbered events this
                    // process has delivered already.
                    match first {
                        Ok(Some(n)) => {
                            let mut newest = newest_seq(None, n.payload());
                            let mut rest = ns.iter();
                            loop {
                                match rest.next() {
                                    Ok(Some(n)) => newest = newest_seq(newest, n.payload()),
                                    Ok(None) => break Ok(news(sh, newest)),
                                    Err(e) => break Err(e),
                                }
                            }
                        }
                        Ok(None) => Ok(false),
                        Err(e) => Err(e),
                    }
                }
                None => {
                    std::thread::sleep(TICK);
                    Ok(false)
                }
            };
            match got {
                Ok(n) => woke |= n,
                Err(_) => client = None,
            }
        } else {
            std::thread::sleep(TICK);
        }
        if last_sweep.elapsed() >= POLL {
            last_sweep = Instant::now();
            sweep_own(sh);
        }
        if woke || last_poll.elapsed() >= POLL {
            let polled = !woke;
            last_poll = Instant::now();
            if sh.closed.load(Ordering::Acquire) {
                break;
            }
            // A poll also numbers what a process that stopped left staged.
            let _ = catch_up(sh, polled && !sh.buffered());
            sh.observer.work_available();
        }
    }
    // A clean close: give the owner lock back at once (not when the server notices the
    // connection is gone), so a spool opened next recovers what this one left running; an
    // owner with nothing running is forgotten.
    if let (Some(mut c), Some(owner)) = (client, sh.owner) {
        let _ = c.execute(
            &sh.sql(
                "DELETE FROM @.owner WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM @.job WHERE state = 2 AND lease_owner = $1)",
            ),
            &[&owner],
        );
        let _ = c.execute("SELECT pg_advisory_unlock($1)", &[&owner]);
    }
}

#[cfg(test)]
mod tests {
    use super::newest_seq;

    #[test]
    fn a_burst_announces_its_newest_seq() {
        let mut n = None;
        for p in ["7", "12", "9"] {
            n = newest_seq(n, p);
        }
        assert_eq!(n, Some(Some(12)));
    }

    #[test]
    fn a_notification_without_a_seq_makes_the_burst_unknown() {
        assert_eq!(newest_seq(None, ""), Some(None));
        assert_eq!(newest_seq(newest_seq(None, "5"), "x"), Some(None));
        assert_eq!(newest_seq(newest_seq(None, ""), "5"), Some(None));
    }
}
