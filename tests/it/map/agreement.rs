//! `vimg map` against `qemu-img map`: JSON entries (parsed, alike
//! neighbours merged, and the raw text) and the human listing, for every
//! format and subformat made by either tool, delta chains, windows given
//! with --start-offset/--max-length; the compressed ranges qemu-img cannot
//! list; differencing VHDs, where qemu-img is wrong; and empty 2 TiB
//! images, which must map at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// One JSON map entry, as both tools print it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    start: u64,
    length: u64,
    depth: u64,
    present: bool,
    zero: bool,
    data: bool,
    compressed: bool,
    offset: Option<u64>,
}

const KEYS: [&str; 8] = [
    "start",
    "length",
    "depth",
    "present",
    "zero",
    "data",
    "compressed",
    "offset",
];

/// Parse `map --output json` text: an array of objects with exactly
/// qemu-img's keys, in qemu-img's order (`offset` optional).
fn parse(text: &str, who: &str) -> Vec<Entry> {
    let v: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{who} printed invalid JSON ({e}):\n{text}"));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("{who}: not an array:\n{text}"));
    arr.iter()
        .map(|o| {
            let obj = o
                .as_object()
                .unwrap_or_else(|| panic!("{who}: entry is not an object: {o}"));
            let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            let want = if obj.contains_key("offset") { 8 } else { 7 };
            assert_eq!(keys, KEYS[..want], "{who}: keys of {o}");
            let b = |k: &str| {
                obj[k]
                    .as_bool()
                    .unwrap_or_else(|| panic!("{who}: '{k}' not a bool in {o}"))
            };
            Entry {
                start: field_u64(o, "start"),
                length: field_u64(o, "length"),
                depth: field_u64(o, "depth"),
                present: b("present"),
                zero: b("zero"),
                data: b("data"),
                compressed: b("compressed"),
                offset: obj.get("offset").map(|_| field_u64(o, "offset")),
            }
        })
        .collect()
}

/// Merge alike neighbours: same depth/present/zero/data/compressed and
/// contiguous offsets (both absent, or the second one continuing the
/// first). Zero-length entries (qemu-img prints one for an empty window)
/// are dropped.
fn merged(entries: &[Entry]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for e in entries.iter().filter(|e| e.length > 0) {
        if let Some(last) = out.last_mut() {
            let alike = last.depth == e.depth
                && last.present == e.present
                && last.zero == e.zero
                && last.data == e.data
                && last.compressed == e.compressed
                && last.start + last.length == e.start
                && match (last.offset, e.offset) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a + last.length == b,
                    _ => false,
                };
            if alike {
                last.length += e.length;
                continue;
            }
        }
        out.push(e.clone());
    }
    out
}

/// The entries tile `[start, end)` exactly, each non-empty, with
/// consistent flags.
fn assert_tiles(entries: &[Entry], start: u64, end: u64, what: &str) {
    let mut at = start;
    for e in entries {
        assert_eq!(e.start, at, "{what}: gap or overlap at {e:?}");
        assert!(e.length > 0, "{what}: empty entry {e:?}");
        if !e.present {
            assert!(
                e.zero && !e.data && !e.compressed && e.offset.is_none(),
                "{what}: inconsistent absent entry {e:?}"
            );
        }
        if e.compressed {
            assert!(
                e.data && e.offset.is_none(),
                "{what}: bad compressed entry {e:?}"
            );
        }
        at += e.length;
    }
    assert_eq!(at, end, "{what}: the entries end at {at}, not {end}");
}

/// A window of the virtual disk: `--start-offset`, `--max-length`.
type Window = Option<(u64, u64)>;

fn qemu_map(fmt: &str, path: &Path, w: Window, json: bool) -> String {
    let mut map = qemu_img!("map -f", qemu_fmt(fmt)).args(json.then_some("--output=json"));
    if let Some((start, len)) = w {
        map = map
            .arg(format!("--start-offset={start}"))
            .arg(format!("--max-length={len}"));
    }
    map.arg(path).ok()
}

fn vimg_map(fmt: Option<&str>, path: &Path, w: Window, json: bool) -> String {
    vimg!("map")
        .opt("-f", fmt.map(qemu_fmt))
        .arg("--output")
        .arg(if json { "json" } else { "human" })
        .opt("--start-offset", w.map(|(start, _)| start))
        .opt("--max-length", w.map(|(_, len)| len))
        .arg(path)
        .ok()
}

/// The window `[start, end)` a map covers for a disk of `size` bytes.
fn span(w: Window, size: u64) -> (u64, u64) {
    match w {
        None => (0, size),
        Some((start, len)) => (start.min(size), start.saturating_add(len).min(size)),
    }
}

/// `vimg map --output json` agrees with `qemu-img map --output=json`: the
/// merged entries are equal, vimg's are already merged and tile the
/// window, and the text is qemu-img's byte for byte. The one exception is
/// an empty window (at or past the end, or --max-length 0), where
/// qemu-img prints a single zero-length entry with every flag false and
/// vimg prints `[]`. Returns vimg's entries.
fn assert_json_agrees(fmt: &str, path: &Path, size: u64, w: Window) -> Vec<Entry> {
    let what = format!("map -f {fmt} {} {:?}", path.display(), w);
    let q_text = qemu_map(fmt, path, w, true);
    let v_text = vimg_map(Some(fmt), path, w, true);
    let q = parse(&q_text, "qemu-img");
    let v = parse(&v_text, "vimg");
    let (start, end) = span(w, size);
    assert_tiles(&v, start, end, &what);
    assert_eq!(merged(&v), v, "{what}: vimg left alike neighbours unmerged");
    assert_eq!(
        merged(&q),
        v,
        "{what}: merged entries differ\nqemu-img:\n{q_text}vimg:\n{v_text}"
    );
    if start == end {
        assert_eq!(v_text, "[]\n", "{what}");
        assert!(
            q.len() == 1 && q[0].length == 0,
            "{what}: qemu-img's empty map changed:\n{q_text}"
        );
    } else {
        assert_eq!(v_text, q_text, "{what}: the JSON text differs");
    }
    v
}

/// The human listing is qemu-img's, byte for byte.
fn assert_human_agrees(fmt: &str, path: &Path, w: Window) {
    let q = qemu_map(fmt, path, w, false);
    let v = vimg_map(Some(fmt), path, w, false);
    assert_eq!(
        v,
        q,
        "map -f {fmt} {} {:?}: human output differs",
        path.display(),
        w
    );
}

const HEADER: &str = "Offset          Length          Mapped to       File\n";

/// Windows over a disk of `size` bytes: aligned to grains and blocks,
/// unaligned, single bytes, crossing and past the end, and empty.
fn windows(size: u64) -> Vec<Window> {
    let mid = size / 2 / (64 * KIB) * (64 * KIB);
    vec![
        None,
        Some((0, size)),
        Some((64 * KIB, 2 * MIB)),
        Some((2 * MIB, 6 * MIB)),
        Some((mid, 64 * KIB)),
        Some((3333, 3_300_000)),
        Some((12345, 1)),
        Some((1, 511)),
        Some((mid + 777, size)),
        Some((size - 100, 1000)),
        Some((size - 1, 1)),
        Some((size / 3 + 5, size / 3 + 17)),
        Some((0, 0)),
        Some((size, 5)),
        Some((size + 12345, 10)),
    ]
}

/// Full map, windows, and (unless the image holds compressed grains) the
/// human listing, all against qemu-img.
fn assert_agrees_everywhere(fmt: &str, path: &Path, size: u64, human: bool) {
    for w in windows(size) {
        assert_json_agrees(fmt, path, size, w);
        if human {
            assert_human_agrees(fmt, path, w);
        }
    }
}

/// Disk size for the random images: a sector multiple that is neither a
/// grain nor a block multiple.
const SIZE: u64 = 37 * MIB + 3 * 512;

#[test]
fn json_and_human_sparse_raw_agree() {
    let dir = tempdir();
    for (seed, size) in [(1u64, SIZE), (2, 9 * MIB + 1), (3, 64 * MIB)] {
        let raw = dir.path().join(format!("disk{seed}.img"));
        build_raw(&raw, size, seed);
        // A raw disk's size is rounded up to a whole sector, as in qemu-img.
        assert_agrees_everywhere("raw", &raw, sector_up(size), true);
        // Probed: the same picture without -f.
        assert_eq!(
            vimg_map(None, &raw, None, true),
            qemu_map("raw", &raw, None, true)
        );
    }
    // An empty raw file: qemu-img prints one zero-length entry, vimg `[]`.
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    assert_json_agrees("raw", &empty, 0, None);
    assert_human_agrees("raw", &empty, None);
}

/// VMDK subformats: (`-o` options for both tools, file name part, whether
/// the image holds compressed grains).
const VMDK_KINDS: [(&str, &str, bool); 3] = [
    ("subformat=monolithicSparse", "sparse", false),
    ("subformat=monolithicFlat", "flat", false),
    ("subformat=streamOptimized", "stream", true),
];

/// Convert `raw` with both tools to each VMDK subformat and each VHD
/// subformat, and compare every map with qemu-img's.
fn formats_agree(seed: u64) {
    let dir = tempdir();
    let raw = dir.path().join("src.img");
    build_raw(&raw, SIZE, seed);
    let mut images: Vec<(&str, PathBuf, bool)> = Vec::new();
    for (opts, name, compressed) in VMDK_KINDS {
        let q = dir.path().join(format!("q-{name}.vmdk"));
        let v = dir.path().join(format!("v-{name}.vmdk"));
        qemu_img!("convert -f raw -O vmdk -o", opts, &raw, &q).ok();
        vimg!("convert -f raw -O vmdk -o", opts, &raw, &v).ok();
        images.push(("vmdk", q, compressed));
        images.push(("vmdk", v, compressed));
    }
    for sub in ["dynamic", "fixed"] {
        let q = dir.path().join(format!("q-{sub}.vhd"));
        let v = dir.path().join(format!("v-{sub}.vhd"));
        let o = format!("subformat={sub}");
        qemu_img!("convert -f raw -O vpc -o", &o, &raw, &q).ok();
        vimg!("convert -f raw -O vhd -o", &o, &raw, &v).ok();
        images.push(("vhd", q, false));
        images.push(("vhd", v, false));
    }
    for (fmt, path, compressed) in &images {
        let size = field_u64(&qemu_info(Some(fmt), path), "virtual-size");
        assert_agrees_everywhere(fmt, path, size, !compressed);
        // Probed, the format is found and the map is the same.
        assert_eq!(
            vimg_map(None, path, None, true),
            vimg_map(Some(fmt), path, None, true),
            "probed map of {}",
            path.display()
        );
    }
}

#[test]
fn json_and_human_agree_for_vmdk_and_vhd_made_by_both_tools_seed_11() {
    formats_agree(11);
}

#[test]
fn json_and_human_agree_for_vmdk_and_vhd_made_by_both_tools_seed_12() {
    formats_agree(12);
}

/// twoGbMaxExtentSparse/Flat with a 4.5 GiB disk (three extents), data
/// written by qemu-io across the extent boundaries, in images created by
/// qemu-img and by vimg, and converted by both from a raw with the same
/// writes.
#[test]
fn json_and_human_agree_for_two_gb_extents() {
    let dir = tempdir();
    let size = 4 * GIB + 512 * MIB;
    let writes: Vec<String> = [
        "write -P 0x11 0 100k".to_string(),
        format!("write -P 0x22 {} 2", 2 * GIB - 1),
        format!("write -P 0x33 {} 3M", 2 * GIB - MIB - 4096),
        format!("write -P 0x44 {} 64k", 4 * GIB - 64 * KIB),
        format!("write -P 0x55 {} 130k", 4 * GIB + 7),
        format!("write -P 0x66 {} 1", size - 1),
        "write -z 50k 10k".to_string(),
    ]
    .to_vec();
    let raw = dir.path().join("src.img");
    zero_raw(&raw, size);
    qemu_io("raw", &raw, &writes);
    for sub in ["twoGbMaxExtentSparse", "twoGbMaxExtentFlat"] {
        let o = format!("subformat={sub}");
        let qc = dir.path().join(format!("qc-{sub}.vmdk"));
        let vc = dir.path().join(format!("vc-{sub}.vmdk"));
        qemu_img!("create -q -f vmdk -o", &o, &qc, size).ok();
        vimg!("create -q -f vmdk -o", &o, &vc, size).ok();
        qemu_io("vmdk", &qc, &writes);
        qemu_io("vmdk", &vc, &writes);
        let qv = dir.path().join(format!("qv-{sub}.vmdk"));
        let vv = dir.path().join(format!("vv-{sub}.vmdk"));
        qemu_img!("convert -f raw -O vmdk -o", &o, &raw, &qv).ok();
        vimg!("convert -f raw -O vmdk -o", &o, &raw, &vv).ok();
        for img in [&qc, &vc, &qv, &vv] {
            let v = assert_json_agrees("vmdk", img, size, None);
            assert_human_agrees("vmdk", img, None);
            assert!(
                v.iter().any(|e| e.data),
                "{}: no data mapped",
                img.display()
            );
            for w in [
                Some((2 * GIB - 65 * KIB, 130 * KIB)),
                Some((2 * GIB - 1, 2)),
                Some((4 * GIB - 12345, 200 * KIB + 3)),
                Some((size - 5, 100)),
            ] {
                assert_json_agrees("vmdk", img, size, w);
                assert_human_agrees("vmdk", img, w);
            }
        }
    }
}

/// Writes for a three-level chain, per layer (base, mid, top): some
/// overlapping the layers below, some not, aligned and not.
fn chain_writes() -> [Vec<String>; 3] {
    let v = |a: &[&str]| a.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    [
        v(&[
            "write -P 0x01 0 3M",
            "write -P 0x02 10M 100k",
            "write -P 0x03 16777000 1000",
            "write -P 0x04 30M 2M",
            "write -P 0x05 40M 1",
        ]),
        v(&[
            "write -P 0x11 1M 1M",
            "write -P 0x12 15M 64k",
            "write -P 0x13 10200k 300k",
            "write -P 0x14 31M 3M",
            "write -z 2500k 100k",
            "write -P 0x15 20000001 77",
        ]),
        v(&[
            "write -P 0x21 1536k 1M",
            "write -P 0x22 18M 7",
            "write -P 0x23 10M 64k",
            "write -P 0x24 33M 64k",
            "write -z 30M 64k",
            "write -P 0x25 41M 5000",
            "write -P 0x26 16777215 2",
        ]),
    ]
}

const CHAIN_SIZE: u64 = 42 * MIB;

/// The top of a base <- mid <- top VMDK chain maps like qemu-img's, with
/// every depth present, in full and in windows, JSON and human.
fn assert_chain_agrees(top: &Path) {
    let v = assert_json_agrees("vmdk", top, CHAIN_SIZE, None);
    let depths: BTreeSet<u64> = v.iter().filter(|e| e.data).map(|e| e.depth).collect();
    assert_eq!(
        depths,
        BTreeSet::from([0, 1, 2]),
        "data from each layer: {v:?}"
    );
    assert_human_agrees("vmdk", top, None);
    for w in windows(CHAIN_SIZE) {
        assert_json_agrees("vmdk", top, CHAIN_SIZE, w);
        assert_human_agrees("vmdk", top, w);
    }
}

#[test]
fn json_and_human_agree_for_a_vmdk_chain_made_by_qemu_img() {
    let dir = tempdir();
    let [b, m, t] = ["base.vmdk", "mid.vmdk", "top.vmdk"].map(|n| dir.path().join(n));
    let writes = chain_writes();
    qemu_img!("create -q -f vmdk", &b, CHAIN_SIZE).ok();
    qemu_io("vmdk", &b, &writes[0]);
    qemu_img!("create -q -f vmdk -b base.vmdk -F vmdk", &m).ok();
    qemu_io("vmdk", &m, &writes[1]);
    qemu_img!("create -q -f vmdk -b mid.vmdk -F vmdk", &t).ok();
    qemu_io("vmdk", &t, &writes[2]);
    assert_chain_agrees(&t);
    // The middle of the chain maps the same way on its own.
    assert_json_agrees("vmdk", &m, CHAIN_SIZE, None);
}

#[test]
fn json_and_human_agree_for_a_vmdk_chain_made_by_vimg() {
    let dir = tempdir();
    let [b, m, t] = ["base.vmdk", "mid.vmdk", "top.vmdk"].map(|n| dir.path().join(n));
    let writes = chain_writes();
    vimg!("create -q -f vmdk", &b, CHAIN_SIZE).ok();
    qemu_io("vmdk", &b, &writes[0]);
    vimg!("create -q -f vmdk -b", &b, &m).ok();
    qemu_io("vmdk", &m, &writes[1]);
    vimg!("create -q -f vmdk -b", &m, &t).ok();
    qemu_io("vmdk", &t, &writes[2]);
    assert_chain_agrees(&t);
    assert_json_agrees("vmdk", &m, CHAIN_SIZE, None);
}

/// The grains of a raw file that hold a non-zero byte, as merged
/// `(start, length)` ranges clipped to the file's size.
fn data_grains(raw: &Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(raw).unwrap();
    let size = bytes.len() as u64;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, grain) in bytes.chunks(64 * KIB as usize).enumerate() {
        if grain.iter().all(|&b| b == 0) {
            continue;
        }
        let start = i as u64 * 64 * KIB;
        let len = (64 * KIB).min(size - start);
        match out.last_mut() {
            Some((s0, l0)) if *s0 + *l0 == start => *l0 += len,
            _ => out.push((start, len)),
        }
    }
    out
}

/// Parse a human listing: the header, then `(offset, length, mapped to,
/// file)` rows, hex as printf's `%#x`.
fn parse_human(text: &str) -> Vec<(u64, u64, String, String)> {
    assert!(text.starts_with(HEADER), "no qemu-img header:\n{text}");
    let hex = |t: &str| {
        if t == "0" {
            0
        } else {
            u64::from_str_radix(t.strip_prefix("0x").expect("0x prefix"), 16).unwrap()
        }
    };
    text[HEADER.len()..]
        .lines()
        .map(|l| {
            // Columns are 16 wide, left aligned; the file is the rest.
            assert!(l.len() > 48, "short row: {l:?}");
            let col = |i: usize| l[i * 16..(i + 1) * 16].trim_end();
            (
                hex(col(0)),
                hex(col(1)),
                col(2).to_string(),
                l[48..].to_string(),
            )
        })
        .collect()
}

/// streamOptimized images (from qemu-img and from vimg): the human listing
/// has qemu-img's header and lists, as `compressed`, exactly the grains
/// that hold data. qemu-img itself cannot list them: it prints the header
/// and fails with "File contains external, encrypted or compressed
/// clusters".
#[test]
fn human_lists_compressed_ranges_of_stream_optimized() {
    let dir = tempdir();
    for (seed, size) in [(21u64, SIZE), (22, 5 * MIB + 512)] {
        let raw = dir.path().join(format!("src{seed}.img"));
        build_raw(&raw, size, seed);
        let want = data_grains(&raw);
        assert!(!want.is_empty());
        let q = dir.path().join(format!("q{seed}.vmdk"));
        let v = dir.path().join(format!("v{seed}.vmdk"));
        qemu_img!(
            "convert -f raw -O vmdk -o subformat=streamOptimized",
            &raw,
            &q
        )
        .ok();
        vimg!("convert -c -f raw -O vmdk", &raw, &v).ok();
        for img in [&q, &v] {
            let text = vimg_map(Some("vmdk"), img, None, false);
            let rows = parse_human(&text);
            let got: Vec<(u64, u64)> = rows.iter().map(|r| (r.0, r.1)).collect();
            assert_eq!(got, want, "{}: listed ranges\n{text}", img.display());
            for r in &rows {
                assert_eq!(r.2, "compressed", "{}: row {r:?}", img.display());
                assert_eq!(
                    r.3,
                    img.display().to_string(),
                    "{}: row {r:?}",
                    img.display()
                );
            }
            // The JSON map says the same: data exactly there, compressed.
            let json = parse(&vimg_map(Some("vmdk"), img, None, true), "vimg");
            let data: Vec<(u64, u64)> = json
                .iter()
                .filter(|e| e.data)
                .map(|e| {
                    assert!(e.compressed && !e.zero && e.present, "{e:?}");
                    (e.start, e.length)
                })
                .collect();
            assert_eq!(data, want, "{}: JSON data ranges", img.display());
            // A window starting and ending inside grains.
            let w = Some((want[0].0 + 1000, want[0].1 + 70 * KIB));
            let rows = parse_human(&vimg_map(Some("vmdk"), img, w, false));
            assert_eq!(rows[0].0, want[0].0 + 1000, "{}: windowed", img.display());
            // What qemu-img does with it.
            let out = qemu_img!("map -f vmdk", img).code(1);
            assert_eq!(out.stdout_text(), HEADER);
            assert!(out
                .stderr_text()
                .contains("File contains external, encrypted or compressed clusters"));
        }
    }
}

/// Merge sorted-or-not `(start, len)` ranges into a sorted disjoint list.
fn union(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.retain(|x| x.1 > 0);
    r.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, l) in r {
        match out.last_mut() {
            Some((s0, l0)) if *s0 + *l0 >= a => *l0 = (*l0).max(a + l - *s0),
            _ => out.push((a, l)),
        }
    }
    out
}

/// `a` minus `b` (both unions).
fn minus(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s0, l0) in a {
        let mut pieces = vec![(s0, s0 + l0)];
        for &(bs, bl) in b {
            let be = bs + bl;
            pieces = pieces
                .into_iter()
                .flat_map(|(x, y)| {
                    let mut keep = Vec::new();
                    if bs > x {
                        keep.push((x, y.min(bs)));
                    }
                    if be < y {
                        keep.push((x.max(be), y));
                    }
                    keep.into_iter().filter(|(x, y)| x < y)
                })
                .collect();
        }
        out.extend(pieces.into_iter().map(|(x, y)| (x, y - x)));
    }
    union(out)
}

/// Round ranges out to multiples of `unit`.
fn round_out(r: &[(u64, u64)], unit: u64) -> Vec<(u64, u64)> {
    union(
        r.iter()
            .map(|&(a, l)| {
                let s0 = a / unit * unit;
                (s0, (a + l).div_ceil(unit) * unit - s0)
            })
            .collect(),
    )
}

/// The data ranges of a map at `depth`, merged.
fn data_at(entries: &[Entry], depth: u64) -> Vec<(u64, u64)> {
    union(
        entries
            .iter()
            .filter(|e| e.depth == depth && e.data)
            .map(|e| (e.start, e.length))
            .collect(),
    )
}

/// The entry of a map that covers `at`.
fn entry_at(entries: &[Entry], at: u64) -> &Entry {
    entries
        .iter()
        .find(|e| e.start <= at && at < e.start + e.length)
        .unwrap_or_else(|| panic!("nothing covers {at}"))
}

/// What vimg's map of a differencing VHD must be, built sector by sector:
/// sectors the child wrote are the child's data (depth 0) at the place
/// qemu-img finds them in the child's file (qemu-img reads the child as a
/// plain dynamic VHD, whose allocated blocks it maps correctly); every
/// other sector is the parent's picture (qemu-img's map of the parent, a
/// plain dynamic VHD) at depth 1.
fn expected_differencing_map(
    base_map: &[Entry],
    child_map_by_qemu: &[Entry],
    child_written: &[(u64, u64)],
    size: u64,
) -> Vec<Entry> {
    let mut sectors = Vec::with_capacity((size / 512) as usize);
    for at in (0..size).step_by(512) {
        let child = child_written.iter().any(|&(a, l)| a <= at && at < a + l);
        let (src, depth) = if child {
            (entry_at(child_map_by_qemu, at), 0)
        } else {
            (entry_at(base_map, at), 1)
        };
        if child {
            assert!(src.data && !src.zero, "qemu-img: child at {at}: {src:?}");
        }
        sectors.push(Entry {
            start: at,
            length: 512,
            depth,
            offset: src.offset.map(|o| o + at - src.start),
            ..src.clone()
        });
    }
    merged(&sectors)
}

const VHD_SIZE: u64 = 24 * MIB;
const BLOCK: u64 = 2 * MIB;

/// The writes into the base of a differencing VHD (by qemu-io -f vpc).
fn vhd_base_writes() -> Vec<String> {
    [
        "write -P 0x01 0 3M",
        "write -P 0x02 10M 100k",
        "write -P 0x03 16M 2M",
        "write -P 0x04 22M 512",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect()
}

/// Where the base writes allocate blocks (qemu-io allocates whole blocks).
fn vhd_base_blocks() -> Vec<(u64, u64)> {
    round_out(
        &[
            (0, 3 * MIB),
            (10 * MIB, 100 * KIB),
            (16 * MIB, 2 * MIB),
            (22 * MIB, 512),
        ],
        BLOCK,
    )
}

/// Check vimg's map of a differencing VHD `child` over `base`, whose
/// child-side writes covered `child_written` (sector-rounded).
///
/// qemu-img is wrong here: it reads a differencing VHD as if it had no
/// parent, so its map of the child has depth 0 only and shows the parent's
/// data as zeros (docs/map.md). vimg must show the parent's data at depth 1
/// and the child's at depth 0.
fn assert_differencing_map(base: &Path, child: &Path, child_written: &[(u64, u64)]) {
    let v_text = vimg_map(Some("vhd"), child, None, true);
    let v = parse(&v_text, "vimg");
    assert_tiles(&v, 0, VHD_SIZE, "differencing VHD");
    assert_eq!(merged(&v), v, "vimg left alike neighbours unmerged");
    // Independent of qemu-img: the data at each depth is exactly what was
    // written into that layer (the base in whole blocks), the child's
    // hiding the parent's.
    let child_data = union(child_written.to_vec());
    assert_eq!(data_at(&v, 0), child_data, "depth-0 data:\n{v_text}");
    assert_eq!(
        data_at(&v, 1),
        minus(&vhd_base_blocks(), &child_data),
        "depth-1 data:\n{v_text}"
    );
    assert!(v.iter().all(|e| e.depth <= 1 && e.present), "{v_text}");
    // Every field, built from qemu-img's (correct) maps of the two files.
    let base_map = parse(&qemu_map("vhd", base, None, true), "qemu-img");
    let child_map = parse(&qemu_map("vhd", child, None, true), "qemu-img");
    let want = expected_differencing_map(&base_map, &child_map, child_written, VHD_SIZE);
    assert_eq!(v, want, "differencing VHD map:\n{v_text}");
    // The human listing names the file each range lives in.
    let rows = parse_human(&vimg_map(Some("vhd"), child, None, false));
    let want_rows: Vec<(u64, u64, String, String)> = v
        .iter()
        .filter(|e| e.data)
        .map(|e| {
            let file = if e.depth == 0 { child } else { base };
            (
                e.start,
                e.length,
                format!("{:#x}", e.offset.unwrap()),
                file.display().to_string(),
            )
        })
        .collect();
    assert_eq!(rows, want_rows);
    // A window crossing child and parent ranges agrees with the full map.
    let (ws, wl) = (BLOCK - 4096, 3 * BLOCK + 1000);
    let wv = parse(&vimg_map(Some("vhd"), child, Some((ws, wl)), true), "vimg");
    assert_tiles(&wv, ws, ws + wl, "differencing VHD window");
    let clip: Vec<Entry> = v
        .iter()
        .filter(|e| e.start < ws + wl && ws < e.start + e.length)
        .map(|e| {
            let a = e.start.max(ws);
            let b = (e.start + e.length).min(ws + wl);
            Entry {
                start: a,
                length: b - a,
                offset: e.offset.map(|o| o + a - e.start),
                ..e.clone()
            }
        })
        .collect();
    assert_eq!(wv, clip, "windowed differencing map");
}

/// A dynamic VHD base with data (written by qemu-io), and a differencing
/// child made by vimg.
fn vhd_base_and_child(dir: &Path) -> (PathBuf, PathBuf) {
    let base = dir.join("base.vhd");
    let child = dir.join("child.vhd");
    vimg!("create -q -f vhd", &base, VHD_SIZE).ok();
    qemu_io("vhd", &base, &vhd_base_writes());
    vimg!("create -q -f vhd -b", &base, &child).ok();
    (base, child)
}

#[test]
fn differencing_vhd_shows_parent_data_at_depth_1_child_written_by_qemu_io() {
    let dir = tempdir();
    let (base, child) = vhd_base_and_child(dir.path());
    // Whole blocks only: qemu-io treats the child as a plain dynamic VHD
    // and would fill the rest of a partly written block with zeros.
    let written = [(2 * MIB, 2 * MIB), (6 * MIB, 2 * MIB), (16 * MIB, 2 * MIB)];
    let cmds: Vec<String> = written
        .iter()
        .enumerate()
        .map(|(i, (a, l))| format!("write -P {:#x} {a} {l}", 0x30 + i))
        .collect();
    qemu_io("vhd", &child, &cmds);
    assert_differencing_map(&base, &child, &written);
    // qemu-img's map of the child has depth 0 only (documented above).
    eprintln!(
        "qemu-img map of the differencing child (depth 0 only):\n{}",
        qemu_map("vhd", &child, None, true)
    );
}

#[test]
fn differencing_vhd_shows_parent_data_at_depth_1_child_written_by_library() {
    use vimg::image::{factory::open, Format};
    use vimg::io::Access;
    let dir = tempdir();
    let (base, child) = vhd_base_and_child(dir.path());
    // Sector-granular writes (the child's bitmap records each sector),
    // over parent data and over parent holes, within and across blocks,
    // and one write that is not sector aligned (its sectors become the
    // child's).
    let writes: [(u64, u64); 7] = [
        (512, 512),
        (MIB + 1536, 70 * KIB),
        (2 * MIB - 1024, 4096),
        (5 * MIB, 3 * MIB),
        (10 * MIB + 50 * KIB, 200 * KIB),
        (20 * MIB + 100, 1000),
        (VHD_SIZE - 512, 512),
    ];
    {
        let mut img = open(&child, Some(Format::Vhd), Access::Write).expect("open child");
        let mut rng = Rng::new(77);
        for &(at, len) in &writes {
            let mut buf = rng.bytes(len as usize);
            buf[0] |= 1;
            img.write_at(&buf, at).expect("write_at");
        }
        img.flush().expect("flush");
    }
    assert_differencing_map(&base, &child, &round_out(&writes, 512));
}

/// `vimg map` of an empty image of `size` bytes gives one entry with these
/// flags, fast (a bound generous enough for the debug build).
fn assert_one_quick_entry(fmt: &str, path: &Path, size: u64, present: bool) -> Duration {
    let t = Instant::now();
    let text = vimg_map(Some(fmt), path, None, true);
    let took = t.elapsed();
    let v = parse(&text, "vimg");
    assert_eq!(
        v,
        vec![Entry {
            start: 0,
            length: size,
            depth: 0,
            present,
            zero: true,
            data: false,
            compressed: false,
            offset: None,
        }],
        "{}",
        path.display()
    );
    assert!(
        took < Duration::from_secs(5),
        "map of an empty {} took {took:?}",
        path.display()
    );
    // The human listing is the header alone.
    assert_eq!(vimg_map(Some(fmt), path, None, false), HEADER);
    took
}

/// Empty 2 TiB VMDKs (vimg- and qemu-made) and a 2000 GiB dynamic VHD map
/// into one entry at once. Measured in the debug build: about 0.03 s for
/// each VMDK and 0.13 s for the VHD, against a 5 s bound; qemu-img takes
/// about 11 s on the VMDKs, so it is compared only on the VHD.
#[test]
fn empty_huge_images_map_into_one_entry_quickly() {
    let dir = tempdir();
    let tib2 = 2 * 1024 * GIB;
    let v = dir.path().join("big.vmdk");
    let q = dir.path().join("qbig.vmdk");
    let h = dir.path().join("big.vhd");
    vimg!("create -q -f vmdk", &v, "2T").ok();
    qemu_img!("create -q -f vmdk", &q, "2T").ok();
    vimg!("create -q -f vhd", &h, "2000G").ok();
    let tv = assert_one_quick_entry("vmdk", &v, tib2, false);
    let tq = assert_one_quick_entry("vmdk", &q, tib2, false);
    let th = assert_one_quick_entry("vhd", &h, 2000 * GIB, true);
    eprintln!("empty 2T vimg VMDK: {tv:?}, qemu VMDK: {tq:?}, 2000G VHD: {th:?}");
    assert_json_agrees("vhd", &h, 2000 * GIB, None);
    // A window deep inside is as quick.
    let t = Instant::now();
    let w = parse(
        &vimg_map(Some("vmdk"), &v, Some((tib2 - 3 * GIB - 5, 2 * GIB)), true),
        "vimg",
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_tiles(&w, tib2 - 3 * GIB - 5, tib2 - GIB - 5, "window of big.vmdk");
    assert_eq!(w.len(), 1);
}

/// Zeroed grains (`zeroed_grain=on`, written by `qemu-io write -z`) in
/// images made by both tools, on their own and in a delta over a parent
/// with data: present, zero, no data, at the depth of the layer that
/// zeroed them.
#[test]
fn json_and_human_agree_for_zeroed_grains() {
    let dir = tempdir();
    let size = 12 * MIB + 512;
    let v = |a: &[&str]| a.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let base_writes = v(&[
        "write -P 0x01 0 1M",
        "write -z 256k 128k",
        "write -z 2M 192k",
        "write -z 5000 3000",
        "write -P 0x02 5M 1M",
    ]);
    let top_writes = v(&[
        "write -P 0x03 5376k 64k",
        "write -z 0 128k",
        "write -z 3M 64k",
        "write -z 5184k 128k",
        "write -z 5952k 64k",
        "write -z 12M 512",
    ]);
    for tool in ["qemu", "vimg"] {
        let base = dir.path().join(format!("{tool}-base.vmdk"));
        let top = dir.path().join(format!("{tool}-top.vmdk"));
        let o = "zeroed_grain=on";
        let (prog, back_fmt): (&str, &[&str]) = if tool == "qemu" {
            ("qemu-img", &["-F", "vmdk"])
        } else {
            (VIMG, &[])
        };
        cmd!(prog, "create -q -f vmdk -o", o, &base, size).ok();
        // The parent is written before the delta is made: a delta records
        // its parent's content ID, and qemu refuses a changed parent.
        qemu_io("vmdk", &base, &base_writes);
        cmd!(prog, "create -q -f vmdk -o", o, "-b", &base)
            .args(back_fmt)
            .arg(&top)
            .ok();
        qemu_io("vmdk", &top, &top_writes);
        for (img, depth) in [(&base, 0), (&top, 0), (&top, 1)] {
            let m = assert_json_agrees("vmdk", img, size, None);
            assert!(
                m.iter()
                    .any(|e| e.depth == depth && e.present && e.zero && !e.data),
                "{}: no zeroed grain at depth {depth}: {m:?}",
                img.display()
            );
        }
        for img in [&base, &top] {
            assert_agrees_everywhere("vmdk", img, size, true);
        }
    }
}

/// While vimg has an image open for reading (as `vimg map` does while it
/// runs), qemu-img must still be able to map it: two readers do not
/// conflict, as two qemu-img processes do not. (vimg takes a POSIX read
/// lock over the whole file, which covers the bytes QEMU tests to see
/// whether anyone refuses to share "consistent read"; qemu-img then fails
/// with 'Failed to get "consistent read" lock'.)
#[test]
fn qemu_img_can_map_an_image_vimg_is_reading() {
    use vimg::image::{factory::open, Format};
    use vimg::io::Access;
    let dir = tempdir();
    let img = dir.path().join("shared.vmdk");
    vimg!("create -q -f vmdk", &img, "8M").ok();
    qemu_io("vmdk", &img, &["write -P 0x42 1M 64k"]);
    let want = qemu_map("vmdk", &img, None, true);
    let reader = open(&img, Some(Format::Vmdk), Access::Read).expect("open for reading");
    let out = qemu_img!("map --output=json -f vmdk", &img).run();
    drop(reader);
    assert!(
        out.status.success(),
        "qemu-img map failed while vimg was reading {}:\n{}",
        img.display(),
        out.stderr_text()
    );
    assert_eq!(out.stdout_text(), want);
}
