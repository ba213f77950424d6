//! The two headers of an ESXi seSparse extent (VMFS 6 snapshot deltas):
//! the const header in sector 0, and the volatile header it points at.
//! Both are 512 bytes of little-endian u64 fields; offsets and sizes count
//! 512-byte sectors. The layout is the one qemu reads (block/vmdk.c, since
//! 4.1); VMware has not published it, so anything qemu does not accept is
//! refused.
//!
//! Const header:
//!
//! ```text
//! offset field                       offset field
//!      0 magic 0xcafebabe               112 journal offset
//!      8 version 0x0000000200000001     120 journal size
//!     16 capacity (sectors)             128 grain directory offset
//!     24 grain size (8 sectors)         136 grain directory size
//!     32 grain table size (64 sectors)  144 grain tables offset
//!     40 flags (0)                      152 grain tables size
//!  48-79 four reserved fields (0)       160 free bitmap offset, 168 size
//!     80 volatile header offset         176 backmap offset, 184 size
//!     88 volatile header size           192 grains offset
//!     96 journal header offset          200 grains size
//!    104 journal header size        208-511 padding (0)
//! ```
//!
//! Volatile header: magic 0xcafecafe at 0, free grain table number at 8,
//! next transaction sequence number at 16, "replay journal" at 24 (a dirty
//! image; not read), padding (0) from 32 to 512.

use byteorder::{ByteOrder, LittleEndian};

use crate::error::FieldError;

/// Size of each header on disk.
pub const HEADER_SIZE: usize = 512;
/// The const header's magic.
pub const CONST_MAGIC: u64 = 0xcafe_babe;
/// The volatile header's magic.
pub const VOLATILE_MAGIC: u64 = 0xcafe_cafe;
/// The one version qemu reads.
pub const VERSION: u64 = 0x0000_0002_0000_0001;
/// Grain size in sectors (4 KiB grains).
pub const GRAIN_SECTORS: u64 = 8;
/// Grain table size in sectors: 4096 entries of 8 bytes.
pub const GT_SECTORS: u64 = 64;

/// Byte offsets of the const header's fields, for error messages.
pub mod field {
    pub const MAGIC: u64 = 0;
    pub const VERSION: u64 = 8;
    pub const CAPACITY: u64 = 16;
    pub const GRAIN_SIZE: u64 = 24;
    pub const GT_SIZE: u64 = 32;
    pub const FLAGS: u64 = 40;
    pub const RESERVED: u64 = 48;
    pub const VOLATILE_OFFSET: u64 = 80;
    pub const GD_OFFSET: u64 = 128;
    pub const GD_SIZE: u64 = 136;
    pub const GT_OFFSET: u64 = 144;
    pub const GRAINS_OFFSET: u64 = 192;
    pub const PADDING: u64 = 208;
    /// In the volatile header.
    pub const REPLAY_JOURNAL: u64 = 24;
    pub const VOLATILE_PADDING: u64 = 32;
}

/// Why a header is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a header at all, or damaged.
    Corrupt(FieldError),
    /// A header qemu does not read either (another version, grain size,
    /// flags, a journal to replay).
    Unsupported(FieldError),
}

/// The fields of the const header vimg uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstHeader {
    pub capacity: u64,
    pub volatile_offset: u64,
    pub gd_offset: u64,
    pub gd_size: u64,
    pub gt_offset: u64,
    pub grains_offset: u64,
}

fn u64_at(buf: &[u8], at: u64) -> u64 {
    LittleEndian::read_u64(&buf[at as usize..])
}

/// The first non-zero byte of `buf[from..]`, as an offset in `buf`.
fn non_zero(buf: &[u8], from: u64) -> Option<u64> {
    buf[from as usize..]
        .iter()
        .position(|&b| b != 0)
        .map(|i| from + i as u64)
}

impl ConstHeader {
    /// Parse the const header in `buf` (at least 512 bytes).
    pub fn parse(buf: &[u8]) -> Result<ConstHeader, HeaderError> {
        use HeaderError::{Corrupt, Unsupported};
        if buf.len() < HEADER_SIZE {
            return Err(Corrupt(FieldError::new(
                0,
                format!("{} bytes, the seSparse header needs 512", buf.len()),
            )));
        }
        let magic = u64_at(buf, field::MAGIC);
        if magic != CONST_MAGIC {
            return Err(Corrupt(FieldError::new(
                field::MAGIC,
                format!(
                    "magic {magic:#018x} is not the seSparse const header's {CONST_MAGIC:#018x}"
                ),
            )));
        }
        let expect = |at: u64, want: u64, what: &str| {
            let have = u64_at(buf, at);
            if have == want {
                Ok(())
            } else {
                Err(Unsupported(FieldError::new(
                    at,
                    format!("{what} {have:#x} is not supported (only {want:#x} is)"),
                )))
            }
        };
        expect(field::VERSION, VERSION, "version")?;
        expect(field::GRAIN_SIZE, GRAIN_SECTORS, "grain size (sectors)")?;
        expect(field::GT_SIZE, GT_SECTORS, "grain table size (sectors)")?;
        expect(field::FLAGS, 0, "flags")?;
        for i in 0..4 {
            expect(field::RESERVED + 8 * i, 0, "reserved field")?;
        }
        if let Some(at) = non_zero(&buf[..HEADER_SIZE], field::PADDING) {
            return Err(Unsupported(FieldError::new(
                at,
                "the header's padding is not zero",
            )));
        }
        Ok(ConstHeader {
            capacity: u64_at(buf, field::CAPACITY),
            volatile_offset: u64_at(buf, field::VOLATILE_OFFSET),
            gd_offset: u64_at(buf, field::GD_OFFSET),
            gd_size: u64_at(buf, field::GD_SIZE),
            gt_offset: u64_at(buf, field::GT_OFFSET),
            grains_offset: u64_at(buf, field::GRAINS_OFFSET),
        })
    }
}

/// Check the volatile header in `buf` (at least 512 bytes): its magic,
/// no journal waiting to be replayed, zero padding.
pub fn check_volatile(buf: &[u8]) -> Result<(), HeaderError> {
    use HeaderError::{Corrupt, Unsupported};
    if buf.len() < HEADER_SIZE {
        return Err(Corrupt(FieldError::new(
            0,
            format!("{} bytes, the volatile header needs 512", buf.len()),
        )));
    }
    let magic = u64_at(buf, 0);
    if magic != VOLATILE_MAGIC {
        return Err(Corrupt(FieldError::new(
            0,
            format!(
                "magic {magic:#018x} is not the seSparse volatile header's {VOLATILE_MAGIC:#018x}"
            ),
        )));
    }
    if u64_at(buf, field::REPLAY_JOURNAL) != 0 {
        return Err(Unsupported(FieldError::new(
            field::REPLAY_JOURNAL,
            "the image is dirty (its journal must be replayed), which vimg does not do; open it in ESXi first",
        )));
    }
    if let Some(at) = non_zero(&buf[..HEADER_SIZE], field::VOLATILE_PADDING) {
        return Err(Unsupported(FieldError::new(
            at,
            "the volatile header's padding is not zero",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &mut [u8], at: u64, v: u64) {
        b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// A const header for a 16 MiB disk.
    fn header() -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        put(&mut b, field::MAGIC, CONST_MAGIC);
        put(&mut b, field::VERSION, VERSION);
        put(&mut b, field::CAPACITY, 32768);
        put(&mut b, field::GRAIN_SIZE, 8);
        put(&mut b, field::GT_SIZE, 64);
        put(&mut b, field::VOLATILE_OFFSET, 1);
        put(&mut b, field::GD_OFFSET, 2);
        put(&mut b, field::GD_SIZE, 1);
        put(&mut b, field::GT_OFFSET, 3);
        put(&mut b, field::GRAINS_OFFSET, 67);
        b
    }

    #[test]
    fn parses_a_const_header() {
        let h = ConstHeader::parse(&header()).unwrap();
        assert_eq!(h.capacity, 32768);
        assert_eq!((h.volatile_offset, h.gd_offset, h.gd_size), (1, 2, 1));
        assert_eq!((h.gt_offset, h.grains_offset), (3, 67));
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        let at = |e: HeaderError| match e {
            HeaderError::Corrupt(f) => (true, f.at),
            HeaderError::Unsupported(f) => (false, f.at),
        };
        let mut b = header();
        put(&mut b, field::MAGIC, 0xcafecafe);
        assert_eq!(at(ConstHeader::parse(&b).unwrap_err()), (true, 0));
        for (f, v) in [
            (field::VERSION, 1),
            (field::GRAIN_SIZE, 16),
            (field::GT_SIZE, 32),
            (field::FLAGS, 1),
            (field::RESERVED + 24, 5),
            (300, 1),
        ] {
            let mut b = header();
            put(&mut b, f, v);
            assert_eq!(at(ConstHeader::parse(&b).unwrap_err()), (false, f));
        }
        assert!(ConstHeader::parse(&header()[..100]).is_err());
    }

    #[test]
    fn checks_the_volatile_header() {
        let mut b = vec![0u8; HEADER_SIZE];
        put(&mut b, 0, VOLATILE_MAGIC);
        assert_eq!(check_volatile(&b), Ok(()));
        put(&mut b, field::REPLAY_JOURNAL, 1);
        assert!(matches!(
            check_volatile(&b),
            Err(HeaderError::Unsupported(_))
        ));
        put(&mut b, 0, CONST_MAGIC);
        assert!(matches!(check_volatile(&b), Err(HeaderError::Corrupt(_))));
    }
}
