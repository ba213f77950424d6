//! The third-party VHDs of the corpus (outside the repository, see
//! `support::corpus`; these tests are ignored unless asked for): each
//! converts to a raw disk with the MANIFEST's virtual size and content
//! sha256 (what qemu-img 10 reads), `vimg info` says which footer size it
//! trusted, the differencing disk without its parent and the images with
//! stale checksums are refused with one error line.

use std::path::Path;

use vimg::image::{factory::open_with, Format, OpenOptions};
use vimg::io::Access;

use crate::support::corpus;
use crate::support::*;

/// True when a (sparse) file holds no data extent at all: every byte is
/// a hole (SEEK_DATA finds nothing).
fn all_holes(path: &Path) -> bool {
    let out = python!("import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\ntry:\n    print(os.lseek(fd, 0, os.SEEK_DATA))\nexcept OSError as e:\n    print('NODATA' if e.errno == 6 else e)", path).ok();
    out.trim() == "NODATA"
}

/// Convert corpus image `rel` to raw without -f and compare with the
/// MANIFEST; `source` is the `size-source` vimg must report (None: not
/// checked). Returns vimg's format-specific info.
fn check_image(rel: &str, disk_type: &str, source: Option<&str>) -> serde_json::Value {
    let dir = tempdir();
    let image = corpus::readable(dir.path(), rel);
    let (size, sha) = corpus::size_and_sha256(rel);

    let v = vimg_info(None, &image);
    assert_eq!(field_str(&v, "format"), "vpc", "{rel}: {v:#}");
    let data = v["format-specific"]["data"].clone();
    assert_eq!(data["disk-type"], disk_type, "{rel}: {v:#}");
    if let Some(src) = source {
        assert_eq!(data["size-source"], src, "{rel}: {v:#}");
    }
    assert_eq!(
        field_u64(&v, "virtual-size"),
        size,
        "{rel}: vimg's virtual size vs the MANIFEST's (qemu-img's)"
    );

    let raw = dir.path().join("out.raw");
    vimg!("convert -O raw", &image, &raw).ok();
    assert_eq!(file_len(&raw), size, "{rel}: raw size");
    // qemu-img reads the same (with -f vpc: it cannot probe fixed disks).
    assert_identical("vhd", &image, "raw", &raw);
    if size > 8 * GIB {
        // The 127 GiB empty disks: hashing 127 GiB of zeros takes minutes.
        // The MANIFEST lists them as all zeros (section F): the raw disk
        // must be all holes.
        assert!(all_holes(&raw), "{rel}: the raw disk holds data");
    } else {
        assert_eq!(sha256(&raw), sha, "{rel}: content sha256");
    }
    data
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn dfvfs_ext2_qemu_dynamic() {
    let d = check_image("dfvfs/ext2.vhd", "dynamic", Some("geometry"));
    assert_eq!(d["creator-app"], "qemu");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn dfvfs_image_old_qemu_dynamic() {
    let d = check_image("dfvfs/image.vhd", "dynamic", Some("geometry"));
    assert_eq!(d["creator-app"], "qemu");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn freebsd_mkimg_fixed_vhdf() {
    check_image("freebsd-mkimg/img-1x1-512-mbr.vhdf", "fixed", None);
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn freebsd_mkimg_dynamic_gz() {
    check_image("freebsd-mkimg/img-63x255-512-mbr.vhd.gz", "dynamic", None);
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn imhex_windows_fixed() {
    let d = check_image(
        "imhex-patterns/vhd.hexpat.vhd",
        "fixed",
        Some("current-size"),
    );
    assert_eq!(d["creator-app"], "win");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn node_vhd_windows_dynamic() {
    let d = check_image("node-vhd/dynamic.vhd.gz", "dynamic", Some("current-size"));
    assert_eq!(d["creator-app"], "win");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn node_vhd_windows_fixed() {
    let d = check_image("node-vhd/fixed.vhd.gz", "fixed", Some("current-size"));
    assert_eq!(d["creator-app"], "win");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn qemu_iotests_hyperv_2012r2_dynamic() {
    let d = check_image(
        "qemu-iotests/hyperv2012r2-dynamic.vhd",
        "dynamic",
        Some("current-size"),
    );
    assert_eq!(d["creator-app"], "win");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn qemu_iotests_virtual_pc_dynamic_is_sized_by_geometry() {
    let d = check_image(
        "qemu-iotests/virtualpc-dynamic.vhd",
        "dynamic",
        Some("geometry"),
    );
    assert_eq!(d["creator-app"], "vpc");
    // Its current size says more than its geometry; the geometry wins.
    assert!(
        field_u64(&d, "current-size")
            > corpus::size_and_sha256("qemu-iotests/virtualpc-dynamic.vhd").0
    );
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn qemu_iotests_disk2vhd_zero_filled() {
    let d = check_image(
        "qemu-iotests/d2v-zerofilled.vhd.bz2",
        "dynamic",
        Some("current-size"),
    );
    assert_eq!(d["creator-app"], "d2v");
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn dfvfs_fat_differential_without_its_parent() {
    let child = corpus::file("dfvfs/fat-differential.vhd");
    // Recognised as a differencing disk (the library opens the layer alone).
    let alone = OpenOptions::new(Access::Read).with_parents(None);
    let mut layer = open_with(&child, Some(Format::Vhd), alone).expect("the child layer opens");
    let info = layer.info().unwrap();
    let data = serde_json::Value::Object(info.specific.unwrap().1);
    assert_eq!(data["disk-type"], "differencing", "{data:#}");
    assert_eq!(data["creator-app"], "win", "{data:#}");
    assert!(
        field_str(&data, "parent-name").ends_with("fat-parent.vhd"),
        "{data:#}"
    );
    assert_eq!(
        layer.virtual_size(),
        corpus::size_and_sha256("dfvfs/fat-differential.vhd").0
    );
    drop(layer);
    // The parent is not in the corpus: one line naming what was tried.
    let dir = tempdir();
    let out_raw = dir.path().join("out.raw");
    for vimg in [
        vimg!("info", &child),
        vimg!("info --output json", &child),
        vimg!("convert -O raw", &child, &out_raw),
    ] {
        let line = vimg
            .one_line_error(&child, "fat-differential.vhd")
            .stderr_text();
        assert!(line.contains("cannot find the parent"), "{line}");
        assert!(line.contains(".\\fat-parent.vhd"), "W2ru not named: {line}");
        assert!(
            line.contains("C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd"),
            "W2ku not named: {line}"
        );
    }
    assert!(!out_raw.exists());
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn malformed_dfvfs_stale_checksums_are_one_error_line() {
    let dir = tempdir();
    for rel in [
        "malformed/dfvfs/image.vhd",
        "malformed/dfvfs/image-differential.vhd",
    ] {
        let image = corpus::file(rel);
        let out_raw = dir.path().join("out.raw");
        for vimg in [
            vimg!("info", &image),
            vimg!("info -f vpc", &image),
            vimg!("convert -O raw", &image, &out_raw),
        ] {
            let line = vimg.one_line_error(&image, rel).stderr_text();
            assert!(line.contains("checksum"), "{rel}: {line}");
        }
        assert_eq!(dir_names(dir.path()), Vec::<String>::new());
    }
}
