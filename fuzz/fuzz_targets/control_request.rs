#![no_main]
//! Control-socket request lines (the JSON input surface of the CLI and of other programs):
//! any bytes get a response line with `ok` and, on error, a contract code. Never a panic.
use std::sync::OnceLock;
use std::time::Duration;

use jobspool::{Durability, Spool};
use libfuzzer_sys::fuzz_target;

const CODES: [&str; 13] = [
    "JOB_NOT_FOUND", "JOB_NOT_PENDING", "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE", "SCHEDULE_EXISTS",
    "SCHEDULE_NOT_FOUND", "INVALID_CRON", "INVALID_TIMEZONE", "STALE_LEASE", "DATABASE_IN_USE",
    "CORRUPTION", "STORAGE", "SHUTTING_DOWN",
];

fn spool() -> &'static Spool {
    static SPOOL: OnceLock<(tempfile::TempDir, Spool)> = OnceLock::new();
    &SPOOL
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let spool = Spool::builder()
                .maintenance(false)
                .scheduler(false)
                .durability(Durability::Buffered { max_delay: Duration::from_secs(60) })
                .open(dir.path().join("db"))
                .expect("open");
            (dir, spool)
        })
        .1
}

fuzz_target!(|line: &[u8]| {
    let resp = jobspool::fuzzing::control_line(spool(), line);
    match resp["ok"].as_bool() {
        Some(true) => assert!(resp.get("output").is_some(), "{resp}"),
        Some(false) => {
            let code = resp["error"]["code"].as_str().unwrap_or("");
            assert!(CODES.contains(&code), "{resp}");
        }
        None => panic!("response without ok: {resp}"),
    }
});
