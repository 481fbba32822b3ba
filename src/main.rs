//! The `jobspool` command-line tool: a thin layer over the library's public API.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
