//! `--http ADDR` for `serve` and `work`: start `jobspool::http` beside the control socket and
//! say where it listens, first thing on stdout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobspool::http::{HttpConfig, HttpServer};
use jobspool::{Error, Spool};

use super::args::HttpArgs;
use super::output::{Doc, Out};

/// Starts the server when `--http` is given and prints `http: listening on URL` (or, with
/// `--json`, `{"listening": URL}`): the login URL with the generated token, or the bare
/// address when the token was given (it is not echoed).
pub(crate) fn start(
    spool: &Spool,
    args: &HttpArgs,
    out: &Out,
) -> Result<Option<HttpServer>, Error> {
    let Some(addr) = &args.http else {
        return Ok(None);
    };
    let bind = addr.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "--http {addr:?} is not an address; give IP:PORT, e.g. 127.0.0.1:7420"
        ))
    })?;
    let mut config = HttpConfig::new(bind).read_only(args.read_only);
    if let Some(t) = &args.token {
        config = config.token(t.clone());
    }
    for h in &args.allow_hosts {
        config = config.allow_host(h.clone());
    }
    let server = jobspool::http::serve(spool, config)?;
    let url = if args.token.is_some() {
        server.url().to_string()
    } else {
        server.login_url().to_string()
    };
    out.value(
        &Doc::from_value(serde_json::json!({ "listening": url })),
        &format!("http: listening on {url}"),
    );
    Ok(Some(server))
}

/// A flag raised by SIGINT or SIGTERM (instead of their default: ending the process).
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| Error::Storage {
            context: format!("installing a signal handler: {e}"),
            source: None,
        })?;
    }
    Ok(stop)
}

/// Blocks until SIGINT or SIGTERM.
pub(crate) fn wait_for_signal() -> Result<(), Error> {
    let stop = stop_on_signals()?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
