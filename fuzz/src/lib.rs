//! Helpers shared by the vimg fuzz targets: a per-process scratch directory
//! on tmpfs, turning one fuzz input into an image file (plus the extent files
//! a text descriptor names), repairing VHD checksums so the fuzzer gets past
//! them, and the checks every opened image must pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vimg::image::{BlockDevice, Kind, Mapping};

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

/// Write `data` as `dir/main`; when it is a text descriptor (no sparse
/// magic) followed by a NUL, also write the files it names from what follows
/// the NUL (split at [`EXTENT_SEP`]; with fewer pieces than names the last
/// piece is reused). Names in `reserved` (the image's own names) are skipped.
pub fn materialize(dir: &Path, main: &str, reserved: &[&str], data: &[u8]) -> PathBuf {
    let path = dir.join(main);
    fs::write(&path, data).expect("cannot write the fuzz input");
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
/// the dynamic header they point at. `None` when nothing changed.
pub fn fix_vhd_checksums(data: &[u8]) -> Option<Vec<u8>> {
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
pub fn walk(dev: &mut dyn BlockDevice) {
    walk_steps(dev, MAX_STATUS_STEPS)
}

/// [`walk`] with its own step budget.
pub fn walk_steps(dev: &mut dyn BlockDevice, max_steps: u64) {
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
fn check_against_status(dev: &mut dyn BlockDevice, buf: &[u8], offset: u64) {
    let mut at = 0usize;
    if aligned_status() {
        at = ((512 - offset % 512) % 512) as usize;
    }
    // A few runs are enough; each is cheap to check.
    for _ in 0..8 {
        if at >= buf.len() {
            break;
        }
        let Ok(Mapping { len, kind }) =
            dev.block_status(offset + at as u64, (buf.len() - at) as u64)
        else {
            return;
        };
        let n = (len as usize).min(buf.len() - at);
        let piece = &buf[at..at + n];
        match kind {
            // No image here has a parent, so unallocated reads as zeros.
            Kind::Zero { .. } | Kind::Unallocated => {
                if let Some(p) = piece.iter().position(|&b| b != 0) {
                    panic!(
                        "block_status says {kind:?} for {n} bytes at {}, but byte {} reads {:#04x}",
                        offset + at as u64,
                        offset + (at + p) as u64,
                        piece[p]
                    );
                }
            }
            Kind::Data {
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
            Kind::Data { .. } => {}
        }
        at += n;
    }
}

/// Read a few ranges (start, middle, end, and an unaligned one), at most
/// [`MAX_READ_BYTES`] in total, and check them against block_status.
pub fn read_some(dev: &mut dyn BlockDevice, salt: u64) {
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
pub fn exercise(dev: &mut dyn BlockDevice, salt: u64) {
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
    fn add(&mut self, start: u64, len: u64) -> bool {
        match start.checked_add(len) {
            Some(end) => {
                if len > 0 {
                    self.0.push((start, end));
                }
                true
            }
            None => false,
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

/// A hosted sparse extent whose tables and grains all lie inside the file
/// and overlap nothing else.
fn sparse_sane(d: &[u8]) -> bool {
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
    let (desc_off, desc_len) = (le64(h, 28), le64(h, 36));
    let gtes = u32::from_le_bytes(h[44..48].try_into().unwrap()) as u64;
    let (rgd, gd) = (le64(h, 48), le64(h, 56));
    if grain == 0 || gtes == 0 || capacity > 1 << 40 || grain > 1 << 20 {
        return false;
    }
    let compressed = flags & (1 << 16) != 0;
    let zeroed = flags & (1 << 2) != 0;
    let n = capacity.div_ceil(grain).div_ceil(gtes);
    let gt_bytes = (gtes * 4).div_ceil(512) * 512;
    let mut spans = Spans(Vec::new());
    spans.add(0, 512);
    if desc_off != 0 && desc_len != 0 {
        let (Some(o), Some(l)) = (desc_off.checked_mul(512), desc_len.checked_mul(512)) else {
            return false;
        };
        spans.add(o, l);
    }
    let mut dirs = vec![gd];
    if flags & 2 != 0 && rgd != 0 {
        dirs.push(rgd);
    }
    let mut gts = Vec::new();
    for (k, &dir) in dirs.iter().enumerate() {
        let Some(at) = dir.checked_mul(512) else {
            return false;
        };
        if at == 0 || !spans.add(at, n * 4) || at + n * 4 > len {
            return false;
        }
        for i in 0..n {
            let e = le32(d, at + i * 4).unwrap() as u64;
            if e == 0 {
                continue;
            }
            if e * 512 + gt_bytes > len {
                return false;
            }
            spans.add(e * 512, gt_bytes);
            if k == 0 {
                gts.push(e * 512);
            }
        }
    }
    if !compressed {
        for gt in gts {
            for j in 0..gtes {
                let g = le32(d, gt + j * 4).unwrap() as u64;
                if g == 0 || (g == 1 && zeroed) {
                    continue;
                }
                if g * 512 >= len {
                    return false;
                }
                spans.add(g * 512, grain * 512);
            }
        }
    }
    spans.disjoint()
}

/// A VHD whose dynamic header, BAT and blocks lie inside the file and
/// overlap nothing else (fixed disks always pass).
fn vhd_sane(d: &[u8]) -> bool {
    let len = d.len() as u64;
    if len < 512 {
        return false;
    }
    let tail = &d[d.len() - 512..];
    let has_tail = tail.starts_with(b"conectix");
    let footer = if has_tail { tail } else { &d[..512] };
    match be32(footer, 60) {
        Some(2) => return true,
        Some(3) => {}
        _ => return false,
    }
    let hdr = be64(footer, 16);
    if hdr.checked_add(1024).is_none_or(|e| e > len) {
        return false;
    }
    let h = &d[hdr as usize..hdr as usize + 1024];
    let table = be64(h, 16);
    let entries = be32(h, 28).unwrap() as u64;
    let block = be32(h, 32).unwrap() as u64;
    if block < 512 || !block.is_power_of_two() {
        return false;
    }
    let bitmap = (block / 512 / 8).div_ceil(512) * 512;
    let end = if has_tail { len - 512 } else { len };
    let mut spans = Spans(Vec::new());
    spans.add(0, 512);
    spans.add(hdr, 1024);
    if !spans.add(table, (entries * 4).div_ceil(512) * 512) || table + entries * 4 > len {
        return false;
    }
    if has_tail {
        spans.add(len - 512, 512);
    }
    for i in 0..entries {
        let e = be32(d, table + i * 4).unwrap();
        if e == u32::MAX {
            continue;
        }
        let host = e as u64 * 512;
        if host + bitmap + block > end {
            return false;
        }
        spans.add(host, bitmap + block);
    }
    spans.disjoint()
}

/// Whether the image `main` (in `dir`) is structurally sane as far as the
/// harness can tell cheaply: tables and data inside their files, nothing
/// overlapping, each extent file used once and none of them the descriptor
/// itself. Writes into an image that fails this may legitimately land on
/// other data, so read-back checks apply only to sane images.
pub fn sane(dir: &Path, main: &Path) -> bool {
    let Ok(d) = fs::read(main) else {
        return false;
    };
    if d.starts_with(b"KDMV") {
        return sparse_sane(&d);
    }
    if d.len() >= 512 && (d.starts_with(b"conectix") || d[d.len() - 512..].starts_with(b"conectix"))
    {
        return vhd_sane(&d);
    }
    let nul = d.iter().position(|&b| b == 0).unwrap_or(d.len());
    let text = String::from_utf8_lossy(&d[..nul]);
    let main_name = main.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut seen: Vec<String> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if !matches!(words.first(), Some(&("RW" | "RDONLY" | "NOACCESS"))) {
            continue;
        }
        let names = extent_names(line.as_bytes());
        let Some(name) = names.first() else {
            // no file (ZERO) or a name the harness does not create
            continue;
        };
        if Some(name) == main_name.as_ref() || seen.contains(name) {
            return false;
        }
        seen.push(name.clone());
        if words.get(2) == Some(&"SPARSE") {
            if let Ok(e) = fs::read(dir.join(name)) {
                if e.starts_with(b"KDMV") && !sparse_sane(&e) {
                    return false;
                }
            }
        }
    }
    true
}
