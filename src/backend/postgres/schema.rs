//! The tables, created on open and versioned: `schema_version` holds the version the tables
//! are at; open migrates older ones step by step and refuses newer ones.

use postgres::Client;

use super::conn::Pg;
use crate::model::error::{Error, Result};

/// The version of the tables this build writes.
pub(crate) const VERSION: i32 = 2;

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

/// Version 2: no row that every commit locks.
///
/// - Count rows get a `shard` (the writing session's backend pid modulo 16), so concurrent
///   transactions on one queue update different rows; stats sum the shards.
/// - Transactions append events to `event_staged` (a batch number drawn once per
///   transaction, and the event's place in it); `sequence_events` moves them into `event`
///   with contiguous seqs, in (batch, place) order, under an advisory lock, in a transaction
///   that commits with `synchronous_commit = on`. A transaction that committed before
///   another began drew the smaller batch number and is visible to any sequencer that sees
///   the later one, so seq order never contradicts commit order; numbered events are
///   durable; a rolled-back transaction leaves no gap.
const V2: &str = r#"
ALTER TABLE @.job_count ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE @.job_count DROP CONSTRAINT job_count_pkey;
ALTER TABLE @.job_count ADD PRIMARY KEY (queue, state, shard);
CREATE SEQUENCE @.event_batch;
CREATE TABLE @.event_staged (
    batch bigint NOT NULL,
    ord integer NOT NULL,
    at_ms bigint NOT NULL,
    name text NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (batch, ord)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
CREATE FUNCTION @.sequence_events(channel text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    moved bigint;
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
                    SELECT batch, ord FROM @.event_staged ORDER BY batch, ord LIMIT 10000
                ) AS pick
                WHERE e.batch = pick.batch AND e.ord = pick.ord
                RETURNING e.batch, e.ord, e.at_ms, e.name, e.body),
             n AS (SELECT count(*) AS k FROM s),
             c AS (UPDATE @.counter SET value = value + n.k FROM n
                   WHERE name = 'event_seq' RETURNING value, n.k),
             ins AS (INSERT INTO @.event (seq, at_ms, name, body)
                     SELECT c.value - c.k + row_number() OVER (ORDER BY s.batch, s.ord),
                            s.at_ms, s.name, s.body
                     FROM s, c)
        SELECT c.k, c.value INTO moved, last FROM c;
        total := total + moved;
        EXIT WHEN moved < 10000;
    END LOOP;
    IF channel IS NOT NULL AND total > 0 THEN
        PERFORM pg_notify(channel, last::text);
    END IF;
    RETURN last;
END
$fn$;
"#;

/// The migrations, in order: `MIGRATIONS[i]` takes the tables from version `i` to `i + 1`.
const MIGRATIONS: [&str; 2] = [V1, V2];

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
