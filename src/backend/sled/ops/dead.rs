//! Redrive of dead-lettered and failed jobs, and pruning by retention.

use super::{Ctx, MAINTENANCE_CHUNK};
use crate::backend::codec::{self, keys};
use crate::backend::rules::{self, RedrivePicker};
use crate::backend::sled::stage::StoredEvent;
use crate::model::config::Retention;
use crate::model::error::Result;
use crate::model::job::{Job, JobStatus};
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
    let mut picker = RedrivePicker::new(strict);
    let mut picked = Vec::new();
    for id in ids {
        let job = ctx.must_job(id)?;
        if queue.as_ref().is_some_and(|q| *q != job.queue)
            || kind.as_ref().is_some_and(|k| *k != job.kind)
        {
            continue;
        }
        if picker.pick(&job, |k| Ok(ctx.dedupe_holder(k)?.map(|h| h.id)))? {
            picked.push(job);
        }
    }
    let mut out = Vec::with_capacity(picked.len());
    for old in picked {
        let change = rules::redrive(old.clone(), ctx.now);
        out.push(ctx.stage(Some(&old), change));
    }
    Ok(out)
}

pub(super) fn prune(ctx: &mut Ctx<'_>, r: &Retention) -> Result<u64> {
    let (plan, events_before) = rules::prune_cutoffs(r, ctx.now);
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
    if let Some(e) = rules::pruned_event(n, ctx.now) {
        ctx.emit(e);
    }
    Ok(n)
}
