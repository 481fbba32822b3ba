#![no_main]
//! Stored job records: any bytes decode to a record or a CORRUPTION error, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = jobspool::fuzzing::decode_job(data) {
        assert_eq!(e.code(), "CORRUPTION");
    }
});
