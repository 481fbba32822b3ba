//! Argument parsing, dispatch, and output (human or `--json`).

mod bench;
mod output;
mod work;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use jobspool::{control, Error, JobId, JobStatus, Spool};
use serde_json::{json, Value};

use output::Out;

/// A durable, crash-safe, embedded background-job queue.
#[derive(Parser, Debug)]
#[command(name = "jobspool", version, about)]
pub(crate) struct Cli {
    /// Database directory (or set JOBSPOOL_DB).
    #[arg(long, env = "JOBSPOOL_DB", global = true)]
    db: Option<PathBuf>,
    /// Print JSON only on stdout (one document, or one object per line for streams).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Enqueue a job.
    Enqueue(EnqueueArgs),
    /// Show one job.
    Get {
        /// The job id.
        id: String,
    },
    /// Cancel a pending job.
    Cancel {
        /// The job id.
        id: String,
    },
    /// List jobs, optionally filtered, one page at a time.
    List {
        /// Only this status (pending, running, completed, failed, cancelled, dead_letter).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        filter: PageFilter,
        /// Start after this job id (the last id of the previous page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Counts by status, global and per queue.
    Stats,
    /// Print the event log from a sequence number; --follow keeps streaming.
    Events {
        /// Print events with seq greater than this.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep printing new events as they happen.
        #[arg(long)]
        follow: bool,
    },
    /// Cron schedules.
    Schedule {
        #[command(subcommand)]
        cmd: ScheduleCmd,
    },
    /// Dead-letter operations (dead_letter and failed jobs).
    Dead {
        #[command(subcommand)]
        cmd: DeadCmd,
    },
    /// Remove finished jobs and old events past their retention.
    Prune,
    /// Run jobs: each job of a handled type runs COMMAND with `sh -c`, payload on stdin.
    Work {
        /// TYPE=COMMAND (repeatable).
        #[arg(long = "handler", value_name = "TYPE=COMMAND", required = true)]
        handlers: Vec<String>,
        /// Serve only this queue (repeatable); default every queue.
        #[arg(long = "queue")]
        queues: Vec<String>,
        /// Jobs run at once.
        #[arg(long, default_value_t = 4, allow_negative_numbers = true)]
        concurrency: i64,
        /// Lease per claim in seconds (heartbeats renew it).
        #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
        lease_secs: i64,
        /// Seconds to wait for running jobs at shutdown before handing them back.
        #[arg(long, default_value_t = 30, allow_negative_numbers = true)]
        grace_secs: i64,
        /// Exit once nothing this worker could claim is pending or running.
        #[arg(long)]
        stop_when_empty: bool,
    },
    /// Run a standard workload and print throughput and latency, with the machine's raw
    /// fdatasync and sled insert rates measured in the same run.
    Bench {
        /// burn-down (enqueue N, then drain), steady (producers and workers at once),
        /// enqueue (producers only), fill (batch-enqueue N into --db and keep it), open
        /// (time opening --db, recovery included, and report RSS).
        #[arg(long, default_value = "burn-down")]
        mode: String,
        /// Number of jobs.
        #[arg(long, default_value_t = 100_000)]
        jobs: u64,
        /// Producer threads (steady, enqueue).
        #[arg(long, default_value_t = 1)]
        producers: u64,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: u64,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 100)]
        payload_bytes: usize,
        /// immediate or buffered (10 ms).
        #[arg(long, default_value = "immediate")]
        durability: String,
        /// Total enqueue rate in jobs/s for steady mode (default: as fast as possible).
        #[arg(long)]
        rate: Option<u64>,
        /// Jobs the pool claims ahead of its workers (batches claims).
        #[arg(long, default_value_t = 512)]
        prefetch: usize,
        /// Soak: run maintenance with this retention for every kind, and print RSS and
        /// disk use every 10 s on stderr.
        #[arg(long)]
        retention_secs: Option<u64>,
    },
    /// Pause or resume a queue.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
}

/// Queue / type filters and the page size, shared by `list` and `dead list`.
#[derive(Args, Debug)]
struct PageFilter {
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only this type.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Page size (default 100, at most 10000).
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<i64>,
}

impl PageFilter {
    /// The filter as protocol input fields.
    fn fields(&self) -> Result<Vec<(&'static str, Option<Value>)>, Error> {
        Ok(vec![
            ("queue", self.queue.clone().map(Value::from)),
            ("type", self.kind.clone().map(Value::from)),
            ("limit", parse_limit(self.limit)?.map(Value::from)),
        ])
    }
}

#[derive(Subcommand, Debug)]
enum DeadCmd {
    /// List dead_letter and failed jobs.
    List {
        #[command(flatten)]
        filter: PageFilter,
    },
    /// Send one job (or all with --all) back to pending with attempts reset.
    Redrive {
        /// The job id.
        id: Option<String>,
        /// Redrive every dead_letter and failed job (of --queue / --type if given).
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: only this queue.
        #[arg(long, requires = "all")]
        queue: Option<String>,
        /// With --all: only this type.
        #[arg(long = "type", requires = "all")]
        kind: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ScheduleCmd {
    /// Create a schedule (5-field crontab, 6 fields with seconds, or @daily-style).
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// The cron expression.
        #[arg(long)]
        cron: String,
        /// Type of the jobs it enqueues.
        #[arg(long)]
        job_type: String,
        /// IANA time zone (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// Payload of the jobs: inline JSON, `-` for stdin, or `@FILE`.
        #[arg(long, allow_hyphen_values = true)]
        payload: Option<String>,
        /// maxRetries of the jobs.
        #[arg(long, allow_negative_numbers = true)]
        max_retries: Option<i64>,
        /// Queue of the jobs.
        #[arg(long)]
        queue: Option<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        /// Replace a schedule of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Enable or disable a schedule.
    Toggle {
        /// The schedule's name.
        #[arg(long)]
        name: String,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// List every schedule.
    List,
    /// Delete a schedule.
    Delete {
        /// The schedule's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum QueueCmd {
    /// Stop claims from a queue (persisted).
    Pause {
        /// The queue.
        queue: String,
    },
    /// Let claims from a queue resume.
    Resume {
        /// The queue.
        queue: String,
    },
}

#[derive(Args, Debug)]
struct EnqueueArgs {
    /// Job type (the handler key), e.g. email.send.
    #[arg(long = "type")]
    kind: String,
    /// Payload: inline JSON, `-` for stdin, or `@FILE`.
    #[arg(long, allow_hyphen_values = true)]
    payload: Option<String>,
    /// Queue name (default "default").
    #[arg(long)]
    queue: Option<String>,
    /// Priority, higher first (default 0).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i64>,
    /// Delay in seconds before the job may run.
    #[arg(long, allow_negative_numbers = true)]
    delay: Option<f64>,
    /// Run no earlier than this RFC 3339 time.
    #[arg(long)]
    run_at: Option<String>,
    /// Maximum total attempts (default 3).
    #[arg(long, allow_negative_numbers = true)]
    max_retries: Option<i64>,
    /// Attempt time limit in milliseconds.
    #[arg(long, allow_negative_numbers = true)]
    timeout_ms: Option<i64>,
    /// At most one pending or running job per key.
    #[arg(long)]
    dedupe_key: Option<String>,
    /// Tenant id, carried through.
    #[arg(long)]
    tenant_id: Option<String>,
    /// User id, carried through.
    #[arg(long)]
    user_id: Option<String>,
    /// Trace id, carried through.
    #[arg(long)]
    trace_id: Option<String>,
    /// Metadata entry, k=v (repeatable).
    #[arg(long = "metadata", value_name = "K=V")]
    metadata: Vec<String>,
}

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let out = Out::new(cli.json);
    match run(cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::from(1)
        }
    }
}

fn db_path(cli: &Cli) -> Result<PathBuf, Error> {
    cli.db.clone().ok_or_else(|| {
        Error::InvalidArgument("no database given: pass --db PATH or set JOBSPOOL_DB".into())
    })
}

/// One-shot commands open the database (running crash recovery), work, and close; no
/// maintenance thread runs in them.
fn open(cli: &Cli) -> Result<Spool, Error> {
    Spool::builder()
        .maintenance(false)
        .scheduler(false)
        .open(db_path(cli)?)
}

/// Where a command's operations go: the database opened directly, or the control socket of
/// the process holding it. Both run the same [`control::dispatch`] code, and the output is
/// printed from the JSON it returns, so the two print the same.
enum Target {
    Direct(Spool),
    Remote(control::Client),
}

impl Target {
    /// A live socket first (its process holds the database, so opening would only wait for
    /// the lock); else the database itself; and if that turns out to be held, its socket
    /// once more (the holder may have just started).
    fn connect(cli: &Cli) -> Result<Target, Error> {
        let db = db_path(cli)?;
        if let Ok(c) = control::Client::connect_db(&db) {
            return Ok(Target::Remote(c));
        }
        match open(cli) {
            Ok(spool) => Ok(Target::Direct(spool)),
            Err(e @ Error::DatabaseInUse { .. }) => control::Client::connect_db(&db)
                .map(Target::Remote)
                .map_err(|_| e),
            Err(e) => Err(e),
        }
    }

    fn call(&self, op: &str, input: Value) -> Result<Value, Error> {
        match self {
            Target::Direct(spool) => control::dispatch(spool, op, &input),
            Target::Remote(client) => client.call(op, input),
        }
    }

    fn close(self) -> Result<(), Error> {
        match self {
            Target::Direct(spool) => spool.close(),
            Target::Remote(_) => Ok(()),
        }
    }
}

fn parse_id(s: &str) -> Result<JobId, Error> {
    s.parse()
}

fn parse_limit(limit: Option<i64>) -> Result<Option<usize>, Error> {
    match limit {
        None => Ok(None),
        Some(n) if (1..=jobspool::MAX_PAGE as i64).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(Error::InvalidArgument(format!(
            "--limit {n} is out of range; use 1..={}",
            jobspool::MAX_PAGE
        ))),
    }
}

/// `input` with the `Some` entries of `fields` added.
fn with_opts(mut input: Value, fields: &[(&str, Option<Value>)]) -> Value {
    if let Value::Object(m) = &mut input {
        for (k, v) in fields {
            if let Some(v) = v {
                m.insert((*k).to_owned(), v.clone());
            }
        }
    }
    input
}

/// Payload bytes as the protocol takes them: base64, so they arrive exactly as read.
fn payload_value(bytes: &[u8]) -> Option<Value> {
    (!bytes.is_empty()).then(|| json!({ "base64": jobspool::json::base64(bytes) }))
}

/// Runs `op` on the database (directly or through its control socket) and closes it.
fn call(cli: &Cli, op: &str, input: Value) -> Result<Value, Error> {
    let target = Target::connect(cli)?;
    let out = target.call(op, input)?;
    target.close()?;
    Ok(out)
}

fn run(cli: Cli, out: &Out) -> Result<(), Error> {
    match &cli.cmd {
        Command::Enqueue(a) => {
            let input = enqueue_input(a)?;
            out.job(&call(&cli, "jobs.enqueue", input)?);
            Ok(())
        }
        Command::Get { id } => {
            let id = parse_id(id)?;
            out.job(&call(&cli, "jobs.get", json!({ "jobId": id.to_string() }))?);
            Ok(())
        }
        Command::Cancel { id } => {
            let id = parse_id(id)?;
            let input = json!({ "jobId": id.to_string(), "cancelledBy": "cli" });
            let v = call(&cli, "jobs.cancel", input)?;
            out.value(&v, &format!("cancelled {id}"));
            Ok(())
        }
        Command::List {
            status,
            filter,
            after,
        } => {
            let status = status.as_deref().map(str::parse::<JobStatus>).transpose()?;
            let after = after.as_deref().map(parse_id).transpose()?;
            let mut fields = vec![("status", status.map(|s| s.as_str().into()))];
            fields.extend(filter.fields()?);
            fields.push(("after", after.map(|a| a.to_string().into())));
            let input = with_opts(json!({}), &fields);
            out.jobs(&call(&cli, "jobs.list", input)?);
            Ok(())
        }
        Command::Stats => {
            out.stats(&call(&cli, "jobs.stats", json!({}))?);
            Ok(())
        }
        Command::Events { since, follow } => {
            let target = Target::connect(&cli)?;
            events(&target, *since, *follow, out)?;
            target.close()
        }
        Command::Schedule { cmd } => {
            let (op, input) = match cmd {
                ScheduleCmd::Create {
                    name,
                    cron,
                    job_type,
                    timezone,
                    payload,
                    max_retries,
                    queue,
                    description,
                    disabled,
                    replace,
                } => {
                    let payload = read_payload(payload.as_deref())?;
                    let max_retries = max_retries
                        .map(|n| {
                            u32::try_from(n).map_err(|_| {
                                Error::InvalidArgument(format!(
                                    "--max-retries {n} is out of range; it must be at least 1"
                                ))
                            })
                        })
                        .transpose()?;
                    let input = with_opts(
                        json!({
                            "name": name,
                            "cronExpression": cron,
                            "jobType": job_type,
                            "enabled": !disabled,
                            "replace": replace,
                        }),
                        &[
                            ("timezone", timezone.clone().map(Value::from)),
                            ("payload", payload_value(&payload)),
                            ("maxRetries", max_retries.map(Value::from)),
                            ("queue", queue.clone().map(Value::from)),
                            ("description", description.clone().map(Value::from)),
                        ],
                    );
                    ("jobs.schedule.create", input)
                }
                ScheduleCmd::Toggle { name, enabled } => (
                    "jobs.schedule.toggle",
                    json!({ "name": name, "enabled": enabled }),
                ),
                ScheduleCmd::List => ("jobs.schedule.list", json!({})),
                ScheduleCmd::Delete { name } => ("jobs.schedule.delete", json!({ "name": name })),
            };
            let v = call(&cli, op, input)?;
            match cmd {
                ScheduleCmd::List => out.schedules(&v),
                ScheduleCmd::Delete { name } => out.value(&v, &format!("deleted schedule {name}")),
                _ => out.schedule(&v),
            }
            Ok(())
        }
        Command::Dead {
            cmd: DeadCmd::List { filter },
        } => {
            let input = with_opts(json!({}), &filter.fields()?);
            out.jobs(&call(&cli, "jobs.dead.list", input)?);
            Ok(())
        }
        Command::Dead {
            cmd:
                DeadCmd::Redrive {
                    id,
                    all,
                    queue,
                    kind,
                },
        } => {
            let input = match (id, all) {
                (Some(id), false) => json!({ "jobId": parse_id(id)?.to_string() }),
                (None, true) => with_opts(
                    json!({ "all": true }),
                    &[
                        ("queue", queue.clone().map(Value::from)),
                        ("type", kind.clone().map(Value::from)),
                    ],
                ),
                _ => {
                    return Err(Error::InvalidArgument(
                        "give a job id or --all to redrive".into(),
                    ))
                }
            };
            let v = call(&cli, "jobs.dead.redrive", input)?;
            let n = v["redriven"].as_u64().unwrap_or_default();
            out.value(&v, &format!("redrove {n} job(s)"));
            Ok(())
        }
        Command::Prune => {
            let v = call(&cli, "jobs.prune", json!({}))?;
            let n = v["pruned"].as_u64().unwrap_or_default();
            out.value(&v, &format!("pruned {n} job(s)"));
            Ok(())
        }
        Command::Work {
            handlers,
            queues,
            concurrency,
            lease_secs,
            grace_secs,
            stop_when_empty,
        } => {
            let handlers = handlers
                .iter()
                .map(|h| work::parse_handler(h))
                .collect::<Result<Vec<_>, _>>()?;
            let positive = |name: &str, v: i64, max: i64| {
                if (1..=max).contains(&v) {
                    Ok(v as u64)
                } else {
                    Err(Error::InvalidArgument(format!(
                        "--{name} {v} is out of range 1..={max}"
                    )))
                }
            };
            let opts = work::WorkOptions {
                handlers,
                queues: queues.clone(),
                concurrency: positive("concurrency", *concurrency, 4096)? as usize,
                lease: Duration::from_secs(positive("lease-secs", *lease_secs, 86_400)?),
                grace: Duration::from_secs(if *grace_secs == 0 {
                    0
                } else {
                    positive("grace-secs", *grace_secs, 86_400)?
                }),
                stop_when_empty: *stop_when_empty,
            };
            // The control socket lets every other command reach the database meanwhile.
            let spool = Spool::builder().control_socket(true).open(db_path(&cli)?)?;
            work::run(&spool, opts)?;
            spool.close()
        }
        Command::Bench {
            mode,
            jobs,
            producers,
            workers,
            payload_bytes,
            durability,
            rate,
            prefetch,
            retention_secs,
        } => bench::run(&bench::BenchOptions {
            db: cli.db.clone(),
            mode: mode.clone(),
            jobs: *jobs,
            producers: *producers,
            workers: *workers,
            payload_bytes: *payload_bytes,
            durability: durability.clone(),
            rate: *rate,
            prefetch: *prefetch,
            retention_secs: *retention_secs,
            json: cli.json,
        }),
        Command::Queue { cmd } => {
            let (op, queue) = match cmd {
                QueueCmd::Pause { queue } => ("jobs.queue.pause", queue),
                QueueCmd::Resume { queue } => ("jobs.queue.resume", queue),
            };
            let v = call(&cli, op, json!({ "queue": queue }))?;
            let paused = op == "jobs.queue.pause";
            out.value(
                &v,
                &format!(
                    "queue {queue} {}",
                    if paused { "paused" } else { "resumed" }
                ),
            );
            Ok(())
        }
    }
}

/// Reads at most `limit + 1` bytes, so an oversized payload is refused without reading it all.
fn read_bounded(mut r: impl Read, limit: usize) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::InvalidArgument(format!("cannot read the payload: {e}")))?;
    if buf.len() > limit {
        return Err(Error::PayloadTooLarge {
            what: "payload",
            size: buf.len(),
            limit,
        });
    }
    Ok(buf)
}

/// The payload limit the CLI enforces while reading (the library checks again).
const CLI_PAYLOAD_LIMIT: usize = 1024 * 1024;

pub(crate) fn read_payload(arg: Option<&str>) -> Result<Vec<u8>, Error> {
    match arg {
        None => Ok(Vec::new()),
        Some("-") => read_bounded(std::io::stdin().lock(), CLI_PAYLOAD_LIMIT),
        Some(s) if s.starts_with('@') => {
            let f = std::fs::File::open(&s[1..]).map_err(|e| {
                Error::InvalidArgument(format!("cannot open payload file {}: {e}", &s[1..]))
            })?;
            read_bounded(f, CLI_PAYLOAD_LIMIT)
        }
        Some(inline) => {
            serde_json::from_str::<serde_json::Value>(inline).map_err(|e| {
                Error::InvalidArgument(format!(
                    "--payload is not valid JSON ({e}); quote it, or use @FILE / - for raw bytes"
                ))
            })?;
            Ok(inline.as_bytes().to_vec())
        }
    }
}

/// The `jobs.enqueue` input of the arguments, checked here first so errors name the flags.
fn enqueue_input(a: &EnqueueArgs) -> Result<Value, Error> {
    let payload = read_payload(a.payload.as_deref())?;
    let priority = a
        .priority
        .map(|p| {
            i32::try_from(p).map_err(|_| {
                Error::InvalidArgument(format!("--priority {p} does not fit in 32 bits"))
            })
        })
        .transpose()?;
    if let Some(d) = a.delay {
        if !d.is_finite() || d < 0.0 {
            return Err(Error::InvalidArgument(format!(
                "--delay {d} must be zero or positive seconds"
            )));
        }
        if d > 10.0 * 366.0 * 86400.0 {
            return Err(Error::InvalidArgument(
                "--delay must be at most 10 years".into(),
            ));
        }
    }
    if let Some(at) = &a.run_at {
        chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
            Error::InvalidArgument(format!("--run-at {at:?} is not an RFC 3339 time ({e})"))
        })?;
    }
    let max_retries = a
        .max_retries
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                Error::InvalidArgument(format!(
                    "--max-retries {n} is out of range; it must be at least 1"
                ))
            })
        })
        .transpose()?;
    let timeout_ms = a
        .timeout_ms
        .map(|t| {
            u64::try_from(t)
                .map_err(|_| Error::InvalidArgument(format!("--timeout-ms {t} must be positive")))
        })
        .transpose()?;
    let mut meta = serde_json::Map::new();
    for kv in &a.metadata {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            Error::InvalidArgument(format!("--metadata {kv:?} is not of the form key=value"))
        })?;
        if k.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "--metadata {kv:?} has an empty key"
            )));
        }
        meta.insert(k.to_owned(), v.into());
    }
    Ok(with_opts(
        json!({ "type": a.kind }),
        &[
            ("payload", payload_value(&payload)),
            ("queue", a.queue.clone().map(Value::from)),
            ("priority", priority.map(Value::from)),
            ("delaySeconds", a.delay.map(Value::from)),
            ("runAt", a.run_at.clone().map(Value::from)),
            ("maxRetries", max_retries.map(Value::from)),
            ("timeoutMs", timeout_ms.map(Value::from)),
            ("dedupeKey", a.dedupe_key.clone().map(Value::from)),
            ("tenantId", a.tenant_id.clone().map(Value::from)),
            ("userId", a.user_id.clone().map(Value::from)),
            ("traceId", a.trace_id.clone().map(Value::from)),
            (
                "metadata",
                (!meta.is_empty()).then_some(Value::Object(meta)),
            ),
        ],
    ))
}

/// How often `events --follow` asks a control socket for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Prints one `jobs.events` page; returns how many events it held.
fn print_events(page: &Value, last: &mut u64, out: &Out) -> usize {
    let evs = page["events"].as_array().map_or(&[][..], Vec::as_slice);
    for ev in evs {
        out.event(ev);
        *last = ev["seq"].as_u64().unwrap_or(*last);
    }
    evs.len()
}

fn events(target: &Target, since: u64, follow: bool, out: &Out) -> Result<(), Error> {
    let page = |after: u64| target.call("jobs.events", json!({ "since": after, "limit": 1000 }));
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
                out.event(&jobspool::json::event(&ev));
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
