#![no_main]
//! Event-log blocks: any bytes decode to a block or a CORRUPTION error, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = jobspool::fuzzing::decode_event_block(data) {
        assert_eq!(e.code(), "CORRUPTION");
    }
});
