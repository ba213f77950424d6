//! `vimg compare`: whether two images read the same, as qemu-img compares
//! them, across formats and through backing chains.

use std::path::PathBuf;

use clap::Args;

use super::args::{format_name, read_access};
use super::progress;
use crate::chain;
use crate::copy::plan::CHUNK;
use crate::image::{factory, Format, Image, OpenOptions, Source};
use crate::interrupt;
use crate::io::SECTOR;

/// Compare what two images read, across formats and backing chains
///
/// Exit codes as qemu-img's: 0 identical, 1 different (the first
/// differing sector is named), 2 an error.
///
/// Images of different sizes are identical when the larger one reads as
/// zeros past the end of the smaller (-s: strict, they differ, as they do
/// where one image allocates what the other does not). Ranges neither
/// image holds data for are not read, so empty images compare at once.
///
/// Examples:
///   vimg compare disk.vmdk disk.vhd
///   vimg compare -f raw -F vmdk disk.raw snapshot-000001.vmdk
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompareArgs {
    /// Format of the first image (probed when not given)
    #[arg(short = 'f', long = "a-format", value_name = "FMT", value_parser = format_name())]
    format: Option<Format>,

    /// Format of the second image (probed when not given)
    #[arg(short = 'F', long = "b-format", value_name = "FMT", value_parser = format_name())]
    other_format: Option<Format>,

    /// Cache mode for reading (qemu-img's -T): accepted; vimg reads through
    /// the page cache
    #[arg(short = 'T', long = "cache", value_enum, value_name = "CACHE")]
    cache: Option<super::staging::Cache>,

    #[command(flatten)]
    qemu_only: super::args::QemuOnly,

    /// Strict: images of different sizes, or that allocate differently,
    /// differ
    #[arg(short = 's', long)]
    strict: bool,

    /// Show a progress bar (only when stderr is a terminal)
    #[arg(short = 'p', long)]
    progress: bool,

    /// Print nothing (the exit code says)
    #[arg(short, long)]
    quiet: bool,

    /// Read the images even while another process may be writing them
    #[arg(short = 'U', long = "force-share")]
    force_share: bool,

    /// The first image
    first: PathBuf,

    /// The second image
    second: PathBuf,
}

/// What the comparison found (and, beside it, whether the sizes differ
/// and the common part compared equal, which qemu-img warns of).
enum Verdict {
    Identical,
    /// The first differing sector's offset.
    Mismatch(u64),
    /// (strict) Where allocation differs.
    Allocation(u64),
    /// (strict) The sizes differ.
    Size,
}

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    match compare(&args) {
        Ok((verdict, sizes_differ)) => {
            let say = |text: &str| {
                if !args.quiet {
                    println!("{text}");
                }
            };
            if sizes_differ && !args.strict {
                say("Warning: Image size mismatch!");
            }
            Ok(match verdict {
                Verdict::Identical => {
                    say("Images are identical.");
                    0
                }
                Verdict::Mismatch(at) => {
                    say(&format!("Content mismatch at offset {at}!"));
                    1
                }
                Verdict::Allocation(at) => {
                    say(&format!("Strict mode: Offset {at} block status mismatch!"));
                    1
                }
                Verdict::Size => {
                    say("Strict mode: Image size mismatch!");
                    1
                }
            })
        }
        // qemu-img's code for a comparison that could not be made.
        Err(e) => {
            eprintln!("vimg: error: {}", super::printable(&format!("{e:#}")));
            Ok(2)
        }
    }
}

/// True when a run reads as zeros without being read.
fn reads_zero(source: &Source) -> bool {
    matches!(source, Source::Unallocated | Source::Zero { .. })
}

/// True when a run is stored in some layer (qemu's "allocated").
fn allocated(source: &Source) -> bool {
    !matches!(source, Source::Unallocated)
}

/// The offset of the first sector where `a` and `b` differ, if any
/// (compared a sector at a time, as memcmp).
fn first_difference(a: &[u8], b: &[u8]) -> Option<u64> {
    let sector = SECTOR as usize;
    let first = a
        .chunks(sector)
        .zip(b.chunks(sector))
        .position(|(x, y)| x != y)?;
    Some(first as u64 * SECTOR)
}

fn compare(args: &CompareArgs) -> anyhow::Result<(Verdict, bool)> {
    args.qemu_only.refuse()?;
    let opts = OpenOptions::new(read_access(args.force_share));
    let mut a = factory::open_with(&args.first, args.format, opts.clone())?;
    let mut b = factory::open_with(&args.second, args.other_format, opts)?;
    let (size_a, size_b) = (a.virtual_size(), b.virtual_size());
    let sizes_differ = size_a != size_b;
    if sizes_differ && args.strict {
        return Ok((Verdict::Size, true));
    }
    let common = size_a.min(size_b);
    let bar = progress::bar(args.progress, size_a.max(size_b));
    let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < common {
        interrupt::check()?;
        progress::show(&bar, at);
        let want = common - at;
        let (ma, _) = chain::status(a.as_mut(), at, want)?;
        let (mb, _) = chain::status(b.as_mut(), at, want)?;
        let mut len = ma.len.min(mb.len).clamp(1, want);
        if args.strict && allocated(&ma.source) != allocated(&mb.source) {
            return Ok((Verdict::Allocation(at), false));
        }
        if !(reads_zero(&ma.source) && reads_zero(&mb.source)) {
            len = len.min(CHUNK);
            buf_a.resize(len as usize, 0);
            buf_b.resize(len as usize, 0);
            // The two images read at once, on two cores.
            std::thread::scope(|s| -> anyhow::Result<()> {
                let other = s.spawn(|| b.read_at(&mut buf_b, at));
                a.read_at(&mut buf_a, at)?;
                other.join().expect("the reading thread does not panic")?;
                Ok(())
            })?;
            if let Some(off) = first_difference(&buf_a, &buf_b) {
                // qemu-img warns of the sizes only once the common part
                // has compared equal.
                return Ok((Verdict::Mismatch(at + off), false));
            }
        }
        at += len;
    }
    // Past the smaller image, the larger must read as zeros.
    let larger: &mut dyn Image = match size_a > size_b {
        true => a.as_mut(),
        false => b.as_mut(),
    };
    let end = size_a.max(size_b);
    let mut buf = Vec::new();
    while at < end {
        interrupt::check()?;
        progress::show(&bar, at);
        let want = end - at;
        let (m, _) = chain::status(larger, at, want)?;
        let mut len = m.len.clamp(1, want);
        if !reads_zero(&m.source) {
            len = len.min(CHUNK);
            buf.resize(len as usize, 0);
            larger.read_at(&mut buf, at)?;
            if let Some(off) = (!crate::io::is_zero(&buf))
                .then(|| buf.iter().position(|&x| x != 0))
                .flatten()
            {
                return Ok((
                    Verdict::Mismatch(at + off as u64 / SECTOR * SECTOR),
                    sizes_differ,
                ));
            }
        }
        at += len;
    }
    progress::finish(bar);
    Ok((Verdict::Identical, sizes_differ))
}
