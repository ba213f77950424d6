//! The command line: one file per subcommand, each holding its arguments
//! (whose doc comments are the help text) and its `run`.

mod convert;
mod create;
mod info;
mod staging;

use clap::{Parser, Subcommand, ValueEnum};

/// Create, inspect and convert VMware VMDK and Microsoft VHD disk images.
///
/// Flags follow qemu-img where qemu-img has them; formats are `vmdk`,
/// `vhd` (also `vpc`, as qemu-img calls it) and `raw`.
#[derive(Debug, Parser)]
#[command(name = "vimg", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Create(create::CreateArgs),
    Info(info::InfoArgs),
    Convert(convert::ConvertArgs),
}

/// Output style of `info`, `map` and `check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Human,
    Json,
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Create(args) => create::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
