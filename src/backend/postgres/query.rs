//! Reads: get, list (keyset pages by id), stats (from the counter rows), events, and what
//! waiting claimers ask (has work, next due).

use std::collections::BTreeMap;

use super::lease::{ReqLists, REQ_FILTER};
use super::tx::{codes_of, job_from_row};
use super::Shared;
use crate::model::error::Result;
use crate::model::event::EventRecord;
use crate::model::job::{Job, JobId};
use crate::model::types::{ClaimRequest, Counts, ListQuery, QueueStats, Stats};

pub(super) fn get(sh: &Shared, id: JobId) -> Result<Option<Job>> {
    let sql = sh.sql("SELECT id, record, payload FROM @.job WHERE id = $1");
    let row = sh.pool.with_client(|c| c.query_opt(&sql, &[&id.uuid()]))?;
    row.map(|r| job_from_row(&r, true)).transpose()
}

pub(super) fn list(sh: &Shared, q: &ListQuery) -> Result<Vec<Job>> {
    if [&q.queue, &q.kind, &q.tenant_id, &q.dedupe_key]
        .into_iter()
        .flatten()
        .any(|s| s.contains('\0'))
    {
        // No job holds U+0000 in these (PostgreSQL's text cannot), and the server would
        // refuse the parameter.
        return Ok(Vec::new());
    }
    let limit = i64::try_from(crate::model::limits::page_size(q.limit)).unwrap_or(i64::MAX);
    let states: Vec<i16> = match q.status {
        Some(s) => codes_of(s).to_vec(),
        None => (0..=6).collect(),
    };
    let after = q.after.map(|a| a.uuid());
    let sql = sh.sql(
        "SELECT id, record, payload FROM @.job \
         WHERE state = ANY($1) AND ($2::uuid IS NULL OR id > $2) \
           AND ($3::text IS NULL OR queue = $3) AND ($4::text IS NULL OR kind = $4) \
           AND ($6::text IS NULL OR tenant_id = $6) AND ($7::text IS NULL OR dedupe_key = $7) \
         ORDER BY id LIMIT $5",
    );
    let rows = sh.pool.with_client(|c| {
        c.query_planned(
            &sql,
            &[
                &states,
                &after,
                &q.queue,
                &q.kind,
                &limit,
                &q.tenant_id,
                &q.dedupe_key,
            ],
        )
    })?;
    rows.iter().map(|r| job_from_row(r, true)).collect()
}

/// Stats from the counter rows (call after numbering, so they include the caller's own
/// commits, and after staging due jobs, so `delayed` is exact).
pub(super) fn stats(sh: &Shared) -> Result<Stats> {
    // One statement (one round trip): the counter rows summed over their shards (shard 0 is
    // the sequencer's; older builds wrote others), then the paused queues as rows of
    // state -1.
    let sql = sh.sql(
        "SELECT queue, state, sum(n)::int8 FROM @.job_count GROUP BY queue, state \
           HAVING sum(n) <> 0 \
         UNION ALL SELECT name, -1::int2, 0::int8 FROM @.queue WHERE paused",
    );
    let rows = sh.pool.with_client(|c| c.query(&sql, &[]))?;
    let mut queues: BTreeMap<String, QueueStats> = BTreeMap::new();
    for r in &rows {
        let q: String = r.get(0);
        let state: i16 = r.get(1);
        let n = u64::try_from(r.get::<_, i64>(2)).unwrap_or(0);
        let entry = queues.entry(q).or_default();
        if state < 0 {
            entry.paused = true;
            continue;
        }
        let c = &mut entry.counts;
        match state {
            0 => c.pending += n,
            1 => {
                c.pending += n;
                c.delayed += n;
            }
            2 => c.running += n,
            3 => c.completed += n,
            4 => c.failed += n,
            5 => c.cancelled += n,
            _ => c.dead_letter += n,
        }
    }
    let mut total = Counts::default();
    for q in queues.values() {
        total.add(&q.counts);
    }
    Ok(Stats { total, queues })
}

pub(super) fn events_since(sh: &Shared, after: u64, limit: usize) -> Result<Vec<EventRecord>> {
    super::notify::read_log(sh, after, u64::MAX, limit, None)
}

/// The greatest job id in the table (0 when it is empty).
pub(super) fn max_job_id(sh: &Shared) -> Result<u128> {
    let sql = sh.sql("SELECT id FROM @.job ORDER BY id DESC LIMIT 1");
    let id: Option<uuid::Uuid> = sh
        .pool
        .with_client(|c| c.query_opt(&sql, &[]).map(|r| r.map(|r| r.get(0))))?;
    Ok(id.map_or(0, |u| u.as_u128()))
}

pub(super) fn has_work(sh: &Shared, req: &ClaimRequest) -> Result<bool> {
    let sql = sh.sql(&format!(
        "SELECT EXISTS (SELECT 1 FROM @.job AS j WHERE j.state IN (0, 1, 2) AND {REQ_FILTER} \
           AND (j.state = 2 OR NOT EXISTS \
                (SELECT 1 FROM @.queue AS p WHERE p.name = j.queue AND p.paused)))"
    ));
    let Some(lists) = ReqLists::of(req) else {
        return Ok(false);
    };
    let none: Vec<&str> = Vec::new();
    sh.pool
        .with_client(|c| c.query_planned(&sql, &[&lists.queues, &none, &lists.kinds]))
        .map(|rows| rows.first().is_some_and(|r| r.get(0)))
}

pub(super) fn next_due_ms(sh: &Shared, req: &ClaimRequest) -> Result<Option<i64>> {
    let sql = sh.sql(&format!(
        "SELECT j.run_at FROM @.job AS j WHERE j.state = 1 AND {REQ_FILTER} \
         ORDER BY j.run_at LIMIT 1"
    ));
    let Some(lists) = ReqLists::of(req) else {
        return Ok(None);
    };
    sh.pool
        .with_client(|c| c.query_planned(&sql, &[&lists.queues, &lists.exclude, &lists.kinds]))
        .map(|rows| rows.first().map(|r| r.get(0)))
}

pub(super) fn next_schedule_due(sh: &Shared) -> Result<Option<i64>> {
    let sql = sh.sql("SELECT min(next_run) FROM @.schedule WHERE enabled");
    sh.pool
        .with_client(|c| c.query_one(&sql, &[]))
        .map(|r| r.get(0))
}
