//! Enqueue (a batch in one statement, dedupe by the partial unique index) and cancel.

use std::collections::{BTreeMap, HashMap};

use super::conn::{retryable, Pg};
use super::tx::{
    closing_params, closing_statement, job_from_row, state_code, Appended, CountParams, Ctx, Done,
    Staged,
};
use super::Shared;
use crate::backend::codec;
use crate::backend::rules;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::types::Enqueued;

/// A new job's record, as the spool creates it (id from the spool's generator).
pub(super) fn create(ctx: &Ctx<'_, '_>, nj: NewJob) -> Job {
    let id = ctx.sh.next_id(ctx.now);
    rules::new_job(nj, id, ctx.now, ctx.sh.cfg.default_max_attempts)
}

/// Inserts `jobs` (dedupe keys unique among them) in one statement. A job whose dedupe key
/// a live job holds is not inserted: that job comes back instead, `deduplicated`. New jobs
/// get their `job.enqueued` event, in input order.
pub(super) fn insert(ctx: &mut Ctx<'_, '_>, jobs: Vec<Job>) -> Result<Vec<Enqueued>> {
    let cols = Columns::new(&jobs, ctx.now)?;
    // `xmax <> 0`: the row was not inserted but is the live holder of the dedupe key (the
    // no-op update locks it until commit, so it stays live while this batch commits).
    let rows = ctx
        .t
        .query(
            &ctx.sh.sql(&format!(
                "{} \
                 ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN (0, 1, 2) \
                 DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key \
                 RETURNING id, (xmax <> 0) AS existed, dedupe_key, record, payload",
                insert_rows(1)
            )),
            &cols.params(),
        )
        .pg("inserting jobs")?;
    let mut holders: HashMap<String, Job> = HashMap::new();
    for r in &rows {
        if r.get::<_, bool>("existed") {
            let j = job_from_row(r, true)?;
            if let Some(k) = j.dedupe_key.clone() {
                holders.insert(k, j);
            }
        }
    }
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(h) = job.dedupe_key.as_ref().and_then(|k| holders.get(k)) {
            out.push(Enqueued {
                job: h.clone(),
                deduplicated: true,
            });
            continue;
        }
        let st = state_code(&job, ctx.now);
        ctx.count(&job.queue, st, 1);
        if st == 0 {
            ctx.wake = true;
        }
        ctx.emit(rules::enqueued_event(&job));
        out.push(Enqueued {
            job,
            deduplicated: false,
        });
    }
    Ok(out)
}

/// The new jobs' columns as statement parameters (see [`insert_rows`]).
struct Columns<'a> {
    ids: Vec<uuid::Uuid>,
    queues: Vec<&'a str>,
    kinds: Vec<&'a str>,
    states: Vec<i16>,
    prios: Vec<i32>,
    run_ats: Vec<i64>,
    keys: Vec<Option<&'a str>>,
    records: Vec<Vec<u8>>,
    payloads: Vec<&'a [u8]>,
    tenants: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn new(jobs: &'a [Job], now: i64) -> Result<Self> {
        let n = jobs.len();
        let mut c = Columns {
            ids: Vec::with_capacity(n),
            queues: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            states: Vec::with_capacity(n),
            prios: Vec::with_capacity(n),
            run_ats: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            records: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            tenants: Vec::with_capacity(n),
        };
        for j in jobs {
            c.ids.push(j.id.uuid());
            c.queues.push(j.queue.as_str());
            c.kinds.push(j.kind.as_str());
            c.states.push(state_code(j, now));
            c.prios.push(j.priority);
            c.run_ats.push(j.due_ms());
            c.keys.push(j.dedupe_key.as_deref());
            c.tenants.push(j.tenant_id.as_deref());
            c.records.push(codec::encode(j)?);
            c.payloads.push(&j.payload);
        }
        Ok(c)
    }

    /// In the order of [`insert_rows`]' parameters.
    fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 10] {
        [
            &self.ids,
            &self.queues,
            &self.kinds,
            &self.states,
            &self.prios,
            &self.run_ats,
            &self.keys,
            &self.records,
            &self.payloads,
            &self.tenants,
        ]
    }
}

/// `INSERT` of the rows in [`Columns`], whose ten parameters start at `$first`.
fn insert_rows(first: usize) -> String {
    insert_rows_where(first, "")
}

/// [`insert_rows`] with `cond` (empty, or `WHERE ...` over the unnested rows).
fn insert_rows_where(first: usize, cond: &str) -> String {
    let p: Vec<String> = (first..first + 10).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO @.job (id, queue, kind, state, priority, run_at, dedupe_key, \
                            tenant_id, record, payload) \
         SELECT id, queue, kind, state, prio, run_at, key, tenant, record, payload \
         FROM unnest({}::uuid[], {}::text[], {}::text[], {}::int2[], {}::int4[], \
                     {}::int8[], {}::text[], {}::bytea[], {}::bytea[], {}::text[]) \
              WITH ORDINALITY \
              AS u(id, queue, kind, state, prio, run_at, key, record, payload, tenant, ord) \
         {cond} ORDER BY ord",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
    )
}

/// Whether `jobs` can take [`enqueue_one_statement`]: none has a dedupe key (whose
/// conflict decides what the rest of the transaction does).
pub(super) fn fits_one_statement(jobs: &[NewJob]) -> bool {
    jobs.iter().all(|j| j.dedupe_key.is_none())
}

/// Enqueues jobs without dedupe keys as one statement in autocommit: the rows, the counts,
/// the staged `job.enqueued` events, atomic as any single statement, in one
/// round trip instead of a transaction's four (BEGIN, insert, the closing statement,
/// COMMIT).
///
/// Under `Buffered` the statement commits with `synchronous_commit` off: the pooled session
/// has it off already, except through a connection pooler, where the statement turns it off
/// for its own transaction (`set_config(..., true)` lasts until that commit).
pub(super) fn enqueue_one_statement(
    sh: &Shared,
    jobs: Vec<NewJob>,
) -> Result<(Vec<Enqueued>, Done)> {
    let now = sh.cfg.clock.now_ms();
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|nj| rules::new_job(nj, sh.next_id(now), now, sh.cfg.default_max_attempts))
        .collect();
    let mut deltas = BTreeMap::new();
    let mut wake = false;
    for j in &jobs {
        let st = state_code(j, now);
        *deltas.entry((j.queue.clone(), st)).or_insert(0) += 1;
        wake |= st == 0;
    }
    let events: Vec<Event> = jobs.iter().map(rules::enqueued_event).collect();
    let appended = Appended::new(&events, now)?;
    let counts = CountParams::new(&deltas);
    let cols = Columns::new(&jobs, now)?;
    let cond = if sh.pool.statements_set_async() {
        // (Any value passes the test: what matters is that the call runs, once per row.)
        "WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL"
    } else {
        ""
    };
    let sql = closing_statement(sh, &format!("jobs AS ({}), ", insert_rows_where(8, cond)));
    let mut params = closing_params(&counts, &appended).to_vec();
    params.extend(cols.params());
    let mut attempt = 0;
    let rows = loop {
        attempt += 1;
        match sh.pool.with_client(|c| c.query(&sql, &params)) {
            Err(e) if retryable(&e) && attempt < 8 => continue,
            other => break other?,
        }
    };
    let done = Done {
        staged: Staged::of(&rows, events),
        wake,
    };
    let out = jobs
        .into_iter()
        .map(|job| Enqueued {
            job,
            deduplicated: false,
        })
        .collect();
    Ok((out, done))
}

/// Enqueues a batch: duplicates by dedupe key inside it collapse to the first.
pub(super) fn enqueue(ctx: &mut Ctx<'_, '_>, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
    enum Slot {
        New(usize),
        SameAs(usize),
    }
    let mut slots = Vec::with_capacity(jobs.len());
    let mut first_with_key: HashMap<String, usize> = HashMap::new();
    let mut fresh = Vec::new();
    for nj in jobs {
        if let Some(k) = &nj.dedupe_key {
            if let Some(i) = first_with_key.get(k) {
                slots.push(Slot::SameAs(*i));
                continue;
            }
            first_with_key.insert(k.clone(), fresh.len());
        }
        slots.push(Slot::New(fresh.len()));
        let job = create(ctx, nj);
        fresh.push(job);
    }
    let inserted = insert(ctx, fresh)?;
    Ok(slots
        .into_iter()
        .map(|s| match s {
            Slot::New(i) => inserted[i].clone(),
            Slot::SameAs(i) => Enqueued {
                job: inserted[i].job.clone(),
                deduplicated: true,
            },
        })
        .collect())
}

pub(super) fn cancel(ctx: &mut Ctx<'_, '_>, id: JobId, by: Option<String>) -> Result<Job> {
    let (st, old) = ctx.must_locked(id, true)?;
    let change = rules::cancel(old, ctx.now, by)?;
    Ok(ctx.stage(st, change))
}
