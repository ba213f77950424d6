//! `vimg convert`: copy an image into a new one of another format.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use super::args::{
    backing_of, format_name, read_access, refuse, Confinement, Placing, QemuOnly,
    NO_INTERNAL_SNAPSHOTS,
};
use super::prealloc::{host_ranges, preallocate, Preallocation};
use super::progress;
use super::staging::{Cache, Staging};
use crate::chain;
use crate::copy::changes::Changes;
use crate::copy::concat::Concat;
use crate::copy::offload::copy_offloaded;
use crate::copy::pipeline::Lost;
use crate::copy::{copy, CopyOptions, Layers, Plan};
use crate::image::{factory, Backing, Format, Image, OpenOptions};
use crate::io::{folder_of, Access};
use crate::options::{help_text, Options};
use crate::units::parse_size;

/// Convert a disk image to another format or subformat
///
/// Examples:
///   vimg convert -O vhd disk.vmdk disk.vhd
///   vimg convert -f vpc -O vmdk disk.vhd disk.vmdk
///   vimg convert -O vmdk part1.raw part2.raw whole.vmdk
///
/// Several sources are read one after the other as one disk, as qemu-img
/// does. Only allocated, non-zero data is copied. The target is written beside
/// its final name and moved into place only when the conversion succeeded;
/// an existing TARGET is never overwritten unless --force is given.
///
/// A streamOptimized VMDK (-O vmdk -o subformat=streamOptimized, or -c) can
/// be written to standard output with TARGET `-`, for piping into an
/// upload tool.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    override_usage = "vimg convert [OPTIONS] SOURCE... TARGET\n       vimg convert -O FMT -o help"
)]
pub struct ConvertArgs {
    /// Source format (probed from the content when not given)
    #[arg(short = 'f', long = "source-format", visible_alias = "format", value_name = "FMT", value_parser = format_name())]
    source_format: Option<Format>,

    /// Target format: vmdk, vhd (or vpc), raw [default: raw; with -n, the
    /// target's own]
    #[arg(short = 'O', long = "target-format", visible_alias = "output-format", value_name = "FMT", value_parser = format_name())]
    output_format: Option<Format>,

    /// Target format options as key=value[,key=value...]; may be repeated
    #[arg(
        short = 'o',
        long = "target-options",
        visible_alias = "options",
        value_name = "OPTIONS"
    )]
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
    #[arg(short = 'S', long = "sparse-size", value_name = "SIZE", default_value = "4k", value_parser = sparse_size)]
    sparse_size: u64,

    /// Read the source even while another process may be writing it
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// Cache mode of the source (qemu-img's -T): accepted; vimg reads
    /// through the page cache
    #[arg(short = 'T', long = "source-cache", value_enum, value_name = "CACHE")]
    source_cache: Option<Cache>,

    /// Write into TARGET, which exists (an image of -O's format, or a raw
    /// file or block device) and is at least the source's size, instead of
    /// creating it; only what reads differently is written
    #[arg(short = 'n', long = "no-create")]
    no_create: bool,

    /// With -n: TARGET reads as zeros already, so zeros are not written
    #[arg(long = "target-is-zero", requires = "no_create")]
    target_is_zero: bool,

    /// Make the target a delta (VMDK snapshot, differencing VHD) over
    /// BACKING, holding only what differs from it; a relative path is
    /// relative to TARGET's folder
    #[arg(
        short = 'B',
        long = "backing",
        value_name = "BACKING",
        conflicts_with = "no_create"
    )]
    backing: Option<PathBuf>,

    /// Format of BACKING (probed when not given); without -B it has no
    /// effect, as in qemu-img
    #[arg(short = 'F', long = "backing-format", value_name = "FMT", value_parser = format_name())]
    backing_format: Option<Format>,

    /// Move at most RATE bytes a second (10M, 1G; binary units)
    #[arg(short = 'r', long = "rate", value_name = "RATE", value_parser = parse_size)]
    rate: Option<u64>,

    /// Threads for compressing and decompressing (default: one a core; the
    /// reading and writing threads come on top)
    #[arg(short = 'm', long = "parallel", value_name = "NUM", value_parser = clap::value_parser!(u16).range(1..=32))]
    parallel: Option<u16>,

    /// qemu-img's out-of-order writes: accepted; vimg reads and writes on
    /// their own threads already, and writes in order so that the target is
    /// laid out front to back
    #[arg(short = 'W', long = "oob-writes")]
    oob_writes: bool,

    /// Copy in the kernel (copy_file_range) where the source's bytes and
    /// the target's places lie as they are in files (raw, fixed VHD, flat
    /// VMDK); zeros in the source's data are then copied as they are
    #[arg(short = 'C', long = "copy-range-offloading")]
    copy_range: bool,

    /// Go on past read errors: what cannot be read is written as zeros,
    /// each such range is reported, and the exit code is 2
    #[arg(long)]
    salvage: bool,

    /// Not supported: VMDK and VHD images have no internal snapshots
    /// (qemu-img's -l)
    #[arg(short = 'l', long = "source-snapshot", value_name = "SNAPSHOT")]
    source_snapshot: Option<String>,

    /// Not supported: vimg takes file names, not QEMU image specifications
    #[arg(long = "source-image-opts")]
    source_image_opts: bool,

    /// Not supported: vimg takes file names, not QEMU image specifications
    #[arg(long = "target-image-opts")]
    target_image_opts: bool,

    /// Not supported: VMDK and VHD images have no persistent bitmaps
    #[arg(long)]
    bitmaps: bool,

    /// Not supported: VMDK and VHD images have no persistent bitmaps
    #[arg(long = "skip-broken-bitmaps")]
    skip_broken_bitmaps: bool,

    #[command(flatten)]
    qemu_only: QemuOnly,

    #[command(flatten)]
    confinement: Confinement,

    #[command(flatten)]
    placing: Placing,

    /// SOURCE... TARGET: the images to read (several are read one after
    /// the other, as one disk: qemu-img's concatenation), then the image
    /// to write (`-` writes a streamOptimized VMDK to standard output)
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl ConvertArgs {
    /// The images to read (checked by [`run`]: at least one).
    fn sources(&self) -> &[PathBuf] {
        &self.files[..self.files.len() - 1]
    }

    /// The image to write.
    fn target(&self) -> &Path {
        &self.files[self.files.len() - 1]
    }
}

/// `-S`: a size that is a multiple of 512 (qemu-img takes 1536 too).
fn sparse_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    match size % 512 {
        0 => Ok(size),
        _ => Err(format!("{size} is not a multiple of 512")),
    }
}

/// Refuse the qemu-img flags vimg cannot honour, each in one line.
fn refuse_unsupported(args: &ConvertArgs) -> anyhow::Result<()> {
    args.qemu_only.refuse()?;
    let images = "vimg takes file names, not QEMU image specifications";
    let bitmaps = "VMDK and VHD images have no persistent bitmaps";
    for (given, flag, why) in [
        (args.source_snapshot.is_some(), "-l", NO_INTERNAL_SNAPSHOTS),
        (args.source_image_opts, "--source-image-opts", images),
        (args.target_image_opts, "--target-image-opts", images),
        (args.bitmaps, "--bitmaps", bitmaps),
        (args.skip_broken_bitmaps, "--skip-broken-bitmaps", bitmaps),
    ] {
        if given {
            refuse(flag, why)?;
        }
    }
    Ok(())
}

/// The existing target of `-n`, opened for writing: of -O's format, or
/// without -O of the format it probes as, which must be raw (a script's
/// `-n` into a VMDK or VHD without -O would overwrite its metadata).
fn open_existing(args: &ConvertArgs) -> anyhow::Result<Box<dyn Image>> {
    let target = args.target();
    if target.as_os_str() == "-" {
        bail!("-n writes into an existing image; standard output is not one");
    }
    if !args.options.is_empty() {
        bail!(
            "-o has no effect with -n: {} exists already",
            target.display()
        );
    }
    let format = match args.output_format {
        Some(f) => f,
        None => match factory::probe(target)? {
            Format::Raw => Format::Raw,
            found => bail!(
                "{}: it is a {} image; give -O {} to write into it as one, or -O raw to overwrite its bytes",
                target.display(),
                found.name(),
                found.name()
            ),
        },
    };
    let open = OpenOptions::new(Access::Write);
    Ok(factory::open_with(target, Some(format), open)?)
}

/// Refuse a target that is one of the files the source reads (itself, a
/// parent, an extent): writing into it in place would change what is
/// being read, and turn an image into its own raw bytes (qemu-img's locks
/// refuse the same).
fn refuse_reading_target(
    src: &mut dyn Image,
    target_files: &[PathBuf],
    target: &Path,
) -> anyhow::Result<()> {
    if chain::any_shared(target_files, &chain::files(src)) {
        bail!(
            "{}: the source reads it (itself, a parent or an extent); writing it would change what is being read, and what other deltas of it read",
            target.display()
        );
    }
    Ok(())
}

/// Lost ranges reported one by one at most: an image whose whole table
/// is garbage loses every unit, and a line each would bury the summary.
const SHOWN_LOST: usize = 100;

/// Tell what a salvaging copy could not read: each range in the source
/// it lies in (`starts`: where each source begins in the whole).
fn report_lost(sources: &[PathBuf], starts: &[u64], lost: &[Lost]) {
    let mut ranges = 0;
    let mut losers = Vec::new();
    for l in lost {
        let mut at = l.range.start;
        while at < l.range.end {
            let i = starts.partition_point(|&s| s <= at) - 1;
            let end = starts
                .get(i + 1)
                .map_or(l.range.end, |&s| s.min(l.range.end));
            let from = at - starts[i];
            let to = end - starts[i];
            if ranges < SHOWN_LOST {
                eprintln!(
                    "vimg: {}: bytes {from}..{to} ({} bytes) could not be read ({}); written as zeros",
                    sources[i].display(),
                    to - from,
                    super::printable(&l.why)
                );
            }
            ranges += 1;
            if !losers.contains(&i) {
                losers.push(i);
            }
            at = end;
        }
    }
    let total: u64 = lost.iter().map(|l| l.range.end - l.range.start).sum();
    if ranges > SHOWN_LOST {
        eprintln!(
            "vimg: ... and {} more ranges (not shown)",
            ranges - SHOWN_LOST
        );
    }
    eprintln!(
        "vimg: {}: {total} bytes in {ranges} ranges could not be read; the target holds zeros there",
        named(&losers.iter().map(|&i| sources[i].clone()).collect::<Vec<_>>())
    );
}

/// The sources' names, for messages: `a.vmdk, b.vmdk`.
fn named(sources: &[PathBuf]) -> String {
    let names: Vec<_> = sources.iter().map(|s| s.display().to_string()).collect();
    names.join(", ")
}

/// The sources, opened: one image, or several read as one.
fn open_sources(
    args: &ConvertArgs,
    open: &OpenOptions,
) -> anyhow::Result<(Box<dyn Image>, Vec<u64>)> {
    if let [one] = args.sources() {
        let image = factory::open_with(one, args.source_format, open.clone())?;
        return Ok((image, vec![0]));
    }
    let mut images = Vec::new();
    for source in args.sources() {
        images.push(factory::open_with(
            source,
            args.source_format,
            open.clone(),
        )?);
    }
    let all = Concat::new(images);
    let starts = all.starts();
    Ok((Box::new(all), starts))
}

pub fn run(args: ConvertArgs) -> anyhow::Result<u8> {
    refuse_unsupported(&args)?;
    let mut options = Options::parse(args.options.iter().map(String::as_str))?;
    let target_format = args.output_format.unwrap_or(Format::Raw);
    if options.wants_help() {
        // What create takes but the size, which is the source's.
        let docs = factory::create_options(target_format);
        super::print(&help_text(target_format.name(), docs, &["size"]))?;
        return Ok(0);
    }
    if args.files.len() < 2 {
        bail!("give the SOURCE image (or several) and the TARGET to write");
    }
    // qemu-img's -o spellings of -B and -F; the flags win.
    let (backing_file, backing_format) =
        backing_of(&mut options, args.backing.as_ref(), args.backing_format)?;
    let prealloc = Preallocation::take(&mut options)?;
    // What qemu-img takes and does nothing with: said, not refused.
    let mut idle = Vec::new();
    if options.take_str("size")?.is_some() {
        idle.push("-o size has no effect: the target has the source's size");
    }
    if backing_format.is_some() && backing_file.is_none() {
        idle.push("-F (backing_fmt) has no effect without -B (backing_file)");
    }
    if !args.placing.quiet {
        for note in idle {
            eprintln!("vimg: {note}");
        }
    }
    if let Some(n) = args.parallel {
        crate::io::set_workers(n.into());
    }
    let sparse_size = args.sparse_size;
    let open = args
        .confinement
        .open_options(read_access(args.force_share))
        .salvaging(args.salvage);
    let (mut src, starts) = open_sources(&args, &open)?;
    let size = src.virtual_size();
    let opts = CopyOptions {
        sparse_size,
        rate: args.rate,
        salvage: args.salvage,
    };
    let bar = progress::bar(args.progress, size);
    let context = || {
        format!(
            "converting {} to {} failed",
            named(args.sources()),
            args.target().display()
        )
    };

    if args.no_create {
        let mut dst = open_existing(&args)?;
        refuse_reading_target(src.as_mut(), &dst.files(), args.target())?;
        if dst.virtual_size() < size {
            bail!(
                "{}: it holds {} bytes, less than the source's {size}",
                args.target().display(),
                dst.virtual_size()
            );
        }
        let lost = match args.target_is_zero {
            true => {
                let plan = Plan::new(0..size, Layers::All);
                copy(src.as_mut(), dst.as_mut(), plan, &opts, &mut |d| {
                    progress::show(&bar, d)
                })
            }
            false => {
                // Zeros too reach the target, which writes what differs.
                let plan = Plan::new(0..size, Layers::All).with_zeros(true);
                let opts = CopyOptions {
                    sparse_size: 0,
                    ..opts
                };
                let mut target = Changes::in_place(dst.as_mut());
                copy(src.as_mut(), &mut target, plan, &opts, &mut |d| {
                    progress::show(&bar, d)
                })
            }
        }
        .and_then(|lost| dst.flush().map(|_| lost))
        .with_context(|| {
            format!(
                "{}; it was written into in place, and each 64 KiB piece of it reads as before or as the source (run the same command again to finish)",
                context()
            )
        })?;
        progress::finish(bar);
        return Ok(finish(&args, &starts, &lost));
    }

    if args.compress {
        options.set_by_flag("compress", "on", "-c");
    }
    let to_stdout = args.target().as_os_str() == "-";
    if to_stdout && backing_file.is_some() {
        bail!("-B makes a delta, which names its parent: it cannot go to standard output");
    }
    if !to_stdout {
        // --force would replace a file the source reads: a parent or an
        // extent other deltas read too (qemu-img's locks refuse it).
        refuse_reading_target(src.as_mut(), &[args.target().to_path_buf()], args.target())?;
    }
    let staging = match to_stdout {
        true => None,
        false => Some(Staging::new(
            args.target(),
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
    // -B: the parent, opened to compare with, and as the delta records it.
    let mut parent = None;
    let backing = match &backing_file {
        None => None,
        Some(typed) => {
            let path = chain::parent_path(args.target(), &typed.to_string_lossy());
            let mut image = factory::open_with(&path, backing_format, open.clone())
                .with_context(|| format!("cannot open the backing file {}", path.display()))?;
            if chain::any_shared(
                &[args.target().to_path_buf()],
                &chain::files(image.as_mut()),
            ) {
                bail!(
                    "{}: it is the backing file {} or in its chain; an image cannot be a delta over itself",
                    args.target().display(),
                    path.display()
                );
            }
            if image.virtual_size() != size {
                bail!(
                    "{}: it is {} bytes and the source {size}; a delta has its parent's size",
                    path.display(),
                    image.virtual_size()
                );
            }
            parent = Some(image);
            Some(Backing {
                name: chain::relative_name(folder_of(args.target()), &path),
                format: backing_format,
                path,
            })
        }
    };
    let mut dst = match &staging {
        Some(staging) => factory::create(
            &staging.path(),
            target_format,
            size,
            &mut options,
            backing.as_ref(),
        ),
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
            let stem = args.sources()[0]
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy();
            let name = PathBuf::from(format!("{stem}.vmdk"));
            factory::create_stream(&name, target_format, size, &mut options, out)
        }
    }
    .map_err(explain)
    .with_context(|| format!("cannot create {}", args.target().display()))?;
    if !args.placing.quiet {
        for note in options.take_notes() {
            eprintln!("vimg: {note}");
        }
    }
    if prealloc.reserves() {
        // The whole target reserved (falloc) or written with zeros (full)
        // before the copy, as qemu-img does: the image is closed for it,
        // then opened again.
        let Some(staging) = &staging else {
            bail!(
                "preallocation={} needs a file: standard output cannot be preallocated",
                prealloc.name()
            );
        };
        // All of the target, which may be larger than the source (a VHD's
        // size rounded up to a whole MiB or to a CHS geometry).
        let whole = dst.virtual_size();
        let placed = match dst.as_image() {
            Some(image) => host_ranges(image, 0, whole)?.is_some(),
            None => false,
        };
        if !placed {
            bail!(
                "{}: preallocation={}: only a disk whose bytes lie in its files as they are (raw, a fixed VHD, a flat VMDK) can be preallocated; a sparse VMDK or a dynamic VHD allocates as it is written",
                args.target().display(),
                prealloc.name()
            );
        }
        dst.flush().map_err(explain)?;
        drop(dst);
        let path = staging.path();
        preallocate(&path, Some(target_format), prealloc, 0, whole)
            .map_err(|e| staging.explain(e))
            .with_context(|| format!("cannot preallocate {}", args.target().display()))?;
        let open = OpenOptions::new(Access::Write).with_parents(None);
        dst = factory::open_with(&path, Some(target_format), open).map_err(explain)?;
    }
    if dst.virtual_size() < size {
        bail!(
            "{}: the target would hold {} bytes, less than the source's {size}",
            args.target().display(),
            dst.virtual_size()
        );
    }

    // A fresh target reads as zeros: only data needs copying, unless -S 0
    // asks for every byte to be allocated, or a backing file shows through
    // where the source reads zeros.
    let plan = Plan::new(0..size, Layers::All).with_zeros(sparse_size == 0 || parent.is_some());
    let mut show = |done| progress::show(&bar, done);
    let lost = match (parent.as_mut(), args.copy_range) {
        (Some(parent), _) => {
            // Zeros too reach the delta, which writes what differs from
            // its parent.
            let opts = CopyOptions {
                sparse_size: 0,
                ..opts
            };
            let mut target = Changes::over(parent.as_mut(), dst.as_mut());
            copy(src.as_mut(), &mut target, plan, &opts, &mut show)
        }
        (None, true) if !args.salvage => match dst.as_image() {
            Some(image) => {
                copy_offloaded(src.as_mut(), image, plan, args.rate, &mut show).map(|_| Vec::new())
            }
            None => copy(src.as_mut(), dst.as_mut(), plan, &opts, &mut show),
        },
        (None, _) => copy(src.as_mut(), dst.as_mut(), plan, &opts, &mut show),
    }
    .map_err(explain)
    .with_context(|| format!("{}; the target was not written", context()))?;
    dst.flush().map_err(explain)?;
    progress::finish(bar);
    let files = dst.files();
    drop(dst);
    if let Some(staging) = staging {
        staging.commit(&files)?;
    }
    Ok(finish(&args, &starts, &lost))
}

/// The exit code, once the target is written: 2 when a salvaging copy
/// lost data (reported here), else 0.
fn finish(args: &ConvertArgs, starts: &[u64], lost: &[Lost]) -> u8 {
    if lost.is_empty() {
        return 0;
    }
    report_lost(args.sources(), starts, lost);
    2
}
