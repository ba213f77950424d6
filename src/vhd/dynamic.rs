//! Dynamic (and differencing) VHD data: the block allocation table, the
//! per-block sector bitmaps, and block allocation at the end of the file.
//!
//! A block on disk is its sector bitmap (one bit per sector, most significant
//! bit first, padded to a sector) followed by the block's data. New blocks
//! are placed as Windows places them, so that the data starts on a 4 KiB
//! boundary; the footer always stays the last 512 bytes of the file.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::dyn_header::{DynamicHeader, ParentLocator, HEADER_SIZE};
use super::footer::{DiskType, Footer, FOOTER_SIZE};
use super::locator::ParentRecord;
use crate::alloc::space::{Conflict, Run, Space, Span, Units};
use crate::alloc::{units, Allocator, Endian, Runs, Table};
use crate::error::{Error, Result};
use crate::image::Walk;
use crate::image::{Host, Mapping, Source};
use crate::io::{align_up, ImageFile, SECTOR};

mod resize;
mod survey;

/// BAT value of a block with no place in the file.
pub const UNALLOCATED: u32 = 0xffff_ffff;
/// Where new block data is aligned to.
const DATA_ALIGN: u64 = 4096;
/// The most BAT entries vimg accepts: 2040 GiB in 512 KiB blocks needs
/// about 4.2 million.
const MAX_BAT_ENTRIES: u64 = 1 << 23;
/// The end of what 32-bit sector numbers in the BAT can point at.
const MAX_ADDRESSABLE: u64 = (u32::MAX as u64) * SECTOR;
/// BAT entries per table page (one sector).
const BAT_PAGE: usize = 128;

/// Check that the BAT described by `header` can map a disk of `size`
/// bytes and is of a size vimg handles. Where it lies is the space map's
/// business.
fn check_bat(path: &Path, header: &DynamicHeader, header_offset: u64, size: u64) -> Result<()> {
    let corrupt =
        |detail: String| Error::corrupt(path, "VHD dynamic header", header_offset, detail);
    let block_size = header.block_size as u64;
    let entries = header.max_table_entries as u64;
    if entries > MAX_BAT_ENTRIES {
        return Err(corrupt(format!(
            "{entries} BAT entries are more than vimg handles ({MAX_BAT_ENTRIES})"
        )));
    }
    if entries * block_size < size {
        return Err(corrupt(format!(
            "{entries} BAT entries of {block_size} bytes cannot hold a {size}-byte disk"
        )));
    }
    Ok(())
}

/// What a part of a dynamic VHD file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    FooterCopy,
    Header,
    Bat,
    Locator(usize),
    Footer,
    /// Blocks (bitmap and data).
    Blocks(Units),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::FooterCopy => write!(f, "the footer copy"),
            Part::Header => write!(f, "the dynamic header"),
            Part::Bat => write!(f, "the BAT"),
            Part::Locator(i) => write!(f, "the data of parent locator {i}"),
            Part::Footer => write!(f, "the footer"),
            Part::Blocks(units) => f.write_str(&units.describe("block", "blocks")),
        }
    }
}

impl Run for Part {
    fn extend(&self, next: &Part) -> Option<Part> {
        match (*self, *next) {
            (Part::Blocks(run), Part::Blocks(next)) => run.then(next).map(Part::Blocks),
            _ => None,
        }
    }
}

/// True when the first `sectors` bits of a bitmap (most significant bit
/// first) are all set; a block of fewer than 8 sectors uses part of a byte.
fn all_set(bits: &[u8], sectors: u64) -> bool {
    let (whole, rest) = ((sectors / 8) as usize, sectors % 8);
    let tail = 0xffu8 << ((8 - rest) as u32 % 8);
    bits[..whole].iter().all(|&b| b == 0xff) && (rest == 0 || bits[whole] & tail == tail)
}

/// Whether block data can be 4 KiB-aligned: a fully allocated disk of
/// `entries` blocks laid out from `start` must stay addressable by the
/// BAT's 32-bit sector numbers with the padding that costs.
fn can_align(start: u64, entries: u64, bitmap: u64, block: u64) -> bool {
    start + entries * (bitmap + block + DATA_ALIGN) <= MAX_ADDRESSABLE
}

/// Which sectors of an allocated block hold data.
#[derive(Debug)]
enum Bitmap {
    Full,
    Bits(Box<[u8]>),
}

impl Bitmap {
    fn get(&self, sector: u64) -> bool {
        match self {
            Bitmap::Full => true,
            Bitmap::Bits(b) => b[(sector / 8) as usize] & (0x80 >> (sector % 8)) != 0,
        }
    }

    /// Mark sectors `[first, end)`; true when that changed a bit.
    fn set_range(&mut self, first: u64, end: u64) -> bool {
        let Bitmap::Bits(b) = self else {
            return false;
        };
        let mut changed = false;
        for s in first..end {
            let mask = 0x80 >> (s % 8);
            let byte = &mut b[(s / 8) as usize];
            changed |= *byte & mask == 0;
            *byte |= mask;
        }
        changed
    }
}

/// A dynamic or differencing VHD's file and its allocation state.
pub struct Dynamic {
    file: ImageFile,
    /// The footer kept as the file's last sector.
    footer: [u8; FOOTER_SIZE],
    pub header: DynamicHeader,
    header_offset: u64,
    bat: Table,
    block_size: u64,
    bitmap_size: u64,
    alloc: Allocator,
    /// Where the trailing footer is now.
    footer_at: u64,
    /// End of the file as far as reads may go.
    file_end: u64,
    bitmaps: HashMap<u64, Bitmap>,
    /// For dynamic disks an unused sector reads as zero; for differencing
    /// disks it reads from the parent.
    differencing: bool,
    /// New block data goes on 4 KiB boundaries (when the disk stays
    /// addressable with the padding that costs).
    align_data: bool,
    /// Blocks whose BAT entries a [`Walk::Salvage`] open found wrong, and
    /// why: reading them fails (but for what of a block cut short by the
    /// end of the file lies in it).
    unreadable: HashMap<u64, Faulty>,
}

/// Why a block cannot be read, found by a [`Walk::Salvage`] open.
#[derive(Debug)]
struct Faulty {
    why: String,
    /// The block only runs past the end of the file: what of it lies in
    /// the file can be read.
    past_end: bool,
}

/// True when open refuses an image for `conflict`: anything a block is in
/// (a write there would destroy the other party), and a BAT out of the file
/// or on the headers; opened for writing, also a parent locator out of the
/// file or on anything else (new blocks would land on it). Other overlaps
/// among headers and locators, which reading never minds, are for `check`
/// to report.
fn refused_at_open(conflict: &Conflict<Part>, walk: Walk) -> bool {
    let locator = |s: &Span<Part>| matches!(s.what, Part::Locator(_));
    if walk == Walk::Write {
        match conflict {
            Conflict::PastEnd(s) if locator(s) => return true,
            Conflict::Overlap(a, b) if locator(a) || locator(b) => return true,
            _ => {}
        }
    }
    let hard = |s: &Span<Part>| matches!(s.what, Part::Bat | Part::Blocks(_));
    match conflict {
        Conflict::PastEnd(s) => hard(s),
        Conflict::Overlap(a, b) => {
            matches!(a.what, Part::Blocks(_))
                || matches!(b.what, Part::Blocks(_))
                || (hard(a) || hard(b))
                    && matches!(
                        (a.what, b.what),
                        (Part::FooterCopy | Part::Header, Part::Bat)
                            | (Part::Bat, Part::FooterCopy | Part::Header)
                    )
        }
    }
}

impl Dynamic {
    /// Open the dynamic part of the VHD in `file` whose footer is
    /// `footer`, for a disk of `size` bytes: read its dynamic header and
    /// check the BAT and every block it points at against the file.
    /// `tail_footer` is the length of the valid footer the file ends in (512
    /// bytes, or 511 in images older Virtual PC made), if it ends in one
    /// (when not, nothing at its end may be taken for one and cleared).
    pub fn open(
        file: ImageFile,
        footer: &Footer,
        size: u64,
        tail_footer: Option<u64>,
        walk: Walk,
    ) -> Result<Dynamic> {
        let file_len = file.length()?;
        let header_offset = footer.data_offset;
        if header_offset
            .checked_add(HEADER_SIZE as u64)
            .is_none_or(|end| end > file_len)
        {
            let footer_at = match tail_footer {
                Some(n) => file_len - n,
                None => 0,
            };
            return Err(Error::corrupt(
                file.path(),
                "VHD footer",
                footer_at + 16,
                format!(
                    "the dynamic header offset {header_offset} is outside the {file_len}-byte file"
                ),
            ));
        }
        let mut buf = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut buf, header_offset)?;
        // `check` walks a header whose checksum is wrong, and reports it.
        let parse = match walk {
            Walk::Check => DynamicHeader::parse_unverified,
            _ => DynamicHeader::parse,
        };
        let header = parse(&buf).map_err(|e| {
            Error::corrupt_field(file.path(), "VHD dynamic header", header_offset, e)
        })?;
        let differencing = footer.disk_type == DiskType::Differencing;
        check_bat(file.path(), &header, header_offset, size)?;
        let entries = header.max_table_entries as u64;
        let homes = (0..entries.div_ceil(BAT_PAGE as u64))
            .map(|p| [header.table_offset.saturating_add(p * SECTOR), 0])
            .collect();
        let block_size = header.block_size as u64;
        let bitmap_size = align_up((block_size / SECTOR).div_ceil(8), SECTOR);
        let mut dynamic = Dynamic {
            footer: footer.encode(),
            bat: Table::new(Endian::Big, BAT_PAGE, entries, homes),
            block_size,
            bitmap_size,
            alloc: Allocator::new(0),
            footer_at: 0,
            file_end: file_len,
            bitmaps: HashMap::new(),
            differencing,
            align_data: false,
            unreadable: HashMap::new(),
            header,
            header_offset,
            file,
        };
        if walk == Walk::Check {
            // `check` walks it all again, and reports what it finds.
            return Ok(dynamic);
        }
        let tail = tail_footer.map(|n| file_len - n..file_len);
        let mut space = dynamic.walk(file_len, tail)?;
        for c in space
            .conflicts()
            .iter()
            .filter(|c| refused_at_open(c, walk))
        {
            let blocks = dynamic.faulty_blocks(file_len, c);
            if walk != Walk::Salvage || blocks.is_empty() {
                return Err(dynamic.conflict_error(file_len, c));
            }
            let why = dynamic.conflict_error(file_len, c).to_string();
            let past_end = matches!(c, Conflict::PastEnd(_));
            for block in blocks {
                dynamic
                    .unreadable
                    .entry(block)
                    .and_modify(|f| f.past_end &= past_end)
                    .or_insert_with(|| Faulty {
                        why: why.clone(),
                        past_end,
                    });
            }
        }
        // The footer is the file's last sector when there is a valid one;
        // else new blocks (and a new footer) go past everything there is.
        // (The trailing footer itself moves: a new block takes its place.)
        let used = space
            .spans()
            .iter()
            .filter(|s| s.what != Part::Footer)
            .map(|s| s.end.min(file_len))
            .max()
            .unwrap_or(0);
        dynamic.footer_at = match tail_footer {
            Some(n) => file_len - n,
            None => align_up(file_len, SECTOR),
        }
        .max(used);
        dynamic.alloc = Allocator::new(dynamic.footer_at);
        // Data is placed 4 KiB-aligned, as Windows places it, when even a
        // fully allocated disk then stays addressable by the BAT's 32-bit
        // sector numbers; else blocks are packed.
        dynamic.align_data = can_align(dynamic.footer_at, entries, bitmap_size, block_size);
        Ok(dynamic)
    }

    /// Claim every part of the file: the footer copy, the dynamic header,
    /// the BAT, the parent locators' data, the trailing footer (at
    /// `footer`, when there is one) and every allocated block (unless the
    /// BAT itself is not in the file).
    fn walk(&mut self, file_len: u64, footer: Option<Range<u64>>) -> Result<Space<Part>> {
        let mut space = Space::new(file_len);
        let h = &self.header;
        let bat = h.max_table_entries as u64 * 4;
        space.claim(0, SECTOR, Part::FooterCopy);
        space.claim(self.header_offset, HEADER_SIZE as u64, Part::Header);
        space.claim(h.table_offset, bat, Part::Bat);
        // Only a differencing disk has locators; an entry without a
        // platform code is an empty slot, whatever else it holds.
        let locators = h
            .locators
            .iter()
            .enumerate()
            .filter(|(_, l)| self.differencing && l.code != [0; 4] && l.data_length != 0);
        for (i, loc) in locators {
            let len = align_up(loc.data_length as u64, SECTOR);
            space.claim(loc.data_offset, len, Part::Locator(i));
        }
        if let Some(f) = footer {
            space.claim(f.start, f.end - f.start, Part::Footer);
        }
        if h.table_offset
            .checked_add(bat)
            .is_none_or(|end| end > file_len)
        {
            return Ok(space);
        }
        let block_len = self.bitmap_size + self.block_size;
        for block in 0..h.max_table_entries as u64 {
            let entry = self.bat.get(&self.file, block)?;
            if entry != UNALLOCATED {
                let part = Part::Blocks(Units::one(block));
                space.claim_run(entry as u64 * SECTOR, block_len, part);
            }
        }
        Ok(space)
    }

    /// The blocks a conflict makes unreadable, for a [`Walk::Salvage`]
    /// open (none when it is not about blocks: the BAT or the headers).
    fn faulty_blocks(&self, len: u64, conflict: &Conflict<Part>) -> Vec<u64> {
        conflict.faulty_units(len, self.bitmap_size + self.block_size, |what| match what {
            Part::Blocks(units) => Some(*units),
            _ => None,
        })
    }

    /// The block of the run `span` that holds byte `at`, and its host.
    fn block_at(&self, span: &Span<Part>, at: u64) -> (u64, u64) {
        match span.what {
            Part::Blocks(units) => units.at(span.start, self.bitmap_size + self.block_size, at),
            _ => (0, span.start),
        }
    }

    /// The error a conflict stands for: one naming the BAT entry of the
    /// block at fault, the dynamic header for the BAT, or the structures.
    fn conflict_error(&self, file_len: u64, conflict: &Conflict<Part>) -> Error {
        let path = self.file.path();
        let header =
            |detail: String| Error::corrupt(path, "VHD dynamic header", self.header_offset, detail);
        match conflict {
            Conflict::PastEnd(s) if s.what == Part::Bat => header(format!(
                "the BAT ({} entries at byte {}) runs past the end of the {file_len}-byte file",
                self.header.max_table_entries, s.start
            )),
            Conflict::PastEnd(
                s @ Span {
                    what: Part::Blocks(_),
                    ..
                },
            ) => {
                let (block, host) = self.block_at(s, file_len);
                let end = host + self.bitmap_size + self.block_size;
                self.bat_error(
                    block,
                    format!("block {block} at byte {host} ends at byte {end}, past the end of the {file_len}-byte file (truncated?)"),
                )
            }
            Conflict::PastEnd(s) => Error::corrupt(
                path,
                "VHD dynamic header",
                self.header_offset,
                format!(
                    "{} at byte {} runs past the end of the {file_len}-byte file",
                    s.what, s.start
                ),
            ),
            Conflict::Overlap(a, b) => match (&a.what, &b.what) {
                (Part::Blocks(_), Part::Blocks(_)) => {
                    let (first, _) = self.block_at(a, b.start);
                    let (second, _) = self.block_at(b, b.start);
                    self.bat_error(
                        second,
                        format!("blocks {first} and {second} overlap at byte {}", b.start),
                    )
                }
                (Part::Blocks(_), _) | (_, Part::Blocks(_)) => {
                    let (blocks, other) = if matches!(a.what, Part::Blocks(_)) {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    let (block, host) = self.block_at(blocks, b.start);
                    self.bat_error(
                        block,
                        format!(
                            "block {block} at byte {host} overlaps {} (at byte {})",
                            other.what, other.start
                        ),
                    )
                }
                (Part::FooterCopy | Part::Header, Part::Bat)
                | (Part::Bat, Part::FooterCopy | Part::Header) => header(format!(
                    "the BAT at byte {} overlaps the footer copy or the dynamic header",
                    self.header.table_offset
                )),
                _ => Error::corrupt(
                    path,
                    "VHD file",
                    b.start,
                    format!("{} and {} overlap at byte {}", a.what, b.what, b.start),
                ),
            },
        }
    }

    /// A corrupt-BAT error about the entry of `block`.
    fn bat_error(&self, block: u64, detail: String) -> Error {
        Error::corrupt(
            self.file.path(),
            "VHD block allocation table",
            self.header.table_offset.saturating_add(block * 4),
            detail,
        )
    }

    /// Lay out a new, empty disk: header at 512, then (differencing
    /// disks) the parent locators' data, then the BAT, then the footer.
    /// Locator data sits before the BAT so that a tool which takes the disk
    /// for a plain dynamic one and appends blocks after the BAT cannot
    /// overwrite it. Returns the bytes from offset 0 on (the footer copy
    /// left zero) and the trailing footer's offset.
    pub fn initial_layout(
        size: u64,
        block_size: u32,
        parent: Option<&ParentRecord>,
    ) -> (Vec<u8>, u64) {
        let entries = size.div_ceil(block_size as u64) as u32;
        let mut at = 3 * SECTOR;
        let mut header = DynamicHeader::new(0, entries, block_size);
        let mut payloads = Vec::new();
        if let Some(p) = parent {
            header.parent_uuid = p.uuid;
            header.parent_timestamp = p.timestamp;
            header.parent_name = p.name;
            for (slot, (code, data)) in header.locators.iter_mut().zip(&p.locators) {
                let space = align_up(data.len() as u64, SECTOR).max(SECTOR);
                *slot = ParentLocator {
                    code: *code,
                    // Bytes, as Hyper-V writes it (the specification says sectors).
                    data_space: space as u32,
                    data_length: data.len() as u32,
                    data_offset: at,
                };
                payloads.push((at, data));
                at += space;
            }
        }
        header.table_offset = at;
        let bat_bytes = align_up(entries as u64 * 4, SECTOR);
        let mut meta = vec![0u8; (at + bat_bytes) as usize];
        meta[512..1536].copy_from_slice(&header.encode());
        for (offset, data) in payloads {
            meta[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        }
        meta[at as usize..].fill(0xff);
        (meta, at + bat_bytes)
    }

    /// The footer kept as the file's last sector.
    pub fn footer(&self) -> &[u8; FOOTER_SIZE] {
        &self.footer
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The VHD file.
    pub fn file(&self) -> &ImageFile {
        &self.file
    }

    /// Whether block `block`'s bitmap can be read: true but for a block a
    /// [`Walk::Salvage`] open found wrong, unless only its end is cut off
    /// by the end of the file (its bitmap in the file).
    fn bitmap_readable(&mut self, block: u64) -> Result<bool> {
        let Some(f) = self.unreadable.get(&block) else {
            return Ok(true);
        };
        if !f.past_end {
            return Ok(false);
        }
        let end = self.file_end;
        let bitmap = self.bitmap_size;
        Ok(self.block_host(block)?.is_some_and(|h| h + bitmap <= end))
    }

    /// The host offset of block `block`'s bitmap, if it is allocated.
    fn block_host(&mut self, block: u64) -> Result<Option<u64>> {
        let entry = self.bat.get(&self.file, block)?;
        if entry == UNALLOCATED {
            return Ok(None);
        }
        // Every entry was checked against the file at open; new ones are
        // placed by `allocate`.
        Ok(Some(entry as u64 * SECTOR))
    }

    fn bitmap(&mut self, block: u64, host: u64) -> Result<&mut Bitmap> {
        if !self.bitmaps.contains_key(&block) {
            let mut bits = vec![0u8; self.bitmap_size as usize];
            self.file.read_exact_at(&mut bits, host)?;
            let bitmap = if all_set(&bits, self.block_size / SECTOR) {
                Bitmap::Full
            } else {
                Bitmap::Bits(bits.into_boxed_slice())
            };
            self.bitmaps.insert(block, bitmap);
        }
        Ok(self.bitmaps.get_mut(&block).unwrap())
    }

    /// What the sectors starting at `offset` are, up to `len` bytes.
    pub fn status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let block = offset / self.block_size;
        let in_block = offset % self.block_size;
        if !self.unreadable.is_empty() && !self.bitmap_readable(block)? {
            // Data whose place cannot be trusted: reading it fails.
            let span = (self.block_size - in_block).min(len);
            let data = Source::Data {
                host: None,
                compressed: false,
            };
            return Ok(Mapping::new(span, data));
        }
        let Some(host) = self.block_host(block)? else {
            // Join the following unallocated blocks.
            let mut run = (self.block_size - in_block).min(len);
            while run < len {
                let next = (offset + run) / self.block_size;
                if self.bat.get(&self.file, next)? != UNALLOCATED {
                    break;
                }
                run = (run + self.block_size).min(len);
            }
            return Ok(Mapping::new(run, self.unused()));
        };
        let data_host = host + self.bitmap_size + in_block;
        let span = (self.block_size - in_block).min(len);
        let bitmap = self.bitmap(block, host)?;
        if let Bitmap::Full = bitmap {
            let host = Host {
                file: self.file.name().clone(),
                offset: data_host,
            };
            return Ok(Mapping::new(
                span,
                Source::Data {
                    host: Some(host),
                    compressed: false,
                },
            ));
        }
        let first = in_block / SECTOR;
        // The run starts `lead` bytes into its first sector.
        let lead = in_block % SECTOR;
        let set = bitmap.get(first);
        let mut sectors = 1;
        while sectors * SECTOR - lead < span && bitmap.get(first + sectors) == set {
            sectors += 1;
        }
        let run = (sectors * SECTOR - lead).min(span);
        let kind = if set {
            Source::Data {
                host: Some(Host {
                    file: self.file.name().clone(),
                    offset: data_host,
                }),
                compressed: false,
            }
        } else {
            self.unused()
        };
        Ok(Mapping::new(run, kind))
    }

    /// What sectors this disk holds nothing for are: the parent's, for a
    /// differencing disk; zeros, for a dynamic one.
    fn unused(&self) -> Source {
        if self.differencing {
            Source::Unallocated
        } else {
            Source::Zero {
                host: None,
                data: false,
            }
        }
    }

    /// Read `buf` from `offset`. Sectors this disk does not hold are left
    /// to `fill` (zeros, or the parent's data).
    pub fn read(
        &mut self,
        buf: &mut [u8],
        offset: u64,
        fill: &mut dyn FnMut(&mut [u8], u64) -> Result<()>,
    ) -> Result<()> {
        let mut runs = Runs::new();
        for p in units(offset, buf.len(), self.block_size) {
            let at = offset + p.range.start as u64;
            let Some(host) = self.block_host(p.index)? else {
                fill(&mut buf[p.range], at)?;
                continue;
            };
            let data = host + self.bitmap_size + p.within;
            // A block cut short by the end of the file (salvaging): what of
            // its data lies in the file reads; the rest fails.
            // (Only a salvaging open has such blocks: no work otherwise.)
            let readable = self.unreadable.is_empty() || self.bitmap_readable(p.index)?;
            let cut = match self.unreadable.get(&p.index) {
                None => None,
                Some(f) if readable => Some((self.file_end, f.why.clone())),
                Some(f) => {
                    let first = p.index * self.block_size;
                    let whole = first..first + self.block_size;
                    return Err(Error::unreadable(f.why.clone(), whole));
                }
            };
            let in_file = |from: u64, len: usize| -> Result<()> {
                match &cut {
                    Some((end, why)) if from + len as u64 > *end => {
                        Err(Error::invalid(why.clone()))
                    }
                    _ => Ok(()),
                }
            };
            let sectors = self.block_size / SECTOR;
            let bitmap = self.bitmap(p.index, host)?;
            if let Bitmap::Full = bitmap {
                in_file(data, p.len())?;
                runs.push(data, p.range);
                continue;
            }
            // Sector by sector (the runs join alike neighbours).
            for s in units(at, p.len(), SECTOR) {
                let range = p.range.start + s.range.start..p.range.start + s.range.end;
                if bitmap.get(s.index % sectors) {
                    in_file(data + s.range.start as u64, s.len())?;
                    runs.push(data + s.range.start as u64, range);
                } else {
                    fill(&mut buf[range], at + s.range.start as u64)?;
                }
            }
        }
        runs.read(&self.file, buf)
    }

    /// Write whole sectors: `buf` at `offset`, both multiples of 512,
    /// allocating blocks as needed. `footer` is the footer to keep at the end
    /// of the file.
    pub fn write(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        debug_assert!(offset.is_multiple_of(SECTOR) && (buf.len() as u64).is_multiple_of(SECTOR));
        let mut runs = Runs::new();
        let mut marks: Vec<(u64, u64, u64)> = Vec::new();
        for p in units(offset, buf.len(), self.block_size) {
            let host = match self.block_host(p.index)? {
                Some(host) => host,
                None => self.allocate(p.index)?,
            };
            if !matches!(self.bitmap(p.index, host)?, Bitmap::Full) {
                let first = p.within / SECTOR;
                marks.push((p.index, first, first + p.len() as u64 / SECTOR));
            }
            runs.push(host + self.bitmap_size + p.within, p.range);
        }
        runs.write(&self.file, buf)?;
        // Bitmaps last: a sector is marked used only once its data is there.
        for (block, first, end) in marks {
            if let Some(host) = self.block_host(block)? {
                self.bitmap(block, host)?;
                if let Some(bitmap @ Bitmap::Bits(_)) = self.bitmaps.get_mut(&block) {
                    if bitmap.set_range(first, end) {
                        if let Bitmap::Bits(bits) = bitmap {
                            self.file.write_all_at(bits, host)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Place block `block` at the end of the file: the footer moves past it
    /// first, then the old footer is cleared and the bitmap written (all
    /// sectors used for a dynamic disk, none for a differencing one). The
    /// BAT entry reaches the disk at the next flush.
    fn allocate(&mut self, block: u64) -> Result<u64> {
        let (next, host, sector) = self.place_block()?;
        self.alloc = next;
        let new_footer = self.alloc.end();
        self.file.write_all_at(&self.footer, new_footer)?;
        let (bitmap, fill) = if self.differencing {
            (
                Bitmap::Bits(vec![0u8; self.bitmap_size as usize].into_boxed_slice()),
                0,
            )
        } else {
            (Bitmap::Full, 0xff)
        };
        let old = self.footer_at;
        if old <= host && host - old <= DATA_ALIGN {
            // One write from the old footer's place through the bitmap.
            let mut head = vec![0u8; (host - old + self.bitmap_size) as usize];
            head[(host - old) as usize..].fill(fill);
            self.file.write_all_at(&head, old)?;
        } else {
            if old + FOOTER_SIZE as u64 <= host {
                self.file.write_all_at(&[0u8; FOOTER_SIZE], old)?;
            }
            self.file
                .write_all_at(&vec![fill; self.bitmap_size as usize], host)?;
        }
        self.footer_at = new_footer;
        self.file_end = new_footer + FOOTER_SIZE as u64;
        self.bat.set(&self.file, block, sector)?;
        self.bitmaps.insert(block, bitmap);
        Ok(host)
    }

    /// Where the next block goes at the end of the file (its data 4 KiB
    /// aligned when the disk allows it), the allocator past it, and its
    /// BAT entry: refused before anything changes when the BAT's 32-bit
    /// sector numbers cannot reach it.
    fn place_block(&self) -> Result<(Allocator, u64, u32)> {
        let len = self.bitmap_size + self.block_size;
        let mut next = self.alloc.clone();
        let host = if self.align_data {
            next.take_with_lead(len, self.bitmap_size, DATA_ALIGN)
        } else {
            next.take(len, SECTOR)
        };
        let sector = u32::try_from(host / SECTOR)
            .ok()
            .filter(|&s| s != UNALLOCATED)
            .ok_or_else(|| {
                Error::unsupported(
                    self.file.path(),
                    "the file would grow past what the BAT's 32-bit sector numbers address",
                )
            })?;
        Ok((next, host, sector))
    }

    /// Write the changed BAT pages.
    pub fn flush(&mut self) -> Result<()> {
        self.bat.flush(&self.file)
    }

    /// True when the footer copy at offset 0 holds `footer`'s bytes (a
    /// change stopped between the trailing footer and the copy leaves it
    /// behind).
    pub fn head_copy_is(&self, footer: &[u8; FOOTER_SIZE]) -> Result<bool> {
        let mut head = [0u8; FOOTER_SIZE];
        self.file.read_exact_at(&mut head, 0)?;
        Ok(head == *footer)
    }

    /// Write `footer` as the disk's footer: the trailing copy, then the
    /// copy at offset 0 (a crash in between leaves the trailing one, which
    /// is the one vimg trusts, new).
    pub fn set_footer(&mut self, footer: &Footer) -> Result<()> {
        let bytes = footer.encode();
        self.file.write_all_at(&bytes, self.footer_at)?;
        self.file.write_all_at(&bytes, 0)?;
        self.footer = bytes;
        self.differencing = footer.disk_type == DiskType::Differencing;
        Ok(())
    }

    /// Record `parent` in the dynamic header (its UUID, time stamp and
    /// name) and in the Windows locators, each rewritten within the space
    /// it has; other locators are cleared, as they name the old parent.
    /// `None` clears all of it. Locator data is written before the header
    /// that points at it.
    pub fn set_parent(&mut self, parent: Option<&ParentRecord>) -> Result<()> {
        let mut header = self.header.clone();
        let mut payloads = Vec::new();
        match parent {
            None => {
                header.parent_uuid = [0; 16];
                header.parent_timestamp = 0;
                header.parent_name = [0; 512];
                header.locators = [ParentLocator::default(); 8];
            }
            Some(p) => {
                header.parent_uuid = p.uuid;
                header.parent_timestamp = p.timestamp;
                header.parent_name = p.name;
                let mut written = 0;
                for slot in header.locators.iter_mut() {
                    let Some((_, data)) = p.locators.iter().find(|(code, _)| *code == slot.code)
                    else {
                        *slot = ParentLocator::default();
                        continue;
                    };
                    // The space open claimed for this locator, and no more.
                    let room = align_up(slot.data_length as u64, SECTOR);
                    let inside = slot
                        .data_offset
                        .checked_add(room)
                        .is_some_and(|end| slot.data_offset >= SECTOR && end <= self.footer_at);
                    if data.len() as u64 > room || !inside {
                        return Err(Error::unsupported(
                            self.file.path(),
                            format!(
                                "the new parent's {} locator needs {} bytes; its space holds {room}",
                                String::from_utf8_lossy(&slot.code),
                                data.len()
                            ),
                        ));
                    }
                    let mut bytes = data.clone();
                    bytes.resize(room as usize, 0);
                    payloads.push((slot.data_offset, bytes));
                    slot.data_length = data.len() as u32;
                    written += 1;
                }
                if written == 0 {
                    return Err(Error::unsupported(
                        self.file.path(),
                        "this differencing disk has no Windows parent locator (W2ru, W2ku) to record a new parent in",
                    ));
                }
            }
        }
        for (at, bytes) in payloads {
            self.file.write_all_at(&bytes, at)?;
        }
        self.file
            .write_all_at(&header.encode(), self.header_offset)?;
        self.header = header;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_of_small_blocks_use_part_of_a_byte() {
        // 1 KiB blocks: two sectors, the top two bits.
        assert!(all_set(&[0xc0], 2));
        assert!(!all_set(&[0x80], 2));
        assert!(all_set(&[0xff, 0xff], 16));
        assert!(!all_set(&[0xff, 0xfe], 16));
        assert!(all_set(&[0xff, 0xe0], 11));
    }

    #[test]
    fn padding_is_dropped_where_it_would_outgrow_the_bat() {
        let entries = |size: u64, block: u64| size.div_ceil(block);
        let disk = 2040u64 << 30;
        // 2 MiB blocks: 4 KiB of padding each still fits below 2 TiB.
        assert!(can_align(1 << 20, entries(disk, 2 << 20), 512, 2 << 20));
        // 512 KiB blocks: the padding would reach past 2 TiB.
        assert!(!can_align(
            1 << 20,
            entries(disk, 512 << 10),
            512,
            512 << 10
        ));
    }

    use crate::image::check::testing::{check_file, patch};
    use crate::image::check::Severity;
    use crate::image::factory::{create, open};
    use crate::image::Format;
    use crate::io::Access;
    use crate::options::Options;
    use byteorder::{BigEndian, ByteOrder};
    use std::path::PathBuf;

    const BLOCK: u64 = 512 << 10;

    /// A 4 MiB dynamic VHD with 512 KiB blocks holding blocks `blocks`,
    /// and where its BAT is.
    fn dynamic(dir: &Path, blocks: &[u64]) -> (PathBuf, u64) {
        let path = dir.join("d.vhd");
        let mut opts = Options::parse(["block_size=512K"]).unwrap();
        let mut image = create(&path, Format::Vhd, 4 << 20, &mut opts, None).unwrap();
        for &b in blocks {
            image.write_at(&vec![b as u8 + 1; 4096], b * BLOCK).unwrap();
        }
        image.flush().unwrap();
        drop(image);
        let bytes = std::fs::read(&path).unwrap();
        let header = DynamicHeader::parse(&bytes[512..1536]).unwrap();
        (path, header.table_offset)
    }

    fn bat(path: &Path, at: u64, block: u64) -> u32 {
        let bytes = std::fs::read(path).unwrap();
        BigEndian::read_u32(&bytes[(at + block * 4) as usize..])
    }

    fn set_bat(path: &Path, at: u64, index: u64, value: u32) {
        patch(path, at + index * 4, &value.to_be_bytes());
    }

    #[test]
    fn a_clean_disk_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = dynamic(dir.path(), &[0, 3, 7]);
        assert!(check_file(&path).findings.is_empty());
    }

    #[test]
    fn every_fault_is_reported_where_open_stops_at_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, at) = dynamic(dir.path(), &[0, 1, 2, 3]);
        let len = std::fs::metadata(&path).unwrap().len();
        // Block 1 past the end, block 3 on block 2, block 0 on the BAT.
        set_bat(&path, at, 1, (len / SECTOR + 8) as u32);
        set_bat(&path, at, 3, bat(&path, at, 2));
        set_bat(&path, at, 0, (at / SECTOR) as u32);
        assert!(open(&path, None, Access::Read).is_err());
        let report = check_file(&path);
        let corrupt: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Corruption)
            .collect();
        let messages: Vec<_> = corrupt.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].starts_with("block 1 at byte") && messages[0].contains("past the end"));
        assert!(messages[1].starts_with("block 0 at byte") && messages[1].contains("overlaps"));
        assert!(messages[2].starts_with("blocks 2 and 3 overlap"));
        let offsets: Vec<_> = corrupt.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [1, 0, 3].map(|b| Some(at + b * 4)));
        // The space of blocks 0 and 1 (back to back) and of block 3: leaks.
        let leaks: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Leak)
            .map(|f| &f.message)
            .collect();
        assert_eq!(leaks.len(), 2, "{leaks:#?}");
    }

    #[test]
    fn a_bat_past_the_end_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = dynamic(dir.path(), &[0]);
        let mut bytes = std::fs::read(&path).unwrap();
        let mut header = DynamicHeader::parse(&bytes[512..1536]).unwrap();
        header.table_offset = bytes.len() as u64;
        bytes[512..1536].copy_from_slice(&header.encode());
        std::fs::write(&path, &bytes).unwrap();
        assert!(open(&path, None, Access::Read).is_err());
        let report = check_file(&path);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Corruption
                    && f.message.contains("the BAT")
                    && f.message.contains("past the end")),
            "{:#?}",
            report.findings
        );
    }
}
