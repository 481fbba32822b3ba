//! The tables, created on open and versioned: `schema_version` holds the version the tables
//! are at; open migrates older ones step by step and refuses newer ones.

use postgres::Client;

use super::conn::Pg;
use crate::model::error::{Error, Result};

/// The version of the tables this build writes.
pub(crate) const VERSION: i32 = 4;

/// Version 1: every table and index. `@.` stands for the quoted schema.
const V1: &str = r#"
CREATE TABLE @.job (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    queue text NOT NULL,
    kind text NOT NULL,
    state smallint NOT NULL,
    priority integer NOT NULL,
    run_at bigint NOT NULL,
    dedupe_key text,
    tenant_id text,
    lease_token bigint,
    lease_owner bigint,
    lease_expires bigint,
    finished_at bigint,
    record bytea NOT NULL,
    payload bytea NOT NULL
) WITH (fillfactor = 85, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX job_claim ON @.job (priority DESC, run_at, seq) WHERE state = 0;
CREATE INDEX job_delayed ON @.job (run_at) WHERE state = 1;
CREATE INDEX job_lease ON @.job (lease_expires) WHERE state = 2;
CREATE INDEX job_owner ON @.job (lease_owner) WHERE state = 2;
CREATE UNIQUE INDEX job_dedupe ON @.job (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN (0, 1, 2);
CREATE INDEX job_finished ON @.job (state, finished_at) WHERE state >= 3;
CREATE INDEX job_status ON @.job (state, id);
CREATE INDEX job_tenant ON @.job (tenant_id, id) WHERE tenant_id IS NOT NULL;
CREATE INDEX job_dedupe_key ON @.job (dedupe_key, id) WHERE dedupe_key IS NOT NULL;
CREATE TABLE @.event (
    seq bigint PRIMARY KEY,
    at_ms bigint NOT NULL,
    name text NOT NULL,
    body jsonb NOT NULL
);
CREATE TABLE @.counter (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO @.counter (name, value) VALUES ('event_seq', 0);
CREATE TABLE @.job_count (
    queue text NOT NULL,
    state smallint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (queue, state)
);
CREATE TABLE @.queue (name text PRIMARY KEY, paused boolean NOT NULL);
CREATE TABLE @.schedule (
    name text PRIMARY KEY,
    enabled boolean NOT NULL,
    next_run bigint,
    record bytea NOT NULL
);
CREATE TABLE @.owner (
    id bigint PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    opened_at bigint NOT NULL
);
CREATE SEQUENCE @.lease_token;
"#;

/// Version 2: no row that every commit locks, and one row per transaction's events.
///
/// - Count rows get a `shard` (the writing session's backend pid modulo 16), so concurrent
///   transactions on one queue update different rows; stats sum the shards.
/// - The event log keeps a transaction's events as one row: a JSON array (split every 512
///   events, `part` counting from 1), keyed by the seq of its last event, with the batch
///   number it was staged under (`event_log`; version 1's `event` rows become rows of one
///   event, batch 0).
/// - Transactions stage their events in `event_staged` under a batch number drawn once per
///   transaction; `sequence_events` moves them into `event_log` with contiguous seqs, in
///   (batch, part) order, under an advisory lock, in a transaction that commits with
///   `synchronous_commit = on`. A transaction that committed before another began drew the
///   smaller batch number and is visible to any sequencer that sees the later one, so seq
///   order never contradicts commit order; numbered events are durable; a rolled-back
///   transaction leaves no gap.
const V2: &str = r#"
ALTER TABLE @.job_count ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE @.job_count DROP CONSTRAINT job_count_pkey;
ALTER TABLE @.job_count ADD PRIMARY KEY (queue, state, shard);
CREATE TABLE @.event_log (
    last_seq bigint PRIMARY KEY,
    n integer NOT NULL CHECK (n > 0),
    at_ms bigint NOT NULL,
    batch bigint NOT NULL,
    part integer NOT NULL,
    events jsonb NOT NULL
);
INSERT INTO @.event_log (last_seq, n, at_ms, batch, part, events)
    SELECT seq, 1, at_ms, 0, 1, jsonb_build_array(body) FROM @.event;
DROP TABLE @.event;
CREATE SEQUENCE @.event_batch;
CREATE TABLE @.event_staged (
    batch bigint NOT NULL,
    part integer NOT NULL,
    at_ms bigint NOT NULL,
    n integer NOT NULL CHECK (n > 0),
    events jsonb NOT NULL,
    PRIMARY KEY (batch, part)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE FUNCTION @.sequence_events(channel text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    rows_moved bigint;
    total bigint := 0;
    last bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @.event_staged) THEN
        SELECT value INTO last FROM @.counter WHERE name = 'event_seq';
        RETURN last;
    END IF;
    -- Numbered events must be durable before anyone reads them.
    PERFORM set_config('synchronous_commit', 'on', true);
    PERFORM pg_advisory_xact_lock(hashtext('jobspool.sequence_events.@.'));
    LOOP
        WITH s AS (
                DELETE FROM @.event_staged AS e USING (
                    SELECT batch, part FROM @.event_staged ORDER BY batch, part LIMIT 1000
                ) AS pick
                WHERE e.batch = pick.batch AND e.part = pick.part
                RETURNING e.batch, e.part, e.at_ms, e.n, e.events),
             r AS (SELECT s.*, sum(s.n) OVER (ORDER BY s.batch, s.part) AS upto FROM s),
             tot AS (SELECT count(*) AS rows, coalesce(sum(n), 0) AS k FROM s),
             c AS (UPDATE @.counter SET value = value + tot.k FROM tot
                   WHERE name = 'event_seq' RETURNING value, tot.k, tot.rows),
             ins AS (INSERT INTO @.event_log (last_seq, n, at_ms, batch, part, events)
                     SELECT c.value - c.k + r.upto, r.n, r.at_ms, r.batch, r.part, r.events
                     FROM r, c)
        SELECT c.rows, c.value, total + c.k INTO rows_moved, last, total FROM c;
        EXIT WHEN rows_moved < 1000;
    END LOOP;
    IF channel IS NOT NULL AND total > 0 THEN
        PERFORM pg_notify(channel, last::text);
    END IF;
    RETURN last;
END
$fn$;
"#;

/// Version 3:
///
/// - Events are kept as `json`, not `jsonb`. `jsonb` refuses the character U+0000 in a
///   string, so an event carrying one (a handler's error message, who cancelled a job) made
///   its whole transaction fail; `json` keeps the text as written, and costs the server less
///   to store and return (the events are only ever read whole).
/// - No index on `lease_owner`: every claim paid an entry in it, and only the recovery of a
///   stopped process reads it, which the lease index (every running job) serves as well.
const V3: &str = r#"
ALTER TABLE @.event_log ALTER COLUMN events TYPE json USING events::json;
ALTER TABLE @.event_staged ALTER COLUMN events TYPE json USING events::json;
DROP INDEX @.job_owner;
"#;

/// Version 4: counts kept by the sequencer, not by every commit.
///
/// - A transaction no longer updates `job_count` itself: its count deltas ride on its first
///   staged row (`count_queues`, `count_states`, `count_deltas`, in (queue, state) order),
///   and `sequence_events` adds the deltas of the rows it numbers to shard 0, in the same
///   transaction. Every commit updating a count row cost a fifth of an enqueue's time (the
///   upsert's speculative insert, lock and update, and the count page's dead versions).
/// - A transaction that changes counts but appends no event stages a row of no events
///   (`n = 0`), which the log does not keep.
/// - So counts are exactly those of the numbered commits: what stats report is durable, like
///   the events, and a reader numbers first to see its own commits.
/// - Rows staged by an older build carry no deltas (its commits updated their counts
///   themselves); counts in shards other than 0 stay, and readers sum the shards.
/// - Version 4 also marks the records (`record` columns) written in storage format 2
///   (variable-length integers; `codec`): builds that read only format 1 know at most
///   version 3, and so refuse the tables at open instead of meeting records they cannot
///   read. Every process on a schema is upgraded together.
/// - Numbering moves whole transactions (all the rows of the batches it picks): moving
///   1,000 rows a pass could split a transaction of more than 512 events, and a transaction
///   committing between two passes then got seqs between its rows.
const V4: &str = r#"
ALTER TABLE @.event_staged DROP CONSTRAINT event_staged_n_check;
ALTER TABLE @.event_staged ADD CONSTRAINT event_staged_n_check CHECK (n >= 0);
ALTER TABLE @.event_staged ADD COLUMN count_queues text[];
ALTER TABLE @.event_staged ADD COLUMN count_states int2[];
ALTER TABLE @.event_staged ADD COLUMN count_deltas int8[];
CREATE OR REPLACE FUNCTION @.sequence_events(channel text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    rows_moved bigint;
    total bigint := 0;
    last bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @.event_staged) THEN
        SELECT value INTO last FROM @.counter WHERE name = 'event_seq';
        RETURN last;
    END IF;
    -- Numbered events and the counts they carry must be durable before anyone reads them.
    PERFORM set_config('synchronous_commit', 'on', true);
    PERFORM pg_advisory_xact_lock(hashtext('jobspool.sequence_events.@.'));
    LOOP
        -- Whole transactions (batches) at a time: a transaction committing between two
        -- passes must not get seqs between the rows of one that committed before it.
        WITH s AS (
                DELETE FROM @.event_staged AS e
                WHERE e.batch IN (
                    SELECT batch FROM @.event_staged ORDER BY batch, part LIMIT 1000)
                RETURNING e.batch, e.part, e.at_ms, e.n, e.events,
                          e.count_queues, e.count_states, e.count_deltas),
             r AS (SELECT s.*, sum(s.n) OVER (ORDER BY s.batch, s.part) AS upto FROM s),
             tot AS (SELECT count(*) AS rows, coalesce(sum(n), 0) AS k FROM s),
             c AS (UPDATE @.counter SET value = value + tot.k FROM tot
                   WHERE name = 'event_seq' RETURNING value, tot.k, tot.rows),
             ins AS (INSERT INTO @.event_log (last_seq, n, at_ms, batch, part, events)
                     SELECT c.value - c.k + r.upto, r.n, r.at_ms, r.batch, r.part, r.events
                     FROM r, c WHERE r.n > 0),
             d AS (SELECT u.q, u.st, sum(u.dn) AS dn
                   FROM s, unnest(s.count_queues, s.count_states, s.count_deltas) AS u(q, st, dn)
                   GROUP BY u.q, u.st HAVING sum(u.dn) <> 0),
             jc AS (INSERT INTO @.job_count AS jc (queue, state, shard, n)
                    SELECT d.q, d.st, 0, d.dn FROM d ORDER BY d.q, d.st
                    ON CONFLICT (queue, state, shard) DO UPDATE SET n = jc.n + EXCLUDED.n)
        SELECT c.rows, c.value, total + c.k INTO rows_moved, last, total FROM c;
        EXIT WHEN rows_moved < 1000;
    END LOOP;
    IF channel IS NOT NULL AND total > 0 THEN
        PERFORM pg_notify(channel, last::text);
    END IF;
    RETURN last;
END
$fn$;
"#;

/// The migrations, in order: `MIGRATIONS[i]` takes the tables from version `i` to `i + 1`.
const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

/// Creates or migrates the tables in `schema` (quoted as `quoted`). With `create` false, a
/// schema without tables is `DATABASE_NOT_FOUND` and nothing is created.
pub(crate) fn migrate(
    c: &mut Client,
    schema: &str,
    quoted: &str,
    url: &str,
    create: bool,
) -> Result<()> {
    let mut tx = c.transaction().pg("opening a transaction")?;
    // One opener at a time per schema (two processes starting together).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('jobspool.migrate.' || $1))",
        &[&schema],
    )
    .pg("locking the schema for migration")?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_version')",
            &[&schema],
        )
        .pg("reading the schema version")?
        .get(0);
    let current: i32 = if exists {
        let row = tx
            .query_opt(&format!("SELECT version FROM {quoted}.schema_version"), &[])
            .pg("reading the schema version")?;
        row.map_or(0, |r| r.get(0))
    } else {
        if !create {
            return Err(Error::DatabaseNotFound {
                path: format!("{url} (schema {schema})").into(),
            });
        }
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted}; \
             CREATE TABLE {quoted}.schema_version (version integer NOT NULL)"
        ))
        .pg("creating the schema")?;
        0
    };
    if current > VERSION {
        return Err(Error::Storage {
            context: format!(
                "the jobspool tables in schema {schema} are at version {current}, newer than \
                 this build knows ({VERSION}); upgrade jobspool (or use another schema)"
            ),
            source: None,
        });
    }
    for (from, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(&sql.replace("@.", &format!("{quoted}.")))
            .pg("migrating the schema")?;
        let to = i32::try_from(from + 1).unwrap_or(VERSION);
        tx.execute(&format!("DELETE FROM {quoted}.schema_version"), &[])
            .pg("migrating the schema")?;
        tx.execute(
            &format!("INSERT INTO {quoted}.schema_version (version) VALUES ($1)"),
            &[&to],
        )
        .pg("migrating the schema")?;
    }
    tx.commit().pg("committing the schema")?;
    Ok(())
}
