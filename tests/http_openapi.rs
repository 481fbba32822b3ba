//! `GET /api/v1/openapi.json`: names every op, and its examples run on a real server with
//! outputs (and errors) that match the document's schemas.

mod common;

use common::http::{get, op, serve};
use common::{conformance, TestBackend};
use jobspool::{NewJob, Op};
use serde_json::{json, Value};

conformance!(every_op_is_documented_and_every_example_runs);

/// Follows `{"$ref": "#/components/schemas/X"}` in `doc`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Checks `v` against the subset of JSON Schema the document uses (type, enum, const,
/// required, properties, additionalProperties, items, minimum, maximum, format uuid and
/// date-time); the problems found, with their JSON paths.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let mut fail = |why: String| problems.push(format!("{at}: {why} (value {v})"));
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type {t}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unknown type {other}"),
        });
        if !ok {
            return fail(format!("not of type {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            fail(format!("not one of {e:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            fail(format!("not {c}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            fail(format!("below {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), v.as_f64()) {
        if n > max {
            fail(format!("above {max}"));
        }
    }
    if let (Some(f), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str()) {
        let ok = match f {
            "uuid" => s.parse::<jobspool::JobId>().is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            _ => true,
        };
        if !ok {
            fail(format!("not a {f}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(r.as_str().unwrap()) {
                fail(format!("lacks required {r}"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, val, &format!("{at}.{k}"), problems),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        problems.push(format!("{at}: unexpected field {k}"))
                    }
                    Some(s @ Value::Object(_)) => {
                        check(doc, s, val, &format!("{at}.{k}"), problems)
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), problems);
        }
    }
}

fn assert_valid(doc: &Value, schema: &Value, v: &Value, what: &str) {
    let mut problems = Vec::new();
    check(doc, schema, v, "$", &mut problems);
    assert!(problems.is_empty(), "{what}: {problems:#?}");
}

/// Replaces the example's placeholder job id with `id`.
fn with_id(example: &Value, id: &str) -> Value {
    let text = example
        .to_string()
        .replace("01936b5e-4d2a-7c3e-9f00-000000000001", id);
    serde_json::from_str(&text).unwrap()
}

fn every_op_is_documented_and_every_example_runs(b: TestBackend) {
    let (_store, _clock, spool) = b.fresh();
    let server = serve(&spool);
    let addr = server.addr();
    let doc = get(addr, "/api/v1/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for name in Op::NAMES {
        assert!(
            paths.contains_key(&format!("/api/v1/ops/{name}")),
            "{name} undocumented"
        );
    }
    for p in [
        "/api/v1/events",
        "/api/v1/openapi.json",
        "/metrics",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    // Every reference resolves.
    let text = doc.to_string();
    for r in text.split("\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    // A job of each kind the examples touch: a pending one (cancel, get), a dead one.
    let pending = spool
        .enqueue(NewJob::new("email.send", vec![]))
        .unwrap()
        .job
        .id
        .to_string();
    let dead = spool
        .enqueue(NewJob::new("email.send", vec![]).max_attempts(1))
        .unwrap()
        .job
        .id;
    let claimed = spool.claim(&spool.claim_request(2)).unwrap();
    for c in claimed {
        if c.job.id == dead {
            spool.fail(c.lease, "boom", jobspool::Retry::Never).unwrap();
        } else {
            spool.release(c.lease).unwrap();
        }
    }
    // In the document's order, which creates the schedule before toggling and deleting it.
    let mut ran = 0;
    for name in Op::NAMES {
        let post = &doc["paths"][format!("/api/v1/ops/{name}")]["post"];
        let media = &post["requestBody"]["content"]["application/json"];
        let example = with_id(&media["example"], &pending);
        assert_valid(
            &doc,
            &media["schema"],
            &example,
            &format!("{name} example input"),
        );
        let r = op(addr, name, &example);
        assert_eq!(r.status, 200, "{name} example {example}: {}", r.text());
        let out_schema = &post["responses"]["200"]["content"]["application/json"]["schema"];
        assert_valid(&doc, out_schema, &r.json(), &format!("{name} output"));
        ran += 1;
    }
    assert_eq!(ran, Op::NAMES.len());
    // A job with an execution (failed, then redriven by the example) matches too.
    let job = op(addr, "jobs.get", &json!({"jobId": dead.to_string()}));
    assert_eq!(job.json()["executions"].as_array().map(Vec::len), Some(1));
    assert_valid(
        &doc,
        &json!({"$ref": "#/components/schemas/Job"}),
        &job.json(),
        "a job with executions",
    );
    // Errors match the error schema.
    let err_schema = &doc["paths"]["/api/v1/ops/jobs.get"]["post"]["responses"]["default"]
        ["content"]["application/json"]["schema"];
    for input in [
        json!({"jobId": "01936b5e-4d2a-7c3e-9f00-00000000ffff"}),
        json!({"nope": 1}),
    ] {
        let r = op(addr, "jobs.get", &input);
        assert!(r.status >= 400);
        assert_valid(&doc, err_schema, &r.json(), "an error");
    }
    // The schema rejects what the server rejects.
    let enqueue_schema = &doc["paths"]["/api/v1/ops/jobs.enqueue"]["post"]["requestBody"]
        ["content"]["application/json"]["schema"];
    let mut problems = Vec::new();
    check(
        &doc,
        enqueue_schema,
        &json!({"type": "t", "typo": 1}),
        "$",
        &mut problems,
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        op(addr, "jobs.enqueue", &json!({"type": "t", "typo": 1})).status,
        400
    );
}
