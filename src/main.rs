//! The `vimg` binary: parse the command line, run it, report errors.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vimg::cmd::Cli::parse();
    match vimg::cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("vimg: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
