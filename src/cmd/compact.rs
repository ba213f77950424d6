//! `vimg compact`: give back the space of grains and blocks that read as
//! zeros.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::args::format_name;
use super::info::actual_size;
use crate::image::{factory, Format, OpenOptions};
use crate::io::Access;
use crate::units::human_size;

/// Give back the space of grains and blocks that hold only zeros
///
/// After a guest has zeroed its free space, as `vmware-vdiskmanager -k`,
/// Hyper-V's Optimize-VHD and VirtualBox's --compact do: sparse VMDKs and
/// dynamic and differencing VHDs drop those grains or blocks, and their
/// space is cut off the end of the file or punched out of it (a hole).
/// What every sector reads stays, and so does the image's identity (VMDK
/// CID, VHD UUID): deltas made from it stay valid. In a delta, a zero
/// grain over parent data is kept, as it hides that data.
///
/// Examples:
///   vimg compact disk.vmdk
///   vimg compact -p child.vhd
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompactArgs {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    format: Option<Format>,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// Show a progress bar (only when stderr is a terminal)
    #[arg(short, long)]
    progress: bool,

    /// The image to compact
    file: PathBuf,
}

pub fn run(args: CompactArgs) -> anyhow::Result<u8> {
    let open = OpenOptions::new(Access::Write);
    let mut image = factory::open_with(&args.file, args.format, open)?;
    let files = image.files();
    let before = actual_size(&files);
    let bar = super::progress::bar(args.progress, image.virtual_size());
    let dropped = image
        .compact(&mut |done| super::progress::show(&bar, done))
        .with_context(|| format!("cannot compact {}", args.file.display()))?;
    super::progress::finish(bar);
    image.flush()?;
    drop(image);
    let after = actual_size(&files);
    if !args.quiet {
        println!(
            "{}: {} of zeros dropped; on disk {} -> {}.",
            args.file.display(),
            human_size(dropped),
            human_size(before),
            human_size(after)
        );
    }
    Ok(0)
}
