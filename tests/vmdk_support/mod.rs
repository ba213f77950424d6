//! Helpers for the VMDK acceptance tests: reading descriptors and header
//! fields straight from the files, sparse raw disks with data at chosen
//! offsets, libvmdk (pyvmdk) reads, content hashes, and running vimg into
//! a real pipe. Used next to `common` (`mod common; mod vmdk_support;`).

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

/// The five subformats vimg and qemu-img write.
pub const SUBFORMATS: [&str; 5] = [
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
];

/// Subformats with grain tables (the ones `qemu-img check` checks).
pub fn is_sparse(subformat: &str) -> bool {
    matches!(
        subformat,
        "monolithicSparse" | "twoGbMaxExtentSparse" | "streamOptimized"
    )
}

/// VMware's (and vimg's) split size for twoGbMaxExtent*: 2047 MiB.
pub const SPLIT_SECTORS: u64 = 4_192_256;
pub const SPLIT: u64 = SPLIT_SECTORS * 512;

/// Read `len` bytes at `offset` of a file (short at the end of the file).
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", s(path)));
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], offset + done as u64).unwrap();
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    buf
}

pub fn le_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}

pub fn le_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap())
}

/// The fields of a hosted sparse (KDMV) header we look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kdmv {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain: u64,
    pub desc_offset: u64,
    pub desc_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub compress: u16,
}

/// Parse the KDMV header in `buf` (at least 512 bytes).
pub fn parse_kdmv(buf: &[u8]) -> Kdmv {
    assert_eq!(&buf[..4], b"KDMV", "no KDMV magic");
    Kdmv {
        version: le_u32(buf, 4),
        flags: le_u32(buf, 8),
        capacity: le_u64(buf, 12),
        grain: le_u64(buf, 20),
        desc_offset: le_u64(buf, 28),
        desc_size: le_u64(buf, 36),
        gtes_per_gt: le_u32(buf, 44),
        rgd_offset: le_u64(buf, 48),
        gd_offset: le_u64(buf, 56),
        overhead: le_u64(buf, 64),
        compress: u16::from_le_bytes([buf[77], buf[78]]),
    }
}

/// The header of a sparse extent file.
pub fn kdmv_header(path: &Path) -> Kdmv {
    parse_kdmv(&read_at(path, 0, 512))
}

/// The descriptor text of a VMDK: embedded in a KDMV extent, or the file.
pub fn descriptor_text(path: &Path) -> String {
    let head = read_at(path, 0, 512);
    let bytes = if head.starts_with(b"KDMV") {
        let h = parse_kdmv(&head);
        assert!(h.desc_offset != 0, "{} has no embedded descriptor", s(path));
        read_at(path, h.desc_offset * 512, (h.desc_size * 512) as usize)
    } else {
        fs::read(path).unwrap()
    };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).expect("descriptor is UTF-8")
}

/// The value of `key=value` (or `key = "value"`) in descriptor text.
pub fn desc_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A descriptor's CID.
pub fn cid_of(path: &Path) -> u32 {
    let text = descriptor_text(path);
    let v = desc_value(&text, "CID").unwrap_or_else(|| panic!("no CID in {}", s(path)));
    u32::from_str_radix(&v, 16).unwrap()
}

/// An extent line: access, sectors, type, file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: String,
    pub sectors: u64,
    pub kind: String,
    pub file: Option<String>,
}

/// The extent lines of descriptor text.
pub fn extent_lines(text: &str) -> Vec<ExtentLine> {
    text.lines()
        .filter(|l| {
            let w = l.split_whitespace().next().unwrap_or("");
            matches!(w, "RW" | "RDONLY" | "NOACCESS")
        })
        .map(|l| {
            let mut words = l.split_whitespace();
            let access = words.next().unwrap().to_string();
            let sectors = words.next().unwrap().parse().unwrap();
            let kind = words.next().unwrap().to_string();
            let file = l.split('"').nth(1).map(str::to_string);
            ExtentLine {
                access,
                sectors,
                kind,
                file,
            }
        })
        .collect()
}

/// A sparse raw disk of `size` bytes holding random data (from `seed`) at
/// each `(offset, len)`, holes elsewhere.
pub fn raw_with_pieces(path: &Path, size: u64, pieces: &[(u64, u64)], seed: u64) {
    let mut rng = Rng::new(seed);
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    for &(at, len) in pieces {
        let len = len.min(size - at);
        f.write_all_at(&rng.bytes(len as usize), at).unwrap();
    }
}

/// Text-like data that deflate shrinks several times over.
pub fn compressible(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"grain ",
        b"table ",
        b"sector ",
        b"stream ",
        b"marker ",
        b"footer\n",
        b"vmdk ",
        b"disk ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(8) as usize]);
    }
    out.truncate(len);
    out
}

/// `qemu-img check` must find no errors.
pub fn assert_qemu_check(path: &Path) {
    let out = run("qemu-img", &["check", "-f", "vmdk", &s(path)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("No errors were found"),
        "qemu-img check {} ({}):\n{text}{}",
        s(path),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// qemu-img's `create-type` of a VMDK.
pub fn qemu_create_type(path: &Path) -> String {
    let info = qemu_info(Some("vmdk"), path);
    info["format-specific"]["data"]["create-type"]
        .as_str()
        .unwrap_or_else(|| panic!("no create-type in {info:#}"))
        .to_string()
}

/// libvmdk compares an image with a raw file, all of it or only the given
/// byte ranges (past the raw file's end it must read zeros). Prints
/// `OK <media size>` or what differs.
const PY_COMPARE: &str = r#"
import sys, pyvmdk
image, raw, ranges = sys.argv[1], sys.argv[2], sys.argv[3]
h = pyvmdk.handle()
h.open(image)
h.open_extent_data_files()
size = h.get_media_size()
src = open(raw, "rb")
if ranges == "all":
    todo = [(0, size)]
else:
    todo = [tuple(int(x) for x in r.split(":")) for r in ranges.split(",")]
bad = None
for off, length in todo:
    at = off
    while at < off + length and bad is None:
        n = min(8 << 20, off + length - at)
        got = h.read_buffer_at_offset(n, at)
        src.seek(at)
        want = src.read(n)
        want = want + bytes(n - len(want))
        if len(got) != n:
            bad = "SHORT read at %d: %d of %d" % (at, len(got), n)
        elif got != want:
            i = next(i for i in range(n) if got[i] != want[i])
            bad = "DIFF at %d: %d vs %d" % (at + i, got[i], want[i])
        at += n
print(bad or "OK %d" % size)
"#;

/// libvmdk reads `image` as the bytes of `raw` (all of it when `ranges` is
/// empty); its media size must be `size`.
pub fn assert_pyvmdk_reads(image: &Path, raw: &Path, size: u64, ranges: &[(u64, u64)]) {
    let spec = if ranges.is_empty() {
        "all".to_string()
    } else {
        ranges
            .iter()
            .map(|(o, l)| format!("{o}:{l}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let out = python(PY_COMPARE, &[&s(image), &s(raw), &spec]);
    assert_eq!(
        out.trim(),
        format!("OK {size}"),
        "pyvmdk reading {}",
        s(image)
    );
}

/// sha256 of a file's content, feeding holes as zeros without reading them.
const PY_SHA256: &str = r#"
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
zeros = memoryview(bytes(4 << 20))
h = hashlib.sha256()
pos = 0
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        data = size
    while pos < data:
        n = min(len(zeros), data - pos)
        h.update(zeros[:n])
        pos += n
    if pos >= size:
        break
    hole = os.lseek(fd, pos, os.SEEK_HOLE)
    while pos < hole:
        b = os.pread(fd, min(4 << 20, hole - pos), pos)
        h.update(b)
        pos += len(b)
print(h.hexdigest())
"#;

pub fn sha256_file(path: &Path) -> String {
    python(PY_SHA256, &[&s(path)]).trim().to_string()
}

/// Run vimg with `args` (its TARGET `-`) with standard output a real pipe
/// into `cat > out`. Returns vimg's stderr; both must succeed.
pub fn vimg_into_pipe(args: &[&str], out: &Path) -> String {
    let mut vimg = Command::new(VIMG)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vimg");
    let pipe = vimg.stdout.take().unwrap();
    let cat = Command::new("cat")
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::from(File::create(out).unwrap()))
        .status()
        .expect("run cat");
    let mut err = String::new();
    vimg.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = vimg.wait().unwrap();
    assert!(
        status.success(),
        "`vimg {}` into a pipe failed ({status}): {err}",
        args.join(" ")
    );
    assert!(cat.success(), "cat failed: {cat}");
    err
}

/// A new raw file of `size` bytes of zeros (a hole).
pub fn zero_raw(path: &Path, size: u64) -> PathBuf {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    path.to_path_buf()
}

/// `vimg convert -O raw image out` (replacing `out`), returning `out`.
pub fn vimg_to_raw(image: &Path, out: &Path) -> PathBuf {
    vimg_ok(&["convert", "-q", "--force", "-O", "raw", &s(image), &s(out)]);
    out.to_path_buf()
}

/// `qemu-img convert -O raw image out`, returning `out`.
pub fn qemu_to_raw(image: &Path, out: &Path) -> PathBuf {
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", &s(image), &s(out)]);
    out.to_path_buf()
}

/// Assert that `raw` starts with the bytes of `prefix` and holds only
/// zeros after them.
pub fn assert_prefix_then_zeros(raw: &Path, prefix: &Path) {
    let got = fs::read(raw).unwrap();
    let want = fs::read(prefix).unwrap();
    assert!(
        got.len() >= want.len(),
        "{} ({} bytes) is shorter than {} ({} bytes)",
        s(raw),
        got.len(),
        s(prefix),
        want.len()
    );
    if let Some(i) = first_difference(&got[..want.len()], &want) {
        panic!(
            "{} differs from {} at byte {i}: {:#04x} vs {:#04x}",
            s(raw),
            s(prefix),
            got[i],
            want[i]
        );
    }
    if let Some(i) = got[want.len()..].iter().position(|&b| b != 0) {
        panic!(
            "{} holds non-zero byte {:#04x} at {} past the end of {}",
            s(raw),
            got[want.len() + i],
            want.len() + i,
            s(prefix)
        );
    }
}

/// A VMDK3 (COWD) sparse file as ESX writes for vmfsSparse redo logs:
/// 2048-byte header, grain directory at sector 4, 4096-entry grain tables,
/// one-sector grains. `grains` are (sector, fill byte); only the grain
/// tables they need are allocated.
pub fn build_cowd(path: &Path, capacity: u64, grains: &[(u64, u8)]) {
    let gd_entries = capacity.div_ceil(4096);
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let mut gd = vec![0u32; (gd_sectors * 128) as usize];
    let mut tables: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut next = 4 + gd_sectors;
    // Tables first, then grains.
    for &(sector, _) in grains {
        let t = (sector / 4096) as usize;
        if gd[t] == 0 {
            gd[t] = next as u32;
            tables.push((t as u64, vec![0u32; 4096]));
            next += 32;
        }
    }
    let mut data: Vec<(u64, u8)> = Vec::new();
    for &(sector, fill) in grains {
        let t = sector / 4096;
        let table = &mut tables.iter_mut().find(|(i, _)| *i == t).unwrap().1;
        table[(sector % 4096) as usize] = next as u32;
        data.push((next, fill));
        next += 1;
    }
    let mut h = vec![0u8; 2048];
    h[..4].copy_from_slice(b"COWD");
    for (at, v) in [
        (4, 1u32),
        (8, 3),
        (12, capacity as u32),
        (16, 1),
        (20, 4),
        (24, gd_entries as u32),
        (28, next as u32),
    ] {
        h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let f = File::create(path).unwrap();
    f.write_all_at(&h, 0).unwrap();
    let gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    f.write_all_at(&gd_bytes, 4 * 512).unwrap();
    for (t, table) in &tables {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        f.write_all_at(&bytes, gd[*t as usize] as u64 * 512)
            .unwrap();
    }
    for (sector, fill) in data {
        f.write_all_at(&[fill; 512], sector * 512).unwrap();
    }
    f.set_len(next * 512).unwrap();
}

/// The first index where two equally long buffers differ (fast in debug
/// builds: whole chunks are compared with memcmp first).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    assert_eq!(a.len(), b.len(), "buffers of different lengths");
    let chunk = 64 * 1024;
    let mut at = 0;
    while at < a.len() {
        let end = (at + chunk).min(a.len());
        if a[at..end] != b[at..end] {
            return (at..end).find(|&i| a[i] != b[i]);
        }
        at = end;
    }
    None
}
