//! `vimg convert`: copy an image into a new one of another format.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::args::{format_name, read_access, Confinement, Placing};
use super::progress;
use super::staging::Staging;
use crate::copy::{copy, CopyOptions, Layers, Plan};
use crate::image::{factory, Format};
use crate::options::Options;
use crate::units::parse_size;

/// Convert a disk image to another format or subformat
///
/// Examples:
///   vimg convert -O vhd disk.vmdk disk.vhd
///   vimg convert -f vpc -O vmdk disk.vhd disk.vmdk
///
/// Only allocated, non-zero data is copied. The target is written beside
/// its final name and moved into place only when the conversion succeeded;
/// an existing TARGET is never overwritten unless --force is given.
///
/// A streamOptimized VMDK (-O vmdk -o subformat=streamOptimized, or -c) can
/// be written to standard output with TARGET `-`, for piping into an
/// upload tool.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ConvertArgs {
    /// Source format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    source_format: Option<Format>,

    /// Target format: vmdk, vhd (or vpc), raw
    #[arg(short = 'O', long = "output-format", value_name = "FMT", default_value = "raw", value_parser = format_name())]
    output_format: Format,

    /// Target format options as key=value[,key=value...]; may be repeated
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,

    /// Show a progress bar (only when stderr is a terminal)
    #[arg(short = 'p', long)]
    progress: bool,

    /// Compress the target (streamOptimized VMDK, chosen when no subformat
    /// is given; an error for targets that cannot be compressed)
    #[arg(short = 'c', long = "compress")]
    compress: bool,

    /// Zero runs of at least this many bytes (a multiple of 512) are left
    /// unallocated in the target; 0 allocates everything
    #[arg(short = 'S', value_name = "SIZE", default_value = "4k", value_parser = sparse_size)]
    sparse_size: u64,

    /// Read the source even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    #[command(flatten)]
    confinement: Confinement,

    #[command(flatten)]
    placing: Placing,

    /// The image to read
    source: PathBuf,

    /// The image to write; `-` writes a streamOptimized VMDK to standard
    /// output
    target: PathBuf,
}

/// `-S`: a size that is a multiple of 512 (qemu-img takes 1536 too).
fn sparse_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    match size % 512 {
        0 => Ok(size),
        _ => Err(format!("{size} is not a multiple of 512")),
    }
}

pub fn run(args: ConvertArgs) -> anyhow::Result<u8> {
    let (source_format, target_format) = (args.source_format, args.output_format);
    let sparse_size = args.sparse_size;
    let mut opts = Options::parse(args.options.iter().map(String::as_str))?;
    if args.compress {
        opts.set_by_flag("compress", "on", "-c");
    }

    let open = args.confinement.open_options(read_access(args.force_share));
    let mut src = factory::open_with(&args.source, source_format, open)?;
    let size = src.virtual_size();
    let to_stdout = args.target.as_os_str() == "-";
    let staging = match to_stdout {
        true => None,
        false => Some(Staging::new(
            &args.target,
            args.placing.force,
            args.placing.cache.unwrap_or_default(),
        )?),
    };
    // Errors name the target, not the hidden work folder.
    let explain = |e: crate::Error| -> anyhow::Error {
        match &staging {
            Some(s) => s.explain(e),
            None => e.into(),
        }
    };
    let mut dst = match &staging {
        Some(staging) => factory::create(&staging.path(), target_format, size, &mut opts, None),
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write a disk image to a terminal; redirect standard output");
            }
            let out = Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::io::stdout(),
            ));
            // The stream names its extent; the likely final name is the
            // source's with a .vmdk suffix.
            let stem = args
                .source
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let name = PathBuf::from(format!("{stem}.vmdk"));
            factory::create_stream(&name, target_format, size, &mut opts, out)
        }
    }
    .map_err(explain)
    .with_context(|| format!("cannot create {}", args.target.display()))?;
    if !args.placing.quiet {
        for note in opts.take_notes() {
            eprintln!("vimg: {note}");
        }
    }
    if dst.virtual_size() < size {
        bail!(
            "{}: the target would hold {} bytes, less than the source's {size}",
            args.target.display(),
            dst.virtual_size()
        );
    }

    let bar = progress::bar(args.progress, size);
    let opts = CopyOptions { sparse_size };
    // A fresh target reads as zeros: only data needs copying, unless -S 0
    // asks for every byte to be allocated.
    let plan = Plan::new(0..size, Layers::All).with_zeros(sparse_size == 0);
    copy(src.as_mut(), dst.as_mut(), plan, &opts, &mut |done| {
        progress::show(&bar, done)
    })
    .map_err(explain)
    .with_context(|| {
        format!(
            "converting {} to {} failed; the target was not written",
            args.source.display(),
            args.target.display()
        )
    })?;
    dst.flush().map_err(explain)?;
    progress::finish(bar);
    let files = dst.files();
    drop(dst);
    if let Some(staging) = staging {
        staging.commit(&files)?;
    }
    Ok(0)
}
