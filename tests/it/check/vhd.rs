//! `check` and `repair` on VHDs qemu-img and vimg made, damaged byte by
//! byte: every fault found with its severity and where it is, several at
//! once, clean images reporting nothing; each repair leaves a disk that
//! checks clean (or with only what its level does not mend), reads as it
//! did wherever no pointer had to be dropped, and that qemu-img still
//! opens.

use std::path::{Path, PathBuf};

use vimg::image::check::{Finding, Repair, Report, Severity};
use vimg::image::factory::{open, open_with};
use vimg::image::{Format, OpenOptions};
use vimg::io::Access;

use super::crash::every_kill_is_mended_by_a_rerun;
use super::{assert_clean, check_chain};
use crate::support::vhd::{bat_entry, checksum, dyn_header, patch_footers, tail_footer};
use crate::support::*;

/// Size of the test disks: four 2 MiB blocks (five in qemu's, which rounds
/// the size up to a whole geometry).
const SIZE: u64 = 8 * MIB;
const BLOCK: u64 = 2 * MIB;

/// What a check of the top layer of the image at `path` finds.
fn check(path: &Path) -> Report {
    check_chain(path).swap_remove(0)
}

/// The findings of `report` of `severity`.
fn of(report: &Report, severity: Severity) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .collect()
}

/// The one finding of `report` whose message contains `text`.
fn finding<'a>(report: &'a Report, text: &str) -> &'a Finding {
    let found: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.message.contains(text))
        .collect();
    assert_eq!(found.len(), 1, "'{text}' in {:#?}", report.findings);
    found[0]
}

/// Repair the image at `path` at `level`, returning what was repaired.
fn repair(path: &Path, level: Repair) -> Vec<Finding> {
    let opts = OpenOptions::new(Access::Write).checking();
    let mut image = open_with(path, None, opts).unwrap();
    image.repair(level).unwrap()
}

/// Every byte of the disk at `path`, read through vimg.
fn content(path: &Path) -> Vec<u8> {
    let mut image = open(path, Some(Format::Vhd), Access::Read).unwrap();
    let mut buf = vec![0u8; image.virtual_size() as usize];
    image.read_at(&mut buf, 0).unwrap();
    buf
}

/// qemu-img opens the image (`info`; `check`, which qemu-img does not
/// implement for vpc, gets as far as saying so, after opening it) and reads
/// it as `copy` reads.
fn qemu_reads_as(path: &Path, copy: &Path) {
    qemu_img!("info -f vpc", path).ok();
    let out = qemu_img!("check -f vpc", path).run();
    assert!(
        out.code() == Some(63) && out.stderr_text().contains("does not support checks"),
        "{out:?}"
    );
    assert_identical("vpc", path, "vpc", copy);
}

/// A dynamic VHD qemu-img made and qemu-io wrote: blocks 0 and 1 full,
/// block 2 in part, block 3 unallocated. Also a copy of it, for compare.
fn qemu_dynamic(dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("q.vhd");
    qemu_img!("create -q -f vpc -o subformat=dynamic", &path, SIZE).ok();
    qemu_io(
        "vpc",
        &path,
        &[
            "write -P 0x11 0 3M",
            "write -P 0x22 3M 1M",
            "write -P 0x33 5000000 100k",
        ],
    );
    let copy = dir.join("copy.vhd");
    std::fs::copy(&path, &copy).unwrap();
    (path, copy)
}

/// Set the BAT entry of `block` to `value`.
fn set_entry(path: &Path, block: u64, value: u32) {
    let h = dyn_header(path);
    patch(path, h.table_offset + 4 * block, &value.to_be_bytes());
}

/// Rewrite bytes of the dynamic header (at the offset the footer copy
/// names) with its checksum fixed.
fn patch_header(path: &Path, edit: impl Fn(&mut [u8])) {
    let at = be64(&read_at(path, 0, 512), 16);
    let mut raw = read_at(path, at, 1024);
    edit(&mut raw);
    let sum = checksum(&raw, 36);
    raw[36..40].copy_from_slice(&sum.to_be_bytes());
    patch(path, at, &raw);
}

/// `content` equals `before` outside `dropped`, and reads as zeros there.
fn same_but_zeros(content: &[u8], before: &[u8], dropped: std::ops::Range<usize>) {
    assert_eq!(content.len(), before.len());
    assert!(first_difference(&content[..dropped.start], &before[..dropped.start]).is_none());
    assert!(first_difference(&content[dropped.end..], &before[dropped.end..]).is_none());
    assert!(content[dropped].iter().all(|&b| b == 0));
}

#[test]
fn clean_images_report_nothing_and_count_their_blocks() {
    let dir = tempdir();
    let d = dir.path();
    let (q, _) = qemu_dynamic(d);
    let report = check(&q);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let clusters = report.clusters.unwrap();
    let blocks = (content(&q).len() as u64).div_ceil(BLOCK);
    assert_eq!((clusters.total, clusters.allocated), (blocks, 3));
    assert_eq!((clusters.fragmented, clusters.compressed), (0, 0));
    assert_eq!(report.end_offset, Some(file_len(&q)));
    // vimg's layout, data 4 KiB-aligned: not fragmented either.
    let v = d.join("v.vhd");
    vimg!("convert -q -O vhd", &q, &v).ok();
    let report = check(&v);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.clusters.unwrap().allocated, 3);
    assert_eq!(report.clusters.unwrap().fragmented, 0);
    assert_eq!(report.end_offset, Some(file_len(&v)));
    // Empty disks, and fixed ones.
    let e = d.join("e.vhd");
    vimg!("create -q -f vhd", &e, SIZE).ok();
    assert_clean(&e);
    let qf = d.join("qf.vhd");
    qemu_img!("create -q -f vpc -o subformat=fixed", &qf, SIZE).ok();
    qemu_io("vpc", &qf, &["write -P 0x44 1M 1M"]);
    assert_clean(&qf);
    assert_eq!(check(&qf).end_offset, Some(file_len(&qf)));
    let vf = d.join("vf.vhd");
    vimg!("convert -q -O vhd -o subformat=fixed", &q, &vf).ok();
    assert_clean(&vf);
    // A differencing disk over vimg's copy, written, and its parent.
    let child = d.join("child.vhd");
    vimg!("snapshot create", &v, &child).ok();
    qemu_io("vpc", &child, &["write -P 0x55 1M 2M"]);
    assert_eq!(check_chain(&child).len(), 2);
    assert_clean(&child);
}

/// Virtual PC before 2004 wrote 511-byte footers: such disks check clean
/// (the copy at offset 0 is the footer padded with a zero byte).
#[test]
fn disks_with_511_byte_footers_check_clean() {
    let dir = tempdir();
    let d = dir.path();
    let (q, _) = qemu_dynamic(d);
    for sub in ["dynamic", "fixed"] {
        let path = d.join(format!("{sub}.vhd"));
        vimg!(
            "convert -q -O vhd -o",
            format!("subformat={sub}"),
            &q,
            &path
        )
        .ok();
        let len = file_len(&path);
        assert_eq!(read_at(&path, len - 1, 1), [0]);
        truncate(&path, len - 1);
        let report = check(&path);
        assert!(report.findings.is_empty(), "{sub}: {:#?}", report.findings);
        assert_eq!(report.end_offset, Some(len - 1), "{sub}");
        // Nothing to repair either.
        assert!(repair(&path, Repair::All).is_empty(), "{sub}");
        assert_eq!(file_len(&path), len - 1, "{sub}");
    }
}

#[test]
fn a_bat_entry_past_the_end_is_a_corruption_all_clears() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let before = content(&path);
    let h = dyn_header(&path);
    set_entry(&path, 3, (file_len(&path) / 512 + 100) as u32);
    assert!(open(&path, None, Access::Read).is_err());
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(f.severity, Severity::Corruption);
    assert_eq!(f.offset, Some(h.table_offset + 12));
    assert!(f.message.contains("past the end"), "{f:?}");
    assert_eq!(f.repair, Some(Repair::All));
    // -r leaks leaves it; -r all clears the entry.
    assert!(repair(&path, Repair::Leaks).is_empty());
    let done = repair(&path, Repair::All);
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(
        done[0]
            .message
            .contains("virtual bytes 6291456 to 8388608 now read as zeros"),
        "{done:?}"
    );
    assert_clean(&path);
    assert_eq!(bat_entry(&path, &h, 3), 0xffff_ffff);
    // Block 3 held nothing: the disk reads as it did.
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
}

#[test]
fn two_entries_on_one_block_clear_the_later_one() {
    let dir = tempdir();
    let (path, _) = qemu_dynamic(dir.path());
    let before = content(&path);
    let h = dyn_header(&path);
    let e1 = bat_entry(&path, &h, 1);
    set_entry(&path, 2, e1);
    assert!(open(&path, None, Access::Read).is_err());
    let report = check(&path);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{:#?}", report.findings);
    assert!(corrupt[0].message.contains("blocks 1 and 2 overlap"));
    assert_eq!(corrupt[0].offset, Some(h.table_offset + 8));
    // Block 2's own space, the last in the file, is referenced by nothing.
    let leaks = of(&report, Severity::Leak);
    assert_eq!(leaks.len(), 1, "{:#?}", report.findings);
    assert_eq!(leaks[0].repair, Some(Repair::Leaks));
    // -r leaks frees that space, and only that.
    let len = file_len(&path);
    assert_eq!(repair(&path, Repair::Leaks).len(), 1);
    assert!(file_len(&path) < len);
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Corruption);
    // -r all clears entry 2 (the later): block 2 reads as zeros now.
    let done = repair(&path, Repair::All);
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(done[0].message.contains("block 2"), "{done:?}");
    assert_clean(&path);
    assert_eq!(bat_entry(&path, &h, 1), e1);
    same_but_zeros(
        &content(&path),
        &before,
        2 * BLOCK as usize..3 * BLOCK as usize,
    );
    qemu_img!("info -f vpc", &path).ok();
}

#[test]
fn a_bat_entry_into_the_header_is_cleared_and_its_old_space_punched_out() {
    let dir = tempdir();
    let (path, _) = qemu_dynamic(dir.path());
    let before = content(&path);
    let h = dyn_header(&path);
    set_entry(&path, 0, (h.at / 512) as u32);
    let report = check(&path);
    let corrupt = of(&report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{:#?}", report.findings);
    assert!(corrupt[0]
        .message
        .starts_with("block 0 at byte 512 overlaps"));
    assert!(corrupt[0].message.contains("the dynamic header"));
    assert_eq!(corrupt[0].repair, Some(Repair::All));
    // Where it points, it covers its own old space: nothing else to say.
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let done = repair(&path, Repair::All);
    // Block 0's old space, in the middle of the file, is referenced by
    // nothing once the entry is cleared, and the same run punches it out.
    assert_eq!(done.len(), 2, "{done:#?}");
    assert_eq!(done[1].severity, Severity::Leak);
    assert!(done[1].message.contains("punched out"), "{done:#?}");
    assert_clean(&path);
    same_but_zeros(&content(&path), &before, 0..BLOCK as usize);
    qemu_img!("info -f vpc", &path).ok();
}

#[test]
fn a_trailing_footer_with_a_bad_checksum_is_rewritten_from_the_copy() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let len = file_len(&path);
    flip(&path, len - 512 + 200);
    // Open goes by the copy at offset 0; check reports the footer.
    let before = content(&path);
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.severity, f.structure, f.offset),
        (Severity::Corruption, "VHD footer", Some(len - 512))
    );
    assert!(f.message.contains("checksum"), "{f:?}");
    assert_eq!(f.repair, Some(Repair::Leaks));
    assert_eq!(repair(&path, Repair::Leaks).len(), 1);
    assert_clean(&path);
    assert_eq!(file_len(&path), len);
    assert_eq!(tail_footer(&path), read_at(&path, 0, 512));
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
}

#[test]
fn a_missing_trailing_footer_is_restored_by_all_only() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let len = file_len(&path);
    truncate(&path, len - 512);
    let before = content(&path);
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.severity, f.structure),
        (Severity::Corruption, "VHD footer")
    );
    assert!(f.message.contains("does not end in a footer"), "{f:?}");
    assert_eq!(f.repair, Some(Repair::All));
    assert!(repair(&path, Repair::Leaks).is_empty());
    assert_eq!(check(&path).findings.len(), 1);
    assert_eq!(repair(&path, Repair::All).len(), 1);
    assert_clean(&path);
    assert_eq!(file_len(&path), len);
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
}

#[test]
fn footer_copies_that_differ_take_the_trailing_one() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let before = content(&path);
    // The copy at 0 says another creator, with a valid checksum.
    let mut head = read_at(&path, 0, 512);
    head[28..32].copy_from_slice(b"ohno");
    let sum = checksum(&head, 64);
    head[64..68].copy_from_slice(&sum.to_be_bytes());
    patch(&path, 0, &head);
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = finding(&report, "differs from the footer");
    assert_eq!(
        (f.severity, f.offset, f.repair),
        (Severity::Corruption, Some(0), Some(Repair::Leaks))
    );
    assert_eq!(repair(&path, Repair::Leaks).len(), 1);
    assert_clean(&path);
    assert_eq!(read_at(&path, 0, 512), tail_footer(&path));
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
    // A copy at 0 with a bad checksum, likewise.
    flip(&path, 300);
    let report = check(&path);
    let f = finding(&report, "copy at offset 0 is invalid");
    assert_eq!(f.repair, Some(Repair::Leaks));
    repair(&path, Repair::Leaks);
    assert_clean(&path);
}

#[test]
fn a_wrong_header_checksum_is_walked_past_and_all_stores_the_right_one() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let before = content(&path);
    let h = dyn_header(&path);
    // A reserved byte: the fields stay usable.
    flip(&path, h.at + 900);
    assert!(open(&path, None, Access::Read).is_err());
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.severity, f.structure, f.offset, f.repair),
        (
            Severity::Corruption,
            "VHD dynamic header",
            Some(h.at + 36),
            Some(Repair::All)
        )
    );
    assert!(repair(&path, Repair::Leaks).is_empty());
    assert_eq!(repair(&path, Repair::All).len(), 1);
    assert_clean(&path);
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
}

#[test]
fn trailing_garbage_is_a_leak_leaks_cuts_off() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let len = file_len(&path);
    patch(&path, len, &[0x5a; 70_000]);
    let before = content(&path);
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = finding(&report, "70000 bytes after the footer");
    assert_eq!(
        (f.severity, f.offset, f.repair),
        (Severity::Leak, Some(len), Some(Repair::Leaks))
    );
    assert_eq!(report.end_offset, Some(len));
    assert_eq!(repair(&path, Repair::Leaks).len(), 1);
    assert_eq!(file_len(&path), len);
    assert_clean(&path);
    assert_eq!(content(&path), before);
    qemu_reads_as(&path, &copy);
}

#[test]
fn unreferenced_blocks_are_leaks_the_last_one_cut_off_one_in_the_middle_punched_out() {
    let dir = tempdir();
    let (path, _) = qemu_dynamic(dir.path());
    qemu_io("vpc", &path, &["write -P 0x77 7M 64k"]);
    let h = dyn_header(&path);
    let block_len = 512 + BLOCK;
    let b1 = bat_entry(&path, &h, 1) as u64 * 512;
    let b3 = bat_entry(&path, &h, 3) as u64 * 512;
    // Block 1 (in the middle) and block 3 (last) dropped from the BAT.
    set_entry(&path, 1, 0xffff_ffff);
    set_entry(&path, 3, 0xffff_ffff);
    let before = content(&path);
    let report = check(&path);
    let leaks = of(&report, Severity::Leak);
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    assert_eq!(leaks.len(), 2);
    let middle = leaks.iter().find(|f| f.offset == Some(b1)).unwrap();
    assert_eq!(middle.repair, Some(Repair::Leaks));
    assert!(middle.message.starts_with(&format!("{block_len} bytes")));
    let len = file_len(&path);
    let done = repair(&path, Repair::Leaks);
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(
        done.iter().any(|f| f.message.contains("punched out")),
        "{done:#?}"
    );
    assert_eq!(file_len(&path), b3 + 512);
    assert!(file_len(&path) < len);
    assert_clean(&path);
    assert_eq!(content(&path), before);
    // Space that is a hole already is no leak: nothing more to do.
    assert!(repair(&path, Repair::Leaks).is_empty());
}

/// Hyper-V and Virtual PC leave a few KiB of padding before the footer:
/// less than a block is no leak, and stays.
#[test]
fn padding_before_the_footer_is_no_leak() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let footer = tail_footer(&path);
    let len = file_len(&path);
    patch(&path, len - 512, &[0; 512]);
    patch(&path, len + 3584, &footer);
    assert_clean(&path);
    assert!(repair(&path, Repair::Leaks).is_empty());
    assert_eq!(file_len(&path), len + 4096);
    qemu_reads_as(&path, &copy);
}

#[test]
fn a_null_uuid_a_future_time_stamp_and_a_wrong_geometry_are_warnings() {
    let dir = tempdir();
    let d = dir.path();
    let (path, _) = qemu_dynamic(d);
    let fixed = d.join("f.vhd");
    vimg!("convert -q -O vhd -o subformat=fixed", &path, &fixed).ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 946_684_800;
    for image in [&path, &fixed] {
        // Ten minutes ahead is within the slack.
        patch_footers(image, |b| {
            b[24..28].copy_from_slice(&((now + 600) as u32).to_be_bytes())
        });
        assert_clean(image);
        patch_footers(image, |b| {
            b[68..84].fill(0);
            b[24..28].copy_from_slice(&((now + 86_400) as u32).to_be_bytes());
        });
        let report = check(image);
        assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
        assert!(report
            .findings
            .iter()
            .all(|f| f.severity == Severity::Warning));
        let len = file_len(image);
        assert_eq!(
            finding(&report, "unique ID is null").offset,
            Some(len - 512 + 68)
        );
        assert_eq!(
            finding(&report, "in the future").offset,
            Some(len - 512 + 24)
        );
    }
    // vimg's fixed disk goes by its current size: a geometry addressing
    // more than that is wrong.
    patch_footers(&fixed, |b| {
        b[56..58].copy_from_slice(&9999u16.to_be_bytes())
    });
    let report = check(&fixed);
    assert_eq!(
        finding(&report, "geometry 9999/").severity,
        Severity::Warning
    );
}

#[test]
fn a_fixed_footer_with_a_bad_checksum_is_checked_where_open_refuses() {
    let dir = tempdir();
    let path = dir.path().join("f.vhd");
    qemu_img!("create -q -f vpc -o subformat=fixed", &path, SIZE).ok();
    let len = file_len(&path);
    flip(&path, len - 512 + 100);
    // Probing takes it for no VHD at all; given as one, it is.
    assert!(open(&path, None, Access::Read).is_err());
    let vhd = Some(Format::Vhd);
    assert!(open(&path, vhd, Access::Read).is_err());
    let opts = OpenOptions::new(Access::Read).checking();
    let mut image = open_with(&path, vhd, opts).unwrap();
    let mut report = Report::default();
    image.check(&mut report).unwrap();
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.severity, f.structure),
        (Severity::Corruption, "VHD footer")
    );
    assert!(f.message.contains("checksum"), "{f:?}");
}

/// A differencing disk vimg made over a dynamic one qemu made.
fn differencing(dir: &Path) -> PathBuf {
    let (base, _) = qemu_dynamic(dir);
    let child = dir.join("child.vhd");
    vimg!("snapshot create", &base, &child).ok();
    qemu_io("vpc", &child, &["write -P 0x66 2M 1M"]);
    child
}

#[test]
fn a_locator_out_of_bounds_and_one_naming_another_file_are_reported() {
    let dir = tempdir();
    let child = differencing(dir.path());
    let h = dyn_header(&child);
    let w2ru = h.locators.iter().position(|l| &l.code == b"W2ru").unwrap();
    let entry = 576 + 24 * w2ru;
    let at = h.at;
    let past = file_len(&child) + 4096;
    patch_header(&child, |raw| {
        raw[entry + 16..entry + 24].copy_from_slice(&past.to_be_bytes())
    });
    // The W2ku locator still finds the parent.
    let reports = check_chain(&child);
    assert_eq!(reports.len(), 2);
    let report = &reports[0];
    let corrupt = of(report, Severity::Corruption);
    assert_eq!(corrupt.len(), 1, "{:#?}", report.findings);
    assert!(
        corrupt[0].message.contains("parent locator")
            && corrupt[0].message.contains("past the end")
    );
    let warn = finding(report, "cannot be read");
    assert_eq!(warn.severity, Severity::Warning);
    assert_eq!(warn.offset, Some(at + entry as u64));
    // The header's parent name no longer agrees with the W2ku locator.
    patch_header(&child, |raw| {
        raw[entry + 16..entry + 24].copy_from_slice(&h.locators[w2ru].offset.to_be_bytes());
        raw[64..576].fill(0);
        for (i, u) in "other.vhd".encode_utf16().enumerate() {
            raw[64 + 2 * i..66 + 2 * i].copy_from_slice(&u.to_be_bytes());
        }
    });
    let report = check(&child);
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);
    assert!(report
        .findings
        .iter()
        .all(|f| f.severity == Severity::Warning && f.message.contains("\"other.vhd\"")));
}

/// A parent that cannot be found ends the check (exit 1, as qemu-img's
/// contract has it for a check that cannot complete), naming the parent;
/// `--no-chain` checks the child alone.
#[test]
fn a_differencing_disk_whose_parent_is_gone_cannot_be_checked_whole() {
    let dir = tempdir();
    let child = differencing(dir.path());
    std::fs::remove_file(dir.path().join("q.vhd")).unwrap();
    let run = vimg!("check", &child).code(1);
    run.assert_one_line_error(&child, "parent gone");
    assert!(run.stderr_text().contains("q.vhd"), "{run:?}");
    vimg!("check --no-chain", &child).ok();
}

#[test]
fn several_faults_in_one_image_are_all_reported_and_all_repairs_them() {
    let dir = tempdir();
    let (path, copy) = qemu_dynamic(dir.path());
    let before = content(&path);
    let h = dyn_header(&path);
    let len = file_len(&path);
    patch_footers(&path, |b| b[68..84].fill(0));
    let mut head = read_at(&path, 0, 512);
    head[32..36].copy_from_slice(&[0, 9, 0, 9]);
    let sum = checksum(&head, 64);
    head[64..68].copy_from_slice(&sum.to_be_bytes());
    patch(&path, 0, &head);
    flip(&path, h.at + 1000);
    patch(&path, len, &[1; 4096]);
    let report = check(&path);
    assert_eq!(report.findings.len(), 4, "{:#?}", report.findings);
    finding(&report, "unique ID is null");
    finding(&report, "copy at offset 0 differs");
    finding(&report, "the content sums to");
    finding(&report, "4096 bytes after the footer");
    assert_eq!(report.count(Severity::Corruption), 2);
    assert_eq!(report.count(Severity::Leak), 1);
    assert_eq!(report.count(Severity::Warning), 1);
    let done = repair(&path, Repair::All);
    assert_eq!(done.len(), 3, "{done:#?}");
    let report = check(&path);
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert_eq!(report.findings[0].severity, Severity::Warning);
    assert_eq!(file_len(&path), len);
    assert_eq!(content(&path), before);
    // qemu-img reads it as the copy taken before the damage (the unique
    // ID aside, which it does not read).
    qemu_reads_as(&path, &copy);
}

#[test]
fn with_a_wrong_header_checksum_and_a_layout_that_does_not_hold_nothing_is_edited() {
    let dir = tempdir();
    let (path, _) = qemu_dynamic(dir.path());
    let h = dyn_header(&path);
    let len = file_len(&path);
    set_entry(&path, 3, (len / 512 + 64) as u32);
    flip(&path, h.at + 1000);
    let damaged = read_at(&path, 0, len as usize);
    let report = check(&path);
    assert_eq!(
        report.count(Severity::Corruption),
        2,
        "{:#?}",
        report.findings
    );
    assert!(report.findings.iter().all(|f| f.repair.is_none()));
    finding(
        &report,
        "not repaired while the dynamic header's checksum is wrong",
    );
    assert!(repair(&path, Repair::All).is_empty());
    assert_eq!(read_at(&path, 0, len as usize + 1), damaged);
    // Nor is a file cut after what a header that may be wrong references:
    // here the BAT it names holds nothing, and all blocks would go.
    let sub = dir.path().join("x");
    std::fs::create_dir(&sub).unwrap();
    let (path, _) = qemu_dynamic(&sub);
    let h = dyn_header(&path);
    let len = file_len(&path);
    for block in 0..h.max_entries as u64 {
        set_entry(&path, block, 0xffff_ffff);
    }
    flip(&path, h.at + 1000);
    let damaged = read_at(&path, 0, len as usize);
    let report = check(&path);
    assert_eq!(report.count(Severity::Leak), 1, "{:#?}", report.findings);
    assert!(report.findings.iter().all(|f| f.repair.is_none()));
    assert!(repair(&path, Repair::All).is_empty());
    assert_eq!(read_at(&path, 0, len as usize + 1), damaged);
}

/// A repair stopped at each of its writes leaves no new corruption, and a
/// rerun ends where an uninterrupted repair does.
#[test]
fn a_repair_killed_at_any_write_leaves_no_worse_and_a_rerun_finishes() {
    let dir = tempdir();
    let d = dir.path();
    let (path, _) = qemu_dynamic(d);
    qemu_io("vpc", &path, &["write -P 0x77 7M 64k"]);
    let h = dyn_header(&path);
    let len = file_len(&path);
    // Block 2 on block 1, block 4 past the end, a copy at 0 that differs,
    // and garbage after the footer.
    set_entry(&path, 2, bat_entry(&path, &h, 1));
    set_entry(&path, 4, (len / 512 + 64) as u32);
    let mut head = read_at(&path, 0, 512);
    head[28..32].copy_from_slice(b"ohno");
    let sum = checksum(&head, 64);
    head[64..68].copy_from_slice(&sum.to_be_bytes());
    patch(&path, 0, &head);
    patch(&path, len, &[7; 10_000]);
    assert_eq!(of(&check(&path), Severity::Corruption).len(), 3);
    every_kill_is_mended_by_a_rerun(&path, "vpc", "all");
}

#[test]
fn in_a_differencing_disk_a_cleared_block_reads_from_the_parent() {
    let dir = tempdir();
    let child = differencing(dir.path());
    qemu_io("vpc", &child, &["write -P 0x67 4M 1M"]);
    let base = dir.path().join("q.vhd");
    let (before, parent) = (content(&child), content(&base));
    let h = dyn_header(&child);
    // Block 2 on block 1.
    set_entry(&child, 2, bat_entry(&child, &h, 1));
    let report = check(&child);
    let f = finding(&report, "blocks 1 and 2 overlap");
    assert_eq!(
        (f.severity, f.repair),
        (Severity::Corruption, Some(Repair::All))
    );
    let done = repair(&child, Repair::All);
    assert!(
        done.iter().any(|f| f
            .message
            .contains("virtual bytes 4194304 to 6291456 now read from the parent")),
        "{done:#?}"
    );
    assert_clean(&child);
    let after = content(&child);
    let block2 = 2 * BLOCK as usize..3 * BLOCK as usize;
    assert_eq!(after[block2.clone()], parent[block2.clone()]);
    assert!(after[..block2.start] == before[..block2.start]);
    assert!(after[block2.end..] == before[block2.end..]);
    qemu_img!("info -f vpc", &child).ok();
    // libvhdi, with the parent in place, reads the repaired chain so too.
    let expected = dir.path().join("expected.raw");
    std::fs::write(&expected, &after).unwrap();
    assert_pyvhdi_reads(&child, &[&base], &expected, &[(0, after.len() as u64)]);
}

#[test]
fn a_block_size_that_is_no_power_of_two_cannot_be_walked() {
    let dir = tempdir();
    let (path, _) = qemu_dynamic(dir.path());
    let h = dyn_header(&path);
    patch_header(&path, |raw| {
        raw[32..36].copy_from_slice(&(3u32 << 20).to_be_bytes())
    });
    let opts = OpenOptions::new(Access::Read).checking();
    let err = open_with(&path, None, opts).err().expect("refused");
    assert!(
        matches!(&err, vimg::error::Error::Corrupt { offset, .. } if *offset == h.at + 32),
        "{err:?}"
    );
    assert!(err.to_string().contains("power of two"), "{err}");
}

/// Random damage to the metadata of small disks (bytes of the footer copy,
/// the header, the BAT and the footer flipped or set): check never panics
/// or fails, and a repair finishes in one run: a second finds nothing more
/// to do, a check after it finds nothing a repair could mend, and a disk
/// that could be read reads the same.
#[test]
fn random_damage_is_checked_and_repaired_in_one_run() {
    let dir = tempdir();
    let d = dir.path();
    let clean = d.join("clean.vhd");
    vimg!("create -q -f vhd -o block_size=512K", &clean, 4 * MIB).ok();
    qemu_io(
        "vpc",
        &clean,
        &[
            "write -P 0x11 0 1M",
            "write -P 0x22 2M 700k",
            "write -P 0x33 3900k 10k",
        ],
    );
    let child = d.join("child.vhd");
    vimg!("snapshot create", &clean, &child).ok();
    qemu_io("vpc", &child, &["write -P 0x44 1536k 1M"]);
    for image in [&clean, &child] {
        let opened = damage_at_random(image, &d.join("d.vhd"), 0..150);
        assert!(
            opened > 50,
            "only {opened} damaged copies of {image:?} opened"
        );
    }
}

/// Damage copies of the disk `clean` at `path` (beside it, so that a
/// differencing disk finds its parent), one for each seed, and check and
/// repair each as [`random_damage_is_checked_and_repaired_in_one_run`]
/// says. Returns how many of the damaged copies opened for check.
fn damage_at_random(clean: &Path, path: &Path, seeds: std::ops::Range<u64>) -> usize {
    let h = dyn_header(clean);
    let meta_end = h.table_offset + 4 * h.max_entries as u64;
    let mut opened = 0;
    for seed in seeds {
        std::fs::copy(clean, path).unwrap();
        let mut rng = Rng::new(seed);
        let len = file_len(path);
        for _ in 0..rng.range(1, 4) {
            let at = match rng.below(4) {
                0 => rng.below(512),
                1 => h.at + rng.below(1024),
                2 => h.table_offset + rng.below(meta_end - h.table_offset),
                _ => len - 512 + rng.below(512),
            };
            let byte = match rng.chance(50) {
                true => read_at(path, at, 1)[0] ^ (1 << rng.below(8)),
                false => rng.below(256) as u8,
            };
            patch(path, at, &[byte]);
        }
        if rng.chance(20) {
            let n = rng.range(1, 5000) as usize;
            patch(path, len, &rng.bytes(n));
        }
        let opts = OpenOptions::new(Access::Read).checking();
        let Ok(mut image) = open_with(path, Some(Format::Vhd), opts) else {
            continue;
        };
        opened += 1;
        let mut report = Report::default();
        image.check(&mut report).unwrap();
        drop(image);
        // What a disk that opens for reading reads, no repair changes (it
        // has no entries to clear: open refuses those).
        let readable = open(path, Some(Format::Vhd), Access::Read).is_ok();
        let before = readable.then(|| content(path));
        let mut image = open_with(path, Some(Format::Vhd), for_repair()).unwrap();
        image.repair(Repair::All).unwrap();
        drop(image);
        if let Some(before) = before {
            assert!(content(path) == before, "seed {seed}");
        }
        let mut image = open_with(path, Some(Format::Vhd), for_repair()).unwrap();
        let again = image.repair(Repair::All).unwrap();
        assert!(again.is_empty(), "seed {seed}: {again:#?}");
        let mut report = Report::default();
        image.check(&mut report).unwrap();
        let mendable: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.repair.is_some())
            .collect();
        assert!(mendable.is_empty(), "seed {seed}: {mendable:#?}");
    }
    opened
}

/// Options to open an image for repair.
fn for_repair() -> OpenOptions {
    OpenOptions::new(Access::Write).checking()
}

/// A BAT of thousands of wrong entries: the first thousand conflicts are
/// listed, the rest counted in one finding, and one repair clears them all.
#[test]
fn thousands_of_wrong_entries_are_counted_past_the_first_thousand() {
    let dir = tempdir();
    let path = dir.path().join("small-blocks.vhd");
    vimg!("create -q -f vhd -o block_size=512K", &path, 2 * GIB).ok();
    let h = dyn_header(&path);
    assert_eq!(h.max_entries, 4096);
    // Every entry past the end of the file, none next to another.
    let past = file_len(&path) / 512 + 16;
    let bat: Vec<u8> = (0..4096u32)
        .flat_map(|i| (past as u32 + 2048 * i).to_be_bytes())
        .collect();
    patch(&path, h.table_offset, &bat);
    let report = check(&path);
    assert_eq!(
        report.findings.len(),
        1001,
        "{:#?}",
        &report.findings[995..]
    );
    let summary = finding(&report, "3096 more conflicts like these");
    assert_eq!(summary.repair, Some(Repair::All));
    let done = repair(&path, Repair::All);
    assert_eq!(done.len(), 1001);
    assert_clean(&path);
    // Every block reads as zeros again.
    let mut image = open(&path, None, Access::Read).unwrap();
    let status = image.block_status(0, 2 * GIB).unwrap();
    assert_eq!(status.len, 2 * GIB, "{status:?}");
    assert!(
        matches!(status.source, vimg::image::Source::Zero { .. }),
        "{status:?}"
    );
}
