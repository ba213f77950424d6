//! `vimg create`: make a new, empty disk image.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::staging::{check_staged, Staging};
use crate::image::{self, Format};
use crate::options::Options;
use crate::units::parse_size;

/// Create a new, empty disk image.
///
/// Examples:
///   vimg create -f vmdk disk.vmdk 10G
///   vimg create -f vhd -o subformat=fixed disk.vhd 30G
///
/// An existing FILE is never overwritten unless --force is given.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Image format: vmdk, vhd (or vpc), raw
    #[arg(short = 'f', long = "format", default_value = "raw")]
    format: String,

    /// Format options as key=value[,key=value...]; may be repeated
    /// (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion,
    /// zeroed_grain; vhd: subformat=dynamic|fixed, force_size, block_size)
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,

    /// Replace FILE if it exists
    #[arg(long)]
    force: bool,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// The image file to create
    file: PathBuf,

    /// Virtual disk size: 512, 64K, 10G, 1.5T (binary units; rounded up to
    /// a whole 512-byte sector)
    size: String,
}

pub fn run(args: CreateArgs) -> anyhow::Result<u8> {
    let format = Format::from_name(&args.format)?;
    let size = parse_size(&args.size).map_err(anyhow::Error::msg)?;
    let mut opts = Options::parse(args.options.iter().map(String::as_str))?;
    let staging = Staging::new(&args.file, args.force)?;
    let mut image = image::create(&staging.path(), format, size, &mut opts)
        .with_context(|| format!("cannot create {}", args.file.display()))?;
    image.flush()?;
    let files = image.files();
    let virtual_size = image.virtual_size();
    drop(image);
    check_staged(&staging, &files)?;
    staging.commit(&files)?;
    if !args.quiet {
        println!(
            "Formatting '{}', fmt={} size={virtual_size}",
            args.file.display(),
            format.name()
        );
    }
    Ok(0)
}
