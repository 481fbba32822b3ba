//! What operations return, and how each output serializes to its contract JSON (through the
//! views of [`crate::json`]).

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::api::json::{EventView, JobView, ScheduleView, StatsView};
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId};
use crate::model::schedule::ScheduledJob;
use crate::model::types::{Enqueued, Stats};

/// What an op returns. Serializes to the op's contract JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// A job (`jobs.get`).
    Job(Box<Job>),
    /// The job an enqueue made or found (`jobs.enqueue`): the job, plus
    /// `"deduplicated": true` when a live job held the dedupe key and nothing was created.
    Enqueued(Box<Enqueued>),
    /// `{jobs}`, each as in `jobs.enqueue` (`jobs.enqueue.batch`).
    EnqueuedBatch(Vec<Enqueued>),
    /// `{jobs}` (`jobs.enqueue.batch`, `jobs.list`, `jobs.dead.list`).
    Jobs(Vec<Job>),
    /// `{success: true}` (`jobs.cancel`, `jobs.schedule.delete`).
    Success,
    /// Counts (`jobs.stats`).
    Stats(Stats),
    /// `{redriven, jobIds}` (`jobs.dead.redrive`).
    Redriven(Vec<Job>),
    /// A schedule (`jobs.schedule.create`, `jobs.schedule.toggle`).
    Schedule(ScheduledJob),
    /// `{schedules}` (`jobs.schedule.list`).
    Schedules(Vec<ScheduledJob>),
    /// `{queue, paused}` (`jobs.queue.pause`, `jobs.queue.resume`).
    Queue {
        /// The queue.
        queue: String,
        /// Whether it is paused now.
        paused: bool,
    },
    /// `{events}` (`jobs.events`).
    Events(Vec<EventRecord>),
    /// `{pruned}` (`jobs.prune`).
    Pruned(u64),
    /// `{pong: true, lastSeq}` (`jobs.ping`).
    Pong {
        /// The newest event's sequence number.
        last_seq: u64,
    },
}

impl Output {
    /// The contract JSON of this output.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Jobs<'a> {
            jobs: Vec<JobView<'a>>,
        }
        #[derive(Serialize)]
        struct EnqueuedView<'a> {
            #[serde(flatten)]
            job: JobView<'a>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            deduplicated: bool,
        }
        impl<'a> From<&'a Enqueued> for EnqueuedView<'a> {
            fn from(e: &'a Enqueued) -> Self {
                EnqueuedView {
                    job: JobView::from(&e.job),
                    deduplicated: e.deduplicated,
                }
            }
        }
        #[derive(Serialize)]
        struct Batch<'a> {
            jobs: Vec<EnqueuedView<'a>>,
        }
        #[derive(Serialize)]
        struct Success {
            success: bool,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Redriven {
            redriven: usize,
            job_ids: Vec<JobId>,
        }
        #[derive(Serialize)]
        struct Schedules<'a> {
            schedules: Vec<ScheduleView<'a>>,
        }
        #[derive(Serialize)]
        struct Queue<'a> {
            queue: &'a str,
            paused: bool,
        }
        #[derive(Serialize)]
        struct Events<'a> {
            events: Vec<EventView<'a>>,
        }
        #[derive(Serialize)]
        struct Pruned {
            pruned: u64,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Pong {
            pong: bool,
            last_seq: u64,
        }
        fn jobs(list: &[Job]) -> Vec<JobView<'_>> {
            list.iter().map(JobView::from).collect()
        }
        match self {
            Output::Job(j) => JobView::from(j.as_ref()).serialize(s),
            Output::Enqueued(e) => EnqueuedView::from(e.as_ref()).serialize(s),
            Output::EnqueuedBatch(list) => Batch {
                jobs: list.iter().map(EnqueuedView::from).collect(),
            }
            .serialize(s),
            Output::Jobs(list) => Jobs { jobs: jobs(list) }.serialize(s),
            Output::Success => Success { success: true }.serialize(s),
            Output::Stats(st) => StatsView::from(st).serialize(s),
            Output::Redriven(list) => Redriven {
                redriven: list.len(),
                job_ids: list.iter().map(|j| j.id).collect(),
            }
            .serialize(s),
            Output::Schedule(sc) => ScheduleView::from(sc).serialize(s),
            Output::Schedules(list) => Schedules {
                schedules: list.iter().map(ScheduleView::from).collect(),
            }
            .serialize(s),
            Output::Queue { queue, paused } => Queue {
                queue,
                paused: *paused,
            }
            .serialize(s),
            Output::Events(list) => Events {
                events: list.iter().map(EventView::from).collect(),
            }
            .serialize(s),
            Output::Pruned(n) => Pruned { pruned: *n }.serialize(s),
            Output::Pong { last_seq } => Pong {
                pong: true,
                last_seq: *last_seq,
            }
            .serialize(s),
        }
    }
}
