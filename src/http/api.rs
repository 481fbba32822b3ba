//! The JSON API under `/api/v1/`: one route per op, `POST /api/v1/ops/<op name>` with the
//! op's input as the body, answered with the op's output (the same bytes the control socket
//! answers) or `{"error":{"code":..,"message":..}}` with the code's HTTP status.

use serde_json::Value;

use super::request::{Method, Request};
use super::response::Response;
use super::router::Routed;
use super::Ctx;
use crate::api::json::ErrorView;
use crate::model::error::Error;
use crate::Op;

/// Routes a request under `/api/` (or `/metrics`), already authorized.
pub(crate) fn route(ctx: &Ctx, req: &Request, segs: &[&str]) -> Routed {
    let get = matches!(req.method, Method::Get | Method::Head);
    match segs {
        ["api", "v1", "ops", name] if req.method == Method::Post => run_op(ctx, name, &req.body),
        ["api", "v1", "ops", _] => method_not_allowed("POST"),
        // HEAD: the stream's headers, no stream.
        ["api", "v1", "events"] if req.method == Method::Head => {
            match super::sse::start_after(req) {
                Ok(_) => Response::new(200, "text/event-stream", Vec::new()).into(),
                Err(e) => error(&e).into(),
            }
        }
        ["api", "v1", "events"] if get => match super::sse::start_after(req) {
            Ok(after) => Routed::Events { after },
            Err(e) => error(&e).into(),
        },
        ["api", "v1", "openapi.json"] if get => {
            Response::json(200, &super::openapi::document()).into()
        }
        ["metrics"] if get => super::metrics::render(&ctx.spool).into(),
        ["api", "v1", "events" | "openapi.json"] | ["metrics"] => method_not_allowed("GET, HEAD"),
        _ => Response::error(
            404,
            "NOT_FOUND",
            "no such API route; see GET /api/v1/openapi.json",
        )
        .into(),
    }
}

/// The methods the API route `segs` answers (`None`: no such route).
pub(crate) fn allow(segs: &[&str]) -> Option<&'static str> {
    match segs {
        ["api", "v1", "ops", _] => Some("POST"),
        ["api", "v1", "events" | "openapi.json"] | ["metrics"] => Some("GET, HEAD"),
        _ => None,
    }
}

fn method_not_allowed(allow: &str) -> Routed {
    Response::error(405, "METHOD_NOT_ALLOWED", &format!("use {allow}"))
        .header("Allow", allow)
        .into()
}

/// Runs the op `name` with the JSON `body` (empty = no fields).
pub(crate) fn run_op(ctx: &Ctx, name: &str, body: &[u8]) -> Routed {
    let Some(doc) = super::openapi::ops::find(name) else {
        return Response::error(
            404,
            "INVALID_ARGUMENT",
            &format!("unknown op {name:?}; known ops: {}", Op::NAMES.join(", ")),
        )
        .into();
    };
    if ctx.read_only && doc.mutates {
        return Response::error(
            403,
            "READ_ONLY",
            &format!("{name} changes the queue and this server is read-only"),
        )
        .into();
    }
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return error(&Error::invalid(format!(
                    "{name}: the body is not JSON: {e}"
                )))
                .into()
            }
        }
    };
    match Op::from_json(name, input).and_then(|op| op.run(&ctx.spool)) {
        Ok(out) => Response::json(200, &out).into(),
        Err(e) => error(&e).into(),
    }
}

/// The error body with the code's status.
pub(crate) fn error(e: &Error) -> Response {
    Response::json(
        e.http_status(),
        &serde_json::json!({ "error": ErrorView::from(e) }),
    )
}
