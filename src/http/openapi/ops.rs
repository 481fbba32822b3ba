//! Every op the API serves, declared once: its wire name, what it does, whether it changes
//! the queue, the JSON Schema of its input and of its output, and an example input. The
//! OpenAPI document, the read-only rule and the tests read this table; a test checks that it
//! names every [`crate::Op`] and that every example runs on a real server.

use serde_json::{json, Value};

use super::schemas::{object, r, STATUSES};

/// One op of the API.
pub(crate) struct OpDoc {
    /// The wire name (`jobs.enqueue`), also the last segment of its path.
    pub(crate) name: &'static str,
    /// One line for the document.
    pub(crate) summary: &'static str,
    /// Whether it changes the queue (refused in read-only mode).
    pub(crate) mutates: bool,
    /// The input's schema.
    pub(crate) input: fn() -> Value,
    /// The output's schema.
    pub(crate) output: fn() -> Value,
    /// An example input (ids in it are placeholders).
    pub(crate) example: fn() -> Value,
}

/// The placeholder job id of the examples.
pub(crate) const EXAMPLE_ID: &str = "01936b5e-4d2a-7c3e-9f00-000000000001";

fn id() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn s() -> Value {
    json!({"type": "string"})
}

fn int() -> Value {
    json!({"type": "integer"})
}

fn page() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 10000})
}

fn payload() -> Value {
    json!({"description": "Any JSON value; raw bytes as a base64 string with payloadEncoding \"base64\"."})
}

fn empty() -> Value {
    object(&[], json!({}))
}

fn enqueue_input() -> Value {
    object(
        &["type"],
        json!({
            "type": s(),
            "payload": payload(),
            "payloadEncoding": {"type": "string", "enum": ["base64"]},
            "delaySeconds": {"type": "number", "minimum": 0},
            "maxRetries": {"type": "integer", "minimum": 0},
            "priority": int(),
            "timeoutMs": {"type": "integer", "minimum": 0},
            "dedupeKey": s(),
            "queue": s(),
            "runAt": {"type": "string", "format": "date-time"},
            "tenantId": s(),
            "userId": s(),
            "traceId": s(),
            "metadata": {"type": "object", "additionalProperties": s()},
            "version": s(),
        }),
    )
}

fn jobs_output() -> Value {
    object(
        &["jobs"],
        json!({"jobs": {"type": "array", "items": r("Job")}}),
    )
}

fn success() -> Value {
    object(&["success"], json!({"success": {"const": true}}))
}

fn queue_output() -> Value {
    object(
        &["queue", "paused"],
        json!({"queue": s(), "paused": {"type": "boolean"}}),
    )
}

/// The table, in the order of the reference.
pub(crate) const OPS: &[OpDoc] = &[
    OpDoc {
        name: "jobs.enqueue",
        summary: "Enqueue one job (or return the live job holding its dedupeKey).",
        mutates: true,
        input: enqueue_input,
        output: || r("Job"),
        example: || json!({"type": "email.send", "payload": {"to": "a@example.com"}, "maxRetries": 5}),
    },
    OpDoc {
        name: "jobs.enqueue.batch",
        summary: "Enqueue many jobs, all or nothing.",
        mutates: true,
        input: || object(&["jobs"], json!({"jobs": {"type": "array", "items": enqueue_input()}})),
        output: jobs_output,
        example: || json!({"jobs": [{"type": "a"}, {"type": "b", "queue": "slow"}]}),
    },
    OpDoc {
        name: "jobs.cancel",
        summary: "Cancel a pending job.",
        mutates: true,
        input: || object(&["jobId"], json!({"jobId": id(), "cancelledBy": s()})),
        output: success,
        example: || json!({"jobId": EXAMPLE_ID, "cancelledBy": "ops"}),
    },
    OpDoc {
        name: "jobs.get",
        summary: "One job, with its executions.",
        mutates: false,
        input: || object(&["jobId"], json!({"jobId": id()})),
        output: || r("Job"),
        example: || json!({"jobId": EXAMPLE_ID}),
    },
    OpDoc {
        name: "jobs.stats",
        summary: "Counts by status, global and per queue.",
        mutates: false,
        input: empty,
        output: || r("Stats"),
        example: || json!({}),
    },
    OpDoc {
        name: "jobs.list",
        summary: "One page of jobs, oldest first; the next page starts after the last id.",
        mutates: false,
        input: || object(&[], json!({
            "status": {"type": "string", "enum": STATUSES},
            "queue": s(),
            "type": s(),
            "tenantId": s(),
            "dedupeKey": s(),
            "limit": page(),
            "after": id(),
        })),
        output: jobs_output,
        example: || json!({"status": "pending", "limit": 50}),
    },
    OpDoc {
        name: "jobs.dead.list",
        summary: "One page of dead_letter and failed jobs.",
        mutates: false,
        input: || object(&[], json!({"queue": s(), "type": s(), "limit": page()})),
        output: jobs_output,
        example: || json!({"limit": 100}),
    },
    OpDoc {
        name: "jobs.dead.redrive",
        summary: "Send one dead job (jobId) or all of them (all: true, optionally of a queue and type) back to pending.",
        mutates: true,
        input: || object(&[], json!({"jobId": id(), "all": {"type": "boolean"}, "queue": s(), "type": s()})),
        output: || object(&["redriven", "jobIds"], json!({
            "redriven": {"type": "integer", "minimum": 0},
            "jobIds": {"type": "array", "items": id()},
        })),
        example: || json!({"all": true, "type": "email.send"}),
    },
    OpDoc {
        name: "jobs.schedule.create",
        summary: "Create a cron schedule (5 fields, 6 with seconds, or @daily-style).",
        mutates: true,
        input: || object(&["name", "cronExpression", "jobType"], json!({
            "name": s(),
            "cronExpression": s(),
            "jobType": s(),
            "description": s(),
            "timezone": s(),
            "payload": payload(),
            "payloadEncoding": {"type": "string", "enum": ["base64"]},
            "maxRetries": {"type": "integer", "minimum": 0},
            "enabled": {"type": "boolean"},
            "queue": s(),
            "priority": int(),
            "replace": {"type": "boolean"},
        })),
        output: || r("Schedule"),
        example: || json!({"name": "nightly-report", "cronExpression": "0 3 * * *", "jobType": "report.build", "timezone": "Europe/Berlin"}),
    },
    OpDoc {
        name: "jobs.schedule.toggle",
        summary: "Enable or disable a schedule.",
        mutates: true,
        input: || object(&["name", "enabled"], json!({"name": s(), "enabled": {"type": "boolean"}})),
        output: || r("Schedule"),
        example: || json!({"name": "nightly-report", "enabled": false}),
    },
    OpDoc {
        name: "jobs.schedule.list",
        summary: "Every schedule.",
        mutates: false,
        input: empty,
        output: || object(&["schedules"], json!({"schedules": {"type": "array", "items": r("Schedule")}})),
        example: || json!({}),
    },
    OpDoc {
        name: "jobs.schedule.delete",
        summary: "Delete a schedule.",
        mutates: true,
        input: || object(&["name"], json!({"name": s()})),
        output: success,
        example: || json!({"name": "nightly-report"}),
    },
    OpDoc {
        name: "jobs.queue.pause",
        summary: "Pause a queue: its jobs stay pending, nothing is claimed.",
        mutates: true,
        input: || object(&["queue"], json!({"queue": s()})),
        output: queue_output,
        example: || json!({"queue": "default"}),
    },
    OpDoc {
        name: "jobs.queue.resume",
        summary: "Resume a paused queue.",
        mutates: true,
        input: || object(&["queue"], json!({"queue": s()})),
        output: queue_output,
        example: || json!({"queue": "default"}),
    },
    OpDoc {
        name: "jobs.events",
        summary: "Events after a sequence number, one page (GET /api/v1/events streams them).",
        mutates: false,
        input: || object(&[], json!({"since": {"type": "integer", "minimum": 0}, "limit": page()})),
        output: || object(&["events"], json!({"events": {"type": "array", "items": r("Event")}})),
        example: || json!({"since": 0, "limit": 100}),
    },
    OpDoc {
        name: "jobs.prune",
        summary: "Remove finished jobs and old events past their retention.",
        mutates: true,
        input: empty,
        output: || object(&["pruned"], json!({"pruned": {"type": "integer", "minimum": 0}})),
        example: || json!({}),
    },
    OpDoc {
        name: "jobs.ping",
        summary: "Is the server there; the newest event's sequence number.",
        mutates: false,
        input: empty,
        output: || object(&["pong", "lastSeq"], json!({"pong": {"const": true}, "lastSeq": {"type": "integer", "minimum": 0}})),
        example: || json!({}),
    },
];

/// The op named `name`, if the API serves it.
pub(crate) fn find(name: &str) -> Option<&'static OpDoc> {
    OPS.iter().find(|o| o.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_op_once_in_order() {
        let names: Vec<&str> = OPS.iter().map(|o| o.name).collect();
        assert_eq!(names, crate::Op::NAMES);
    }

    #[test]
    fn every_example_parses_as_its_op() {
        for op in OPS {
            crate::Op::from_json(op.name, (op.example)())
                .unwrap_or_else(|e| panic!("{}: {e}", op.name));
        }
    }
}
