//! `vimg compact`: grains and blocks of zeros dropped and their space
//! given back, with every sector reading as before, the identity kept (so
//! deltas made before stay valid), zero grains over a parent's data kept,
//! and a compaction killed at any write leaving the content, at most leaks
//! (or a redundant grain table one write behind), and a rerun finishing.

use std::path::{Path, PathBuf};

use crate::support::faults::{assert_no_worse_than_leaks, killed_at, writes_of};
use crate::support::vmdk::cid_of;
use crate::support::*;

/// The data qemu-io zeroes in [`zeroed`] (9 MiB), less what the filesystem
/// may keep for its own bookkeeping of the holes.
const ZEROED: u64 = 9 * MIB - 64 * KIB;

/// Bytes the file at `path` takes on disk.
fn on_disk(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// A 64 MiB image of `fmt` (qemu's name) that qemu-io wrote 17 MiB of data
/// into and then zeroed 9 MiB of; returns it and a copy made before.
fn zeroed(d: &Path, fmt: &str) -> (PathBuf, PathBuf) {
    zeroed_as(d, fmt, None)
}

/// [`zeroed`], created with qemu-img's `-o opts`.
fn zeroed_as(d: &Path, fmt: &str, opts: Option<&str>) -> (PathBuf, PathBuf) {
    let ext = if fmt == "vpc" { "vhd" } else { fmt };
    let path = d.join(format!("disk.{ext}"));
    qemu_img!("create -q -f", fmt)
        .opt("-o", opts)
        .arg(&path)
        .arg(64 * MIB)
        .ok();
    qemu_io(
        fmt,
        &path,
        &["write -P 1 0 8M", "write -P 2 20M 8M", "write -P 3 40M 1M"],
    );
    qemu_io(fmt, &path, &["write -P 0 0 8M", "write -P 0 40M 1M"]);
    let before = d.join(format!("before.{ext}"));
    std::fs::copy(&path, &before).unwrap();
    (path, before)
}

#[test]
fn compact_gives_back_the_space_of_zeroed_data_and_reads_the_same() {
    for fmt in ["vmdk", "vpc"] {
        let dir = tempdir();
        let (path, before) = zeroed(dir.path(), fmt);
        let (used, len) = (on_disk(&path), file_len(&path));
        let out = vimg!("compact", &path).ok();
        // The data after the dropped grains moved into their space: the
        // file itself is shorter, not only sparser.
        assert!(
            file_len(&path) + ZEROED <= len,
            "{fmt}: {} bytes long, {len} before",
            file_len(&path)
        );
        assert!(out.contains("of zeros dropped"), "{out}");
        assert!(
            on_disk(&path) + ZEROED <= used,
            "{fmt}: {} bytes on disk, {used} before",
            on_disk(&path)
        );
        assert_identical(fmt, &before, fmt, &path);
        vimg!("check", &path).ok();
        if fmt == "vmdk" {
            assert_qemu_check(&path);
        } else {
            let raw = dir.path().join("b.raw");
            qemu_img!("convert -f vpc -O raw", &before, &raw).ok();
            assert_pyvhdi_reads(&path, &[], &raw, &[]);
        }
        // Nothing more to drop.
        let again = vimg!("compact", &path).ok();
        assert!(again.contains(": 0 B of zeros"), "{again}");
    }
}

/// Flat VMDKs and fixed VHDs keep their layout: their runs of zeros become
/// holes.
#[test]
fn compact_punches_the_zeros_of_flat_vmdks_and_fixed_vhds() {
    for (fmt, opts) in [
        ("vmdk", "subformat=monolithicFlat"),
        ("vpc", "subformat=fixed"),
    ] {
        let dir = tempdir();
        let (path, before) = zeroed_as(dir.path(), fmt, Some(opts));
        let data = match fmt {
            "vmdk" => dir.path().join("disk-flat.vmdk"),
            _ => path.clone(),
        };
        // qemu-img may allocate a fixed disk fully: compare what the data
        // takes before and after.
        let (len, used) = (file_len(&data), on_disk(&data));
        vimg!("compact -q", &path).ok();
        assert_eq!(file_len(&data), len, "{opts}");
        assert!(
            on_disk(&data) + ZEROED <= used,
            "{opts}: {} of {used}",
            on_disk(&data)
        );
        assert_identical(fmt, &before, fmt, &path);
        vimg!("check", &path).ok();
    }
}

#[test]
fn a_delta_made_before_compacting_still_reads_the_same() {
    let dir = tempdir();
    let d = dir.path();
    let (base, _) = zeroed(d, "vmdk");
    let delta = d.join("delta.vmdk");
    vimg!("snapshot create -q", &base, &delta).ok();
    qemu_io("vmdk", &delta, &["write -P 7 30M 64k"]);
    let before = qemu_to_raw(&delta, &d.join("delta.raw"));
    let cid = cid_of(&base);
    vimg!("compact -q", &base).ok();
    assert_eq!(cid_of(&base), cid);
    assert_identical("raw", &before, "vmdk", &delta);
    vimg!("check", &delta).ok();
}

#[test]
fn in_a_delta_zeros_over_parent_data_are_kept() {
    let dir = tempdir();
    let d = dir.path();
    for (fmt, ours) in [("vmdk", "vmdk"), ("vpc", "vhd")] {
        let base = d.join(format!("base.{ours}"));
        let delta = d.join(format!("delta.{ours}"));
        vimg!("create -q -f", ours, &base, 16 * MIB).ok();
        qemu_io(fmt, &base, &["write -P 1 0 4M"]);
        vimg!("snapshot create -q", &base, &delta).ok();
        // Zeros over the parent's data (kept), zeros over nothing (dropped).
        qemu_io(fmt, &delta, &["write -P 0 0 2M", "write -P 0 8M 2M"]);
        let before = vimg_to_raw(&delta, &d.join(format!("{ours}.raw")));
        vimg!("compact -q", &delta).ok();
        assert_same_bytes(&vimg_to_raw(&delta, &d.join("after.raw")), &before);
        let layers = vimg!("snapshot list --output json", &delta).json();
        assert_eq!(
            field_u64(&layers[0], "allocated"),
            2 * MIB,
            "{fmt}: {layers:#}"
        );
        vimg!("check", &delta).ok();
    }
}

#[test]
fn a_compaction_killed_at_any_write_leaves_the_content_and_at_most_leaks() {
    for fmt in ["vmdk", "vpc"] {
        let dir = tempdir();
        let d = dir.path();
        let (path, before) = zeroed(d, fmt);
        let writes = writes_of(&vimg!("compact -q", &path));
        assert!(!writes.is_empty());
        for n in 0..writes.len() {
            let copy = d.join(format!(
                "kill-{n}.{}",
                if fmt == "vpc" { "vhd" } else { fmt }
            ));
            std::fs::copy(&before, &copy).unwrap();
            killed_at(&vimg!("compact -q", &copy), &writes, n);
            assert_no_worse_than_leaks(
                &copy,
                &format!("{fmt}: killed at write {n} ({})", writes[n]),
            );
            assert_identical(fmt, &before, fmt, &copy);
            vimg!("compact -q", &copy).ok();
            vimg!("check", &copy).ok();
            std::fs::remove_file(&copy).unwrap();
        }
    }
}
