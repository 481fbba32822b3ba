//! `GET /metrics` (being written).

use super::response::Response;
use crate::Spool;

/// The metrics in Prometheus' text format.
pub(crate) fn render(spool: &Spool) -> Response {
    let _ = spool;
    Response::text(404, "not yet")
}
