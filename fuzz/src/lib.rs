//! Helpers shared by the vimg fuzz targets: a per-process scratch directory
//! on tmpfs, turning one fuzz input into an image file (plus the extent files
//! a text descriptor names), repairing VHD checksums so the fuzzer gets past
//! them, and the checks every opened image must pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vimg::image::{Image, Mapping, Source};

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

/// Separator between the files that follow a text descriptor in an input:
/// `descriptor text \0 extent-1 data [SEP extent-2 data ...]`.
pub const EXTENT_SEP: &[u8] = b"\0--extent--\0";

/// Separator between an image and its parent's file (see [`materialize`]).
pub const PARENT_SEP: &[u8] = b"\0--parent--\0";

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

/// This process's scratch directory, emptied on every call.
pub fn scratch(target: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        remove_stale(&base);
        let dir = base.join(format!("vimg-fuzz-{target}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create the scratch directory");
        dir
    });
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
    dir.clone()
}

/// Remove scratch directories left by fuzzing processes that have exited
/// (a crash skips the clean-up).
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("vimg-fuzz-") else {
            continue;
        };
        let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A file name a descriptor may name that the harness is willing to create.
fn simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
}

/// The extent file names in a text descriptor (quoted or bare 4th word of
/// lines starting RW / RDONLY / NOACCESS), in order.
pub fn extent_names(text: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(text);
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")) {
            continue;
        }
        let _sectors = words.next();
        let _kind = words.next();
        let rest: Vec<&str> = words.collect();
        let rest = rest.join(" ");
        let name = if let Some(q) = rest.strip_prefix('"') {
            q.split('"').next().unwrap_or("").to_string()
        } else {
            rest.split_whitespace().next().unwrap_or("").to_string()
        };
        if simple_name(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The file name a differencing VHD's parent has: the last component of
/// its parent name, or else of the first parent locator that decodes.
fn vhd_parent_name(d: &[u8]) -> Option<String> {
    let len = d.len();
    let footer = if len >= 512 && d[len - 512..].starts_with(b"conectix") {
        &d[len - 512..]
    } else if len >= 512 && d.starts_with(b"conectix") {
        &d[..512]
    } else {
        return None;
    };
    if be32(footer, 60)? != 4 {
        return None;
    }
    let at = usize::try_from(be64(footer, 16)).ok()?;
    let h = d.get(at..at.checked_add(1024)?)?;
    if !h.starts_with(b"cxsparse") {
        return None;
    }
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
    let mut candidates = vec![utf16(&h[64..576], true)];
    for k in 0..8 {
        let e = &h[576 + 24 * k..600 + 24 * k];
        let n = be32(e, 8)? as usize;
        let Ok(off) = usize::try_from(be64(e, 16)) else {
            continue;
        };
        let Some(raw) = off.checked_add(n).and_then(|end| d.get(off..end)) else {
            continue;
        };
        match &e[..4] {
            b"W2ru" | b"W2ku" => candidates.push(utf16(raw, false)),
            b"MacX" => {
                let t = String::from_utf8_lossy(raw);
                let t = t.trim_end_matches('\0');
                candidates.push(t.strip_prefix("file://").unwrap_or(t).to_string());
            }
            _ => {}
        }
    }
    candidates.into_iter().find_map(|c| {
        let base = c.rsplit(['\\', '/']).next()?.to_string();
        simple_name(&base).then_some(base)
    })
}

/// The file name an image's parent has: a VMDK's `parentFileNameHint` (in
/// a text descriptor or an embedded one, first 64 KiB) or a differencing
/// VHD's parent name or locators, if it is a plain name.
pub fn parent_hint(data: &[u8]) -> Option<String> {
    if let Some(name) = vhd_parent_name(data) {
        return Some(name);
    }
    const KEY: &[u8] = b"parentFileNameHint";
    let head = &data[..data.len().min(64 << 10)];
    let at = head.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &head[at + KEY.len()..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]);
    let (_, value) = line.split_once('=')?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    simple_name(value).then(|| value.to_string())
}

/// Split an input at [`PARENT_SEP`]: the image, and its parent's file.
pub fn split_parent(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.windows(PARENT_SEP.len()).position(|w| w == PARENT_SEP) {
        Some(p) => (&data[..p], Some(&data[p + PARENT_SEP.len()..])),
        None => (data, None),
    }
}

/// Write `data` as `dir/main`; when it is a text descriptor (no sparse
/// magic) followed by a NUL, also write the files it names from what follows
/// the NUL (split at [`EXTENT_SEP`]; with fewer pieces than names the last
/// piece is reused). Names in `reserved` (the image's own names) are skipped.
///
/// When the input holds [`PARENT_SEP`], what follows it is written as the
/// file the image's `parentFileNameHint` names (a VMDK delta's parent), and
/// only what precedes it is the image.
pub fn materialize(dir: &Path, main: &str, reserved: &[&str], data: &[u8]) -> PathBuf {
    let path = dir.join(main);
    let (data, parent) = split_parent(data);
    fs::write(&path, data).expect("cannot write the fuzz input");
    if let (Some(parent), Some(hint)) = (parent, parent_hint(data)) {
        if !reserved.contains(&hint.as_str()) && hint != main {
            let _ = fs::write(dir.join(hint), parent);
        }
    }
    if data.starts_with(b"KDMV") || data.starts_with(b"COWD") {
        return path;
    }
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return path;
    };
    let names = extent_names(&data[..nul]);
    if names.is_empty() {
        return path;
    }
    let payload = &data[nul + 1..];
    let pieces = split(payload, EXTENT_SEP);
    for (i, name) in names.iter().enumerate().take(16) {
        if reserved.contains(&name.as_str()) || name == main {
            continue;
        }
        let piece = pieces[i.min(pieces.len() - 1)];
        let _ = fs::write(dir.join(name), piece);
    }
    path
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(p) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..p]);
        rest = &rest[p + sep.len()..];
    }
    out.push(rest);
    out
}

fn vhd_checksum(buf: &[u8], field: usize) -> u32 {
    let sum = buf
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(b as u32));
    !sum
}

/// Recompute the checksums of the VHD footers (at 0 and at the end) and of
/// the dynamic header they point at, in the image and in the parent that
/// follows [`PARENT_SEP`]. `None` when nothing changed.
pub fn fix_vhd_checksums(data: &[u8]) -> Option<Vec<u8>> {
    let (image, parent) = split_parent(data);
    let Some(parent) = parent else {
        return fix_one_vhd(image);
    };
    let a = fix_one_vhd(image);
    let b = fix_one_vhd(parent);
    if a.is_none() && b.is_none() {
        return None;
    }
    let mut out = a.unwrap_or_else(|| image.to_vec());
    out.extend_from_slice(PARENT_SEP);
    out.extend_from_slice(&b.unwrap_or_else(|| parent.to_vec()));
    Some(out)
}

fn fix_one_vhd(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.to_vec();
    let len = out.len();
    let mut footers = Vec::new();
    if len >= 512 && out[len - 512..].starts_with(b"conectix") {
        footers.push(len - 512);
    }
    if len >= 512 && out.starts_with(b"conectix") && len != 512 {
        footers.push(0);
    }
    if footers.is_empty() {
        return None;
    }
    let mut header_at = None;
    for &at in &footers {
        let sum = vhd_checksum(&out[at..at + 512], 64);
        out[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
        if header_at.is_none() {
            let off = u64::from_be_bytes(out[at + 16..at + 24].try_into().unwrap());
            if off.checked_add(1024).is_some_and(|end| end <= len as u64) {
                let off = off as usize;
                if out[off..].starts_with(b"cxsparse") {
                    header_at = Some(off);
                }
            }
        }
    }
    if let Some(at) = header_at {
        let sum = vhd_checksum(&out[at..at + 1024], 36);
        out[at + 36..at + 40].copy_from_slice(&sum.to_be_bytes());
        // The header change may have moved a footer's bytes when they
        // overlap; settle the footers again.
        for &at in &footers {
            let sum = vhd_checksum(&out[at..at + 512], 64);
            out[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
        }
    }
    (out != data).then_some(out)
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

/// The extension that fits the input's content.
pub fn extension_for(data: &[u8]) -> &'static str {
    let data = split_parent(data).0;
    let head = &data[..data.len().min(4096)];
    if head.starts_with(b"KDMV") || head.starts_with(b"COWD") {
        return "vmdk";
    }
    if head.starts_with(b"conectix")
        || (data.len() >= 512 && data[data.len() - 512..].starts_with(b"conectix"))
    {
        return "vhd";
    }
    let text =
        String::from_utf8_lossy(&head[..head.iter().position(|&b| b == 0).unwrap_or(head.len())]);
    if text.contains("createType") || text.contains("# Disk DescriptorFile") {
        return "vmdk";
    }
    "img"
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

fn be32(d: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_be_bytes(
        d.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
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
