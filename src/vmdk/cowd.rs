//! The VMDK3 ("COWD") sparse extent header: legacy GSX/ESX sparse disks and
//! the data files of ESX `vmfsSparse` redo-log deltas. 2048 bytes,
//! little-endian; offsets and sizes count 512-byte sectors.
//!
//! ```text
//! offset size field
//!      0    4 magic "COWD"
//!      4    4 version (1)
//!      8    4 flags
//!     12    4 capacity (sectors)
//!     16    4 grain size (sectors; 1 in ESX redo logs)
//!     20    4 grain directory offset (sectors)
//!     24    4 grain directory entries
//!     28    4 next free sector
//!     32 1024 root disk: cylinders, heads, sectors (3 x 4 bytes);
//!             delta: parent file name (NUL padded) ...
//!   1056    4 ... and parent generation
//!   1060    4 generation
//!   1064   60 name
//!   1124  512 description
//!   1636    4 saved generation
//!   1640    8 reserved
//!   1648    4 unclean shutdown
//!   1652  396 padding
//! ```
//!
//! Grain tables always hold 4096 entries; directory and table entries are
//! sector offsets in the file, 0 meaning "not here".

use byteorder::{ByteOrder, LittleEndian};

use crate::error::FieldError;

use super::header::SparseHeader;

/// Size of the header on disk.
pub const COWD_HEADER_SIZE: usize = 2048;
/// Grain table entries in every COWD grain table.
pub const COWD_GTES: u32 = 4096;

/// A parsed COWD header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CowdHeader {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub gd_offset: u64,
    pub gd_entries: u64,
    pub free_sector: u64,
    /// The parent named in the header (redo logs; often empty).
    pub parent_name: String,
}

impl CowdHeader {
    /// Parse a COWD header; the error names the field that is wrong.
    pub fn parse(buf: &[u8]) -> Result<CowdHeader, FieldError> {
        if buf.len() < COWD_HEADER_SIZE {
            return Err(FieldError::new(
                0,
                format!("{} bytes, the header needs 2048", buf.len()),
            ));
        }
        if &buf[..4] != b"COWD" {
            return Err(FieldError::new(0, "no \"COWD\" magic"));
        }
        let u = |at: usize| LittleEndian::read_u32(&buf[at..]) as u64;
        let name = &buf[32..1056];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let h = CowdHeader {
            version: u(4) as u32,
            flags: u(8) as u32,
            capacity: u(12),
            grain_size: u(16),
            gd_offset: u(20),
            gd_entries: u(24),
            free_sector: u(28),
            parent_name: String::from_utf8_lossy(&name[..end]).into_owned(),
        };
        if !h.grain_size.is_power_of_two() || h.grain_size > 32768 {
            return Err(FieldError::new(
                16,
                format!(
                    "grain size of {} sectors is not a power of two up to 32768",
                    h.grain_size
                ),
            ));
        }
        let needed = h.capacity.div_ceil(h.grain_size * COWD_GTES as u64);
        if h.gd_entries < needed {
            return Err(FieldError::new(
                24,
                format!(
                    "{} grain directory entries cannot cover {} sectors (needs {needed})",
                    h.gd_entries, h.capacity
                ),
            ));
        }
        Ok(h)
    }

    /// The same geometry as a hosted sparse header, so one reader serves
    /// both.
    pub fn as_sparse(&self) -> SparseHeader {
        SparseHeader {
            version: 1,
            flags: 0,
            capacity: self.capacity,
            grain_size: self.grain_size,
            descriptor_offset: 0,
            descriptor_size: 0,
            num_gtes_per_gt: COWD_GTES,
            rgd_offset: 0,
            gd_offset: self.gd_offset,
            overhead: 0,
            unclean_shutdown: false,
            compress_algorithm: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ESX redo log for a 10 MiB disk.
    fn redo_log() -> Vec<u8> {
        let mut b = vec![0u8; 2048];
        b[..4].copy_from_slice(b"COWD"); // magic
        b[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
        b[8..12].copy_from_slice(&3u32.to_le_bytes()); // flags
        b[12..16].copy_from_slice(&20480u32.to_le_bytes()); // capacity
        b[16..20].copy_from_slice(&1u32.to_le_bytes()); // 1-sector grains
        b[20..24].copy_from_slice(&4u32.to_le_bytes()); // GD right after the header
        b[24..28].copy_from_slice(&5u32.to_le_bytes()); // 5 GD entries
        b[28..32].copy_from_slice(&5u32.to_le_bytes()); // next free sector
        b[32..42].copy_from_slice(b"parent.vmd"); // parent file name
        b
    }

    #[test]
    fn parses_a_redo_log_header() {
        let h = CowdHeader::parse(&redo_log()).unwrap();
        assert_eq!(h.capacity, 20480);
        assert_eq!(h.grain_size, 1);
        assert_eq!((h.gd_offset, h.gd_entries), (4, 5));
        assert_eq!(h.parent_name, "parent.vmd");
        let s = h.as_sparse();
        assert_eq!(s.gd_entries(), 5);
        assert_eq!(s.num_gtes_per_gt, 4096);
    }

    #[test]
    fn rejects_bad_grain_and_short_directory() {
        let mut raw = redo_log();
        raw[16..20].copy_from_slice(&3u32.to_le_bytes());
        let err = CowdHeader::parse(&raw).unwrap_err();
        assert!(err.at == 16 && err.detail.contains("grain size"), "{err:?}");
        let mut raw = redo_log();
        raw[24..28].copy_from_slice(&4u32.to_le_bytes());
        let err = CowdHeader::parse(&raw).unwrap_err();
        assert!(err.at == 24 && err.detail.contains("directory"), "{err:?}");
        assert!(CowdHeader::parse(&raw[..100]).is_err());
    }
}
