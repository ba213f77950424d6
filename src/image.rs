//! The one trait every format implements, the allocation picture it
//! reports, and the registry that probes, opens and creates images by format.
//!
//! Subcommands hold a `Box<dyn Image>` and never ask which format it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::io::{Access, ImageFile, SECTOR};
use crate::options::Options;
use crate::{raw, vhd, vmdk};

/// A place in a host file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub file: Arc<Path>,
    pub offset: u64,
}

/// Where a range of the virtual disk comes from, in one layer of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Data stored in this layer; `host` is where, when it sits verbatim in
    /// a file (compressed grains have no such place).
    Data {
        host: Option<Host>,
        compressed: bool,
    },
    /// Known to read as zeros in this layer (a hole in a raw file, a zeroed
    /// grain, a block of a dynamic VHD that holds nothing). `data` is true
    /// where the format stores data that reads as zeros: a hole in the file
    /// of a fixed VHD or a flat extent.
    Zero { host: Option<Host>, data: bool },
    /// Nothing in this layer: reads come from the parent, or are zeros when
    /// there is none.
    Unallocated,
}

/// A run of the virtual disk, starting where it was asked for, that comes
/// all from one source (and, for data, contiguous in its host file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub len: u64,
    pub source: Source,
}

impl Mapping {
    pub fn new(len: u64, source: Source) -> Self {
        Mapping { len, source }
    }
}

/// What `info` reports about an image.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// Format name as qemu-img spells it (`vmdk`, `vpc`, `raw`).
    pub format: &'static str,
    pub virtual_size: u64,
    pub cluster_size: Option<u64>,
    /// The parent as recorded in the image, for delta images.
    pub backing_file: Option<String>,
    /// Format-specific fields, in display order: `(type, data)`.
    pub specific: Option<(&'static str, Map<String, Value>)>,
}

/// A virtual disk: the one interface every format implements.
pub trait Image: Send {
    /// Size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;

    /// Allocation unit in bytes: grain or block size, 512 for raw.
    fn cluster_size(&self) -> u64;

    /// Fill `buf` from the virtual disk at `offset`.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// Write `buf` to the virtual disk at `offset`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;

    /// The kind of the virtual range starting at `offset`, for up to `len`
    /// bytes (the answer may be shorter; never zero-length when `len > 0`).
    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping>;

    /// Write back every table and header held in memory, in crash-safe
    /// order (data is always on disk before what points at it).
    fn flush(&mut self) -> Result<()>;

    /// Header facts for `info`.
    fn info(&mut self) -> Result<ImageInfo>;

    /// Every host file the image consists of (for sizes and renames).
    fn files(&self) -> Vec<PathBuf>;

    /// The parent of a delta image.
    fn parent(&mut self) -> Option<&mut dyn Image> {
        None
    }
}

/// Check that `[offset, offset + len)` lies inside a disk of `size` bytes.
pub fn check_range(path: &Path, size: u64, offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::invalid(format!(
            "{}: access at byte offset {offset}, length {len}, is beyond the end of the {size}-byte disk",
            path.display()
        ))),
    }
}

/// The image formats vimg reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Vmdk,
    Vhd,
}

impl Format {
    /// Parse a format name as given to `-f`/`-O` (`vhd` and `vpc` are one).
    pub fn from_name(name: &str) -> Result<Format> {
        match name {
            "raw" => Ok(Format::Raw),
            "vmdk" => Ok(Format::Vmdk),
            "vhd" | "vpc" => Ok(Format::Vhd),
            _ => Err(Error::invalid(format!(
                "unknown format '{name}' (known: raw, vmdk, vhd/vpc)"
            ))),
        }
    }

    /// The name qemu-img uses.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vpc",
        }
    }
}

/// Recognise a format from a file's content, never its name: VMDK magic or
/// descriptor text, a VHD footer at offset 0 or at the end, else raw.
pub fn probe(path: &Path) -> Result<Format> {
    let file = ImageFile::open(path, Access::ReadShared)?;
    let len = file.length()?;
    let mut head = vec![0u8; len.min(4096) as usize];
    file.read_exact_at(&mut head, 0)?;
    if vmdk::probe(&head) {
        return Ok(Format::Vmdk);
    }
    if vhd::probe_head(&head) {
        return Ok(Format::Vhd);
    }
    if len >= SECTOR {
        let mut tail = [0u8; SECTOR as usize];
        file.read_exact_at(&mut tail, len - SECTOR)?;
        if vhd::probe_tail(&tail) {
            return Ok(Format::Vhd);
        }
    }
    Ok(Format::Raw)
}

/// Probe, but refuse to fall back to raw for a file whose name claims
/// VMDK or VHD: a damaged image must not be copied as if it were a raw disk.
fn probe_named(path: &Path) -> Result<Format> {
    let format = probe(path)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let claimed = match ext.as_deref() {
        Some("vmdk") => "not a VMDK (no KDMV or COWD magic, no descriptor text)",
        Some("vhd" | "vpc") => "not a VHD (no \"conectix\" footer at the start or the end)",
        _ => return Ok(format),
    };
    if format == Format::Raw {
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            detail: format!("{claimed}; give -f raw to read it as a raw disk"),
        });
    }
    Ok(format)
}

/// Open an image, probing its format unless one is given, together with
/// the chain of parents it records.
pub fn open(path: &Path, format: Option<Format>, access: Access) -> Result<Box<dyn Image>> {
    let mut chain = Chain::new();
    chain.enter(path)?;
    let format = match format {
        Some(f) => f,
        None => probe_named(path)?,
    };
    match format {
        Format::Raw => Ok(Box::new(raw::Raw::open(path, access)?)),
        Format::Vmdk => vmdk::open(path, access, &mut chain),
        Format::Vhd => vhd::open(path, access, &mut chain),
    }
}

/// The parent of a delta about to be created.
#[derive(Clone, Debug)]
pub struct Backing {
    /// Where the parent is now.
    pub path: PathBuf,
    /// How the delta records it (relative to the delta's final folder).
    pub name: String,
    /// The parent's format, when given (`-F`); it must match the delta's.
    pub format: Option<Format>,
}

/// Create an image of `size` bytes and return it opened for writing.
/// `opts` holds the `-o` options; any the format does not know is an error.
/// With `backing`, the image is a delta over that parent.
pub fn create(
    path: &Path,
    format: Format,
    size: u64,
    opts: &mut Options,
    backing: Option<&Backing>,
) -> Result<Box<dyn Image>> {
    if let Some(b) = backing {
        if b.format.is_some_and(|f| f != format) {
            return Err(Error::invalid(format!(
                "a {} image needs a {} parent, not {}",
                format.name(),
                format.name(),
                b.format.map_or("", |f| f.name())
            )));
        }
    }
    if format != Format::Vmdk && opts.take_bool("compress")? == Some(true) {
        return Err(Error::invalid(format!(
            "{} images cannot be compressed; compression needs -O vmdk (streamOptimized)",
            format.name()
        )));
    }
    let image: Box<dyn Image> = match (format, backing) {
        (Format::Raw, None) => {
            opts.finish("raw")?;
            Box::new(raw::Raw::create(path, size)?)
        }
        (Format::Vmdk, _) => vmdk::create(path, size, opts, backing)?,
        (Format::Vhd, _) => vhd::create(path, size, opts, backing)?,
        (_, Some(_)) => {
            return Err(Error::invalid(format!(
                "{} images cannot have a backing file",
                format.name()
            )))
        }
    };
    Ok(image)
}

/// Create an image that is written front to back into `out` (a pipe):
/// only formats made to stream can (streamOptimized VMDK).
pub fn create_stream(
    name: &Path,
    format: Format,
    size: u64,
    opts: &mut Options,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Box<dyn Image>> {
    match format {
        Format::Vmdk => vmdk::create_stream(name, size, opts, out),
        _ => Err(Error::invalid(format!(
            "{} images cannot be written to a pipe; only -O vmdk (streamOptimized) can",
            format.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        assert_eq!(Format::from_name("vpc").unwrap(), Format::Vhd);
        assert_eq!(Format::from_name("vhd").unwrap().name(), "vpc");
        assert!(Format::from_name("qcow2").is_err());
    }
}
