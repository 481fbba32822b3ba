//! Running `jobspool --json bench ...` (for the tests that need the binary: include with
//! `#[path = "common/bench.rs"] mod bench_run;`).

use std::process::Command;

/// Runs `jobspool --json bench ARGS` and returns its JSON; panics with stderr on failure.
pub fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jobspool"))
        .args(["--json", "bench"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
