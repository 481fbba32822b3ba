//! Enqueue (with dedupe) and cancel.

use std::collections::HashMap;

use super::Ctx;
use crate::backend::codec::keys;
use crate::backend::rules;
use crate::model::error::Result;
use crate::model::job::{Job, JobId, NewJob};
use crate::model::types::Enqueued;

enum Plan {
    New(NewJob),
    Existing(Job),
    SameAs(usize),
}

pub(super) fn enqueue(ctx: &mut Ctx<'_>, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
    // Read and check everything first: a batch is all or nothing.
    let mut plans = Vec::with_capacity(jobs.len());
    let mut keys_in_batch: HashMap<String, usize> = HashMap::new();
    // Each job was validated on the caller's thread (`SledBackend::enqueue`); the writer,
    // the bottleneck, does not check it again.
    for (i, nj) in jobs.into_iter().enumerate() {
        if let Some(key) = &nj.dedupe_key {
            if let Some(first) = keys_in_batch.get(key) {
                plans.push(Plan::SameAs(*first));
                continue;
            }
            if let Some(mut holder) = ctx.dedupe_holder(key)? {
                // Read here, not while creating: a read can fail, staging must not.
                holder.payload = ctx.payload(holder.id)?;
                plans.push(Plan::Existing(holder));
                continue;
            }
            keys_in_batch.insert(key.clone(), i);
        }
        plans.push(Plan::New(nj));
    }
    // From here on nothing can fail.
    let mut out: Vec<Enqueued> = Vec::with_capacity(plans.len());
    for plan in plans {
        let (job, deduplicated) = match plan {
            Plan::SameAs(i) => (out[i].job.clone(), true),
            Plan::Existing(j) => (j, true),
            Plan::New(nj) => (create(ctx, nj), false),
        };
        out.push(Enqueued { job, deduplicated });
    }
    Ok(out)
}

pub(super) fn create(ctx: &mut Ctx<'_>, nj: NewJob) -> Job {
    let id = ctx.st.next_id(ctx.now);
    let mut job = rules::new_job(nj, id, ctx.now, ctx.cfg.default_max_attempts);
    ctx.staged.put_raw(
        keys::payload(&id).to_vec(),
        Some(sled::IVec::from(&job.payload[..])),
    );
    ctx.emit(rules::enqueued_event(&job));
    // The record is stored without the payload (it has its own key): clone the job
    // without copying the payload a second time.
    let payload = std::mem::take(&mut job.payload);
    ctx.put(None, job.clone());
    job.payload = payload;
    job
}

pub(super) fn cancel(ctx: &mut Ctx<'_>, id: JobId, by: Option<String>) -> Result<Job> {
    let old = ctx.must_job(id)?;
    let change = rules::cancel(old.clone(), ctx.now, by)?;
    // Every read before the first staged change: a read can fail, staging must not.
    let payload = ctx.payload(id)?;
    let mut job = ctx.stage(Some(&old), change);
    job.payload = payload;
    Ok(job)
}
