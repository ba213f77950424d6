//! VHD structures read and patched byte by byte: footers, dynamic headers,
//! parent locators and the BAT, and the specification's CHS algorithm. An
//! implementation of the format independent of vimg's (it is an oracle);
//! the checksum is the fuzz harness's, which is independent of vimg too.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use crate::harness::vhd_checksum as checksum;
use crate::support::{be16, be32, be64, field_str, file_len, read_at, vimg_info};

/// The trailing footer (last 512 bytes).
pub fn tail_footer(path: &Path) -> Vec<u8> {
    read_at(path, file_len(path) - 512, 512)
}

/// True when `buf` is a footer with the cookie and a correct checksum.
pub fn footer_valid(buf: &[u8]) -> bool {
    &buf[..8] == b"conectix" && be32(buf, 64) == checksum(&buf[..512], 64)
}

/// Footer fields the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FooterFields {
    pub data_offset: u64,
    pub creator_app: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub chs: (u16, u8, u8),
    pub disk_type: u32,
    pub uuid: String,
}

pub fn footer_fields(buf: &[u8]) -> FooterFields {
    FooterFields {
        data_offset: be64(buf, 16),
        creator_app: buf[28..32].try_into().unwrap(),
        original_size: be64(buf, 40),
        current_size: be64(buf, 48),
        chs: (be16(buf, 56), buf[58], buf[59]),
        disk_type: be32(buf, 60),
        uuid: uuid_string(&buf[68..84]),
    }
}

/// A 16-byte id as 8-4-4-4-12 lowercase hex, as vimg, vhdiinfo and pyvhdi
/// print it.
pub fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Apply `edit` to every footer of a VHD (the copy at offset 0 when there
/// is one, and the trailing footer) and store each with a fresh checksum.
pub fn patch_footers(path: &Path, edit: impl Fn(&mut [u8])) {
    let len = file_len(path);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut offsets = vec![len - 512];
    if &read_at(path, 0, 8)[..] == b"conectix" && len > 512 {
        offsets.push(0);
    }
    for at in offsets {
        let mut buf = vec![0u8; 512];
        f.read_exact_at(&mut buf, at).unwrap();
        edit(&mut buf);
        let sum = checksum(&buf, 64);
        buf[64..68].copy_from_slice(&sum.to_be_bytes());
        f.write_all_at(&buf, at).unwrap();
    }
}

/// One parent locator entry of a dynamic header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locator {
    pub code: [u8; 4],
    pub space: u32,
    pub length: u32,
    pub offset: u64,
}

/// The dynamic header fields the tests look at.
#[derive(Clone, Debug)]
pub struct DynHeader {
    pub at: u64,
    pub raw: Vec<u8>,
    pub table_offset: u64,
    pub max_entries: u32,
    pub block_size: u32,
    pub parent_uuid: String,
    pub parent_timestamp: u32,
    pub parent_name: String,
    /// The locators with a non-zero platform code, in slot order.
    pub locators: Vec<Locator>,
}

/// Parse the dynamic header the footer copy at offset 0 points to; the
/// cookie and checksum must be right.
pub fn dyn_header(path: &Path) -> DynHeader {
    let footer = read_at(path, 0, 512);
    assert!(
        footer_valid(&footer),
        "{}: footer copy at 0 invalid",
        path.display()
    );
    let at = be64(&footer, 16);
    let raw = read_at(path, at, 1024);
    assert_eq!(&raw[..8], b"cxsparse", "{}: header cookie", path.display());
    assert_eq!(
        be32(&raw, 36),
        checksum(&raw, 36),
        "{}: dynamic header checksum",
        path.display()
    );
    let units: Vec<u16> = (64..576)
        .step_by(2)
        .map(|i| be16(&raw, i))
        .take_while(|&u| u != 0)
        .collect();
    let mut locators = Vec::new();
    for i in 0..8 {
        let e = &raw[576 + 24 * i..576 + 24 * (i + 1)];
        if e[..4] != [0; 4] {
            locators.push(Locator {
                code: e[..4].try_into().unwrap(),
                space: be32(e, 4),
                length: be32(e, 8),
                offset: be64(e, 16),
            });
        }
    }
    DynHeader {
        at,
        table_offset: be64(&raw, 16),
        max_entries: be32(&raw, 28),
        block_size: be32(&raw, 32),
        parent_uuid: uuid_string(&raw[40..56]),
        parent_timestamp: be32(&raw, 56),
        parent_name: String::from_utf16(&units).unwrap(),
        locators,
        raw,
    }
}

impl DynHeader {
    pub fn locator(&self, code: &[u8; 4]) -> &Locator {
        self.locators
            .iter()
            .find(|l| &l.code == code)
            .unwrap_or_else(|| panic!("no {} locator in {:?}", String::from_utf8_lossy(code), self))
    }
}

/// The BAT entry of `block` (0xffffffff when unallocated).
pub fn bat_entry(path: &Path, h: &DynHeader, block: u64) -> u32 {
    be32(&read_at(path, h.table_offset + 4 * block, 4), 0)
}

/// A string as UTF-16LE bytes (W2ru/W2ku locator payloads).
pub fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The VHD specification's CHS algorithm (appendix "CHS calculation"),
/// which may address fewer sectors than asked for.
pub fn spec_chs(total_sectors: u64) -> (u16, u8, u8) {
    let total = total_sectors.min(65535 * 16 * 255);
    let (spt, heads, cth);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        let mut s = 17;
        let mut c = total / s;
        let mut h = c.div_ceil(1024).max(4);
        if c >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            c = total / s;
        }
        if c >= h * 1024 {
            s = 63;
            h = 16;
            c = total / s;
        }
        spt = s;
        heads = h;
        cth = c;
    }
    ((cth / heads) as u16, heads as u8, spt as u8)
}

pub fn chs_bytes(chs: (u16, u8, u8)) -> u64 {
    chs.0 as u64 * chs.1 as u64 * chs.2 as u64 * 512
}

/// `vimg info --output json`'s format-specific data of a VHD.
pub fn vimg_vpc_data(path: &Path) -> serde_json::Value {
    let v = vimg_info(None, path);
    assert_eq!(field_str(&v, "format"), "vpc", "{v:#}");
    v["format-specific"]["data"].clone()
}
