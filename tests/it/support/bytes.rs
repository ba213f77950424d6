//! Bytes of files and buffers: reading and changing a file at an offset,
//! integers at a byte offset of a buffer, and comparing contents.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::MIB;

/// `len` bytes of a file at `offset` (fewer at the end of the file).
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f
            .read_at(&mut buf[done..], offset + done as u64)
            .unwrap_or_else(|e| panic!("read {} at {offset}: {e}", path.display()));
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    buf
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

/// Write `bytes` at `offset` of an existing file.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(bytes, offset).expect("patch");
}

/// Flip (xor 0xff) the byte at `offset` of a file.
pub fn flip(path: &Path, offset: u64) {
    let mut b = read_at(path, offset, 1);
    b[0] ^= 0xff;
    patch(path, offset, &b);
}

/// Truncate (or extend with a hole) a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("truncate");
}

pub fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(buf[at..at + 2].try_into().unwrap())
}

pub fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(buf[at..at + 4].try_into().unwrap())
}

pub fn be64(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(buf[at..at + 8].try_into().unwrap())
}

pub fn le16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(buf[at..at + 2].try_into().unwrap())
}

pub fn le32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}

pub fn le64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap())
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

/// Assert two files hold the same bytes (compared in chunks; the first
/// difference is reported).
pub fn assert_same_bytes(a: &Path, b: &Path) {
    let (la, lb) = (file_len(a), file_len(b));
    assert_eq!(
        la,
        lb,
        "lengths of {} and {} differ",
        a.display(),
        b.display()
    );
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut at = 0u64;
    while at < la {
        let n = (la - at).min(MIB) as usize;
        fa.read_exact(&mut ba[..n]).unwrap();
        fb.read_exact(&mut bb[..n]).unwrap();
        if let Some(i) = first_difference(&ba[..n], &bb[..n]) {
            panic!(
                "{} and {} differ at byte {}: {:#04x} vs {:#04x}",
                a.display(),
                b.display(),
                at + i as u64,
                ba[i],
                bb[i]
            );
        }
        at += n as u64;
    }
}

/// Assert that `raw` starts with the bytes of `prefix` and holds only
/// zeros after them.
pub fn assert_prefix_then_zeros(raw: &Path, prefix: &Path) {
    let got = fs::read(raw).unwrap();
    let want = fs::read(prefix).unwrap();
    assert!(
        got.len() >= want.len(),
        "{} ({} bytes) is shorter than {} ({} bytes)",
        raw.display(),
        got.len(),
        prefix.display(),
        want.len()
    );
    if let Some(i) = first_difference(&got[..want.len()], &want) {
        panic!(
            "{} differs from {} at byte {i}: {:#04x} vs {:#04x}",
            raw.display(),
            prefix.display(),
            got[i],
            want[i]
        );
    }
    if let Some(i) = got[want.len()..].iter().position(|&b| b != 0) {
        panic!(
            "{} holds non-zero byte {:#04x} at {} past the end of {}",
            raw.display(),
            got[want.len() + i],
            want.len() + i,
            prefix.display()
        );
    }
}
