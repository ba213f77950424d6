//! Preallocation, as qemu-img's `--preallocation` (resize) and `-o
//! preallocation=` (create) ask for it: the disk's bytes reserved in the
//! file system, or written with zeros, where they lie in files as they are
//! (raw, fixed VHD, flat VMDK). Sparse layouts allocate as they are written.

use anyhow::bail;
use clap::ValueEnum;

use crate::image::{factory, Format, Image, OpenOptions, Source};
use crate::io::{Access, ImageFile};
use crate::options::Options;

/// `--preallocation`'s values, qemu-img's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Preallocation {
    #[default]
    Off,
    Metadata,
    Falloc,
    Full,
}

/// A run of a host file: the file, the offset, the length.
type HostRun = (std::sync::Arc<std::path::Path>, u64, u64);

/// Where in which files the disk's bytes `[from, to)` lie, or `None` when
/// some of them have no place of their own (a sparse layout, or
/// compressed data).
pub fn host_ranges(
    image: &mut dyn Image,
    from: u64,
    to: u64,
) -> anyhow::Result<Option<Vec<HostRun>>> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let m = image.block_status(at, to - at)?;
        let len = m.len.max(1).min(to - at);
        match m.source {
            Source::Data {
                host: Some(h),
                compressed: false,
            }
            | Source::Zero { host: Some(h), .. } => out.push((h.file, h.offset, len)),
            _ => return Ok(None),
        }
        at += len;
    }
    Ok(Some(out))
}

/// Reserve (falloc) or write with zeros (full) the host places of the
/// disk's bytes `[from, to)`.
pub fn preallocate(
    path: &std::path::Path,
    format: Option<Format>,
    mode: Preallocation,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let open = OpenOptions::new(Access::Read).with_parents(None);
    let mut image = factory::open_with(path, format, open)?;
    let Some(ranges) = host_ranges(image.as_mut(), from, to)? else {
        bail!(
            "{}: the new space has no place of its own in the files to preallocate",
            path.display()
        );
    };
    drop(image);
    for (file, offset, len) in ranges {
        let host = ImageFile::open(&file, Access::Write)?;
        let reserved = mode == Preallocation::Falloc && host.allocate(offset, len)?;
        if !reserved {
            // full, or a file system that cannot reserve: zeros written.
            let zeros = vec![0u8; 1 << 20];
            let mut at = offset;
            while at < offset + len {
                let n = (offset + len - at).min(zeros.len() as u64);
                host.write_all_at(&zeros[..n as usize], at)?;
                at += n;
            }
        }
        host.sync()?;
    }
    Ok(())
}

impl Preallocation {
    /// The mode `-o preallocation=NAME` asks for (taken out of `opts`),
    /// off without one.
    pub fn take(opts: &mut Options) -> anyhow::Result<Preallocation> {
        let Some(name) = opts.take_str("preallocation")? else {
            return Ok(Preallocation::Off);
        };
        match Preallocation::from_str(&name, false) {
            Ok(mode) => Ok(mode),
            Err(_) => bail!("preallocation '{name}' is not one of: off, metadata, falloc, full"),
        }
    }

    /// Whether it asks for the space itself (falloc, full).
    pub fn reserves(self) -> bool {
        matches!(self, Preallocation::Falloc | Preallocation::Full)
    }

    pub fn name(self) -> &'static str {
        match self {
            Preallocation::Off => "off",
            Preallocation::Metadata => "metadata",
            Preallocation::Falloc => "falloc",
            Preallocation::Full => "full",
        }
    }
}
