//! A dynamic VHD's size changed in place. The trailing footer is the
//! switch (the copy at offset 0 follows it, as for every footer change):
//! before it, what the new size needs is made where the old size does not
//! look (BAT entries past the old table cleared, the table enlarged in
//! place or moved to the end of the file); after it, the table shrinks to
//! the new size, and what it no longer covers is a leak until given back.

use super::{Dynamic, Part, MAX_BAT_ENTRIES, UNALLOCATED};
use crate::error::{Error, Result};
use crate::io::{align_up, SECTOR};
use crate::vhd::footer::{Footer, FOOTER_SIZE};

impl Dynamic {
    /// Change the disk from `old` to `new` bytes, `footer` being the footer
    /// that describes the new size.
    pub fn resize(&mut self, old: u64, new: u64, footer: &Footer) -> Result<()> {
        let need = new.div_ceil(self.block_size);
        if need > MAX_BAT_ENTRIES {
            return Err(Error::unsupported(
                self.file.path(),
                format!("{need} blocks are more than vimg handles ({MAX_BAT_ENTRIES})"),
            ));
        }
        let entries = self.header.max_table_entries as u64;
        if new > old {
            self.clear_past(old)?;
            if need > entries {
                self.grow_bat(need)?;
            }
            self.file.sync()?;
            self.set_footer(footer)?;
        } else {
            self.set_footer(footer)?;
            self.file.sync()?;
            if need < entries {
                let mut header = self.header.clone();
                header.max_table_entries = need as u32;
                self.file
                    .write_all_at(&header.encode(), self.header_offset)?;
                self.header = header;
            }
        }
        self.file.sync()
    }

    /// Clear what lies past `end` (bytes of the disk) that a larger size
    /// would show: the tail of the block it ends in, and the BAT entries
    /// of blocks wholly past it.
    fn clear_past(&mut self, end: u64) -> Result<()> {
        let block = self.block_size;
        if !end.is_multiple_of(block) {
            let last = end / block;
            if let Some(host) = self.block_host(last)? {
                let keep = end - last * block;
                let zeros = vec![0u8; (block - keep) as usize];
                self.file
                    .write_all_at(&zeros, host + self.bitmap_size + keep)?;
            }
        }
        for i in end.div_ceil(block)..self.header.max_table_entries as u64 {
            if self.bat.get(&self.file, i)? != UNALLOCATED {
                self.bat.set(&self.file, i, UNALLOCATED)?;
            }
        }
        self.flush()
    }

    /// Make the BAT `need` entries long, the new ones unallocated: in
    /// place when the space after it is free (or only the footer is in the
    /// way, which moves), else by whichever writes less: the blocks in the
    /// way copied to the end of the file (each one's entry switched to the
    /// copy once it is whole, as blktap's vhd-util does), or a new table
    /// at the end of the file (the header switched to it, the old one
    /// cleared). Headers or locators in the way leave only the move.
    fn grow_bat(&mut self, need: u64) -> Result<()> {
        let h = self.header.clone();
        let entries = h.max_table_entries as u64;
        let new_bytes = align_up(need * 4, SECTOR);
        let old_bytes = align_up(entries * 4, SECTOR);
        let (start, end) = (h.table_offset + old_bytes, h.table_offset + new_bytes);
        let len = self.file.length()?;
        let mut space = self.walk(len, None)?;
        let mut blocks = Vec::new();
        let mut movable = true;
        for s in space.spans() {
            if s.end <= start || s.start >= end || s.what == Part::Bat {
                continue;
            }
            match s.what {
                Part::Blocks(_) => blocks.push(s.clone()),
                _ => movable = false,
            }
        }
        let mut in_the_way = Vec::new();
        for span in &blocks {
            let mut at = span.start.max(start);
            while at < span.end.min(end) {
                let (block, host) = self.block_at(span, at);
                in_the_way.push((block, host));
                at = host + self.bitmap_size + self.block_size;
            }
        }
        // Both write the new entries; moving also writes the old ones
        // again and clears the old table, relocating copies the blocks.
        let block_len = self.bitmap_size + self.block_size;
        let relocate = movable && (in_the_way.len() as u64) * block_len <= old_bytes + entries * 4;
        if relocate && self.alloc.end() < end {
            // Copies go past where the table will end.
            self.alloc = crate::alloc::Allocator::new(end);
        }
        let mut header = h.clone();
        header.max_table_entries = need as u32;
        if relocate {
            for &(block, host) in &in_the_way {
                self.relocate(block, host)?;
            }
            if self.footer_at < end {
                // Only the footer follows the table: it moves past it.
                let footer_at = self.alloc.end().max(end);
                self.file.write_all_at(&self.footer, footer_at)?;
                self.footer_at = footer_at;
                self.alloc = crate::alloc::Allocator::new(footer_at);
            }
            let fill = vec![0xffu8; (new_bytes - entries * 4) as usize];
            self.file
                .write_all_at(&fill, h.table_offset + entries * 4)?;
        } else {
            let mut next = self.alloc.clone();
            let at = next.take(new_bytes, SECTOR);
            let footer_at = next.end();
            self.file.write_all_at(&self.footer, footer_at)?;
            let mut table = vec![0xffu8; new_bytes as usize];
            self.file
                .read_exact_at(&mut table[..(entries * 4) as usize], h.table_offset)?;
            self.file.write_all_at(&table, at)?;
            self.file.sync()?;
            header.table_offset = at;
            self.alloc = next;
            self.footer_at = footer_at;
            self.file_end = footer_at + FOOTER_SIZE as u64;
        }
        self.file
            .write_all_at(&header.encode(), self.header_offset)?;
        if header.table_offset != h.table_offset {
            // Nothing points at the old table now.
            self.file
                .write_all_at(&vec![0u8; old_bytes as usize], h.table_offset)?;
        }
        self.header = header;
        Ok(())
    }

    /// Copy block `block` (its bitmap and data, at `host`) to the end of
    /// the file, the footer moved past it first, and switch its BAT entry
    /// to the copy once the copy is on disk. The old place is then free.
    fn relocate(&mut self, block: u64, host: u64) -> Result<()> {
        let len = self.bitmap_size + self.block_size;
        let (next, to, sector) = self.place_block()?;
        let footer_at = next.end();
        self.file.write_all_at(&self.footer, footer_at)?;
        let mut buf = vec![0u8; len.min(COPY_CHUNK) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(COPY_CHUNK) as usize;
            self.file.read_exact_at(&mut buf[..n], host + done)?;
            self.file.write_all_at(&buf[..n], to + done)?;
            done += n as u64;
        }
        self.file.sync()?;
        self.bat.set(&self.file, block, sector)?;
        self.flush()?;
        self.file.sync()?;
        self.alloc = next;
        self.footer_at = footer_at;
        self.file_end = footer_at + FOOTER_SIZE as u64;
        Ok(())
    }
}

/// How much of a block is copied at a time.
const COPY_CHUNK: u64 = 4 << 20;
