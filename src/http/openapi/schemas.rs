//! The JSON Schemas of the shapes the ops share (`components.schemas` of the document):
//! a job, a schedule, counts, an event, an error.

use serde_json::{json, Map, Value};

/// `{"$ref": "#/components/schemas/<name>"}`.
pub(crate) fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object with these `properties`, the `required` ones listed, no others allowed.
pub(crate) fn object(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

const TIME: &str = "date-time";

fn string() -> Value {
    json!({"type": "string"})
}

fn time() -> Value {
    json!({"type": "string", "format": TIME})
}

fn uint() -> Value {
    json!({"type": "integer", "minimum": 0})
}

/// A payload: any JSON value, or a base64 string with `payloadEncoding: "base64"`.
fn payload() -> Value {
    json!({"description": "Any JSON value; raw bytes as a base64 string with payloadEncoding \"base64\"."})
}

fn encoding() -> Value {
    json!({"type": "string", "enum": ["base64"]})
}

/// The job statuses.
pub(crate) const STATUSES: &[&str] = &[
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "dead_letter",
];

fn counts_properties() -> Map<String, Value> {
    COUNTS.iter().map(|k| ((*k).to_string(), uint())).collect()
}

const COUNTS: &[&str] = &[
    "pending",
    "running",
    "completed",
    "failed",
    "deadLetter",
    "cancelled",
    "delayed",
];

/// Every schema of `components.schemas`, by name.
pub(crate) fn components() -> Value {
    let mut queue = counts_properties();
    queue.insert("paused".into(), json!({"type": "boolean"}));
    let mut queue_required = COUNTS.to_vec();
    queue_required.push("paused");
    let mut stats = counts_properties();
    stats.insert(
        "queues".into(),
        json!({"type": "object", "additionalProperties": r("QueueStats")}),
    );
    let mut stats_required = COUNTS.to_vec();
    stats_required.push("queues");
    json!({
        "Job": object(
            &["id", "type", "version", "queue", "payload", "status", "priority", "attempts",
              "maxRetries", "createdAt", "updatedAt", "metadata", "executions"],
            json!({
                "id": {"type": "string", "format": "uuid"},
                "type": string(),
                "version": string(),
                "queue": string(),
                "payload": payload(),
                "payloadEncoding": encoding(),
                "status": {"type": "string", "enum": STATUSES},
                "priority": {"type": "integer"},
                "attempts": uint(),
                "maxRetries": uint(),
                "createdAt": time(),
                "updatedAt": time(),
                "scheduledAt": time(),
                "startedAt": time(),
                "completedAt": time(),
                "lastError": string(),
                "timeoutMs": uint(),
                "dedupeKey": string(),
                "tenantId": string(),
                "userId": string(),
                "traceId": string(),
                "metadata": {"type": "object", "additionalProperties": string()},
                "result": payload(),
                "resultEncoding": encoding(),
                "executions": {"type": "array", "items": r("Execution")},
                "leaseExpiresAt": time(),
                "deduplicated": {
                    "type": "boolean",
                    "description": "jobs.enqueue only: true when a live job held the dedupe key and is returned instead of a new one."
                },
            }),
        ),
        "Execution": object(
            &["attemptNumber", "startedAt"],
            json!({
                "attemptNumber": uint(),
                "startedAt": time(),
                "completedAt": time(),
                "durationMs": uint(),
                "success": {"type": "boolean"},
                "error": string(),
                "workerId": string(),
                "released": {"type": "boolean"},
            }),
        ),
        "Schedule": object(
            &["id", "name", "cronExpression", "timezone", "jobType", "enabled", "createdAt",
              "lastRunAt", "nextRunAt", "queue", "priority"],
            json!({
                "id": string(),
                "name": string(),
                "cronExpression": string(),
                "timezone": string(),
                "jobType": string(),
                "enabled": {"type": "boolean"},
                "createdAt": time(),
                "description": string(),
                "lastRunAt": {"type": ["string", "null"], "format": TIME},
                "nextRunAt": {"type": ["string", "null"], "format": TIME},
                "queue": string(),
                "priority": {"type": "integer"},
                "maxRetries": uint(),
                "payload": payload(),
                "payloadEncoding": encoding(),
            }),
        ),
        "QueueStats": object(&queue_required, Value::Object(queue)),
        "Stats": object(&stats_required, Value::Object(stats)),
        "Event": {
            "type": "object",
            "description": "One event of the log: its sequence number, its name (job.enqueued, job.completed, ...) and the fields of that event.",
            "required": ["seq", "name"],
            "properties": {"seq": {"type": "integer", "minimum": 1}, "name": string()},
            "additionalProperties": true,
        },
        "Error": object(
            &["error"],
            json!({"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "JOB_NOT_FOUND, INVALID_ARGUMENT, ... (see the README's status table); UNAUTHORIZED, FORBIDDEN, READ_ONLY, NOT_FOUND, METHOD_NOT_ALLOWED and BUSY from the HTTP layer itself."},
                    "message": string(),
                },
                "additionalProperties": true,
            }}),
        ),
    })
}
