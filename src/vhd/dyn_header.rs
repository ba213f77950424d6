//! The VHD dynamic disk header: 1024 bytes (usually at offset 512) that
//! locate the block allocation table and, for differencing disks, the parent.
//! All fields big-endian.
//!
//! ```text
//! offset size field
//!      0    8 cookie "cxsparse"
//!      8    8 data offset (unused: all ones)
//!     16    8 table offset: byte offset of the BAT
//!     24    4 header version (0x00010000)
//!     28    4 max table entries (BAT entries)
//!     32    4 block size in bytes (2 MiB by default, a power of two)
//!     36    4 checksum: one's complement of the byte sum, this field as 0
//!     40   16 parent unique id
//!     56    4 parent timestamp
//!     60    4 reserved
//!     64  512 parent unicode name (UTF-16 big-endian, NUL padded)
//!    576  192 eight parent locator entries of 24 bytes:
//!             0 platform code ("W2ku", "W2ru", ...), 4 data space,
//!             8 data length, 12 reserved, 16 data offset (8 bytes)
//!    768  256 reserved (zero)
//! ```

use byteorder::{BigEndian, ByteOrder};

use super::footer::checksum;
use crate::error::FieldError;

/// Size of the header on disk.
pub const HEADER_SIZE: usize = 1024;
const COOKIE: &[u8; 8] = b"cxsparse";

/// One parent locator entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParentLocator {
    pub code: [u8; 4],
    pub data_space: u32,
    pub data_length: u32,
    pub data_offset: u64,
}

/// A parsed, checksum-verified dynamic disk header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicHeader {
    pub data_offset: u64,
    pub table_offset: u64,
    pub version: u32,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub parent_uuid: [u8; 16],
    pub parent_timestamp: u32,
    /// The raw UTF-16BE parent name field.
    pub parent_name: [u8; 512],
    pub locators: [ParentLocator; 8],
}

impl DynamicHeader {
    /// A header for a new disk without a parent.
    pub fn new(table_offset: u64, max_table_entries: u32, block_size: u32) -> Self {
        DynamicHeader {
            data_offset: u64::MAX,
            table_offset,
            version: 0x0001_0000,
            max_table_entries,
            block_size,
            parent_uuid: [0; 16],
            parent_timestamp: 0,
            parent_name: [0; 512],
            locators: [ParentLocator::default(); 8],
        }
    }

    /// Parse and verify a header; the error says which field is wrong.
    pub fn parse(buf: &[u8]) -> Result<DynamicHeader, FieldError> {
        DynamicHeader::parse_with(buf, true)
    }

    /// Parse a header whatever its checksum says (for `check`, which
    /// reports a wrong checksum and walks on when the fields are usable).
    pub fn parse_unverified(buf: &[u8]) -> Result<DynamicHeader, FieldError> {
        DynamicHeader::parse_with(buf, false)
    }

    /// Parse a header, verifying its checksum when `verify` says so.
    fn parse_with(buf: &[u8], verify: bool) -> Result<DynamicHeader, FieldError> {
        if buf.len() < HEADER_SIZE {
            return Err(FieldError::new(
                0,
                format!("{} bytes, the header needs 1024", buf.len()),
            ));
        }
        let buf = &buf[..HEADER_SIZE];
        if &buf[..8] != COOKIE {
            return Err(FieldError::new(0, "no \"cxsparse\" cookie"));
        }
        if let Some(e) = checksum_error(buf).filter(|_| verify) {
            return Err(e);
        }
        let block_size = BigEndian::read_u32(&buf[32..]);
        if !block_size.is_power_of_two() || block_size < 512 {
            return Err(FieldError::new(
                32,
                format!("block size {block_size} is not a power of two of at least 512"),
            ));
        }
        let mut locators = [ParentLocator::default(); 8];
        for (i, loc) in locators.iter_mut().enumerate() {
            let e = &buf[576 + 24 * i..576 + 24 * (i + 1)];
            *loc = ParentLocator {
                code: e[..4].try_into().unwrap(),
                data_space: BigEndian::read_u32(&e[4..]),
                data_length: BigEndian::read_u32(&e[8..]),
                data_offset: BigEndian::read_u64(&e[16..]),
            };
        }
        Ok(DynamicHeader {
            data_offset: BigEndian::read_u64(&buf[8..]),
            table_offset: BigEndian::read_u64(&buf[16..]),
            version: BigEndian::read_u32(&buf[24..]),
            max_table_entries: BigEndian::read_u32(&buf[28..]),
            block_size,
            parent_uuid: buf[40..56].try_into().unwrap(),
            parent_timestamp: BigEndian::read_u32(&buf[56..]),
            parent_name: buf[64..576].try_into().unwrap(),
            locators,
        })
    }

    /// The header as 1024 bytes with a correct checksum.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut buf = [0u8; HEADER_SIZE];
        buf[..8].copy_from_slice(COOKIE);
        BigEndian::write_u64(&mut buf[8..], self.data_offset);
        BigEndian::write_u64(&mut buf[16..], self.table_offset);
        BigEndian::write_u32(&mut buf[24..], self.version);
        BigEndian::write_u32(&mut buf[28..], self.max_table_entries);
        BigEndian::write_u32(&mut buf[32..], self.block_size);
        buf[40..56].copy_from_slice(&self.parent_uuid);
        BigEndian::write_u32(&mut buf[56..], self.parent_timestamp);
        buf[64..576].copy_from_slice(&self.parent_name);
        for (i, loc) in self.locators.iter().enumerate() {
            let e = &mut buf[576 + 24 * i..576 + 24 * (i + 1)];
            e[..4].copy_from_slice(&loc.code);
            BigEndian::write_u32(&mut e[4..], loc.data_space);
            BigEndian::write_u32(&mut e[8..], loc.data_length);
            BigEndian::write_u64(&mut e[16..], loc.data_offset);
        }
        let sum = checksum(&buf, 36);
        BigEndian::write_u32(&mut buf[36..], sum);
        buf
    }
}

/// What is wrong with the checksum of the header in `buf` (1024 bytes or
/// more), if anything.
pub fn checksum_error(buf: &[u8]) -> Option<FieldError> {
    let stored = BigEndian::read_u32(&buf[36..]);
    let computed = checksum(&buf[..HEADER_SIZE], 36);
    (stored != computed).then(|| {
        FieldError::new(
            36,
            format!("checksum is {stored:#010x}, the content sums to {computed:#010x}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A differencing header like Windows 10 diskpart writes (dfvfs sample).
    fn diskpart_header() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[..8].copy_from_slice(b"cxsparse"); // cookie
        b[8..16].copy_from_slice(&[0xff; 8]); // data offset: none
        b[16..24].copy_from_slice(&8192u64.to_be_bytes()); // BAT at 8192
        b[24..28].copy_from_slice(&[0, 1, 0, 0]); // version 1.0
        b[28..32].copy_from_slice(&2u32.to_be_bytes()); // 2 BAT entries
        b[32..36].copy_from_slice(&(2u32 << 20).to_be_bytes()); // 2 MiB blocks
        b[40..56].copy_from_slice(&[0xab; 16]); // parent id
        b[56..60].copy_from_slice(&0x2000_0000u32.to_be_bytes()); // parent time
        for (i, c) in "C:\\p.vhd".encode_utf16().enumerate() {
            b[64 + 2 * i..66 + 2 * i].copy_from_slice(&c.to_be_bytes()); // parent name
        }
        b[576..580].copy_from_slice(b"W2ku"); // locator 0: absolute path
        b[580..584].copy_from_slice(&4096u32.to_be_bytes()); // space (bytes, as Windows writes it)
        b[584..588].copy_from_slice(&16u32.to_be_bytes()); // length
        b[592..600].copy_from_slice(&4096u64.to_be_bytes()); // offset
        let sum = checksum(&b, 36);
        b[36..40].copy_from_slice(&sum.to_be_bytes());
        b
    }

    #[test]
    fn parses_every_field_and_encodes_back() {
        let raw = diskpart_header();
        let h = DynamicHeader::parse(&raw).unwrap();
        assert_eq!(h.data_offset, u64::MAX);
        assert_eq!(h.table_offset, 8192);
        assert_eq!(h.max_table_entries, 2);
        assert_eq!(h.block_size, 2 << 20);
        assert_eq!(h.parent_uuid, [0xab; 16]);
        assert_eq!(&h.parent_name[..4], &[0, b'C', 0, b':']);
        assert_eq!(&h.locators[0].code, b"W2ku");
        assert_eq!(h.locators[0].data_offset, 4096);
        assert_eq!(h.locators[1], ParentLocator::default());
        assert_eq!(&h.encode()[..], &raw[..]);
    }

    #[test]
    fn rejects_bad_cookie_checksum_and_block_size() {
        let mut raw = diskpart_header();
        raw[0] = b'X';
        let err = DynamicHeader::parse(&raw).unwrap_err();
        assert!(err.at == 0 && err.detail.contains("cookie"), "{err:?}");
        let mut raw = diskpart_header();
        raw[1000] = 1;
        let err = DynamicHeader::parse(&raw).unwrap_err();
        assert!(err.at == 36 && err.detail.contains("checksum"), "{err:?}");
        let mut h = DynamicHeader::parse(&diskpart_header()).unwrap();
        h.block_size = 3000;
        let err = DynamicHeader::parse(&h.encode()).unwrap_err();
        assert!(err.at == 32 && err.detail.contains("block size"), "{err:?}");
    }
}
