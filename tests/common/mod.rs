//! Shared helpers for the integration tests: running vimg and its peers
//! (qemu-img, qemu-io, python3 with pyvmdk/pyvhdi), a deterministic PRNG
//! and a builder for random sparse raw disks.
//!
//! The peers are oracles: a missing peer fails the test, it is never
//! skipped or mocked.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The vimg binary cargo built for these tests.
pub const VIMG: &str = env!("CARGO_BIN_EXE_vimg");

/// The python that has pyvmdk and pyvhdi.
pub const PYTHON: &str = "/usr/bin/python3";

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// An assert_cmd command for vimg.
pub fn vimg() -> assert_cmd::Command {
    assert_cmd::Command::new(VIMG)
}

/// Render a command line for failure messages.
fn cmdline<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> String {
    let mut s = prog.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Run a program and return what it did; fails the test when it cannot be
/// started at all (a missing peer is a failure, not a skip).
pub fn run<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Output {
    Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", cmdline(prog, args)))
}

/// Run a program that must succeed; returns its stdout. On failure the test
/// fails with the command line, the exit status and stderr.
pub fn run_ok<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> String {
    let out = run(prog, args);
    if !out.status.success() {
        panic!(
            "`{}` failed ({}):\nstdout: {}\nstderr: {}",
            cmdline(prog, args),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Run vimg; it must succeed. Returns stdout.
pub fn vimg_ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    run_ok(VIMG, args)
}

/// Run qemu-img; it must succeed. Returns stdout.
pub fn qemu_img<S: AsRef<OsStr>>(args: &[S]) -> String {
    run_ok("qemu-img", args)
}

/// The name qemu uses for a format (`vhd` is `vpc`).
pub fn qemu_fmt(fmt: &str) -> &str {
    match fmt {
        "vhd" => "vpc",
        other => other,
    }
}

/// Run qemu-io commands (`-c` each) on an image of format `fmt`.
pub fn qemu_io(fmt: &str, path: &Path, cmds: &[String]) {
    let mut args: Vec<String> = vec!["-f".into(), qemu_fmt(fmt).into()];
    for c in cmds {
        args.push("-c".into());
        args.push(c.clone());
    }
    args.push(path.display().to_string());
    let out = run("qemu-io", &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty() && !stdout.contains("failed"),
        "`{}` failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        cmdline("qemu-io", &args),
        out.status
    );
}

/// `qemu-img info --output json`, with the format given when `fmt` is.
pub fn qemu_info(fmt: Option<&str>, path: &Path) -> Value {
    let mut args: Vec<String> = vec!["info".into(), "--output".into(), "json".into()];
    if let Some(f) = fmt {
        args.push("-f".into());
        args.push(qemu_fmt(f).into());
    }
    args.push(path.display().to_string());
    serde_json::from_str(&qemu_img(&args)).expect("qemu-img info JSON")
}

/// `vimg info --output json`, with the format given when `fmt` is.
pub fn vimg_info(fmt: Option<&str>, path: &Path) -> Value {
    let mut args: Vec<String> = vec!["info".into(), "--output".into(), "json".into()];
    if let Some(f) = fmt {
        args.push("-f".into());
        args.push(f.into());
    }
    args.push(path.display().to_string());
    let text = vimg_ok(&args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("vimg info printed invalid JSON ({e}):\n{text}"))
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

/// `qemu-img compare -f fa a -F fb b` must report the images identical.
/// (Without -s, a size difference is allowed when the longer image reads
/// as zeros past the shorter one's end.)
pub fn assert_identical(fa: &str, a: &Path, fb: &str, b: &Path) {
    let args = [
        "compare".to_string(),
        "-f".into(),
        qemu_fmt(fa).into(),
        "-F".into(),
        qemu_fmt(fb).into(),
        a.display().to_string(),
        b.display().to_string(),
    ];
    let out = run("qemu-img", &args);
    assert!(
        out.status.code() == Some(0),
        "`qemu-img {}` says the images differ ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Images are identical"),
        "unexpected qemu-img compare output: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Run a python3 script with arguments; it must succeed. Returns stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let mut all: Vec<&str> = vec!["-c", script];
    all.extend_from_slice(args);
    run_ok(PYTHON, &all)
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

/// Check that a failed vimg run exited with 1 and wrote exactly one line
/// to stderr, naming `file`, without a panic; `Err` says what is wrong.
pub fn one_line_error(out: &Output, file: &Path) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = file.file_name().unwrap().to_string_lossy();
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        return Err(format!("vimg panicked ({}):\n{stderr}", out.status));
    }
    if out.status.code() != Some(1) {
        return Err(format!(
            "expected exit code 1, got {}; stderr:\n{stderr}",
            out.status
        ));
    }
    if stderr.lines().count() != 1 || !stderr.ends_with('\n') {
        return Err(format!(
            "expected exactly one line on stderr, got:\n{stderr}"
        ));
    }
    if !stderr.contains(&*name) {
        return Err(format!("the error does not name {name}: {stderr}"));
    }
    if !stderr.starts_with("vimg: error: ") {
        return Err(format!("not a vimg error line: {stderr}"));
    }
    Ok(())
}

/// Assert that a failed vimg run exited with 1 and wrote exactly one line
/// to stderr, naming `file`, without a panic.
pub fn assert_one_line_error(out: &Output, file: &Path, what: &str) {
    if let Err(e) = one_line_error(out, file) {
        panic!("{what}: {e}");
    }
}

/// Output of a vimg run (success or not) with the given arguments.
pub fn vimg_run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run(VIMG, args)
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
pub enum Piece {
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
/// boundary now and then, and the last byte is data. Returns the layout.
pub fn build_raw(path: &Path, size: u64, seed: u64) -> Vec<(u64, u64, Piece)> {
    let mut rng = Rng::new(seed);
    let file = File::create(path).expect("create raw");
    file.set_len(size).expect("set_len");
    let mut layout = Vec::new();
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
        layout.push((offset, len, piece));
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
            layout.push((at, n, Piece::Random));
        }
        boundary += 64 * KIB;
    }
    if size > 0 {
        file.write_all_at(&[rng.nonzero_byte()], size - 1)
            .expect("write raw");
        layout.push((size - 1, 1, Piece::Random));
    }
    file.sync_all().ok();
    assert_eq!(fs::metadata(path).unwrap().len(), size);
    layout
}

/// Flip (xor 0xff) the byte at `offset` of a file.
pub fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read byte");
    b[0] ^= 0xff;
    f.write_all_at(&b, offset).expect("write byte");
}

/// Write `bytes` at `offset` of an existing file.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(bytes, offset).expect("patch");
}

/// Truncate a file to `len` bytes.
pub fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("truncate");
}

/// A path inside `dir`.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A path as a String argument.
pub fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Assert two files hold the same bytes (compared in chunks; the first
/// difference is reported).
pub fn assert_same_bytes(a: &Path, b: &Path) {
    use std::io::Read;
    let (la, lb) = (
        fs::metadata(a).unwrap().len(),
        fs::metadata(b).unwrap().len(),
    );
    assert_eq!(la, lb, "lengths of {} and {} differ", s(a), s(b));
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut at = 0u64;
    while at < la {
        let n = (la - at).min(MIB) as usize;
        fa.read_exact(&mut ba[..n]).unwrap();
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            let i = (0..n).find(|&i| ba[i] != bb[i]).unwrap();
            panic!(
                "{} and {} differ at byte {}: {:#04x} vs {:#04x}",
                s(a),
                s(b),
                at + i as u64,
                ba[i],
                bb[i]
            );
        }
        at += n as u64;
    }
}
