//! `vimg amend`: change in place what can change without touching the
//! disk's content.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::args::format_name;
use crate::image::{factory, Format, OpenOptions};
use crate::io::Access;
use crate::options::{help_text, Options};

/// Change in place what can change without moving data
///
/// For a VMDK: the adapter type (and the geometry that goes with it), the
/// geometry itself (geometry=C/H/S), the virtual hardware version and the
/// tools version, in the descriptor, whose other lines stay as they were;
/// the content ID stays, as the content does not change. For a VHD: the
/// creator application (creator_app=win, ...), OS (creator_os=Wi2k|Mac)
/// and version (creator_version=10.0), and the geometry
/// (force_size=on|off), in both footers, only while every reader still
/// takes the disk for the same size. Options that would move data are refused, naming the command
/// that does them.
///
/// Examples:
///   vimg amend -o adapter_type=lsilogic disk.vmdk
///   vimg amend -o hwversion=13,toolsversion=12352 disk.vmdk
///   vimg amend -o creator_app=win disk.vhd
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    override_usage = "vimg amend [OPTIONS] -o OPTIONS FILE\n       vimg amend -f FMT -o help"
)]
pub struct AmendArgs {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    format: Option<Format>,

    /// What to change, as key=value[,key=value...]
    #[arg(short = 'o', long = "options", value_name = "OPTIONS", required = true)]
    options: Vec<String>,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// Accepted for scripts: an amend is one write, too quick for a bar
    #[arg(short, long)]
    progress: bool,

    /// Cache mode (qemu-img's -t): accepted for scripts; the amend is
    /// written and flushed whatever it says
    #[arg(short = 't', long = "cache", value_enum, value_name = "CACHE")]
    cache: Option<super::staging::Cache>,

    /// qemu-img's "allow unsafe operations": vimg amends only what keeps
    /// every reader seeing the same disk, with or without it
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    qemu_only: super::args::QemuOnly,

    /// The image to amend (with -o help, -f or FILE says the format)
    file: Option<PathBuf>,
}

pub fn run(args: AmendArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    let mut opts = Options::parse(args.options.iter().map(String::as_str))?;
    if opts.wants_help() {
        let format = match (args.format, &args.file) {
            (Some(f), _) => f,
            (None, Some(file)) => factory::probe(file)?,
            (None, None) => bail!("-o help lists the options of a format: give -f FMT or a FILE"),
        };
        let docs = factory::amend_options(format);
        if docs.is_empty() {
            bail!("{} images have nothing to amend", format.name());
        }
        super::print(&help_text(format.name(), docs, &[]))?;
        return Ok(0);
    }
    let Some(file) = &args.file else {
        bail!("give the image FILE to amend");
    };
    let open = OpenOptions::new(Access::Write).with_parents(None);
    let mut image = factory::open_with(file, args.format, open)?;
    let changed = image
        .amend(&mut opts)
        .with_context(|| format!("cannot amend {}", file.display()))?;
    image.flush()?;
    if !args.quiet {
        match changed.is_empty() {
            true => println!("Nothing to change."),
            false => {
                for line in changed {
                    println!("{}", super::printable(&line));
                }
            }
        }
    }
    Ok(0)
}
