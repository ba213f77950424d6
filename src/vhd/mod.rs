//! Microsoft VHD (QEMU's `vpc`): fixed, dynamic and differencing disks.
//!
//! A fixed disk is its data followed by a 512-byte footer. A dynamic disk
//! has a footer copy at offset 0, a dynamic header, a block allocation table
//! and blocks of bitmap + data, with the footer last. A differencing disk is
//! a dynamic one whose unused sectors read from its parent.

mod create;
mod dyn_header;
mod dynamic;
mod footer;
mod geometry;
mod locator;

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use self::dynamic::Dynamic;
use self::footer::{has_cookie, parse_tail, DiskType, Footer, FOOTER_SIZE};
use self::geometry::SizeSource;
use self::locator::ParentRecord;
use crate::chain::{self, Chain};
use crate::error::{Error, Result};
use crate::image::check::{Clusters, Finding, Repair, Report};
use crate::image::{
    check_range, file_status, Holes, Identity, Image, ImageInfo, Mapping, NewParent, OpenOptions,
    Sink,
};
use crate::io::{align_down, align_up, ImageFile, SECTOR};
use crate::options::Options;

pub use self::create::{create, data_cost, OPTIONS as CREATE_OPTIONS};

/// The options `amend` takes for a VHD (`-o help`).
pub const AMEND_OPTIONS: &[crate::options::OptionDoc] = &[
    crate::options::OptionDoc {
        key: "creator_app",
        kind: "str",
        about: "The creator application, one to four ASCII characters (win, vpc, qemu, d2v)",
    },
    crate::options::OptionDoc {
        key: "creator_os",
        kind: "str",
        about: "Wi2k (windows) or Mac",
    },
    crate::options::OptionDoc {
        key: "creator_version",
        kind: "str",
        about: "MAJOR.MINOR, e.g. 10.0",
    },
    crate::options::OptionDoc {
        key: "force_size",
        kind: "bool (on/off)",
        about: "on: geometry that says the size is exact; off: a size CHS geometry can express",
    },
];
pub use self::geometry::MAX_SIZE;

/// True when the first bytes of a file are a VHD footer copy.
pub fn probe_head(head: &[u8]) -> bool {
    has_cookie(head)
}

/// True when the last 512 bytes of a file are the valid footer of a fixed
/// VHD (the only kind without a copy at offset 0). Only that kind is taken
/// from the end: a raw disk's last sector is the guest's to fill, and must
/// not make vimg follow a parent the guest names.
pub fn probe_tail(tail: &[u8]) -> bool {
    let Ok(tail) = <&[u8; FOOTER_SIZE]>::try_from(tail) else {
        return false;
    };
    parse_tail(tail).is_ok_and(|(f, _)| f.disk_type == DiskType::Fixed)
}

/// The parent of a differencing disk, and how it was found.
struct Parent {
    image: Box<dyn Image>,
    path: PathBuf,
    /// How it was found, and the name the child records there.
    found: Option<(&'static str, String)>,
}

/// An open VHD.
pub struct Vhd {
    footer: Footer,
    size: u64,
    size_source: SizeSource,
    body: Body,
    parent: Option<Parent>,
    /// What an open for `check` found and walked past.
    damage: Vec<Error>,
}

/// Where a VHD's data is.
enum Body {
    /// The disk verbatim, then the footer.
    Fixed(ImageFile),
    /// Blocks found through the BAT (dynamic and differencing disks).
    Dynamic(Box<Dynamic>),
}

/// The footer to trust: the one at the end when it is valid, else the copy
/// at offset 0 of a dynamic disk. Also says how long the one at the end is
/// (512 bytes, or 511 in images older Virtual PC made), when it held it.
/// With `lenient` (open for `check`), a trailing footer whose checksum
/// alone is wrong is taken when there is no valid copy, and the damage
/// returned for `check` to report.
fn read_footer(
    file: &ImageFile,
    len: u64,
    lenient: bool,
) -> Result<(Footer, Option<u64>, Option<Error>)> {
    match read_valid_footer(file, len) {
        Err(e @ Error::Corrupt { .. }) if lenient && len >= FOOTER_SIZE as u64 => {
            let mut tail = [0u8; FOOTER_SIZE];
            file.read_exact_at(&mut tail, len - FOOTER_SIZE as u64)?;
            match Footer::parse_unverified(&tail) {
                // A dynamic disk's survey reports its footers itself.
                Ok(f) => {
                    let damage = (f.disk_type == DiskType::Fixed).then_some(e);
                    Ok((f, Some(FOOTER_SIZE as u64), damage))
                }
                Err(_) => Err(e),
            }
        }
        other => other.map(|(f, n)| (f, n, None)),
    }
}

/// [`read_footer`] for a footer whose checksum is right.
fn read_valid_footer(file: &ImageFile, len: u64) -> Result<(Footer, Option<u64>)> {
    let path = file.path();
    if len < FOOTER_SIZE as u64 {
        return Err(Error::corrupt(
            path,
            "VHD footer",
            0,
            format!("the file is only {len} bytes"),
        ));
    }
    let tail_at = len - FOOTER_SIZE as u64;
    let mut tail = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut tail, tail_at)?;
    let tail_err = match parse_tail(&tail) {
        Ok((f, n)) => return Ok((f, Some(n as u64))),
        Err(e) => e,
    };
    let mut head = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut head, 0)?;
    match Footer::parse(&head) {
        Ok(f) if f.disk_type != DiskType::Fixed => Ok((f, None)),
        Err(head_err) if has_cookie(&head) && !has_cookie(&tail) => {
            Err(Error::corrupt_field(path, "VHD footer copy", 0, head_err))
        }
        _ => Err(Error::corrupt_field(path, "VHD footer", tail_at, tail_err)),
    }
}

/// Where a fixed disk's footer is and its bytes; refused (as nothing that
/// rewrites it can keep it whole) when it is not a whole sector at the end.
fn fixed_tail(file: &ImageFile) -> Result<(u64, [u8; FOOTER_SIZE])> {
    let at = file.length()?.saturating_sub(FOOTER_SIZE as u64);
    let mut tail = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut tail, at)?;
    if !has_cookie(&tail) {
        return Err(Error::unsupported(
            file.path(),
            "its footer is not a whole sector at the end (an old Virtual PC disk); convert it first",
        ));
    }
    Ok((at, tail))
}

impl Vhd {
    /// Open a VHD and, for a differencing disk, its parent: found through
    /// the locators and checked against the UUID the child recorded.
    pub fn open_in(path: &Path, opts: &OpenOptions, chain: &mut Chain) -> Result<Vhd> {
        let mut vhd = Vhd::open_layer(path, opts)?;
        match chain.claim(path, &vhd.files()) {
            Ok(()) => {}
            // Damage `check` reports; the walk stops there.
            Err(e @ Error::Chain { .. }) if opts.for_check => {
                vhd.damage.push(e);
                return Ok(vhd);
            }
            Err(e) => return Err(e),
        }
        let differencing = vhd
            .dynamic()
            .filter(|_| vhd.footer.disk_type == DiskType::Differencing);
        if let Some(d) = differencing {
            opts.allow_parent(path, &locator::parent_name(&d.header))?;
        }
        if let (Some(d), Some(parent_opts)) = (differencing, opts.for_parent()) {
            let found = match locator::find_parent(d.file(), path, &d.header) {
                Ok(found) => found,
                // The link is shown broken (snapshot list).
                Err(Error::MissingParent { .. }) if opts.tolerate_missing_parents => {
                    return Ok(vhd);
                }
                Err(e) => return Err(e),
            };
            match chain.enter(&found.path) {
                Ok(()) => {}
                // A loop is damage `check` reports; the walk stops there.
                Err(e @ Error::Chain { .. }) if opts.for_check => {
                    vhd.damage.push(e);
                    return Ok(vhd);
                }
                Err(e) => return Err(e),
            }
            let parent = Vhd::open_in(&found.path, &parent_opts, chain)
                .map_err(|e| Error::parent(path, &found.path, e))?;
            match vhd.check_parent(&parent) {
                Ok(()) => {}
                // A commit in progress changed the parent's identity.
                Err(Error::Chain { .. }) if opts.trusts(parent.identity()) => {}
                // Kept for `check` to report; the chain is walked on.
                Err(e @ Error::Chain { .. }) if opts.for_check => vhd.damage.push(e),
                Err(e) => return Err(e),
            }
            vhd.parent = Some(Parent {
                path: found.path,
                image: Box::new(parent),
                found: Some((found.via, found.recorded)),
            });
        }
        Ok(vhd)
    }

    /// Make `parent` this differencing disk's parent, refusing a disk that
    /// is not the one the child was made from.
    pub fn attach(&mut self, parent: Vhd, found: Option<(&'static str, String)>) -> Result<()> {
        self.check_parent(&parent)?;
        let path = parent.file().path().to_path_buf();
        self.parent = Some(Parent {
            image: Box::new(parent),
            path,
            found,
        });
        Ok(())
    }

    /// Fail unless `parent` is the disk this one was made from.
    fn check_parent(&self, parent: &Vhd) -> Result<()> {
        let expected = self
            .dynamic()
            .map(|d| d.header.parent_uuid)
            .unwrap_or_default();
        if parent.footer.uuid != expected {
            return Err(Error::chain(
                self.file().path(),
                format!(
                    "its parent {} has UUID {}, but the child was made from the disk with UUID {}: the parent was replaced by another disk (if it is the right parent, `vimg rebase -u -b {} {}` relinks it; --ignore-parent-id reads through it as it is)",
                    parent.file().path().display(),
                    uuid::Uuid::from_bytes(parent.footer.uuid),
                    uuid::Uuid::from_bytes(expected),
                    parent.file().path().display(),
                    self.file().path().display()
                ),
            ));
        }
        Ok(())
    }

    /// The disk's unique ID.
    pub fn uuid(&self) -> [u8; 16] {
        self.footer.uuid
    }

    /// Block size of a dynamic or differencing disk.
    pub fn block_size(&self) -> Option<u64> {
        self.dynamic().map(|d| d.block_size())
    }

    fn dynamic(&self) -> Option<&Dynamic> {
        match &self.body {
            Body::Dynamic(d) => Some(d),
            Body::Fixed(_) => None,
        }
    }

    /// The VHD file.
    fn file(&self) -> &ImageFile {
        match &self.body {
            Body::Fixed(file) => file,
            Body::Dynamic(d) => d.file(),
        }
    }

    /// Open one VHD file, checking its footer, header and table against the
    /// file, without its parent.
    pub fn open_layer(path: &Path, opts: &OpenOptions) -> Result<Vhd> {
        let file = ImageFile::open_named(path, opts.access, opts.named())?;
        let len = file.length()?;
        let (footer, tail_footer, footer_damage) = read_footer(&file, len, opts.for_check)?;
        let (size, size_source) = geometry::disk_size(&footer);
        let body = match footer.disk_type {
            DiskType::Fixed => {
                if size > len - tail_footer.unwrap_or(0) {
                    return Err(Error::corrupt(
                        path,
                        "VHD footer",
                        len - FOOTER_SIZE as u64,
                        format!("a fixed disk of {size} bytes does not fit in this {len}-byte file (truncated?)"),
                    ));
                }
                Body::Fixed(file)
            }
            DiskType::Dynamic | DiskType::Differencing => Body::Dynamic(Box::new(Dynamic::open(
                file,
                &footer,
                size,
                tail_footer,
                opts.walk(),
            )?)),
        };
        Ok(Vhd {
            footer,
            size,
            size_source,
            body,
            parent: None,
            damage: footer_damage.into_iter().collect(),
        })
    }

    /// Whole-sector writes into a dynamic disk; partial sectors at either
    /// end are completed from what the disk reads there now.
    fn write_sectors(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let start = align_down(offset, SECTOR);
        let end = align_up(offset + buf.len() as u64, SECTOR);
        if start == offset && end == offset + buf.len() as u64 {
            return self.dynamic_mut().write(buf, offset);
        }
        // Only the two edge sectors need what the disk holds now.
        let mut whole = vec![0u8; (end - start) as usize];
        let last = whole.len() - SECTOR as usize;
        self.read_at(&mut whole[..SECTOR as usize], start)?;
        self.read_at(&mut whole[last..], end - SECTOR)?;
        let at = (offset - start) as usize;
        whole[at..at + buf.len()].copy_from_slice(buf);
        self.dynamic_mut().write(&whole, start)
    }

    fn dynamic_mut(&mut self) -> &mut Dynamic {
        match &mut self.body {
            Body::Dynamic(d) => d,
            Body::Fixed(_) => unreachable!("only dynamic disks come here"),
        }
    }
}

impl Sink for Vhd {
    fn as_image(&mut self) -> Option<&mut dyn Image> {
        Some(self)
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        check_range(self.file().path(), self.size, offset, buf.len())?;
        match &self.body {
            Body::Fixed(file) => file.write_data_at(buf, offset),
            Body::Dynamic(_) => self.write_sectors(buf, offset),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.body {
            Body::Dynamic(d) => d.flush(),
            Body::Fixed(_) => Ok(()),
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.file().path().to_path_buf()]
    }
}

impl Image for Vhd {
    fn cluster_size(&self) -> u64 {
        self.block_size().unwrap_or(SECTOR)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(self.file().path(), self.size, offset, buf.len())?;
        match &mut self.body {
            Body::Fixed(file) => file.read_exact_at(buf, offset),
            Body::Dynamic(d) => {
                let mut parent = self.parent.as_mut().map(|p| p.image.as_mut());
                d.read(buf, offset, &mut |b, at| {
                    chain::read_parent(parent.as_deref_mut(), b, at)
                })
                // The last block may reach past the end of the disk.
                .map_err(|e| e.clipped(0..self.size))
            }
        }
    }

    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let len = len.min(self.size - offset);
        match &mut self.body {
            Body::Dynamic(d) => d.status(offset, len),
            Body::Fixed(file) => file_status(file, offset, len, Holes::Stored),
        }
    }

    fn info(&mut self) -> Result<ImageInfo> {
        let f = &self.footer;
        let text = |b: &[u8; 4]| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let mut data = Map::new();
        data.insert("disk-type".into(), json!(f.disk_type.name()));
        data.insert("creator-app".into(), json!(text(&f.creator_app)));
        data.insert(
            "creator-version".into(),
            json!(format!(
                "{}.{}",
                f.creator_version >> 16,
                f.creator_version & 0xffff
            )),
        );
        data.insert("creator-os".into(), json!(text(&f.creator_os)));
        data.insert(
            "uuid".into(),
            json!(uuid::Uuid::from_bytes(f.uuid).to_string()),
        );
        data.insert("saved-state".into(), json!(f.saved_state));
        data.insert("current-size".into(), json!(f.current_size));
        data.insert(
            "geometry".into(),
            json!({
                "cylinders": f.geometry.cylinders,
                "heads": f.geometry.heads,
                "sectors": f.geometry.sectors,
            }),
        );
        data.insert("size-source".into(), json!(self.size_source.name()));
        if let Some(d) = self.dynamic() {
            data.insert("block-size".into(), Value::from(d.block_size()));
            if f.disk_type == DiskType::Differencing {
                let h = &d.header;
                data.insert(
                    "parent-uuid".into(),
                    json!(uuid::Uuid::from_bytes(h.parent_uuid).to_string()),
                );
                data.insert("parent-name".into(), json!(locator::parent_name(h)));
                if let Some(p) = &self.parent {
                    data.insert("parent-path".into(), json!(p.path.display().to_string()));
                    if let Some((via, _)) = &p.found {
                        data.insert("parent-found-via".into(), json!(via));
                    }
                }
            }
        }
        Ok(ImageInfo {
            format: "vpc",
            virtual_size: self.size,
            cluster_size: self.block_size(),
            // As the image records it, as qemu-img reports backing files.
            backing_file: self.parent.as_ref().map(|p| match &p.found {
                Some((_, recorded)) => recorded.clone(),
                None => p.path.display().to_string(),
            }),
            specific: Some(("vpc", data)),
        })
    }

    fn identity(&self) -> Option<Identity> {
        Some(Identity::Uuid(self.footer.uuid))
    }

    fn parent_link(&self) -> Option<(Identity, String)> {
        let d = self
            .dynamic()
            .filter(|_| self.footer.disk_type == DiskType::Differencing)?;
        Some((
            Identity::Uuid(d.header.parent_uuid),
            locator::parent_name(&d.header),
        ))
    }

    fn check(&mut self, report: &mut Report) -> Result<()> {
        for e in &self.damage {
            report.push_error(e);
        }
        let path = self.file().path().to_path_buf();
        let size = self.size;
        match &mut self.body {
            Body::Dynamic(d) => {
                let survey = d.survey(size)?;
                report
                    .findings
                    .extend(survey.faults.into_iter().map(|f| f.finding));
                // The footer the disk goes by (open may have taken the
                // other copy, when it did not know better).
                if let Ok(footer) = Footer::parse(&survey.footer) {
                    let at = survey.footer_at.unwrap_or(0);
                    report.findings.extend(footer::findings(&path, &footer, at));
                }
                report.clusters = Some(survey.clusters);
                report.end_offset = Some(survey.end_offset);
            }
            // A fixed disk is its data and a footer open has checked.
            Body::Fixed(file) => {
                let len = file.length()?;
                let at = len - FOOTER_SIZE as u64;
                report
                    .findings
                    .extend(footer::findings(&path, &self.footer, at));
                let sectors = size.div_ceil(SECTOR);
                report.clusters = Some(Clusters {
                    total: sectors,
                    allocated: sectors,
                    ..Clusters::default()
                });
                report.end_offset = Some(len);
            }
        }
        Ok(())
    }

    fn amend(&mut self, opts: &mut Options) -> Result<Vec<String>> {
        let path = self.file().path().to_path_buf();
        for (key, instead) in [
            (
                "subformat",
                "convert it (vimg convert -O vhd -o subformat=...)",
            ),
            (
                "block_size",
                "convert it (vimg convert -O vhd -o block_size=...)",
            ),
            (
                "size",
                "resizing moves data and metadata and is not an amendment",
            ),
        ] {
            if opts.take_str(key)?.is_some() {
                return Err(Error::unsupported(
                    &path,
                    format!("'{key}' changes how the data is stored: {instead}"),
                ));
            }
        }
        let creator = opts.take_str("creator_app")?;
        let creator_os = opts.take_str("creator_os")?;
        let creator_version = opts.take_str("creator_version")?;
        let force_size = opts.take_bool("force_size")?;
        opts.finish("vpc")?;
        let mut footer = self.footer.clone();
        if let Some(app) = &creator {
            if app.is_empty() || app.len() > 4 || !app.is_ascii() {
                return Err(Error::invalid(format!(
                    "creator_app '{app}' is not one to four ASCII characters"
                )));
            }
            let mut bytes = *b"    ";
            bytes[..app.len()].copy_from_slice(app.as_bytes());
            footer.creator_app = bytes;
        }
        if let Some(os) = &creator_os {
            footer.creator_os = match os.as_str() {
                "Wi2k" | "windows" => *b"Wi2k",
                "Mac " | "Mac" | "mac" => *b"Mac ",
                _ => {
                    return Err(Error::invalid(format!(
                        "creator_os '{os}' is not one of: Wi2k (windows), Mac"
                    )))
                }
            };
        }
        if let Some(v) = &creator_version {
            let parsed = v
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)));
            let Some((major, minor)) = parsed else {
                return Err(Error::invalid(format!(
                    "creator_version '{v}' is not MAJOR.MINOR (e.g. 10.0)"
                )));
            };
            footer.creator_version = (major as u32) << 16 | minor as u32;
        }
        match force_size {
            Some(true) => footer.geometry = geometry::geometry_for_exact(footer.current_size),
            Some(false) => {
                let (rounded, chs) = geometry::round_to_geometry(footer.current_size);
                if rounded != footer.current_size {
                    return Err(Error::unsupported(
                        &path,
                        format!(
                            "no CHS geometry addresses exactly its {} bytes (the nearest is {rounded}); force_size=off would change the size",
                            footer.current_size
                        ),
                    ));
                }
                footer.geometry = chs;
            }
            None => {}
        }
        // What every reader takes for the size must stay.
        let (size, source) = geometry::disk_size(&footer);
        if size != self.size {
            return Err(Error::unsupported(
                &path,
                format!(
                    "that would make readers take the disk for {size} bytes (by its {}), not {}: amending never changes what the disk reads",
                    source.name(),
                    self.size
                ),
            ));
        }
        let mut changed = Vec::new();
        if footer.creator_app != self.footer.creator_app {
            changed.push(format!(
                "creator application: {:?} -> {:?}",
                String::from_utf8_lossy(&self.footer.creator_app),
                String::from_utf8_lossy(&footer.creator_app)
            ));
        }
        if footer.creator_os != self.footer.creator_os {
            changed.push(format!(
                "creator OS: {:?} -> {:?}",
                String::from_utf8_lossy(&self.footer.creator_os),
                String::from_utf8_lossy(&footer.creator_os)
            ));
        }
        if footer.creator_version != self.footer.creator_version {
            let v = |n: u32| format!("{}.{}", n >> 16, n & 0xffff);
            changed.push(format!(
                "creator version: {} -> {}",
                v(self.footer.creator_version),
                v(footer.creator_version)
            ));
        }
        if footer.geometry != self.footer.geometry {
            let chs = |g: &footer::Geometry| format!("{}/{}/{}", g.cylinders, g.heads, g.sectors);
            changed.push(format!(
                "geometry (C/H/S): {} -> {}",
                chs(&self.footer.geometry),
                chs(&footer.geometry)
            ));
        }
        // A dynamic disk's footer copy at offset 0 is written after the
        // footer: an amendment stopped between the two is finished here.
        if let Body::Dynamic(d) = &self.body {
            if changed.is_empty() && !d.head_copy_is(&footer.encode())? {
                changed.push("footer copy at offset 0: rewritten from the footer".into());
            }
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        match &mut self.body {
            Body::Dynamic(d) => d.set_footer(&footer)?,
            Body::Fixed(file) => {
                let (at, _) = fixed_tail(file)?;
                file.write_all_at(&footer.encode(), at)?;
            }
        }
        self.size_source = source;
        self.footer = footer;
        Ok(changed)
    }

    fn compact(&mut self, progress: crate::image::Progress) -> Result<u64> {
        let size = self.size;
        let parent = &mut self.parent;
        let d = match &mut self.body {
            Body::Dynamic(d) => d,
            // A fixed disk keeps its layout: runs of zeros become holes.
            Body::Fixed(file) => {
                file.check_writable()?;
                let punched = file.punch_zeros(0, size)?;
                file.sync()?;
                progress(size);
                return Ok(punched);
            }
        };
        let mut hides = |at: u64, len: u64| {
            chain::parent_reads_data(parent.as_mut().map(|p| p.image.as_mut()), at, len)
        };
        let dropped = d.compact(size, &mut hides, progress)?;
        d.file().sync()?;
        Ok(dropped)
    }

    fn resize(&mut self, size: u64) -> Result<Vec<String>> {
        let path = self.file().path().to_path_buf();
        if self.footer.disk_type == DiskType::Differencing {
            return Err(Error::unsupported(
                &path,
                "it is a differencing disk: it has its parent's size, as Hyper-V requires; merge it into its parent (vimg commit) and resize that",
            ));
        }
        let size = align_up(size, SECTOR);
        if size > MAX_SIZE {
            return Err(Error::unsupported(
                &path,
                format!("a VHD holds at most 2040 GiB ({MAX_SIZE} bytes); {size} bytes asked for"),
            ));
        }
        self.file().check_writable()?;
        self.flush()?;
        let mut notes = Vec::new();
        if size == self.size {
            match &mut self.body {
                // A resize stopped between the two footers is finished
                // here.
                Body::Dynamic(d) => {
                    if !d.head_copy_is(&d.footer().clone())? {
                        let footer = self.footer.clone();
                        d.set_footer(&footer)?;
                        d.file().sync()?;
                    }
                    return Ok(notes);
                }
                // So is one that left the file longer than the disk.
                Body::Fixed(file) if file.length()? == size + FOOTER_SIZE as u64 => {
                    return Ok(notes)
                }
                Body::Fixed(_) => {}
            }
        }
        // The size `create` gives: exact, with a geometry every reader
        // takes for it.
        // (libvhdi takes the original size for the disk's: both change.)
        let mut footer = self.footer.clone();
        footer.current_size = size;
        footer.original_size = size;
        footer.geometry = geometry::geometry_for_exact(size);
        let (read_as, _) = geometry::disk_size(&footer);
        if read_as != size {
            footer.geometry = geometry::MAX_GEOMETRY;
        }
        let old = self.size;
        match &mut self.body {
            Body::Dynamic(d) => d.resize(old, size, &footer)?,
            Body::Fixed(file) => {
                let (at, tail) = fixed_tail(file)?;
                // Readers take a fixed disk's size from its last sector and
                // do not mind a longer file: the footer moves first (still
                // saying the old size), then is rewritten in place (the
                // switch), so that no moment has a disk without one or a
                // disk reading a footer as data.
                if size > old {
                    if at != size {
                        file.write_all_at(&tail, size)?;
                        if at > size {
                            file.set_len(size + FOOTER_SIZE as u64)?;
                        }
                    }
                    // The old footer and anything else past the old end.
                    file.zero_range(old, size)?;
                    file.sync()?;
                    file.write_all_at(&footer.encode(), size)?;
                } else {
                    file.write_all_at(&footer.encode(), at)?;
                    file.sync()?;
                    if at != size {
                        file.write_all_at(&footer.encode(), size)?;
                        file.sync()?;
                        file.set_len(size + FOOTER_SIZE as u64)?;
                    }
                }
                file.sync()?;
                if !size.is_multiple_of(1 << 20) {
                    notes.push(format!(
                        "warning: Azure accepts only fixed VHDs whose size is a whole number of MiB; this one is {size} bytes"
                    ));
                }
            }
        }
        self.footer = footer;
        self.size = size;
        Ok(notes)
    }

    fn discard_all(&mut self) -> Result<()> {
        let path = self.file().path().to_path_buf();
        let size = self.size;
        let differencing = self.footer.disk_type == DiskType::Differencing;
        match &mut self.body {
            Body::Dynamic(d) if differencing => d.discard_all(size)?,
            _ => {
                return Err(Error::unsupported(
                    &path,
                    "it is no differencing disk; only a delta's data can be discarded",
                ))
            }
        }
        self.file().sync()
    }

    fn repair(&mut self, level: Repair) -> Result<Vec<Finding>> {
        let size = self.size;
        let done = match &mut self.body {
            Body::Dynamic(d) => {
                let done = d.repair(size, level)?;
                // The footer the disk goes by now.
                if let Ok(footer) = Footer::parse(d.footer()) {
                    self.footer = footer;
                }
                done
            }
            // What a fixed disk's check finds, no repair mends.
            Body::Fixed(_) => Vec::new(),
        };
        self.flush()?;
        self.file().sync()?;
        Ok(done)
    }

    fn set_backing(&mut self, parent: Option<NewParent>) -> Result<()> {
        let path = self.file().path().to_path_buf();
        let size = self.size;
        let differencing = self.footer.disk_type == DiskType::Differencing;
        let Body::Dynamic(d) = &mut self.body else {
            return Err(Error::unsupported(
                &path,
                "a fixed VHD cannot have a parent; differencing disks are dynamic",
            ));
        };
        d.file().check_writable()?;
        let Some(p) = parent else {
            if differencing {
                // A dynamic disk first (a crash then leaves one whose
                // parent fields nobody reads), then the record cleared.
                let mut footer = self.footer.clone();
                footer.disk_type = DiskType::Dynamic;
                d.set_footer(&footer)?;
                self.footer = footer;
                d.set_parent(None)?;
            }
            self.parent = None;
            return Ok(());
        };
        if !differencing {
            return Err(Error::unsupported(
                &path,
                "only a differencing VHD records a parent; this one is a standalone dynamic disk",
            ));
        }
        let Some(Identity::Uuid(uuid)) = p.image.identity() else {
            return Err(Error::invalid(format!(
                "{}: a differencing VHD needs a VHD parent",
                path.display()
            )));
        };
        chain::check_parent_size(&path, size, p.image.as_ref())?;
        let parent_path = p.image.files().into_iter().next().unwrap_or_default();
        let record = ParentRecord::new(uuid, &parent_path, &p.name)?;
        d.set_parent(Some(&record))?;
        self.parent = Some(Parent {
            image: p.image,
            path: parent_path,
            found: Some(("relative locator (W2ru)", p.name)),
        });
        Ok(())
    }

    fn parent(&mut self) -> Option<&mut dyn Image> {
        self.parent
            .as_mut()
            .map(|p| p.image.as_mut() as &mut dyn Image)
    }
}

/// The BAT pages still held in memory are written out when the image is
/// dropped without a flush (errors can only be ignored here; call `flush`
/// to see them).
impl Drop for Vhd {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
