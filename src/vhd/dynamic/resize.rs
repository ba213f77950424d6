//! A dynamic VHD's size changed in place. The trailing footer is the
//! switch (the copy at offset 0 follows it, as for every footer change):
//! before it, what the new size needs is made where the old size does not
//! look (BAT entries past the old table cleared, the table enlarged in
//! place or moved to the end of the file); after it, the table shrinks to
//! the new size, and what it no longer covers is a leak until given back.

use super::{Dynamic, MAX_BAT_ENTRIES, UNALLOCATED};
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
    /// place when the space after it is free up to the end of its last
    /// sector, else as a new table at the end of the file (the footer
    /// moved past it first; the old table cleared once the header points
    /// at the new one).
    fn grow_bat(&mut self, need: u64) -> Result<()> {
        let h = self.header.clone();
        let entries = h.max_table_entries as u64;
        let new_bytes = align_up(need * 4, SECTOR);
        let old_bytes = align_up(entries * 4, SECTOR);
        let len = self.file.length()?;
        let footer = self.footer_at..self.footer_at + FOOTER_SIZE as u64;
        let mut space = self.walk(len, Some(footer))?;
        let limit = space
            .spans()
            .iter()
            .filter(|s| s.start > h.table_offset)
            .map(|s| s.start)
            .min()
            .unwrap_or(len)
            .min(self.footer_at);
        let mut header = h.clone();
        header.max_table_entries = need as u32;
        if h.table_offset + new_bytes <= limit {
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
}
