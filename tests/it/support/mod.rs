//! What the integration tests share: running vimg and its peers
//! ([`command`]), the peers as oracles ([`oracle`]), file bytes
//! ([`bytes`]), temporary directories, a deterministic PRNG and the raw
//! disks built from it, and (imported where needed) the third-party corpus
//! and independent readers of the VHD and VMDK structures; the code
//! blocks of the guide's Markdown pages ([`markdown`]).
//!
//! The peers are oracles: a missing peer fails the test, it is never
//! skipped or mocked.

pub mod bytes;
pub mod command;
pub mod corpus;
pub mod faults;
pub mod markdown;
pub mod nbd;
pub mod oracle;
pub mod vhd;
pub mod vmdk;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use bytes::*;
pub(crate) use command::{args, cmd, python, qemu_img, vimg};
pub use command::{Cmd, Run};
pub use oracle::*;

/// The vimg binary cargo built for these tests.
pub const VIMG: &str = env!("CARGO_BIN_EXE_vimg");

/// The python that has pyvmdk, pyvhdi and VMDKstream.
pub const PYTHON: &str = "/usr/bin/python3";

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// `vimg info --output json`, with the format given when `fmt` is.
pub fn vimg_info(fmt: Option<&str>, path: &Path) -> Value {
    vimg!("info --output json").opt("-f", fmt).arg(path).json()
}

/// `vimg convert -O raw image out` (replacing `out`), returning `out`.
pub fn vimg_to_raw(image: &Path, out: &Path) -> PathBuf {
    vimg!("convert -q --force -O raw", image, out).ok();
    out.to_path_buf()
}

/// A JSON field as u64, failing the test when missing.
pub fn field_u64(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no numeric '{key}' in {v:#}"))
}

/// A JSON field as a string, failing the test when missing.
pub fn field_str<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string '{key}' in {v:#}"))
}

/// A new temporary directory, removed when the value is dropped.
/// `cmd` (a vimg command line) started in the background, and given
/// `settle` to get going, for what must run alongside it.
pub fn in_background(cmd: &Cmd, settle: std::time::Duration) -> std::process::Child {
    let child = std::process::Command::new(VIMG)
        .args(cmd.argv())
        .spawn()
        .expect("vimg starts");
    std::thread::sleep(settle);
    child
}

/// A qemu-io write of `len` bytes of `pattern` at 0 into the VMDK at
/// `path`, which may fail (run alongside something that holds the image).
pub fn qemu_io_write_vmdk(path: &Path, pattern: u8, len: &str) -> Run {
    Cmd::new("qemu-io")
        .args(["-f", "vmdk", "-c"])
        .arg(format!("write -P {pattern} 0 {len}"))
        .arg(path)
        .run()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary directory")
}

/// Round up to a whole 512-byte sector.
pub fn sector_up(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

/// Names in a directory, sorted (hidden ones included).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// A small deterministic PRNG (xorshift64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Mix the seed so small seeds give unrelated streams; never zero.
        let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        Rng(if x == 0 { 1 } else { x })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[0, n)`; `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// A random non-zero byte.
    pub fn nonzero_byte(&mut self) -> u8 {
        1 + self.below(255) as u8
    }
}

/// What a region of a built raw disk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// Random bytes.
    Random,
    /// Printable text with newlines.
    Text,
    /// One non-zero byte repeated.
    Fill(u8),
    /// Zeros written explicitly (allocated in the file).
    Zeros,
    /// Nothing written: a hole.
    Hole,
}

const WORDS: [&str; 16] = [
    "grain",
    "sector",
    "footer",
    "extent",
    "cylinder",
    "block",
    "bitmap",
    "qemu",
    "vimg",
    "disk",
    "table",
    "header",
    "sparse",
    "conectix",
    "KDMV",
    "descriptor",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.chance(10) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// Write a random sparse raw disk of exactly `size` bytes at `path`: a mix
/// of random data, text, repeated bytes, explicitly written zeros and
/// holes, with lengths from one byte to a few MiB at unaligned offsets.
/// Single bytes are also put around every 64 KiB grain and 2 MiB block
/// boundary now and then, and the last byte is data.
pub fn build_raw(path: &Path, size: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    let file = File::create(path).expect("create raw");
    file.set_len(size).expect("set_len");
    let mut offset = 0u64;
    while offset < size {
        let len = match rng.below(100) {
            0..=49 => rng.range(1, 8 * KIB),
            50..=84 => rng.range(8 * KIB, 512 * KIB),
            _ => rng.range(512 * KIB, 3 * MIB),
        }
        .min(size - offset);
        let piece = match rng.below(100) {
            0..=39 => Piece::Hole,
            40..=59 => Piece::Random,
            60..=71 => Piece::Text,
            72..=85 => Piece::Zeros,
            _ => Piece::Fill(rng.nonzero_byte()),
        };
        let data = match piece {
            Piece::Hole => None,
            Piece::Random => Some(rng.bytes(len as usize)),
            Piece::Text => Some(text(&mut rng, len as usize)),
            Piece::Zeros => Some(vec![0u8; len as usize]),
            Piece::Fill(b) => Some(vec![b; len as usize]),
        };
        if let Some(data) = data {
            file.write_all_at(&data, offset).expect("write raw");
        }
        offset += len;
    }
    // Bytes right at allocation-unit boundaries, whatever lies around them.
    let mut boundary = 64 * KIB;
    while boundary < size {
        let percent = if boundary.is_multiple_of(2 * MIB) {
            50
        } else {
            4
        };
        if rng.chance(percent) {
            let at = boundary - 1;
            let n = 2.min(size - at);
            let b = [rng.nonzero_byte(), rng.nonzero_byte()];
            file.write_all_at(&b[..n as usize], at).expect("write raw");
        }
        boundary += 64 * KIB;
    }
    if size > 0 {
        file.write_all_at(&[rng.nonzero_byte()], size - 1)
            .expect("write raw");
    }
    file.sync_all().ok();
    assert_eq!(fs::metadata(path).unwrap().len(), size);
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

/// A new raw file of `size` bytes of zeros (a hole), returning its path.
pub fn zero_raw(path: &Path, size: u64) -> PathBuf {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    path.to_path_buf()
}
