//! The dashboard binary: parses the flags, sets up logging on stderr and runs [`dashboard::run`]; an error ends
//! the process with a non-zero status and one line naming the fix.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use dashboard::Flags;

fn main() -> ExitCode {
    let flags = Flags::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours only on a terminal, not in a log file or a pipe.
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .init();
    match dashboard::run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dashboard: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
