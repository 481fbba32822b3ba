//! The client end of the control socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::json::ErrorJson;
use crate::{Error, Op, Result};

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
    /// server reported, rebuilt as the same [`Error`] variant a direct call would give
    /// (same code and message). Prefer the typed methods ([`Client::get`], ...: the same as
    /// [`Spool`](crate::Spool)'s, see [`crate::Queue`]); this one is for ops and shapes
    /// handled as JSON.
    ///
    /// # Errors
    /// The operation's error; `STORAGE` when the connection fails or the response is not a
    /// protocol response.
    pub fn call(&self, op: &str, input: Value) -> Result<Value> {
        let output = self.exchange(op, &input)?;
        match output {
            None => Ok(Value::Null),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| self.bad_response(e)),
        }
    }

    /// As [`Client::call`], but the output's JSON text exactly as the serving process wrote
    /// it (`null` when it has none): payloads that are JSON keep every digit.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn call_raw(&self, op: &str, input: Value) -> Result<String> {
        let output = self.exchange(op, &input)?;
        Ok(output
            .as_deref()
            .map_or_else(|| "null".to_owned(), |raw| raw.get().to_owned()))
    }

    /// Runs `op` on the serving process and decodes its output as `T` (one of the
    /// deserializable shapes of [`crate::json`]), straight from the response text.
    pub(super) fn run<T: DeserializeOwned>(&self, op: &Op) -> Result<T> {
        let output = self.exchange(op.name(), &op.input_json())?;
        let text = output.as_deref().map_or("null", RawValue::get);
        serde_json::from_str(text).map_err(|e| self.bad_response(e))
    }

    /// One request, one response: the raw `output`, or the error rebuilt.
    fn exchange(&self, op: &str, input: &Value) -> Result<Option<Box<RawValue>>> {
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
        let r: Response = serde_json::from_slice(&resp).map_err(|e| Error::Storage {
            context: format!(
                "control socket sent something that is not a response: {e}: {}",
                String::from_utf8_lossy(&resp[..resp.len().min(200)])
            ),
            source: None,
        })?;
        match (r.ok, r.error) {
            (true, _) => Ok(r.output),
            (false, Some(e)) => Err(Error::from(e)),
            (false, None) => Err(Error::Storage {
                context: "control socket sent an error response without an error".into(),
                source: None,
            }),
        }
    }

    fn bad_response(&self, e: serde_json::Error) -> Error {
        Error::Storage {
            context: format!(
                "control socket {} sent an output that does not decode: {e}",
                self.path.display()
            ),
            source: None,
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::storage(
            format!("{what} on control socket {}", self.path.display()),
            e,
        )
    }
}

/// `{"id":..,"ok":true,"output":..}` or `{"id":..,"ok":false,"error":{..}}`; the output is
/// kept as text, so payloads keep every digit.
#[derive(Deserialize)]
struct Response {
    ok: bool,
    #[serde(default)]
    output: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorJson>,
}
