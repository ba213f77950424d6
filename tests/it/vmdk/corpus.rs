//! Every VMDK of the third-party corpus (outside the repository, see
//! `support::corpus`; these tests are ignored unless asked for): vimg
//! converts it to raw with the content sha256 the MANIFEST gives (what
//! qemu-img reads), reports the MANIFEST's virtual size, and writes it on as
//! a VMDK qemu-img finds identical. Malformed images and descriptors whose
//! data is missing fail with exit code 1 and one error line naming a file,
//! never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::corpus;
use crate::support::vmdk::*;
use crate::support::*;

/// The corpus's readable VMDKs: MANIFEST path and the files (relative to
/// the corpus) to put beside it; `.gz` files are decompressed. An empty
/// list reads the image in place.
fn readable() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("dfvfs/ext2.vmdk", vec![]),
        ("dfvfs/image.vmdk", vec![]),
        ("freebsd-mkimg/img-63x255-512-mbr.vmdk", vec![]),
        ("freebsd-mkimg/img-63x255-512-mbr.vmdks", vec![]),
        ("go-vmdk-parser/vmdk-monolith.img", vec![]),
        ("go-vmdk-parser/vmdk-streamoptimized.img", vec![]),
        ("xo-vmdk-to-vhd/test.vmdk", vec![]),
        ("vmdk-rs/monolithicSparse.vmdk", vec![]),
        ("vmdk-rs/streamOptimized.vmdk", vec![]),
        ("vmdk-rs/streamOptimizedWithMarkers.vmdk", vec![]),
        ("vmdk-rs/twoGbMaxExtentSparse.vmdk", vec![]),
        ("vmdk-rs/vmfs_thick.vmdk", vec![]),
        (
            "vmdk-rs/monolithicFlat.vmdk",
            vec![
                ("vmdk-rs/monolithicFlat.vmdk", "monolithicFlat.vmdk"),
                (
                    "vmdk-rs/monolithicFlat-flat.vmdk.gz",
                    "monolithicFlat-flat.vmdk",
                ),
            ],
        ),
        (
            "vmdk-rs/twoGbMaxExtentFlat.vmdk",
            vec![
                ("vmdk-rs/twoGbMaxExtentFlat.vmdk", "twoGbMaxExtentFlat.vmdk"),
                // Upstream stores the same blob under both names.
                (
                    "vmdk-rs/monolithicFlat-flat.vmdk.gz",
                    "twoGbMaxExtentFlat-f001.vmdk",
                ),
            ],
        ),
    ]
}

/// Put `files` into `dir` (decompressing `.gz`); returns the image path.
fn materialize(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    if files.is_empty() {
        return corpus::file(name);
    }
    for (from, to) in files {
        corpus::copy(from, dir, to);
    }
    dir.join(files[0].1)
}

/// Convert one corpus image and check it against the MANIFEST.
fn check_image(name: &str, files: &[(&str, &str)], manifest: &corpus::Manifest) {
    let dir = tempdir();
    let d = dir.path();
    let (size, sha) = manifest
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in MANIFEST.md"))
        .clone();
    let size = size.unwrap_or_else(|| panic!("no virtual size for {name}"));
    let sha = sha.unwrap_or_else(|| panic!("no content sha256 for {name}"));
    let image = materialize(d, name, files);

    let info = vimg_info(None, &image);
    assert_eq!(field_str(&info, "format"), "vmdk", "{name}");
    assert_eq!(field_u64(&info, "virtual-size"), size, "{name}: {info:#}");
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        qemu_create_type(&image),
        "{name}: create-type"
    );
    vimg!("info", &image).ok();

    let raw = vimg_to_raw(&image, &d.join("out.raw"));
    assert_eq!(fs::metadata(&raw).unwrap().len(), size, "{name}");
    assert_eq!(sha256(&raw), sha, "{name}: content sha256 of vimg's raw");
    fs::remove_file(&raw).unwrap();

    // vimg's own VMDK of it is what qemu-img reads from the original.
    let copy = d.join("copy.vmdk");
    vimg!("convert -q -O vmdk", &image, &copy).ok();
    assert_identical("vmdk", &image, "vmdk", &copy);
    assert_qemu_check(&copy);
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn corpus_vmdks_convert_to_the_manifest_content() {
    let manifest = corpus::manifest();
    for (name, files) in readable() {
        check_image(name, &files, &manifest);
    }
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn corpus_16_gib_vmware_stream_converts_to_the_manifest_content() {
    // VMware export tooling's streamOptimized, 16 GiB virtual, read whole.
    check_image(
        "qemu-iotests/iotest-version3.vmdk",
        &[],
        &corpus::manifest(),
    );
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn corpus_manifest_covers_the_expected_images() {
    // The table parser itself: known values from MANIFEST.md.
    let m = corpus::manifest();
    assert_eq!(
        m["vmdk-rs/monolithicSparse.vmdk"],
        (
            Some(10_485_760),
            Some("a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727".into())
        )
    );
    assert_eq!(
        m["qemu-iotests/iotest-version3.vmdk"].0,
        Some(17_179_869_184)
    );
    assert_eq!(m["vmdk-forensic/ms3-win.vmdk"], (None, None));
    for (name, _) in readable() {
        assert!(m.contains_key(name), "{name}");
    }
}

/// Every reading command on `image` fails with exit 1 and one error line
/// naming one of `named`, without a panic and without leaving a target.
fn assert_refused(image: &Path, named: &[&str]) {
    let dir = tempdir();
    let d = dir.path();
    let runs = [
        vimg!("info", image),
        vimg!("info --output json", image),
        vimg!("convert -O raw", image, &d.join("o.raw")),
        vimg!("convert -O vmdk", image, &d.join("o.vmdk")),
        vimg!("convert -O vhd", image, &d.join("o.vhd")),
        vimg!("convert -f vmdk -O raw", image, &d.join("f.raw")),
    ];
    for vimg in runs {
        let out = vimg.run();
        let what = vimg.to_string();
        let err = out.stderr_text();
        assert!(!err.contains("panicked"), "{what} panicked: {err}");
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what} printed: {:?}", out.stdout);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(
            err.starts_with("vimg: error: ") && err.ends_with('\n'),
            "{what}: {err}"
        );
        assert!(
            named.iter().any(|n| err.contains(n)),
            "{what}: the error names none of {named:?}: {err}"
        );
        assert!(dir_names(d).is_empty(), "{what} left {:?}", dir_names(d));
    }
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn malformed_corpus_vmdks_are_refused_cleanly() {
    for name in [
        "malformed/qemu-iotests/afl9.vmdk",
        "malformed/go-vmdk-parser/vmdk-invalid.img",
        "malformed/govmomi/ttylinux-pc_i486-16.1-disk1.vmdk",
    ] {
        let image = corpus::file(name);
        let file = image.file_name().unwrap().to_string_lossy().into_owned();
        assert_refused(&image, &[&file]);
    }
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn descriptors_whose_data_is_missing_are_refused_cleanly() {
    // A twoGbMaxExtentSparse descriptor without its 16 extents, and a
    // vmfsSparse delta descriptor without its -delta file.
    assert_refused(
        &corpus::file("vmdk-forensic/ms3-win.vmdk"),
        &["ms3-win.vmdk", "disk-s001.vmdk"],
    );
    assert_refused(
        &corpus::file("vmdk-rs/vmfs_thick-000001.vmdk"),
        &["vmfs_thick-000001.vmdk", "vmfs_thick-000001-delta.vmdk"],
    );
    // The same with a delta file present (empty) but its parent gone.
    let dir = tempdir();
    let d = dir.path();
    let desc = d.join("vmfs_thick-000001.vmdk");
    fs::copy(corpus::file("vmdk-rs/vmfs_thick-000001.vmdk"), &desc).unwrap();
    build_cowd(&d.join("vmfs_thick-000001-delta.vmdk"), 4096, &[]);
    assert_refused(&desc, &["vmfs_thick-000001.vmdk", "vmfs_thick.vmdk"]);
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn real_esx_vmfs_sparse_descriptor_over_its_real_parent() {
    // The corpus has ESXi's vmfsSparse delta descriptor and its thick
    // parent, but not the delta's data: a hand-built COWD file stands in.
    let dir = tempdir();
    let d = dir.path();
    for f in [
        "vmfs_thick.vmdk",
        "vmfs_thick-flat.vmdk",
        "vmfs_thick-000001.vmdk",
    ] {
        fs::copy(corpus::file(&format!("vmdk-rs/{f}")), d.join(f)).unwrap();
    }
    let desc = d.join("vmfs_thick-000001.vmdk");
    let lines = extent_lines(&fs::read_to_string(&desc).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].kind, "VMFSSPARSE");
    assert_eq!(cid_of(&d.join("vmfs_thick.vmdk")), 0x0172_e8a4);
    let grains: Vec<(u64, u8)> = vec![(0, 0xa0), (63, 0xa1), (2048, 0xa2), (4095, 0xa3)];
    build_cowd(
        &d.join("vmfs_thick-000001-delta.vmdk"),
        lines[0].sectors,
        &grains,
    );

    assert_eq!(
        field_str(&qemu_info(Some("vmdk"), &desc), "backing-filename"),
        "vmfs_thick.vmdk"
    );
    let info = vimg_info(None, &desc);
    assert_eq!(field_u64(&info, "virtual-size"), 2 * MIB);
    assert_eq!(field_str(&info, "backing-filename"), "vmfs_thick.vmdk");
    let ours = vimg_to_raw(&desc, &d.join("vimg.raw"));
    let theirs = qemu_to_raw(&desc, &d.join("qemu.raw"));
    assert_same_bytes(&theirs, &ours);
    let mut want = fs::read(d.join("vmfs_thick-flat.vmdk")).unwrap();
    for (sector, fill) in grains {
        want[sector as usize * 512..(sector as usize + 1) * 512].fill(fill);
    }
    assert!(
        fs::read(&ours).unwrap() == want,
        "delta grains over the ESXi parent"
    );
}
