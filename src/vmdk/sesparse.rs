//! An ESXi seSparse extent (VMFS 6 snapshot deltas), read only, as qemu
//! reads it: a grain directory of u64 entries, each 0 (no table) or
//! `0x10000000_iiiiiiii` (grain table `i` in the grain tables region); grain
//! tables of 4096 u64 entries, each covering one 4 KiB grain. A grain table
//! entry's top nibble says what the grain is: 0 unallocated (the parent's
//! data; the rest must be 0), 1 SCSI-unmapped and 2 zero (both read as
//! zeros, not the parent's data), 3 allocated: the grain's index in the
//! grains region is bits 48-59 of the entry, plus bits 0-47 shifted up by
//! 12. Every table and grain is checked to lie within the file.

mod header;

use std::path::Path;
use std::sync::Arc;

use byteorder::{ByteOrder, LittleEndian};

use self::header::{field, ConstHeader, HeaderError, GRAIN_SECTORS, GT_SECTORS, HEADER_SIZE};
use crate::alloc::{units, Runs};
use crate::error::{Error, Result};
use crate::image::{Host, Mapping, Source};
use crate::io::{ImageFile, SECTOR};

/// Grain size in bytes.
const GRAIN: u64 = GRAIN_SECTORS * SECTOR;
/// Grain table entries per table.
const GT_ENTRIES: u64 = GT_SECTORS * SECTOR / 8;
/// Bytes one grain table covers (16 MiB).
const GT_COVERS: u64 = GT_ENTRIES * GRAIN;
/// Largest disk read: 64 TiB, the most a seSparse extent holds (bounds the
/// grain directory to 4 Mi entries, and those must also be in the file).
const MAX_CAPACITY_SECTORS: u64 = 1 << 37;
/// Grain tables kept in memory.
const CACHED_TABLES: usize = 16;

/// What a grain table entry says of its grain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grain {
    Unallocated,
    Zero,
    At(u64),
}

/// An open seSparse extent.
pub struct SeSparseExtent {
    file: Arc<ImageFile>,
    header: ConstHeader,
    /// Capacity in bytes.
    capacity: u64,
    /// The file's length when opened.
    len: u64,
    /// The directory entries that cover the capacity.
    gd: Vec<u64>,
    /// Recently read grain tables: (directory index, entries).
    tables: Vec<(u64, Vec<u64>)>,
}

/// Something to fill ranges this extent does not hold (extent-relative).
pub type Fill<'a> = &'a mut dyn FnMut(&mut [u8], u64) -> Result<()>;

impl SeSparseExtent {
    /// Open the extent in `file`, checking its headers and directory.
    pub fn open(file: Arc<ImageFile>) -> Result<SeSparseExtent> {
        let path = file.path().to_path_buf();
        let len = file.length()?;
        let corrupt = |structure, at, detail: String| Error::corrupt(&path, structure, at, detail);
        if len < HEADER_SIZE as u64 {
            return Err(corrupt(
                "VMDK seSparse const header",
                0,
                format!("the file is {len} bytes, too short for the 512-byte header"),
            ));
        }
        let mut buf = [0u8; HEADER_SIZE];
        file.read_exact_at(&mut buf, 0)?;
        let h = ConstHeader::parse(&buf)
            .map_err(|e| header_error(&path, "VMDK seSparse const header", 0, e))?;
        if h.capacity > MAX_CAPACITY_SECTORS {
            return Err(Error::unsupported(
                &path,
                format!(
                    "a seSparse capacity of {} sectors is more than the 64 TiB vimg reads",
                    h.capacity
                ),
            ));
        }
        // The volatile header must be in the file.
        let volatile = h
            .volatile_offset
            .checked_mul(SECTOR)
            .filter(|at| {
                at.checked_add(HEADER_SIZE as u64)
                    .is_some_and(|end| end <= len)
            })
            .ok_or_else(|| {
                corrupt(
                    "VMDK seSparse const header",
                    field::VOLATILE_OFFSET,
                    format!(
                        "the volatile header at sector {} lies past the end of the {len}-byte file",
                        h.volatile_offset
                    ),
                )
            })?;
        file.read_exact_at(&mut buf, volatile)?;
        header::check_volatile(&buf)
            .map_err(|e| header_error(&path, "VMDK seSparse volatile header", volatile, e))?;
        // The directory: only the entries the capacity needs are read, and
        // they must be in the file (so the allocation is bounded by both).
        let capacity = h.capacity * SECTOR;
        let needed = capacity.div_ceil(GT_COVERS);
        let room = h.gd_size.saturating_mul(SECTOR / 8);
        if room < needed {
            return Err(corrupt(
                "VMDK seSparse const header",
                field::GD_SIZE,
                format!(
                    "a grain directory of {} sectors ({room} entries) cannot cover {} sectors (needs {needed} entries)",
                    h.gd_size, h.capacity
                ),
            ));
        }
        let gd_at = h
            .gd_offset
            .checked_mul(SECTOR)
            .filter(|at| at.checked_add(needed * 8).is_some_and(|end| end <= len))
            .ok_or_else(|| {
                corrupt(
                    "VMDK seSparse const header",
                    field::GD_OFFSET,
                    format!(
                        "the grain directory ({needed} entries at sector {}) runs past the end of the {len}-byte file",
                        h.gd_offset
                    ),
                )
            })?;
        let mut raw = vec![0u8; (needed * 8) as usize];
        file.read_exact_at(&mut raw, gd_at)?;
        let gd = raw.chunks_exact(8).map(LittleEndian::read_u64).collect();
        Ok(SeSparseExtent {
            file,
            header: h,
            capacity,
            len,
            gd,
            tables: Vec::new(),
        })
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Grain size in bytes.
    pub fn grain_size(&self) -> u64 {
        GRAIN
    }

    pub fn file(&self) -> &Arc<ImageFile> {
        &self.file
    }

    /// seSparse extents are read only (as in qemu).
    pub fn check_writable(&self) -> Result<()> {
        Err(Error::unsupported(
            self.file.path(),
            "writing into a seSparse extent is not supported (vimg, like qemu, only reads them); convert the chain first",
        ))
    }

    fn corrupt(&self, structure: &'static str, at: u64, detail: String) -> Error {
        Error::corrupt(self.file.path(), structure, at, detail)
    }

    /// The grain table for directory entry `d`, or None when it has none.
    fn table(&mut self, d: u64) -> Result<Option<&[u64]>> {
        if let Some(i) = self.tables.iter().position(|t| t.0 == d) {
            // Most recently used last.
            let t = self.tables.remove(i);
            self.tables.push(t);
            return Ok(self.tables.last().map(|t| t.1.as_slice()));
        }
        let entry = self.gd[d as usize];
        if entry == 0 {
            return Ok(None);
        }
        let gd_at = self.header.gd_offset * SECTOR + d * 8;
        if entry >> 32 != 0x1000_0000 {
            return Err(self.corrupt(
                "VMDK seSparse grain directory",
                gd_at,
                format!("entry {d} is {entry:#018x}, not 0 or 0x10000000 and a grain table number"),
            ));
        }
        let number = entry & 0xffff_ffff;
        // As qemu: the table's sector must fit in 32 bits.
        let sector = self
            .header
            .gt_offset
            .checked_add(number * GT_SECTORS)
            .filter(|&s| s <= u32::MAX as u64);
        let bytes = GT_ENTRIES * 8;
        let Some(at) = sector
            .map(|s| s * SECTOR)
            .filter(|at| at + bytes <= self.len)
        else {
            return Err(self.corrupt(
                "VMDK seSparse grain directory",
                gd_at,
                format!(
                    "entry {d} names grain table {number}, which lies past the end of the {}-byte file",
                    self.len
                ),
            ));
        };
        let mut raw = vec![0u8; bytes as usize];
        self.file.read_exact_at(&mut raw, at)?;
        let gt = raw.chunks_exact(8).map(LittleEndian::read_u64).collect();
        if self.tables.len() == CACHED_TABLES {
            self.tables.remove(0);
        }
        self.tables.push((d, gt));
        Ok(self.tables.last().map(|t| t.1.as_slice()))
    }

    /// Where grain `index` is.
    fn lookup(&mut self, index: u64) -> Result<Grain> {
        let d = index / GT_ENTRIES;
        let i = index % GT_ENTRIES;
        let gte = match self.table(d)? {
            Some(gt) => gt[i as usize],
            None => return Ok(Grain::Unallocated),
        };
        let gt_at = self.table_at(d) + i * 8;
        let grain = match gte >> 60 {
            0 if gte == 0 => Grain::Unallocated,
            1 | 2 => Grain::Zero,
            3 => {
                let cluster = ((gte >> 48) & 0xfff) | ((gte & 0x0000_ffff_ffff_ffff) << 12);
                let at = cluster
                    .checked_mul(GRAIN_SECTORS)
                    .and_then(|s| s.checked_add(self.header.grains_offset))
                    .and_then(|s| s.checked_mul(SECTOR))
                    .filter(|at| at.checked_add(GRAIN).is_some_and(|end| end <= self.len));
                match at {
                    Some(at) => Grain::At(at),
                    None => {
                        return Err(self.corrupt(
                            "VMDK seSparse grain table",
                            gt_at,
                            format!(
                                "the entry for grain {index} names grain {cluster} of the grains region, which lies past the end of the {}-byte file (truncated?)",
                                self.len
                            ),
                        ))
                    }
                }
            }
            _ => {
                return Err(self.corrupt(
                    "VMDK seSparse grain table",
                    gt_at,
                    format!("the entry for grain {index} is {gte:#018x}, not a known kind"),
                ))
            }
        };
        Ok(grain)
    }

    /// The byte offset of directory entry `d`'s grain table (already
    /// checked when it was read).
    fn table_at(&self, d: u64) -> u64 {
        let number = self.gd[d as usize] & 0xffff_ffff;
        (self.header.gt_offset + number * GT_SECTORS) * SECTOR
    }

    /// Read `buf` at extent offset `offset`; grains this extent does not
    /// hold come from `fill`.
    pub fn read(&mut self, buf: &mut [u8], offset: u64, fill: Fill) -> Result<()> {
        let mut runs = Runs::new();
        for p in units(offset, buf.len(), GRAIN) {
            match self.lookup(p.index)? {
                Grain::Unallocated => {
                    fill(&mut buf[p.range.clone()], offset + p.range.start as u64)?
                }
                Grain::Zero => buf[p.range].fill(0),
                Grain::At(host) => runs.push(host + p.within, p.range),
            }
        }
        runs.read(&self.file, buf)
    }

    /// What the extent holds from `offset`, for up to `len` bytes.
    pub fn status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let first = self.lookup(offset / GRAIN)?;
        let in_grain = offset % GRAIN;
        let mut run = (GRAIN - in_grain).min(len);
        while run < len {
            let index = (offset + run) / GRAIN;
            // A directory entry without a table is skipped in one step.
            if first == Grain::Unallocated
                && index.is_multiple_of(GT_ENTRIES)
                && self.gd[(index / GT_ENTRIES) as usize] == 0
            {
                run = (run + GT_COVERS).min(len);
                continue;
            }
            let next = self.lookup(index)?;
            let alike = match (first, next) {
                (Grain::At(a), Grain::At(b)) => a + in_grain + run == b,
                (a, b) => a == b,
            };
            if !alike {
                break;
            }
            run = (run + GRAIN).min(len);
        }
        let source = match first {
            Grain::Unallocated => Source::Unallocated,
            Grain::Zero => Source::Zero {
                host: None,
                data: false,
            },
            Grain::At(h) => Source::Data {
                host: Some(Host {
                    file: self.file.name().clone(),
                    offset: h + in_grain,
                }),
                compressed: false,
            },
        };
        Ok(Mapping::new(run, source))
    }
}

/// A header refusal as an error naming the file and the field.
fn header_error(path: &Path, structure: &'static str, base: u64, e: HeaderError) -> Error {
    match e {
        HeaderError::Corrupt(f) => Error::corrupt_field(path, structure, base, f),
        HeaderError::Unsupported(f) => Error::unsupported(
            path,
            format!("{structure} at byte {}: {}", base + f.at, f.detail),
        ),
    }
}
