//! `vimg snapshot`: delta chains (VMware snapshot disks, Hyper-V
//! differencing disks), one file per verb.

pub(super) mod commit;
mod create;
mod list;
pub(super) mod rebase;

use clap::Subcommand;

/// Make and manage delta images (VMware snapshots, differencing VHDs).
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    Create(create::SnapshotCreateArgs),
    Commit(commit::CommitArgs),
    List(list::SnapshotListArgs),
    Rebase(rebase::RebaseArgs),
}

pub fn run(command: SnapshotCommand) -> anyhow::Result<u8> {
    match command {
        SnapshotCommand::Create(args) => create::run(args),
        SnapshotCommand::Commit(args) => commit::run(args),
        SnapshotCommand::List(args) => list::run(args),
        SnapshotCommand::Rebase(args) => rebase::run(args),
    }
}
