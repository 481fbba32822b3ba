//! Enqueue (with dedupe) and cancel.

use std::collections::HashMap;

use super::Ctx;
use crate::backend::codec::keys;
use crate::model::clock::to_datetime;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Job, JobId, JobStatus, NewJob};
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
    let now = ctx.now;
    let id = ctx.st.next_id(now);
    let due = match (nj.delay, nj.run_at) {
        (Some(d), _) => now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        (None, Some(at)) => at.timestamp_millis(),
        (None, None) => now,
    };
    let job = Job {
        id,
        kind: nj.kind,
        version: nj.version.unwrap_or_else(|| "1.0.0".into()),
        queue: nj.queue.unwrap_or_else(|| "default".into()),
        payload: nj.payload,
        status: JobStatus::Pending,
        priority: nj.priority,
        attempts: 0,
        max_attempts: nj.max_attempts.unwrap_or(ctx.cfg.default_max_attempts),
        created_at: to_datetime(now),
        updated_at: to_datetime(now),
        scheduled_at: Some(to_datetime(due)),
        started_at: None,
        completed_at: None,
        last_error: None,
        timeout: nj.timeout,
        dedupe_key: nj.dedupe_key,
        tenant_id: nj.tenant_id,
        user_id: nj.user_id,
        trace_id: nj.trace_id,
        metadata: nj.metadata,
        result: None,
        executions: Vec::new(),
        backoff: nj.backoff,
        lease: None,
    };
    ctx.staged.put_raw(
        keys::payload(&id).to_vec(),
        Some(sled::IVec::from(&job.payload[..])),
    );
    ctx.emit(Event::JobEnqueued {
        job_id: id,
        kind: job.kind.clone(),
        priority: job.priority,
        enqueued_at: job.created_at,
        scheduled_at: job.scheduled_at,
        tenant_id: job.tenant_id.clone(),
    });
    // The record is stored without the payload (it has its own key): clone the job
    // without copying the payload a second time.
    let mut job = job;
    let payload = std::mem::take(&mut job.payload);
    ctx.put(None, job.clone());
    job.payload = payload;
    job
}

pub(super) fn cancel(ctx: &mut Ctx<'_>, id: JobId, by: Option<String>) -> Result<Job> {
    let old = ctx.must_job(id)?;
    if old.status != JobStatus::Pending {
        return Err(Error::JobNotPending {
            id: id.to_string(),
            status: old.status.to_string(),
        });
    }
    // Every read before the first staged change: a read can fail, staging must not.
    let payload = ctx.payload(id)?;
    let mut job = old.clone();
    job.status = JobStatus::Cancelled;
    job.updated_at = ctx.at();
    job.completed_at = Some(ctx.at());
    ctx.emit(Event::JobCancelled {
        job_id: id,
        kind: job.kind.clone(),
        cancelled_at: ctx.at(),
        cancelled_by: by,
    });
    ctx.put(Some(&old), job.clone());
    job.payload = payload;
    Ok(job)
}
