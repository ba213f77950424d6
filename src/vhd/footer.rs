//! The VHD hard disk footer: 512 bytes at the end of every VHD, with a copy
//! at offset 0 in dynamic and differencing disks. All fields big-endian.
//!
//! ```text
//! offset size field
//!      0    8 cookie "conectix"
//!      8    4 features (2 = reserved bit, always set)
//!     12    4 file format version (0x00010000)
//!     16    8 data offset: dynamic header, or all ones for fixed disks
//!     24    4 timestamp: seconds since 2000-01-01 00:00 UTC
//!     28    4 creator application ("win ", "vpc ", "qemu", "vimg", ...)
//!     32    4 creator version (major << 16 | minor)
//!     36    4 creator host OS ("Wi2k", "Mac ")
//!     40    8 original size in bytes
//!     48    8 current size in bytes
//!     56    2 cylinders
//!     58    1 heads
//!     59    1 sectors per track
//!     60    4 disk type: 2 fixed, 3 dynamic, 4 differencing
//!     64    4 checksum: one's complement of the byte sum, this field as 0
//!     68   16 unique id
//!     84    1 saved state
//!     85  427 reserved (zero)
//! ```

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use byteorder::{BigEndian, ByteOrder};

use crate::error::FieldError;
use crate::image::check::{Finding, Severity};
use crate::io::SECTOR;

/// Size of the footer on disk.
pub const FOOTER_SIZE: usize = 512;
const COOKIE: &[u8; 8] = b"conectix";
/// Seconds from the Unix epoch to the VHD epoch (2000-01-01 UTC).
pub const VHD_EPOCH: u64 = 946_684_800;

/// Seconds since the VHD epoch, for footers and parent records.
pub fn vhd_time(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(VHD_EPOCH) as u32)
        .unwrap_or(0)
}

/// The kinds of VHD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

impl DiskType {
    fn code(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
        }
    }

    /// Name as `info` shows it.
    pub fn name(self) -> &'static str {
        match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
        }
    }
}

/// Cylinders, heads, sectors per track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

impl Geometry {
    /// Sectors the geometry addresses.
    pub fn total_sectors(self) -> u64 {
        self.cylinders as u64 * self.heads as u64 * self.sectors as u64
    }
}

/// A parsed, checksum-verified footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footer {
    pub features: u32,
    pub version: u32,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub geometry: Geometry,
    pub disk_type: DiskType,
    pub uuid: [u8; 16],
    pub saved_state: bool,
}

/// One's complement of the sum of all bytes, the checksum field counted as
/// zero (`field` is its offset).
pub fn checksum(buf: &[u8], field: usize) -> u32 {
    let sum = buf
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(b as u32));
    !sum
}

/// Bytes of the footer Virtual PC wrote before Virtual PC 2004 (its
/// reserved area one byte shorter); the specification has readers take a
/// footer in the last 511 bytes as well as in the last 512.
pub const OLD_FOOTER_SIZE: usize = 511;

/// The footer in a file's last sector `tail`, and its length: 512 bytes,
/// or the 511 older Virtual PC wrote (read as if padded with a zero byte,
/// which changes neither a field nor the checksum).
pub fn parse_tail(tail: &[u8; FOOTER_SIZE]) -> Result<(Footer, usize), FieldError> {
    let err = match Footer::parse(tail) {
        Ok(f) => return Ok((f, FOOTER_SIZE)),
        Err(e) => e,
    };
    if has_cookie(&tail[1..]) {
        let mut padded = [0u8; FOOTER_SIZE];
        padded[..OLD_FOOTER_SIZE].copy_from_slice(&tail[1..]);
        if let Ok(f) = Footer::parse(&padded) {
            return Ok((f, OLD_FOOTER_SIZE));
        }
    }
    Err(err)
}

/// True when `buf` starts with the footer cookie.
pub fn has_cookie(buf: &[u8]) -> bool {
    buf.len() >= 8 && &buf[..8] == COOKIE
}

impl Footer {
    /// Parse and verify a footer; the error says which field is wrong.
    pub fn parse(buf: &[u8]) -> Result<Footer, FieldError> {
        Footer::parse_with(buf, true)
    }

    /// Parse a footer whatever its checksum says (for `check`, which
    /// reports the checksum and walks on when the fields are usable).
    pub fn parse_unverified(buf: &[u8]) -> Result<Footer, FieldError> {
        Footer::parse_with(buf, false)
    }

    /// Parse a footer, verifying its checksum when `verify` says so.
    fn parse_with(buf: &[u8], verify: bool) -> Result<Footer, FieldError> {
        if buf.len() < FOOTER_SIZE {
            return Err(FieldError::new(
                0,
                format!("{} bytes, a footer needs 512", buf.len()),
            ));
        }
        let buf = &buf[..FOOTER_SIZE];
        if !has_cookie(buf) {
            return Err(FieldError::new(0, "no \"conectix\" cookie"));
        }
        let stored = BigEndian::read_u32(&buf[64..]);
        let computed = checksum(buf, 64);
        if verify && stored != computed {
            return Err(FieldError::new(
                64,
                format!("checksum is {stored:#010x}, the content sums to {computed:#010x}"),
            ));
        }
        let disk_type = match BigEndian::read_u32(&buf[60..]) {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            other => {
                return Err(FieldError::new(
                    60,
                    format!("disk type {other} (known: 2, 3, 4)"),
                ))
            }
        };
        Ok(Footer {
            features: BigEndian::read_u32(&buf[8..]),
            version: BigEndian::read_u32(&buf[12..]),
            data_offset: BigEndian::read_u64(&buf[16..]),
            timestamp: BigEndian::read_u32(&buf[24..]),
            creator_app: buf[28..32].try_into().unwrap(),
            creator_version: BigEndian::read_u32(&buf[32..]),
            creator_os: buf[36..40].try_into().unwrap(),
            original_size: BigEndian::read_u64(&buf[40..]),
            current_size: BigEndian::read_u64(&buf[48..]),
            geometry: Geometry {
                cylinders: BigEndian::read_u16(&buf[56..]),
                heads: buf[58],
                sectors: buf[59],
            },
            disk_type,
            uuid: buf[68..84].try_into().unwrap(),
            saved_state: buf[84] != 0,
        })
    }

    /// The footer as 512 bytes with a correct checksum.
    pub fn encode(&self) -> [u8; FOOTER_SIZE] {
        let mut buf = [0u8; FOOTER_SIZE];
        buf[..8].copy_from_slice(COOKIE);
        BigEndian::write_u32(&mut buf[8..], self.features);
        BigEndian::write_u32(&mut buf[12..], self.version);
        BigEndian::write_u64(&mut buf[16..], self.data_offset);
        BigEndian::write_u32(&mut buf[24..], self.timestamp);
        buf[28..32].copy_from_slice(&self.creator_app);
        BigEndian::write_u32(&mut buf[32..], self.creator_version);
        buf[36..40].copy_from_slice(&self.creator_os);
        BigEndian::write_u64(&mut buf[40..], self.original_size);
        BigEndian::write_u64(&mut buf[48..], self.current_size);
        BigEndian::write_u16(&mut buf[56..], self.geometry.cylinders);
        buf[58] = self.geometry.heads;
        buf[59] = self.geometry.sectors;
        BigEndian::write_u32(&mut buf[60..], self.disk_type.code());
        buf[68..84].copy_from_slice(&self.uuid);
        buf[84] = self.saved_state as u8;
        let sum = checksum(&buf, 64);
        BigEndian::write_u32(&mut buf[64..], sum);
        buf
    }
}

/// Findings about the footer a disk goes by, `footer` (at byte `at` of
/// the file at `path`), whatever its kind: a geometry that does not fit the
/// size, a null unique ID, and a time stamp in the future (by more than
/// half an hour, as blktap allows).
pub fn findings(path: &Path, footer: &Footer, at: u64) -> Vec<Finding> {
    use super::geometry::{chs_for, MAX_GEOMETRY};
    let mut out = Vec::new();
    let warn = |offset: u64, message: String| {
        Finding::new(
            Severity::Warning,
            path,
            Some(at + offset),
            "VHD footer",
            message,
        )
    };
    let g = footer.geometry;
    let size = footer.current_size;
    let fits =
        g == MAX_GEOMETRY || g == chs_for(size / SECTOR) || g.total_sectors() * SECTOR == size;
    if !fits {
        out.push(warn(
            56,
            format!(
                "the geometry {}/{}/{} addresses {} bytes, which does not fit the current size {size} (readers that size the disk by geometry and those that go by the current size disagree)",
                g.cylinders,
                g.heads,
                g.sectors,
                g.total_sectors() * SECTOR
            ),
        ));
    }
    if footer.uuid == [0; 16] {
        out.push(warn(
            68,
            "the unique ID is null: differencing disks made from it cannot tell it from another"
                .to_string(),
        ));
    }
    let now = vhd_time(SystemTime::now()) as u64;
    let stamp = footer.timestamp as u64;
    if stamp > now + 1800 {
        out.push(warn(
            24,
            format!(
                "the time stamp ({} s after 2000-01-01, Unix time {}) is {} s in the future",
                stamp,
                stamp + VHD_EPOCH,
                stamp - now
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footer of qemu-iotests' Hyper-V 2012 R2 sample, field by field.
    fn hyperv_footer() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..8].copy_from_slice(b"conectix"); // cookie
        b[8..12].copy_from_slice(&[0, 0, 0, 2]); // features
        b[12..16].copy_from_slice(&[0, 1, 0, 0]); // version 1.0
        b[16..24].copy_from_slice(&512u64.to_be_bytes()); // dynamic header at 512
        b[24..28].copy_from_slice(&0x1a2b_3c4du32.to_be_bytes()); // timestamp
        b[28..32].copy_from_slice(b"win "); // creator app
        b[32..36].copy_from_slice(&[0, 6, 0, 3]); // creator version 6.3
        b[36..40].copy_from_slice(b"Wi2k"); // creator OS
        b[40..48].copy_from_slice(&136_365_211_648u64.to_be_bytes()); // original size
        b[48..56].copy_from_slice(&136_365_211_648u64.to_be_bytes()); // current size
        b[56..58].copy_from_slice(&65278u16.to_be_bytes()); // cylinders
        b[58] = 16; // heads
        b[59] = 255; // sectors per track
        b[60..64].copy_from_slice(&3u32.to_be_bytes()); // dynamic
        b[68..84].copy_from_slice(&[0x11; 16]); // unique id
        let sum = checksum(&b, 64);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    #[test]
    fn parses_every_field_and_encodes_back() {
        let raw = hyperv_footer();
        let f = Footer::parse(&raw).unwrap();
        assert_eq!(f.data_offset, 512);
        assert_eq!(&f.creator_app, b"win ");
        assert_eq!(f.creator_version, 0x0006_0003);
        assert_eq!(f.current_size, 136_365_211_648);
        assert_eq!(
            f.geometry,
            Geometry {
                cylinders: 65278,
                heads: 16,
                sectors: 255
            }
        );
        assert_eq!(f.disk_type, DiskType::Dynamic);
        assert!(!f.saved_state);
        assert_eq!(&f.encode()[..], &raw[..]);
    }

    #[test]
    fn bad_checksum_cookie_and_type_are_named() {
        let mut raw = hyperv_footer();
        raw[100] = 1;
        let err = Footer::parse(&raw).unwrap_err();
        assert!(err.at == 64 && err.detail.contains("checksum"), "{err:?}");
        let mut raw = hyperv_footer();
        raw[0] = b'C';
        let err = Footer::parse(&raw).unwrap_err();
        assert!(err.at == 0 && err.detail.contains("cookie"), "{err:?}");
        let mut f = Footer::parse(&hyperv_footer()).unwrap().encode();
        f[63] = 9;
        let sum = checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        let err = Footer::parse(&f).unwrap_err();
        assert!(
            err.at == 60 && err.detail.contains("disk type 9"),
            "{err:?}"
        );
        assert!(Footer::parse(&[0u8; 10]).is_err());
    }
}
