//! A hosted sparse extent: grain directory → grain tables → grains, with
//! the redundant copies, zeroed-grain entries and deflate-compressed grains
//! (streamOptimized). Grains are appended at the end of the file; grain
//! tables and directories are written back in batches at flush.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use byteorder::{ByteOrder, LittleEndian};

use super::cowd::{CowdHeader, COWD_HEADER_SIZE};
use super::header::{SparseHeader, FLAG_COMPRESSED, FLAG_MARKERS, GD_AT_END, HEADER_SIZE};
use crate::alloc::space::{Conflict, Run, Space, Span, Units};
use crate::alloc::{units, Allocator, Endian, Homes, Runs, Table};
use crate::error::{Error, Result};
use crate::image::check::{Finding, Report};
use crate::image::Walk;
use crate::image::{Host, Mapping, Source};
use crate::io::{align_up, ImageFile, SECTOR};

mod check;
mod resize;

/// Largest disk vimg opens: 64 TiB (bounds the grain directory).
const MAX_CAPACITY_SECTORS: u64 = 1 << 37;
/// Reads of at least this many grains inflate compressed ones in parallel.
const PARALLEL_GRAINS: u64 = 4;
/// Grain table entry meaning "zeros" when the header allows it.
const GTE_ZEROED: u32 = 1;
/// Directory entries per directory page.
const GD_PAGE: usize = 128;
/// The furthest the header's overhead may put the first grain (1 GiB).
const MAX_OVERHEAD: u64 = 1 << 30;
/// The most grain tables one extent may have: 2 TiB in 64 KiB grains
/// needs 65,536; this allows 8 TiB, or 1 TiB in 8 KiB grains.
const MAX_GD_ENTRIES: u64 = 1 << 18;

/// Grain table entries at fault, and what is wrong with them.
struct GrainFault {
    /// The grains whose entries are wrong (the first is the one the error
    /// names).
    grains: Vec<u64>,
    /// What is wrong, naming the first grain's entry.
    error: Error,
}

/// Where one grain's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grain {
    Unallocated,
    Zero,
    At(u64),
    Compressed(u64),
}

/// Something to fill ranges this extent does not hold (the parent's data, or
/// zeros). It gets extent-relative offsets.
pub type Fill<'a> = &'a mut dyn FnMut(&mut [u8], u64) -> Result<()>;

/// An open sparse extent.
pub struct SparseExtent {
    file: Arc<ImageFile>,
    pub header: SparseHeader,
    grain: u64,
    gt_entries: u64,
    gt_bytes: u64,
    capacity: u64,
    gd: Table,
    rgd: Option<Table>,
    gts: Table,
    alloc: Allocator,
    /// The last compressed grain read: (index, data).
    cache: Option<(u64, Vec<u8>)>,
    /// A VMDK3 (COWD) extent: read only.
    cowd: bool,
    /// The header that holds the grain directory is the footer (the first
    /// one says "at the end"): the footer's place is the file's end, so
    /// nothing may be appended.
    header_in_footer: bool,
    /// Space was allocated since open.
    grew: bool,
    /// What a [`Walk::Check`] open set aside (tables not in the file).
    damage: Vec<Error>,
    /// Grains whose entries a [`Walk::Salvage`] open found wrong, and
    /// why: reading them fails.
    unreadable: HashMap<u64, String>,
}

/// What a part of a sparse extent file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Header,
    Descriptor,
    Directory,
    RedundantDirectory,
    GrainTable {
        entry: u64,
        redundant: bool,
    },
    /// Grains (data or compressed), back to back in the file.
    Grains(Units),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => write!(f, "the header"),
            Part::Descriptor => write!(f, "the embedded descriptor"),
            Part::Directory => write!(f, "the grain directory"),
            Part::RedundantDirectory => write!(f, "the redundant grain directory"),
            Part::GrainTable { entry, .. } => write!(f, "the grain table of entry {entry}"),
            Part::Grains(units) => f.write_str(&units.describe("grain", "grains")),
        }
    }
}

impl Run for Part {
    fn extend(&self, next: &Part) -> Option<Part> {
        match (*self, *next) {
            (Part::Grains(run), Part::Grains(next)) => run.then(next).map(Part::Grains),
            _ => None,
        }
    }
}

impl Conflict<Part> {
    fn involves_grains(&self) -> bool {
        let grains = |s: &Span<Part>| matches!(s.what, Part::Grains(_));
        match self {
            Conflict::PastEnd(s) => grains(s),
            Conflict::Overlap(a, b) => grains(a) || grains(b),
        }
    }
}

impl SparseExtent {
    /// Open the sparse extent in `file`, validating its header, directories
    /// and tables against the file's length and each other, and every
    /// grain against the file and the metadata (so that a truncated or
    /// damaged extent is refused rather than read as zeros). An extent
    /// opened to be written also has its grains checked against one another
    /// (aliased grains would make one write change two places; reading them
    /// is harmless). Opened for [`Walk::Check`], nothing past the header is
    /// refused: what is wrong is kept for [`SparseExtent::check`].
    pub fn open(file: Arc<ImageFile>, walk: Walk) -> Result<SparseExtent> {
        let name = file.path();
        let len = file.length()?;
        let (header, origin) = read_header(&file, len)?;
        let cowd = origin == Origin::Cowd;
        let gt_entries = header.num_gtes_per_gt as u64;
        let gt_bytes = align_up(gt_entries * 4, SECTOR);
        let n = header.gd_entries();
        if n > MAX_GD_ENTRIES {
            return Err(Error::unsupported(
                name,
                format!(
                    "a grain directory of {n} entries is more than vimg handles ({MAX_GD_ENTRIES})"
                ),
            ));
        }
        let mut gd = directory(&file, header.gd_offset, n, len, "VMDK grain directory")?;
        let mut rgd = match header.has_rgd() {
            true => Some(directory(
                &file,
                header.rgd_offset,
                n,
                len,
                "VMDK redundant grain directory",
            )?),
            false => None,
        };
        let mut homes: Vec<Homes> = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut home = [0u64; 2];
            for (copy, table) in [Some(&mut gd), rgd.as_mut()].into_iter().enumerate() {
                let Some(table) = table else { continue };
                home[copy] = table.get(&file, i)? as u64 * SECTOR;
            }
            if home[0] == 0 {
                home = [0, 0];
            }
            homes.push(home);
        }
        let mut space = metadata_space(&header, cowd, &homes, gt_bytes, len);
        let mut damage = Vec::new();
        for conflict in space.conflicts() {
            let e = metadata_error(name, &header, len, &conflict);
            if walk != Walk::Check {
                return Err(e);
            }
            // A table that is not in the file is left out (its grains read
            // as unallocated), so that reading it cannot fail.
            // (`check` finds the other conflicts again from the tables.)
            if let Conflict::PastEnd(Span {
                what: Part::GrainTable { entry, redundant },
                ..
            }) = conflict
            {
                let home = &mut homes[entry as usize];
                match redundant {
                    false => *home = [0, 0],
                    true => home[1] = 0,
                }
                damage.push(e);
            }
        }
        // New space goes past everything: the file's end, the header's
        // overhead and every table.
        let used = space.end().min(len);
        let start = align_up(len, SECTOR)
            .max(header.overhead.saturating_mul(SECTOR).min(MAX_OVERHEAD))
            .max(align_up(used, SECTOR));
        let gts = Table::new(Endian::Little, gt_entries as usize, n * gt_entries, homes);
        let mut extent = SparseExtent {
            capacity: header.capacity * SECTOR,
            grain: header.grain_size * SECTOR,
            gt_entries,
            gt_bytes,
            gd,
            rgd,
            gts,
            alloc: Allocator::new(start),
            cache: None,
            cowd,
            header_in_footer: origin == Origin::Footer,
            grew: false,
            damage: Vec::new(),
            unreadable: HashMap::new(),
            header,
            file,
        };
        if walk == Walk::Check {
            // The claims are made again by `check`, from the tables as
            // they are then.
            extent.damage = damage;
            return Ok(extent);
        }
        for fault in extent.walk_grains(&mut space)? {
            if walk != Walk::Salvage {
                return Err(fault.error);
            }
            let why = fault.error.to_string();
            for grain in fault.grains {
                extent
                    .unreadable
                    .entry(grain)
                    .or_insert_with(|| why.clone());
            }
        }
        Ok(extent)
    }

    /// Walk every grain the tables point at, claimed into `space` beside
    /// the metadata: past the end of the file, on the metadata, or on one
    /// another (two entries naming one grain make one write change two
    /// places, and let a small file claim terabytes of data). Empty grain
    /// tables are skipped without reading. Returns what is wrong.
    fn walk_grains(&mut self, space: &mut Space<Part>) -> Result<Vec<GrainFault>> {
        let len = space.file_len();
        let grains = self.capacity.div_ceil(self.grain);
        let need = self.grain_need();
        let mut found = Vec::new();
        for p in 0..self.gd.len() as usize {
            if self.gts.page_is_zero(&self.file, p)? {
                continue;
            }
            let first = p as u64 * self.gt_entries;
            for index in first..(first + self.gt_entries).min(grains) {
                let gte = self.gts.get(&self.file, index)?;
                if gte == GTE_ZEROED && !self.header.zeroed_grain() && !self.cowd {
                    found.push(GrainFault {
                        grains: vec![index],
                        error: Error::corrupt(
                            self.file.path(),
                            "VMDK grain table",
                            self.entry_offset(index),
                            format!("grain {index}'s entry is 1, a zeroed grain, but the header does not allow zeroed-grain entries (flag bit 2); it names sector 1, the header"),
                        ),
                    });
                    continue;
                }
                let host = match self.classify(gte) {
                    Grain::At(h) | Grain::Compressed(h) => h,
                    Grain::Unallocated | Grain::Zero => continue,
                };
                space.claim_run(host, need, Part::Grains(Units::one(index)));
            }
        }
        for conflict in space.conflicts() {
            if conflict.involves_grains() {
                found.push(GrainFault {
                    grains: self.faulty_grains(len, &conflict),
                    error: self.grain_error(len, &conflict),
                });
            }
        }
        Ok(found)
    }

    /// Every grain of a conflict whose entry is at fault: those of a run
    /// that lie past the end of the file, or on metadata, or (of two runs
    /// that overlap) those of the later run that overlap the earlier.
    fn faulty_grains(&self, len: u64, conflict: &Conflict<Part>) -> Vec<u64> {
        conflict.faulty_units(len, self.grain_need(), |what| match what {
            Part::Grains(units) => Some(*units),
            _ => None,
        })
    }

    /// Bytes each grain takes from where its entry points: the grain, or
    /// for compressed grains the marker that gives their size.
    fn grain_need(&self) -> u64 {
        if self.header.compressed() {
            12
        } else {
            self.grain
        }
    }

    /// The byte offset of grain `index`'s grain table entry.
    fn entry_offset(&self, index: u64) -> u64 {
        self.gts.home((index / self.gt_entries) as usize) + (index % self.gt_entries) * 4
    }

    /// The grain of the run `span` that holds byte `at`, and its host.
    fn grain_at(&self, span: &Span<Part>, at: u64) -> (u64, u64) {
        match span.what {
            Part::Grains(units) => units.at(span.start, self.grain_need(), at),
            _ => (0, span.start),
        }
    }

    /// The error a conflict involving grains stands for, naming the grain
    /// table entry at fault.
    fn grain_error(&self, len: u64, conflict: &Conflict<Part>) -> Error {
        let (index, detail) = match conflict {
            Conflict::PastEnd(span) => {
                let (index, host) = self.grain_at(span, len);
                (
                    index,
                    format!("grain {index} at byte {host} lies past the end of the {len}-byte file (truncated?)"),
                )
            }
            Conflict::Overlap(a, b) => match (&a.what, &b.what) {
                (Part::Grains(_), Part::Grains(_)) => {
                    let (first, _) = self.grain_at(a, b.start);
                    let (second, _) = self.grain_at(b, b.start);
                    (
                        second,
                        format!("grains {first} and {second} overlap at byte {}", b.start),
                    )
                }
                (Part::Grains(_), _) => {
                    let (index, host) = self.grain_at(a, b.start);
                    (index, format!("grain {index} at byte {host} {ON_METADATA}"))
                }
                _ => {
                    let (index, host) = self.grain_at(b, b.start);
                    (index, format!("grain {index} at byte {host} {ON_METADATA}"))
                }
            },
        };
        Error::corrupt(
            self.file.path(),
            "VMDK grain table",
            self.entry_offset(index),
            detail,
        )
    }

    /// Size of the extent in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Grain size in bytes.
    pub fn grain_size(&self) -> u64 {
        self.grain
    }

    /// True for a VMDK3 (COWD) extent.
    pub fn is_cowd(&self) -> bool {
        self.cowd
    }

    pub fn file(&self) -> &Arc<ImageFile> {
        &self.file
    }

    fn lookup(&mut self, index: u64) -> Result<Grain> {
        let gte = self.gts.get(&self.file, index)?;
        Ok(self.classify(gte))
    }

    /// What a grain table entry says of its grain.
    fn classify(&self, gte: u32) -> Grain {
        match gte {
            0 => Grain::Unallocated,
            GTE_ZEROED if self.header.zeroed_grain() => Grain::Zero,
            s if self.header.compressed() => Grain::Compressed(s as u64 * SECTOR),
            s => Grain::At(s as u64 * SECTOR),
        }
    }

    /// Decompress grain `index`, stored at `host`, into the cache.
    fn inflate(&mut self, index: u64, host: u64) -> Result<&[u8]> {
        if self.cache.as_ref().map(|c| c.0) != Some(index) {
            let data = read_compressed(&self.file, host, self.grain, self.header.has_markers())?;
            self.cache = Some((index, data));
        }
        Ok(&self.cache.as_ref().unwrap().1)
    }

    /// Read `buf` at extent offset `offset`; ranges without data here come
    /// from `fill`.
    pub fn read(&mut self, buf: &mut [u8], offset: u64, fill: Fill) -> Result<()> {
        let mut runs = Runs::new();
        // A long read of compressed grains inflates them on every core.
        let parallel = buf.len() as u64 >= PARALLEL_GRAINS * self.grain;
        let mut compressed = Vec::new();
        for p in units(offset, buf.len(), self.grain) {
            let within = p.within as usize;
            if let Some(why) = self.unreadable.get(&p.index) {
                let first = p.index * self.grain;
                return Err(Error::unreadable(why.clone(), first..first + self.grain));
            }
            match self.lookup(p.index)? {
                Grain::Unallocated => {
                    fill(&mut buf[p.range.clone()], offset + p.range.start as u64)?
                }
                Grain::Zero => buf[p.range].fill(0),
                Grain::At(host) => runs.push(host + p.within, p.range),
                Grain::Compressed(host) if parallel => compressed.push((host, within, p.range)),
                Grain::Compressed(host) => {
                    let data = self.inflate(p.index, host)?;
                    buf[p.range.clone()].copy_from_slice(&data[within..within + p.len()]);
                }
            }
        }
        if !compressed.is_empty() {
            self.inflate_all(&compressed, buf)?;
        }
        runs.read_zero_filled(&self.file, buf)
    }

    /// Inflate the grains at `grains` (host, offset within the grain,
    /// range of `buf`, in `buf`'s order) into `buf`, the work shared out
    /// over the cores: each thread takes a run of them, reads their
    /// compressed bytes in one go where they lie in order (as a stream
    /// lays them out), and inflates straight into its part of `buf`.
    fn inflate_all(&self, grains: &[(u64, usize, Range<usize>)], buf: &mut [u8]) -> Result<()> {
        let threads = crate::io::workers().min(grains.len());
        let (file, grain, markers) = (&*self.file, self.grain, self.header.has_markers());
        let per = grains.len().div_ceil(threads);
        // Each thread's grains and the part of `buf` they fill.
        let mut jobs = Vec::new();
        let mut rest = buf;
        let mut base = 0;
        for part in grains.chunks(per) {
            let end = part.last().map_or(base, |g| g.2.end);
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(end - base);
            jobs.push((part, mine, base));
            rest = tail;
            base = end;
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(part, out, base)| {
                    s.spawn(move || inflate_run(file, part, out, base, grain, markers))
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().expect("an inflating thread panicked"))
        })
    }

    /// Fail unless this extent takes writes (COWD and compressed extents
    /// do not).
    pub fn check_writable(&self) -> Result<()> {
        if self.header_in_footer {
            return Err(Error::unsupported(
                self.file.path(),
                "writing into an extent whose grain directory is found through its footer (a stream layout) is not supported; convert it first",
            ));
        }
        if self.cowd {
            return Err(Error::unsupported(
                self.file.path(),
                "writing into a VMDK3 (COWD) extent is not supported; convert it first",
            ));
        }
        if self.header.compressed() {
            return Err(Error::unsupported(
                self.file.path(),
                "writing into a compressed (streamOptimized) extent is not supported; convert it to another subformat first",
            ));
        }
        Ok(())
    }

    /// Write `buf` at extent offset `offset`, allocating grains at the end of
    /// the file. A partial write into a grain this extent lacks keeps the
    /// rest of the grain as `fill` reads it (a parent's data); without a
    /// `fill` the rest is zeros.
    pub fn write(&mut self, buf: &[u8], offset: u64, mut fill: Option<Fill>) -> Result<()> {
        self.check_writable()?;
        let mut runs = Runs::new();
        let mut whole_grains: Vec<(u64, Vec<u8>)> = Vec::new();
        for p in units(offset, buf.len(), self.grain) {
            let host = match self.lookup(p.index)? {
                Grain::At(host) => host,
                old => {
                    let host = self.allocate(p.index)?;
                    let partial = p.len() as u64 != self.grain;
                    if let (true, Grain::Unallocated, Some(fill)) = (partial, old, fill.as_mut()) {
                        let mut grain = vec![0u8; self.grain as usize];
                        fill(&mut grain, p.index * self.grain)?;
                        let within = p.within as usize;
                        grain[within..within + p.len()].copy_from_slice(&buf[p.range]);
                        whole_grains.push((host, grain));
                        continue;
                    }
                    host
                }
            };
            runs.push(host + p.within, p.range);
        }
        runs.write(&self.file, buf)?;
        for (host, grain) in &whole_grains {
            self.file.write_all_at(grain, *host)?;
        }
        Ok(())
    }

    /// Give grain `index` a place at the end of the file (and its grain
    /// table one, if it had none). Tables reach the disk at flush.
    fn allocate(&mut self, index: u64) -> Result<u64> {
        let p = (index / self.gt_entries) as usize;
        let new_table = !self.gts.page_present(p);
        // Place everything first, and refuse before changing any state when
        // a 32-bit sector number cannot reach it.
        let mut next = self.alloc.clone();
        let (mut primary, mut redundant) = (0, 0);
        if new_table {
            primary = next.take(self.gt_bytes, SECTOR);
            if self.rgd.is_some() {
                redundant = next.take(self.gt_bytes, SECTOR);
            }
        }
        let host = next.take(self.grain, SECTOR);
        let sector = |at: u64| {
            u32::try_from(at / SECTOR).map_err(|_| {
                Error::unsupported(
                    self.file.path(),
                    "the extent file would grow past the 2 TiB a sparse extent can address",
                )
            })
        };
        let (grain_sector, gt_sector, rgt_sector) =
            (sector(host)?, sector(primary)?, sector(redundant)?);
        self.alloc = next;
        self.grew = true;
        if new_table {
            self.gts.place_page(p, [primary, redundant]);
            self.gd.set(&self.file, p as u64, gt_sector)?;
            if let Some(rgd) = &mut self.rgd {
                rgd.set(&self.file, p as u64, rgt_sector)?;
            }
        }
        self.gts.set(&self.file, index, grain_sector)?;
        Ok(host)
    }

    /// What the extent holds from `offset`, for up to `len` bytes.
    pub fn status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let first = self.lookup(offset / self.grain)?;
        let in_grain = offset % self.grain;
        let mut run = (self.grain - in_grain).min(len);
        while run < len {
            let next_offset = offset + run;
            let index = next_offset / self.grain;
            // A whole empty grain table is skipped in one step.
            if first == Grain::Unallocated && index.is_multiple_of(self.gt_entries) {
                let p = (index / self.gt_entries) as usize;
                if self.gts.page_is_zero(&self.file, p)? {
                    run = (run + self.gt_entries * self.grain).min(len);
                    continue;
                }
            }
            let next = self.lookup(index)?;
            let alike = match (first, next) {
                (Grain::At(a), Grain::At(b)) => a + in_grain + run == b,
                (Grain::Compressed(_), Grain::Compressed(_)) => true,
                (a, b) => a == b,
            };
            if !alike {
                break;
            }
            run = (run + self.grain).min(len);
        }
        let kind = match first {
            Grain::Unallocated => Source::Unallocated,
            Grain::Zero => Source::Zero {
                host: None,
                data: false,
            },
            Grain::Compressed(_) => Source::Data {
                host: None,
                compressed: true,
            },
            Grain::At(h) => Source::Data {
                host: Some(Host {
                    file: self.file.name().clone(),
                    offset: h + in_grain,
                }),
                compressed: false,
            },
        };
        Ok(Mapping::new(run, kind))
    }

    /// Write changed grain tables, then the directories; make sure the file
    /// covers the last grain.
    pub fn flush(&mut self) -> Result<()> {
        // Only grains allocated now can need the file to grow; an extent
        // nothing was added to keeps its length (a stream's footer must
        // stay in its second-to-last sector).
        if self.grew && self.file.length()? < self.alloc.end() {
            self.file.set_len(self.alloc.end())?;
        }
        self.gts.flush(&self.file)?;
        self.gd.flush(&self.file)?;
        if let Some(rgd) = &mut self.rgd {
            rgd.flush(&self.file)?;
        }
        Ok(())
    }
}

/// Where an extent's header came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The KDMV header at offset 0.
    Kdmv,
    /// The footer a KDMV header sends the reader to (grain directory at
    /// the end).
    Footer,
    /// A VMDK3 (COWD) header, in the same terms.
    Cowd,
}

/// The extent's header: KDMV, or COWD turned into the same terms (the
/// footer's copy when the directory is at the end), and where it came from.
fn read_header(file: &ImageFile, len: u64) -> Result<(SparseHeader, Origin)> {
    let path = file.path();
    let mut magic = [0u8; 4];
    file.read_zero_filled(&mut magic, 0)?;
    if &magic == b"COWD" {
        let mut buf = [0u8; COWD_HEADER_SIZE];
        file.read_exact_at(&mut buf, 0)?;
        let header = CowdHeader::parse(&buf)
            .map_err(|e| Error::corrupt_field(path, "VMDK3 (COWD) header", 0, e))?;
        return Ok((header.as_sparse(), Origin::Cowd));
    }
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, 0)?;
    let header = SparseHeader::parse(&buf)
        .map_err(|e| Error::corrupt_field(path, "VMDK sparse header", 0, e))?;
    if header.capacity > MAX_CAPACITY_SECTORS {
        return Err(Error::unsupported(
            path,
            format!(
                "capacity of {} sectors is more than the 64 TiB vimg handles",
                header.capacity
            ),
        ));
    }
    if header.gd_offset == GD_AT_END {
        return Ok((read_footer_header(file, len, header)?, Origin::Footer));
    }
    Ok((header, Origin::Kdmv))
}

/// A grain directory of `n` entries at sector `at`, which must lie inside
/// the file.
fn directory(file: &ImageFile, at: u64, n: u64, len: u64, what: &'static str) -> Result<Table> {
    let start = at.saturating_mul(SECTOR);
    if start == 0 || start.checked_add(n * 4).is_none_or(|end| end > len) {
        return Err(Error::corrupt(
            file.path(),
            what,
            start,
            format!("{n} entries at sector {at} do not fit in the {len}-byte file"),
        ));
    }
    let homes = (0..n.div_ceil(GD_PAGE as u64))
        .map(|p| [start + p * SECTOR, 0])
        .collect();
    Ok(Table::new(Endian::Little, GD_PAGE, n, homes))
}

/// The claims of what the header itself places: the header, the embedded
/// descriptor and the grain directory (of `dir_bytes`).
fn header_space(h: &SparseHeader, cowd: bool, dir_bytes: u64, len: u64) -> Space<Part> {
    let at = |sectors: u64| sectors.saturating_mul(SECTOR);
    let mut space = Space::new(len);
    let header = if cowd {
        COWD_HEADER_SIZE as u64
    } else {
        SECTOR
    };
    space.claim(0, header, Part::Header);
    if h.descriptor_offset != 0 && h.descriptor_size != 0 {
        space.claim(
            at(h.descriptor_offset),
            at(h.descriptor_size),
            Part::Descriptor,
        );
    }
    space.claim(at(h.gd_offset), dir_bytes, Part::Directory);
    space
}

/// The claims of an extent's metadata: the header, the embedded
/// descriptor, both directories and every grain table (a table two
/// directory entries share, one lying on a directory, or a descriptor
/// space over a table would make a write through one corrupt the other).
fn metadata_space(
    h: &SparseHeader,
    cowd: bool,
    homes: &[Homes],
    gt_bytes: u64,
    len: u64,
) -> Space<Part> {
    let at = |sectors: u64| sectors.saturating_mul(SECTOR);
    let dir_bytes = align_up(homes.len() as u64 * 4, SECTOR);
    let mut space = header_space(h, cowd, dir_bytes, len);
    if h.has_rgd() {
        space.claim(at(h.rgd_offset), dir_bytes, Part::RedundantDirectory);
    }
    for (entry, home) in homes.iter().enumerate() {
        for (copy, &t) in home.iter().enumerate().filter(|(_, &t)| t != 0) {
            let what = Part::GrainTable {
                entry: entry as u64,
                redundant: copy == 1,
            };
            space.claim(t, gt_bytes, what);
        }
    }
    space
}

/// What grains lying on metadata are told.
const ON_METADATA: &str = "lies on the extent's header, descriptor, directories or tables";

/// The error a conflict among an extent's metadata stands for.
fn metadata_error(path: &Path, h: &SparseHeader, len: u64, conflict: &Conflict<Part>) -> Error {
    match conflict {
        Conflict::PastEnd(Span {
            start,
            what: Part::GrainTable { entry, redundant },
            ..
        }) => {
            let (directory, dir_at) = match redundant {
                false => ("VMDK grain directory", h.gd_offset),
                true => ("VMDK redundant grain directory", h.rgd_offset),
            };
            Error::corrupt(
                path,
                directory,
                dir_at.saturating_mul(SECTOR).saturating_add(entry * 4),
                format!("entry {entry} points at byte {start}, past the end of the file"),
            )
        }
        Conflict::PastEnd(span) => Error::corrupt(
            path,
            "VMDK sparse header",
            0,
            format!(
                "{} at byte {} runs past the end of the {len}-byte file",
                span.what, span.start
            ),
        ),
        Conflict::Overlap(a, b) => Error::corrupt(
            path,
            "VMDK sparse extent",
            b.start,
            format!("{} and {} overlap at byte {}", a.what, b.what, b.start),
        ),
    }
}

/// A stream-optimized extent with the grain directory at the end keeps the
/// real header in its footer, the second-to-last sector.
fn read_footer_header(file: &ImageFile, len: u64, header: SparseHeader) -> Result<SparseHeader> {
    let path = file.path();
    if len < 3 * SECTOR {
        return Err(Error::corrupt(
            path,
            "VMDK footer",
            0,
            "the header says the grain directory is in the footer, but the file is too short for one",
        ));
    }
    let at = len - 2 * SECTOR;
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, at)?;
    let footer =
        SparseHeader::parse(&buf).map_err(|e| Error::corrupt_field(path, "VMDK footer", at, e))?;
    // What decides how grains are read must agree: a footer that drops
    // the compression the header announces would make stream data read
    // (and be written) as plain grains.
    let layout = FLAG_COMPRESSED | FLAG_MARKERS;
    if footer.gd_offset == GD_AT_END
        || footer.capacity != header.capacity
        || footer.grain_size != header.grain_size
        || footer.flags & layout != header.flags & layout
    {
        return Err(Error::corrupt(
            path,
            "VMDK footer",
            at,
            "it does not match the header or gives no grain directory",
        ));
    }
    Ok(footer)
}

/// Read and inflate the compressed grain at `host`: with markers, a 12-byte
/// header (LBA, compressed size) precedes the zlib stream.
/// Inflate `grains` (host, offset within the grain, range of the whole
/// read) into `out`, which holds the read from byte `base` on. Grains that
/// lie in order, each marker's size within reach, are read in one go.
fn inflate_run(
    file: &ImageFile,
    grains: &[(u64, usize, Range<usize>)],
    out: &mut [u8],
    base: usize,
    grain: u64,
    markers: bool,
) -> Result<()> {
    let mut z = libdeflater::Decompressor::new();
    let limit = grain + grain / 8 + 1024;
    let ordered = markers
        && grains.windows(2).all(|w| w[0].0 < w[1].0)
        && grains.last().map_or(0, |g| g.0) - grains.first().map_or(0, |g| g.0)
            <= grains.len() as u64 * limit;
    let first = grains.first().map_or(0, |g| g.0);
    let mut span = Vec::new();
    if ordered {
        let last = grains.last().map_or(0, |g| g.0);
        let len = (last - first + limit).min(file.length()?.saturating_sub(first));
        span.resize(len as usize, 0);
        file.read_zero_filled(&mut span, first)?;
    }
    let mut scratch = vec![0u8; grain as usize];
    for (host, within, range) in grains {
        let dst = &mut out[range.start - base..range.end - base];
        let whole = *within == 0 && dst.len() as u64 == grain;
        let at = (host - first) as usize;
        let in_span = ordered && at + 12 <= span.len() && {
            let size = LittleEndian::read_u32(&span[at + 8..at + 12]) as usize;
            size != 0 && size as u64 <= limit && at + 12 + size <= span.len()
        };
        if !in_span {
            let data = inflate_with(&mut z, file, *host, grain, markers)?;
            dst.copy_from_slice(&data[*within..*within + dst.len()]);
            continue;
        }
        let size = LittleEndian::read_u32(&span[at + 8..at + 12]) as usize;
        let packed = &span[at + 12..at + 12 + size];
        let corrupt = |d: String| Error::corrupt(file.path(), "VMDK compressed grain", *host, d);
        let target: &mut [u8] = if whole { dst } else { &mut scratch };
        let got = z
            .zlib_decompress(packed, target)
            .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
        target[got..].fill(0);
        if !whole {
            dst.copy_from_slice(&scratch[*within..*within + dst.len()]);
        }
    }
    Ok(())
}

fn read_compressed(file: &ImageFile, host: u64, grain: u64, markers: bool) -> Result<Vec<u8>> {
    inflate_with(
        &mut libdeflater::Decompressor::new(),
        file,
        host,
        grain,
        markers,
    )
}

/// [`read_compressed`] with a decompressor of the caller's.
fn inflate_with(
    z: &mut libdeflater::Decompressor,
    file: &ImageFile,
    host: u64,
    grain: u64,
    markers: bool,
) -> Result<Vec<u8>> {
    let path = file.path();
    let corrupt = |d: String| Error::corrupt(path, "VMDK compressed grain", host, d);
    // Enough for any grain deflate can produce, plus the marker.
    let limit = grain + grain / 8 + 1024;
    // With markers the size comes first: read a grain's worth and more if
    // needed. Without them the stream runs up to the limit.
    let first = if markers { limit.min(64 << 10) } else { limit };
    let mut raw = vec![0u8; first as usize];
    file.read_zero_filled(&mut raw, host)?;
    let (start, size) = if markers {
        let size = LittleEndian::read_u32(&raw[8..12]) as u64;
        if size == 0 || size > limit {
            return Err(corrupt(format!(
                "compressed size {size} is not between 1 and {limit}"
            )));
        }
        if host + 12 + size > file.length()? {
            return Err(corrupt(format!(
                "its {size} compressed bytes run past the end of the file (truncated?)"
            )));
        }
        (12usize, size as usize)
    } else {
        (0usize, raw.len())
    };
    if start + size > raw.len() {
        raw.resize(start + size, 0);
        file.read_zero_filled(&mut raw, host)?;
    }
    let mut out = vec![0u8; grain as usize];
    let got = z
        .zlib_decompress(&raw[start..start + size], &mut out)
        .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
    out[got..].fill(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::check::testing::{check_file, patch};
    use crate::image::check::Severity;
    use crate::image::factory::{create, open};
    use crate::image::Format;
    use crate::io::Access;
    use crate::options::Options;
    use std::path::PathBuf;

    const GRAIN: u64 = 64 << 10;

    /// A 16 MiB monolithicSparse VMDK holding grains `grains` (each filled
    /// with its index + 1), and where its first grain table is.
    fn sparse(dir: &Path, grains: &[u64]) -> (PathBuf, u64) {
        let path = dir.join("d.vmdk");
        let mut image =
            create(&path, Format::Vmdk, 16 << 20, &mut Options::default(), None).unwrap();
        for &g in grains {
            image
                .write_at(&vec![g as u8 + 1; GRAIN as usize], g * GRAIN)
                .unwrap();
        }
        image.flush().unwrap();
        drop(image);
        let bytes = std::fs::read(&path).unwrap();
        let header = SparseHeader::parse(&bytes[..512]).unwrap();
        let gd = (header.gd_offset * SECTOR) as usize;
        let gt = LittleEndian::read_u32(&bytes[gd..]) as u64 * SECTOR;
        (path, gt)
    }

    fn entry(path: &Path, gt: u64, grain: u64) -> u32 {
        let bytes = std::fs::read(path).unwrap();
        LittleEndian::read_u32(&bytes[(gt + grain * 4) as usize..])
    }

    fn set_entry(path: &Path, at: u64, index: u64, value: u32) {
        patch(path, at + index * 4, &value.to_le_bytes());
    }

    #[test]
    fn a_clean_extent_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = sparse(dir.path(), &[0, 1, 7, 200]);
        let report = check_file(&path);
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn every_fault_is_reported_where_open_stops_at_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, gt) = sparse(dir.path(), &[0, 1, 2, 3, 4]);
        let len = std::fs::metadata(&path).unwrap().len();
        // Grain 1 past the end of the file, grain 3 on grain 2, grain 4 on
        // the grain table (and so, a grain long, on grain 0): the space of
        // grain 1 and of grains 3 and 4 is then a leak.
        set_entry(&path, gt, 1, (len / SECTOR + 100) as u32);
        set_entry(&path, gt, 3, entry(&path, gt, 2));
        set_entry(&path, gt, 4, (gt / SECTOR) as u32);
        let err = open(&path, None, Access::Read).err().unwrap().to_string();
        assert!(err.contains("grain 1 at byte"), "{err}");
        let report = check_file(&path);
        // Only the grain table was patched, so its redundant copy differs
        // (the first entry that does is named).
        let copies: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.structure == "VMDK redundant grain directory")
            .collect();
        assert_eq!(copies.len(), 1, "{copies:#?}");
        assert!(copies[0].message.contains("grain 1's entry"), "{copies:#?}");
        let corrupt: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Corruption && f.structure == "VMDK grain table")
            .collect();
        let messages: Vec<_> = corrupt.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].starts_with("grain 1 at byte") && messages[0].contains("past the end"));
        assert!(messages[1].starts_with("grain 4 at byte") && messages[1].contains("lies on"));
        assert!(messages[2].starts_with("grains 4 and 0 overlap"));
        assert!(messages[3].starts_with("grains 2 and 3 overlap"));
        // Each names the grain table entry at fault.
        let offsets: Vec<_> = corrupt.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [1, 4, 0, 3].map(|g| Some(gt + g * 4)));
        let leaks: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Leak)
            .collect();
        assert_eq!(leaks.len(), 2, "{leaks:#?}");
        assert_eq!(leaks[0].offset, Some(2 * GRAIN));
        assert!(leaks[0].message.starts_with(&format!("{GRAIN} bytes")));
        assert_eq!(leaks[1].offset, Some(4 * GRAIN));
        assert!(leaks[1]
            .message
            .starts_with(&format!("{} bytes", 2 * GRAIN)));
        // Open for writing refuses it too.
        assert!(open(&path, None, Access::Write).is_err());
    }

    #[test]
    fn a_grain_table_past_the_end_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = sparse(dir.path(), &[0]);
        let bytes = std::fs::read(&path).unwrap();
        let header = SparseHeader::parse(&bytes[..512]).unwrap();
        patch(&path, header.gd_offset * SECTOR, &u32::MAX.to_le_bytes());
        assert!(open(&path, None, Access::Read).is_err());
        let report = check_file(&path);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Corruption
                    && f.structure == "VMDK grain directory"
                    && f.message.contains("past the end")),
            "{:#?}",
            report.findings
        );
    }

    /// Long reads of a stream's compressed grains are inflated on several
    /// threads, in runs read at once: at any offset and length they read
    /// what was written, grain tails and zero grains included.
    #[test]
    fn long_reads_of_compressed_grains_read_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.vmdk");
        let size = 8u64 << 20;
        let mut data = vec![0u8; size as usize];
        let mut x = 1u32;
        for (i, b) in data.iter_mut().enumerate() {
            // Some grains random, some runs, some zero.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = match (i >> 16) % 4 {
                0 => x as u8,
                1 => (i >> 10) as u8,
                2 => 0,
                _ => (x as u8) & 3,
            };
        }
        let mut opts = Options::parse(["subformat=streamOptimized"]).unwrap();
        let mut sink = create(&path, Format::Vmdk, size, &mut opts, None).unwrap();
        sink.write_at(&data, 0).unwrap();
        sink.flush().unwrap();
        drop(sink);
        let mut image = open(&path, Some(Format::Vmdk), Access::Read).unwrap();
        for (at, len) in [
            (0, size),
            (100, 5 << 16),
            (65535, 9 << 16),
            (3 << 20, 1 << 20),
            (size - 300_000, 300_000),
        ] {
            let mut buf = vec![0xeeu8; len as usize];
            image.read_at(&mut buf, at).unwrap();
            assert!(buf == data[at as usize..(at + len) as usize], "{at}+{len}");
        }
    }
}
