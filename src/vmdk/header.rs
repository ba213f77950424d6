//! The hosted sparse extent header ("KDMV"): the first sector of every
//! monolithicSparse, twoGbMaxExtentSparse and streamOptimized extent. All
//! fields little-endian; offsets and sizes count 512-byte sectors.
//!
//! ```text
//! offset size field
//!      0    4 magic "KDMV"
//!      4    4 version (1; 2 with zeroed-grain GTEs; 3 for streamOptimized)
//!      8    4 flags: 0 newline test valid, 1 redundant grain table,
//!             2 zeroed-grain GTEs, 16 compressed grains, 17 markers
//!     12    8 capacity (sectors)
//!     20    8 grain size (sectors)
//!     28    8 embedded descriptor offset (sectors, 0 = none)
//!     36    8 embedded descriptor size (sectors)
//!     44    4 grain table entries per grain table (512)
//!     48    8 redundant grain directory offset (sectors)
//!     56    8 grain directory offset (sectors; all ones = in the footer)
//!     64    8 overhead: sectors before the first grain
//!     72    1 unclean shutdown
//!     73    4 newline test "\n \r\n"
//!     77    2 compression algorithm (1 = deflate)
//!     79  433 padding (zero)
//! ```

use byteorder::{ByteOrder, LittleEndian};

use crate::error::FieldError;

/// Size of the header on disk.
pub const HEADER_SIZE: usize = 512;
/// "KDMV" as stored.
pub const MAGIC: &[u8; 4] = b"KDMV";
/// The grain directory offset meaning "read it from the footer".
pub const GD_AT_END: u64 = u64::MAX;

pub const FLAG_NL_DETECT: u32 = 1 << 0;
pub const FLAG_RGD: u32 = 1 << 1;
pub const FLAG_ZERO_GRAIN: u32 = 1 << 2;
pub const FLAG_COMPRESSED: u32 = 1 << 16;
pub const FLAG_MARKERS: u32 = 1 << 17;

/// Byte offsets of the header's fields, for errors that name them.
pub mod field {
    pub const VERSION: u64 = 4;
    pub const CAPACITY: u64 = 12;
    pub const GRAIN_SIZE: u64 = 20;
    pub const DESCRIPTOR_OFFSET: u64 = 28;
    pub const GTES_PER_GT: u64 = 44;
    pub const COMPRESS_ALGORITHM: u64 = 77;
}

/// Compression algorithm number for deflate.
pub const COMPRESS_DEFLATE: u16 = 1;

/// Largest grain vimg accepts (sectors): 16 MiB.
const MAX_GRAIN_SECTORS: u64 = 32768;
/// Largest grain table vimg accepts (entries): 512, as every writer uses
/// and as qemu-img insists on.
const MAX_GTES: u32 = 512;

/// A parsed, sanity-checked sparse extent header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseHeader {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub num_gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: bool,
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// Parse a header; the error names the field that is wrong.
    pub fn parse(buf: &[u8]) -> Result<SparseHeader, FieldError> {
        if buf.len() < HEADER_SIZE {
            return Err(FieldError::new(
                0,
                format!("{} bytes, the header needs 512", buf.len()),
            ));
        }
        if &buf[..4] != MAGIC {
            return Err(FieldError::new(0, "no \"KDMV\" magic"));
        }
        let h = SparseHeader {
            version: LittleEndian::read_u32(&buf[4..]),
            flags: LittleEndian::read_u32(&buf[8..]),
            capacity: LittleEndian::read_u64(&buf[12..]),
            grain_size: LittleEndian::read_u64(&buf[20..]),
            descriptor_offset: LittleEndian::read_u64(&buf[28..]),
            descriptor_size: LittleEndian::read_u64(&buf[36..]),
            num_gtes_per_gt: LittleEndian::read_u32(&buf[44..]),
            rgd_offset: LittleEndian::read_u64(&buf[48..]),
            gd_offset: LittleEndian::read_u64(&buf[56..]),
            overhead: LittleEndian::read_u64(&buf[64..]),
            unclean_shutdown: buf[72] != 0,
            compress_algorithm: LittleEndian::read_u16(&buf[77..]),
        };
        if !(1..=3).contains(&h.version) {
            return Err(FieldError::new(
                field::VERSION,
                format!("version {} (known: 1, 2, 3)", h.version),
            ));
        }
        if !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS {
            return Err(FieldError::new(
                field::GRAIN_SIZE,
                format!(
                    "grain size of {} sectors is not a power of two up to {MAX_GRAIN_SECTORS}",
                    h.grain_size
                ),
            ));
        }
        if h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > MAX_GTES {
            return Err(FieldError::new(
                field::GTES_PER_GT,
                format!(
                    "{} entries per grain table (1 to {MAX_GTES} allowed)",
                    h.num_gtes_per_gt
                ),
            ));
        }
        if h.capacity > u64::MAX / 512 / 2 {
            return Err(FieldError::new(
                field::CAPACITY,
                format!("capacity of {} sectors is too large", h.capacity),
            ));
        }
        if h.compressed() && h.compress_algorithm != COMPRESS_DEFLATE {
            return Err(FieldError::new(
                field::COMPRESS_ALGORITHM,
                format!(
                    "compression algorithm {} (only 1, deflate, is known)",
                    h.compress_algorithm
                ),
            ));
        }
        Ok(h)
    }

    /// The header as 512 bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut buf = [0u8; HEADER_SIZE];
        buf[..4].copy_from_slice(MAGIC);
        LittleEndian::write_u32(&mut buf[4..], self.version);
        LittleEndian::write_u32(&mut buf[8..], self.flags);
        LittleEndian::write_u64(&mut buf[12..], self.capacity);
        LittleEndian::write_u64(&mut buf[20..], self.grain_size);
        LittleEndian::write_u64(&mut buf[28..], self.descriptor_offset);
        LittleEndian::write_u64(&mut buf[36..], self.descriptor_size);
        LittleEndian::write_u32(&mut buf[44..], self.num_gtes_per_gt);
        LittleEndian::write_u64(&mut buf[48..], self.rgd_offset);
        LittleEndian::write_u64(&mut buf[56..], self.gd_offset);
        LittleEndian::write_u64(&mut buf[64..], self.overhead);
        buf[72] = self.unclean_shutdown as u8;
        buf[73..77].copy_from_slice(b"\n \r\n");
        LittleEndian::write_u16(&mut buf[77..], self.compress_algorithm);
        buf
    }

    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    pub fn has_markers(&self) -> bool {
        self.flags & FLAG_MARKERS != 0
    }

    pub fn has_rgd(&self) -> bool {
        self.flags & FLAG_RGD != 0 && self.rgd_offset != 0 && self.rgd_offset != self.gd_offset
    }

    /// Grain table entry 1 means "zeros" (header version 2 and up).
    pub fn zeroed_grain(&self) -> bool {
        self.flags & FLAG_ZERO_GRAIN != 0
    }

    /// Number of grain directory entries (grain tables).
    pub fn gd_entries(&self) -> u64 {
        self.capacity
            .div_ceil(self.grain_size)
            .div_ceil(self.num_gtes_per_gt as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A qemu-img monolithicSparse header for a 1 GiB disk.
    fn qemu_header() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..4].copy_from_slice(b"KDMV"); // magic
        b[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
        b[8..12].copy_from_slice(&3u32.to_le_bytes()); // newline test + RGD
        b[12..20].copy_from_slice(&2_097_152u64.to_le_bytes()); // capacity
        b[20..28].copy_from_slice(&128u64.to_le_bytes()); // 64 KiB grains
        b[28..36].copy_from_slice(&1u64.to_le_bytes()); // descriptor at sector 1
        b[36..44].copy_from_slice(&20u64.to_le_bytes()); // 20 sectors of it
        b[44..48].copy_from_slice(&512u32.to_le_bytes()); // GTEs per GT
        b[48..56].copy_from_slice(&21u64.to_le_bytes()); // RGD
        b[56..64].copy_from_slice(&151u64.to_le_bytes()); // GD
        b[64..72].copy_from_slice(&384u64.to_le_bytes()); // overhead
        b[73..77].copy_from_slice(b"\n \r\n"); // newline test
        b
    }

    #[test]
    fn parses_every_field_and_encodes_back() {
        let raw = qemu_header();
        let h = SparseHeader::parse(&raw).unwrap();
        assert_eq!(h.version, 1);
        assert!(h.has_rgd() && !h.compressed() && !h.zeroed_grain());
        assert_eq!(h.capacity, 2_097_152);
        assert_eq!(h.grain_size, 128);
        assert_eq!((h.descriptor_offset, h.descriptor_size), (1, 20));
        assert_eq!((h.rgd_offset, h.gd_offset, h.overhead), (21, 151, 384));
        assert_eq!(h.gd_entries(), 32);
        assert_eq!(&h.encode()[..], &raw[..]);
    }

    #[test]
    fn rejects_what_no_valid_image_has() {
        let cases: [(usize, &[u8], &str); 5] = [
            (0, b"KDMX", "magic"),
            (4, &7u32.to_le_bytes(), "version 7"),
            (20, &100u64.to_le_bytes(), "grain size"),
            (44, &0u32.to_le_bytes(), "entries per grain table"),
            (12, &u64::MAX.to_le_bytes(), "capacity"),
        ];
        for (at, bytes, what) in cases {
            let mut raw = qemu_header();
            raw[at..at + bytes.len()].copy_from_slice(bytes);
            let err = SparseHeader::parse(&raw).unwrap_err();
            assert!(err.detail.contains(what), "{what}: {err:?}");
            // The error points at the field.
            assert_eq!(err.at, at as u64, "{what}");
        }
        assert!(SparseHeader::parse(&[0u8; 100]).is_err());
    }
}
