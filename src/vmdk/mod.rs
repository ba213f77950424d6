//! VMware VMDK: a descriptor (embedded in a sparse extent, or a text file)
//! listing extents (sparse, flat or zero) that together make the disk.

mod cowd;
mod create;
mod deflate;
mod descriptor;
mod header;
mod marker;
mod resize;
mod sesparse;
mod sparse;
mod stream;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use self::descriptor::{Descriptor, ExtentAccess, ExtentLine, MAX_DESCRIPTOR};
use self::header::MAGIC;
use self::sesparse::SeSparseExtent;
use self::sparse::SparseExtent;
use crate::alloc::space::Space;
use crate::chain::{self, Chain};
use crate::error::{Error, Result};
use crate::image::check::{Clusters, Finding, Repair, Report, Severity};
use crate::image::{
    check_range, file_status, Holes, Identity, Image, ImageInfo, Mapping, NewParent, OpenOptions,
    Sink, Source, Walk,
};
use crate::io::{folder_of, Access, ImageFile, Named, SECTOR};
use crate::options::Options;

pub use self::create::{create, create_stream, data_cost, OPTIONS as CREATE_OPTIONS};

/// The options `amend` takes for a VMDK (`-o help`).
pub const AMEND_OPTIONS: &[crate::options::OptionDoc] = &[
    crate::options::OptionDoc {
        key: "adapter_type",
        kind: "str",
        about: "ide, lsilogic, buslogic or legacyESX (and the geometry VMware expects with it)",
    },
    crate::options::OptionDoc {
        key: "geometry",
        kind: "str",
        about: "CYLINDERS/HEADS/SECTORS recorded in the descriptor",
    },
    crate::options::OptionDoc {
        key: "hwversion",
        kind: "str",
        about: "VMware virtual hardware version (a number)",
    },
    crate::options::OptionDoc {
        key: "compat6",
        kind: "bool (on/off)",
        about: "Hardware version 6 (the same as hwversion=6)",
    },
    crate::options::OptionDoc {
        key: "toolsversion",
        kind: "str",
        about: "VMware Tools version (a number)",
    },
];

/// True when a file's first bytes are a VMDK: sparse or COWD magic, or a
/// text descriptor.
pub fn probe(head: &[u8]) -> bool {
    if head.starts_with(MAGIC) || head.starts_with(b"COWD") {
        return true;
    }
    // Bytes, not UTF-8: the head may cut a character in two, and VMware
    // writes Windows-1252 descriptors.
    let text = &head[..head.iter().position(|&b| b == 0).unwrap_or(head.len())];
    String::from_utf8_lossy(text).lines().any(|l| {
        let l = l.trim();
        l.starts_with("# Disk DescriptorFile")
            || l.starts_with("# Disk Descriptor File")
            || l.starts_with("createType")
    })
}

/// Where an extent's data is.
enum Storage {
    Sparse(Box<SparseExtent>),
    /// An ESXi seSparse extent: read only.
    SeSparse(Box<SeSparseExtent>),
    Flat {
        file: Arc<ImageFile>,
        offset: u64,
    },
    Zero,
}

struct Extent {
    /// Virtual offset where the extent starts.
    start: u64,
    len: u64,
    access: ExtentAccess,
    /// The extent type as the descriptor or qemu-img names it.
    kind: String,
    storage: Storage,
}

impl Extent {
    /// Fail unless data can be written into this extent.
    fn check_writable(&self, path: &Path) -> Result<()> {
        if self.access != ExtentAccess::ReadWrite {
            return Err(Error::unsupported(
                path,
                format!("cannot write into a read-only {} extent", self.kind),
            ));
        }
        match &self.storage {
            Storage::Sparse(s) => s.check_writable(),
            Storage::SeSparse(s) => s.check_writable(),
            Storage::Flat { .. } => Ok(()),
            Storage::Zero => Err(Error::unsupported(path, "cannot write into a ZERO extent")),
        }
    }
}

/// Where the descriptor lives.
enum DescriptorHome {
    /// Inside a sparse extent: `offset` and `capacity` in bytes.
    Embedded {
        file: Arc<ImageFile>,
        offset: u64,
        capacity: u64,
    },
    File(ImageFile),
}

/// An open VMDK.
pub struct Vmdk {
    path: PathBuf,
    desc: Descriptor,
    home: DescriptorHome,
    extents: Vec<Extent>,
    size: u64,
    /// Data was written since open (the CID has changed).
    changed: bool,
    /// The descriptor as read (UTF-8), rewritten by changing only its IDs
    /// and parent link.
    desc_text: Option<String>,
    /// The parent of a delta.
    parent: Option<Box<dyn Image>>,
    /// What an open for `check` found and walked past.
    damage: Vec<Error>,
}

/// Resolve an extent name against the descriptor's directory, refusing
/// absolute paths and `..`, so a descriptor cannot reach outside its folder.
fn resolve_extent(desc: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name);
    let bad = rel.is_absolute()
        || name.contains('\\') && name.contains(':')
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if bad || name.is_empty() {
        return Err(Error::unsupported(
            desc,
            format!("extent file name \"{name}\" is absolute, empty or leaves the descriptor's directory; refused"),
        ));
    }
    // Beside a descriptor in the current folder, the bare name (as
    // qemu-img shows it), not `./name`.
    Ok(desc.parent().map_or(rel.to_path_buf(), |dir| dir.join(rel)))
}

impl Vmdk {
    /// Open a VMDK and, for a delta, its parents (found through
    /// `parentFileNameHint`, each checked against the CID its child recorded).
    pub fn open_in(path: &Path, opts: &OpenOptions, chain: &mut Chain) -> Result<Vmdk> {
        let mut vmdk = Vmdk::open_layer(path, opts)?;
        match chain.claim(path, &vmdk.files()) {
            Ok(()) => {}
            // Damage `check` reports; the walk stops there.
            Err(e @ Error::Chain { .. }) if opts.for_check => {
                vmdk.damage.push(e);
                return Ok(vmdk);
            }
            Err(e) => return Err(e),
        }
        let hint = vmdk.desc.parent_hint.clone();
        if let Some(hint) = &hint {
            opts.allow_parent(path, hint)?;
        }
        if let (Some(hint), Some(parent_opts)) = (hint, opts.for_parent()) {
            let parent_path = chain::parent_path(path, &hint);
            // The link is shown broken (snapshot list).
            if opts.tolerate_missing_parents
                && std::fs::symlink_metadata(&parent_path)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                return Ok(vmdk);
            }
            match chain.enter(&parent_path) {
                Ok(()) => {}
                // A loop is damage `check` reports; the walk stops there.
                Err(e @ Error::Chain { .. }) if opts.for_check => {
                    vmdk.damage.push(e);
                    return Ok(vmdk);
                }
                Err(e) => return Err(e),
            }
            let parent = Vmdk::open_in(&parent_path, &parent_opts, chain)
                .map_err(|e| Error::parent(path, &parent_path, e))?;
            match vmdk.check_parent(&parent) {
                Ok(()) => {}
                // A commit in progress changed the parent's identity.
                Err(Error::Chain { .. }) if opts.trusts(parent.identity()) => {}
                // Kept for `check` to report; the chain is walked on.
                Err(e @ Error::Chain { .. }) if opts.for_check => vmdk.damage.push(e),
                Err(e) => return Err(e),
            }
            vmdk.parent = Some(Box::new(parent));
        }
        Ok(vmdk)
    }

    /// Make `parent` this delta's parent, refusing one whose content ID is
    /// not the one the delta was made from.
    pub fn attach(&mut self, parent: Vmdk) -> Result<()> {
        self.check_parent(&parent)?;
        self.parent = Some(Box::new(parent));
        Ok(())
    }

    /// Fail unless `parent` has the content ID this delta was made from.
    fn check_parent(&self, parent: &Vmdk) -> Result<()> {
        let expected = self.desc.parent_cid;
        if expected == descriptor::NO_PARENT {
            // A delta always records its parent's CID; without it any
            // VMDK a hint names would be taken on trust.
            return Err(Error::chain(
                &self.path,
                "it names a parent but records no parent content ID (parentCID=ffffffff), so nothing shows the parent is the one it was made from",
            ));
        }
        if parent.desc.cid != expected {
            return Err(Error::chain(
                &self.path,
                format!(
                    "its parent {} has content ID {:08x}, but the delta was made from content ID {expected:08x}: the parent changed after the delta was taken (if it is the right parent, `vimg rebase -u -b {} {}` relinks it; --ignore-parent-id reads through it as it is)",
                    parent.path.display(),
                    parent.desc.cid,
                    parent.path.display(),
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// The grain size, when the disk starts with a sparse extent (what
    /// qemu-img reports as the cluster size).
    fn grain_size(&self) -> Option<u64> {
        match self.extents.first().map(|e| &e.storage) {
            Some(Storage::Sparse(s)) => Some(s.grain_size()),
            Some(Storage::SeSparse(s)) => Some(s.grain_size()),
            _ => None,
        }
    }

    /// The content ID.
    pub fn cid(&self) -> u32 {
        self.desc.cid
    }

    /// The descriptor's `createType`.
    pub fn create_type(&self) -> &str {
        &self.desc.create_type
    }

    /// A disk database value.
    pub fn ddb(&self, key: &str) -> Option<&str> {
        self.desc.ddb(key)
    }

    /// Open one VMDK file set (descriptor and extents), without parents.
    pub fn open_layer(path: &Path, opts: &OpenOptions) -> Result<Vmdk> {
        let (access, walk) = (opts.access, opts.walk());
        let file = ImageFile::open_named(path, access, opts.named())?;
        let len = file.length()?;
        let mut head = [0u8; 4];
        file.read_zero_filled(&mut head, 0)?;
        if &head == MAGIC || &head == b"COWD" {
            return Self::open_monolithic(path, Arc::new(file), access, walk);
        }
        if len > MAX_DESCRIPTOR {
            return Err(Error::corrupt(
                path,
                "VMDK descriptor",
                0,
                format!("a {len}-byte text descriptor is too large (limit {MAX_DESCRIPTOR})"),
            ));
        }
        let mut text = vec![0u8; len as usize];
        file.read_exact_at(&mut text, 0)?;
        // Only a file shown to be a descriptor is parsed (and quoted in
        // errors): a parent hint may name any file on the host.
        if !probe(&text[..text.len().min(4096)]) {
            return Err(Error::UnknownFormat {
                path: path.to_path_buf(),
                detail: "not a VMDK (no KDMV or COWD magic, no descriptor text)".into(),
            });
        }
        let desc =
            Descriptor::parse(&text).map_err(|d| Error::corrupt(path, "VMDK descriptor", 0, d))?;
        let desc_text = original_text(&text);
        if desc.extents.len() > MAX_EXTENTS {
            return Err(Error::unsupported(
                path,
                format!(
                    "{} extents are more than vimg handles ({MAX_EXTENTS})",
                    desc.extents.len()
                ),
            ));
        }
        let mut extents = Vec::with_capacity(desc.extents.len());
        let mut start = 0u64;
        let mut seen = FileUse::new(file.identity());
        let mut damage = Vec::new();
        for line in &desc.extents {
            // An extent that cannot be opened, or whose header is damaged,
            // is damage `check` reports; its range is walked past as a ZERO
            // extent.
            let walked_past = |e: Error, damage: &mut Vec<Error>| {
                damage.push(e);
                Extent {
                    start,
                    len: line.sectors.saturating_mul(SECTOR),
                    access: line.access,
                    kind: line.kind.clone(),
                    storage: Storage::Zero,
                }
            };
            let extent = match open_extent(path, line, start, access, walk, &mut damage) {
                Ok(extent) => extent,
                Err(e) if walk == Walk::Check && e.is_corruption() => walked_past(e, &mut damage),
                Err(e @ Error::Extent { .. }) if walk == Walk::Check => {
                    let detail = format!("the extent cannot be opened: {e}");
                    let e = Error::corrupt(path, "VMDK extent line", 0, detail);
                    walked_past(e, &mut damage)
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = seen.claim(path, &extent) {
                match walk {
                    Walk::Check => damage.push(e),
                    _ => return Err(e),
                }
            }
            start = start.checked_add(extent.len).ok_or_else(|| {
                Error::corrupt(
                    path,
                    "VMDK descriptor",
                    0,
                    "the extents add up to more than 16 EiB",
                )
            })?;
            extents.push(extent);
        }
        Ok(Vmdk {
            path: path.to_path_buf(),
            desc,
            desc_text,
            home: DescriptorHome::File(file),
            extents,
            size: start,
            changed: false,
            parent: None,
            damage,
        })
    }

    /// A sparse extent opened directly: the disk is that one extent, and its
    /// embedded descriptor (if any) holds the disk's identity.
    fn open_monolithic(
        path: &Path,
        file: Arc<ImageFile>,
        access: Access,
        walk: Walk,
    ) -> Result<Vmdk> {
        let sparse = SparseExtent::open(file.clone(), walk)?;
        let h = &sparse.header;
        let capacity = sparse.capacity();
        let embedded = h.descriptor_offset != 0 && h.descriptor_size != 0;
        let (desc, desc_text, offset, room) = if embedded {
            let offset = h.descriptor_offset.saturating_mul(SECTOR);
            let room = h.descriptor_size.saturating_mul(SECTOR);
            if room > MAX_DESCRIPTOR || offset.saturating_add(room) > file.length()? {
                return Err(Error::corrupt(
                    path,
                    "VMDK sparse header",
                    header::field::DESCRIPTOR_OFFSET,
                    format!("the embedded descriptor ({room} bytes at byte {offset}) does not fit in the file"),
                ));
            }
            let mut text = vec![0u8; room as usize];
            file.read_exact_at(&mut text, offset)?;
            let desc = Descriptor::parse(&text)
                .map_err(|d| Error::corrupt(path, "VMDK embedded descriptor", offset, d))?;
            let desc_text = original_text(&text);
            if access == Access::Write && rewritten(&desc, desc_text.as_deref()).len() as u64 > room
            {
                return Err(Error::unsupported(
                    path,
                    format!("the embedded descriptor's {room}-byte space has no room for a new content ID; refusing to write"),
                ));
            }
            (desc, desc_text, offset, room)
        } else {
            let kind = if sparse.is_cowd() {
                "vmfsSparse"
            } else {
                "monolithicSparse"
            };
            (bare_descriptor(path, capacity, kind), None, 0, 0)
        };
        let extent = Extent {
            start: 0,
            len: capacity,
            access: ExtentAccess::ReadWrite,
            kind: String::new(),
            storage: Storage::Sparse(Box::new(sparse)),
        };
        Ok(Vmdk {
            path: path.to_path_buf(),
            desc,
            desc_text,
            home: DescriptorHome::Embedded {
                file,
                offset,
                capacity: room,
            },
            extents: vec![extent],
            size: capacity,
            changed: false,
            parent: None,
            damage: Vec::new(),
        })
    }

    /// The descriptor against the disk: an embedded descriptor's extents
    /// must add up to the capacity its sparse header gives.
    fn check_descriptor(&self, report: &mut Report) {
        let DescriptorHome::Embedded {
            offset, capacity, ..
        } = &self.home
        else {
            return;
        };
        if *capacity == 0 {
            return;
        }
        let sectors = self
            .desc
            .extents
            .iter()
            .fold(0u64, |sum, l| sum.saturating_add(l.sectors));
        if sectors != self.size / SECTOR {
            report.push(Finding::new(
                Severity::Corruption,
                &self.path,
                Some(*offset),
                "VMDK embedded descriptor",
                format!(
                    "its extents add up to {sectors} sectors, but the sparse header's capacity is {} sectors",
                    self.size / SECTOR
                ),
            ));
        }
    }

    /// Write the descriptor back where it came from.
    fn write_descriptor(&mut self) -> Result<()> {
        let text = rewritten(&self.desc, self.desc_text.as_deref());
        match &self.home {
            DescriptorHome::Embedded {
                file,
                offset,
                capacity,
            } => {
                if *capacity == 0 {
                    return Ok(());
                }
                if text.len() as u64 > *capacity {
                    return Err(Error::unsupported(
                        &self.path,
                        format!(
                            "the descriptor ({} bytes) no longer fits its {capacity}-byte space",
                            text.len()
                        ),
                    ));
                }
                let mut buf = text.clone().into_bytes();
                buf.resize(*capacity as usize, 0);
                file.write_all_at(&buf, *offset)?;
            }
            DescriptorHome::File(file) => {
                // One write, never a truncation: a shorter text is padded
                // with blank lines, so no crash leaves the old text's tail
                // after the new one.
                let mut bytes = text.clone().into_bytes();
                let old = file.length()?;
                if (bytes.len() as u64) < old {
                    bytes.resize(old as usize, b'\n');
                }
                file.write_all_at(&bytes, 0)?;
            }
        }
        self.desc_text = Some(text);
        Ok(())
    }
}

/// The descriptor text as it was read, when it can be patched in place
/// (UTF-8, NUL padding dropped).
fn original_text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).ok().map(str::to_string)
}

/// The descriptor text to write: the original with its IDs and parent
/// link changed, or (when it cannot be patched) vimg's own rendering.
fn rewritten(desc: &Descriptor, original: Option<&str>) -> String {
    original
        .and_then(|t| descriptor::patch(t, desc))
        .unwrap_or_else(|| desc.encode())
}

/// The descriptor a bare sparse extent stands for.
fn bare_descriptor(path: &Path, capacity: u64, create_type: &str) -> Descriptor {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Descriptor {
        version: 1,
        cid: 0xffff_fffe,
        parent_cid: descriptor::NO_PARENT,
        create_type: create_type.into(),
        parent_hint: None,
        other: Vec::new(),
        extents: vec![ExtentLine {
            access: ExtentAccess::ReadWrite,
            sectors: capacity / SECTOR,
            kind: "SPARSE".into(),
            file: name,
            offset: 0,
        }],
        ddb: Vec::new(),
    }
}

/// The most extent lines one descriptor may have (4096 split extents hold
/// 8 TiB).
const MAX_EXTENTS: usize = 4096;

/// Which files a descriptor's extents use, so that none is used twice in a
/// way that would make one write change two places: the descriptor itself
/// as an extent, a sparse extent file named twice or also used by a flat
/// extent, or two flat ranges of one file that overlap. Each file's claims
/// are a [`Space`]; whole files are claimed to their end.
struct FileUse {
    files: HashMap<(u64, u64), Space<Use>>,
}

/// What uses a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Descriptor,
    Sparse,
    Flat,
}

impl FileUse {
    fn new(descriptor: (u64, u64)) -> Self {
        let mut space = Space::new(u64::MAX);
        space.claim(0, u64::MAX, Use::Descriptor);
        FileUse {
            files: HashMap::from([(descriptor, space)]),
        }
    }

    /// Claim what `extent` uses; the error says how it collides (and the
    /// claim is then not made, so the claims never overlap).
    fn claim(&mut self, desc: &Path, extent: &Extent) -> Result<()> {
        let name = extent_name(extent);
        let (file, start, len, sparse) = match &extent.storage {
            Storage::Sparse(s) => (s.file(), 0, u64::MAX, true),
            Storage::SeSparse(s) => (s.file(), 0, u64::MAX, true),
            Storage::Flat { file, offset } => (file, *offset, extent.len, false),
            Storage::Zero => return Ok(()),
        };
        let space = self
            .files
            .entry(file.identity())
            .or_insert_with(|| Space::new(u64::MAX));
        let why = match space.overlapping(start, start.saturating_add(len)) {
            None => {
                space.claim(start, len, if sparse { Use::Sparse } else { Use::Flat });
                return Ok(());
            }
            Some(other) => match (&other.what, sparse) {
                (Use::Descriptor, _) => "is the descriptor file itself",
                (Use::Sparse, _) => "uses a sparse file another extent uses",
                (Use::Flat, true) => "uses a file a flat extent uses",
                (Use::Flat, false) => "overlaps another flat extent in the same file",
            },
        };
        // Damage `check` counts: two extents writing one place.
        Err(Error::corrupt(
            desc,
            "VMDK extent line",
            0,
            format!("extent {name} {why}; refused"),
        ))
    }
}

/// An extent's file name, for messages.
fn extent_name(extent: &Extent) -> String {
    match &extent.storage {
        Storage::Sparse(s) => s.file().path().display().to_string(),
        Storage::SeSparse(s) => s.file().path().display().to_string(),
        Storage::Flat { file, .. } => file.path().display().to_string(),
        Storage::Zero => "ZERO".into(),
    }
}

/// Open the extent an extent line names.
fn open_extent(
    desc_path: &Path,
    line: &ExtentLine,
    start: u64,
    access: Access,
    walk: Walk,
    damage: &mut Vec<Error>,
) -> Result<Extent> {
    let mut len = line.sectors.checked_mul(SECTOR).ok_or_else(|| {
        Error::corrupt(
            desc_path,
            "VMDK extent line",
            0,
            format!("{} sectors is too large", line.sectors),
        )
    })?;
    let (access, walk) = match (line.access, walk) {
        (ExtentAccess::ReadWrite, _) | (_, Walk::Check | Walk::Salvage) => (access, walk),
        _ => (Access::Read, Walk::Read),
    };
    let open_file = || -> Result<Arc<ImageFile>> {
        let name = line.file.as_deref().ok_or_else(|| {
            Error::corrupt(
                desc_path,
                "VMDK extent line",
                0,
                format!("a {} extent needs a file name", line.kind),
            )
        })?;
        let path = resolve_extent(desc_path, name)?;
        // A regular file in the descriptor's folder, reached without a
        // link leading out of it.
        let named = Named::ByImage {
            beneath: Some(folder_of(desc_path)),
        };
        let file = ImageFile::open_named(&path, access, named).map_err(|e| Error::Extent {
            path: desc_path.to_path_buf(),
            extent: PathBuf::from(name),
            source: Box::new(e),
        })?;
        Ok(Arc::new(file))
    };
    let storage = match line.kind.as_str() {
        "SPARSE" | "VMFSSPARSE" => {
            let file = open_file()?;
            let sparse = SparseExtent::open(file, walk)?;
            if sparse.capacity() < len {
                let e = Error::corrupt(
                    sparse.file().path(),
                    "VMDK sparse header",
                    header::field::CAPACITY,
                    format!(
                        "capacity {} is less than the {len} bytes the descriptor gives the extent",
                        sparse.capacity()
                    ),
                );
                if walk != Walk::Check {
                    return Err(e);
                }
                // Walked as far as the extent reaches.
                damage.push(e);
                len = sparse.capacity();
            }
            Storage::Sparse(Box::new(sparse))
        }
        "SESPARSE" => {
            let file = open_file()?;
            let sesparse = SeSparseExtent::open(file)?;
            if sesparse.capacity() < len {
                let e = Error::corrupt(
                    sesparse.file().path(),
                    "VMDK seSparse const header",
                    16,
                    format!(
                        "capacity {} is less than the {len} bytes the descriptor gives the extent",
                        sesparse.capacity()
                    ),
                );
                if walk != Walk::Check {
                    return Err(e);
                }
                damage.push(e);
                len = sesparse.capacity();
            }
            Storage::SeSparse(Box::new(sesparse))
        }
        "FLAT" | "VMFS" => {
            let offset = line
                .offset
                .checked_mul(SECTOR)
                .filter(|o| o.checked_add(len).is_some())
                .ok_or_else(|| {
                    Error::corrupt(
                        desc_path,
                        "VMDK extent line",
                        0,
                        format!("offset {} sectors is too large", line.offset),
                    )
                })?;
            let file = open_file()?;
            Storage::Flat { file, offset }
        }
        "ZERO" => Storage::Zero,
        other => {
            return Err(Error::unsupported(
                desc_path,
                format!("extent type {other} is not supported"),
            ))
        }
    };
    Ok(Extent {
        start,
        len,
        access: line.access,
        kind: line.kind.clone(),
        storage,
    })
}

/// Run `f` on each extent piece of `[offset, offset + len)`:
/// `(extent, offset in extent, range in the caller's buffer)`.
fn for_pieces(
    extents: &mut [Extent],
    offset: u64,
    len: usize,
    mut f: impl FnMut(&mut Extent, u64, std::ops::Range<usize>) -> Result<()>,
) -> Result<()> {
    let mut done = 0usize;
    let mut i = extents.partition_point(|e| e.start + e.len <= offset);
    while done < len {
        let at = offset + done as u64;
        let e = &mut extents[i];
        let rel = at - e.start;
        let n = ((e.len - rel) as usize).min(len - done);
        f(e, rel, done..done + n)?;
        done += n;
        i += 1;
    }
    Ok(())
}

impl Sink for Vmdk {
    fn as_image(&mut self) -> Option<&mut dyn Image> {
        Some(self)
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        check_range(&self.path, self.size, offset, buf.len())?;
        let path = self.path.clone();
        // A write the disk cannot take whole must change nothing: check
        // every extent it touches before writing any.
        for_pieces(&mut self.extents, offset, buf.len(), |e, _, _| {
            e.check_writable(&path)
        })?;
        if !self.changed {
            // New content, new content ID, as VMware and QEMU do; written
            // before the data, so that no crash leaves changed content
            // under the ID its deltas were made from.
            self.desc.set_cid(new_cid());
            self.write_descriptor()?;
            self.changed = true;
        }
        let parent = &mut self.parent;
        for_pieces(&mut self.extents, offset, buf.len(), |e, rel, range| {
            let piece = &buf[range];
            let start = e.start;
            match &mut e.storage {
                Storage::Sparse(s) => match parent.as_deref_mut() {
                    // A partial grain keeps the rest of the parent's grain.
                    Some(p) => s.write(
                        piece,
                        rel,
                        Some(&mut |b, at| chain::read_parent(Some(&mut *p), b, start + at)),
                    ),
                    None => s.write(piece, rel, None),
                },
                Storage::Flat { file, offset, .. } => file.write_data_at(piece, *offset + rel),
                Storage::SeSparse(_) | Storage::Zero => unreachable!("refused by check_writable"),
            }
        })
    }

    fn flush(&mut self) -> Result<()> {
        for e in &mut self.extents {
            if let Storage::Sparse(s) = &mut e.storage {
                s.flush()?;
            }
        }
        Ok(())
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path.clone()];
        for e in &self.extents {
            let path = match &e.storage {
                Storage::Sparse(s) => s.file().path().to_path_buf(),
                Storage::SeSparse(s) => s.file().path().to_path_buf(),
                Storage::Flat { file, .. } => file.path().to_path_buf(),
                Storage::Zero => continue,
            };
            if !files.contains(&path) {
                files.push(path);
            }
        }
        files
    }
}

impl Image for Vmdk {
    fn cluster_size(&self) -> u64 {
        self.grain_size().unwrap_or(SECTOR)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(&self.path, self.size, offset, buf.len())?;
        let parent = &mut self.parent;
        for_pieces(&mut self.extents, offset, buf.len(), |e, rel, range| {
            let piece = &mut buf[range];
            let (start, e_len) = (e.start, e.len);
            match &mut e.storage {
                // The extent's own unreadable grains fail in its offsets,
                // the parent's in the disk's: both come out in the disk's.
                Storage::Sparse(s) => s
                    .read(piece, rel, &mut |b, at| {
                        chain::read_parent(parent.as_deref_mut(), b, start + at)
                            .map_err(|e| e.shifted_back(start))
                    })
                    .map_err(|e| e.clipped(0..e_len).shifted(start)),
                Storage::SeSparse(s) => s.read(piece, rel, &mut |b, at| {
                    chain::read_parent(parent.as_deref_mut(), b, start + at)
                }),
                Storage::Flat { file, offset, .. } => file.read_zero_filled(piece, *offset + rel),
                Storage::Zero => {
                    piece.fill(0);
                    Ok(())
                }
            }
        })
    }

    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let i = self.extents.partition_point(|e| e.start + e.len <= offset);
        let e = &mut self.extents[i];
        let rel = offset - e.start;
        let len = len.min(e.len - rel);
        match &mut e.storage {
            Storage::Sparse(s) => s.status(rel, len),
            Storage::SeSparse(s) => s.status(rel, len),
            Storage::Flat { file, offset } => file_status(file, *offset + rel, len, Holes::Stored),
            Storage::Zero => Ok(Mapping::new(
                len,
                Source::Zero {
                    host: None,
                    data: false,
                },
            )),
        }
    }

    fn info(&mut self) -> Result<ImageInfo> {
        let extents: Vec<Value> = self
            .extents
            .iter()
            .map(|e| {
                let mut x = Map::new();
                x.insert("virtual-size".into(), json!(e.len));
                let file = match &e.storage {
                    Storage::Sparse(s) => Some(s.file().path().display().to_string()),
                    Storage::SeSparse(s) => Some(s.file().path().display().to_string()),
                    Storage::Flat { file, .. } => Some(file.path().display().to_string()),
                    Storage::Zero => None,
                };
                if let Some(file) = file {
                    x.insert("filename".into(), json!(file));
                }
                if let Storage::SeSparse(s) = &e.storage {
                    x.insert("cluster-size".into(), json!(s.grain_size()));
                }
                if let Storage::Sparse(s) = &e.storage {
                    x.insert("cluster-size".into(), json!(s.grain_size()));
                    if s.header.compressed() {
                        x.insert("compressed".into(), json!(true));
                    }
                }
                x.insert("format".into(), json!(e.kind));
                Value::Object(x)
            })
            .collect();
        let mut data = Map::new();
        data.insert("cid".into(), json!(self.desc.cid));
        data.insert("parent-cid".into(), json!(self.desc.parent_cid));
        data.insert("create-type".into(), json!(self.desc.create_type));
        data.insert("extents".into(), Value::Array(extents));
        for (key, name) in [
            ("ddb.adapterType", "adapter-type"),
            ("ddb.virtualHWVersion", "hardware-version"),
        ] {
            if let Some(v) = self.desc.ddb(key) {
                data.insert(name.into(), json!(v));
            }
        }
        let geometry: Vec<(&str, u64)> = ["cylinders", "heads", "sectors"]
            .iter()
            .filter_map(|k| {
                let v = self.desc.ddb(&format!("ddb.geometry.{k}"))?.parse().ok()?;
                Some((*k, v))
            })
            .collect();
        if geometry.len() == 3 {
            data.insert(
                "geometry".into(),
                Value::Object(
                    geometry
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect(),
                ),
            );
        }
        Ok(ImageInfo {
            format: "vmdk",
            virtual_size: self.size,
            cluster_size: self.grain_size(),
            backing_file: self.desc.parent_hint.clone(),
            specific: Some(("vmdk", data)),
        })
    }

    fn parent(&mut self) -> Option<&mut dyn Image> {
        match &mut self.parent {
            Some(p) => Some(p.as_mut()),
            None => None,
        }
    }

    fn identity(&self) -> Option<Identity> {
        Some(Identity::Cid(self.desc.cid))
    }

    fn parent_link(&self) -> Option<(Identity, String)> {
        let hint = self.desc.parent_hint.clone()?;
        Some((Identity::Cid(self.desc.parent_cid), hint))
    }

    fn check(&mut self, report: &mut Report) -> Result<()> {
        for e in &self.damage {
            report.push_error(e);
        }
        self.check_descriptor(report);
        let mut clusters: Option<Clusters> = None;
        for e in &mut self.extents {
            match &mut e.storage {
                Storage::Sparse(s) => {
                    if s.capacity() > e.len {
                        report.push(Finding::new(
                            Severity::Warning,
                            s.file().path(),
                            Some(header::field::CAPACITY),
                            "VMDK sparse header",
                            format!(
                                "the extent holds {} bytes, but the descriptor gives it {}: the rest is never read",
                                s.capacity(),
                                e.len
                            ),
                        ));
                    }
                    let tally = s.check(report)?;
                    let sum = clusters.get_or_insert_with(Clusters::default);
                    sum.total += tally.clusters.total;
                    sum.allocated += tally.clusters.allocated;
                    sum.fragmented += tally.clusters.fragmented;
                    sum.compressed += tally.clusters.compressed;
                    report.end_offset.get_or_insert(tally.end);
                }
                Storage::Flat { file, offset } => {
                    let have = file.length()?;
                    let need = *offset + e.len;
                    if have < need {
                        report.push(Finding::new(
                            Severity::Corruption,
                            file.path(),
                            Some(have),
                            "VMDK flat extent",
                            format!(
                                "the file is {have} bytes, but the descriptor gives the extent bytes {offset} to {need}: the {} bytes past its end would read as zeros (truncated?)",
                                need - have
                            ),
                        ));
                    }
                }
                Storage::SeSparse(s) => report.push(Finding::new(
                    Severity::Warning,
                    s.file().path(),
                    None,
                    "VMDK seSparse extent",
                    "seSparse extents are read but not walked: their grain tables were not checked",
                )),
                Storage::Zero => {}
            }
        }
        report.clusters = clusters;
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        for e in &self.extents {
            e.check_writable(&self.path)?;
        }
        Ok(())
    }

    fn amend(&mut self, opts: &mut Options) -> Result<Vec<String>> {
        for (key, instead) in [
            (
                "subformat",
                "convert it (vimg convert -O vmdk -o subformat=...)",
            ),
            (
                "zeroed_grain",
                "convert it (vimg convert -O vmdk -o zeroed_grain=on)",
            ),
            ("compression_level", "convert it (vimg convert -c -O vmdk)"),
            ("size", "resizing moves metadata and is not an amendment"),
        ] {
            if opts.take_str(key)?.is_some() {
                return Err(Error::unsupported(
                    &self.path,
                    format!("'{key}' changes how the data is stored: {instead}"),
                ));
            }
        }
        let db = create::DiskDb::from_options(opts)?;
        let geometry = opts.take_str("geometry")?;
        opts.finish("vmdk")?;
        let geometry = match geometry {
            None => None,
            Some(g) => Some(parse_geometry(&g, self.size / SECTOR)?),
        };
        if matches!(self.home, DescriptorHome::Embedded { capacity: 0, .. }) {
            return Err(Error::unsupported(
                &self.path,
                "this sparse extent has no descriptor to amend",
            ));
        }
        let before = self.desc.ddb.clone();
        if let Some(adapter) = &db.adapter {
            let (cylinders, heads) = create::geometry(adapter, self.size / SECTOR);
            self.desc.set_ddb("ddb.adapterType", adapter);
            self.desc
                .set_ddb("ddb.geometry.cylinders", &cylinders.to_string());
            self.desc.set_ddb("ddb.geometry.heads", &heads.to_string());
            self.desc.set_ddb("ddb.geometry.sectors", "63");
        }
        if let Some((c, h, sectors)) = geometry {
            self.desc.set_ddb("ddb.geometry.cylinders", &c.to_string());
            self.desc.set_ddb("ddb.geometry.heads", &h.to_string());
            self.desc
                .set_ddb("ddb.geometry.sectors", &sectors.to_string());
        }
        if let Some(v) = &db.hwversion {
            self.desc.set_ddb("ddb.virtualHWVersion", v);
        }
        if let Some(v) = &db.toolsversion {
            self.desc.set_ddb("ddb.toolsVersion", v);
        }
        let changed: Vec<String> = self
            .desc
            .ddb
            .iter()
            .filter(|(k, v)| !before.iter().any(|(bk, bv)| bk == k && bv == v))
            .map(|(k, v)| {
                let old = before
                    .iter()
                    .find(|(bk, _)| bk == k)
                    .map(|(_, v)| v.as_str());
                format!("{k}: {} -> {v}", old.unwrap_or("(none)"))
            })
            .collect();
        if !changed.is_empty() {
            if let Err(e) = self.write_descriptor() {
                self.desc.ddb = before;
                return Err(e);
            }
        }
        Ok(changed)
    }

    fn compact(&mut self, progress: crate::image::Progress) -> Result<u64> {
        self.flush()?;
        let mut dropped = 0;
        let parent = &mut self.parent;
        for e in &mut self.extents {
            if e.access != ExtentAccess::ReadWrite {
                continue;
            }
            let s = match &mut e.storage {
                Storage::Sparse(s) => s,
                // A flat extent keeps its layout: runs of zeros become
                // holes.
                Storage::Flat { file, offset } => {
                    file.check_writable()?;
                    dropped += file.punch_zeros(*offset, *offset + e.len)?;
                    file.sync()?;
                    progress(e.start + e.len);
                    continue;
                }
                _ => continue,
            };
            let start = e.start;
            let mut hides = |at: u64, len: u64| {
                chain::parent_reads_data(parent.as_deref_mut(), start + at, len)
            };
            dropped += s.compact(&mut hides, &mut |done| progress(start + done))?;
        }
        Ok(dropped)
    }

    fn resize(&mut self, size: u64) -> Result<Vec<String>> {
        self.resize_to(size.div_ceil(SECTOR))
    }

    fn discard_all(&mut self) -> Result<()> {
        if self.desc.parent_hint.is_none() {
            return Err(Error::unsupported(
                &self.path,
                "it has no parent; only a delta's data can be discarded",
            ));
        }
        Image::check_writable(self)?;
        self.flush()?;
        for e in &mut self.extents {
            if let Storage::Sparse(s) = &mut e.storage {
                s.discard_all()?;
            }
        }
        Ok(())
    }

    fn repair(&mut self, level: Repair) -> Result<Vec<Finding>> {
        let mut fixed = Vec::new();
        for e in &mut self.extents {
            if let Storage::Sparse(s) = &mut e.storage {
                fixed.extend(s.repair(level, e.start)?);
            }
        }
        self.flush()?;
        Ok(fixed)
    }

    fn set_backing(&mut self, parent: Option<NewParent>) -> Result<()> {
        Image::check_writable(self)?;
        let sparse = self.extents.iter().all(|e| {
            matches!(e.storage, Storage::Sparse(_)) && e.access == ExtentAccess::ReadWrite
        });
        if parent.is_some() && !sparse {
            return Err(Error::unsupported(
                &self.path,
                format!(
                    "a {} VMDK cannot have a parent; only sparse ones can be deltas",
                    self.desc.create_type
                ),
            ));
        }
        if let DescriptorHome::Embedded { capacity: 0, .. } = self.home {
            return Err(Error::unsupported(
                &self.path,
                "this sparse extent has no descriptor to record a parent in",
            ));
        }
        match &self.home {
            DescriptorHome::Embedded { file, .. } => file.check_writable()?,
            DescriptorHome::File(file) => file.check_writable()?,
        }
        let (cid, hint) = match &parent {
            None => (descriptor::NO_PARENT, None),
            Some(p) => {
                let Some(Identity::Cid(cid)) = p.image.identity() else {
                    return Err(Error::invalid(format!(
                        "{}: a VMDK delta needs a VMDK parent",
                        self.path.display()
                    )));
                };
                chain::check_parent_size(&self.path, self.size, p.image.as_ref())?;
                (cid, Some(p.name.clone()))
            }
        };
        let before = (self.desc.parent_cid, self.desc.parent_hint.clone());
        self.desc.parent_cid = cid;
        self.desc.parent_hint = hint;
        if let Err(e) = self.write_descriptor() {
            (self.desc.parent_cid, self.desc.parent_hint) = before;
            return Err(e);
        }
        self.parent = parent.map(|p| p.image);
        Ok(())
    }
}

/// `geometry=C/H/S` for a disk of `sectors`: heads 1 to 255, sectors a
/// track 1 to 63, cylinders 1 to 65535, addressing no more than the disk
/// (VMware's own geometries round down).
fn parse_geometry(text: &str, sectors: u64) -> Result<(u64, u64, u64)> {
    let bad = |why: &str| Error::invalid(format!("geometry '{text}': {why}"));
    let parts: Vec<u64> = text
        .split('/')
        .map(|p| p.trim().parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("give it as CYLINDERS/HEADS/SECTORS, e.g. 16383/16/63"))?;
    let [c, h, s] = parts[..] else {
        return Err(bad("give it as CYLINDERS/HEADS/SECTORS, e.g. 16383/16/63"));
    };
    if !(1..=65535).contains(&c) || !(1..=255).contains(&h) || !(1..=63).contains(&s) {
        return Err(bad(
            "cylinders go from 1 to 65535, heads from 1 to 255, sectors from 1 to 63",
        ));
    }
    if c * h * s > sectors {
        return Err(bad(&format!(
            "it addresses {} sectors, more than the disk's {sectors}",
            c * h * s
        )));
    }
    Ok((c, h, s))
}

/// A fresh random content ID.
pub(crate) fn new_cid() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let cid = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    // ffffffff means "no parent"; fffffffe is what unwritten disks carry.
    if cid >= 0xffff_fffe {
        cid & 0x7fff_ffff
    } else {
        cid
    }
}

/// Tables still held in memory are written out when the image is dropped
/// without a flush (errors can only be ignored here; call `flush` to see
/// them).
impl Drop for Vmdk {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
