//! VHD-specific helpers for the VHD acceptance tests: reading and patching
//! footers and dynamic headers byte by byte (an implementation of the
//! format independent of vimg's), the specification's CHS algorithm, the
//! corpus and its MANIFEST, sha256 and libvhdi (pyvhdi) reads.
//!
//! Used by `tests/vhd_*.rs` next to `tests/common/mod.rs`.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Footer and header checksum: one's complement of the byte sum with the
/// 4-byte checksum field at `field` counted as zero.
pub fn checksum(buf: &[u8], field: usize) -> u32 {
    let mut sum = 0u32;
    for (i, &b) in buf.iter().enumerate() {
        if !(field..field + 4).contains(&i) {
            sum = sum.wrapping_add(b as u32);
        }
    }
    !sum
}

pub fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b[..2].try_into().unwrap())
}
pub fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
pub fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// `len` bytes of a file at `offset`.
pub fn read_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", s(path)));
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset)
        .unwrap_or_else(|e| panic!("read {} at {offset}: {e}", s(path)));
    buf
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// The trailing footer (last 512 bytes).
pub fn tail_footer(path: &Path) -> Vec<u8> {
    read_bytes(path, file_len(path) - 512, 512)
}

/// True when `buf` is a footer with the cookie and a correct checksum.
pub fn footer_valid(buf: &[u8]) -> bool {
    &buf[..8] == b"conectix" && be32(&buf[64..]) == checksum(&buf[..512], 64)
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
        data_offset: be64(&buf[16..]),
        creator_app: buf[28..32].try_into().unwrap(),
        original_size: be64(&buf[40..]),
        current_size: be64(&buf[48..]),
        chs: (be16(&buf[56..]), buf[58], buf[59]),
        disk_type: be32(&buf[60..]),
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
    if &read_bytes(path, 0, 8)[..] == b"conectix" && len > 512 {
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
    let footer = read_bytes(path, 0, 512);
    assert!(
        footer_valid(&footer),
        "{}: footer copy at 0 invalid",
        s(path)
    );
    let at = be64(&footer[16..]);
    let raw = read_bytes(path, at, 1024);
    assert_eq!(&raw[..8], b"cxsparse", "{}: header cookie", s(path));
    assert_eq!(
        be32(&raw[36..]),
        checksum(&raw, 36),
        "{}: dynamic header checksum",
        s(path)
    );
    let units: Vec<u16> = raw[64..576]
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let mut locators = Vec::new();
    for i in 0..8 {
        let e = &raw[576 + 24 * i..576 + 24 * (i + 1)];
        if e[..4] != [0; 4] {
            locators.push(Locator {
                code: e[..4].try_into().unwrap(),
                space: be32(&e[4..]),
                length: be32(&e[8..]),
                offset: be64(&e[16..]),
            });
        }
    }
    DynHeader {
        at,
        table_offset: be64(&raw[16..]),
        max_entries: be32(&raw[28..]),
        block_size: be32(&raw[32..]),
        parent_uuid: uuid_string(&raw[40..56]),
        parent_timestamp: be32(&raw[56..]),
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
    be32(&read_bytes(path, h.table_offset + 4 * block, 4))
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

/// The shared corpus of third-party images.
pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// Table A of the corpus MANIFEST: (virtual size, content sha256) that
/// qemu-img reports/produces for `rel` (as listed there).
pub fn manifest_entry(rel: &str) -> (u64, String) {
    let text = fs::read_to_string(corpus().join("MANIFEST.md")).expect("corpus MANIFEST.md");
    let start = text.find("## A.").expect("section A");
    let end = text[start..]
        .find("## B.")
        .map_or(text.len(), |e| start + e);
    for line in text[start..end].lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 12 || cols[1] != format!("`{rel}`") {
            continue;
        }
        let size = cols[8]
            .replace(',', "")
            .parse()
            .unwrap_or_else(|e| panic!("MANIFEST size of {rel}: {e}: {line}"));
        let sha = cols[10].trim_matches('`').to_string();
        assert_eq!(sha.len(), 64, "MANIFEST content sha256 of {rel}: {line}");
        return (size, sha);
    }
    panic!("{rel} is not in table A of the MANIFEST");
}

/// sha256 of a file, by coreutils' sha256sum.
pub fn sha256(path: &Path) -> String {
    let out = run_ok("sha256sum", &[s(path)]);
    out.split_whitespace().next().unwrap().to_string()
}

/// True when a (sparse) file holds no data extent at all: every byte is
/// a hole (SEEK_DATA finds nothing).
pub fn all_holes(path: &Path) -> bool {
    let out = python(
        "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\ntry:\n    print(os.lseek(fd, 0, os.SEEK_DATA))\nexcept OSError as e:\n    print('NODATA' if e.errno == 6 else e)",
        &[&s(path)],
    );
    out.trim() == "NODATA"
}

const PY_COMPARE: &str = r#"
import os, sys, pyvhdi
args = sys.argv[1:]
ranges = None
if "--" in args:
    i = args.index("--")
    ranges = [tuple(int(x) for x in r.split(":")) for r in args[i + 1:]]
    args = args[:i]
image, expected = args[0], args[1]
chain = [image] + args[2:]
handles = []
for p in chain:
    h = pyvhdi.file()
    h.open(p)
    handles.append(h)
for i in reversed(range(len(handles) - 1)):
    handles[i].set_parent(handles[i + 1])
f = handles[0]
size = f.get_media_size()
want = os.path.getsize(expected)
if size != want:
    print("SIZE", size, "expected", want)
    sys.exit(0)
if ranges is None:
    ranges = [(off, min(4 << 20, size - off)) for off in range(0, size, 4 << 20)]
src = open(expected, "rb")
for off, n in ranges:
    n = min(n, size - off)
    a = f.read_buffer_at_offset(n, off)
    src.seek(off)
    b = src.read(n)
    if a != b:
        if len(a) != len(b):
            print("SHORT read at", off, len(a))
        else:
            i = next(i for i in range(n) if a[i] != b[i])
            print("DIFF at", off + i, a[i], b[i])
        sys.exit(0)
print("OK", size)
"#;

/// libvhdi reads `image` (with `parents`, nearest first, set as its parent
/// chain) and must find exactly the bytes of the raw file `expected`.
pub fn assert_pyvhdi_reads(image: &Path, parents: &[&Path], expected: &Path) {
    pyvhdi_compare(image, parents, expected, None);
}

/// Like [`assert_pyvhdi_reads`], but only the given (offset, length)
/// ranges are compared (libvhdi is slow on big blocks); the size is still
/// checked.
pub fn assert_pyvhdi_reads_ranges(image: &Path, expected: &Path, ranges: &[(u64, u64)]) {
    pyvhdi_compare(image, &[], expected, Some(ranges));
}

/// [`assert_pyvhdi_reads`] limited to the given (offset, length) ranges.
pub fn assert_pyvhdi_reads_chain_ranges(
    image: &Path,
    parents: &[&Path],
    expected: &Path,
    ranges: &[(u64, u64)],
) {
    pyvhdi_compare(image, parents, expected, Some(ranges));
}

fn pyvhdi_compare(image: &Path, parents: &[&Path], expected: &Path, ranges: Option<&[(u64, u64)]>) {
    let mut args = vec![s(image), s(expected)];
    args.extend(parents.iter().map(|p| s(p)));
    if let Some(ranges) = ranges {
        args.push("--".into());
        args.extend(ranges.iter().map(|(o, l)| format!("{o}:{l}")));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(PY_COMPARE, &refs);
    assert_eq!(
        out.trim(),
        format!("OK {}", file_len(expected)),
        "libvhdi's reading of {} (parents {:?}) differs from {}",
        s(image),
        parents,
        s(expected)
    );
}

/// pyvhdi's media size, disk type code (2 fixed, 3 dynamic, 4
/// differencing), identifier and parent identifier (empty without one).
pub fn pyvhdi_describe(image: &Path) -> (u64, u32, String, String) {
    let out = python(
        "import sys, pyvhdi\nf = pyvhdi.file()\nf.open(sys.argv[1])\nprint(f.get_media_size(), f.get_disk_type(), f.get_identifier(), f.get_parent_identifier() if f.get_disk_type() == 4 else '-')",
        &[&s(image)],
    );
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "pyvhdi: {out}");
    (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].to_string(),
        parts[3].trim_matches('-').to_string(),
    )
}

/// `vimg info --output json`'s format-specific data.
pub fn vimg_vpc_data(path: &Path) -> serde_json::Value {
    let v = vimg_info(None, path);
    assert_eq!(field_str(&v, "format"), "vpc", "{v:#}");
    v["format-specific"]["data"].clone()
}

/// A vimg run that must fail with exit 1 and one `vimg: error:` line
/// naming `file`; returns that line.
pub fn vimg_one_line_error(args: &[String], file: &Path, what: &str) -> String {
    let out = vimg_run(args);
    assert_one_line_error(&out, file, what);
    String::from_utf8_lossy(&out.stderr).into_owned()
}
