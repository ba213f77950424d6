//! A hosted sparse extent: grain directory → grain tables → grains, with
//! the redundant copies, zeroed-grain entries and deflate-compressed grains
//! (streamOptimized). Grains are appended at the end of the file; grain
//! tables and directories are written back in batches at flush.

use std::path::Path;
use std::sync::Arc;

use byteorder::{ByteOrder, LittleEndian};

use super::cowd::{CowdHeader, COWD_HEADER_SIZE};
use super::header::{SparseHeader, GD_AT_END, HEADER_SIZE};
use crate::alloc::{Allocator, Endian, Homes, Runs, Table};
use crate::error::{Error, Result};
use crate::image::{Host, Mapping, Source};
use crate::io::{align_up, ImageFile, SECTOR};

/// Largest disk vimg opens: 64 TiB (bounds the grain directory).
const MAX_CAPACITY_SECTORS: u64 = 1 << 37;
/// Grain table entry meaning "zeros" when the header allows it.
const GTE_ZEROED: u32 = 1;
/// Directory entries per directory page.
const GD_PAGE: usize = 128;
/// The furthest the header's overhead may put the first grain (1 GiB).
const MAX_OVERHEAD: u64 = 1 << 30;
/// The most grain tables one extent may have: 2 TiB in 64 KiB grains
/// needs 65,536; this allows 8 TiB, or 1 TiB in 8 KiB grains.
const MAX_GD_ENTRIES: u64 = 1 << 18;

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
    /// Space was allocated since open.
    grew: bool,
}

impl SparseExtent {
    /// Open the sparse extent in `file`, validating its header, directories
    /// and tables against the file's length and each other.
    /// An extent opened for `writable` use also has its grains checked
    /// against one another (aliased grains would make one write change two
    /// places; reading them is harmless).
    pub fn open(file: Arc<ImageFile>, writable: bool) -> Result<SparseExtent> {
        let name = file.path();
        let len = file.length()?;
        let (header, cowd) = read_header(&file, len)?;
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
        let metadata = check_metadata(name, &header, &homes, gt_bytes, len)?;
        // New space goes past everything: the file's end, the header's
        // overhead and every table.
        let used = metadata.last().map_or(0, |&(_, end)| end);
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
            grew: false,
            header,
            file,
        };
        extent.check_grains(len, &metadata, writable)?;
        Ok(extent)
    }

    /// Check that every grain the tables point at lies inside the file (so
    /// a truncated or damaged extent is refused rather than read as zeros)
    /// and clear of the `metadata` spans; for a `writable` extent also
    /// clear of one another. Empty grain tables are skipped without reading.
    fn check_grains(&mut self, len: u64, metadata: &[(u64, u64)], writable: bool) -> Result<()> {
        let grains = self.capacity.div_ceil(self.grain);
        let compressed = self.header.compressed();
        let need = if compressed { 12 } else { self.grain };
        let mut hosts = Vec::new();
        for p in 0..self.gd.len() as usize {
            if self.gts.page_is_zero(&self.file, p)? {
                continue;
            }
            let first = p as u64 * self.gt_entries;
            for index in first..(first + self.gt_entries).min(grains) {
                let host = match self.lookup(index)? {
                    Grain::At(h) | Grain::Compressed(h) => h,
                    Grain::Unallocated | Grain::Zero => continue,
                };
                let end = host.saturating_add(need);
                let k = metadata.partition_point(|&(start, _)| start < end);
                let why = if end > len {
                    format!("lies past the end of the {len}-byte file (truncated?)")
                } else if k > 0 && metadata[k - 1].1 > host {
                    "lies on the extent's header, descriptor, directories or tables".into()
                } else {
                    if writable && !compressed {
                        hosts.push((host, index));
                    }
                    continue;
                };
                return Err(Error::corrupt(
                    self.file.path(),
                    "VMDK grain table",
                    self.gts.home(p) + (index - first) * 4,
                    format!("grain {index} at byte {host} {why}"),
                ));
            }
        }
        hosts.sort_unstable();
        for pair in hosts.windows(2) {
            let ((a, first), (b, second)) = (pair[0], pair[1]);
            if a + self.grain > b {
                return Err(Error::corrupt(
                    self.file.path(),
                    "VMDK grain table",
                    self.gts.home((second / self.gt_entries) as usize)
                        + (second % self.gt_entries) * 4,
                    format!("grains {first} and {second} overlap at byte {b}"),
                ));
            }
        }
        Ok(())
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
        Ok(match gte {
            0 => Grain::Unallocated,
            GTE_ZEROED if self.header.zeroed_grain() => Grain::Zero,
            s if self.header.compressed() => Grain::Compressed(s as u64 * SECTOR),
            s => Grain::At(s as u64 * SECTOR),
        })
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
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = at / self.grain;
            let in_grain = at % self.grain;
            let len = ((self.grain - in_grain) as usize).min(buf.len() - done);
            let piece = done..done + len;
            match self.lookup(index)? {
                Grain::Unallocated => fill(&mut buf[piece], at)?,
                Grain::Zero => buf[piece].fill(0),
                Grain::At(host) => runs.push(host + in_grain, piece),
                Grain::Compressed(host) => {
                    let data = self.inflate(index, host)?;
                    buf[piece].copy_from_slice(&data[in_grain as usize..in_grain as usize + len]);
                }
            }
            done += len;
        }
        runs.read_zero_filled(&self.file, buf)
    }

    /// Fail unless this extent takes writes (COWD and compressed extents
    /// do not).
    pub fn check_writable(&self) -> Result<()> {
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
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = at / self.grain;
            let in_grain = at % self.grain;
            let len = ((self.grain - in_grain) as usize).min(buf.len() - done);
            let host = match self.lookup(index)? {
                Grain::At(host) => host,
                old => {
                    let host = self.allocate(index)?;
                    let partial = len as u64 != self.grain;
                    if let (true, Grain::Unallocated, Some(fill)) = (partial, old, fill.as_mut()) {
                        let mut grain = vec![0u8; self.grain as usize];
                        fill(&mut grain, index * self.grain)?;
                        grain[in_grain as usize..in_grain as usize + len]
                            .copy_from_slice(&buf[done..done + len]);
                        whole_grains.push((host, grain));
                        done += len;
                        continue;
                    }
                    host
                }
            };
            runs.push(host + in_grain, done..done + len);
            done += len;
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

/// The extent's header: KDMV, or COWD turned into the same terms (the
/// footer's copy when the directory is at the end). Says whether it is COWD.
fn read_header(file: &ImageFile, len: u64) -> Result<(SparseHeader, bool)> {
    let path = file.path();
    let mut magic = [0u8; 4];
    file.read_zero_filled(&mut magic, 0)?;
    if &magic == b"COWD" {
        let mut buf = [0u8; COWD_HEADER_SIZE];
        file.read_exact_at(&mut buf, 0)?;
        let header = CowdHeader::parse(&buf)
            .map_err(|e| Error::corrupt_field(path, "VMDK3 (COWD) header", 0, e))?;
        return Ok((header.as_sparse(), true));
    }
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, 0)?;
    let mut header = SparseHeader::parse(&buf)
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
        header = read_footer_header(file, len, header)?;
    }
    Ok((header, false))
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

/// Check the extent's metadata: the header, embedded descriptor, both
/// directories and every grain table lie inside the file and clear of one
/// another (a table two directory entries share, one lying on a directory,
/// or a descriptor space over a table would make a write through one
/// corrupt the other). Returns the spans, sorted, as (start, end).
fn check_metadata(
    path: &Path,
    h: &SparseHeader,
    homes: &[Homes],
    gt_bytes: u64,
    len: u64,
) -> Result<Vec<(u64, u64)>> {
    let at = |sectors: u64| sectors.saturating_mul(SECTOR);
    let dir_bytes = align_up(homes.len() as u64 * 4, SECTOR);
    let mut spans: Vec<(u64, u64, String)> = vec![(0, SECTOR, "the header".into())];
    let mut add = |start: u64, bytes: u64, what: &str| {
        spans.push((start, start.saturating_add(bytes), what.to_string()))
    };
    if h.descriptor_offset != 0 && h.descriptor_size != 0 {
        add(
            at(h.descriptor_offset),
            at(h.descriptor_size),
            "the embedded descriptor",
        );
    }
    add(at(h.gd_offset), dir_bytes, "the grain directory");
    if h.has_rgd() {
        add(at(h.rgd_offset), dir_bytes, "the redundant grain directory");
    }
    for (i, home) in homes.iter().enumerate() {
        for &t in home.iter().filter(|&&t| t != 0) {
            if t.saturating_add(gt_bytes) > len {
                return Err(Error::corrupt(
                    path,
                    "VMDK grain directory",
                    at(h.gd_offset) + i as u64 * 4,
                    format!("entry {i} points at byte {t}, past the end of the file"),
                ));
            }
            add(t, gt_bytes, &format!("the grain table of entry {i}"));
        }
    }
    if let Some((start, _, what)) = spans.iter().find(|(_, end, _)| *end > len) {
        return Err(Error::corrupt(
            path,
            "VMDK sparse header",
            0,
            format!("{what} at byte {start} runs past the end of the {len}-byte file"),
        ));
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let ((_, a_end, a), (b, _, b_what)) = (&pair[0], &pair[1]);
        if a_end > b {
            return Err(Error::corrupt(
                path,
                "VMDK sparse extent",
                *b,
                format!("{a} and {b_what} overlap at byte {b}"),
            ));
        }
    }
    Ok(spans.into_iter().map(|(a, e, _)| (a, e)).collect())
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
    if footer.gd_offset == GD_AT_END
        || footer.capacity != header.capacity
        || footer.grain_size != header.grain_size
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
fn read_compressed(file: &ImageFile, host: u64, grain: u64, markers: bool) -> Result<Vec<u8>> {
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
    let got = libdeflater::Decompressor::new()
        .zlib_decompress(&raw[start..start + size], &mut out)
        .map_err(|e| corrupt(format!("cannot inflate: {e}")))?;
    out[got..].fill(0);
    Ok(out)
}
