//! `iot-pipeline`: parses the launcher's flags and runs the whole pipeline ([`launcher::run`]); an error ends the
//! process with one line on stderr and a non-zero status.

use clap::Parser;

fn main() {
    if let Err(err) = launcher::run(launcher::Args::parse()) {
        eprintln!("iot-pipeline: error: {err:#}");
        std::process::exit(1);
    }
}
