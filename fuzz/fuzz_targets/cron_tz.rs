#![no_main]
//! Cron expressions and time zones: parse or reject with INVALID_CRON / INVALID_TIMEZONE.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, i64)| {
    let (expr, tz, now) = input;
    if let Err(e) = jobspool::fuzzing::parse_schedule(expr, tz, now) {
        assert!(matches!(e.code().as_str(), "INVALID_CRON" | "INVALID_TIMEZONE"), "{e}");
    }
});
