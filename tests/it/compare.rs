//! `vimg compare`: qemu-img's exit codes and messages, across raw, VMDK
//! and VHD, through chains and size differences; right on differencing
//! VHDs, which qemu-img reads without their parent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

/// Images of one 8 MiB disk and of disks that differ from it, by name.
fn images(d: &Path) -> Vec<(&'static str, PathBuf)> {
    let raw = d.join("disk.raw");
    raw_with_pieces(
        &raw,
        8 * MIB,
        &[(0, 300 * KIB), (3 * MIB, 64 * KIB), (7 * MIB, MIB)],
        3,
    );
    let vmdk = d.join("disk.vmdk");
    let vhd = d.join("disk.vhd");
    vimg!("convert -q -O vmdk", &raw, &vmdk).ok();
    vimg!("convert -q -O vhd -o force_size=on", &raw, &vhd).ok();
    // One byte changed, inside a sector.
    let changed = d.join("changed.raw");
    std::fs::copy(&raw, &changed).unwrap();
    patch(&changed, 3 * MIB + 1000, &[0xee]);
    // Longer, with zeros past 8 MiB, and with data there.
    let longer = d.join("longer.raw");
    std::fs::copy(&raw, &longer).unwrap();
    truncate(&longer, 12 * MIB);
    let longer_data = d.join("longer-data.raw");
    std::fs::copy(&longer, &longer_data).unwrap();
    patch(&longer_data, 10 * MIB + 700, &[1]);
    // A VMDK delta over the VMDK, written, and what it reads.
    let delta = d.join("delta.vmdk");
    vimg!("snapshot create -q", &vmdk, &delta).ok();
    qemu_io("vmdk", &delta, &["write -P 9 4M 64k"]);
    let flat = qemu_to_raw(&delta, &d.join("delta.raw"));
    vec![
        ("raw", raw),
        ("vmdk", vmdk),
        ("vpc", vhd),
        ("raw", changed),
        ("raw", longer),
        ("raw", longer_data),
        ("vmdk", delta),
        ("raw", flat),
    ]
}

#[test]
fn compare_agrees_with_qemu_img_across_formats_chains_and_sizes() {
    let dir = tempdir();
    let all = images(dir.path());
    for (fa, a) in &all {
        for (fb, b) in &all {
            let vimg_fmt = |f: &str| {
                if f == "vpc" {
                    "vhd".to_string()
                } else {
                    f.to_string()
                }
            };
            let ours = vimg!("compare -f", vimg_fmt(fa), "-F", vimg_fmt(fb), a, b).run();
            let theirs = qemu_img!("compare -f", fa, "-F", fb, a, b).run();
            let pair = format!("{} vs {}", a.display(), b.display());
            assert_eq!(ours.code(), theirs.code(), "{pair}: {ours:?} / {theirs:?}");
            assert_eq!(ours.stdout_text(), theirs.stdout_text(), "{pair}");
            // -s as qemu-img for sizes.
            let ours = vimg!("compare -s -q", a, b).run();
            let theirs = qemu_img!("compare -s -q -f", fa, "-F", fb, a, b).run();
            if file_len(a) != file_len(b) && (*fa, *fb) == ("raw", "raw") {
                assert_eq!(ours.code(), theirs.code(), "-s {pair}");
            }
            assert!(matches!(ours.code(), Some(0 | 1)), "-s {pair}: {ours:?}");
        }
    }
}

#[test]
fn compare_reads_a_differencing_vhd_through_its_parent_where_qemu_img_does_not() {
    let dir = tempdir();
    let d = dir.path();
    let parent = d.join("parent.vhd");
    let child = d.join("child.vhd");
    vimg!("create -q -f vhd -o force_size=on", &parent, 8 * MIB).ok();
    qemu_io("vpc", &parent, &["write -P 1 0 3M"]);
    vimg!("snapshot create -q", &parent, &child).ok();
    qemu_io("vpc", &child, &["write -P 2 1M 4k"]);
    let raw = vimg_to_raw(&child, &d.join("child.raw"));
    assert_pyvhdi_reads(&child, &[&parent], &raw, &[]);
    let ours = vimg!("compare", &child, &raw).run();
    assert_eq!(ours.code(), Some(0), "{ours:?}");
    // qemu-img takes the child for a dynamic disk: the parent's data is
    // missing from what it reads.
    let theirs = qemu_img!("compare -f vpc -F raw", &child, &raw).run();
    assert_eq!(theirs.code(), Some(1), "{theirs:?}");
}

#[test]
fn empty_images_of_two_tebibytes_compare_without_being_read() {
    let dir = tempdir();
    let d = dir.path();
    let a = d.join("a.vmdk");
    let b = d.join("b.vhd");
    vimg!("create -q -f vmdk", &a, "2T").ok();
    vimg!("create -q -f vhd -o force_size=on", &b, "2000G").ok();
    let c = d.join("c.vhd");
    vimg!("create -q -f vhd -o force_size=on", &c, "2000G").ok();
    let run = vimg!("compare", &b, &c).run_within(Duration::from_secs(10));
    assert_eq!(run.code(), Some(0), "{run:?}");
    // 2 TiB against 2000 GiB: the rest of the larger reads as zeros.
    let run = vimg!("compare", &a, &b).run_within(Duration::from_secs(10));
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run
        .stdout_text()
        .starts_with("Warning: Image size mismatch!"));
}

#[test]
fn a_comparison_that_cannot_be_made_exits_2() {
    let dir = tempdir();
    let a = dir.path().join("a.raw");
    build_raw(&a, MIB, 1);
    let missing = dir.path().join("missing.vmdk");
    let run = vimg!("compare", &a, &missing).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr_text().lines().count(), 1, "{run:?}");
    assert!(run.stderr_text().contains("missing.vmdk"));
    // Bad values and refused flags too (qemu-img compare gives 2 for an
    // unknown format or cache mode); 1 would read as "different".
    for line in [
        "compare -f qcow2",
        "compare -T bogus",
        "compare --image-opts",
    ] {
        let run = vimg!().words(line).arg(&a).arg(&a).run();
        assert_eq!(run.code(), Some(2), "{line}: {run:?}");
        assert_eq!(run.stderr_text().lines().count(), 1, "{line}: {run:?}");
        if line != "compare --image-opts" {
            let qemu = qemu_img!().words(line).arg(&a).arg(&a).run();
            assert_eq!(qemu.code(), Some(2), "qemu-img {line}: {qemu:?}");
        }
    }
    // A usage error is 1, as in qemu-img.
    vimg!("compare --bogus", &a, &a).code(1);
}
