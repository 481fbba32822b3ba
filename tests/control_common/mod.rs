//! Helpers shared by the control-socket tests (`control.rs`, `cli_control.rs`). Each test
//! crate uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: these tests must pass on a slow, loaded machine. Nothing asserts on timing.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A temporary directory under the target dir (short enough for a socket path inside).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("jobspool-ctl-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating a temp dir")
}

/// The database path inside a temp dir.
pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("db")
}

/// Polls `f` until it returns `Some`, panicking with `what` after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True when something accepts connections at `path`.
pub fn socket_is_live(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// A raw protocol connection: write lines, read response lines.
pub struct Raw {
    reader: BufReader<UnixStream>,
}

impl Raw {
    pub fn connect(path: &Path) -> Raw {
        let s = UnixStream::connect(path).expect("connecting to the control socket");
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        Raw {
            reader: BufReader::new(s),
        }
    }

    /// Sends raw bytes (a newline is not added).
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("writing");
    }

    /// Reads one response line; `None` at end of stream.
    pub fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("reading a response");
        if n == 0 {
            return None;
        }
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
    }

    /// Sends one line and reads its response; `None` when the server closed the
    /// connection (e.g. refused it).
    pub fn try_request(&mut self, line: &str) -> Option<Value> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.reader.get_mut().write_all(&bytes).ok()?;
        let mut resp = String::new();
        match self.reader.read_line(&mut resp) {
            Ok(n) if n > 0 => serde_json::from_str(&resp).ok(),
            _ => None,
        }
    }

    /// Sends one line and reads its response.
    pub fn request(&mut self, line: &str) -> Value {
        self.send(line.as_bytes());
        self.send(b"\n");
        self.recv().expect("a response")
    }
}

/// Asserts an error response with `code`; returns its message.
pub fn error_of(resp: &Value, code: &str) -> String {
    assert_eq!(resp["ok"], Value::Bool(false), "expected an error: {resp}");
    assert_eq!(resp["error"]["code"], code, "{resp}");
    resp["error"]["message"]
        .as_str()
        .expect("an error message")
        .to_owned()
}
