//! The embedded assets: `/assets/app.<crate version>.css` and `.js`. The version in the name
//! changes with each release, so they are cached for a year (`immutable`); any other name
//! is not served.

use super::super::Response;

/// The stylesheet.
pub(crate) const CSS: &str = include_str!("assets/app.css");
/// The script: live refresh, the interval picker, confirmations.
pub(crate) const JS: &str = include_str!("assets/app.js");

/// The asset named `name` (`app.<version>.css` or `app.<version>.js`), or `None`.
pub(crate) fn serve(name: &str) -> Option<Response> {
    let rest = name.strip_prefix("app.")?;
    let ext = rest.strip_prefix(env!("CARGO_PKG_VERSION"))?;
    match ext {
        ".css" => Some(Response::asset("text/css; charset=utf-8", CSS.as_bytes())),
        ".js" => Some(Response::asset(
            "text/javascript; charset=utf-8",
            JS.as_bytes(),
        )),
        _ => None,
    }
}
