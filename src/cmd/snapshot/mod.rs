//! `vimg snapshot`: delta chains (VMware snapshot disks, Hyper-V
//! differencing disks), one file per verb.

pub(super) mod commit;
mod create;
mod list;
pub(super) mod rebase;

use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::chain;
use crate::image::{factory, OpenOptions};
use crate::io::{folder_of, Access};

/// Make and manage delta images (VMware snapshots, differencing VHDs).
///
/// qemu-img's form, `vimg snapshot [-l | -c|-a|-d NAME] FILE`, is for
/// internal snapshots, which VMDK and VHD images do not have: -l lists
/// none (as qemu-img does for them), -c, -a and -d are refused.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: Option<SnapshotCommand>,

    #[command(flatten)]
    internal: Internal,
}

/// qemu-img snapshot's own flags.
#[derive(Debug, Args)]
struct Internal {
    /// List the internal snapshots of FILE (VMDK and VHD have none: the
    /// list is empty); the default
    #[arg(short = 'l', long = "list")]
    list: bool,

    /// Not supported: make an internal snapshot (use `vimg snapshot create`)
    #[arg(short = 'c', long = "create", value_name = "SNAPSHOT", conflicts_with_all = ["apply", "delete", "list"])]
    create: Option<String>,

    /// Not supported: go back to an internal snapshot
    #[arg(short = 'a', long = "apply", value_name = "SNAPSHOT", conflicts_with_all = ["delete", "list"])]
    apply: Option<String>,

    /// Not supported: delete an internal snapshot
    #[arg(
        short = 'd',
        long = "delete",
        value_name = "SNAPSHOT",
        conflicts_with = "list"
    )]
    delete: Option<String>,

    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = super::args::format_name())]
    format: Option<crate::image::Format>,

    /// Read the image even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// Print nothing
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    qemu_only: super::args::QemuOnly,

    /// The image (qemu-img's form)
    #[arg(required = true)]
    file: Option<PathBuf>,
}

impl SnapshotArgs {
    /// True for the verbs that check for Ctrl-C between steps.
    pub fn stops_at_signals(&self) -> bool {
        matches!(
            self.command,
            Some(SnapshotCommand::Commit(_) | SnapshotCommand::Rebase(_))
        )
    }
}

/// `vimg snapshot [-l|-c|-a|-d] FILE`: internal snapshots, of which VMDK
/// and VHD images have none.
fn internal(args: Internal) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    for (flag, given) in [
        ("-c", args.create.is_some()),
        ("-a", args.apply.is_some()),
        ("-d", args.delete.is_some()),
    ] {
        if given {
            super::args::refuse(flag, super::args::NO_INTERNAL_SNAPSHOTS)?;
        }
    }
    let file = args.file.expect("clap requires FILE");
    let access = super::args::read_access(args.force_share);
    // Opened, so that a file that is not an image is an error, as in
    // qemu-img; its list of internal snapshots is empty.
    factory::open_with(
        &file,
        args.format,
        OpenOptions::new(access).with_parents(None),
    )?;
    Ok(0)
}

/// The verbs of `vimg snapshot`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    Create(create::SnapshotCreateArgs),
    Commit(commit::CommitArgs),
    List(list::SnapshotListArgs),
    Rebase(rebase::RebaseArgs),
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(SnapshotCommand::Create(args)) => create::run(args),
        Some(SnapshotCommand::Commit(args)) => commit::run(args),
        Some(SnapshotCommand::List(args)) => list::run(args),
        Some(SnapshotCommand::Rebase(args)) => rebase::run(args),
        None => internal(args.internal),
    }
}

/// The deltas in `parent`'s folder that name it as their parent, with the
/// identity each recorded of it, sorted by path.
pub fn deltas_beside(parent: &Path) -> Vec<(PathBuf, String)> {
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
        if !image_like || !regular || chain::same_file(&path, parent) {
            continue;
        }
        let opts = OpenOptions::new(Access::ReadShared).with_parents(None);
        let Ok(image) = factory::open_with(&path, None, opts) else {
            continue;
        };
        if let Some((recorded, name)) = image.parent_link() {
            if chain::same_file(&chain::parent_path(&path, &name), parent) {
                found.push((path, recorded.to_string()));
            }
        }
    }
    found.sort();
    found
}
