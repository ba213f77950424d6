//! `vimg snapshot create`: a new, empty delta over an image.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::super::args::Placing;
use crate::image::{factory, Format};
use crate::options::{help_text, Options};

/// Make a new, empty delta over BASE (a VMware snapshot, a differencing VHD)
///
/// The delta is a VMware snapshot disk over a VMDK, a differencing disk
/// over a VHD.
///
/// Examples:
///   vimg snapshot create base.vmdk base-000001.vmdk
///   vimg snapshot create parent.vhd child.vhd
///
/// The delta has BASE's format and size, records BASE relative to its own
/// folder and BASE's identity (VMDK parentCID, VHD parent UUID), and reads
/// BASE wherever it holds nothing itself. A VMDK delta is split
/// (twoGbMaxExtentSparse) when BASE is, monolithicSparse otherwise, unless
/// -o subformat= says which.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SnapshotCreateArgs {
    /// Options of the delta's format as key=value[,key=value...]; `-o help`
    /// lists them
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,

    #[command(flatten)]
    placing: Placing,

    /// The image to make a delta over
    base: PathBuf,

    /// The delta to create
    delta: PathBuf,
}

pub fn run(args: SnapshotCreateArgs) -> anyhow::Result<u8> {
    let format = factory::probe(&args.base)
        .with_context(|| format!("cannot open the base {}", args.base.display()))?;
    if format == Format::Raw {
        bail!(
            "{}: a raw image has no deltas; give a VMDK or VHD base",
            args.base.display()
        );
    }
    let mut opts = Options::parse(args.options.iter().map(String::as_str))?;
    if opts.wants_help() {
        // What create takes, but what BASE settles.
        let docs = factory::create_options(format);
        let settled = ["size", "backing_file", "backing_fmt"];
        super::super::print(&help_text(format.name(), docs, &settled))?;
        return Ok(0);
    }
    for (key, why) in [
        ("size", "a delta has its parent's size"),
        ("backing_file", "BASE is the parent"),
        ("backing_fmt", "a delta has its parent's format"),
    ] {
        if opts.take_str(key)?.is_some() {
            bail!("-o {key} has no place in snapshot create: {why}");
        }
    }
    super::super::create::make(
        &args.delta,
        format,
        None,
        opts,
        Some((&args.base, Some(format))),
        &args.placing,
    )
}
