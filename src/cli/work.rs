//! `jobspool work`: runs each job as an external command (`sh -c`) in its own process group.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jobspool::{limits, Error, HandlerResult, JobContext, JobError, Spool, WorkerPool};

use super::reaper::Registry;

/// Exit code a command uses for a permanent failure (EX_DATAERR).
const EXIT_PERMANENT: i32 = 65;
/// Most bytes of stdout kept as the result (the payload limit `work` opens with), and of
/// stderr kept in the error.
const STDOUT_LIMIT: usize = jobspool::limits::DEFAULT_PAYLOAD_LIMIT;
const STDERR_TAIL: usize = 2048;
/// Between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct WorkOptions {
    /// The database directory (for the registry of running commands, `reaper`).
    pub db: std::path::PathBuf,
    pub handlers: Vec<(String, String)>,
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub lease: Duration,
    pub grace: Duration,
    pub stop_when_empty: bool,
}

/// One `--handler TYPE=COMMAND`; the type is held to the rule `enqueue` holds `--type` to,
/// so `work` cannot wait forever for jobs no enqueue can make.
pub(crate) fn parse_handler(s: &str) -> Result<(String, String), Error> {
    match s.split_once('=') {
        Some((t, c)) if !t.is_empty() && !c.trim().is_empty() => {
            limits::validate_name("the TYPE of --handler", t)?;
            Ok((t.to_owned(), c.to_owned()))
        }
        _ => Err(Error::InvalidArgument(format!(
            "--handler {s:?} is not of the form TYPE=COMMAND"
        ))),
    }
}

/// Every `--queue`, held to the rule `enqueue` holds its `--queue` to.
pub(crate) fn check_queues(queues: &[String]) -> Result<(), Error> {
    queues
        .iter()
        .try_for_each(|q| limits::validate_name("--queue", q))
}

/// Every `--handler`, each type once (a repeated type would silently replace the first).
pub(crate) fn parse_handlers(args: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut handlers: Vec<(String, String)> = Vec::with_capacity(args.len());
    for arg in args {
        let (kind, command) = parse_handler(arg)?;
        if handlers.iter().any(|(k, _)| *k == kind) {
            return Err(Error::InvalidArgument(format!(
                "--handler gives type {kind:?} more than once; give each type one command"
            )));
        }
        handlers.push((kind, command));
    }
    Ok(handlers)
}

pub(crate) fn run(spool: &Spool, opts: WorkOptions) -> Result<(), Error> {
    let stop = super::http::stop_on_signals()?;
    // Commands a killed `work` left running would run beside the jobs recovery just made
    // pending again: kill them before claiming anything. On sled we hold the database, so
    // no other `work` on it is running commands; on PostgreSQL only those of `work`
    // processes that no longer run are reaped.
    let shared = super::target::is_postgres(&opts.db);
    let registry = Arc::new(if shared {
        Registry::per_process()
    } else {
        Registry::new(&opts.db)
    });
    if let Some(why) = registry.disabled() {
        eprintln!(
            "jobspool: not recording the commands' process groups ({why}): after a kill -9 of \
             this `work`, what its commands started may keep running; set XDG_RUNTIME_DIR to a \
             private directory"
        );
    }
    let killed = registry.reap();
    if killed > 0 {
        let whose = if shared {
            "a killed `work` on this host"
        } else {
            "an earlier `work` on this database"
        };
        eprintln!("jobspool: killed {killed} command process group(s) left running by {whose}");
    }
    let mut builder = WorkerPool::builder(spool)
        .concurrency(opts.concurrency)
        .lease(opts.lease);
    if !opts.queues.is_empty() {
        builder = builder.queues(opts.queues.clone());
    }
    for (kind, command) in opts.handlers {
        let command = Arc::new(command);
        let registry = registry.clone();
        builder = builder.handler(kind, move |ctx: &JobContext| {
            run_command(&command, ctx, &registry)
        });
    }
    let pool = builder.start()?;
    eprintln!("jobspool: working (Ctrl-C to stop)");
    while !stop.load(Ordering::Relaxed) {
        if opts.stop_when_empty && pool.is_idle() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let handed_back = pool.shutdown(opts.grace);
    if handed_back > 0 {
        eprintln!("jobspool: returned {handed_back} unfinished job(s) to pending");
    }
    Ok(())
}

fn reader(
    mut r: impl Read + Send + 'static,
    keep: usize,
    tail: bool,
) -> JoinHandle<(Vec<u8>, bool)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut over = false;
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > keep {
                        over = true;
                        if tail {
                            let cut = kept.len() - keep;
                            kept.drain(..cut);
                        } else {
                            kept.truncate(keep);
                        }
                    }
                }
            }
        }
        (kept, over)
    })
}

fn signal_group(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Runs `command` for the job and waits for it.
///
/// The command dies with `work`: its `sh` (the leader of its own process group) gets
/// SIGKILL from the kernel when the thread that spawned it exits (`PR_SET_PDEATHSIG`). That
/// thread is the pool's worker thread calling this handler, which lives as long as the pool
/// and does not return from here before the command has exited (unless it loses track of
/// it: waiting failed), so in practice the signal
/// comes only when the whole process dies (a SIGKILL of `work` included). What `sh` started
/// itself is not covered by that signal: the group is recorded in the database's registry
/// (`reaper`), and the next `work` kills it.
fn run_command(command: &str, ctx: &JobContext, registry: &Registry) -> HandlerResult {
    let job = ctx.job();
    let parent = nix::unistd::Pid::this();
    let mut cmd = Command::new("sh");
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed. It makes two system calls, prctl(2) and
    // getppid(2), touches no lock and allocates nothing (its errors are built from a raw
    // errno, which does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            // `work` died before the line above: the signal will never come, so stop here.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(
                    nix::errno::Errno::ESRCH as i32,
                ));
            }
            Ok(())
        });
    }
    let mut child = cmd
        .arg("-c")
        .arg(command)
        .env("JOBSPOOL_JOB_ID", job.id.to_string())
        .env("JOBSPOOL_JOB_TYPE", &job.kind)
        .env("JOBSPOOL_ATTEMPT", job.attempts.to_string())
        .env("JOBSPOOL_QUEUE", &job.queue)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| JobError::retry(format!("cannot start sh -c {command:?}: {e}")))?;
    let payload = job.payload.clone();
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut w) = stdin {
            // A command that does not read its stdin closes the pipe: not an error.
            let _ = w.write_all(&payload);
        }
    });
    let out = child.stdout.take().map(|o| reader(o, STDOUT_LIMIT, false));
    let err = child.stderr.take().map(|e| reader(e, STDERR_TAIL, true));
    let pid = child.id();
    // Removed (dropped) once the command has exited, or when this returns early.
    let _record = registry.register(pid);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let mut term_sent: Option<Instant> = None;
    let status = loop {
        match done_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(st)) => break st,
            Ok(Err(e)) => return Err(JobError::retry(format!("waiting for the command: {e}"))),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(JobError::retry("lost track of the command"))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
        if ctx.is_cancelled() {
            match term_sent {
                None => {
                    signal_group(pid, nix::sys::signal::Signal::SIGTERM);
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() >= KILL_GRACE => {
                    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                }
                Some(_) => {}
            }
        }
    };
    let _ = writer.join();
    let (stdout, truncated) = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let (stderr, _) = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if truncated && status.code() == Some(0) {
        eprintln!(
            "jobspool: job {} ({}): command output is over the {STDOUT_LIMIT}-byte result \
             limit; its first {STDOUT_LIMIT} bytes are the result (truncated)",
            job.id, job.kind
        );
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    let detail = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    };
    match status.code() {
        // Exit 0 is success: an oversized output is cut to the result limit, and said so.
        Some(0) => Ok(if stdout.is_empty() {
            None
        } else {
            Some(stdout)
        }),
        Some(EXIT_PERMANENT) => Err(JobError::permanent(format!(
            "command exited 65 (permanent){detail}"
        ))),
        Some(code) => Err(JobError::retry(format!("command exited {code}{detail}"))),
        None => Err(JobError::retry(format!(
            "command killed by signal {}{detail}",
            status.signal().unwrap_or(0)
        ))),
    }
}
