//! `GET /api/v1/openapi.json` (being written).

use serde_json::{json, Value};

/// The OpenAPI document of the API.
pub(crate) fn document() -> Value {
    json!({"openapi": "3.1.0", "info": {"title": "jobspool", "version": env!("CARGO_PKG_VERSION")}, "paths": {}})
}
