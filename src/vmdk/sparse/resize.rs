//! A sparse extent's capacity changed in place, in crash-safe order:
//! everything the new capacity needs (grain tables, a larger directory) is
//! written where the old header does not look, the header (with the
//! descriptor beside it) is the one write that switches, and what the old
//! capacity used past the new one is cleared afterwards (a stop in
//! between leaves leaks only).

use super::{SparseExtent, MAX_GD_ENTRIES};
use crate::error::{Error, Result};
use crate::io::{align_up, SECTOR};
use crate::vmdk::header::SparseHeader;

/// The most sectors one sparse extent addresses (its 32-bit sector numbers
/// reach 2 TiB).
pub const MAX_SPARSE_SECTORS: u64 = 1 << 32;

impl SparseExtent {
    /// Fail unless this extent's capacity can change in place: a hosted
    /// sparse extent whose directory is where its header says (not a
    /// streamOptimized one, whose directory is at the end, nor VMDK3).
    pub fn check_resizable(&self) -> Result<()> {
        if self.cowd || self.header_in_footer || self.header.compressed() {
            return Err(Error::unsupported(
                self.file.path(),
                "a streamOptimized (or VMDK3) extent cannot be resized in place; convert it (vimg convert -O vmdk IN OUT), resize that, and convert back",
            ));
        }
        self.check_writable()
    }

    /// Make the extent ready for a capacity of `sectors` (larger than now)
    /// without changing what the current header describes, and return the
    /// header that switches to it. What becomes visible is cleared first:
    /// the tail of the last grain and the table entries past the old
    /// capacity. New grain tables (holes, as `create` leaves them) and
    /// their directory entries follow, in the directory's spare room when
    /// it has enough, else in new directories at the end of the file.
    pub fn prepare_growth(&mut self, sectors: u64) -> Result<SparseHeader> {
        self.check_resizable()?;
        let old = self.header.clone();
        if sectors > MAX_SPARSE_SECTORS {
            return Err(Error::unsupported(
                self.file.path(),
                format!(
                    "a sparse extent addresses at most 2 TiB; {} bytes asked for",
                    sectors * SECTOR
                ),
            ));
        }
        let mut new = old.clone();
        new.capacity = sectors;
        let (old_n, new_n) = (old.gd_entries(), new.gd_entries());
        if new_n > MAX_GD_ENTRIES {
            return Err(Error::unsupported(
                self.file.path(),
                format!("a grain directory of {new_n} entries is more than vimg handles"),
            ));
        }
        self.clear_past(old.capacity * SECTOR)?;
        if new_n == old_n {
            return Ok(new);
        }
        let added = new_n - old_n;
        let tables_bytes = added * self.gt_bytes;
        let (old_dir, new_dir) = (align_up(old_n * 4, SECTOR), align_up(new_n * 4, SECTOR));
        let in_place = new_dir <= old_dir;
        let mut next = self.alloc.clone();
        let redundant = self.rgd.is_some();
        let rgts = if redundant {
            next.take(tables_bytes, SECTOR)
        } else {
            0
        };
        let gts = next.take(tables_bytes, SECTOR);
        let (rgd_at, gd_at) = match in_place {
            true => (old.rgd_offset * SECTOR, old.gd_offset * SECTOR),
            false => (
                if redundant {
                    next.take(new_dir, SECTOR)
                } else {
                    0
                },
                next.take(new_dir, SECTOR),
            ),
        };
        let end = next.end();
        if end / SECTOR > u32::MAX as u64 {
            return Err(Error::unsupported(
                self.file.path(),
                "the extent file would grow past the 2 TiB a sparse extent can address",
            ));
        }
        // The tables are holes: the file is extended over them.
        if self.file.length()? < end {
            self.file.set_len(end)?;
        }
        let entries = |first_table: u64| -> Vec<u8> {
            (0..added)
                .flat_map(|i| (((first_table + i * self.gt_bytes) / SECTOR) as u32).to_le_bytes())
                .collect()
        };
        let mut dirs = vec![(old.gd_offset * SECTOR, gd_at, gts)];
        if redundant {
            dirs.push((old.rgd_offset * SECTOR, rgd_at, rgts));
        }
        for (old_at, new_at, tables) in dirs {
            if in_place {
                self.file
                    .write_all_at(&entries(tables), old_at + old_n * 4)?;
            } else {
                let mut dir = vec![0u8; new_dir as usize];
                self.file
                    .read_exact_at(&mut dir[..(old_n * 4) as usize], old_at)?;
                dir[(old_n * 4) as usize..(new_n * 4) as usize].copy_from_slice(&entries(tables));
                self.file.write_all_at(&dir, new_at)?;
            }
        }
        self.alloc = next;
        if !in_place {
            new.gd_offset = gd_at / SECTOR;
            if redundant {
                new.rgd_offset = rgd_at / SECTOR;
            }
        }
        self.file.sync()?;
        Ok(new)
    }

    /// The header for a capacity of `sectors` (smaller than now): the
    /// directories stay where they are.
    pub fn shrunk_header(&self, sectors: u64) -> Result<SparseHeader> {
        self.check_resizable()?;
        let mut new = self.header.clone();
        new.capacity = sectors;
        Ok(new)
    }

    /// After the header shrank from `old` to `self.header`'s capacity:
    /// clear the table entries past the new capacity and the directory
    /// entries past the new directory, so nothing references the space the
    /// capacity no longer covers (it is a leak until given back).
    pub fn finish_shrink(&mut self, old: &SparseHeader, new: &SparseHeader) -> Result<()> {
        self.header = new.clone();
        self.clear_past(new.capacity * SECTOR)?;
        let (old_n, new_n) = (old.gd_entries(), new.gd_entries());
        if old_n > new_n {
            let zeros = vec![0u8; ((old_n - new_n) * 4) as usize];
            let mut dirs = vec![old.gd_offset];
            if old.has_rgd() {
                dirs.push(old.rgd_offset);
            }
            for at in dirs {
                self.file.write_all_at(&zeros, at * SECTOR + new_n * 4)?;
            }
        }
        self.file.sync()
    }

    /// Clear what lies past `end` (bytes of the disk) within the grain
    /// tables the header at `end` still has: the entries of grains wholly
    /// past it, and the tail of the grain it ends in, so that a larger
    /// capacity reads zeros there.
    fn clear_past(&mut self, end: u64) -> Result<()> {
        let grain = self.grain;
        let tables = self.gts.len() / self.gt_entries;
        let first = end.div_ceil(grain);
        if !end.is_multiple_of(grain) {
            let last = end / grain;
            if let Some(host) = self.allocated_at(last)? {
                let keep = end - last * grain;
                let zeros = vec![0u8; (grain - keep) as usize];
                self.file.write_all_at(&zeros, host + keep)?;
            }
        }
        let table = first / self.gt_entries;
        if table >= tables || first.is_multiple_of(self.gt_entries) {
            return Ok(());
        }
        let from = first % self.gt_entries;
        let count = (self.gt_entries - from) as usize;
        for home in self.gts.homes(table as usize) {
            if home == 0 {
                continue;
            }
            let at = home + from * 4;
            let mut entries = vec![0u8; count * 4];
            self.file.read_exact_at(&mut entries, at)?;
            if entries.iter().any(|&b| b != 0) {
                self.file.write_all_at(&vec![0u8; count * 4], at)?;
            }
        }
        Ok(())
    }

    /// Where grain `index`'s data lies, when it has a place of its own
    /// (not compressed).
    fn allocated_at(&mut self, index: u64) -> Result<Option<u64>> {
        let table = (index / self.gt_entries) as usize;
        if table as u64 >= self.gts.len() / self.gt_entries || !self.gts.page_present(table) {
            return Ok(None);
        }
        Ok(match self.lookup(index)? {
            super::Grain::At(host) => Some(host),
            _ => None,
        })
    }
}

impl SparseExtent {
    /// True when no grain table entry is set (a new, empty extent).
    pub fn holds_nothing(&mut self) -> Result<bool> {
        let pages = (self.gts.len() / self.gt_entries) as usize;
        for p in 0..pages {
            if self.gts.page_present(p) && !self.gts.page_is_zero(&self.file, p)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
