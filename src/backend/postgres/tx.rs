//! One operation's transaction: the jobs it read (locked, in id order), the jobs it changed,
//! and, written at the end, the events it appends and the count moves it makes, staged
//! together for the sequencer (see `notify`), which numbers the events and applies the
//! counts. No transaction locks a row that every transaction writes (a count or counter
//! row): job rows are locked in id order, so two transactions never wait on each other in
//! a cycle over them.

use std::collections::BTreeMap;

use postgres::Row;

use super::conn::Tx;

use super::conn::Pg;
use super::Shared;
use crate::backend::codec::{self, keys};
use crate::backend::rules::Change;
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Job, JobId, JobStatus};

/// The `state` column: 0 ready, 1 delayed (pending with a run time in the future when it was
/// written), 2 running, 3 completed, 4 failed, 5 cancelled, 6 dead letter.
pub(crate) fn state_code(j: &Job, now: i64) -> i16 {
    match j.status {
        JobStatus::Pending if j.due_ms() > now => 1,
        JobStatus::Pending => 0,
        JobStatus::Running => 2,
        JobStatus::Completed => 3,
        JobStatus::Failed => 4,
        JobStatus::Cancelled => 5,
        JobStatus::DeadLetter => 6,
    }
}

/// The `state` codes of a status.
pub(crate) fn codes_of(status: JobStatus) -> &'static [i16] {
    match status {
        JobStatus::Pending => &[0, 1],
        JobStatus::Running => &[2],
        JobStatus::Completed => &[3],
        JobStatus::Failed => &[4],
        JobStatus::Cancelled => &[5],
        JobStatus::DeadLetter => &[6],
    }
}

/// A job from a row holding `record` (and `payload` when selected) columns.
pub(crate) fn job_from_row(row: &Row, with_payload: bool) -> Result<Job> {
    let id: uuid::Uuid = row.get("id");
    let id = JobId::from_bytes(*id.as_bytes());
    let record: &[u8] = row.get("record");
    let mut job: Job = codec::decode("jobs", &keys::job(&id), record)?;
    if with_payload {
        job.payload = row.get::<_, Vec<u8>>("payload");
    }
    Ok(job)
}

/// What a committed transaction leaves for the observer.
#[derive(Default)]
pub(crate) struct Done {
    /// The events it staged (to be numbered and delivered, see `notify`).
    pub staged: Option<Staged>,
    pub wake: bool,
}

/// A transaction's staged events and the batch number they were staged under: the
/// sequencer delivers them from here rather than read their JSON back.
pub(crate) struct Staged {
    pub batch: i64,
    pub events: Vec<Event>,
}

impl Staged {
    /// From the rows [`closing_statement`] returns (each staged row's batch).
    pub fn of(rows: &[Row], events: Vec<Event>) -> Option<Staged> {
        let batch: i64 = rows.first()?.get(0);
        Some(Staged { batch, events })
    }
}

/// See the module docs.
pub(crate) struct Ctx<'a, 'b> {
    pub t: &'a mut Tx<'b>,
    pub sh: &'a Shared,
    pub now: i64,
    events: Vec<Event>,
    updates: BTreeMap<JobId, Job>,
    deltas: BTreeMap<(String, i16), i64>,
    pub wake: bool,
}

impl<'a, 'b> Ctx<'a, 'b> {
    pub fn new(t: &'a mut Tx<'b>, sh: &'a Shared) -> Self {
        let now = sh.cfg.clock.now_ms();
        Ctx {
            t,
            sh,
            now,
            events: Vec::new(),
            updates: BTreeMap::new(),
            deltas: BTreeMap::new(),
            wake: false,
        }
    }

    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        to_datetime(self.now)
    }

    pub fn emit(&mut self, e: Event) {
        self.events.push(e);
    }

    /// Moves one job between (queue, state) counters.
    pub fn count(&mut self, queue: &str, state: i16, by: i64) {
        *self.deltas.entry((queue.to_owned(), state)).or_insert(0) += by;
    }

    /// Jobs by id, locked for this transaction (`FOR UPDATE`), in id order (so two
    /// transactions lock in the same order); each with its `state` code. Missing ids are
    /// left out.
    pub fn load_locked(&mut self, ids: &[JobId], with_payload: bool) -> Result<Vec<(i16, Job)>> {
        let uuids: Vec<uuid::Uuid> = ids.iter().map(JobId::uuid).collect();
        let cols = if with_payload {
            "id, state, record, payload"
        } else {
            "id, state, record"
        };
        let rows = self
            .t
            .query(
                &self.sh.sql(&format!(
                    "SELECT {cols} FROM @.job WHERE id = ANY($1) ORDER BY id FOR UPDATE"
                )),
                &[&uuids],
            )
            .pg("reading jobs")?;
        rows.iter()
            .map(|r| Ok((r.get::<_, i16>("state"), job_from_row(r, with_payload)?)))
            .collect()
    }

    /// One job, locked; `JOB_NOT_FOUND` when there is none.
    pub fn must_locked(&mut self, id: JobId, with_payload: bool) -> Result<(i16, Job)> {
        self.load_locked(&[id], with_payload)?
            .pop()
            .ok_or_else(|| Error::not_found(id))
    }

    /// Stages `job` (whose row holds state `old`) to be written at the end.
    pub fn put(&mut self, old: i16, mut job: Job) {
        let new = state_code(&job, self.now);
        if new != old {
            self.count(&job.queue, old, -1);
            self.count(&job.queue, new, 1);
        }
        if new == 0 && old != 0 {
            self.wake = true;
        }
        job.payload = Vec::new();
        self.updates.insert(job.id, job);
    }

    /// Stages a rule's [`Change`] of a job whose row holds state `old`: its events in order,
    /// then the new record (see [`Ctx::put`]); returns the new record.
    pub fn stage(&mut self, old: i16, change: Change) -> Job {
        self.events.extend(change.events);
        self.put(old, change.job.clone());
        change.job
    }

    /// Writes the staged jobs, counters and events; returns what the observer is told after
    /// the commit.
    pub fn finish(self) -> Result<Done> {
        let Ctx {
            t,
            sh,
            now,
            events,
            updates,
            deltas,
            wake,
        } = self;
        if !updates.is_empty() {
            write_jobs(t, sh, now, updates.into_values())?;
        }
        let counts = CountParams::new(&deltas);
        let mut done = Done { staged: None, wake };
        if events.is_empty() && counts.is_empty() {
            return Ok(done);
        }
        let appended = Appended::new(&events, now)?;
        let rows = t
            .query(
                &closing_statement(sh, ""),
                &closing_params(&counts, &appended),
            )
            .pg("appending events")?;
        done.staged = Staged::of(&rows, events);
        Ok(done)
    }
}

/// Count deltas as statement parameters ($1-$3 of [`closing_statement`]), in (queue, state)
/// order, zero deltas left out.
pub(super) struct CountParams<'a> {
    pub queues: Vec<&'a str>,
    pub states: Vec<i16>,
    pub ns: Vec<i64>,
}

impl<'a> CountParams<'a> {
    pub fn new(deltas: &'a BTreeMap<(String, i16), i64>) -> Self {
        let mut p = CountParams {
            queues: Vec::new(),
            states: Vec::new(),
            ns: Vec::new(),
        };
        for ((q, st), n) in deltas.iter().filter(|(_, n)| **n != 0) {
            p.queues.push(q);
            p.states.push(*st);
            p.ns.push(*n);
        }
        p
    }

    fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }
}

/// Most events in one row of the event log (a transaction's events take one row, or more
/// when it has more than this many).
pub(super) const EVENTS_PER_ROW: usize = 512;

/// The events to append as statement parameters ($4-$7 of [`closing_statement`]): their
/// count, the time, and the JSON arrays of at most [`EVENTS_PER_ROW`] events with their
/// lengths.
pub(super) struct Appended {
    k: i64,
    now: i64,
    rows: Vec<serde_json::Value>,
    lens: Vec<i32>,
}

impl Appended {
    pub fn new(events: &[Event], now: i64) -> Result<Self> {
        let mut rows = Vec::with_capacity(events.len().div_ceil(EVENTS_PER_ROW));
        let mut lens = Vec::with_capacity(rows.capacity());
        for chunk in events.chunks(EVENTS_PER_ROW) {
            let mut row = Vec::with_capacity(chunk.len());
            for e in chunk {
                row.push(serde_json::to_value(e).map_err(|e| Error::Storage {
                    context: format!("encoding an event: {e}"),
                    source: None,
                })?);
            }
            lens.push(i32::try_from(row.len()).unwrap_or(i32::MAX));
            rows.push(serde_json::Value::Array(row));
        }
        if rows.is_empty() {
            // A row of no events: it carries the counts.
            rows.push(serde_json::Value::Array(Vec::new()));
            lens.push(0);
        }
        Ok(Appended {
            k: i64::try_from(events.len()).unwrap_or(i64::MAX),
            now,
            rows,
            lens,
        })
    }
}

/// $1-$7 of [`closing_statement`]: the counts, then the events.
pub(super) fn closing_params<'a>(
    c: &'a CountParams<'_>,
    a: &'a Appended,
) -> [&'a (dyn postgres::types::ToSql + Sync); 7] {
    [&c.queues, &c.states, &c.ns, &a.k, &a.now, &a.rows, &a.lens]
}

/// The statement that ends every transaction that appends events or moves counts: `before`
/// (more CTEs, each ending in a comma, with parameters from $8 on), then the staged rows, for
/// the sequencer to number (see `notify`): the events as rows of JSON arrays under one batch
/// number ($4 how many events, $5 the time, $6 the arrays, $7 their lengths; one row of no
/// events when there are none), the count deltas ($1-$3) on the first row. It returns the
/// batch number, once a staged row.
///
/// No row is locked by every transaction, and nothing is notified: `NOTIFY` takes a
/// database-wide lock that a transaction holds through its commit's WAL flush, which would
/// serialize the commits.
pub(super) fn closing_statement(sh: &Shared, before: &str) -> String {
    sh.sql(&format!(
        "WITH {before} \
              b AS (SELECT nextval('@.event_batch') AS batch \
                    WHERE $4::int8 > 0 OR cardinality($1::text[]) > 0) \
         INSERT INTO @.event_staged (batch, part, at_ms, n, events, \
                                     count_queues, count_states, count_deltas) \
         SELECT b.batch, u.part, $5, u.n, u.events, \
                CASE WHEN u.part = 1 THEN $1::text[] END, \
                CASE WHEN u.part = 1 THEN $2::int2[] END, \
                CASE WHEN u.part = 1 THEN $3::int8[] END \
         FROM b, unnest($6::json[], $7::int4[]) WITH ORDINALITY AS u(events, n, part) \
         RETURNING batch"
    ))
}

/// Inserts nothing: rewrites the rows of `jobs` (their index columns and record).
fn write_jobs(
    t: &mut Tx<'_>,
    sh: &Shared,
    now: i64,
    jobs: impl Iterator<Item = Job>,
) -> Result<()> {
    let mut ids = Vec::new();
    let mut states = Vec::new();
    let mut prios = Vec::new();
    let mut run_ats = Vec::new();
    let mut tokens: Vec<Option<i64>> = Vec::new();
    let mut owners: Vec<Option<i64>> = Vec::new();
    let mut expires: Vec<Option<i64>> = Vec::new();
    let mut finished: Vec<Option<i64>> = Vec::new();
    let mut records = Vec::new();
    for j in jobs {
        ids.push(j.id.uuid());
        let st = state_code(&j, now);
        states.push(st);
        prios.push(j.priority);
        run_ats.push(j.due_ms());
        let lease = j.lease.as_ref().filter(|_| st == 2);
        tokens.push(lease.map(|l| i64::try_from(l.token).unwrap_or(i64::MAX)));
        owners.push(lease.and(sh.owner));
        expires.push(lease.map(|l| l.expires_ms));
        finished.push((st >= 3).then(|| j.completed_at.unwrap_or(j.updated_at).timestamp_millis()));
        records.push(codec::encode(&j)?);
    }
    // `j.id = ANY($1)` gives the planner the primary key to look the rows up by: with
    // the join alone it may hash the whole table (a sequential scan per batch; 255 ms
    // instead of 35-60 ms for 2,048 rows of a 100,000-row table).
    t.execute(
        &sh.sql(
            "UPDATE @.job AS j SET state = u.state, priority = u.prio, run_at = u.run_at, \
               lease_token = u.token, lease_owner = u.owner, lease_expires = u.expires, \
               finished_at = u.finished, record = u.record \
             FROM unnest($1::uuid[], $2::int2[], $3::int4[], $4::int8[], $5::int8[], \
                         $6::int8[], $7::int8[], $8::int8[], $9::bytea[]) \
                  AS u(id, state, prio, run_at, token, owner, expires, finished, record) \
             WHERE j.id = ANY($1) AND j.id = u.id",
        ),
        &[
            &ids, &states, &prios, &run_ats, &tokens, &owners, &expires, &finished, &records,
        ],
    )
    .pg("writing jobs")?;
    Ok(())
}
