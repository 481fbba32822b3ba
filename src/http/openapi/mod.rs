//! `GET /api/v1/openapi.json`: the API as an OpenAPI 3.1 document, built from the op table
//! ([`ops::OPS`]) and the shared schemas, so it cannot drift from what the server answers.

pub(crate) mod ops;
pub(crate) mod schemas;

use serde_json::{json, Map, Value};

use super::auth::COOKIE_PREFIX;

/// `jobs.schedule.create` -> `jobsScheduleCreate`, for `operationId`.
fn operation_id(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '.' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn error_responses() -> Value {
    json!({
        "description": "An error: 400 for input the op rejects, 401 without the token, 403 for a cross-origin or read-only refusal, 404 for a missing job or schedule, 409 for a conflict, 413 for a body or payload over the limit, 500/503 for storage trouble or a closing server.",
        "content": {"application/json": {"schema": schemas::r("Error")}},
    })
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for op in ops::OPS {
        let tag = if op.mutates { "changes" } else { "reads" };
        paths.insert(
            format!("/api/v1/ops/{}", op.name),
            json!({"post": {
                "operationId": operation_id(op.name),
                "summary": op.summary,
                "tags": [tag],
                "requestBody": {
                    "required": false,
                    "description": "The op's input; an empty body is {}.",
                    "content": {"application/json": {
                        "schema": (op.input)(),
                        "example": (op.example)(),
                    }},
                },
                "responses": {
                    "200": {
                        "description": "The op's output.",
                        "content": {"application/json": {"schema": (op.output)()}},
                    },
                    "default": error_responses(),
                },
            }}),
        );
    }
    paths.insert(
        "/api/v1/events".into(),
        json!({"get": {
            "operationId": "eventsStream",
            "summary": "The event log as Server-Sent Events: `id: <seq>`, `data: <event JSON>`; resumable.",
            "parameters": [
                {"name": "Last-Event-ID", "in": "header", "required": false,
                 "description": "Stream the events after this sequence number (browsers send it when they reconnect).",
                 "schema": {"type": "integer", "minimum": 0}},
                {"name": "after", "in": "query", "required": false,
                 "description": "As Last-Event-ID, when that header is absent; 0 = from the oldest event kept. Neither: only new events.",
                 "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "200": {"description": "An endless stream; a comment line on idle heartbeats.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "503": {"description": "Too many event streams are open.",
                        "content": {"application/json": {"schema": schemas::r("Error")}}},
                "default": error_responses(),
            },
        }}),
    );
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
        }}),
    );
    paths.insert(
        "/metrics".into(),
        json!({"get": {
            "operationId": "metrics",
            "summary": "Prometheus text format: jobs by queue and status, throughput counters, fsyncs, lease expiries, handler durations.",
            "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }}),
    );
    paths.insert(
        "/healthz".into(),
        json!({"get": {
            "operationId": "health",
            "summary": "`ok` while the server runs (no token needed).",
            "security": [],
            "responses": {"200": {"description": "ok", "content": {"text/plain": {}}}},
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "jobspool",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A durable job queue's operations over HTTP. Every op is POST /api/v1/ops/<name> with its input as a JSON body; the answer is its output, or {\"error\": {\"code\", \"message\", ...}} with a fitting status.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": schemas::components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The server's token (given at start, or printed in its login URL)."},
                "cookie": {"type": "apiKey", "in": "cookie", "name": format!("{COOKIE_PREFIX}<port>"),
                           "description": "A session id (not the token), set by logging in at /?token=T or /login and named after the server's port; POST /logout ends it (pages; POSTs must come from the same origin)."},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_camel_case() {
        assert_eq!(operation_id("jobs.schedule.create"), "jobsScheduleCreate");
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["paths"].as_object().map(Map::len),
            Some(ops::OPS.len() + 4)
        );
    }
}
