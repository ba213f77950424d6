//! `vimg snapshot`: delta chains (VMware snapshot disks, Hyper-V
//! differencing disks), one file per verb.

pub(super) mod commit;
mod create;
mod list;
pub(super) mod rebase;

use std::fs;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::chain;
use crate::image::{factory, OpenOptions};
use crate::io::{folder_of, Access};

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

/// The deltas in `parent`'s folder that name it as their parent, with the
/// identity each recorded of it, sorted by path.
pub fn deltas_beside(parent: &Path) -> Vec<(PathBuf, String)> {
    let canon = |p: &Path| fs::canonicalize(p).ok();
    let parent_c = canon(parent);
    let Ok(entries) = fs::read_dir(folder_of(parent)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let image_like = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "vmdk" | "vhd" | "avhd"));
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if !image_like || !regular || canon(&path) == parent_c {
            continue;
        }
        let opts = OpenOptions::new(Access::ReadShared).with_parents(None);
        let Ok(image) = factory::open_with(&path, None, opts) else {
            continue;
        };
        if let Some((recorded, name)) = image.parent_link() {
            if canon(&chain::parent_path(&path, &name)) == parent_c {
                found.push((path, recorded.to_string()));
            }
        }
    }
    found.sort();
    found
}
