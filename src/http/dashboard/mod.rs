//! The dashboard's pages (placeholder: none yet; every page path answers 404).

use super::{Ctx, Request, Response};

/// Answers a page request, or `None` for a path the dashboard does not serve (the router
/// then answers 404).
///
/// The contract between the router (`src/http/router.rs`) and the dashboard:
///
/// - **What reaches here:** every `GET`, `HEAD` and `POST` whose path is not under `/api/`,
///   not `/metrics`, `/healthz`, `/login` or `/logout`, and only after the router's checks
///   passed: the `Host` header is on the allow-list, the request carries the token (the
///   login cookie, or a bearer header), and a `POST` comes from this site (`Sec-Fetch-Site`
///   or `Origin`). Nothing here needs to check those again. A `HEAD` arrives as
///   [`super::request::Method::Head`]; answer it as a `GET` (the server drops the body).
/// - **Read-only:** when [`Ctx::read_only`] is set the router refuses every `POST` to a page
///   with 403 before it reaches here; use the flag to hide the action buttons and forms.
/// - **Cookie auth:** a browser logs in with `/?token=T` (any page path works): the router
///   sets the `HttpOnly; SameSite=Strict` cookie and redirects to the same URL without the
///   token, or with the form at `GET /login` (`POST /login`, field `token`). `POST /logout`
///   forgets the cookie. A request without a valid token gets the router's 401 login page.
/// - **Pages:** build them with [`Response::html`], passing [`Request::nonce`]: it sets the
///   `Content-Security-Policy` (scripts and styles from this origin, or inline ones marked
///   `nonce="{req.nonce}"`; no inline event handlers, no `eval`; fetch/EventSource to this
///   origin only; no framing) and `Cache-Control: private, no-store`. Escape every value.
/// - **Assets:** answer `/assets/<name>.<crate version>.<ext>` with [`Response::asset`]
///   (cached for a year; the version in the name changes with each release).
/// - **Actions:** forms `POST` (urlencoded: [`Request::form`]) and are answered with
///   [`Response::see_other`] to the page to show next (a path of this site; anything else
///   redirects to `/`). Run the action as an [`crate::Op`] on [`Ctx::spool`] (as the API
///   does), so it is checked and recorded like any other caller's.
/// - **Live data:** `GET /api/v1/events` (Server-Sent Events, `id:` = the event's sequence
///   number, resumable with `Last-Event-ID` or `?after=N`) and `POST /api/v1/ops/<op>`
///   accept the cookie too, so the page's script may use them with `credentials:
///   "same-origin"` (a `POST` from the page carries `Sec-Fetch-Site: same-origin`).
pub(crate) fn handle(ctx: &Ctx, req: &Request) -> Option<Response> {
    let _ = (ctx, req);
    None
}
