#![no_main]
//! Raw bytes as an HTTP request, through the server's request reader and router on a real
//! spool: every input gets a status (4xx for what is malformed), never a panic.
use std::sync::OnceLock;
use std::time::Duration;

use jobspool::{Durability, Spool};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|bytes: &[u8]| {
    let status = jobspool::fuzzing::http_request(spool(), bytes);
    assert!(status == 0 || (200..600).contains(&status), "status {status}");
});
