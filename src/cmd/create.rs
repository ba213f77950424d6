//! `vimg create`: make a new, empty disk image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::args::{backing_of, format_name, Placing, QemuOnly};
use super::prealloc::{host_ranges, preallocate, Preallocation};
use super::staging::Staging;
use crate::chain;
use crate::image::{factory, Backing, Format, OpenOptions};
use crate::io::folder_of;
use crate::io::Access;
use crate::options::{help_text, Options};
use crate::units::parse_size;

/// Create a new, empty disk image
///
/// Examples:
///   vimg create -f vmdk disk.vmdk 10G
///   vimg create -f vhd -o subformat=fixed disk.vhd 30G
///   vimg create -f vmdk -o help      (the options a format takes)
///
/// An existing FILE is never overwritten unless --force is given.
///
/// With -b, the new image is a delta (a VMware snapshot disk) over PARENT:
/// it records PARENT relative to its own folder and PARENT's content ID,
/// and reads PARENT's data wherever it holds none itself.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    override_usage = "vimg create [OPTIONS] FILE [SIZE]\n       vimg create -f FMT -o help"
)]
pub struct CreateArgs {
    /// Image format: vmdk, vhd (or vpc), raw
    #[arg(short = 'f', long = "format", value_name = "FMT", default_value = "raw", value_parser = format_name())]
    format: Format,

    /// Format options as key=value[,key=value...]; may be repeated
    /// (vmdk: subformat, adapter_type, hwversion, compat6, toolsversion,
    /// zeroed_grain, compression_level; vhd: subformat=dynamic|fixed,
    /// force_size, block_size, azure; all: size, backing_file, backing_fmt
    /// as qemu-img takes them). `-o help` lists them with their values
    #[arg(short = 'o', long = "options", value_name = "OPTIONS")]
    options: Vec<String>,

    #[command(flatten)]
    placing: Placing,

    /// Make a delta (snapshot) over this parent image; a relative path is
    /// relative to FILE's folder, as in qemu-img
    #[arg(short = 'b', long = "backing", value_name = "PARENT")]
    backing: Option<PathBuf>,

    /// Format of the parent image (it must match -f)
    #[arg(short = 'F', long = "backing-format", value_name = "FMT", value_parser = format_name())]
    backing_format: Option<Format>,

    /// Accepted as qemu-img's "do not fail if the parent cannot be read";
    /// but a VMDK delta and a differencing VHD record their parent's
    /// content ID (CID, UUID), so vimg must read the parent all the same
    /// (as qemu-img must for a VMDK)
    #[arg(short = 'u', long = "backing-unsafe", requires = "backing")]
    backing_unsafe: bool,

    #[command(flatten)]
    qemu_only: QemuOnly,

    /// The image file to create (not needed with -o help)
    file: Option<PathBuf>,

    /// Virtual disk size: 512, 64K, 10G, 1.5T (binary units; rounded up to
    /// a whole 512-byte sector); with -b, the parent's size by default
    #[arg(value_parser = parse_size)]
    size: Option<u64>,
}

pub fn run(args: CreateArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    let mut opts = Options::parse(args.options.iter().map(String::as_str))?;
    if opts.wants_help() {
        let docs = factory::create_options(args.format);
        super::print(&help_text(args.format.name(), docs, &[]))?;
        return Ok(0);
    }
    let Some(file) = &args.file else {
        bail!("give the image FILE to create (and its SIZE, unless -b gives a parent)");
    };
    // qemu-img's -o spellings of SIZE, -b and -F (the flags win, as in
    // qemu-img; the size may be given only once).
    let size = match (opts.take_size("size")?, args.size) {
        (Some(_), Some(_)) => bail!(
            "{}: give its size once: SIZE or -o size, not both",
            file.display()
        ),
        (o, arg) => arg.or(o),
    };
    let (typed, backing_format) =
        backing_of(&mut opts, args.backing.as_ref(), args.backing_format)?;
    // -b: a relative path is relative to FILE's folder, as in qemu-img.
    let parent = typed
        .as_ref()
        .map(|typed| chain::parent_path(file, &typed.to_string_lossy()));
    if let (true, Some(parent)) = (args.backing_unsafe, &parent) {
        factory::open(parent, backing_format, Access::Read).with_context(|| {
            format!(
                "cannot open the parent {} (-u cannot help: a delta records its parent's content ID, so the parent must be readable)",
                parent.display()
            )
        })?;
    }
    let backing = parent.as_deref().map(|p| (p, backing_format));
    make(file, args.format, size, opts, backing, &args.placing)
}

/// Create `file`, of `format` and `size` (the parent's without one), with
/// the `-o` options `options`, over `backing` (where the parent is now, and
/// its format if given), placed as `placing` says.
pub(super) fn make(
    file: &Path,
    format: Format,
    size: Option<u64>,
    mut opts: Options,
    backing: Option<(&Path, Option<Format>)>,
    placing: &Placing,
) -> anyhow::Result<u8> {
    let backing = backing.map(|(path, format)| Backing {
        name: chain::relative_name(folder_of(file), path),
        format,
        path: path.to_path_buf(),
    });
    if let Some(b) = &backing {
        factory::parent_fits(format, b)
            .with_context(|| format!("cannot create {}", file.display()))?;
    }
    // The parent's size, and a FILE that is the parent or in its chain
    // refused (--force would make an image its own parent, and lose it).
    let parent_size = match &backing {
        None => None,
        Some(b) => {
            let mut parent = factory::open(&b.path, b.format, Access::Read)
                .with_context(|| format!("cannot open the parent {}", b.path.display()))?;
            if chain::any_shared(&[file.to_path_buf()], &chain::files(parent.as_mut())) {
                bail!(
                    "{}: it is the parent {} or in its chain; an image cannot be a delta over itself",
                    file.display(),
                    b.path.display()
                );
            }
            Some(parent.virtual_size())
        }
    };
    let size = match (size, parent_size) {
        (Some(size), _) => size,
        (None, Some(size)) => size,
        (None, None) => bail!(
            "{}: give its SIZE (or -b PARENT, whose size it takes)",
            file.display()
        ),
    };
    let prealloc = Preallocation::take(&mut opts)?;
    let staging = Staging::new(file, placing.force, placing.cache.unwrap_or_default())?;
    let image = factory::create(&staging.path(), format, size, &mut opts, backing.as_ref())
        .and_then(|mut image| image.flush().map(|()| image))
        .map_err(|e| staging.explain(e))
        .with_context(|| format!("cannot create {}", file.display()))?;
    if !placing.quiet {
        for note in opts.take_notes() {
            eprintln!("vimg: {note}");
        }
    }
    let files = image.files();
    let virtual_size = image.virtual_size();
    drop(image);
    if prealloc.reserves() {
        let open = OpenOptions::new(Access::Read).with_parents(None);
        let mut image = factory::open_with(&staging.path(), Some(format), open)
            .map_err(|e| staging.explain(e))?;
        if host_ranges(image.as_mut(), 0, virtual_size)?.is_none() {
            bail!(
                "{}: preallocation={}: only a disk whose bytes lie in its files as they are (raw, a fixed VHD, a flat VMDK) can be preallocated; a sparse VMDK or a dynamic VHD allocates as it is written",
                file.display(),
                prealloc.name()
            );
        }
        drop(image);
        preallocate(&staging.path(), Some(format), prealloc, 0, virtual_size)
            .map_err(|e| staging.explain(e))
            .with_context(|| format!("cannot preallocate {}", file.display()))?;
    }
    staging.commit(&files)?;
    if !placing.quiet {
        super::print(&format!(
            "Formatting '{}', fmt={} size={virtual_size}\n",
            file.display(),
            format.name()
        ))?;
    }
    Ok(0)
}
