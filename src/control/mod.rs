//! Live control: the seed's operations over a local Unix domain socket, so other processes
//! (the CLI above all) can reach a database that this process holds.
//!
//! sled lets one process own a database. A process that holds it calls [`serve`] to serve a
//! socket (default `<db>/control.sock`, mode 0600) that takes one JSON request per line
//! and answers one JSON response per line:
//!
//! ```text
//! {"id":1,"op":"jobs.get","input":{"jobId":"019ac2f4-..."}}
//! {"id":1,"ok":true,"output":{"id":"019ac2f4-...","type":"email.send",...}}
//! {"id":2,"ok":false,"error":{"code":"JOB_NOT_FOUND","message":"no job with id ..."}}
//! ```
//!
//! The socket is an adapter over a spool: each request line becomes a [`crate::Op`], run on
//! the spool like any other caller's. [`dispatch`] does the same without a socket (the
//! CLI's direct path uses it, so both print the same); [`Client`] is the other end of the
//! socket. The op list and shapes are in README.md, section "Control socket".
//!
//! ```
//! use jobspool::{control::Client, Spool};
//! use serde_json::json;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let db = dir.path().join("queue");
//! let spool = Spool::open(&db)?;
//! let socket = jobspool::control::serve(&spool)?;    // until dropped or the spool closes
//!
//! // Another process (here: the same one) reaches it through the socket.
//! let client = Client::connect_db(&db)?;
//! let job = client.call("jobs.enqueue", json!({"type": "email.send", "payload": {"to": "a@b.c"}}))?;
//! assert_eq!(job["status"], "pending");
//! spool.close()?;                                     // stops the socket first
//! assert!(!socket.path().exists());
//! # Ok::<(), jobspool::Error>(())
//! ```

mod client;
pub(crate) mod protocol;
mod server;
mod typed;

use std::path::{Path, PathBuf};

pub use client::Client;
use parking_lot::Mutex;
pub use protocol::dispatch;
use std::sync::Arc;

use crate::{Result, Spool};
use server::Server;

/// Longest request line the server reads, in bytes (newline excluded): a 1 MiB payload in
/// base64 plus room for the other fields. Longer lines get an `INVALID_ARGUMENT` response
/// and are skipped.
pub const LINE_LIMIT: usize = 2 * 1024 * 1024 + 64 * 1024;

/// Most connections served at once; further ones get one error line and are closed.
pub const MAX_CONNECTIONS: usize = 64;

/// File name of the socket inside the database directory.
pub const SOCKET_NAME: &str = "control.sock";

/// File inside the database directory that records the socket's path when the default one
/// would be too long for a Unix socket address.
pub const PATH_RECORD_NAME: &str = "control.sock.path";

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where the socket of the database at `db` goes by default: `<db>/control.sock`, or, when
/// that is longer than a socket address allows, a short path in a temporary directory named
/// from a hash of the database path (recorded in `<db>/control.sock.path`).
#[must_use]
pub fn default_socket_path(db: &Path) -> PathBuf {
    let inside = db.join(SOCKET_NAME);
    if inside.as_os_str().len() <= MAX_SOCKET_PATH {
        return inside;
    }
    let abs = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let name = format!(
        "jobspool-{:016x}.sock",
        fnv1a(abs.as_os_str().as_encoded_bytes())
    );
    let short_dir = |d: PathBuf| d.is_absolute() && d.as_os_str().len() + name.len() < 100;
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| short_dir(d.clone()))
        .or_else(|| Some(std::env::temp_dir()).filter(|d| short_dir(d.clone())))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(name)
}

/// Where a client looks for the socket of the database at `db`: the path recorded in
/// `<db>/control.sock.path` when there is one, else `<db>/control.sock`. `None` when
/// neither can be a socket address.
#[must_use]
pub fn socket_path_for(db: &Path) -> Option<PathBuf> {
    if let Some(recorded) = read_record(db) {
        return Some(recorded);
    }
    let inside = db.join(SOCKET_NAME);
    (inside.as_os_str().len() <= MAX_SOCKET_PATH).then_some(inside)
}

/// The recorded socket path, read with a bound (the file is a few dozen bytes).
fn read_record(db: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let f = std::fs::File::open(db.join(PATH_RECORD_NAME)).ok()?;
    let mut s = String::new();
    f.take(4096).read_to_string(&mut s).ok()?;
    let p = PathBuf::from(s.trim_end_matches('\n'));
    (p.is_absolute() && p.as_os_str().len() <= MAX_SOCKET_PATH).then_some(p)
}

/// FNV-1a, 64 bits: a stable name for the short socket path (std's hasher may change
/// between Rust versions; the recorded path makes this only a convenience anyway).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Serves the control socket of `spool` at [`default_socket_path`] until the returned
/// handle is dropped or the spool closes (whichever comes first). The socket is bound only
/// while this process holds the database; a stale socket file left by a killed process is
/// replaced; the file is mode 0600 and removed when serving stops.
///
/// # Errors
/// `STORAGE` when the socket cannot be bound, `INVALID_ARGUMENT` when something that is not
/// a socket sits at its path.
pub fn serve(spool: &Spool) -> Result<ControlSocket> {
    serve_at(spool, default_socket_path(spool.path()))
}

/// As [`serve`], at `path` (recorded in `<db>/control.sock.path` so clients find it).
///
/// # Errors
/// As [`serve`]; `INVALID_ARGUMENT` for a path longer than a socket address allows.
pub fn serve_at(spool: &Spool, path: impl Into<PathBuf>) -> Result<ControlSocket> {
    let path = path.into();
    let server = Server::start(path.clone(), spool.path(), spool.downgrade())?;
    let slot = Arc::new(Mutex::new(Some(server)));
    let on_close = Arc::downgrade(&slot);
    spool.on_close(move || {
        if let Some(slot) = on_close.upgrade() {
            if let Some(mut server) = slot.lock().take() {
                server.stop();
            }
        }
    });
    Ok(ControlSocket { path, server: slot })
}

/// A control socket being served; dropping it (or closing the spool) stops serving and
/// removes the socket file.
pub struct ControlSocket {
    path: PathBuf,
    server: Arc<Mutex<Option<Server>>>,
}

impl std::fmt::Debug for ControlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSocket")
            .field("path", &self.path)
            .field("serving", &self.is_serving())
            .finish()
    }
}

impl ControlSocket {
    /// The socket's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is still serving (the spool has not closed).
    #[must_use]
    pub fn is_serving(&self) -> bool {
        self.server.lock().is_some()
    }

    /// Stops serving: no new connections, open ones shut down, the socket file removed.
    pub fn stop(&self) {
        if let Some(mut server) = self.server.lock().take() {
            server.stop();
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_database_paths_get_a_short_recorded_socket_path() {
        let short = Path::new("/var/lib/q");
        assert_eq!(default_socket_path(short), short.join(SOCKET_NAME));
        let long = PathBuf::from(format!("/{}", "d".repeat(150)));
        let p = default_socket_path(&long);
        assert!(p.as_os_str().len() <= MAX_SOCKET_PATH, "{}", p.display());
        assert_eq!(p, default_socket_path(&long), "stable");
    }
}
