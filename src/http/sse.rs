//! `GET /api/v1/events`: the event log as Server-Sent Events. Each event is one message,
//! `id: <seq>` and `data: <the event's JSON>` (as `jobs.events` shows it); a client that
//! reconnects with `Last-Event-ID: <seq>` (browsers do it on their own) or `?after=<seq>`
//! gets every event after that one from the durable log, then the live ones. An idle stream
//! sends a comment line every heartbeat, and looks every [`PEER_CHECK`] whether the client
//! has gone (closed its connection), so a closed stream frees its place at once rather than
//! at its next write.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::request::Request;
use super::response::DEFAULT_CSP;
use crate::model::error::{Error, Result};
use crate::model::event::EventRecord;
use crate::{SubscriptionError, WeakSpool};

/// How often a stream looks whether its client has gone.
pub(crate) const PEER_CHECK: Duration = Duration::from_millis(250);

/// Events read from the log per step while catching up.
const BACKFILL_PAGE: usize = 1000;

/// Where a stream starts: after `Last-Event-ID`, else after `?after=` (`0`: the whole log
/// still kept); `None` when neither is given (only events written from now on).
///
/// # Errors
/// `INVALID_ARGUMENT` when either is not a sequence number.
pub(crate) fn start_after(req: &Request) -> Result<Option<u64>> {
    // An empty Last-Event-ID (a client that has seen no event with an id) is no position.
    let given = req
        .header("last-event-id")
        .filter(|v| !v.trim().is_empty())
        .map(|v| ("Last-Event-ID", v))
        .or_else(|| req.query("after").map(|v| ("after", v)));
    match given {
        None => Ok(None),
        Some((what, v)) => v.trim().parse().map(Some).map_err(|_| {
            Error::invalid(format!(
                "{what} must be an event sequence number, not {v:?}"
            ))
        }),
    }
}

/// One message of the stream.
fn message(rec: &EventRecord) -> Vec<u8> {
    let data = serde_json::to_string(&crate::api::json::event(rec)).unwrap_or_default();
    format!("id: {}\ndata: {data}\n\n", rec.seq).into_bytes()
}

/// Writes the stream to `out` until the client goes away (a write fails, or `gone`, asked
/// every [`PEER_CHECK`] while no event comes, says so), the spool closes or `stop` is set.
/// `after`: the last sequence number the client has (`None`: from now on).
pub(crate) fn stream(
    out: &mut impl Write,
    spool: &WeakSpool,
    after: Option<u64>,
    heartbeat: Duration,
    stop: &AtomicBool,
    mut gone: impl FnMut() -> bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
         Referrer-Policy: no-referrer\r\nContent-Security-Policy: {DEFAULT_CSP}\r\n\
         X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 2000\n\n"
    );
    let (feed, mut last) = {
        let Some(s) = spool.upgrade() else {
            return out.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        };
        // Subscribe before reading the log, so nothing falls between the two. A position
        // past the newest event (another database's, say) counts as the newest: the client
        // would otherwise miss every event up to it.
        let newest = s.last_seq();
        (s.subscribe(), after.map_or(newest, |a| a.min(newest)))
    };
    // The head goes out once subscribed: a client that saw it misses nothing written after.
    out.write_all(head.as_bytes())?;
    out.flush()?;
    let mut feed = Some(feed);
    // Catch up from the log (also after the live feed dropped us for falling behind).
    let mut backfill = true;
    // The last write (heartbeats follow a heartbeat of silence) and the last look at the peer.
    let mut wrote = Instant::now();
    let mut looked = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if backfill {
            loop {
                let page = match spool.upgrade() {
                    Some(s) => s.events_since(last, BACKFILL_PAGE),
                    None => return Ok(()),
                };
                let Ok(page) = page else {
                    return Ok(());
                };
                for rec in &page {
                    out.write_all(&message(rec))?;
                    last = rec.seq;
                }
                out.flush()?;
                if !page.is_empty() {
                    wrote = Instant::now();
                }
                if page.len() < BACKFILL_PAGE || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            backfill = false;
            if feed.is_none() {
                feed = spool.upgrade().map(|s| s.subscribe());
            }
        }
        let Some(f) = &feed else {
            return Ok(());
        };
        if looked.elapsed() >= PEER_CHECK {
            if gone() {
                return Ok(());
            }
            looked = Instant::now();
        }
        let quiet = wrote.elapsed();
        if quiet >= heartbeat {
            out.write_all(b": heartbeat\n\n")?;
            out.flush()?;
            wrote = Instant::now();
            continue;
        }
        match f.recv_timeout((heartbeat - quiet).min(PEER_CHECK)) {
            Ok(rec) if rec.seq > last => {
                if rec.seq > last + 1 {
                    // A gap: read it from the log in order rather than skip it.
                    backfill = true;
                    continue;
                }
                out.write_all(&message(&rec))?;
                out.flush()?;
                last = rec.seq;
                wrote = Instant::now();
            }
            Ok(_) | Err(SubscriptionError::Empty) => {}
            Err(SubscriptionError::Closed) => {
                if spool.upgrade().is_none() {
                    return Ok(());
                }
                // Dropped for falling behind: catch up from the log, then subscribe again.
                feed = None;
                backfill = true;
            }
        }
    }
    Ok(())
}
