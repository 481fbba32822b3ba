//! The `jobspool` command-line tool: a thin layer over the library's public API.

mod cli;

/// glibc's malloc serializes the writer, the applier and sled's epoch reclamation on its
/// arena locks (each frees what another allocated); mimalloc does not. Measured on the
/// burn-down bench: see docs/PERFORMANCE-HISTORY.md. It is built without transparent huge
/// pages (Cargo.toml says why).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
