//! Dynamic (and differencing) VHD data: the block allocation table, the
//! per-block sector bitmaps, and block allocation at the end of the file.
//!
//! A block on disk is its sector bitmap (one bit per sector, most significant
//! bit first, padded to a sector) followed by the block's data. New blocks
//! are placed as Windows places them, so that the data starts on a 4 KiB
//! boundary; the footer always stays the last 512 bytes of the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::dyn_header::{DynamicHeader, ParentLocator, HEADER_SIZE};
use super::footer::FOOTER_SIZE;
use crate::alloc::{Allocator, Endian, Runs, Table};
use crate::error::{Error, Result};
use crate::image::{Host, Kind, Mapping};
use crate::io::{align_up, ImageFile, SECTOR};

/// BAT value of a block with no place in the file.
pub const UNALLOCATED: u32 = 0xffff_ffff;
/// Where new block data is aligned to.
const DATA_ALIGN: u64 = 4096;
/// BAT entries per table page (one sector).
const BAT_PAGE: usize = 128;

/// Where the BAT entry of `block` is in the file.
fn header_offset_bat(header: &DynamicHeader, block: u64) -> u64 {
    header.table_offset + block * 4
}

/// What a new differencing disk records about its parent.
pub struct ParentRecord {
    pub uuid: [u8; 16],
    pub timestamp: u32,
    /// UTF-16BE, NUL padded.
    pub name: [u8; 512],
    /// Locator codes and payloads, in slot order.
    pub locators: Vec<([u8; 4], Vec<u8>)>,
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

/// The allocation state of a dynamic or differencing VHD.
pub struct Dynamic {
    pub header: DynamicHeader,
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
}

impl Dynamic {
    /// Load the BAT description for a disk of `size` bytes from `header`,
    /// checking it against the file's length.
    pub fn open(
        file: &ImageFile,
        header: DynamicHeader,
        header_offset: u64,
        size: u64,
        differencing: bool,
    ) -> Result<Dynamic> {
        let path = file.path();
        let file_len = file.length()?;
        let corrupt =
            |detail: String| Error::corrupt(path, "VHD dynamic header", header_offset, detail);
        let block_size = header.block_size as u64;
        let entries = header.max_table_entries as u64;
        if entries * block_size < size {
            return Err(corrupt(format!(
                "{entries} BAT entries of {block_size} bytes cannot hold a {size}-byte disk"
            )));
        }
        let bat_end = header
            .table_offset
            .checked_add(entries * 4)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                corrupt(format!(
                    "the BAT ({entries} entries at byte {}) runs past the end of the {file_len}-byte file",
                    header.table_offset
                ))
            })?;
        let header_range = header_offset..header_offset + HEADER_SIZE as u64;
        if header.table_offset < SECTOR
            || header_range.contains(&header.table_offset)
            || (header.table_offset..bat_end).contains(&header_offset)
        {
            return Err(corrupt(format!(
                "the BAT at byte {} overlaps the footer copy or the dynamic header",
                header.table_offset
            )));
        }
        let pages = entries.div_ceil(BAT_PAGE as u64);
        let homes = (0..pages)
            .map(|p| [header.table_offset + p * SECTOR, 0])
            .collect();
        let bat = Table::new(Endian::Big, BAT_PAGE, entries, homes);
        let bitmap_size = align_up(block_size / SECTOR / 8, SECTOR);
        let footer_at = file_len.saturating_sub(FOOTER_SIZE as u64).max(bat_end);
        let mut dynamic = Dynamic {
            header,
            bat,
            block_size,
            bitmap_size,
            alloc: Allocator::new(footer_at),
            footer_at,
            file_end: file_len,
            bitmaps: HashMap::new(),
            differencing,
        };
        // Every block must lie inside the file (as qemu-img also demands):
        // a truncated disk is refused, not read as zeros. Blocks must not
        // overlap the headers, the BAT or each other, or writing one would
        // destroy another. New blocks go past every existing one.
        let metadata = [
            (0, SECTOR),
            (header_offset, header_offset + HEADER_SIZE as u64),
            (dynamic.header.table_offset, bat_end),
        ];
        let block_len = bitmap_size + block_size;
        let mut blocks = Vec::new();
        for block in 0..entries {
            let entry = dynamic.bat.get(file, block)?;
            if entry == UNALLOCATED {
                continue;
            }
            let host = entry as u64 * SECTOR;
            let block_end = host + block_len;
            let bad = if block_end > file_len {
                Some(format!("ends at byte {block_end}, past the end of the {file_len}-byte file (truncated?)"))
            } else if metadata.iter().any(|&(a, b)| host < b && a < block_end) {
                Some("overlaps the footer copy, the dynamic header or the BAT".to_string())
            } else {
                None
            };
            if let Some(why) = bad {
                return Err(Error::corrupt(
                    path,
                    "VHD block allocation table",
                    header_offset_bat(&dynamic.header, block),
                    format!("block {block} at byte {host} {why}"),
                ));
            }
            blocks.push((host, block));
        }
        blocks.sort_unstable();
        for pair in blocks.windows(2) {
            let ((a, first), (b, second)) = (pair[0], pair[1]);
            if a + block_len > b {
                return Err(Error::corrupt(
                    path,
                    "VHD block allocation table",
                    header_offset_bat(&dynamic.header, second),
                    format!("blocks {first} and {second} overlap at byte {b}"),
                ));
            }
        }
        let end = blocks
            .last()
            .map_or(footer_at, |&(h, _)| footer_at.max(h + block_len));
        dynamic.alloc = Allocator::new(end);
        Ok(dynamic)
    }

    /// Lay out a new, empty disk: header at 512, then (differencing
    /// disks) the parent locators' data, then the BAT, then the footer.
    /// Locator data sits before the BAT so that a tool which takes the disk
    /// for a plain dynamic one and appends blocks after the BAT cannot
    /// overwrite it. Returns the header, the bytes from offset 0 on (the
    /// footer copy left zero) and the trailing footer's offset.
    pub fn initial_layout(
        size: u64,
        block_size: u32,
        parent: Option<&ParentRecord>,
    ) -> (DynamicHeader, Vec<u8>, u64) {
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
        (header, meta, at + bat_bytes)
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The host offset of block `block`'s bitmap, if it is allocated.
    fn block_host(&mut self, file: &ImageFile, block: u64) -> Result<Option<u64>> {
        let entry = self.bat.get(file, block)?;
        if entry == UNALLOCATED {
            return Ok(None);
        }
        let host = entry as u64 * SECTOR;
        let end = host + self.bitmap_size + self.block_size;
        if end > self.file_end.max(self.alloc.end()) {
            return Err(Error::corrupt(
                file.path(),
                "VHD block allocation table",
                self.header.table_offset + block * 4,
                format!(
                    "block {block} at byte {host} ends at byte {end}, past the end of the file"
                ),
            ));
        }
        Ok(Some(host))
    }

    fn bitmap(&mut self, file: &ImageFile, block: u64, host: u64) -> Result<&mut Bitmap> {
        if !self.bitmaps.contains_key(&block) {
            let used = (self.block_size / SECTOR / 8) as usize;
            let mut bits = vec![0u8; self.bitmap_size as usize];
            file.read_exact_at(&mut bits, host)?;
            let bitmap = if bits[..used].iter().all(|&b| b == 0xff) {
                Bitmap::Full
            } else {
                Bitmap::Bits(bits.into_boxed_slice())
            };
            self.bitmaps.insert(block, bitmap);
        }
        Ok(self.bitmaps.get_mut(&block).unwrap())
    }

    /// What the sectors starting at `offset` are, up to `len` bytes.
    pub fn status(
        &mut self,
        file: &ImageFile,
        name: &Arc<Path>,
        offset: u64,
        len: u64,
    ) -> Result<Mapping> {
        let block = offset / self.block_size;
        let in_block = offset % self.block_size;
        let Some(host) = self.block_host(file, block)? else {
            // Join the following unallocated blocks.
            let mut run = (self.block_size - in_block).min(len);
            while run < len {
                let next = (offset + run) / self.block_size;
                if self.bat.get(file, next)? != UNALLOCATED {
                    break;
                }
                run = (run + self.block_size).min(len);
            }
            return Ok(Mapping::new(run, self.unused()));
        };
        let data_host = host + self.bitmap_size + in_block;
        let span = (self.block_size - in_block).min(len);
        let bitmap = self.bitmap(file, block, host)?;
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
            Kind::Data {
                host: Some(Host {
                    file: name.clone(),
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
    fn unused(&self) -> Kind {
        if self.differencing {
            Kind::Unallocated
        } else {
            Kind::Zero {
                host: None,
                data: false,
            }
        }
    }

    /// Read `buf` from `offset`. Sectors this disk does not hold are left
    /// to `fill` (zeros, or the parent's data).
    pub fn read(
        &mut self,
        file: &ImageFile,
        buf: &mut [u8],
        offset: u64,
        fill: &mut dyn FnMut(&mut [u8], u64) -> Result<()>,
    ) -> Result<()> {
        let mut runs = Runs::new();
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let block = at / self.block_size;
            let in_block = at % self.block_size;
            let len = ((self.block_size - in_block) as usize).min(buf.len() - done);
            match self.block_host(file, block)? {
                None => fill(&mut buf[done..done + len], at)?,
                Some(host) => {
                    let data = host + self.bitmap_size + in_block;
                    let bitmap = self.bitmap(file, block, host)?;
                    if let Bitmap::Full = bitmap {
                        runs.push(data, done..done + len);
                    } else {
                        // Sector by sector, joining alike neighbours.
                        let mut pos = 0usize;
                        while pos < len {
                            let sector = (in_block + pos as u64) / SECTOR;
                            let piece = ((SECTOR - (in_block + pos as u64) % SECTOR) as usize)
                                .min(len - pos);
                            let range = done + pos..done + pos + piece;
                            if bitmap.get(sector) {
                                runs.push(data + pos as u64, range);
                            } else {
                                fill(&mut buf[range], at + pos as u64)?;
                            }
                            pos += piece;
                        }
                    }
                }
            }
            done += len;
        }
        runs.read(file, buf)
    }

    /// Write whole sectors: `buf` at `offset`, both multiples of 512,
    /// allocating blocks as needed. `footer` is the footer to keep at the end
    /// of the file.
    pub fn write(
        &mut self,
        file: &ImageFile,
        footer: &[u8; FOOTER_SIZE],
        buf: &[u8],
        offset: u64,
    ) -> Result<()> {
        debug_assert!(offset.is_multiple_of(SECTOR) && (buf.len() as u64).is_multiple_of(SECTOR));
        let mut runs = Runs::new();
        let mut marks: Vec<(u64, u64, u64)> = Vec::new();
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let block = at / self.block_size;
            let in_block = at % self.block_size;
            let len = ((self.block_size - in_block) as usize).min(buf.len() - done);
            let host = match self.block_host(file, block)? {
                Some(host) => host,
                None => self.allocate(file, footer, block)?,
            };
            if !matches!(self.bitmap(file, block, host)?, Bitmap::Full) {
                let first = in_block / SECTOR;
                marks.push((block, first, first + len as u64 / SECTOR));
            }
            runs.push(host + self.bitmap_size + in_block, done..done + len);
            done += len;
        }
        runs.write(file, buf)?;
        // Bitmaps last: a sector is marked used only once its data is there.
        for (block, first, end) in marks {
            if let Some(host) = self.block_host(file, block)? {
                let bitmap = self.bitmap(file, block, host)?;
                if bitmap.set_range(first, end) {
                    if let Bitmap::Bits(bits) = bitmap {
                        file.write_all_at(bits, host)?;
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
    fn allocate(
        &mut self,
        file: &ImageFile,
        footer: &[u8; FOOTER_SIZE],
        block: u64,
    ) -> Result<u64> {
        let host = self.alloc.take_with_lead(
            self.bitmap_size + self.block_size,
            self.bitmap_size,
            DATA_ALIGN,
        );
        let new_footer = self.alloc.end();
        file.write_all_at(footer, new_footer)?;
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
            file.write_all_at(&head, old)?;
        } else {
            if old + FOOTER_SIZE as u64 <= host {
                file.write_all_at(&[0u8; FOOTER_SIZE], old)?;
            }
            file.write_all_at(&vec![fill; self.bitmap_size as usize], host)?;
        }
        self.footer_at = new_footer;
        self.file_end = new_footer + FOOTER_SIZE as u64;
        self.bat.set(file, block, (host / SECTOR) as u32)?;
        self.bitmaps.insert(block, bitmap);
        Ok(host)
    }

    /// Write the changed BAT pages.
    pub fn flush(&mut self, file: &ImageFile) -> Result<()> {
        self.bat.flush(file)
    }
}
