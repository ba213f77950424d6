//! The one trait every format implements and the types it speaks in: the
//! allocation picture a layer reports ([`Mapping`], [`Source`]), what `info`
//! shows, and how a chain's layers are opened.
//!
//! This module names no format; [`factory`] is the one place that does
//! (probing, opening and creating by format). Subcommands hold a
//! `Box<dyn Image>` and never ask which format it is.

pub mod check;
pub mod factory;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::io::{Access, ImageFile, Named};
use crate::options::Options;
use check::{Finding, Repair, Report};

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
/// all from one source (and, for data, is contiguous in its host file).
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

/// What identifies an image's content to the deltas made from it: what a
/// delta records of its parent and checks when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// VMDK: the descriptor's content ID (`CID`; a delta's `parentCID`).
    Cid(u32),
    /// VHD: the footer's unique ID (a differencing disk's parent UUID).
    Uuid([u8; 16]),
}

impl std::fmt::Display for Identity {
    /// As the formats' own tools show it: a CID in 8 hex digits, a UUID
    /// in its hyphenated form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Cid(cid) => write!(f, "{cid:08x}"),
            Identity::Uuid(uuid) => write!(f, "{}", uuid::Uuid::from_bytes(*uuid)),
        }
    }
}

/// A parent for a delta to record ([`Image::set_backing`]).
pub struct NewParent {
    /// The parent, opened.
    pub image: Box<dyn Image>,
    /// How the delta names it: a path relative to the delta's folder, as
    /// `create -b` records it, or an absolute one.
    pub name: String,
}

/// How the layers of a chain are opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// The image itself.
    pub access: Access,
    /// Every parent below it; `None` opens the image alone, its parent
    /// link recorded but not followed (ranges it leaves to a parent then
    /// read as zeros).
    pub parents: Option<Access>,
    /// Open for [`Image::check`]: damage past the headers (tables, grains
    /// and blocks where they should not be, a parent that does not match)
    /// is kept for the check to report instead of refusing the image. Such
    /// an image is for inspection: do not read its data or write it.
    pub for_check: bool,
    /// Open a damaged image for reading what can be read ([`Walk::Salvage`]).
    pub salvage: bool,
    /// The folder every file an image names (parents; extents lie beside
    /// their descriptor in any case) must lie in, reached without a link
    /// leading out (`--confine`).
    pub confine: Option<Arc<Path>>,
    /// Refuse an image that records a parent (`--no-backing`: what an
    /// upload validator wants).
    pub forbid_parents: bool,
    /// A parent that cannot be found ends the chain instead of failing the
    /// open: the layer records a parent but has none (`snapshot list`,
    /// which shows the broken link).
    pub tolerate_missing_parents: bool,
    /// The identity a parent in the chain may have instead of the one its
    /// child records (a `snapshot commit` in progress changed it).
    pub trusted_parent: Option<Identity>,
    /// Read through parents whose identity is not the one their child
    /// recorded (`--ignore-parent-id`: read-only recovery of a chain whose
    /// link broke).
    pub ignore_parent_ids: bool,
    /// Which file this is: the one the user named, or one an image names
    /// (a parent), which must be a regular file.
    by_image: bool,
}

/// How thoroughly an open walks a layer's metadata, and what it does with
/// what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// For reading: tables and data units must lie in the file, clear of
    /// the metadata and of one another.
    Read,
    /// For writing: also whatever a new data unit could land on (VHD
    /// parent locators) must lie in the file and apart.
    Write,
    /// For `check`: nothing past the headers is refused.
    Check,
    /// For reading what can be read (`convert --salvage`): as `Read`, but
    /// a data unit that lies outside the file or on something else fails
    /// the reads of it instead of the open (sparse VMDK grains, dynamic
    /// and differencing VHD blocks; of a block cut short by the end of the
    /// file, what lies in the file still reads).
    Salvage,
}

impl OpenOptions {
    /// The image opened with `access`, its parents for reading (shared
    /// when the image is).
    pub fn new(access: Access) -> Self {
        let parents = match access {
            Access::Write => Access::Read,
            other => other,
        };
        OpenOptions {
            access,
            parents: Some(parents),
            for_check: false,
            salvage: false,
            confine: None,
            forbid_parents: false,
            tolerate_missing_parents: false,
            trusted_parent: None,
            ignore_parent_ids: false,
            by_image: false,
        }
    }

    /// Read through parents whose identity does not match (see
    /// [`OpenOptions::ignore_parent_ids`]).
    pub fn ignoring_parent_ids(self, ignore: bool) -> Self {
        OpenOptions {
            ignore_parent_ids: ignore,
            ..self
        }
    }

    /// Take the image's parent with `identity` too (see
    /// [`OpenOptions::trusted_parent`]).
    pub fn trusting_parent(self, identity: Option<Identity>) -> Self {
        OpenOptions {
            trusted_parent: identity,
            ..self
        }
    }

    /// Whether a parent whose identity is not the one recorded may be
    /// taken anyway.
    pub fn trusts(&self, parent: Option<Identity>) -> bool {
        let read_only = self.access != Access::Write;
        (parent.is_some() && parent == self.trusted_parent) || (self.ignore_parent_ids && read_only)
    }

    /// End the chain at a parent that cannot be found (see
    /// [`OpenOptions::tolerate_missing_parents`]).
    pub fn tolerating_missing_parents(self) -> Self {
        OpenOptions {
            tolerate_missing_parents: true,
            ..self
        }
    }

    /// The parents opened with `parents` instead (`None`: not at all).
    pub fn with_parents(self, parents: Option<Access>) -> Self {
        OpenOptions { parents, ..self }
    }

    /// Open a damaged image to read what can be read, for reading only
    /// (see [`Walk::Salvage`]).
    pub fn salvaging(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }

    /// Open for [`Image::check`] (see [`OpenOptions::for_check`]).
    pub fn checking(self) -> Self {
        OpenOptions {
            for_check: true,
            ..self
        }
    }

    /// Files images name only inside `dir` (see [`OpenOptions::confine`]).
    pub fn confined_to(self, dir: Option<&Path>) -> Self {
        OpenOptions {
            confine: dir.map(Arc::from),
            ..self
        }
    }

    /// Refuse images that record a parent (see
    /// [`OpenOptions::forbid_parents`]).
    pub fn forbidding_parents(self, forbid: bool) -> Self {
        OpenOptions {
            forbid_parents: forbid,
            ..self
        }
    }

    /// Fail when an image at `path` that records a parent (`recorded`)
    /// may not have one.
    pub fn allow_parent(&self, path: &Path, recorded: &str) -> Result<()> {
        match self.forbid_parents {
            false => Ok(()),
            true => Err(Error::unsupported(
                path,
                format!("it has a parent ({recorded}); --no-backing refuses images with a parent"),
            )),
        }
    }

    /// How this image's parent is opened, if it is.
    pub fn for_parent(&self) -> Option<OpenOptions> {
        self.parents.map(|access| OpenOptions {
            access,
            parents: Some(access),
            by_image: true,
            ..self.clone()
        })
    }

    /// Who names the image these options open: the user, or an image.
    pub fn named(&self) -> Named<'_> {
        match self.by_image {
            false => Named::ByUser,
            true => Named::ByImage {
                beneath: self.confine.as_deref(),
            },
        }
    }

    /// How much the image itself is walked at open.
    pub fn walk(&self) -> Walk {
        match (self.for_check, self.access) {
            (true, _) => Walk::Check,
            (false, Access::Write) => Walk::Write,
            (false, _) if self.salvage => Walk::Salvage,
            (false, _) => Walk::Read,
        }
    }
}

/// Something a disk is written into: every image, and the write-only
/// streamOptimized sink that cannot be read back.
pub trait Sink: Send {
    /// Size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;

    /// Write `buf` to the virtual disk at `offset`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;

    /// Write back every table and header held in memory, in crash-safe
    /// order (data is always on disk before what points at it).
    fn flush(&mut self) -> Result<()>;

    /// Every host file the image consists of (for sizes and renames); the
    /// first is the one it was opened or created by.
    fn files(&self) -> Vec<PathBuf>;

    /// This sink as an image that can be read and asked where its bytes
    /// lie; `None` for a write-only sink (a stream).
    fn as_image(&mut self) -> Option<&mut dyn Image> {
        None
    }
}

/// A virtual disk: the one interface every format implements.
pub trait Image: Sink {
    /// Allocation unit in bytes: grain or block size, 512 for raw.
    fn cluster_size(&self) -> u64;

    /// Fill `buf` from the virtual disk at `offset` (through the parents).
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// What this layer alone holds in the range starting at `offset`, for
    /// up to `len` bytes (the answer may be shorter; never zero-length when
    /// `len > 0`). Ranges it leaves to its parent are `Unallocated`;
    /// [`crate::chain::status`] resolves them down the chain.
    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping>;

    /// Header facts for `info`.
    fn info(&mut self) -> Result<ImageInfo>;

    /// The parent of a delta image.
    fn parent(&mut self) -> Option<&mut dyn Image> {
        None
    }

    /// What a delta made from this image records of it; `None` for formats
    /// that have no deltas.
    fn identity(&self) -> Option<Identity> {
        None
    }

    /// The identity this delta recorded of its parent (VMDK `parentCID`,
    /// VHD parent UUID), and the name it records it by; `None` for an
    /// image without a parent.
    fn parent_link(&self) -> Option<(Identity, String)> {
        None
    }

    /// Rewrite the parent link this delta records, and read through the new
    /// parent from now on: its name and identity (VMDK `parentFileNameHint`
    /// and `parentCID`; VHD parent UUID, time stamp, name and locators), or
    /// with `None` no parent at all (what the delta holds stays; the rest
    /// reads as zeros). Only the link changes: data is not copied, so the
    /// disk reads differently unless the new parent reads as the old one
    /// did wherever this delta holds nothing.
    fn set_backing(&mut self, parent: Option<NewParent>) -> Result<()> {
        let _ = parent;
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "this image cannot record a parent",
        ))
    }

    /// Walk all of this layer's metadata (not its parents') and record in
    /// `report` everything inconsistent, without stopping at the first:
    /// tables, grains or blocks outside the file, on the metadata or on one
    /// another, a parent that does not match, and space nothing references.
    /// An `Err` means the walk itself could not go on (an I/O error).
    fn check(&mut self, report: &mut Report) -> Result<()> {
        let _ = report;
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "checking this format is not supported",
        ))
    }

    /// Fail unless this layer can take data and link changes (a format
    /// read only, as seSparse, refuses them): asked before work that would
    /// change other layers first, as `snapshot commit` does.
    fn check_writable(&self) -> Result<()> {
        Ok(())
    }

    /// Change in place what `opts` (`-o` options) asks for among what can
    /// change without touching the disk's content (VMDK adapter type,
    /// hardware and tools versions); returns what changed, one line each.
    /// Options the format does not amend are refused, naming the command
    /// that does them.
    fn amend(&mut self, opts: &mut Options) -> Result<Vec<String>> {
        let _ = opts;
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "nothing of this format can be amended",
        ))
    }

    /// Drop the grains or blocks of this layer that read as all zeros
    /// (where the layer has a parent, only those under which the parent
    /// reads zeros too: others hide its data) and give their space back;
    /// formats without such units (flat extents, fixed VHDs) punch their
    /// runs of zeros out as holes. What any sector reads and the image's
    /// identity stay. Returns the bytes dropped or punched.
    /// `progress` is told how far into the disk the work has come (bytes).
    fn compact(&mut self, progress: Progress) -> Result<u64> {
        let _ = progress;
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "only VMDK and VHD images can be compacted",
        ))
    }

    /// Change the disk's size to `size` bytes (a whole number of sectors)
    /// in place, keeping what every sector below both sizes reads; a larger
    /// disk reads zeros past the old end. Crash-safe: one write switches
    /// from the old size to the new one, everything the new size needs is
    /// written before it where the old layout does not look, and what the
    /// old size used past the new end is given up after it, so a stop at
    /// any moment leaves the old size or the new one (with leaks at most,
    /// which `repair(Repair::Leaks)` gives back). Deltas are refused (a
    /// delta has its parent's size). Whether data past a smaller size may
    /// go is the caller's decision. Returns notes for the user (warnings).
    /// The open image describes the old layout afterwards: drop it and
    /// open the image again.
    fn resize(&mut self, size: u64) -> Result<Vec<String>> {
        let _ = size;
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "this image cannot be resized",
        ))
    }

    /// Forget everything this layer holds itself, so that it reads its
    /// parent (or zeros) everywhere, and give the space back: what
    /// `snapshot commit` does to a delta once its parent holds the same
    /// data. The layer's own identity stays (its content, read through the
    /// chain, is the same). Safe to stop at any moment and do again.
    fn discard_all(&mut self) -> Result<()> {
        Err(Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "only a delta's data can be discarded",
        ))
    }

    /// Repair what [`Image::check`] finds in this layer and `level`
    /// allows (see [`Repair`]), in crash-safe order: a stop after any write
    /// leaves the layer no worse than it was (at most with leaks), and a
    /// second run finishes the job. Needs an image opened for writing and
    /// for checking. Returns what was repaired, as the findings it fixed;
    /// what it could not repair stays for the next check to report.
    fn repair(&mut self, level: Repair) -> Result<Vec<Finding>> {
        let _ = level;
        Ok(Vec::new())
    }
}

/// Told how far into the disk (bytes) long work has come.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

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

/// Whether a hole in a file that stores a disk verbatim is data the format
/// holds (a fixed VHD, a flat extent) or simply zeros (a raw file, where the
/// file is the disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holes {
    Stored,
    Zeros,
}

/// The status of `len` bytes stored verbatim in `file` from byte `host` on:
/// data, or a hole (reads as zeros), with where it lies.
pub fn file_status(file: &ImageFile, host: u64, len: u64, holes: Holes) -> Result<Mapping> {
    let end = host + len;
    let at = Some(Host {
        file: file.name().clone(),
        offset: host,
    });
    let zero = |len| {
        Mapping::new(
            len,
            Source::Zero {
                host: at.clone(),
                data: holes == Holes::Stored,
            },
        )
    };
    Ok(match file.next_data(host)? {
        Some(pos) if pos <= host => {
            let hole = file.next_hole(host)?.clamp(host + 1, end);
            Mapping::new(
                hole - host,
                Source::Data {
                    host: at.clone(),
                    compressed: false,
                },
            )
        }
        Some(pos) => zero(pos.min(end) - host),
        None => zero(len),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The code of a source file, without its tests.
    fn code(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        match text.find("#[cfg(test)]") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }

    fn sources(dir: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = Vec::new();
        let mut stack = vec![root.join(dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
        out
    }

    /// cmd -> image::factory -> {vmdk, vhd, raw} -> image (the trait) ->
    /// alloc, io: the trait names no format, the formats never reach the
    /// factory or each other, and the shared layers below know neither.
    #[test]
    fn the_module_graph_runs_one_way() {
        let formats = ["crate::vmdk", "crate::vhd", "crate::raw", "crate::{raw"];
        let mut below: Vec<String> = vec![
            "image/mod.rs".into(),
            "image/check.rs".into(),
            "chain.rs".into(),
            "io.rs".into(),
            "error.rs".into(),
            "options.rs".into(),
        ];
        below.extend(sources("alloc"));
        below.extend(sources("copy"));
        for file in &below {
            let code = code(file);
            for name in formats.iter().chain(&["factory::", "image::factory"]) {
                assert!(!code.contains(name), "{file} names {name}");
            }
        }
        for (dir, others) in [
            ("vmdk", ["crate::vhd", "crate::raw"]),
            ("vhd", ["crate::vmdk", "crate::raw"]),
        ] {
            for file in sources(dir) {
                let code = code(&file);
                for name in others.iter().chain(&["factory::", "image::factory"]) {
                    assert!(!code.contains(name), "{file} names {name}");
                }
            }
        }
        let raw = code("raw.rs");
        assert!(
            !raw.contains("factory") && !raw.contains("crate::vmdk") && !raw.contains("crate::vhd")
        );
    }
}
