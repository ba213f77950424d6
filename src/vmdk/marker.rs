//! Stream markers of streamOptimized VMDKs. All fields little-endian.
//!
//! ```text
//! grain marker (precedes each compressed grain; the whole is padded to a sector)
//!      0    8 LBA: the grain's first virtual sector
//!      8    4 size of the compressed data that follows
//!     12    - zlib-compressed grain
//!
//! metadata marker (one sector; what it announces follows in the next sectors)
//!      0    8 number of sectors that follow (0 for the end-of-stream marker)
//!      8    4 size: 0, which tells it from a grain marker
//!     12    4 type: 0 end of stream, 1 grain table, 2 grain directory, 3 footer
//!     16  496 padding (zero)
//! ```

use byteorder::{ByteOrder, LittleEndian};

use crate::io::{align_up, SECTOR};

/// The kinds of metadata marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerType {
    EndOfStream = 0,
    GrainTable = 1,
    GrainDirectory = 2,
    Footer = 3,
}

/// A metadata marker announcing `sectors` sectors of `kind`.
pub fn meta(sectors: u64, kind: MarkerType) -> [u8; SECTOR as usize] {
    let mut m = [0u8; SECTOR as usize];
    LittleEndian::write_u64(&mut m[0..], sectors);
    LittleEndian::write_u32(&mut m[12..], kind as u32);
    m
}

/// Append a grain marker for the grain at virtual sector `lba` with its
/// compressed `data`, padded to a whole sector.
pub fn push_grain(out: &mut Vec<u8>, lba: u64, data: &[u8]) {
    let start = out.len();
    let mut head = [0u8; 12];
    LittleEndian::write_u64(&mut head[0..], lba);
    LittleEndian::write_u32(&mut head[8..], data.len() as u32);
    out.extend_from_slice(&head);
    out.extend_from_slice(data);
    let padded = start + align_up((out.len() - start) as u64, SECTOR) as usize;
    out.resize(padded, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_marker_fields() {
        let m = meta(4, MarkerType::GrainTable);
        assert_eq!(LittleEndian::read_u64(&m[0..]), 4); // sectors
        assert_eq!(LittleEndian::read_u32(&m[8..]), 0); // size 0: metadata
        assert_eq!(LittleEndian::read_u32(&m[12..]), 1); // grain table
        assert!(m[16..].iter().all(|&b| b == 0));
        assert_eq!(meta(0, MarkerType::EndOfStream), [0u8; 512]);
    }

    #[test]
    fn grain_marker_is_padded_to_a_sector() {
        let mut out = vec![1u8; 512];
        push_grain(&mut out, 128, &[9u8; 600]);
        assert_eq!(out.len(), 512 + 1024);
        assert_eq!(LittleEndian::read_u64(&out[512..]), 128);
        assert_eq!(LittleEndian::read_u32(&out[520..]), 600);
        assert_eq!(out[524], 9);
        assert_eq!(out[524 + 600], 0);
    }
}
