//! A throwaway PostgreSQL cluster of the tests (see the parent module): initdb, start,
//! immediate stop, restart, and the watchdog that removes it once the test process is gone.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{bin_dir, on_path, unique_schema};

/// How long a starting server has to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a [`Cluster`] runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// `fsync` on: a server crash (or power loss) keeps every committed transaction. Off
    /// for functional suites (faster; only a machine crash could lose data).
    pub fsync: bool,
    /// `max_connections`.
    pub max_connections: u32,
}

impl Options {
    /// For functional suites: fsync off, room for many parallel tests' connections.
    pub fn functional() -> Self {
        Options {
            fsync: false,
            max_connections: 300,
        }
    }

    /// For crash tests: fsync on.
    pub fn durable() -> Self {
        Options {
            fsync: true,
            max_connections: 100,
        }
    }
}

/// A throwaway PostgreSQL cluster, stopped and removed when the test process exits (or
/// sooner, when dropped).
pub struct Cluster {
    bin: PathBuf,
    /// The temp dir holding `data/` (the cluster), the socket and `server.log`.
    dir: PathBuf,
    port: u16,
    opts: Options,
    /// The running postmaster, if any.
    server: Mutex<Option<Child>>,
    /// The write end of the watchdog's pipe; dropping it (or exiting) fires the watchdog.
    _watchdog: ChildStdin,
}

impl Cluster {
    /// initdb's a new cluster in a temp dir and starts it. `Err` says why it could not:
    /// no server binaries, no `postgres` user to run them as root, a failed initdb (its
    /// output), a server that did not start (its log).
    pub fn start(opts: &Options) -> Result<Cluster, String> {
        let bin = bin_dir().ok_or(
            "no PostgreSQL server binaries (initdb, postgres) on PATH or in \
             /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install \
             postgresql) or set JOBSPOOL_TEST_PG_URL",
        )?;
        let run_as =
            if is_root() {
                Some(user_ids("postgres").ok_or(
                    "running as root and there is no `postgres` user to run the server as",
                )?)
            } else {
                None
            };
        let dir = make_temp_dir()?;
        // The watchdog first, so the directory is removed whatever happens next.
        let watchdog = spawn_watchdog(&dir)?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            opts: opts.clone(),
            server: Mutex::new(None),
            _watchdog: watchdog,
        };
        // A free port may be taken by someone else between our probe and the server's bind:
        // try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The cluster's temp dir (removed with the cluster).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let running = self.server.lock().unwrap().is_some();
        running.then(|| self.postmaster_pid()).flatten()
    }

    /// A server crash: SIGQUIT to the postmaster (what `pg_ctl stop -m immediate` sends),
    /// which ends every backend at once without a checkpoint; waits until it has exited.
    pub fn stop_immediate(&self) {
        let mut server = self.server.lock().unwrap();
        if let Some(mut child) = server.take() {
            let pid = self.postmaster_pid().unwrap_or(child.id());
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and port (after [`Cluster::stop_immediate`]:
    /// crash recovery replays the WAL).
    pub fn restart(&self) -> Result<(), String> {
        self.launch()
    }

    /// Starts the postmaster and waits until it accepts connections.
    fn launch(&self) -> Result<(), String> {
        let mut server = self.server.lock().unwrap();
        assert!(server.is_none(), "the server is already running");
        let log_path = self.dir.join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let fsync = if self.opts.fsync { "on" } else { "off" };
        let mut cmd = as_server_user(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", &format!("fsync={fsync}")])
            .args([
                "-c",
                &format!("max_connections={}", self.opts.max_connections),
            ]);
        if !self.opts.fsync {
            cmd.args(["-c", "full_page_writes=off"]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres exited ({status}) while starting: {}",
                    tail(&log_path)
                ));
            }
            if self.ready() {
                *server = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "postgres did not accept connections within {START_TIMEOUT:?}: {}",
                    tail(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server accepts connections: its port takes a TCP connection (so the
    /// new postmaster has written its `postmaster.pid`, which it does before listening) and
    /// that file's status line says `ready` (recovery done).
    fn ready(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "ready"))
    }

    /// The postmaster's pid as it wrote it in `postmaster.pid` (the spawned child may be a
    /// `runuser` wrapper around it).
    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_immediate();
        // Dropping the pipe's write end lets the watchdog remove the directory.
    }
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of `user`, from `id`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A command running `program` as the server's user: itself, or `postgres` when root
/// (through `setpriv`, which execs in place so the child's pid is the program's; else
/// `runuser`).
fn as_server_user(program: &Path) -> Command {
    if !is_root() {
        return Command::new(program);
    }
    if on_path("setpriv").is_some() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    }
}

/// A new directory under the system temp dir (world-traversable, short enough for a Unix
/// socket path).
fn make_temp_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let d = base.join(unique_schema("jobspool-pg"));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", d.display())),
        }
    }
    Err(format!("could not create a temp dir in {}", base.display()))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A shell that waits for end-of-file on its stdin (whose write end, close-on-exec, only
/// this process holds), then stops the server whose pid is in `DIR/data/postmaster.pid`
/// (SIGQUIT, an immediate shutdown; SIGKILL after 10 s) and removes `DIR`. It ignores the
/// terminal's SIGINT/SIGHUP (a Ctrl-C of `cargo test` must not skip the cleanup).
fn spawn_watchdog(dir: &Path) -> Result<ChildStdin, String> {
    const SCRIPT: &str = r#"trap '' INT HUP TERM
cat >/dev/null
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null
  sleep 0.2
fi
rm -rf "$1"
"#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "jobspool-pg-watchdog"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the cleanup watchdog: {e}"))?;
    // The watchdog outlives this process on purpose: nobody waits for it here (it is
    // re-parented and reaped by init once we are gone).
    child
        .stdin
        .take()
        .ok_or_else(|| "no watchdog stdin".to_string())
}

/// The last lines of a server log, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
