//! The `jobspool` command line: arguments ([`args`]) become operations ([`jobspool::Op`]),
//! run directly or through the control socket of the process holding the database
//! ([`target`]), and printed as plain lines or `--json` ([`output`]).

mod args;
mod bench;
mod http;
mod input;
mod output;
mod reaper;
mod target;
mod work;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use jobspool::{
    control, payload_json, CancelInput, DeadListInput, Error, ErrorCode, JobIdInput, ListInput,
    NameInput, NoInput, Op, QueueInput, RedriveInput, ScheduleInput, ToggleInput,
};

use args::{Cli, Command, DeadCmd, QueueCmd, ScheduleCmd};
use input::{parse_id, read_payload};
use output::Out;
use target::{call, db_path, Target};

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                // --help and --version.
                return ExitCode::SUCCESS;
            }
            if json_requested() {
                Out::new(true).error(&Error::InvalidArgument(clap_message(&e)));
            }
            return ExitCode::from(2);
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

/// Whether `--json` is among the arguments (before a `--`), for arguments clap rejected.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// clap's explanation as one line: its first paragraph, without the `error: ` prefix and
/// the usage and help hints that follow.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or_default();
    let msg = first
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(first.trim())
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    format!("{msg} (see --help)")
}

fn run(cli: Cli, out: &Out) -> Result<(), Error> {
    match &cli.cmd {
        Command::Enqueue(a) => {
            let op = Op::Enqueue(input::enqueue_input(a)?);
            out.job(&call(&cli, op)?);
        }
        Command::Get { id } => {
            let op = Op::Get(JobIdInput {
                job_id: parse_id(id)?,
            });
            out.job(&call(&cli, op)?);
        }
        Command::Cancel { id } => {
            let job_id = parse_id(id)?;
            let op = Op::Cancel(CancelInput {
                job_id,
                cancelled_by: Some("cli".into()),
            });
            out.value(&call(&cli, op)?, &format!("cancelled {job_id}"));
        }
        Command::List {
            status,
            filter,
            after,
        } => {
            let op = Op::List(ListInput {
                status: status.clone(),
                queue: filter.queue.clone(),
                kind: filter.kind.clone(),
                limit: input::limit(filter.limit)?,
                after: after.as_deref().map(parse_id).transpose()?,
                ..ListInput::default()
            });
            out.jobs(&call(&cli, op)?);
        }
        Command::Stats => out.stats(&call(&cli, Op::Stats(NoInput {}))?),
        Command::Events { since, follow } => {
            let target = Target::connect(&cli, target::Create::Never)?;
            // Holding the database while following: serve its socket meanwhile, so other
            // commands (and their events) reach it.
            // (On PostgreSQL every command connects itself: no socket.)
            let _socket = match &target {
                Target::Direct(spool) if *follow && !target::is_postgres(spool.path()) => {
                    Some(control::serve(spool)?)
                }
                _ => None,
            };
            target::events(&target, input::since(*since)?, *follow, out)?;
            target.close()?;
        }
        Command::Schedule { cmd } => schedule(&cli, cmd, out)?,
        Command::Dead {
            cmd: DeadCmd::List { filter },
        } => {
            let op = Op::DeadList(DeadListInput {
                queue: filter.queue.clone(),
                kind: filter.kind.clone(),
                limit: input::limit(filter.limit)?,
            });
            out.jobs(&call(&cli, op)?);
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
            // (Checked here, not by clap: clap counts a flag's default as given, so its
            // `requires = "all"` let `redrive ID --queue x` through, ignoring --queue.)
            let input = match (id, all) {
                (Some(_), true) => {
                    return Err(Error::InvalidArgument(
                        "give a job id or --all to redrive, not both".into(),
                    ))
                }
                (Some(_), false) if queue.is_some() || kind.is_some() => {
                    return Err(Error::InvalidArgument(
                        "--queue and --type select the jobs of --all; with a job id they \
                         do not apply: drop them, or use --all instead of the id"
                            .into(),
                    ))
                }
                (Some(id), false) => RedriveInput {
                    job_id: Some(parse_id(id)?),
                    ..RedriveInput::default()
                },
                (None, true) => RedriveInput {
                    all: Some(true),
                    queue: queue.clone(),
                    kind: kind.clone(),
                    ..RedriveInput::default()
                },
                _ => {
                    return Err(Error::InvalidArgument(
                        "give a job id or --all to redrive".into(),
                    ))
                }
            };
            let v = call(&cli, Op::DeadRedrive(input))?;
            let n = v["redriven"].as_u64().unwrap_or_default();
            out.value(&v, &format!("redrove {n} job(s)"));
        }
        Command::Prune => {
            let v = call(&cli, Op::Prune(NoInput {}))?;
            let n = v["pruned"].as_u64().unwrap_or_default();
            out.value(&v, &format!("pruned {n} job(s)"));
        }
        Command::Work {
            handlers,
            queues,
            concurrency,
            lease_secs,
            grace_secs,
            stop_when_empty,
            http,
        } => {
            let handlers = work::parse_handlers(handlers)?;
            work::check_queues(queues)?;
            let secs =
                |flag, v, min| input::in_range(flag, v, min..=86_400).map(Duration::from_secs);
            let db = db_path(&cli)?;
            let opts = work::WorkOptions {
                db: db.clone(),
                handlers,
                queues: queues.clone(),
                concurrency: input::in_range("--concurrency", *concurrency, 1..=4096)?,
                lease: secs("--lease-secs", *lease_secs, 1)?,
                grace: secs("--grace-secs", *grace_secs, 0)?,
                stop_when_empty: *stop_when_empty,
            };
            let (spool, _socket) = open_serving(&cli, &db, Serving::Work)?;
            let _http = http::start(&spool, http, out)?;
            work::run(&spool, opts)?;
            spool.close()?;
        }
        Command::Serve { http } => {
            if http.http.is_none() {
                return Err(Error::InvalidArgument(
                    "serve needs --http ADDR, e.g. --http 127.0.0.1:7420".into(),
                ));
            }
            let db = db_path(&cli)?;
            let (spool, _socket) = open_serving(&cli, &db, Serving::Serve)?;
            let _http = http::start(&spool, http, out)?;
            http::wait_for_signal()?;
            spool.close()?;
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
            settled,
            report,
            compare,
            retention_secs,
            processes,
        } => {
            return bench::run(&bench::BenchOptions {
                db: cli.db.clone(),
                mode: mode.clone(),
                jobs: input::in_range("--jobs", *jobs, 1..=i128::from(u64::MAX))?,
                producers: input::in_range("--producers", *producers, 1..=4096)?,
                workers: input::in_range("--workers", *workers, 1..=4096)?,
                payload_bytes: input::in_range(
                    "--payload-bytes",
                    *payload_bytes,
                    0..=jobspool::limits::DEFAULT_PAYLOAD_LIMIT as i128,
                )?,
                durability: durability.clone(),
                rate: input::opt_in_range("--rate", *rate, 1..=i128::from(u64::MAX))?,
                prefetch: input::opt_in_range("--prefetch", *prefetch, 0..=1_000_000)?,
                settled: *settled,
                report: report.clone(),
                compare: compare.clone(),
                retention_secs: input::opt_in_range(
                    "--retention-secs",
                    *retention_secs,
                    0..=i128::from(u64::MAX),
                )?,
                schema: cli.schema.clone(),
                processes: input::in_range("--processes", *processes, 1..=64)?,
                json: cli.json,
            })
        }
        Command::Repair { dry_run } => {
            let db = db_path(&cli)?;
            let report = jobspool::repair(&db, *dry_run)?;
            // (Plain fields: serializing cannot fail.)
            let doc = output::Doc::from_value(serde_json::to_value(&report).unwrap_or_default());
            out.value(&doc, &repair_text(&report));
        }
        Command::Queue { cmd } => {
            let (op, queue, done) = match cmd {
                QueueCmd::Pause { queue } => (Op::QueuePause as fn(_) -> _, queue, "paused"),
                QueueCmd::Resume { queue } => (Op::QueueResume as fn(_) -> _, queue, "resumed"),
            };
            let v = call(
                &cli,
                op(QueueInput {
                    queue: queue.clone(),
                }),
            )?;
            out.value(&v, &format!("queue {queue} {done}"));
        }
    }
    Ok(())
}

/// `repair`'s report as lines.
fn repair_text(r: &jobspool::RepairReport) -> String {
    let (applied, dropped) = if r.dry_run {
        ("would apply", "would drop")
    } else {
        ("applied", "dropped")
    };
    let mut s = format!("{applied} {} journal entr(ies)", r.applied);
    if r.dropped.is_empty() {
        s.push_str("; the journal is intact, nothing dropped");
    }
    for d in &r.dropped {
        let lsns = match d.lsns {
            Some((a, b)) if a == b => format!("entry {a}"),
            Some((a, b)) => format!("entries {a} to {b}"),
            None => "no whole entry".into(),
        };
        s.push_str(&format!(
            "\n{dropped} {lsns}: {} bytes {}..{} ({})",
            d.segment.display(),
            d.offset,
            d.end,
            d.detail
        ));
    }
    if r.dry_run {
        s.push_str("\ndry run: nothing was changed");
    }
    s
}

/// Opens the database for a long-running command (`work`, `serve`), with the control socket
/// that lets every other command reach it meanwhile (on PostgreSQL they connect to it
/// themselves: no socket). `command` names the command for the error when another process
/// holds the database.
fn open_serving(
    cli: &Cli,
    db: &std::path::Path,
    command: Serving,
) -> Result<(jobspool::Spool, Option<control::ControlSocket>), Error> {
    let spool = target::builder(cli)
        .open(db)
        .map_err(|e| held_by_a_server(e, db, command))?;
    let socket = if target::is_postgres(db) {
        None
    } else {
        Some(control::serve(&spool)?)
    };
    Ok((spool, socket))
}

/// The long-running commands that need the database itself.
#[derive(Clone, Copy)]
enum Serving {
    Work,
    Serve,
}

/// `work` and `serve` need the database itself: when its holder serves a reachable socket,
/// say so (instead of the generic DATABASE_IN_USE, which says the holder serves none), and
/// what the command run can do about it.
fn held_by_a_server(e: Error, db: &std::path::Path, command: Serving) -> Error {
    if !matches!(e, Error::DatabaseInUse { .. }) || control::Client::connect_db(db).is_err() {
        return e;
    }
    let needs = match command {
        Serving::Work => {
            "`work` needs the database itself and only one `work` can run per database: stop \
             the other holder, or give its `work` the handlers you need"
        }
        Serving::Serve => {
            "`serve` needs the database itself: stop the other holder, or, when it is a \
             `work`, serve the HTTP API from that `work` (it takes the same --http flags)"
        }
    };
    Error::Remote {
        code: ErrorCode::DatabaseInUse,
        message: format!(
            "database at {} is held by another process (`jobspool work`, `jobspool events \
             --follow`, or an application embedding jobspool) that serves its control \
             socket; other commands reach the database through it, but {needs}",
            db.display()
        ),
    }
}

fn schedule(cli: &Cli, cmd: &ScheduleCmd, out: &Out) -> Result<(), Error> {
    let op = match cmd {
        ScheduleCmd::Create {
            name,
            cron,
            job_type,
            timezone,
            payload,
            max_retries,
            priority,
            queue,
            description,
            disabled,
            replace,
        } => Op::ScheduleCreate({
            input::names(&[
                ("--name", Some(name)),
                ("--job-type", Some(job_type)),
                ("--queue", queue.as_ref()),
            ])?;
            ScheduleInput {
                name: name.clone(),
                cron_expression: cron.clone(),
                job_type: job_type.clone(),
                description: description.clone(),
                timezone: timezone.clone(),
                payload: payload_json(&read_payload(payload.as_deref())?),
                max_retries: input::max_retries(*max_retries)?,
                enabled: Some(!disabled),
                queue: queue.clone(),
                priority: input::priority(*priority)?,
                replace: Some(*replace),
            }
        }),
        ScheduleCmd::Toggle { name, enabled } => Op::ScheduleToggle(ToggleInput {
            name: name.clone(),
            enabled: *enabled,
        }),
        ScheduleCmd::List => Op::ScheduleList(NoInput {}),
        ScheduleCmd::Delete { name } => Op::ScheduleDelete(NameInput { name: name.clone() }),
    };
    let v = call(cli, op)?;
    match cmd {
        ScheduleCmd::List => out.schedules(&v),
        ScheduleCmd::Delete { name } => out.value(&v, &format!("deleted schedule {name}")),
        _ => out.schedule(&v),
    }
    Ok(())
}
