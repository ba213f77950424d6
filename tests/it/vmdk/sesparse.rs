//! ESXi seSparse deltas (VMFS 6 snapshots), which qemu reads since 4.1 and
//! nothing here can create: built by hand (support::vmdk::build_sesparse)
//! over a base qemu-img made and qemu-io wrote, then read by vimg exactly
//! as qemu-img reads them (convert byte for byte, info's chain, map's
//! depths); damaged headers and tables give one error line naming the
//! file; writes are refused before anything changes; a vimg snapshot over
//! one reads as qemu reads it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::vmdk::*;
use crate::support::*;

const SIZE: u64 = 64 * MIB;
const GRAIN: u64 = 4096;

/// Where the base holds data: (offset, length, fill).
const BASE_DATA: [(u64, u64, u8); 4] = [
    (0, 8 * MIB, 0x11),
    (17 * MIB, MIB, 0x12),
    (40 * MIB, 3 * MIB, 0x13),
    (63 * MIB, MIB, 0x14),
];

/// The delta's grains: over base data and where the base has none, in
/// grain tables 0, 1 and 3 (table 2, over base data, has none), grains
/// stored out of order and past grain 4095 of the grains region, zero and
/// unmapped grains over base data.
fn delta_grains() -> Vec<(u64, SeGrain)> {
    vec![
        (0, SeGrain::Data(0xa0, 0)),
        (1, SeGrain::Data(0xa1, 1)),
        (100, SeGrain::Zero),
        (101, SeGrain::Unmapped),
        (2048, SeGrain::Data(0xa2, 5000)),
        (4096, SeGrain::Data(0xa3, 2)),
        (17 * MIB / GRAIN, SeGrain::Data(0xa4, 4097)),
        (17 * MIB / GRAIN + 1, SeGrain::Zero),
        (SIZE / GRAIN - 1, SeGrain::Data(0xa5, 3)),
    ]
}

/// base.vmdk (qemu-img, qemu-io), x-sesparse.vmdk and its descriptor
/// x.vmdk in `d`; returns (descriptor, extent, layout).
fn make_chain(d: &Path) -> (PathBuf, PathBuf, SeLayout) {
    let base = d.join("base.vmdk");
    qemu_img!("create -q -f vmdk", &base, SIZE).ok();
    let writes: Vec<String> = BASE_DATA
        .iter()
        .map(|(at, len, fill)| format!("write -P {fill:#04x} {at} {len}"))
        .collect();
    qemu_io("vmdk", &base, &writes);
    let extent = d.join("x-sesparse.vmdk");
    let layout = build_sesparse(&extent, SIZE / 512, &delta_grains());
    let desc = d.join("x.vmdk");
    sesparse_descriptor(
        &desc,
        SIZE / 512,
        "base.vmdk",
        cid_of(&base),
        "x-sesparse.vmdk",
    );
    (desc, extent, layout)
}

/// What the chain reads, built from the pieces.
fn expected() -> Vec<u8> {
    let mut want = vec![0u8; SIZE as usize];
    for (at, len, fill) in BASE_DATA {
        want[at as usize..(at + len) as usize].fill(fill);
    }
    for (g, what) in delta_grains() {
        let at = (g * GRAIN) as usize;
        let byte = match what {
            SeGrain::Data(fill, _) => fill,
            SeGrain::Zero | SeGrain::Unmapped => 0,
        };
        want[at..at + GRAIN as usize].fill(byte);
    }
    want
}

#[test]
fn sesparse_delta_reads_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, _, _) = make_chain(d);
    // qemu is the oracle; the pieces say what both must read.
    let q = qemu_to_raw(&desc, &d.join("q.raw"));
    let v = vimg_to_raw(&desc, &d.join("v.raw"));
    assert_same_bytes(&q, &v);
    assert!(fs::read(&v).unwrap() == expected(), "not base + grains");
    // Flattened into a new VMDK, the same disk.
    let flat = d.join("flat.vmdk");
    vimg!("convert -q -O vmdk", &desc, &flat).ok();
    assert_identical("raw", &q, "vmdk", &flat);
}

#[test]
fn sesparse_info_shows_the_chain() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, _, _) = make_chain(d);
    let q = qemu_info(Some("vmdk"), &desc);
    assert_eq!(field_str(&q, "backing-filename"), "base.vmdk");
    assert_eq!(qemu_create_type(&desc), "seSparse");
    let v = vimg_info(None, &desc);
    assert_eq!(field_u64(&v, "virtual-size"), SIZE);
    assert_eq!(field_str(&v, "backing-filename"), "base.vmdk");
    let data = &v["format-specific"]["data"];
    assert_eq!(data["create-type"], "seSparse", "{v:#}");
    assert_eq!(data["parent-cid"], cid_of(&d.join("base.vmdk")), "{v:#}");
    let ext = &data["extents"][0];
    assert_eq!(ext["format"], "SESPARSE", "{v:#}");
    assert_eq!(ext["cluster-size"], GRAIN, "{v:#}");
    assert!(field_str(ext, "filename").ends_with("x-sesparse.vmdk"));
    assert_eq!(
        q["format-specific"]["data"]["extents"][0]["format"], "SESPARSE",
        "{q:#}"
    );
    // The whole chain: the delta, then the base qemu made.
    let chain = vimg!("info --output json --backing-chain", &desc).json();
    let layers = chain.as_array().unwrap();
    assert_eq!(layers.len(), 2, "{chain:#}");
    assert!(field_str(&layers[1], "filename").ends_with("base.vmdk"));
    assert_eq!(
        layers[1]["format-specific"]["data"]["create-type"],
        "monolithicSparse"
    );
    let human = vimg!("info", &desc).ok();
    assert!(
        human.contains("base.vmdk") && human.contains("seSparse"),
        "{human}"
    );
}

/// The bytes of `map` entries matching `keep`, as a sorted, merged list
/// of ranges.
fn ranges(map: &Value, keep: impl Fn(&Value) -> bool) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for m in map.as_array().unwrap().iter().filter(|m| keep(m)) {
        let (s, l) = (field_u64(m, "start"), field_u64(m, "length"));
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = s + l,
            _ => out.push((s, s + l)),
        }
    }
    out
}

#[test]
fn sesparse_map_shows_the_delta_over_its_base() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, _, _) = make_chain(d);
    let map = vimg!("map --output json", &desc).json();
    let depth = |m: &Value| m["depth"].as_u64().unwrap();
    // Depth 0 data: exactly the delta's stored grains.
    let mut grains: Vec<(u64, u64)> = Vec::new();
    for (g, what) in delta_grains() {
        if let SeGrain::Data(..) = what {
            match grains.last_mut() {
                Some(last) if last.1 == g * GRAIN => last.1 += GRAIN,
                _ => grains.push((g * GRAIN, (g + 1) * GRAIN)),
            }
        }
    }
    let top = ranges(&map, |m| m["data"] == true && depth(m) == 0);
    assert_eq!(top, grains, "{map:#}");
    // Zero and unmapped grains: zeros at depth 0 over the base's data.
    let zeros = ranges(&map, |m| m["zero"] == true && depth(m) == 0);
    for (g, what) in delta_grains() {
        if matches!(what, SeGrain::Zero | SeGrain::Unmapped) {
            let at = g * GRAIN;
            assert!(
                zeros.iter().any(|&(s, e)| s <= at && at + GRAIN <= e),
                "grain {g} is not zero at depth 0: {map:#}"
            );
        }
    }
    // Depth 1 data: the base's, where the delta holds nothing.
    let below = ranges(&map, |m| m["data"] == true && depth(m) == 1);
    let want = expected();
    for &(s, e) in &below {
        assert!(want[s as usize..e as usize].iter().all(|&b| b != 0));
    }
    let covered: u64 =
        below.iter().map(|(s, e)| e - s).sum::<u64>() + top.iter().map(|(s, e)| e - s).sum::<u64>();
    let base_bytes: u64 = BASE_DATA.iter().map(|(_, l, _)| l).sum();
    // Base data everywhere but under the delta's grains over it (2 data,
    // 3 zero grains over base data) plus the delta's own grains.
    assert_eq!(covered, base_bytes - 5 * GRAIN + 4 * GRAIN, "{map:#}");
    // As qemu-img maps it.
    let qmap = qemu_img!("map --output json -f vmdk", &desc).json();
    for (depth_, data) in [(0, true), (1, true)] {
        let ours = ranges(&map, |m| m["data"] == data && depth(m) == depth_);
        let theirs = ranges(&qmap, |m| m["data"] == data && depth(m) == depth_);
        assert_eq!(ours, theirs, "depth {depth_}: vimg {map:#}\nqemu {qmap:#}");
    }
}

/// Copy the chain in `from` to a fresh folder, damage its extent with
/// `damage`, and expect one error line naming the extent from `cmd`.
fn refused(from: &Path, what: &str, damage: impl Fn(&Path), info_too: bool) {
    let dir = tempdir();
    let d = dir.path();
    for name in ["base.vmdk", "x.vmdk", "x-sesparse.vmdk"] {
        fs::copy(from.join(name), d.join(name)).unwrap();
    }
    let extent = d.join("x-sesparse.vmdk");
    damage(&extent);
    vimg!("convert -O raw", d.join("x.vmdk"), d.join("o.raw")).one_line_error(&extent, what);
    vimg!("map", d.join("x.vmdk")).one_line_error(&extent, what);
    if info_too {
        vimg!("info", d.join("x.vmdk")).one_line_error(&extent, what);
    }
}

fn put(path: &Path, at: u64, v: u64) {
    patch(path, at, &v.to_le_bytes());
}

#[test]
fn damaged_sesparse_gives_one_error_line() {
    let dir = tempdir();
    let d = dir.path();
    let (_, _, l) = make_chain(d);
    let gt0 = l.table_at.iter().find(|t| t.0 == 0).unwrap().1;
    // Headers: found at open.
    refused(d, "bad const magic", |p| put(p, 0, 0xcafe_cafe), true);
    refused(d, "other version", |p| put(p, 8, 0x1_0000_0001), true);
    refused(d, "bad volatile magic", |p| put(p, l.volatile, 0), true);
    refused(d, "journal to replay", |p| put(p, l.volatile + 24, 1), true);
    refused(
        d,
        "volatile header past the end",
        |p| put(p, 80, 1 << 40),
        true,
    );
    refused(d, "directory past the end", |p| put(p, 128, 1 << 30), true);
    refused(
        d,
        "directory offset overflows",
        |p| put(p, 128, u64::MAX / 4),
        true,
    );
    refused(d, "directory too small", |p| put(p, 136, 0), true);
    refused(d, "huge capacity", |p| put(p, 16, u64::MAX / 512), true);
    refused(d, "truncated header", |p| truncate(p, 300), true);
    // Tables: found when read.
    refused(
        d,
        "table past the end",
        |p| put(p, l.gd, 0x1000_0000_00ff_ffff),
        false,
    );
    refused(
        d,
        "bad directory entry",
        |p| put(p, l.gd, 0x2000_0000_0000_0000),
        false,
    );
    refused(
        d,
        "grain past the end",
        |p| put(p, gt0, 0x3000_0000_0fff_ffff),
        false,
    );
    refused(
        d,
        "grain index overflows",
        |p| put(p, gt0, 0x3fff_ffff_ffff_ffff),
        false,
    );
    refused(
        d,
        "unknown entry kind",
        |p| put(p, gt0, 0x7000_0000_0000_0000),
        false,
    );
    refused(d, "unallocated with bits", |p| put(p, gt0, 5), false);
    refused(
        d,
        "truncated grains",
        |p| truncate(p, l.grains + 2 * GRAIN),
        false,
    );
}

#[test]
fn random_damage_to_sesparse_metadata_never_panics() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, extent, l) = make_chain(d);
    let pristine = fs::read(&extent).unwrap();
    let mut rng = Rng::new(0x5e5e);
    let out = d.join("o.raw");
    for round in 0..60 {
        fs::write(&extent, &pristine).unwrap();
        for _ in 0..1 + rng.below(4) {
            // The headers, the directory or the first table.
            let at = match rng.below(3) {
                0 => rng.below(1024),
                1 => l.gd + rng.below(64),
                _ => l.tables + rng.below(64),
            };
            patch(&extent, at, &[rng.next_u64() as u8]);
        }
        let run = vimg!("convert -q --force -O raw", &desc, &out).run();
        if !run.status.success() {
            if let Err(e) = run.check_one_line_error(&extent) {
                panic!("round {round}: {e}");
            }
        }
    }
}

#[test]
fn writes_into_sesparse_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, extent, _) = make_chain(d);
    let base = d.join("base.vmdk");
    let before = (sha256(&base), sha256(&extent), fs::read(&desc).unwrap());
    vimg!("commit", &desc).one_line_error(&extent, "commit of a seSparse delta");
    vimg!("rebase -u -b", &base, &desc).one_line_error(&extent, "relinking a seSparse delta");
    let after = (sha256(&base), sha256(&extent), fs::read(&desc).unwrap());
    assert!(before == after, "a refused write changed a file");
    let err = vimg!("commit", &desc).run().stderr_text();
    assert!(err.contains("seSparse"), "{err}");
}

#[test]
fn check_reports_sesparse_extents_as_not_walked() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, _, _) = make_chain(d);
    let out = vimg!("check", &desc).run();
    assert_eq!(out.code(), Some(0), "{out:?}");
    let text = out.stdout_text() + &out.stderr_text();
    assert!(
        text.contains("x-sesparse.vmdk") && text.contains("not walked"),
        "{text}"
    );
}

#[test]
fn a_vimg_snapshot_over_a_sesparse_delta_reads_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let (desc, _, _) = make_chain(d);
    let top = d.join("top.vmdk");
    vimg!("snapshot create -q", &desc, &top).ok();
    // Partial grains over the seSparse grains and the base below them.
    qemu_io(
        "vmdk",
        &top,
        &["write -P 0x77 4096 8192", "write -P 0x78 17M 3000"],
    );
    assert_same_bytes(
        &qemu_to_raw(&top, &d.join("q.raw")),
        &vimg_to_raw(&top, &d.join("v.raw")),
    );
    let chain = vimg!("info --output json --backing-chain", &top).json();
    assert_eq!(chain.as_array().unwrap().len(), 3, "{chain:#}");
}
