//! The client end of the control socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::model::error::{Error, ErrorCode};
use crate::Result;

/// Largest response line a client accepts (a full page of jobs with big payloads fits).
const RESPONSE_LIMIT: u64 = 1 << 30;

/// A connection to a process serving a control socket. Requests on one client are answered
/// in order; it is `Sync`, calls from several threads take turns.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    conn: Mutex<BufReader<UnixStream>>,
    next_id: AtomicU64,
}

impl Client {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// `STORAGE` when nothing serves that path.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path).map_err(|e| {
            Error::storage(
                format!("connecting to control socket {}", path.display()),
                e,
            )
        })?;
        Ok(Client {
            path,
            conn: Mutex::new(BufReader::new(stream)),
            next_id: AtomicU64::new(1),
        })
    }

    /// Connects to the control socket of the database at `db`, found as
    /// [`socket_path_for`](super::socket_path_for) says. A socket outside the database
    /// directory must belong to the directory's owner, so a path squatted in `/tmp` by
    /// another user is never trusted.
    ///
    /// # Errors
    /// `STORAGE` when no socket is reachable.
    pub fn connect_db(db: impl AsRef<Path>) -> Result<Client> {
        let db = db.as_ref();
        let path = super::socket_path_for(db).ok_or_else(|| Error::Storage {
            context: format!("no control socket path for {}", db.display()),
            source: None,
        })?;
        if !path.starts_with(db) {
            let owner = |p: &Path| std::fs::metadata(p).map(|m| m.uid()).ok();
            if owner(&path).is_none() || owner(&path) != owner(db) {
                return Err(Error::Storage {
                    context: format!(
                        "control socket {} does not belong to the owner of {}",
                        path.display(),
                        db.display()
                    ),
                    source: None,
                });
            }
        }
        Client::connect(path)
    }

    /// The socket's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and waits for its response: the op's output, or the error the
    /// server reported (same code and message as a direct call would give).
    ///
    /// # Errors
    /// The operation's error as [`Error::Remote`]; `STORAGE` when the connection fails or
    /// the response is not a protocol response.
    pub fn call(&self, op: &str, input: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&json!({ "id": id, "op": op, "input": input }))
            .map_err(|e| Error::invalid(format!("cannot encode the request: {e}")))?;
        line.push(b'\n');
        let mut conn = self.conn.lock();
        conn.get_mut()
            .write_all(&line)
            .map_err(|e| self.io_error("sending a request", e))?;
        let mut resp = Vec::new();
        conn.by_ref()
            .take(RESPONSE_LIMIT)
            .read_until(b'\n', &mut resp)
            .map_err(|e| self.io_error("reading a response", e))?;
        drop(conn);
        if resp.last() != Some(&b'\n') {
            return Err(Error::Storage {
                context: format!(
                    "control socket {} closed the connection without a complete response",
                    self.path.display()
                ),
                source: None,
            });
        }
        let v: Value = serde_json::from_slice(&resp).map_err(|e| Error::Storage {
            context: format!("control socket sent something that is not JSON: {e}"),
            source: None,
        })?;
        parse_response(v)
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::storage(
            format!("{what} on control socket {}", self.path.display()),
            e,
        )
    }
}

/// `{"ok":true,"output":..}` to the output, `{"ok":false,"error":{..}}` to [`Error::Remote`].
fn parse_response(mut v: Value) -> Result<Value> {
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(v.get_mut("output").map(Value::take).unwrap_or_default()),
        Some(Value::Bool(false)) => {
            let code = v["error"]["code"]
                .as_str()
                .and_then(ErrorCode::from_wire)
                .unwrap_or(ErrorCode::Storage);
            let message = match v["error"]["message"].as_str() {
                Some(m) => m.to_owned(),
                None => v["error"].to_string(),
            };
            Err(Error::Remote { code, message })
        }
        _ => Err(Error::Storage {
            context: format!("control socket sent an unexpected response: {v}"),
            source: None,
        }),
    }
}
