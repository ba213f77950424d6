//! Every input the fuzzers (fuzz/) found a bug with, replayed on each test
//! run: no panic, no hang, a clean error or a consistent image. The inputs
//! live in tests/data/fuzz/ (copies of fuzz/regressions/*.bin, where
//! fuzz/regressions/README.md explains each).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vimg::image::{factory::open, Format, Image, Source};
use vimg::io::Access;

use crate::support::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");
/// What separates extent files after a descriptor in a fuzz input.
const EXTENT_SEP: &[u8] = b"\0--extent--\0";

fn input(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DATA).join(name)).unwrap()
}

/// What separates a carried parent image from the input it belongs to.
const PARENT_SEP: &[u8] = b"\0--parent--\0";

fn split_at_marker<'a>(data: &'a [u8], sep: &[u8]) -> (&'a [u8], Option<&'a [u8]>) {
    match data.windows(sep.len()).position(|w| w == sep) {
        Some(p) => (&data[..p], Some(&data[p + sep.len()..])),
        None => (data, None),
    }
}

/// The bare names an image may look for its parent by: a VMDK's
/// parentFileNameHint, a VHD header's parent name and locator paths (last
/// component of each).
fn parent_names(data: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let text = String::from_utf8_lossy(&data[..data.len().min(64 << 10)]);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "parentFileNameHint" {
                names.push(v.trim().trim_matches('"').to_string());
            }
        }
    }
    if data.len() >= 1536 && data.starts_with(b"conectix") {
        let at = u64::from_be_bytes(data[16..24].try_into().unwrap());
        if let Some(h) = usize::try_from(at)
            .ok()
            .and_then(|a| data.get(a..a.checked_add(1024)?))
        {
            let utf16 = |b: &[u8], big: bool| {
                let units: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| {
                        if big {
                            u16::from_be_bytes([c[0], c[1]])
                        } else {
                            u16::from_le_bytes([c[0], c[1]])
                        }
                    })
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            };
            names.push(utf16(&h[64..576], true));
            for k in 0..8 {
                let e = &h[576 + 24 * k..600 + 24 * k];
                let n = u32::from_be_bytes(e[8..12].try_into().unwrap()) as usize;
                let off = u64::from_be_bytes(e[16..24].try_into().unwrap()) as usize;
                if let Some(raw) = off.checked_add(n).and_then(|end| data.get(off..end)) {
                    names.push(utf16(raw, false));
                }
            }
        }
    }
    names
        .into_iter()
        .filter_map(|n| n.rsplit(['\\', '/']).next().map(str::to_string))
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .collect()
}

/// Write a fuzz input as an image named `name` in `dir`, as the harness
/// does: a text descriptor followed by a NUL brings the extent files it
/// names; a carried parent is written under the names the image looks for.
fn materialize(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let (data, parent) = split_at_marker(input, PARENT_SEP);
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    if let Some(parent) = parent {
        for n in parent_names(data) {
            if n != name {
                std::fs::write(dir.join(n), parent).unwrap();
            }
        }
    }
    if data.starts_with(b"KDMV") || data.starts_with(b"COWD") {
        return path;
    }
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return path;
    };
    let text = String::from_utf8_lossy(&data[..nul]);
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")).then_some(())?;
            let rest: Vec<&str> = words.skip(2).collect();
            let rest = rest.join(" ");
            let n = match rest.strip_prefix('"') {
                Some(q) => q.split('"').next()?.to_string(),
                None => rest.split_whitespace().next()?.to_string(),
            };
            (!n.is_empty() && !n.contains(['/', '\\'])).then_some(n)
        })
        .collect();
    names.dedup();
    let mut pieces = Vec::new();
    let mut rest = &data[nul + 1..];
    while let (head, Some(tail)) = split_at_marker(rest, EXTENT_SEP) {
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    for (i, extent) in names.iter().enumerate() {
        if extent != name {
            std::fs::write(dir.join(extent), pieces[i.min(pieces.len() - 1)]).unwrap();
        }
    }
    path
}

/// The regression files, by target.
fn inputs(target: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(DATA)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{target}-")) && n.ends_with(".bin"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no {target} regression inputs in {DATA}");
    names
}

/// The CLI never panics or hangs on `path`: each command ends within a
/// bound with exit 0, or exit 1 and one error line.
fn cli_survives(dir: &Path, path: &Path, forced: Option<&str>) {
    let out_raw = dir.join("out.raw");
    for vimg in [
        vimg!("info").opt("-f", forced).arg(path),
        vimg!("map --output json").opt("-f", forced).arg(path),
        vimg!("convert -O raw")
            .opt("-f", forced)
            .arg(path)
            .arg(&out_raw)
            .arg("--force"),
    ] {
        let started = Instant::now();
        let out = vimg.run();
        let took = started.elapsed();
        let stderr = out.stderr_text();
        assert!(took < Duration::from_secs(20), "`{vimg}` took {took:?}");
        assert!(!stderr.contains("panicked"), "`{vimg}`: {stderr}");
        match out.status.code() {
            Some(0) => {}
            Some(1) => assert_eq!(stderr.lines().count(), 1, "`{vimg}`: {stderr}"),
            other => panic!("`{vimg}` exited {other:?}: {stderr}"),
        }
    }
}

/// Walk the allocation picture from `start` and check it against reads:
/// zero and unallocated runs read as zeros, data with a host offset reads
/// as the bytes there. At most `budget` bytes are read.
fn status_matches_reads(dev: &mut dyn Image, start: u64, mut budget: u64) {
    let size = dev.virtual_size();
    let mut offset = start;
    let mut steps = 0;
    while offset < size && budget > 0 && steps < 20_000 {
        let m = dev.block_status(offset, size - offset).unwrap();
        assert!(m.len > 0 && m.len <= size - offset, "run {m:?} at {offset}");
        let len = m.len.min(budget).min(1 << 20);
        let mut buf = vec![0u8; len as usize];
        if dev.read_at(&mut buf, offset).is_ok() {
            match &m.source {
                Source::Zero { .. } | Source::Unallocated => {
                    assert!(
                        buf.iter().all(|&b| b == 0),
                        "a zero run at {offset} holds data"
                    )
                }
                Source::Data {
                    host: Some(h),
                    compressed: false,
                } => {
                    let mut raw = vec![0u8; len as usize];
                    let f = std::fs::File::open(&h.file).unwrap();
                    std::os::unix::fs::FileExt::read_exact_at(&f, &mut raw, h.offset).unwrap();
                    assert_eq!(
                        raw, buf,
                        "the data run at {offset} is not at host {}",
                        h.offset
                    );
                }
                Source::Data { .. } => {}
            }
        }
        budget -= len;
        offset += m.len;
        steps += 1;
    }
}

#[test]
fn open_read_inputs_fail_cleanly_or_read_consistently() {
    for name in inputs("open_read") {
        let data = input(&name);
        let dir = tempfile::tempdir().unwrap();
        for (file, forced, format) in [
            ("disk.img", None, None),
            ("disk.vmdk", Some("vmdk"), Some(Format::Vmdk)),
            ("disk.vhd", Some("vpc"), Some(Format::Vhd)),
        ] {
            let path = materialize(dir.path(), file, &data);
            cli_survives(dir.path(), &path, forced);
            if let Ok(mut dev) = open(&path, format, Access::Read) {
                // From the start, and from inside a sector (the VHD status
                // bug answered for whole sectors from there).
                status_matches_reads(dev.as_mut(), 0, 4 << 20);
                let size = dev.virtual_size();
                for start in [6746, 90, size / 2 + 123] {
                    if start < size {
                        status_matches_reads(dev.as_mut(), start, 1 << 20);
                    }
                }
            }
        }
    }
}

#[test]
fn open_write_inputs_are_refused_or_stay_valid_after_a_flush() {
    for name in inputs("open_write") {
        let data = input(&name);
        let dir = tempfile::tempdir().unwrap();
        let ext = if data.starts_with(b"KDMV") {
            "vmdk"
        } else {
            "vhd"
        };
        let path = materialize(dir.path(), &format!("disk.{ext}"), &data);
        let readable = open(&path, None, Access::Read).is_ok();
        match open(&path, None, Access::Write) {
            Err(e) => {
                // A read-write open may only refuse what a read-only one does.
                assert!(
                    !readable,
                    "{name}: read-only opens, read-write refuses: {e}"
                );
            }
            Ok(mut dev) => {
                assert!(readable, "{name}: read-write opens what read-only refuses");
                let size = dev.virtual_size();
                let _ = dev.write_at(&[0x5a; 4096], 0);
                let _ = dev.write_at(&[0xa5; 1000], size.saturating_sub(1000));
                dev.flush().unwrap();
                drop(dev);
                let mut again = open(&path, None, Access::Read)
                    .unwrap_or_else(|e| panic!("{name}: no longer opens after a flush: {e}"));
                assert_eq!(again.virtual_size(), size, "{name}");
                status_matches_reads(again.as_mut(), 0, 4 << 20);
            }
        }
    }
}

#[test]
fn aliased_grain_tables_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = materialize(
        dir.path(),
        "disk.vmdk",
        &input("open_read-vmdk-gd-aliases-one-gt-hang-oom-handmade.bin"),
    );
    let started = Instant::now();
    vimg!("info", &path).code(1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn vhd_status_from_inside_a_sector_ends_at_the_sector_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = materialize(
        dir.path(),
        "disk.vhd",
        &input("open_read-vhd-status-unaligned-overshoots-sector-small.bin"),
    );
    let mut dev = open(&path, None, Access::Read).unwrap();
    // Bitmaps of 0x55: every other sector used. From 90 bytes into a
    // sector, the run is the 422 bytes left in it.
    let m = dev.block_status(6746, 4096).unwrap();
    assert_eq!(m.len, 512 - 6746 % 512, "{m:?}");
}
