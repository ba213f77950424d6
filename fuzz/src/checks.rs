//! The checks the fuzz targets make, in functions the regression replay in
//! `tests/` runs too (it includes this file and [`crate::harness`] by
//! path): [`open_read`] and [`open_write`] take a scratch directory and one
//! input, and panic on anything vimg must not do.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use crate::harness::{extension_for, extent_names, fix_vhd_checksums, materialize, parent_hint};
use vimg::image::check::{Repair, Report};
use vimg::image::factory::{open, open_with};
use vimg::image::{Format, Image, Mapping, OpenOptions, Source};
use vimg::io::Access;

/// Steps a block_status walk over one disk takes before it stops (see
/// [`walk`]).
pub const MAX_STATUS_STEPS: u64 = 100_000;
/// Seconds a walk of more than MAX_STATUS_STEPS steps may take
/// (VIMG_FUZZ_WALK_SECS overrides it).
pub const MAX_WALK_SECS: f64 = 8.0;

fn max_walk_secs() -> f64 {
    static SECS: OnceLock<f64> = OnceLock::new();
    *SECS.get_or_init(|| {
        std::env::var("VIMG_FUZZ_WALK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(MAX_WALK_SECS)
    })
}
/// Most bytes read (in total) from one opened image.
pub const MAX_READ_BYTES: usize = 1 << 20;

/// True when VIMG_FUZZ_DEBUG is set: the targets then say what they
/// opened (for checking seeds; too slow for fuzzing).
pub fn debug() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VIMG_FUZZ_DEBUG").is_some())
}

/// True when VIMG_FUZZ_ALIGNED_STATUS is set: read checks then ask
/// block_status only at sector-aligned offsets (steps around the known
/// unaligned-status bug, see regressions/README.md, to find others).
pub fn aligned_status() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VIMG_FUZZ_ALIGNED_STATUS").is_some())
}

/// Walk block_status over the whole disk, checking every answer.
///
/// Past [`MAX_STATUS_STEPS`] steps the walk stops -- an image whose
/// allocation tables alias one block many times legitimately has millions
/// of runs -- unless it has by then taken more than [`MAX_WALK_SECS`], which
/// counts as a hang.
pub fn walk(dev: &mut dyn Image) {
    walk_steps(dev, MAX_STATUS_STEPS)
}

/// [`walk`] with its own step budget.
pub fn walk_steps(dev: &mut dyn Image, max_steps: u64) {
    let size = dev.virtual_size();
    let started = std::time::Instant::now();
    let mut offset = 0u64;
    let mut steps = 0u64;
    while offset < size {
        let ask = size - offset;
        let m = match dev.block_status(offset, ask) {
            Ok(m) => m,
            Err(_) => return,
        };
        assert!(
            m.len > 0 && m.len <= ask,
            "block_status({offset}, {ask}) returned a run of {} bytes",
            m.len
        );
        offset += m.len;
        steps += 1;
        if steps > max_steps {
            let secs = started.elapsed().as_secs_f64();
            if secs > max_walk_secs() {
                panic!(
                    "block_status walk: {steps} steps took {secs:.1} s, at byte {offset} of a {size}-byte disk (last run {} bytes)",
                    m.len
                );
            }
            return;
        }
    }
}

/// The bytes at `host`: zeros past the end of the file.
fn host_bytes(file: &Path, offset: u64, len: usize) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(file).ok()?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match f.read_at(&mut buf[done..], offset.checked_add(done as u64)?) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(_) => return None,
        }
    }
    Some(buf)
}

/// Check what read_at returned for `[offset, offset + buf.len())` against
/// what block_status says about its start: zeros must read as zeros, and
/// uncompressed data must be the bytes at its host offset.
fn check_against_status(dev: &mut dyn Image, buf: &[u8], offset: u64) {
    let has_parent = dev.parent().is_some();
    let mut at = 0usize;
    if aligned_status() {
        at = ((512 - offset % 512) % 512) as usize;
    }
    // A few runs are enough; each is cheap to check.
    for _ in 0..8 {
        if at >= buf.len() {
            break;
        }
        let Ok(Mapping { len, source }) =
            dev.block_status(offset + at as u64, (buf.len() - at) as u64)
        else {
            return;
        };
        let n = (len as usize).min(buf.len() - at);
        let piece = &buf[at..at + n];
        match source {
            // Without a parent, unallocated reads as zeros.
            Source::Unallocated if has_parent => {}
            Source::Zero { .. } | Source::Unallocated => {
                if let Some(p) = piece.iter().position(|&b| b != 0) {
                    panic!(
                        "block_status says {source:?} for {n} bytes at {}, but byte {} reads {:#04x}",
                        offset + at as u64,
                        offset + (at + p) as u64,
                        piece[p]
                    );
                }
            }
            Source::Data {
                host: Some(host),
                compressed: false,
            } => {
                if let Some(want) = host_bytes(&host.file, host.offset, n) {
                    assert!(
                        want == piece,
                        "block_status says data at {}:{} for {n} bytes at {}, but read_at returned other bytes",
                        host.file.display(),
                        host.offset,
                        offset + at as u64
                    );
                }
            }
            Source::Data { .. } => {}
        }
        at += n;
    }
}

/// Read a few ranges (start, middle, end, and an unaligned one), at most
/// [`MAX_READ_BYTES`] in total, and check them against block_status.
pub fn read_some(dev: &mut dyn Image, salt: u64) {
    let size = dev.virtual_size();
    if size == 0 {
        let mut b = [0u8; 1];
        assert!(
            dev.read_at(&mut b, 0).is_err(),
            "read past the end of an empty disk succeeded"
        );
        return;
    }
    let chunk = (MAX_READ_BYTES as u64 / 4).min(size);
    let mid = size / 2;
    let odd = (salt % size).saturating_sub(1);
    let ranges = [
        (0, chunk),
        (
            mid - mid.min(chunk / 2),
            chunk.min(size - (mid - mid.min(chunk / 2))),
        ),
        (size - chunk, chunk),
        (odd, 1531.min(size - odd)),
    ];
    let mut buf = vec![0u8; chunk as usize];
    for (offset, len) in ranges {
        let b = &mut buf[..len as usize];
        b.fill(0xa5);
        if dev.read_at(b, offset).is_ok() {
            let b = b.to_vec();
            check_against_status(dev, &b, offset);
        }
    }
    let mut b = [0u8; 1];
    assert!(
        dev.read_at(&mut b, size).is_err(),
        "read at the end of the disk succeeded"
    );
    assert!(
        dev.read_at(&mut b, u64::MAX).is_err(),
        "read at u64::MAX succeeded"
    );
}

/// Every check for one opened image.
pub fn exercise(dev: &mut dyn Image, salt: u64) {
    let _ = dev.info();
    let _ = dev.files();
    let _ = dev.cluster_size();
    walk(dev);
    read_some(dev, salt);
}

/// FNV-1a of the input, to derive offsets from.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// Byte ranges `[start, end)` that must not overlap one another.
struct Spans(Vec<(u64, u64)>);

impl Spans {
    fn add(&mut self, start: u64, len: u64) {
        if let Some(end) = start.checked_add(len) {
            if len > 0 {
                self.0.push((start, end));
            }
        }
    }

    fn disjoint(mut self) -> bool {
        self.0.sort_unstable();
        self.0.windows(2).all(|w| w[0].1 <= w[1].0)
    }
}

fn le32(d: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        d.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

/// True when two grain table entries of a hosted sparse extent name
/// overlapping uncompressed grains (data aliasing: a write through one
/// virtual range shows through the other). Anything vimg refuses at open
/// (tables or grains outside the file, overlapping tables) does not matter
/// here and counts as no aliasing.
fn sparse_grains_alias(d: &[u8]) -> bool {
    let len = d.len() as u64;
    if len < 512 {
        return false;
    }
    let mut h = &d[..512];
    if le64(h, 56) == u64::MAX {
        if len < 1536 {
            return false;
        }
        h = &d[d.len() - 1024..d.len() - 512];
        if &h[..4] != b"KDMV" {
            return false;
        }
    }
    let flags = u32::from_le_bytes(h[8..12].try_into().unwrap());
    let capacity = le64(h, 12);
    let grain = le64(h, 20);
    let gtes = u32::from_le_bytes(h[44..48].try_into().unwrap()) as u64;
    let gd = le64(h, 56);
    if grain == 0 || gtes == 0 || gtes > 512 || capacity > 1 << 37 || flags & (1 << 16) != 0 {
        return false;
    }
    let zeroed = flags & (1 << 2) != 0;
    let grains = capacity.div_ceil(grain);
    let n = grains.div_ceil(gtes);
    let Some(at) = gd.checked_mul(512) else {
        return false;
    };
    if at.checked_add(n * 4).is_none_or(|end| end > len) {
        return false;
    }
    let mut seen_gts = std::collections::HashSet::new();
    let mut starts = Vec::new();
    for i in 0..n {
        let e = le32(d, at + i * 4).unwrap() as u64;
        if e == 0 || !seen_gts.insert(e) {
            continue;
        }
        for j in 0..gtes.min(grains - i * gtes) {
            let Some(g) = le32(d, e * 512 + j * 4) else {
                break;
            };
            if g == 0 || (g == 1 && zeroed) {
                continue;
            }
            starts.push(g as u64 * 512);
        }
    }
    starts.sort_unstable();
    starts.windows(2).any(|w| w[1] - w[0] < grain * 512)
}

/// Whether the read-back checks apply to the image `main` (in `dir`): false
/// only when the image's own tables make two virtual ranges share host bytes
/// (data aliasing: grain table entries naming overlapping grains, FLAT
/// extents overlapping in one file), where a write legitimately shows
/// through elsewhere. Everything else -- tables, descriptors and headers that
/// data or other tables overlap, extents named twice, an extent that is the
/// descriptor itself -- vimg must either refuse at open or handle, so the
/// checks apply.
pub fn sane(dir: &Path, main: &Path) -> bool {
    let Ok(d) = fs::read(main) else {
        return false;
    };
    if d.starts_with(b"KDMV") {
        return !sparse_grains_alias(&d);
    }
    if d.starts_with(b"conectix") || (d.len() >= 512 && d[d.len() - 512..].starts_with(b"conectix"))
    {
        // vimg refuses every VHD block that overlaps another or the metadata.
        return true;
    }
    let nul = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    let text = String::from_utf8_lossy(&d[..nul]);
    // A parent that is also one of the image's extent files changes under
    // the writes.
    if let Some(hint) = parent_hint(&d) {
        if extent_names(text.as_bytes()).contains(&hint) {
            return false;
        }
    }
    let mut flat: std::collections::HashMap<String, Spans> = Default::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !matches!(words.first(), Some(&("RW" | "RDONLY" | "NOACCESS"))) {
            continue;
        }
        let names = extent_names(line.as_bytes());
        let Some(name) = names.first() else {
            continue;
        };
        match words.get(2) {
            Some(&("FLAT" | "VMFS")) => {
                let sectors: u64 = words.get(1).and_then(|w| w.parse().ok()).unwrap_or(0);
                let offset: u64 = words.last().and_then(|w| w.parse().ok()).unwrap_or(0);
                flat.entry(name.clone())
                    .or_insert_with(|| Spans(Vec::new()))
                    .add(offset.saturating_mul(512), sectors.saturating_mul(512));
            }
            Some(&("SPARSE" | "VMFSSPARSE")) => {
                if let Ok(e) = fs::read(dir.join(name)) {
                    if e.starts_with(b"KDMV") && sparse_grains_alias(&e) {
                        return false;
                    }
                }
            }
            _ => {}
        }
    }
    flat.into_values().all(Spans::disjoint)
}

/// The names an open_read input is opened by.
const NAMES: [&str; 3] = ["disk.img", "disk.vmdk", "disk.vhd"];

fn read_as_each(dir: &Path, data: &[u8]) {
    let salt = hash(data);
    for (name, format) in [
        ("disk.img", None),
        ("disk.vmdk", Some(Format::Vmdk)),
        ("disk.vhd", Some(Format::Vhd)),
    ] {
        let path = materialize(dir, name, &NAMES, data);
        match open(&path, format, Access::Read) {
            Ok(mut dev) => {
                if debug() {
                    eprintln!("{name} {format:?}: opened, {} bytes", dev.virtual_size());
                }
                exercise(dev.as_mut(), salt);
            }
            Err(e) if debug() => eprintln!("{name} {format:?}: {e}"),
            Err(_) => {}
        }
        // As `convert --salvage` opens it: damaged data units fail their
        // reads instead of the open; nothing may panic or hang.
        let opts = OpenOptions::new(Access::Read).salvaging(true);
        if let Ok(mut dev) = vimg::image::factory::open_with(&path, format, opts) {
            walk(dev.as_mut());
            let size = dev.virtual_size();
            let mut buf = vec![0u8; size.min(1 << 20) as usize];
            let _ = dev.read_at(&mut buf, 0);
            let tail = size - buf.len() as u64;
            let _ = dev.read_at(&mut buf, tail);
        }
    }
}

/// The open_read check: open the input read-only as a probed image, as
/// VMDK and as VHD (and again with its VHD checksums repaired); on success
/// query info, walk block_status over the whole disk and read a few ranges,
/// checking them against the allocation map.
pub fn open_read(dir: &Path, data: &[u8]) {
    read_as_each(dir, data);
    if let Some(fixed) = fix_vhd_checksums(data) {
        read_as_each(dir, &fixed);
    }
}

/// Bytes kept for comparison on each side of a write.
const GUARD: u64 = 300;
/// Largest single write.
const MAX_WRITE: u64 = 192 << 10;

struct Write {
    offset: u64,
    data: Vec<u8>,
    ok: bool,
}

fn read(dev: &mut dyn Image, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    dev.read_at(&mut buf, offset).ok().map(|_| buf)
}

/// What `[offset, offset + len)` should read after all `writes`, given what
/// it read before (`None` when a failed write makes it unknown).
fn expected(writes: &[Write], offset: u64, before: &[u8]) -> Option<Vec<u8>> {
    let mut out = before.to_vec();
    let end = offset + before.len() as u64;
    for w in writes {
        let w_end = w.offset + w.data.len() as u64;
        if w_end <= offset || w.offset >= end {
            continue;
        }
        if !w.ok {
            return None;
        }
        let from = w.offset.max(offset);
        let to = w_end.min(end);
        out[(from - offset) as usize..(to - offset) as usize]
            .copy_from_slice(&w.data[(from - w.offset) as usize..(to - w.offset) as usize]);
    }
    Some(out)
}

/// Disks up to this size are compared whole before and after the writes.
const WHOLE_DISK: u64 = 1 << 20;
/// Clusters whose first and last sector are compared on larger disks.
const SAMPLED_CLUSTERS: u64 = 64;
/// Piece size of the whole-disk comparison.
const WITNESS_PIECE: u64 = 64 << 10;

/// Ranges to compare besides the written ones: the whole of a small disk;
/// on a larger one its first and last 4 KiB and the first and last sector
/// of clusters spread over it (allocation moves footers and tables next to
/// cluster edges).
fn witnesses(size: u64, cluster: u64) -> Vec<(u64, u64)> {
    if size <= WHOLE_DISK {
        // In pieces, so that a failed write only hides the pieces it touches.
        return (0..size.div_ceil(WITNESS_PIECE))
            .map(|k| {
                let start = k * WITNESS_PIECE;
                (start, WITNESS_PIECE.min(size - start))
            })
            .collect();
    }
    let mut out = vec![(0, 4096), (size - 4096, 4096)];
    let clusters = size.div_ceil(cluster);
    let step = clusters.div_ceil(SAMPLED_CLUSTERS).max(1);
    let mut c = 0;
    while c < clusters {
        let start = c * cluster;
        let end = (start + cluster).min(size);
        out.push((start, 512.min(end - start)));
        let last = end.saturating_sub(512).max(start);
        out.push((last, end - last));
        c += step;
    }
    out
}

/// The open_write check: open the input for writing (format probed), write
/// a few buffers at offsets derived from it, and check that every range
/// reads as written (or as before, where no write touched it) through the
/// same handle and after a flush and a reopen. See fuzz/README.md.
pub fn open_write(dir: &Path, data: &[u8]) {
    let data = fix_vhd_checksums(data).unwrap_or_else(|| data.to_vec());
    let name = format!("disk.{}", extension_for(&data));
    let path = materialize(dir, &name, &[&name], &data);
    // Read-back checks only where the image's own tables do not alias.
    let strict = sane(dir, &path);
    let mut dev = match open(&path, None, Access::Write) {
        Ok(dev) => dev,
        Err(e) => {
            if debug() {
                eprintln!("{name}: {e}");
            }
            return;
        }
    };
    let size = dev.virtual_size();
    if size == 0 {
        return;
    }
    let cluster = dev.cluster_size().clamp(1, 1 << 40);
    let mut rng = Rng(hash(&data));

    // Plan the writes.
    let count = 1 + rng.below(4);
    let mut writes = Vec::new();
    for i in 0..count {
        let len = match rng.below(7) {
            0 => 1,
            1 => 512,
            2 => 513,
            3 => 4096,
            4 => cluster,
            5 => 2 * cluster + 3,
            _ => 1 + rng.below(65536),
        }
        .clamp(1, MAX_WRITE)
        .min(size);
        let last = size - len;
        let offset = match rng.below(6) {
            0 => 0,
            1 => last,
            // straddle a cluster boundary
            2 => cluster
                .saturating_mul(1 + rng.below(size / cluster + 1))
                .saturating_sub(len / 2 + 1),
            3 => rng.below(last + 1) / 512 * 512,
            4 => rng.below(last + 1),
            _ => size / 2,
        }
        .min(last);
        let fill = (i as u8).wrapping_mul(37).wrapping_add(1);
        let data: Vec<u8> = (0..len)
            .map(|k| fill ^ (k as u8).rotate_left(3) | 1)
            .collect();
        writes.push(Write {
            offset,
            data,
            ok: false,
        });
    }

    // What the ranges and their surroundings read before any write, plus
    // witnesses elsewhere that no write touches (or, for small disks, the
    // whole disk): a write must not change what it was not given.
    let mut spans: Vec<(u64, u64)> = writes
        .iter()
        .map(|w| {
            let start = w.offset.saturating_sub(GUARD);
            let end = (w.offset + w.data.len() as u64)
                .saturating_add(GUARD)
                .min(size);
            (start, end - start)
        })
        .collect();
    spans.extend(witnesses(size, cluster));
    let before: Vec<Option<Vec<u8>>> = spans
        .iter()
        .map(|&(o, l)| read(dev.as_mut(), o, l))
        .collect();

    // Validation must not depend on the access mode: what reads through a
    // read-only open must read through the read-write one, and the reverse.
    if let Ok(mut ro) = open(&path, None, Access::Read) {
        assert_eq!(
            ro.virtual_size(),
            size,
            "read-only and read-write opens disagree on the size"
        );
        for (&(o, l), b) in spans.iter().zip(&before) {
            let ro_ok = read(ro.as_mut(), o, l).is_some();
            assert!(
                ro_ok == b.is_some(),
                "bytes {o}..{}: read-only open {}, read-write open {}",
                o + l,
                if ro_ok { "reads them" } else { "fails" },
                if b.is_some() { "reads them" } else { "fails" },
            );
        }
    }

    for w in &mut writes {
        let r = dev.write_at(&w.data, w.offset);
        if debug() {
            eprintln!(
                "{name} (strict: {strict}): write {} bytes at {} of {size}: {r:?}",
                w.data.len(),
                w.offset
            );
        }
        w.ok = r.is_ok();
    }

    if !strict {
        // Writes may show through aliased data, but the image's structure
        // must survive: flush, reopen and walk.
        if dev.flush().is_err() {
            return;
        }
        drop(dev);
        match open(&path, None, Access::Read) {
            Ok(mut dev) => walk_steps(dev.as_mut(), 10_000),
            Err(e) => panic!("the image no longer opens after writes and a flush: {e}"),
        }
        return;
    }

    // Same handle, before flush.
    for (&(o, l), b) in spans.iter().zip(&before) {
        let (Some(b), Some(want)) = (b, b.as_ref().and_then(|b| expected(&writes, o, b))) else {
            continue;
        };
        let _ = b;
        if let Some(got) = read(dev.as_mut(), o, l) {
            assert!(
                got == want,
                "bytes {o}..{} differ from what was written (same handle)",
                o + l
            );
        }
    }

    if let Err(e) = dev.flush() {
        // Nothing outside the image's own structure can make a flush fail
        // once writes into it succeeded.
        if writes.iter().any(|w| w.ok) {
            panic!("flush failed after successful writes: {e}");
        }
        return;
    }
    drop(dev);

    let mut dev = match open(&path, None, Access::Read) {
        Ok(dev) => dev,
        Err(e) => panic!("the image no longer opens after writes and a flush: {e}"),
    };
    assert_eq!(dev.virtual_size(), size, "virtual size changed");
    for (&(o, l), b) in spans.iter().zip(&before) {
        let Some(want) = b.as_ref().and_then(|b| expected(&writes, o, b)) else {
            continue;
        };
        match read(dev.as_mut(), o, l) {
            Some(got) => assert!(
                got == want,
                "bytes {o}..{} differ from what was written (after reopen)",
                o + l
            ),
            None => panic!("bytes {o}..{} cannot be read after reopen", o + l),
        }
    }
    // open_read walks whole disks; here a shorter walk keeps the target fast.
    walk_steps(dev.as_mut(), 10_000);
}

/// Largest virtual disk the check target reads whole, to compare what it
/// reads before and after a repair of leaks.
const MAX_COMPARED: u64 = 64 << 20;

/// Open `path` as `format` for checking, with `access`.
fn open_checking(path: &Path, format: Option<Format>, access: Access) -> Option<Box<dyn Image>> {
    let opts = OpenOptions::new(access).checking();
    match open_with(path, format, opts) {
        Ok(image) => Some(image),
        Err(e) => {
            if debug() {
                eprintln!("{}: {e}", path.display());
            }
            None
        }
    }
}

/// A digest of everything the disk reads, when it is small enough to read
/// whole and every read succeeds.
fn content_digest(image: &mut dyn Image) -> Option<u64> {
    let size = image.virtual_size();
    if size > MAX_COMPARED {
        return None;
    }
    let mut digest = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        image.read_at(&mut buf[..n], at).ok()?;
        digest = digest.rotate_left(7) ^ hash(&buf[..n]);
        at += n as u64;
    }
    Some(digest)
}

/// The check target: the input opened for checking (probed, as VMDK and
/// as VHD, checksums as they are and repaired) is walked to the end
/// without a panic; then repaired: a repair of leaks changes nothing any
/// sector reads, a repair of everything leaves an image that opens for
/// checking again, and a second repair finds nothing left to do.
pub fn check(dir: &Path, data: &[u8]) {
    check_as_each(dir, data);
    if let Some(fixed) = fix_vhd_checksums(data) {
        check_as_each(dir, &fixed);
    }
}

fn check_as_each(dir: &Path, data: &[u8]) {
    for (name, format) in [
        ("disk.img", None),
        ("disk.vmdk", Some(Format::Vmdk)),
        ("disk.vhd", Some(Format::Vhd)),
    ] {
        let path = materialize(dir, name, &NAMES, data);
        let Some(mut image) = open_checking(&path, format, Access::Read) else {
            continue;
        };
        let mut report = Report::default();
        if let Err(e) = image.check(&mut report) {
            if debug() {
                eprintln!("{name}: the walk stopped: {e}");
            }
        }
        if debug() {
            eprintln!("{name}: {} findings", report.findings.len());
        }
        drop(image);
        for level in [Repair::Leaks, Repair::All] {
            let Some(mut image) = open_checking(&path, format, Access::Write) else {
                break;
            };
            // Compared as opened for the repair: a writable open may read
            // some damage otherwise (a file two extents name is opened
            // once for writing).
            let before = match level {
                Repair::Leaks => content_digest(image.as_mut()),
                Repair::All => None,
            };
            let fixed = match image.repair(level) {
                Ok(fixed) => fixed,
                Err(_) => break,
            };
            drop(image);
            let mut image = open_checking(&path, format, Access::Write).unwrap_or_else(|| {
                panic!("{name}: no longer opens after a repair of {level:?} that fixed {fixed:?}")
            });
            if level == Repair::Leaks {
                let after = content_digest(image.as_mut());
                if let (Some(before), Some(after)) = (before, after) {
                    assert_eq!(
                        before, after,
                        "{name}: a repair of leaks changed the disk: {fixed:?}"
                    );
                }
            }
            if let Ok(again) = image.repair(level) {
                assert!(
                    again.is_empty(),
                    "{name}: a second repair of {level:?} still fixed {again:?} (the first fixed {fixed:?})"
                );
            }
        }
    }
}

/// Largest disk the resize target grows (its new part must read zeros,
/// and is read whole).
const MAX_RESIZED: u64 = 64 << 20;

/// The resize target: an image that opens for writing (and is no delta)
/// is grown, then shrunk back, each as `vimg resize` does it (the image
/// dropped and its leaks given back after): it opens again after each, at
/// the size asked for, the old content reads the same, and the new part
/// reads zeros. A resize may refuse, but never panic or leave an image
/// that does not open.
pub fn resize(dir: &Path, data: &[u8]) {
    let data = fix_vhd_checksums(data).unwrap_or_else(|| data.to_vec());
    let name = format!("disk.{}", extension_for(&data));
    let path = materialize(dir, &name, &[&name], &data);
    if !sane(dir, &path) {
        return;
    }
    let Ok(mut dev) = open(&path, None, Access::Write) else {
        return;
    };
    let size = dev.virtual_size();
    if size == 0 || size > MAX_RESIZED || dev.parent_link().is_some() {
        return;
    }
    let before = content_digest(dev.as_mut());
    let grown = (size + (size / 2).max(512)).div_ceil(512) * 512;
    for (to, what) in [(grown, "grown"), (size.div_ceil(512) * 512, "shrunk back")] {
        let result = dev.resize(to);
        if debug() {
            eprintln!("{name}: resize {size} -> {to}: {result:?}");
        }
        if result.is_err() {
            return;
        }
        drop(dev);
        let opts = OpenOptions::new(Access::Write)
            .with_parents(None)
            .checking();
        if let Ok(mut fixing) = open_with(&path, None, opts) {
            let _ = fixing.repair(Repair::Leaks);
        }
        dev = match open(&path, None, Access::Write) {
            Ok(dev) => dev,
            Err(e) => panic!("the image no longer opens once {what}: {e}"),
        };
        assert_eq!(dev.virtual_size(), to, "the size once {what}");
        let mut zeros = vec![0u8; (to.saturating_sub(size)).min(1 << 20) as usize];
        if !zeros.is_empty() && dev.read_at(&mut zeros, size).is_ok() {
            assert!(
                zeros.iter().all(|&b| b == 0),
                "the new part reads data once {what}"
            );
        }
    }
    if let (Some(before), Some(after)) = (before, content_digest(dev.as_mut())) {
        assert_eq!(
            before, after,
            "the content changed by growing and shrinking back"
        );
    }
}
