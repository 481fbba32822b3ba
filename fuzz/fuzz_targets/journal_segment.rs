#![no_main]
//! Journal segments: any bytes read as entries up to the first torn one, never a panic,
//! never an allocation past the input's size; what decodes re-encodes to its bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = jobspool::fuzzing::read_journal(data);
});
