//! The contract's JSON shapes (SPEC.md sections 2, 3, 5 and 9): camelCase field names,
//! RFC 3339 UTC times with milliseconds, payloads as JSON when they are JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::model::error::Error;
use crate::model::event::{Event, EventRecord};
use crate::model::job::{Execution, Job};
use crate::model::schedule::ScheduledJob;
use crate::model::types::{Counts, Stats};

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-28T20:00:00.123Z`.
#[must_use]
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Payload or result bytes: the JSON value when they are valid JSON, else `{"base64": ...}`.
#[must_use]
pub fn bytes(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(b) {
        Ok(v) => v,
        Err(_) => json!({ "base64": base64(b) }),
    }
}

/// Standard base64 with padding.
#[must_use]
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn put_opt<T: Into<Value>>(m: &mut Map<String, Value>, k: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(k.into(), v.into());
    }
}

fn execution(e: &Execution) -> Value {
    let mut m = Map::new();
    m.insert("attemptNumber".into(), e.attempt_number.into());
    m.insert("startedAt".into(), time(e.started_at).into());
    put_opt(&mut m, "completedAt", e.completed_at.map(time));
    put_opt(&mut m, "durationMs", e.duration_ms);
    put_opt(&mut m, "success", e.success);
    put_opt(&mut m, "error", e.error.clone());
    put_opt(&mut m, "workerId", e.worker_id.clone());
    if e.released {
        m.insert("released".into(), true.into());
    }
    Value::Object(m)
}

/// A job as in `jobs.get`.
#[must_use]
pub fn job(j: &Job) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), j.id.to_string().into());
    m.insert("type".into(), j.kind.clone().into());
    m.insert("version".into(), j.version.clone().into());
    m.insert("queue".into(), j.queue.clone().into());
    m.insert("payload".into(), bytes(&j.payload));
    m.insert("status".into(), j.status.as_str().into());
    m.insert("priority".into(), j.priority.into());
    m.insert("attempts".into(), j.attempts.into());
    m.insert("maxRetries".into(), j.max_attempts.into());
    m.insert("createdAt".into(), time(j.created_at).into());
    m.insert("updatedAt".into(), time(j.updated_at).into());
    put_opt(&mut m, "scheduledAt", j.scheduled_at.map(time));
    put_opt(&mut m, "startedAt", j.started_at.map(time));
    put_opt(&mut m, "completedAt", j.completed_at.map(time));
    put_opt(&mut m, "lastError", j.last_error.clone());
    put_opt(&mut m, "timeoutMs", j.timeout_ms);
    put_opt(&mut m, "dedupeKey", j.dedupe_key.clone());
    put_opt(&mut m, "tenantId", j.tenant_id.clone());
    put_opt(&mut m, "userId", j.user_id.clone());
    put_opt(&mut m, "traceId", j.trace_id.clone());
    m.insert(
        "metadata".into(),
        Value::Object(
            j.metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect(),
        ),
    );
    if let Some(r) = &j.result {
        m.insert("result".into(), bytes(r));
    }
    m.insert(
        "executions".into(),
        Value::Array(j.executions.iter().map(execution).collect()),
    );
    put_opt(&mut m, "leaseExpiresAt", j.lease_expires_at().map(time));
    Value::Object(m)
}

fn counts(c: &Counts) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("pending".into(), c.pending.into());
    m.insert("running".into(), c.running.into());
    m.insert("completed".into(), c.completed.into());
    m.insert("failed".into(), c.failed.into());
    m.insert("deadLetter".into(), c.dead_letter.into());
    m.insert("cancelled".into(), c.cancelled.into());
    m.insert("delayed".into(), c.delayed.into());
    m
}

/// Stats as in `jobs.stats`, with a `queues` object.
#[must_use]
pub fn stats(s: &Stats) -> Value {
    let mut m = counts(&s.total);
    let mut queues = Map::new();
    for (name, q) in &s.queues {
        let mut qm = counts(&q.counts);
        qm.insert("paused".into(), q.paused.into());
        queues.insert(name.clone(), Value::Object(qm));
    }
    m.insert("queues".into(), Value::Object(queues));
    Value::Object(m)
}

/// An event line: `seq`, `name`, then the payload fields of SPEC.md section 5.
#[must_use]
pub fn event(r: &EventRecord) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), r.seq.into());
    m.insert("name".into(), r.event.name().into());
    let mut f = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match &r.event {
        Event::JobEnqueued {
            job_id,
            kind,
            priority,
            enqueued_at,
            scheduled_at,
            tenant_id,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("priority", (*priority).into());
            f("enqueuedAt", time(*enqueued_at).into());
            if let Some(s) = scheduled_at {
                f("scheduledAt", time(*s).into());
            }
            if let Some(t) = tenant_id {
                f("tenantId", t.clone().into());
            }
        }
        Event::JobStarted {
            job_id,
            kind,
            attempt,
            started_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempt", (*attempt).into());
            f("startedAt", time(*started_at).into());
        }
        Event::JobCompleted {
            job_id,
            kind,
            attempt,
            duration_ms,
            completed_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempt", (*attempt).into());
            f("durationMs", (*duration_ms).into());
            f("completedAt", time(*completed_at).into());
        }
        Event::JobFailed {
            job_id,
            kind,
            attempt,
            error,
            will_retry,
            failed_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempt", (*attempt).into());
            f("error", error.clone().into());
            f("willRetry", (*will_retry).into());
            f("failedAt", time(*failed_at).into());
        }
        Event::JobRetrying {
            job_id,
            kind,
            attempt,
            next_attempt_at,
            backoff_ms,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempt", (*attempt).into());
            f("nextAttemptAt", time(*next_attempt_at).into());
            f("backoffMs", (*backoff_ms).into());
        }
        Event::JobDeadLettered {
            job_id,
            kind,
            attempts,
            last_error,
            dead_lettered_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempts", (*attempts).into());
            f("lastError", last_error.clone().into());
            f("deadLetteredAt", time(*dead_lettered_at).into());
        }
        Event::JobCancelled {
            job_id,
            kind,
            cancelled_at,
            cancelled_by,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("cancelledAt", time(*cancelled_at).into());
            if let Some(b) = cancelled_by {
                f("cancelledBy", b.clone().into());
            }
        }
        Event::SchedulerJobTriggered {
            schedule_name,
            job_id,
            job_type,
            triggered_at,
            next_run_at,
        } => {
            f("scheduleName", schedule_name.clone().into());
            f("jobId", job_id.to_string().into());
            f("jobType", job_type.clone().into());
            f("triggeredAt", time(*triggered_at).into());
            if let Some(n) = next_run_at {
                f("nextRunAt", time(*n).into());
            }
        }
        Event::JobReleased {
            job_id,
            kind,
            attempt,
            released_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("attempt", (*attempt).into());
            f("releasedAt", time(*released_at).into());
        }
        Event::JobRedriven {
            job_id,
            kind,
            redriven_at,
        } => {
            f("jobId", job_id.to_string().into());
            f("type", kind.clone().into());
            f("redrivenAt", time(*redriven_at).into());
        }
        Event::JobsPruned { count, pruned_at } => {
            f("count", (*count).into());
            f("prunedAt", time(*pruned_at).into());
        }
        Event::ScheduleChanged { name, at, .. } => {
            f("scheduleName", name.clone().into());
            f("at", time(*at).into());
        }
        Event::QueuePaused { queue, at, .. } => {
            f("queue", queue.clone().into());
            f("at", time(*at).into());
        }
    }
    Value::Object(m)
}

/// A schedule as in `jobs.schedule.list` (SPEC.md section 9), plus the job settings.
#[must_use]
pub fn schedule(s: &ScheduledJob) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), s.id.clone().into());
    m.insert("name".into(), s.name.clone().into());
    m.insert("cronExpression".into(), s.cron_expression.clone().into());
    m.insert("timezone".into(), s.timezone.clone().into());
    m.insert("jobType".into(), s.job_type.clone().into());
    m.insert("enabled".into(), s.enabled.into());
    m.insert("createdAt".into(), time(s.created_at).into());
    put_opt(&mut m, "description", s.description.clone());
    m.insert("lastRunAt".into(), s.last_run_at.map(time).into());
    m.insert("nextRunAt".into(), s.next_run_at.map(time).into());
    m.insert(
        "queue".into(),
        s.queue.clone().unwrap_or_else(|| "default".into()).into(),
    );
    m.insert("priority".into(), s.priority.into());
    put_opt(&mut m, "maxRetries", s.max_attempts);
    if !s.payload.is_empty() {
        m.insert("payload".into(), bytes(&s.payload));
    }
    Value::Object(m)
}

/// The schedule list: `{"schedules": [...]}`.
#[must_use]
pub fn schedules(list: &[ScheduledJob]) -> Value {
    json!({ "schedules": list.iter().map(schedule).collect::<Vec<_>>() })
}

/// An error as `{"error":{"code":..,"message":..}}`.
#[must_use]
pub fn error(e: &Error) -> Value {
    json!({ "error": { "code": e.code(), "message": e.message() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn payload_is_json_when_it_parses() {
        assert_eq!(bytes(br#"{"a":1}"#), json!({"a":1}));
        assert_eq!(bytes(&[0xff, 0x00]), json!({"base64":"/wA="}));
    }
}
