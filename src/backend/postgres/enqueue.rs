//! Enqueue (a batch in one statement, dedupe by the partial unique index) and cancel.

use std::collections::HashMap;

use super::conn::Pg;
use super::tx::{job_from_row, state_code, Ctx};
use crate::backend::codec;
use crate::backend::rules;
use crate::model::error::Result;
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
    let mut ids = Vec::with_capacity(jobs.len());
    let mut queues = Vec::with_capacity(jobs.len());
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut states = Vec::with_capacity(jobs.len());
    let mut prios = Vec::with_capacity(jobs.len());
    let mut run_ats = Vec::with_capacity(jobs.len());
    let mut keys: Vec<Option<&str>> = Vec::with_capacity(jobs.len());
    let mut tenants: Vec<Option<&str>> = Vec::with_capacity(jobs.len());
    let mut records = Vec::with_capacity(jobs.len());
    let mut payloads: Vec<&[u8]> = Vec::with_capacity(jobs.len());
    for j in &jobs {
        ids.push(j.id.uuid());
        queues.push(j.queue.as_str());
        kinds.push(j.kind.as_str());
        states.push(state_code(j, ctx.now));
        prios.push(j.priority);
        run_ats.push(j.due_ms());
        keys.push(j.dedupe_key.as_deref());
        tenants.push(j.tenant_id.as_deref());
        records.push(codec::encode(j)?);
        payloads.push(&j.payload);
    }
    // `xmax <> 0`: the row was not inserted but is the live holder of the dedupe key (the
    // no-op update locks it until commit, so it stays live while this batch commits).
    let rows = ctx
        .t
        .query(
            &ctx.sh.sql(
                "INSERT INTO @.job (id, queue, kind, state, priority, run_at, dedupe_key, \
                                    tenant_id, record, payload) \
                 SELECT id, queue, kind, state, prio, run_at, key, tenant, record, payload \
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::int4[], \
                             $6::int8[], $7::text[], $8::bytea[], $9::bytea[], $10::text[]) \
                      WITH ORDINALITY \
                      AS u(id, queue, kind, state, prio, run_at, key, record, payload, tenant, \
                           ord) \
                 ORDER BY ord \
                 ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN (0, 1, 2) \
                 DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key \
                 RETURNING id, (xmax <> 0) AS existed, dedupe_key, record, payload",
            ),
            &[
                &ids, &queues, &kinds, &states, &prios, &run_ats, &keys, &records, &payloads,
                &tenants,
            ],
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
