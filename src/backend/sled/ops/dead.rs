//! Redrive of dead-lettered and failed jobs, and pruning by retention.

use std::collections::HashMap;

use super::{Ctx, MAINTENANCE_CHUNK};
use crate::backend::codec::{self, keys};
use crate::backend::sled::stage::StoredEvent;
use crate::model::config::Retention;
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::model::job::{Job, JobId, JobStatus};
use crate::model::types::RedriveTarget;

pub(super) fn redrive(ctx: &mut Ctx<'_>, target: RedriveTarget) -> Result<Vec<Job>> {
    let (ids, strict, queue, kind) = match target {
        RedriveTarget::One(id) => (vec![id], true, None, None),
        RedriveTarget::All { queue, kind } => {
            let mut ids = ctx
                .st
                .ids_with_status(JobStatus::DeadLetter, None, usize::MAX);
            ids.extend(ctx.st.ids_with_status(JobStatus::Failed, None, usize::MAX));
            ids.sort();
            (ids, false, queue, kind)
        }
    };
    let mut picked = Vec::new();
    let mut keys_taken: HashMap<String, JobId> = HashMap::new();
    for id in ids {
        let job = ctx.must_job(id)?;
        if queue.as_ref().is_some_and(|q| *q != job.queue)
            || kind.as_ref().is_some_and(|k| *k != job.kind)
        {
            continue;
        }
        if !matches!(job.status, JobStatus::DeadLetter | JobStatus::Failed) {
            if strict {
                return Err(Error::invalid(format!(
                    "job {id} is {}; only dead_letter and failed jobs can be redriven",
                    job.status
                )));
            }
            continue;
        }
        if let Some(k) = &job.dedupe_key {
            let held = ctx
                .dedupe_holder(k)?
                .map(|h| h.id)
                .or_else(|| keys_taken.get(k).copied());
            if let Some(holder) = held {
                if strict {
                    return Err(Error::invalid(format!(
                        "job {id} cannot be redriven: its dedupeKey {k:?} is held by live job {holder}"
                    )));
                }
                continue;
            }
            keys_taken.insert(k.clone(), id);
        }
        picked.push(job);
    }
    let mut out = Vec::with_capacity(picked.len());
    for old in picked {
        let mut job = old.clone();
        job.status = JobStatus::Pending;
        job.attempts = 0;
        job.last_error = None;
        job.completed_at = None;
        job.result = None;
        job.scheduled_at = Some(ctx.at());
        job.updated_at = ctx.at();
        ctx.emit(Event::JobRedriven {
            job_id: job.id,
            kind: job.kind.clone(),
            redriven_at: ctx.at(),
        });
        ctx.put(Some(&old), job.clone());
        out.push(job);
    }
    Ok(out)
}

pub(super) fn prune(ctx: &mut Ctx<'_>, r: &Retention) -> Result<u64> {
    let cutoff = |d: std::time::Duration| {
        ctx.now
            .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let plan = [
        (JobStatus::Completed, cutoff(r.completed)),
        (JobStatus::Cancelled, cutoff(r.cancelled)),
        (JobStatus::Failed, cutoff(r.failed)),
        (JobStatus::DeadLetter, cutoff(r.dead_letter)),
    ];
    let mut jobs = Vec::new();
    for (status, before) in plan {
        for id in ctx
            .st
            .finished_before(status, before, MAINTENANCE_CHUNK - jobs.len())
        {
            if let Some(j) = ctx.job(id)? {
                jobs.push(j);
            }
        }
    }
    // Old events: the log is in time order, so stop at the first block to keep (a block
    // goes when its newest event is past retention).
    let events_before = cutoff(r.events);
    let mut old_events = Vec::new();
    for item in ctx
        .overlay
        .scan(ctx.tree, &[keys::EVENT], &[keys::EVENT + 1])
        .take(MAINTENANCE_CHUNK)
    {
        let (k, v) = item?;
        let block: Vec<StoredEvent> = codec::decode("events", &k, &v)?;
        if block.last().is_some_and(|e| e.at_ms >= events_before) {
            break;
        }
        old_events.push(k);
    }
    let n = jobs.len() as u64;
    for job in &jobs {
        ctx.delete(job);
    }
    for k in old_events {
        ctx.staged.put_raw(k.to_vec(), None);
    }
    if n > 0 {
        let at = ctx.at();
        ctx.emit(Event::JobsPruned {
            count: n,
            pruned_at: at,
        });
    }
    Ok(n)
}
