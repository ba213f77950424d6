//! `vimg resize`: a disk made larger or smaller in place.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use super::args::format_name;
use super::prealloc::{host_ranges, preallocate, Preallocation};
use crate::image::check::Repair;
use crate::image::{factory, Format, Image, OpenOptions, Source};
use crate::io::{align_up, is_zero, Access, SECTOR};
use crate::units::{human_size, parse_size};

/// Change a disk's size in place
///
/// As qemu-img resize, for the formats qemu-img cannot resize: VMDK
/// (monolithicSparse, twoGbMaxExtentSparse, monolithicFlat,
/// twoGbMaxExtentFlat), VHD (fixed, dynamic) and raw. The size is absolute
/// or, with + or -, relative to the current one (rounded up to a sector).
/// New space reads as zeros; the disk keeps its identity. A VHD gets the
/// exact size and the geometry `create` gives, so Hyper-V, Azure, qemu-img
/// and libvhdi all see it. A stop at any moment leaves the old size or the
/// new one.
///
/// Shrinking needs --shrink, and is refused while anything is stored past
/// the new end unless --discard-data is given too. Deltas and disks with
/// deltas beside them are not resized (VMware and Hyper-V refuse them too:
/// a delta has its parent's size); commit them first.
///
/// Examples:
///   vimg resize disk.vmdk 40G
///   vimg resize disk.vhd +10G
///   vimg resize --shrink disk.vmdk -5G
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ResizeArgs {
    /// Image format (probed from the content when not given)
    #[arg(short = 'f', long = "format", value_name = "FMT", value_parser = format_name())]
    format: Option<Format>,

    /// Allow the disk to become smaller
    #[arg(long)]
    shrink: bool,

    /// With --shrink: drop what is stored past the new end
    #[arg(long = "discard-data", requires = "shrink")]
    discard_data: bool,

    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,

    /// Show a progress bar while the part past a smaller size is read
    /// (only when stderr is a terminal)
    #[arg(short, long)]
    progress: bool,

    /// The image to resize
    file: PathBuf,

    /// How the new space is allocated: off (sparse), metadata (only the
    /// tables; what vimg does anyway), falloc (reserved in the file
    /// system), full (written with zeros). falloc and full need a disk
    /// whose bytes lie in its files as they are (raw, fixed VHD, flat
    /// VMDK); a sparse VMDK or dynamic VHD allocates as it is written
    #[arg(long, value_enum, value_name = "PREALLOC", default_value_t)]
    preallocation: Preallocation,

    #[command(flatten)]
    qemu_only: super::args::QemuOnly,

    /// The new size (10G), or the change (+10G, -512M)
    #[arg(allow_hyphen_values = true, value_name = "[+|-]SIZE")]
    size: String,
}

/// The size `text` asks for, given the current one.
fn wanted(text: &str, current: u64) -> anyhow::Result<u64> {
    let (sign, number) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => (0, text),
    };
    let n = parse_size(number).map_err(anyhow::Error::msg)?;
    let size = match sign {
        1 => current.checked_add(n),
        -1 => current.checked_sub(n),
        _ => Some(n),
    };
    match size {
        Some(s) if s > 0 => Ok(align_up(s, SECTOR)),
        _ => bail!("the disk would have no size left ({text} of {current} bytes)"),
    }
}

/// The first byte past `from` where `image` stores something other than
/// zeros.
fn stored_past(
    image: &mut dyn Image,
    from: u64,
    progress: crate::image::Progress,
) -> anyhow::Result<Option<u64>> {
    let end = image.virtual_size();
    let mut at = from;
    let mut buf = Vec::new();
    while at < end {
        progress(at - from);
        let m = image.block_status(at, end - at)?;
        let len = m.len.max(1).min(end - at);
        if let Source::Data { .. } = m.source {
            let mut pos = at;
            while pos < at + len {
                let n = (at + len - pos).min(1 << 20);
                buf.resize(n as usize, 0);
                image.read_at(&mut buf, pos)?;
                if !is_zero(&buf) {
                    let i = buf.iter().position(|&b| b != 0).unwrap_or(0);
                    return Ok(Some(pos + i as u64));
                }
                pos += n;
                progress(pos - from);
            }
        }
        at += len;
    }
    Ok(None)
}

pub fn run(args: ResizeArgs) -> anyhow::Result<u8> {
    args.qemu_only.refuse()?;
    let path = &args.file;
    let open = OpenOptions::new(Access::Write).with_parents(None);
    let mut image = factory::open_with(path, args.format, open)?;
    if image.parent_link().is_some() {
        bail!(
            "{}: it is a delta (snapshot) and has its parent's size, as VMware and Hyper-V require; commit it into its parent (vimg commit) and resize that",
            path.display()
        );
    }
    let current = image.virtual_size();
    let size = wanted(&args.size, current).with_context(|| format!("{}", path.display()))?;
    if size < current && !args.shrink {
        bail!(
            "{}: {} is smaller than the disk's {current} bytes; use the --shrink option to perform a shrink operation (what lies past the new end is lost)",
            path.display(),
            size
        );
    }
    let deltas = super::snapshot::deltas_beside(path);
    if !deltas.is_empty() {
        let names: Vec<String> = deltas
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        bail!(
            "{}: deltas lie beside it ({}) that must keep its size; commit or delete them first",
            path.display(),
            names.join(", ")
        );
    }
    let prealloc = matches!(
        args.preallocation,
        Preallocation::Falloc | Preallocation::Full
    );
    if prealloc && size > current && host_ranges(image.as_mut(), 0, current)?.is_none() {
        bail!(
            "{}: --preallocation={}: this image allocates its space as it is written (a sparse VMDK or a dynamic VHD); a fixed VHD or a flat VMDK is preallocated (vimg convert -o subformat=fixed or monolithicFlat)",
            path.display(),
            args.preallocation.to_possible_value().expect("a value").get_name()
        );
    }
    if size < current && !args.discard_data {
        let bar = super::progress::bar(args.progress, current - size);
        let found = stored_past(image.as_mut(), size, &mut |done| {
            super::progress::show(&bar, done)
        })?;
        super::progress::finish(bar);
        if let Some(at) = found {
            bail!(
                "{}: data is stored past the new end (the first at byte {at}); --shrink --discard-data drops it",
                path.display()
            );
        }
    }
    // The library's errors name the file.
    let notes = image.resize(size)?;
    drop(image);
    // The space the old size used past the new end, or tables that moved,
    // given back.
    let open = OpenOptions::new(Access::Write)
        .with_parents(None)
        .checking();
    let mut image = factory::open_with(path, args.format, open)?;
    image.repair(Repair::Leaks)?;
    drop(image);
    if prealloc && size > current {
        preallocate(path, args.format, args.preallocation, current, size)?;
    }
    for note in notes {
        eprintln!("{}: {note}", path.display());
    }
    if !args.quiet {
        println!(
            "Image resized: {} -> {} ({size} bytes).",
            human_size(current),
            human_size(size)
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_absolute_or_relative_and_whole_sectors() {
        assert_eq!(wanted("10G", 5).unwrap(), 10 << 30);
        assert_eq!(wanted("+1M", 1 << 20).unwrap(), 2 << 20);
        assert_eq!(wanted("-1M", 3 << 20).unwrap(), 2 << 20);
        assert_eq!(wanted("1000", 0).unwrap(), 1024);
        assert!(wanted("-4M", 3 << 20).is_err());
        assert!(wanted("0", 3 << 20).is_err());
        assert!(wanted("12Q", 3).is_err());
    }
}
