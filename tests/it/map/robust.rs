//! `vimg map` on hostile input: random-byte files (some with planted
//! VMDK/VHD/COWD headers and descriptors) and real images with corrupted
//! grain directories, grain tables, grain markers, BAT entries, headers
//! and parent locators. Map must never panic or hang: every run gets a
//! few seconds, exits 0 or 1, and on 1 prints exactly one error line; on
//! 0 its map must be well formed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::vhd;
use crate::support::*;

/// How long one `vimg map` may take on a small hostile file.
const LIMIT: Duration = Duration::from_secs(5);

/// The outcome of one run, checked: `Some(entries)` when it succeeded
/// (JSON), `None` when it failed cleanly.
fn check(vimg: &Cmd, json: bool, what: &str) -> Option<Vec<Value>> {
    let out = vimg.run_within(LIMIT);
    let stderr = out.stderr_text();
    let stdout = out.stdout_text();
    let ctx = || format!("{what}: `{vimg}`");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{} panicked:\n{stderr}",
        ctx()
    );
    match out.status.code() {
        Some(0) => {
            if !json {
                assert!(
                    stdout.starts_with("Offset          Length          Mapped to       File\n"),
                    "{}: human output without the header:\n{stdout}",
                    ctx()
                );
                return None;
            }
            let v: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{}: invalid JSON ({e}):\n{stdout}", ctx()));
            let arr = v.as_array().expect("array").clone();
            // Contiguous, non-empty entries with coherent flags.
            let mut at: Option<u64> = None;
            for e in &arr {
                let start = field_u64(e, "start");
                let len = field_u64(e, "length");
                assert!(len > 0, "{}: empty entry {e}", ctx());
                if let Some(a) = at {
                    assert_eq!(start, a, "{}: gap or overlap at {e}", ctx());
                }
                at = Some(start + len);
                let present = e["present"].as_bool().unwrap();
                let compressed = e["compressed"].as_bool().unwrap();
                if !present {
                    assert!(e.get("offset").is_none(), "{}: {e}", ctx());
                }
                if compressed {
                    assert!(e["data"].as_bool().unwrap(), "{}: {e}", ctx());
                }
            }
            Some(arr)
        }
        Some(1) => {
            assert!(
                stderr.lines().count() == 1 && stderr.ends_with('\n'),
                "{}: expected one error line, got:\n{stderr}",
                ctx()
            );
            assert!(
                stderr.starts_with("vimg: error: "),
                "{}: not a vimg error line: {stderr}",
                ctx()
            );
            None
        }
        _ => panic!("{}: exit status {}; stderr:\n{stderr}", ctx(), out.status),
    }
}

/// `vimg map`: format (None: probed), JSON or human, an optional window.
fn map(fmt: Option<&str>, json: bool, w: Option<(u64, u64)>, file: &Path) -> Cmd {
    vimg!("map")
        .opt("-f", fmt)
        .arg("--output")
        .arg(if json { "json" } else { "human" })
        .opt("--start-offset", w.map(|(start, _)| start))
        .opt("--max-length", w.map(|(_, len)| len))
        .arg(file)
}

fn put_u32_le(b: &mut [u8], at: usize, v: u32) {
    if at + 4 <= b.len() {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64_le(b: &mut [u8], at: usize, v: u64) {
    if at + 8 <= b.len() {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32_be(b: &mut [u8], at: usize, v: u32) {
    if at + 4 <= b.len() {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

fn put_u64_be(b: &mut [u8], at: usize, v: u64) {
    if at + 8 <= b.len() {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
}

/// Write a correct checksum into the VHD structure `b[at..at + len]`.
fn fix_vhd_checksum(b: &mut [u8], at: usize, len: usize, field: usize) {
    if at + len <= b.len() {
        let c = vhd::checksum(&b[at..at + len], field);
        put_u32_be(b, at + field, c);
    }
}

/// A sector number for a pointer that is wrong in some way: zero, one,
/// all ones, at or past the end of a file of `sectors` sectors, into the
/// headers, anywhere in the file, or anything.
fn evil_sector(rng: &mut Rng, sectors: u64) -> u32 {
    let sectors = sectors.max(1);
    match rng.below(11) {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => 0xFFFF_FFFE,
        4 => sectors as u32,
        5 => (sectors - 1) as u32,
        6 => rng.below(sectors) as u32,
        7 => rng.next_u64() as u32,
        8 => rng.below(4) as u32,
        9 => (sectors + rng.below(1000)) as u32,
        _ => 0x8000_0000 | rng.next_u64() as u32,
    }
}

/// A VMDK descriptor with random, sometimes sensible, extent lines.
fn random_descriptor(rng: &mut Rng, names: &[String]) -> Vec<u8> {
    let types = [
        "monolithicSparse",
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
        "streamOptimized",
        "vmfs",
        "vmfsSparse",
        "custom",
        "",
    ];
    let kinds = ["SPARSE", "FLAT", "ZERO", "VMFS", "VMFSSPARSE", "BOGUS"];
    let mut t = String::from("# Disk DescriptorFile\nversion=1\n");
    t += &format!("CID={:08x}\n", rng.next_u64() as u32);
    if rng.chance(30) {
        t += &format!("parentCID={:08x}\n", rng.next_u64() as u32);
        let name = &names[rng.below(names.len() as u64) as usize];
        t += &format!("parentFileNameHint=\"{name}\"\n");
    } else {
        t += "parentCID=ffffffff\n";
    }
    t += &format!(
        "createType=\"{}\"\n",
        types[rng.below(types.len() as u64) as usize]
    );
    for _ in 0..rng.range(0, 5) {
        let access = ["RW", "RDONLY", "NOACCESS", "rw"][rng.below(4) as usize];
        let size = match rng.below(4) {
            0 => rng.below(100),
            1 => rng.below(1 << 20),
            2 => rng.next_u64() >> rng.below(64),
            _ => 8192,
        };
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let name = &names[rng.below(names.len() as u64) as usize];
        t += &format!("{access} {size} {kind} \"{name}\"");
        if rng.chance(50) {
            t += &format!(" {}", rng.next_u64() >> rng.below(64));
        }
        t.push('\n');
    }
    t += "ddb.adapterType = \"ide\"\n";
    if rng.chance(30) {
        t += "ddb.geometry.cylinders = \"";
        t += &rng.next_u64().to_string();
        t += "\"\n";
    }
    let mut b = t.into_bytes();
    if rng.chance(30) {
        // Junk in the middle of the text.
        let at = rng.below(b.len() as u64) as usize;
        let n = rng.range(1, 40) as usize;
        let junk = rng.bytes(n);
        b.splice(at..at, junk);
    }
    b
}

/// The content of a hostile file of about `size` bytes for `seed`:
/// random bytes, or random bytes around a planted VMDK, COWD or VHD
/// header (with correct VHD checksums) or a VMDK descriptor.
fn hostile_bytes(rng: &mut Rng, size: usize, names: &[String]) -> Vec<u8> {
    let mut b = rng.bytes(size);
    let sectors = (size as u64).div_ceil(512);
    match rng.below(7) {
        0 => {}
        1 if size >= 64 => {
            // Hosted sparse header with plausible, random fields.
            b[..4].copy_from_slice(b"KDMV");
            put_u32_le(&mut b, 4, rng.range(1, 4) as u32);
            put_u32_le(&mut b, 8, [0, 1, 3, 0x30003][rng.below(4) as usize]);
            let capacity = match rng.below(3) {
                0 => rng.below(1 << 16),
                1 => rng.below(1 << 34),
                _ => rng.next_u64(),
            };
            put_u64_le(&mut b, 12, capacity);
            put_u64_le(&mut b, 20, 1u64 << rng.below(9));
            put_u64_le(&mut b, 28, rng.below(4));
            put_u64_le(&mut b, 36, rng.below(40));
            put_u32_le(&mut b, 44, [512, 1, 0, 4096][rng.below(4) as usize]);
            put_u64_le(&mut b, 48, evil_sector(rng, sectors) as u64);
            put_u64_le(
                &mut b,
                56,
                if rng.chance(20) {
                    u64::MAX
                } else {
                    evil_sector(rng, sectors) as u64
                },
            );
            put_u64_le(&mut b, 64, rng.below(sectors + 1));
            if size >= 80 {
                b[73..77].copy_from_slice(b"\n \r\n");
            }
            if size >= 1024 && rng.chance(50) {
                let d = random_descriptor(rng, names);
                let n = d.len().min(size - 512);
                b[512..512 + n].copy_from_slice(&d[..n]);
                put_u64_le(&mut b, 28, 1);
            }
        }
        2 if size >= 2048 => {
            // COWD header with a plausible geometry.
            b[..4].copy_from_slice(b"COWD");
            put_u32_le(&mut b, 4, 1);
            let grain = 1u32 << rng.below(5);
            let capacity = rng.range(1, 1 << 22) as u32;
            put_u32_le(&mut b, 12, capacity);
            put_u32_le(&mut b, 16, grain);
            put_u32_le(&mut b, 20, evil_sector(rng, sectors));
            let needed = (capacity as u64).div_ceil(grain as u64 * 4096) as u32;
            put_u32_le(&mut b, 24, needed + rng.below(3) as u32);
            put_u32_le(&mut b, 28, evil_sector(rng, sectors));
            if rng.chance(50) {
                // A sane directory at sector 4 pointing at random tables.
                put_u32_le(&mut b, 20, 4);
                for i in 0..needed.min(100) as usize {
                    let v = evil_sector(rng, sectors);
                    put_u32_le(&mut b, 2048 + 4 * i, v);
                }
            }
        }
        3 if size >= 512 => {
            // VHD footer (at the end, or only at the start) with a
            // checksum that adds up, and a dynamic header it points at.
            let at_start = rng.chance(25);
            let f = if at_start { 0 } else { size / 512 * 512 - 512 };
            b[f..f + 8].copy_from_slice(b"conectix");
            put_u32_be(&mut b, f + 12, 0x0001_0000);
            let dyn_at = if rng.chance(70) {
                512u64
            } else {
                rng.next_u64() >> rng.below(64)
            };
            let disk_type = [2u32, 3, 4, 3, 3, rng.next_u64() as u32][rng.below(6) as usize];
            put_u64_be(
                &mut b,
                f + 16,
                if disk_type == 2 { u64::MAX } else { dyn_at },
            );
            let vsize = match rng.below(3) {
                0 => rng.below(1 << 24) * 512,
                1 => rng.below(1 << 41),
                _ => rng.next_u64(),
            };
            put_u64_be(&mut b, f + 40, vsize);
            put_u64_be(&mut b, f + 48, vsize);
            put_u32_be(&mut b, f + 60, disk_type);
            fix_vhd_checksum(&mut b, f, 512, 64);
            let d = dyn_at as usize;
            if d < size && d + 1024 <= size && rng.chance(80) {
                b[d..d + 8].copy_from_slice(b"cxsparse");
                put_u64_be(&mut b, d + 8, u64::MAX);
                put_u64_be(
                    &mut b,
                    d + 16,
                    [1536u64, 0, rng.below(size as u64)][rng.below(3) as usize],
                );
                put_u32_be(&mut b, d + 24, 0x0001_0000);
                put_u32_be(
                    &mut b,
                    d + 28,
                    [rng.below(64) as u32, rng.next_u64() as u32, 0][rng.below(3) as usize],
                );
                put_u32_be(
                    &mut b,
                    d + 32,
                    [2 * MIB as u32, 512, 4096, rng.next_u64() as u32, 0][rng.below(5) as usize],
                );
                fix_vhd_checksum(&mut b, d, 1024, 36);
            }
            if !at_start && rng.chance(50) {
                let copy = b[f..f + 512].to_vec();
                b[..512].copy_from_slice(&copy);
            }
        }
        4 => {
            let d = random_descriptor(rng, names);
            if rng.chance(70) {
                b = d;
            } else {
                let n = d.len().min(size);
                b[..n].copy_from_slice(&d[..n]);
            }
        }
        5 if size >= 4 => b[..4].copy_from_slice(if rng.chance(50) { b"KDMV" } else { b"COWD" }),
        _ => {
            // A bare VHD cookie where a footer would be.
            if size >= 512 {
                let at = size / 512 * 512 - 512;
                b[at..at + 8].copy_from_slice(b"conectix");
            } else if size >= 8 {
                b[..8].copy_from_slice(b"conectix");
            }
        }
    }
    b
}

/// Random-byte files of 0..2 MiB, named .vmdk/.vhd/.img, mapped probed
/// and with each format: clean exit, never a panic or a hang; `-f raw`
/// always succeeds with one sector-rounded range.
fn random_files(seeds: std::ops::Range<u64>) {
    let dir = tempdir();
    let names: Vec<String> = vec![
        "r0.vmdk".into(),
        "r1.vhd".into(),
        "r2.img".into(),
        "missing.vmdk".into(),
        "../nowhere/x.vmdk".into(),
        "/".into(),
        "".into(),
    ];
    let exts = ["vmdk", "vhd", "img"];
    let mut failed_cleanly = 0;
    let mut succeeded = 0;
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let size = match rng.below(10) {
            0 => rng.below(2),
            1..=3 => rng.below(4096),
            4..=7 => rng.below(128 * KIB),
            _ => rng.below(2 * MIB + 1),
        } as usize;
        let bytes = hostile_bytes(&mut rng, size, &names);
        // Three files, so descriptors and planted parents can name each
        // other.
        let idx = seed as usize % 3;
        let path = dir.path().join(format!("r{idx}.{}", exts[idx]));
        std::fs::write(&path, &bytes).unwrap();
        let len = bytes.len() as u64;
        let what = format!("seed {seed}, {len} bytes");
        for fmt in [None, Some("vmdk"), Some("vpc"), Some("raw")] {
            let json = rng.chance(80);
            let w = if rng.chance(25) {
                Some((rng.below(len + 2), rng.below(2 * MIB)))
            } else {
                None
            };
            let res = check(&map(fmt, json, w, &path), json, &what);
            if fmt == Some("raw") && json && w.is_none() {
                let m = res
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: -f raw failed"));
                let end: u64 = m.iter().map(|e| field_u64(e, "length")).sum();
                assert_eq!(end, sector_up(len), "{what}: raw map length");
            }
            match res {
                Some(_) => succeeded += 1,
                None => failed_cleanly += 1,
            }
        }
    }
    assert!(failed_cleanly > 0 && succeeded > 0);
}

#[test]
fn random_files_never_panic_or_hang_0() {
    random_files(0..70);
}

#[test]
fn random_files_never_panic_or_hang_1() {
    random_files(1000..1070);
}

#[test]
fn random_files_never_panic_or_hang_2() {
    random_files(2000..2070);
}

/// Run the checks on an image whose file at `target` has been mutated by
/// `mutate`, then restore the file. `top` is what is mapped (the image
/// itself, or a delta or descriptor over it).
fn with_mutation(
    top: &Path,
    fmt: &str,
    target: &Path,
    what: &str,
    rng: &mut Rng,
    mutate: impl FnOnce(&mut Vec<u8>, &mut Rng) -> String,
) {
    let orig = std::fs::read(target).unwrap();
    let mut b = orig.clone();
    let how = mutate(&mut b, rng);
    assert!(!how.is_empty());
    let what = format!("{what}: {how}");
    let what = what.as_str();
    std::fs::write(target, &b).unwrap();
    let size = 64 * MIB;
    let w = Some((rng.below(size), rng.range(1, size)));
    check(&map(None, true, None, top), true, what);
    check(&map(Some(fmt), false, None, top), false, what);
    check(&map(Some(fmt), true, w, top), true, what);
    std::fs::write(target, &orig).unwrap();
}

/// Where a hosted sparse extent keeps its grain directory and geometry:
/// `(gd byte offset, gd entries, gtes per gt)`; the footer's copy for a
/// streamOptimized file.
fn sparse_layout(b: &[u8]) -> (usize, usize, usize) {
    let mut h = 0usize;
    if le64(b, 56) == u64::MAX {
        h = b.len() - 1024;
        assert_eq!(&b[h..h + 4], b"KDMV", "no stream footer");
    }
    let capacity = le64(b, h + 12);
    let grain = le64(b, h + 20);
    let gtes = le32(b, h + 44) as u64;
    let gd = le64(b, h + 56) as usize * 512;
    let entries = capacity.div_ceil(grain * gtes) as usize;
    (gd, entries, gtes as usize)
}

/// The byte offsets of the non-zero grain table entries of a sparse
/// extent, with their values.
fn grain_entries(b: &[u8]) -> Vec<(usize, u32)> {
    let (gd, entries, gtes) = sparse_layout(b);
    let mut out = Vec::new();
    for i in 0..entries {
        let gt = le32(b, gd + 4 * i) as usize * 512;
        if gt == 0 || gt + 4 * gtes > b.len() {
            continue;
        }
        for j in 0..gtes {
            let v = le32(b, gt + 4 * j);
            if v > 1 {
                out.push((gt + 4 * j, v));
            }
        }
    }
    out
}

/// Corrupt a hosted sparse (or streamOptimized) extent: grain directory
/// and table entries, grain markers, header fields, random bytes.
fn corrupt_sparse(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let sectors = (b.len() as u64).div_ceil(512);
    let (gd, entries, _) = sparse_layout(b);
    let grains = grain_entries(b);
    let stream = le64(b, 56) == u64::MAX;
    let footer = if stream { b.len() - 1024 } else { 0 };
    let n = rng.range(1, 4);
    let mut what = Vec::new();
    for _ in 0..n {
        match rng.below(8) {
            0 | 1 if !grains.is_empty() => {
                let (at, _) = grains[rng.below(grains.len() as u64) as usize];
                let v = evil_sector(rng, sectors);
                put_u32_le(b, at, v);
                what.push(format!("GTE@{at}={v:#x}"));
            }
            2 if !grains.is_empty() => {
                // Two grains at the same place.
                let (at, _) = grains[rng.below(grains.len() as u64) as usize];
                let (_, v) = grains[rng.below(grains.len() as u64) as usize];
                put_u32_le(b, at, v);
                what.push(format!("GTE@{at}=dup {v:#x}"));
            }
            3 => {
                let i = rng.below(entries as u64 + 2) as usize;
                let v = evil_sector(rng, sectors);
                put_u32_le(b, gd + 4 * i, v);
                what.push(format!("GDE{i}={v:#x}"));
            }
            4 if stream && !grains.is_empty() => {
                // A grain marker's compressed size, or its LBA.
                let (_, v) = grains[rng.below(grains.len() as u64) as usize];
                let m = v as usize * 512;
                if rng.chance(50) {
                    let sz =
                        [0u32, 1, u32::MAX, rng.next_u64() as u32, 70000][rng.below(5) as usize];
                    put_u32_le(b, m + 8, sz);
                    what.push(format!("marker@{m} size={sz}"));
                } else {
                    let lba = rng.next_u64() >> rng.below(64);
                    put_u64_le(b, m, lba);
                    what.push(format!("marker@{m} lba={lba}"));
                }
            }
            5 => {
                // A header field of the header in use.
                let (field, v): (usize, u64) = match rng.below(6) {
                    0 => (12, rng.next_u64() >> rng.below(64)),
                    1 => (
                        20,
                        [0u64, 1, 3, 1 << 20, rng.next_u64()][rng.below(5) as usize],
                    ),
                    2 => (44, [0u64, 1, 7, u32::MAX as u64][rng.below(4) as usize]),
                    3 => (56, evil_sector(rng, sectors) as u64),
                    4 => (48, evil_sector(rng, sectors) as u64),
                    _ => (64, rng.next_u64() >> rng.below(64)),
                };
                if field == 44 {
                    put_u32_le(b, footer + field, v as u32);
                } else {
                    put_u64_le(b, footer + field, v);
                }
                what.push(format!("header+{field}={v:#x}"));
            }
            6 => {
                let cut = rng.below(b.len() as u64) as usize;
                b.truncate(cut.max(1));
                what.push(format!("truncated to {}", b.len()));
                break;
            }
            _ => {
                let at = rng.below(b.len() as u64) as usize;
                let k = rng.range(1, 16) as usize;
                for x in b.iter_mut().skip(at).take(k) {
                    *x = rng.next_u64() as u8;
                }
                what.push(format!("{k} random bytes at {at}"));
            }
        }
    }
    what.join(", ")
}

/// Corrupt a dynamic or differencing VHD: BAT entries, header fields (with
/// checksums that still add up), parent locators, bitmaps, random bytes.
fn corrupt_vhd(b: &mut [u8], rng: &mut Rng) -> String {
    let len = b.len();
    let sectors = (len as u64).div_ceil(512);
    let f = len - 512;
    let d = be64(b, f + 16) as usize;
    let bat = be64(b, d + 16) as usize;
    let max = be32(b, d + 28) as usize;
    let allocated: Vec<usize> = (0..max)
        .filter(|&i| be32(b, bat + 4 * i) != u32::MAX)
        .collect();
    let n = rng.range(1, 4);
    let mut what = Vec::new();
    for _ in 0..n {
        match rng.below(8) {
            0 | 1 => {
                let i = if !allocated.is_empty() && rng.chance(60) {
                    allocated[rng.below(allocated.len() as u64) as usize]
                } else {
                    rng.below(max as u64) as usize
                };
                let v = evil_sector(rng, sectors);
                put_u32_be(b, bat + 4 * i, v);
                what.push(format!("BAT{i}={v:#x}"));
            }
            2 if allocated.len() > 1 => {
                let i = allocated[0];
                let v = be32(b, bat + 4 * allocated[1]);
                put_u32_be(b, bat + 4 * i, v);
                what.push(format!("BAT{i}=dup {v:#x}"));
            }
            3 => {
                let (field, v): (usize, u64) = match rng.below(4) {
                    0 => (16, evil_sector(rng, sectors) as u64 * 512),
                    1 => (
                        28,
                        [0u64, 1, u32::MAX as u64, max as u64 + 1][rng.below(4) as usize],
                    ),
                    2 => (
                        32,
                        [0u64, 512, 4096, 3 << 20, u32::MAX as u64][rng.below(5) as usize],
                    ),
                    _ => (8, rng.next_u64()),
                };
                if field == 16 || field == 8 {
                    put_u64_be(b, d + field, v);
                } else {
                    put_u32_be(b, d + field, v as u32);
                }
                fix_vhd_checksum(b, d, 1024, 36);
                what.push(format!("dynheader+{field}={v:#x}"));
            }
            4 => {
                // Footer size fields, geometry, type, data offset.
                let (field, v): (usize, u64) = match rng.below(4) {
                    0 => (48, rng.next_u64() >> rng.below(64)),
                    1 => (40, rng.next_u64() >> rng.below(64)),
                    2 => (60, rng.below(6)),
                    _ => (16, evil_sector(rng, sectors) as u64 * 512),
                };
                if field == 60 {
                    put_u32_be(b, f + field, v as u32);
                } else {
                    put_u64_be(b, f + field, v);
                }
                fix_vhd_checksum(b, f, 512, 64);
                if rng.chance(50) {
                    let copy = b[f..].to_vec();
                    b[..512].copy_from_slice(&copy);
                }
                what.push(format!("footer+{field}={v:#x}"));
            }
            5 => {
                // A parent locator entry: code, space, length, offset.
                let e = d + 576 + 24 * rng.below(8) as usize;
                match rng.below(3) {
                    0 => put_u32_be(b, e + 8, rng.next_u64() as u32 >> rng.below(32)),
                    1 => put_u64_be(b, e + 16, evil_sector(rng, sectors) as u64 * 512),
                    _ => put_u32_be(
                        b,
                        e,
                        [*b"W2ru", *b"W2ku", *b"Mac ", *b"MacX"][rng.below(4) as usize]
                            .iter()
                            .fold(0u32, |a, &x| a << 8 | x as u32),
                    ),
                }
                fix_vhd_checksum(b, d, 1024, 36);
                what.push(format!("locator@{e}"));
            }
            6 if !allocated.is_empty() => {
                // A block's bitmap.
                let i = allocated[rng.below(allocated.len() as u64) as usize];
                let at = be32(b, bat + 4 * i) as usize * 512;
                let k = rng.range(1, 512) as usize;
                for x in b.iter_mut().skip(at).take(k) {
                    *x = rng.next_u64() as u8;
                }
                what.push(format!("bitmap of block {i}"));
            }
            _ => {
                let at = rng.below(len as u64) as usize;
                let k = rng.range(1, 16) as usize;
                for x in b.iter_mut().skip(at).take(k) {
                    *x = rng.next_u64() as u8;
                }
                what.push(format!("{k} random bytes at {at}"));
            }
        }
    }
    what.join(", ")
}

/// Writes giving an image data in several grain tables and blocks.
fn writes() -> Vec<String> {
    [
        "write -P 0x11 0 100k",
        "write -P 0x22 3M 1M",
        "write -P 0x33 33M 64k",
        "write -P 0x44 47M 3M",
        "write -P 0x55 63M 512",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect()
}

/// The images whose metadata gets corrupted: `(mapped file, format,
/// corrupted file, is VHD)`.
fn corruptible(dir: &Path) -> Vec<(PathBuf, &'static str, PathBuf, bool)> {
    let mut out = Vec::new();
    let raw = dir.join("src.img");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    qemu_io("raw", &raw, &writes());
    for tool in ["qemu", "vimg"] {
        let conv = |fmt: &str, opts: &str, name: &str| -> PathBuf {
            let out = dir.join(name);
            let (prog, f) = if tool == "qemu" {
                ("qemu-img", qemu_fmt(fmt))
            } else {
                (VIMG, fmt)
            };
            let opts = (!opts.is_empty()).then_some(opts);
            cmd!(prog, "convert -f raw -O", f)
                .opt("-o", opts)
                .arg(&raw)
                .arg(&out)
                .ok();
            out
        };
        let sp = conv("vmdk", "", &format!("{tool}-sparse.vmdk"));
        out.push((sp.clone(), "vmdk", sp.clone(), false));
        let st = conv(
            "vmdk",
            "subformat=streamOptimized",
            &format!("{tool}-stream.vmdk"),
        );
        out.push((st.clone(), "vmdk", st, false));
        let vd = conv("vhd", "", &format!("{tool}-dyn.vhd"));
        out.push((vd.clone(), "vpc", vd, true));
        let two = conv(
            "vmdk",
            "subformat=twoGbMaxExtentSparse",
            &format!("{tool}-two.vmdk"),
        );
        let ext = dir.join(format!("{tool}-two-s001.vmdk"));
        assert!(ext.exists());
        out.push((two, "vmdk", ext, false));
        // A delta over the sparse image: corrupt the parent, map the top.
        let top = dir.join(format!("{tool}-top.vmdk"));
        if tool == "qemu" {
            qemu_img!("create -q -f vmdk -b", &sp, "-F vmdk", &top).ok();
        } else {
            vimg!("create -q -f vmdk -b", &sp, &top).ok();
        }
        qemu_io("vmdk", &top, &["write -P 0x66 3100k 200k"]);
        out.push((top.clone(), "vmdk", top.clone(), false));
        out.push((top, "vmdk", dir.join(format!("{tool}-sparse.vmdk")), false));
    }
    // A differencing VHD (vimg) over a dynamic one, both corrupted in turn.
    let base = dir.join("vimg-dyn.vhd");
    let child = dir.join("child.vhd");
    vimg!("create -q -f vhd -b", &base, &child).ok();
    qemu_io("vhd", &child, &["write -P 0x77 4M 2M"]);
    out.push((child.clone(), "vpc", child.clone(), true));
    out.push((child, "vpc", base, true));
    out
}

/// Corrupted images: each corruption is mapped (probed JSON, human, a
/// JSON window), then undone.
fn corrupted_images(seed: u64, rounds: usize) {
    let dir = tempdir();
    let images = corruptible(dir.path());
    let mut rng = Rng::new(seed);
    for (top, fmt, target, vhd) in &images {
        // The intact image maps.
        assert!(check(&map(Some(fmt), true, None, top), true, "intact").is_some());
        for round in 0..rounds {
            let what = format!(
                "{} (corrupting {}) round {round}",
                top.display(),
                target.display()
            );
            with_mutation(top, fmt, target, &what, &mut rng, |b, r| {
                if *vhd {
                    corrupt_vhd(b, r)
                } else {
                    corrupt_sparse(b, r)
                }
            });
        }
    }
}

#[test]
fn corrupted_images_never_panic_or_hang_a() {
    corrupted_images(5, 12);
}

#[test]
fn corrupted_images_never_panic_or_hang_b() {
    corrupted_images(6, 12);
}
