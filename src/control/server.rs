//! The socket server: an accept thread plus one thread per connection (at most
//! [`MAX_CONNECTIONS`]), each reading bounded request lines and answering them in order.
//!
//! Threads hold the spool weakly, so dropping the last [`Spool`](crate::Spool) still closes
//! it; the spool's close runs the hook [`super::serve_at`] registers, which stops the server
//! first (socket file removed, connections shut down).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use parking_lot::Mutex;
use serde_json::Value;

use super::protocol::{parse_request, response};
use super::{LINE_LIMIT, MAX_CONNECTIONS, MAX_SOCKET_PATH, PATH_RECORD_NAME, SOCKET_NAME};
use crate::Op;
use crate::{Error, Result, WeakSpool};

/// A client that stops reading its responses is dropped after this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long closing waits for the accept thread to notice before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Conns {
    stopping: bool,
    next_id: u64,
    open: HashMap<u64, UnixStream>,
}

/// A running control socket.
pub(crate) struct Server {
    path: PathBuf,
    /// (device, inode) of the socket file we bound, so we only ever remove our own.
    file_id: (u64, u64),
    record: Option<PathBuf>,
    conns: Arc<Mutex<Conns>>,
    accept: Option<(JoinHandle<()>, Receiver<()>)>,
}

impl Server {
    /// Binds the socket (replacing a stale one) and starts serving. The caller holds the
    /// database lock, so no other jobspool process can be serving this database.
    pub(crate) fn start(path: PathBuf, db: &Path, spool: WeakSpool) -> Result<Server> {
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::invalid(format!(
                "control socket path {} is longer than {MAX_SOCKET_PATH} bytes; pick a \
                 shorter one",
                path.display()
            )));
        }
        clear_stale(&path)?;
        let listener = UnixListener::bind(&path).map_err(|e| {
            Error::storage(format!("binding the control socket {}", path.display()), e)
        })?;
        let meta = std::fs::metadata(&path)
            .and_then(|m| {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                Ok(m)
            })
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                Error::storage(format!("securing the control socket {}", path.display()), e)
            })?;
        let file_id = (meta.dev(), meta.ino());
        let record = match write_record(db, &path) {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let conns = Arc::new(Mutex::new(Conns::default()));
        let (done_tx, done_rx) = bounded::<()>(0);
        let accept_conns = conns.clone();
        let handle = std::thread::Builder::new()
            .name("jobspool-control".into())
            .spawn(move || {
                accept_loop(&listener, &accept_conns, &spool);
                drop(done_tx);
            })
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                Error::storage("starting the control socket thread", e)
            })?;
        Ok(Server {
            path,
            file_id,
            record,
            conns,
            accept: Some((handle, done_rx)),
        })
    }

    /// Stops accepting, shuts every connection down and removes the socket file.
    pub(crate) fn stop(&mut self) {
        {
            let mut c = self.conns.lock();
            c.stopping = true;
            for s in c.open.values() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Some((handle, done)) = self.accept.take() {
            // accept() blocks: one connection wakes it, and it sees `stopping`. If the file
            // was removed behind our back nothing can wake it; it then stays parked, holding
            // nothing but the listener, until the process exits.
            let woke = UnixStream::connect(&self.path).is_ok();
            if woke
                && handle.thread().id() != std::thread::current().id()
                && !matches!(
                    done.recv_timeout(STOP_WAIT),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout)
                )
            {
                let _ = handle.join();
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.file_id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        if let Some(record) = self.record.take() {
            let _ = std::fs::remove_file(record);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

/// A socket file left by a process that died is removed; a live one (or something that is
/// not a socket) is an error.
fn clear_stale(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(Error::invalid(format!(
            "{} exists and is not a socket; remove it or pick another control socket path",
            path.display()
        )));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(Error::invalid(format!(
            "control socket {} is served by another process; pick another path",
            path.display()
        )));
    }
    std::fs::remove_file(path).map_err(|e| {
        Error::storage(
            format!("removing the stale control socket {}", path.display()),
            e,
        )
    })
}

/// Records a socket path other than `<db>/control.sock` in `<db>/control.sock.path` so
/// clients find it; clears an old record otherwise.
fn write_record(db: &Path, path: &Path) -> Result<Option<PathBuf>> {
    let record = db.join(PATH_RECORD_NAME);
    if path == db.join(SOCKET_NAME) {
        match std::fs::remove_file(&record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::storage(format!("removing {}", record.display()), e)),
        }
        return Ok(None);
    }
    let tmp = db.join(format!("{PATH_RECORD_NAME}.tmp"));
    let mut text = path.as_os_str().as_encoded_bytes().to_vec();
    text.push(b'\n');
    // Private like the socket it names (the database's files are 0600 or 0640).
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&text)
        })
        .and_then(|()| std::fs::rename(&tmp, &record))
        .map_err(|e| Error::storage(format!("writing {}", record.display()), e))?;
    Ok(Some(record))
}

fn accept_loop(listener: &UnixListener, conns: &Arc<Mutex<Conns>>, spool: &WeakSpool) {
    loop {
        let res = listener.accept();
        let mut c = conns.lock();
        if c.stopping {
            return;
        }
        let stream = match res {
            Ok((stream, _)) => stream,
            Err(e) => {
                drop(c);
                if e.kind() != std::io::ErrorKind::Interrupted {
                    // Out of file descriptors and the like: do not spin.
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
        };
        if c.open.len() >= MAX_CONNECTIONS {
            drop(c);
            refuse(stream);
            continue;
        }
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let id = c.next_id;
        c.next_id += 1;
        c.open.insert(id, registered);
        drop(c);
        let guard = Deregister {
            conns: conns.clone(),
            id,
        };
        let spool = spool.clone();
        let _ = std::thread::Builder::new()
            .name("jobspool-control-conn".into())
            .spawn(move || {
                let _guard = guard;
                serve(stream, &spool);
            });
        // A failed spawn drops the closure, and with it the guard and the stream.
    }
}

/// Frees a connection's slot when its thread ends, however it ends.
struct Deregister {
    conns: Arc<Mutex<Conns>>,
    id: u64,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
    }
}

/// Answers a connection over the limit with one error line and closes it. The code is
/// `DATABASE_IN_USE` (HTTP 503): the database is busy with other clients and the request was
/// not run, so the client should retry later. Not `STORAGE` (nothing failed, and it reads
/// as an I/O error) and not `SHUTTING_DOWN` (the server is not going away; followers treat
/// that code as the end of the stream).
fn refuse(mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let resp = response(
        Value::Null,
        Err(Error::Remote {
            code: crate::ErrorCode::DatabaseInUse,
            message: format!(
                "the database is busy: its control socket serves at most {MAX_CONNECTIONS} \
                 connections at once and all are in use; nothing was run, retry later"
            ),
        }),
    );
    let _ = writeln!(stream, "{resp}");
}

fn serve(stream: UnixStream, spool: &WeakSpool) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    let _ = writer.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = Vec::new();
    loop {
        let resp = match read_line(&mut reader, &mut buf, LINE_LIMIT) {
            Ok(LineRead::Eof) | Err(_) => return,
            Ok(LineRead::TooLong) => response(
                Value::Null,
                Err(Error::invalid(format!(
                    "request line is over the {LINE_LIMIT}-byte limit and was skipped"
                ))),
            ),
            Ok(LineRead::Line) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let (id, parsed) = parse_request(&buf);
                let result = parsed.and_then(|(op, input)| match spool.upgrade() {
                    // The strong handle is dropped before writing, so a slow reader never
                    // keeps a spool alive that its owner dropped.
                    Some(s) => Op::from_json(&op, input).and_then(|op| op.run(&s)),
                    None => Err(Error::ShuttingDown),
                });
                response(id, result)
            }
        };
        let mut line = match serde_json::to_vec(&resp) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        if writer
            .write_all(&line)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (newline and a trailing `\r` dropped), never holding more than
/// `limit` bytes: the rest of a longer line is read and discarded.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let (chunk, used, end) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > limit {
                too_long = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        r.consume(used);
        if end {
            if too_long {
                return Ok(LineRead::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}
