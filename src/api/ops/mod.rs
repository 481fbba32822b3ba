//! The operations of the contract as one type, [`Op`]: every door (the control socket, the
//! CLI, an HTTP server) parses its request into an `Op`, runs it on a [`Spool`] and prints
//! the [`Output`]. An op's name, its input fields and its output shape are written once,
//! here, so the doors cannot drift apart.
//!
//! Inputs are serde-derived (camelCase, unknown fields rejected); outputs serialize through
//! the views of [`crate::json`]. Input is only parsed here; every rule about its values
//! (limits, names, ranges) is checked once, by the spool, for every door alike.

mod input;
mod output;
mod payload;

use serde_json::Value;

use crate::api::spool::Spool;
use crate::model::error::{Error, Result};
use crate::model::job::JobStatus;
use crate::model::limits::{DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE};
use crate::model::types::ListQuery;

use input::{page_limit, Input};
pub use input::{
    BatchInput, CancelInput, DeadListInput, EnqueueInput, EventsInput, JobIdInput, ListInput,
    NameInput, NoInput, QueueInput, RedriveInput, ScheduleInput, ToggleInput,
};
pub use output::Output;
pub use payload::{payload_json, Payload};

/// Declares [`Op`] from one list of (variant, wire name, input type), so the name table,
/// the parser and the encoder cannot disagree.
macro_rules! ops {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ($input:ty), )*) => {
        /// One operation with its input, as every door receives it.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[$doc])* $variant($input), )*
        }

        impl Op {
            /// Every op's wire name, in the order of the reference table.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The op's wire name, e.g. `jobs.enqueue`.
            #[must_use]
            pub fn name(&self) -> &'static str {
                match self {
                    $( Op::$variant(_) => $name, )*
                }
            }

            /// Parses the op named `name` with its JSON `input` (`null` = no fields).
            ///
            /// # Errors
            /// `INVALID_ARGUMENT` for an unknown op, an input that is not an object, an
            /// unknown field or a field of the wrong type.
            pub fn from_json(name: &str, input: Value) -> Result<Op> {
                match name {
                    $( $name => Ok(Op::$variant(<$input as Input>::parse($name, input)?)), )*
                    _ => Err(Error::invalid(format!(
                        "unknown op {name:?}; known ops: {}",
                        Op::NAMES.join(", ")
                    ))),
                }
            }

            /// The op's input as JSON (what [`Op::from_json`] reads back).
            #[must_use]
            pub fn input_json(&self) -> Value {
                match self {
                    $( Op::$variant(input) => serde_json::to_value(input).unwrap_or(Value::Null), )*
                }
            }
        }
    };
}

ops! {
    /// `jobs.enqueue`: one job. Output: the job.
    Enqueue = "jobs.enqueue" (EnqueueInput),
    /// `jobs.enqueue.batch`: many jobs, all or nothing. Output: `{jobs}`.
    EnqueueBatch = "jobs.enqueue.batch" (BatchInput),
    /// `jobs.cancel`: cancel a pending job. Output: `{success: true}`.
    Cancel = "jobs.cancel" (CancelInput),
    /// `jobs.get`: one job. Output: the job.
    Get = "jobs.get" (JobIdInput),
    /// `jobs.stats`: counts by status, global and per queue.
    Stats = "jobs.stats" (NoInput),
    /// `jobs.list`: one page of jobs. Output: `{jobs}`.
    List = "jobs.list" (ListInput),
    /// `jobs.dead.list`: one page of `dead_letter` and `failed` jobs. Output: `{jobs}`.
    DeadList = "jobs.dead.list" (DeadListInput),
    /// `jobs.dead.redrive`: back to pending. Output: `{redriven, jobIds}`.
    DeadRedrive = "jobs.dead.redrive" (RedriveInput),
    /// `jobs.schedule.create`. Output: the schedule.
    ScheduleCreate = "jobs.schedule.create" (ScheduleInput),
    /// `jobs.schedule.toggle`. Output: the schedule.
    ScheduleToggle = "jobs.schedule.toggle" (ToggleInput),
    /// `jobs.schedule.list`. Output: `{schedules}`.
    ScheduleList = "jobs.schedule.list" (NoInput),
    /// `jobs.schedule.delete`. Output: `{success: true}`.
    ScheduleDelete = "jobs.schedule.delete" (NameInput),
    /// `jobs.queue.pause`. Output: `{queue, paused}`.
    QueuePause = "jobs.queue.pause" (QueueInput),
    /// `jobs.queue.resume`. Output: `{queue, paused}`.
    QueueResume = "jobs.queue.resume" (QueueInput),
    /// `jobs.events`: events after a sequence number. Output: `{events}`.
    Events = "jobs.events" (EventsInput),
    /// `jobs.prune`: remove what retention allows. Output: `{pruned}`.
    Prune = "jobs.prune" (NoInput),
    /// `jobs.ping`: is anyone there. Output: `{pong: true, lastSeq}`.
    Ping = "jobs.ping" (NoInput),
}

impl Op {
    /// Runs the op on `spool`.
    ///
    /// ```
    /// use jobspool::{Op, Spool};
    /// use serde_json::json;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let spool = Spool::open(dir.path().join("q"))?;
    /// let op = Op::from_json("jobs.enqueue", json!({"type": "t", "payload": [1, 2]}))?;
    /// let job = op.run(&spool)?.to_json();
    /// let same = Op::from_json("jobs.get", json!({"jobId": job["id"]}))?.run(&spool)?;
    /// assert_eq!(same.to_json()["payload"], json!([1, 2]));
    /// # Ok::<(), jobspool::Error>(())
    /// ```
    ///
    /// # Errors
    /// What the operation returns; `INVALID_ARGUMENT` for input the spool rejects.
    pub fn run(self, spool: &Spool) -> Result<Output> {
        let op = self.name();
        Ok(match self {
            Op::Enqueue(input) => {
                Output::Enqueued(Box::new(spool.enqueue(input.into_new_job(op)?)?))
            }
            Op::EnqueueBatch(input) => {
                let jobs = input
                    .jobs
                    .into_iter()
                    .enumerate()
                    .map(|(i, j)| {
                        j.into_new_job(op)
                            .map_err(|e| Error::invalid(format!("jobs[{i}]: {}", e.message())))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Output::EnqueuedBatch(spool.enqueue_batch(jobs)?)
            }
            Op::Cancel(CancelInput {
                job_id,
                cancelled_by,
            }) => {
                match cancelled_by {
                    Some(by) => spool.cancel_by(job_id, by)?,
                    None => spool.cancel(job_id)?,
                };
                Output::Success
            }
            Op::Get(JobIdInput { job_id }) => Output::Job(Box::new(spool.get(job_id)?)),
            Op::Stats(NoInput {}) => Output::Stats(spool.stats()?),
            Op::List(input) => {
                let status = input.status.map(|s| s.parse::<JobStatus>()).transpose()?;
                let q = ListQuery {
                    status,
                    queue: input.queue,
                    kind: input.kind,
                    tenant_id: input.tenant_id,
                    dedupe_key: input.dedupe_key,
                    after: input.after,
                    // The spool checks the range, as for any caller.
                    limit: input
                        .limit
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                };
                Output::Jobs(spool.list(&q)?)
            }
            Op::DeadList(input) => {
                let q = ListQuery {
                    queue: input.queue,
                    kind: input.kind,
                    // The spool checks the range, as for any caller.
                    limit: input
                        .limit
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                    ..ListQuery::default()
                };
                Output::Jobs(spool.dead_letters(&q)?)
            }
            Op::DeadRedrive(input) => {
                let all = input.all.unwrap_or(false);
                let redriven = match (input.job_id, all) {
                    (Some(id), false) if input.queue.is_none() && input.kind.is_none() => {
                        vec![spool.redrive(id)?]
                    }
                    (None, true) => spool.redrive_all(input.queue, input.kind)?,
                    _ => {
                        return Err(Error::invalid(format!(
                            "{op}: give either jobId, or all: true with optional queue and type"
                        )))
                    }
                };
                Output::Redriven(redriven)
            }
            Op::ScheduleCreate(input) => {
                Output::Schedule(spool.create_schedule(input.into_new_schedule(op)?)?)
            }
            Op::ScheduleToggle(ToggleInput { name, enabled }) => {
                Output::Schedule(spool.toggle_schedule(&name, enabled)?)
            }
            Op::ScheduleList(NoInput {}) => Output::Schedules(spool.list_schedules()?),
            Op::ScheduleDelete(NameInput { name }) => {
                spool.delete_schedule(&name)?;
                Output::Success
            }
            Op::QueuePause(QueueInput { queue }) => {
                spool.pause_queue(&queue)?;
                Output::Queue {
                    queue,
                    paused: true,
                }
            }
            Op::QueueResume(QueueInput { queue }) => {
                spool.resume_queue(&queue)?;
                Output::Queue {
                    queue,
                    paused: false,
                }
            }
            Op::Events(input) => {
                let limit =
                    page_limit(op, input.limit, MAX_EVENTS_PAGE)?.unwrap_or(DEFAULT_EVENTS_PAGE);
                Output::Events(spool.events_since(input.since.unwrap_or(0), limit)?)
            }
            Op::Prune(NoInput {}) => Output::Pruned(spool.prune()?),
            Op::Ping(NoInput {}) => Output::Pong {
                last_seq: spool.last_seq(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::job::JobId;
    use serde_json::json;

    #[test]
    fn every_op_round_trips_through_its_json() {
        let id: JobId = "01936b5e-4d2a-7c3e-9f00-000000000001".parse().unwrap();
        let ops = [
            Op::Enqueue(EnqueueInput {
                kind: "t".into(),
                payload: payload_json(b"\xff"),
                delay_seconds: Some(1.5),
                max_retries: Some(2),
                metadata: Some([("k".to_string(), "v".to_string())].into()),
                ..EnqueueInput::default()
            }),
            Op::EnqueueBatch(BatchInput {
                jobs: vec![EnqueueInput {
                    kind: "a".into(),
                    ..EnqueueInput::default()
                }],
            }),
            Op::Cancel(CancelInput {
                job_id: id,
                cancelled_by: Some("me".into()),
            }),
            Op::Get(JobIdInput { job_id: id }),
            Op::Stats(NoInput {}),
            Op::List(ListInput {
                status: Some("pending".into()),
                after: Some(id),
                limit: Some(5),
                tenant_id: Some("acme".into()),
                dedupe_key: Some("k".into()),
                ..ListInput::default()
            }),
            Op::DeadRedrive(RedriveInput {
                all: Some(true),
                kind: Some("t".into()),
                ..RedriveInput::default()
            }),
            Op::ScheduleToggle(ToggleInput {
                name: "n".into(),
                enabled: false,
            }),
            Op::Events(EventsInput {
                since: Some(3),
                limit: None,
            }),
        ];
        for op in ops {
            let back = Op::from_json(op.name(), op.input_json()).unwrap();
            assert_eq!(back, op);
        }
    }

    #[test]
    fn list_filters_use_the_contract_field_names() {
        let op = Op::from_json("jobs.list", json!({"tenantId": "a", "dedupeKey": "d"})).unwrap();
        let Op::List(input) = op else {
            panic!("not a list: {op:?}");
        };
        assert_eq!(
            (input.tenant_id.as_deref(), input.dedupe_key.as_deref()),
            (Some("a"), Some("d"))
        );
    }

    #[test]
    fn names_are_unique_and_unknown_ops_are_rejected() {
        let mut names = Op::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Op::NAMES.len());
        let e = Op::from_json("jobs.nope", Value::Null).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.message().contains("jobs.enqueue"), "{e}");
    }

    #[test]
    fn bad_input_is_invalid_argument_naming_the_op() {
        for (op, input) in [
            ("jobs.enqueue", json!({"type": "t", "typo": 1})),
            ("jobs.enqueue", json!({"type": "t", "maxRetries": -2})),
            ("jobs.enqueue", json!({"type": "t", "priority": 1.5})),
            ("jobs.enqueue", json!([1])),
            ("jobs.get", json!({})),
            (
                "jobs.enqueue.batch",
                json!({"jobs": [{"type": "a"}, {"tipe": "b"}]}),
            ),
        ] {
            let e = Op::from_json(op, input).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{op}: {e}");
            assert!(e.message().starts_with(op), "{e}");
        }
        let e =
            Op::from_json("jobs.enqueue.batch", json!({"jobs": [{"type": "a"}, {}]})).unwrap_err();
        assert!(e.message().contains("jobs[1]"), "{e}");
    }
}
