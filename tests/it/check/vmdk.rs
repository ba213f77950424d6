//! `check` and its repairs on VMDK images qemu-img and vimg made, clean
//! and damaged: every fault found with its severity and where it is, and
//! each repair leaving an image that checks clean (or only with what its
//! level does not fix), that `qemu-img check` accepts, and that reads as
//! before wherever no pointer had to be dropped.

use std::path::{Path, PathBuf};

use vimg::image::check::{Finding, Repair, Report, Severity};
use vimg::image::factory::open_with;
use vimg::image::OpenOptions;
use vimg::io::Access;

use super::crash::every_kill_is_mended_by_a_rerun;
use super::{check_chain, grain_entry};
use super::{redundant_entry, set_both, table_entry};
use crate::support::vmdk::{descriptor_text, extent_lines, is_sparse, kdmv_header, SUBFORMATS};
use crate::support::*;

const GRAIN: u64 = 64 * KIB;

/// What a check of the image at `path` alone finds.
fn check(path: &Path) -> Report {
    check_chain(path).remove(0)
}

/// The findings of `report` of one severity, as (structure, message).
fn of(report: &Report, severity: Severity) -> Vec<(&'static str, String)> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| (f.structure, f.message.clone()))
        .collect()
}

/// Repair the image at `path` to `level`, returning what was repaired.
fn repair(path: &Path, level: Repair) -> Vec<Finding> {
    let opts = OpenOptions::new(Access::Write).checking();
    let mut image = open_with(path, None, opts).unwrap();
    image.repair(level).unwrap()
}

/// A copy of `path` beside it, named `name`.
fn copy(path: &Path, name: &str) -> PathBuf {
    let to = path.with_file_name(name);
    std::fs::copy(path, &to).unwrap();
    to
}

/// An 8 MiB qemu-made VMDK of `subformat` holding data in grains 0 to 3,
/// 16 to 17 and 100.
fn qemu_vmdk(dir: &Path, name: &str, subformat: &str) -> PathBuf {
    let path = dir.join(name);
    qemu_img!(
        "create -q -f vmdk -o",
        format!("subformat={subformat}"),
        &path,
        8 * MIB
    )
    .ok();
    qemu_io(
        "vmdk",
        &path,
        &[
            "write -P 0x11 0 256k",
            "write -P 0x22 1M 128k",
            "write -P 0x33 6400k 64k",
        ],
    );
    path
}

/// The raw disk the VMDK at `path` reads as (through qemu-img).
fn raw_of(path: &Path) -> Vec<u8> {
    let raw = path.with_extension("raw");
    qemu_img!("convert -q -f vmdk -O raw", path, &raw).ok();
    std::fs::read(&raw).unwrap()
}

/// Where the text `what` is in the file at `path`.
fn find(path: &Path, what: &[u8]) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(what.len())
        .position(|w| w == what)
        .unwrap_or_else(|| panic!("no {:?} in {}", what.escape_ascii(), path.display())) as u64
}

#[test]
fn clean_images_of_every_subformat_check_clean_with_qemus_counts() {
    let dir = tempdir();
    let d = dir.path();
    for subformat in SUBFORMATS {
        if subformat == "streamOptimized" {
            continue;
        }
        let path = qemu_vmdk(d, &format!("q-{subformat}.vmdk"), subformat);
        let report = check(&path);
        assert!(
            report.findings.is_empty(),
            "{subformat}: {:#?}",
            report.findings
        );
        let ours = d.join(format!("v-{subformat}.vmdk"));
        vimg!(
            "convert -q -O vmdk -o",
            format!("subformat={subformat}"),
            &path,
            &ours
        )
        .ok();
        let report = check(&ours);
        assert!(
            report.findings.is_empty(),
            "vimg {subformat}: {:#?}",
            report.findings
        );
        match is_sparse(subformat) {
            true => {
                let c = report.clusters.unwrap();
                // 128 grains, 7 of them with data, back to back in the file.
                assert_eq!(
                    (c.total, c.allocated, c.compressed),
                    (128, 7, 0),
                    "{subformat}"
                );
                assert_eq!(c.fragmented, 0, "{subformat}");
                if subformat == "monolithicSparse" {
                    assert_eq!(report.end_offset, Some(file_len(&ours)));
                }
            }
            false => assert!(report.clusters.is_none(), "{subformat}"),
        }
    }
    // Streams, qemu's and vimg's.
    let source = d.join("q-monolithicSparse.vmdk");
    for (tool, stream) in [("qemu", d.join("qs.vmdk")), ("vimg", d.join("vs.vmdk"))] {
        let args = [
            "convert",
            "-q",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ];
        let cmd = match tool {
            "qemu" => Cmd::new("qemu-img"),
            _ => Cmd::vimg(),
        };
        cmd.args(args).arg(&source).arg(&stream).ok();
        let report = check(&stream);
        assert!(report.findings.is_empty(), "{tool}: {:#?}", report.findings);
        let c = report.clusters.unwrap();
        assert_eq!((c.total, c.allocated, c.compressed), (128, 7, 7), "{tool}");
    }
    // qemu's zero write into an allocated grain of a zeroed_grain image
    // leaves that grain referenced by nothing: a true leak, in the middle
    // of the file, which -r leaks punches out (a hole takes no space).
    let zeroed = d.join("z.vmdk");
    qemu_img!("create -q -f vmdk -o zeroed_grain=on", &zeroed, 8 * MIB).ok();
    qemu_io(
        "vmdk",
        &zeroed,
        &["write -P 0x11 0 3M", "write -z 1M 64k", "write -P 1 5M 64k"],
    );
    let report = check(&zeroed);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Leak);
    assert_eq!(report.findings[0].repair, Some(Repair::Leaks));
    let before = raw_of(&zeroed);
    let fixed = repair(&zeroed, Repair::Leaks);
    assert_eq!(fixed.len(), 1, "{fixed:#?}");
    assert!(fixed[0].message.contains("punched out"), "{fixed:#?}");
    assert!(check(&zeroed).findings.is_empty());
    assert!(raw_of(&zeroed) == before);
    qemu_img!("check -q -f vmdk", &zeroed).ok();
    let ours = d.join("vz.vmdk");
    vimg!("convert -q -O vmdk -o zeroed_grain=on", &zeroed, &ours).ok();
    let report = check(&ours);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn each_fault_in_a_sparse_vmdk_is_found_with_its_severity() {
    let dir = tempdir();
    let d = dir.path();
    let clean = qemu_vmdk(d, "clean.vmdk", "monolithicSparse");
    let header = kdmv_header(&clean);
    let fresh = |name: &str| copy(&clean, name);
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, Severity, &str, &str)> = vec![
        (
            "past the end",
            Box::new(|p: &Path| set_both(p, 1, (file_len(p) / 512 + 64) as u32)),
            Severity::Corruption,
            "VMDK grain table",
            "past the end",
        ),
        (
            "two entries on one grain",
            Box::new(|p: &Path| {
                let g2 = le32(&read_at(p, grain_entry(p, 2), 4), 0);
                set_both(p, 3, g2);
            }),
            Severity::Corruption,
            "VMDK grain table",
            "grains 2 and 3 overlap",
        ),
        (
            "a grain table inside the directory",
            Box::new(move |p: &Path| {
                patch(
                    p,
                    header.gd_offset * 512,
                    &(header.gd_offset as u32).to_le_bytes(),
                )
            }),
            Severity::Corruption,
            "VMDK sparse extent",
            "the grain directory and the grain table of entry 0 overlap",
        ),
        (
            "GD differs from RGD",
            Box::new(|p: &Path| patch(p, redundant_entry(p, 16), &[0; 4])),
            Severity::Corruption,
            "VMDK redundant grain directory",
            "grain 16's entry",
        ),
        (
            "newline bytes mangled",
            Box::new(|p: &Path| patch(p, 75, b"\n")),
            Severity::Corruption,
            "VMDK sparse header",
            "newline-detection",
        ),
        (
            "unclean shutdown",
            Box::new(|p: &Path| patch(p, 72, &[1])),
            Severity::Warning,
            "VMDK sparse header",
            "not closed cleanly",
        ),
        (
            "zeroed entry without the flag",
            Box::new(|p: &Path| set_both(p, 100, 1)),
            Severity::Corruption,
            "VMDK grain table",
            "zeroed-grain entries",
        ),
        (
            "extent sizes do not add up",
            Box::new(|p: &Path| {
                let at = find(p, b"RW 16384 SPARSE");
                patch(p, at, b"RW 16380");
            }),
            Severity::Corruption,
            "VMDK embedded descriptor",
            "add up to 16380 sectors",
        ),
    ];
    for (name, damage, severity, structure, says) in cases {
        let path = fresh(&format!("{}.vmdk", name.replace(' ', "-")));
        damage(&path);
        let report = check(&path);
        let hit = report
            .findings
            .iter()
            .find(|f| f.structure == structure && f.message.contains(says));
        let hit = hit.unwrap_or_else(|| panic!("{name}: {:#?}", report.findings));
        assert_eq!(hit.severity, severity, "{name}: {hit:#?}");
        // What a finding says repairs it does: after `-r all` only what
        // no level repairs is left.
        repair(&path, Repair::All);
        let after = check(&path);
        assert!(
            after.findings.iter().all(|f| f.repair.is_none()),
            "{name}: {:#?}",
            after.findings
        );
    }
}

#[test]
fn several_faults_in_one_image_are_all_reported() {
    let dir = tempdir();
    let path = qemu_vmdk(dir.path(), "d.vmdk", "monolithicSparse");
    set_both(&path, 1, (file_len(&path) / 512 + 64) as u32);
    let g2 = le32(&read_at(&path, grain_entry(&path, 2), 4), 0);
    set_both(&path, 3, g2);
    set_both(&path, 100, 1);
    patch(&path, redundant_entry(&path, 16), &[0; 4]);
    patch(&path, 72, &[1]);
    let report = check(&path);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 4, "{corrupt:#?}");
    assert!(corrupt[0].1.contains("grain 16's entry"), "{corrupt:#?}");
    assert!(corrupt[1].1.contains("zeroed-grain"), "{corrupt:#?}");
    assert!(corrupt[2].1.starts_with("grain 1 at byte"), "{corrupt:#?}");
    assert!(
        corrupt[3].1.starts_with("grains 2 and 3 overlap"),
        "{corrupt:#?}"
    );
    // The unclean shutdown.
    let warnings = of(&report, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    // The space of grains 1, 3 and 100 is referenced by nothing.
    assert_eq!(report.count(Severity::Leak), 3, "{:#?}", report.findings);
}

#[test]
fn flat_extents_missing_or_short_and_split_extents_that_do_not_fit() {
    let dir = tempdir();
    let d = dir.path();
    let flat = qemu_vmdk(d, "f.vmdk", "monolithicFlat");
    truncate(&d.join("f-flat.vmdk"), 4 * MIB);
    let report = check(&flat);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert_eq!(corrupt[0].0, "VMDK flat extent");
    assert!(corrupt[0].1.contains("4194304 bytes"), "{corrupt:#?}");
    // A split flat image with an extent file gone.
    let split = qemu_vmdk(d, "s.vmdk", "twoGbMaxExtentFlat");
    std::fs::remove_file(d.join("s-f001.vmdk")).unwrap();
    let report = check(&split);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert!(corrupt[0].1.contains("cannot be opened"), "{corrupt:#?}");
    // A split sparse image whose descriptor gives an extent more than its
    // header's capacity.
    let sparse = qemu_vmdk(d, "p.vmdk", "twoGbMaxExtentSparse");
    let at = find(&sparse, b"RW 16384 SPARSE");
    patch(&sparse, at, b"RW 16392");
    let report = check(&sparse);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert!(corrupt[0].1.contains("capacity"), "{corrupt:#?}");
}

#[test]
fn a_broken_stream_is_found_marker_by_marker() {
    let dir = tempdir();
    let d = dir.path();
    let source = qemu_vmdk(d, "src.vmdk", "monolithicSparse");
    let stream = d.join("s.vmdk");
    qemu_img!(
        "convert -q -O vmdk -o subformat=streamOptimized",
        &source,
        &stream
    )
    .ok();
    let overhead = kdmv_header(&stream).overhead * 512;
    // The first grain marker names grain 5 instead of grain 0.
    let lba = copy(&stream, "lba.vmdk");
    patch(&lba, overhead, &(5u64 * 128).to_le_bytes());
    let report = check(&lba);
    let corrupt = of(&report, Severity::Corruption);
    assert!(
        corrupt
            .iter()
            .any(|(s, m)| *s == "VMDK stream marker" && m.contains("holds grain 5")),
        "{corrupt:#?}"
    );
    assert!(
        corrupt
            .iter()
            .any(|(s, m)| *s == "VMDK compressed grain"
                && m.contains("names sector 640, not sector 0")),
        "{corrupt:#?}"
    );
    // vimg's stream has its directory at the end, found through the
    // footer: a footer that no longer repeats the header (a field reads
    // do not need), and an end-of-stream marker of an unknown type.
    let ours = d.join("v.vmdk");
    vimg!(
        "convert -q -O vmdk -o subformat=streamOptimized",
        &source,
        &ours
    )
    .ok();
    assert!(check(&ours).findings.is_empty());
    let footer = copy(&ours, "footer.vmdk");
    let at = file_len(&footer) - 1024;
    patch(&footer, at + 4, &1u32.to_le_bytes());
    let report = check(&footer);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert_eq!(corrupt[0].0, "VMDK footer");
    assert!(
        corrupt[0]
            .1
            .contains("version 3 in the header, 1 in the footer"),
        "{corrupt:#?}"
    );
    let end = copy(&ours, "end.vmdk");
    let at = file_len(&end) - 512;
    patch(&end, at + 12, &9u32.to_le_bytes());
    let corrupt = of(&check(&end), Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{corrupt:#?}");
    assert!(corrupt[0].1.contains("type 9"), "{corrupt:#?}");
    // Streams are not repaired.
    assert!(repair(&end, Repair::All).is_empty());
    // Hostile sizes: a footer marker announcing 2^64 - 1 sectors, the
    // first grain marker 4 GiB of compressed bytes.
    let marker = copy(&ours, "marker.vmdk");
    let at = file_len(&marker) - 1536;
    patch(&marker, at, &u64::MAX.to_le_bytes());
    let corrupt = of(&check(&marker), Severity::Corruption);
    assert!(
        corrupt
            .iter()
            .any(|(s, m)| *s == "VMDK stream marker" && m.contains("18446744073709551615 sectors")),
        "{corrupt:#?}"
    );
    let huge = copy(&ours, "huge.vmdk");
    let overhead = kdmv_header(&huge).overhead * 512;
    patch(&huge, overhead + 8, &u32::MAX.to_le_bytes());
    let corrupt = of(&check(&huge), Severity::Corruption);
    assert!(
        corrupt.iter().any(
            |(s, m)| *s == "VMDK compressed grain" && m.contains("4294967295 compressed bytes")
        ),
        "{corrupt:#?}"
    );
    assert!(
        corrupt
            .iter()
            .any(|(s, m)| *s == "VMDK stream marker" && m.contains("run past the end")),
        "{corrupt:#?}"
    );
}

#[test]
fn leaks_repair_cuts_trailing_space_and_changes_no_sector() {
    let dir = tempdir();
    let path = qemu_vmdk(dir.path(), "d.vmdk", "monolithicSparse");
    // Grain 100, the last in the file, referenced by nothing.
    set_both(&path, 100, 0);
    let before = copy(&path, "before.vmdk");
    let len = file_len(&path);
    let report = check(&path);
    let leaks = of(&report, Severity::Leak);
    assert_eq!(leaks.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].repair, Some(Repair::Leaks));
    let fixed = repair(&path, Repair::Leaks);
    assert_eq!(fixed.len(), 1, "{fixed:#?}");
    assert!(fixed[0].message.contains("cut to"), "{fixed:#?}");
    assert_eq!(file_len(&path), len - GRAIN);
    let report = check(&path);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    qemu_img!("check -q -f vmdk", &path).ok();
    assert_identical("vmdk", &before, "vmdk", &path);
    // A second run has nothing left to do.
    assert!(repair(&path, Repair::Leaks).is_empty());
}

#[test]
fn all_repair_rebuilds_the_directory_from_its_redundant_copy() {
    let dir = tempdir();
    let path = qemu_vmdk(dir.path(), "d.vmdk", "monolithicSparse");
    let before = copy(&path, "before.vmdk");
    let gd = kdmv_header(&path).gd_offset * 512;
    // The grain directory's first entry points into the directory.
    patch(&path, gd, &((gd / 512) as u32).to_le_bytes());
    assert!(!of(&check(&path), Severity::Corruption).is_empty());
    // Leaks repairs nothing of it.
    assert!(repair(&path, Repair::Leaks).is_empty());
    let fixed = repair(&path, Repair::All);
    assert!(
        fixed
            .iter()
            .any(|f| f.message.contains("a copy") && f.message.contains("redundant")),
        "{fixed:#?}"
    );
    let report = check(&path);
    // The old table is referenced by nothing now.
    assert_eq!(
        report.count(Severity::Corruption),
        0,
        "{:#?}",
        report.findings
    );
    assert_eq!(report.count(Severity::Warning), 0, "{:#?}", report.findings);
    qemu_img!("check -q -f vmdk", &path).ok();
    assert_identical("vmdk", &before, "vmdk", &path);
    // A differing redundant table is rewritten from the grain table.
    patch(&path, redundant_entry(&path, 16), &[0; 4]);
    let fixed = repair(&path, Repair::All);
    assert_eq!(fixed.len(), 1, "{fixed:#?}");
    assert!(fixed[0].message.contains("rewritten"), "{fixed:#?}");
    assert_eq!(check(&path).count(Severity::Warning), 0);
    assert_identical("vmdk", &before, "vmdk", &path);
}

#[test]
fn all_repair_drops_wrong_pointers_and_says_which_range_changed() {
    let dir = tempdir();
    let path = qemu_vmdk(dir.path(), "d.vmdk", "monolithicSparse");
    let before = raw_of(&path);
    set_both(&path, 1, (file_len(&path) / 512 + 64) as u32);
    let g2 = le32(&read_at(&path, grain_entry(&path, 2), 4), 0);
    set_both(&path, 3, g2);
    set_both(&path, 16, 1);
    patch(&path, 72, &[1]);
    let fixed = repair(&path, Repair::All);
    let messages: Vec<_> = fixed.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(fixed.len(), 6, "{messages:#?}");
    let cleared = |grain: u64| {
        let range = format!(
            "bytes {} to {} of the disk",
            grain * GRAIN,
            (grain + 1) * GRAIN
        );
        messages
            .iter()
            .any(|m| m.contains("entry cleared") && m.contains(&range))
    };
    assert!(cleared(1) && cleared(3) && cleared(16), "{messages:#?}");
    // The space the dropped grains had is referenced by nothing now:
    // punched out, in the middle of the file.
    let punched = fixed.iter().filter(|f| f.severity == Severity::Leak);
    assert_eq!(punched.count(), 2, "{messages:#?}");
    let last = fixed.last().unwrap();
    assert!(
        last.message.contains("uncleanShutdown was set"),
        "{messages:#?}"
    );
    assert_eq!(last.severity, Severity::Warning);
    let report = check(&path);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    qemu_img!("check -q -f vmdk", &path).ok();
    // Every sector but the dropped grains reads as before; those read as
    // zeros (there is no parent).
    let after = raw_of(&path);
    for g in 0..before.len() as u64 / GRAIN {
        let (a, b) = ((g * GRAIN) as usize, ((g + 1) * GRAIN) as usize);
        match g {
            1 | 3 | 16 => assert!(after[a..b].iter().all(|&x| x == 0), "grain {g}"),
            _ => assert!(before[a..b] == after[a..b], "grain {g}"),
        }
    }
    // A rerun finds nothing more to do.
    assert!(repair(&path, Repair::All).is_empty());
}

#[test]
fn a_split_image_is_checked_and_repaired_extent_by_extent() {
    let dir = tempdir();
    let d = dir.path();
    let path = d.join("s.vmdk");
    qemu_img!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse",
        &path,
        3 * GIB
    )
    .ok();
    let second = 2100 * MIB;
    qemu_io(
        "vmdk",
        &path,
        &[
            "write -P 0x44 0 64k",
            &format!("write -P 0x55 {second} 128k"),
        ],
    );
    assert!(check(&path).findings.is_empty());
    // The grain 2100 MiB into the disk (in the second extent) past the
    // end of its file, both copies; a flag bit nobody defines in the
    // first extent's header.
    let ext = d.join("s-s002.vmdk");
    let split = extent_lines(&descriptor_text(&path))[0].sectors * 512;
    let grain = (second - split) / GRAIN;
    let beyond = (file_len(&ext) / 512 + 64) as u32;
    let h = kdmv_header(&ext);
    for dir in [h.gd_offset, h.rgd_offset] {
        patch(&ext, table_entry(&ext, dir, grain), &beyond.to_le_bytes());
    }
    let first = d.join("s-s001.vmdk");
    let flags = kdmv_header(&first).flags | 1 << 9;
    patch(&first, 8, &flags.to_le_bytes());
    let report = check(&path);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].structure, "VMDK sparse header");
    assert!(report.findings[0]
        .message
        .contains("no VMDK version defines"));
    assert_eq!(report.findings[0].severity, Severity::Warning);
    let fixed = repair(&path, Repair::All);
    // The pointer dropped, and the grain it had left referenced by
    // nothing, punched out.
    assert_eq!(fixed.len(), 2, "{fixed:#?}");
    let range = format!("bytes {} to {} of the disk", second, second + GRAIN);
    assert!(fixed[0].message.contains(&range), "{fixed:#?}");
    assert!(fixed[1].message.contains("punched out"), "{fixed:#?}");
    assert_eq!(of(&check(&path), Severity::Corruption), vec![]);
    qemu_img!("check -q -f vmdk", &path).ok();
    // The dropped grain reads as zeros, the rest as written.
    qemu_io(
        "vmdk",
        &path,
        &[
            "read -P 0x44 0 64k".to_string(),
            format!("read -P 0 {second} 64k"),
            format!("read -P 0x55 {} 64k", second + GRAIN),
        ],
    );
    // A damaged header in one extent: reported, and the others walked.
    patch(&ext, 20, &100u64.to_le_bytes());
    let report = check(&path);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Corruption
                && f.file == ext
                && f.message.contains("grain size")),
        "{:#?}",
        report.findings
    );
}

/// A repair stopped at each of its writes (every kind a repair makes, each
/// fault apart from the others) leaves no new corruption, and a rerun ends
/// where an uninterrupted repair does.
#[test]
fn a_repair_killed_at_any_write_leaves_no_worse_and_a_rerun_finishes() {
    let dir = tempdir();
    let d = dir.path();
    let damaged = d.join("damaged.vmdk");
    qemu_img!("create -q -f vmdk", &damaged, 64 * MIB).ok();
    qemu_io(
        "vmdk",
        &damaged,
        &["write -P 0x11 0 256k", "write -P 0x22 40M 1M"],
    );
    // In the second grain table (grains 512 on): grain 641 past the end,
    // grain 643 on grain 642, a zeroed entry without the flag; the
    // directory's entry 0 in the directory (so the first table comes back
    // from its redundant copy), and uncleanShutdown.
    set_both(&damaged, 641, (file_len(&damaged) / 512 + 64) as u32);
    let g642 = le32(&read_at(&damaged, grain_entry(&damaged, 642), 4), 0);
    set_both(&damaged, 643, g642);
    set_both(&damaged, 656, 1);
    let gd = kdmv_header(&damaged).gd_offset * 512;
    patch(&damaged, gd, &((gd / 512) as u32).to_le_bytes());
    patch(&damaged, 72, &[1]);
    every_kill_is_mended_by_a_rerun(&damaged, "vmdk", "all");
}

#[test]
fn all_repair_rebuilds_nothing_from_a_redundant_directory_out_of_place() {
    let dir = tempdir();
    let path = qemu_vmdk(dir.path(), "d.vmdk", "monolithicSparse");
    let before = copy(&path, "before.vmdk");
    // The header puts the redundant directory on the first grain table:
    // the directory is out of place, not the table.
    let h = kdmv_header(&path);
    let gt = le32(&read_at(&path, h.gd_offset * 512, 4), 0) as u64;
    patch(&path, 48, &gt.to_le_bytes());
    let report = check(&path);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Corruption
                && f.repair.is_none()
                && f.message.contains(
                    "the redundant grain directory and the grain table of entry 0 overlap"
                )),
        "{:#?}",
        report.findings
    );
    // Nothing is rewritten from it, nothing written through it.
    let bytes = std::fs::read(&path).unwrap();
    assert!(repair(&path, Repair::All).is_empty());
    assert!(std::fs::read(&path).unwrap() == bytes);
    patch(&path, 48, &h.rgd_offset.to_le_bytes());
    assert_identical("vmdk", &before, "vmdk", &path);
}
