//! The command line's arguments (clap): commands, flags, and their help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A durable, crash-safe, embedded background-job queue.
#[derive(Parser, Debug)]
#[command(name = "jobspool", version, about)]
pub(crate) struct Cli {
    /// Database directory, or a postgres:// URL (or set JOBSPOOL_DB).
    #[arg(long, env = "JOBSPOOL_DB", global = true, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
    /// PostgreSQL only: the schema holding jobspool's tables (default jobspool).
    #[arg(long, env = "JOBSPOOL_SCHEMA", global = true, value_name = "NAME")]
    pub(crate) schema: Option<String>,
    /// Print JSON only on stdout (one document, or one object per line for streams).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) cmd: Command,
}

/// A whole-number flag. Every number is read as a wide integer here and checked against its
/// range where it is used, so a value out of range is an operation error (exit 1, naming the
/// range) and only text that is not a number is an argument error (exit 2). Digits beyond
/// even this width are out of range like any other big number.
fn int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i128>() {
        return Ok(n);
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(if neg { i128::MIN } else { i128::MAX })
    } else {
        Err("not a whole number".into())
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        #[command(flatten)]
        filter: PageFilter,
        /// Start after this job id (the last id of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// Counts by status, global and per queue.
    Stats,
    /// Print the event log from a sequence number; --follow keeps streaming.
    Events {
        /// Print events with seq greater than this.
        #[arg(long, default_value_t = 0, value_parser = int, allow_negative_numbers = true, value_name = "SEQ")]
        since: i128,
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
        /// TYPE=COMMAND (repeatable; each type once).
        #[arg(long = "handler", value_name = "TYPE=COMMAND", required = true)]
        handlers: Vec<String>,
        /// Serve only this queue (repeatable); default every queue.
        #[arg(long = "queue", value_name = "QUEUE")]
        queues: Vec<String>,
        /// Jobs run at once.
        #[arg(long, default_value_t = 4, value_parser = int, allow_negative_numbers = true, value_name = "N")]
        concurrency: i128,
        /// Lease per claim in seconds (heartbeats renew it).
        #[arg(long, default_value_t = 30, value_parser = int, allow_negative_numbers = true, value_name = "SECONDS")]
        lease_secs: i128,
        /// Seconds to wait for running jobs at shutdown before handing them back.
        #[arg(long, default_value_t = 30, value_parser = int, allow_negative_numbers = true, value_name = "SECONDS")]
        grace_secs: i128,
        /// Exit once nothing this worker could claim is pending or running.
        #[arg(long)]
        stop_when_empty: bool,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Hold the database and serve it: the control socket, and the HTTP API and dashboard
    /// on --http ADDR, until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Run a standard workload and print throughput and latency, with the machine's raw
    /// fdatasync and sled insert rates (PostgreSQL: the server's commit rate) measured in
    /// the same run.
    ///
    /// burn-down enqueues --jobs with enqueue_batch (1000 per call), then at once starts a
    /// worker pool with default settings and --workers threads, and times it from its start
    /// until every job is completed and one durable flush returned. --settled is the older
    /// variant: the clock starts once the backlog is applied to sled.
    ///
    /// --compare postgres://... runs the same workload on sled (--db DIR, or a temporary
    /// directory) and on that PostgreSQL database, and prints one table with a column per
    /// backend (--json: one object with both). --report FILE.svg (or FILE.html) draws the
    /// run: throughput over time against the measured limits, and the latency percentiles.
    Bench {
        /// burn-down (enqueue N, then drain), steady (producers and workers at once),
        /// enqueue (producers only), fill (batch-enqueue N into --db and keep it), open
        /// (time opening --db, recovery included, and report RSS), drain (PostgreSQL: work
        /// off --schema's pending bench jobs and exit; what --processes starts).
        #[arg(long, default_value = "burn-down")]
        mode: String,
        /// Number of jobs.
        #[arg(long, default_value_t = 100_000, value_parser = int, allow_negative_numbers = true)]
        jobs: i128,
        /// Producer threads (steady, enqueue).
        #[arg(long, default_value_t = 1, value_parser = int, allow_negative_numbers = true)]
        producers: i128,
        /// Worker threads (the pool's concurrency).
        #[arg(long, default_value_t = 32, value_parser = int, allow_negative_numbers = true)]
        workers: i128,
        /// Payload size in bytes.
        #[arg(long, default_value_t = 100, value_parser = int, allow_negative_numbers = true)]
        payload_bytes: i128,
        /// immediate or buffered (10 ms).
        #[arg(long, default_value = "immediate")]
        durability: String,
        /// Total enqueue rate in jobs/s for steady mode (default: as fast as possible).
        #[arg(long, value_parser = int, allow_negative_numbers = true)]
        rate: Option<i128>,
        /// Jobs the pool claims ahead of its workers (default: the pool's own default).
        #[arg(long, value_parser = int, allow_negative_numbers = true)]
        prefetch: Option<i128>,
        /// burn-down: start the clock only once the backlog is applied to sled (the
        /// applier is idle), and stop it without the final flush.
        #[arg(long)]
        settled: bool,
        /// Write the run as a picture: FILE.svg, or FILE.html (the picture and the
        /// summary table).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Run the same workload on sled and on this PostgreSQL database
        /// (postgres://user@host/db) and print them side by side.
        #[arg(long, value_name = "POSTGRES_URL")]
        compare: Option<String>,
        /// Soak: run maintenance with this retention for every kind, and print RSS and
        /// disk use every 10 s on stderr.
        #[arg(long, value_parser = int, allow_negative_numbers = true)]
        retention_secs: Option<i128>,
        /// PostgreSQL burn-down: drain the backlog with this many worker processes (each
        /// with --workers threads) instead of this one.
        #[arg(long, default_value_t = 1, value_parser = int, allow_negative_numbers = true)]
        processes: i128,
    },
    /// Salvage a database whose journal is damaged (open fails with CORRUPTION naming a
    /// journal segment): apply every readable entry, report what is dropped, empty the
    /// journal. Stop the process holding the database first.
    Repair {
        /// Only report what would be applied and dropped; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Pause or resume a queue.
    Queue {
        #[command(subcommand)]
        cmd: QueueCmd,
    },
}

/// Queue / type filters and the page size, shared by `list` and `dead list`.
#[derive(Args, Debug)]
pub(crate) struct PageFilter {
    /// Only this queue.
    #[arg(long, value_name = "QUEUE")]
    pub(crate) queue: Option<String>,
    /// Only this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) kind: Option<String>,
    /// Page size (default 100, at most 10000).
    #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "N")]
    pub(crate) limit: Option<i128>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum DeadCmd {
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
        #[arg(long)]
        all: bool,
        /// With --all: only this queue.
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
        /// With --all: only this type.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
    },
}

// Parsed once per process: the size of `Create` (wide integers for the numbers) is no cost.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum ScheduleCmd {
    /// Create a schedule (5-field crontab, 6 fields with seconds, or @daily-style).
    Create {
        /// Unique name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The cron expression.
        #[arg(long, value_name = "EXPR")]
        cron: String,
        /// Type of the jobs it enqueues.
        #[arg(long, value_name = "TYPE")]
        job_type: String,
        /// IANA time zone (default UTC).
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
        /// Payload of the jobs: inline JSON, `-` for stdin, or `@FILE`.
        #[arg(long, allow_hyphen_values = true, value_name = "PAYLOAD")]
        payload: Option<String>,
        /// maxRetries of the jobs.
        #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "N")]
        max_retries: Option<i128>,
        /// Priority of the jobs, higher first (default 0).
        #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "N")]
        priority: Option<i128>,
        /// Queue of the jobs.
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
        /// Free text.
        #[arg(long, value_name = "TEXT")]
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
        #[arg(long, value_name = "NAME")]
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
        #[arg(long, value_name = "NAME")]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum QueueCmd {
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
pub(crate) struct EnqueueArgs {
    /// Job type (the handler key), e.g. email.send.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) kind: String,
    /// Payload: inline JSON, `-` for stdin, or `@FILE`.
    #[arg(long, allow_hyphen_values = true, value_name = "PAYLOAD")]
    pub(crate) payload: Option<String>,
    /// Queue name (default "default").
    #[arg(long, value_name = "QUEUE")]
    pub(crate) queue: Option<String>,
    /// Priority, higher first (default 0).
    #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "N")]
    pub(crate) priority: Option<i128>,
    /// Delay in seconds before the job may run.
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    pub(crate) delay: Option<f64>,
    /// Run no earlier than this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub(crate) run_at: Option<String>,
    /// Maximum total attempts (default 3).
    #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "N")]
    pub(crate) max_retries: Option<i128>,
    /// Attempt time limit in milliseconds.
    #[arg(long, value_parser = int, allow_negative_numbers = true, value_name = "MS")]
    pub(crate) timeout_ms: Option<i128>,
    /// At most one pending or running job per key.
    #[arg(long, value_name = "KEY")]
    pub(crate) dedupe_key: Option<String>,
    /// Tenant id, carried through.
    #[arg(long, value_name = "ID")]
    pub(crate) tenant_id: Option<String>,
    /// User id, carried through.
    #[arg(long, value_name = "ID")]
    pub(crate) user_id: Option<String>,
    /// Trace id, carried through.
    #[arg(long, value_name = "ID")]
    pub(crate) trace_id: Option<String>,
    /// Metadata entry, KEY=VALUE (repeatable; each key once).
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub(crate) metadata: Vec<String>,
}

/// The HTTP server's flags (`serve`, `work`).
#[derive(Args, Debug, Clone)]
pub(crate) struct HttpArgs {
    /// Serve the HTTP API and dashboard on ADDR, e.g. 127.0.0.1:7420 (port 0 picks a free
    /// one; the first line on stdout names it).
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// Token HTTP clients must give (needed for a non-loopback ADDR); default: a random one,
    /// printed in the login URL.
    #[arg(
        long,
        env = "JOBSPOOL_HTTP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,
    /// Refuse every HTTP request that would change the queue (403).
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Also answer requests addressed to HOST (name or name:port; repeatable), e.g. a
    /// reverse proxy's name.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub(crate) allow_hosts: Vec<String>,
}
