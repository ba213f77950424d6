//! VMDK deltas (snapshot disks): `vimg create -b`, with the child beside
//! its parent and in a subfolder, read exactly as qemu-img reads them after
//! qemu-io wrote into them; moved pairs still open; a parent written after
//! the delta was taken is refused naming both content IDs; two-level
//! chains; and ESX vmfsSparse (VMDK3/COWD) deltas built by hand.

use std::fs;
use std::path::Path;

use crate::support::vmdk::*;
use crate::support::*;

const BASE_SIZE: u64 = 40 * MIB + 3 * 512;

/// A vimg monolithicSparse base of BASE_SIZE that qemu-io filled in part.
fn make_base(path: &Path) {
    vimg!("create -q -f vmdk", path, BASE_SIZE).ok();
    qemu_io(
        "vmdk",
        path,
        &[
            "write -P 0x11 0 8M".to_string(),
            "write -P 0x12 10M 100k".to_string(),
            "write -P 0x13 33M 3M".to_string(),
            format!("write -P 0x14 {} 1536", BASE_SIZE - 1536),
        ],
    );
}

/// Writes into a child: partial grains over parent data (the rest of the
/// grain must come from the parent), whole grains, zeros over parent data,
/// and data where the parent has none.
fn child_writes(tag: u8) -> Vec<String> {
    vec![
        format!("write -P {:#04x} 4M 100k", 0x20 + tag),
        format!("write -P {:#04x} 1000 1", 0x30 + tag),
        format!("write -P {:#04x} 10M 64k", 0x40 + tag),
        format!("write -P {:#04x} 20M 1000", 0x50 + tag),
        "write -z 6M 128k".to_string(),
        "write -z 7340032 3000".to_string(),
        format!("write -P {:#04x} 34603008 131073", 0x60 + tag),
    ]
}

/// vimg's raw of `image` equals qemu-img's, byte for byte.
fn assert_reads_like_qemu(image: &Path, scratch: &Path) {
    let q = qemu_to_raw(image, &scratch.join("qemu-view.raw"));
    let v = vimg_to_raw(image, &scratch.join("vimg-view.raw"));
    assert_same_bytes(&q, &v);
    // The same through vimg's flattening into a new VMDK.
    let flat = scratch.join("flattened.vmdk");
    vimg!("convert -q -O vmdk --force", image, &flat).ok();
    assert_identical("raw", &q, "vmdk", &flat);
    for f in [q, v, flat] {
        fs::remove_file(f).unwrap();
    }
}

/// The parent hint and parent CID a delta records.
fn parent_of(image: &Path) -> (String, u32) {
    let text = descriptor_text(image);
    let hint = desc_value(&text, "parentFileNameHint")
        .unwrap_or_else(|| panic!("no parentFileNameHint in:\n{text}"));
    let cid = u32::from_str_radix(&desc_value(&text, "parentCID").unwrap(), 16).unwrap();
    (hint, cid)
}

fn assert_backing(image: &Path, hint: &str) {
    let q = qemu_info(Some("vmdk"), image);
    assert_eq!(field_str(&q, "backing-filename"), hint, "{q:#}");
    let v = vimg_info(None, image);
    assert_eq!(field_str(&v, "backing-filename"), hint, "{v:#}");
    assert_eq!(field_u64(&v, "virtual-size"), field_u64(&q, "virtual-size"));
}

#[test]
fn delta_beside_its_parent_reads_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let child = d.join("child.vmdk");
    // No size: the parent's.
    vimg!("create -q -f vmdk -b", &base, &child).ok();
    assert_eq!(
        field_u64(&qemu_info(Some("vmdk"), &child), "virtual-size"),
        BASE_SIZE
    );
    assert_eq!(parent_of(&child), ("base.vmdk".to_string(), cid_of(&base)));
    assert_backing(&child, "base.vmdk");
    // Before any write the child reads as its parent.
    assert_identical("vmdk", &base, "vmdk", &child);
    assert_reads_like_qemu(&child, d);

    qemu_io("vmdk", &child, &child_writes(1));
    assert_qemu_check(&child);
    assert_reads_like_qemu(&child, d);
    // qemu-img rewrote the child's CID, not the parent link.
    assert_eq!(parent_of(&child).1, cid_of(&base));

    // -b with a relative name given from another working directory is
    // relative to the new image's folder, as in qemu-img.
    vimg!("create -q -f vmdk -b base.vmdk child2.vmdk")
        .current_dir(d)
        .ok();
    assert_eq!(parent_of(&d.join("child2.vmdk")).0, "base.vmdk");
    assert_identical("vmdk", &base, "vmdk", &d.join("child2.vmdk"));
}

#[test]
fn delta_in_a_subfolder_and_moved_pairs_read_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let sub = d.join("snapshots");
    fs::create_dir(&sub).unwrap();
    // `-b ../base.vmdk` is relative to the child's folder.
    let child = sub.join("child.vmdk");
    vimg!("create -q -f vmdk -b ../base.vmdk", &child).ok();
    assert_eq!(parent_of(&child).0, "../base.vmdk");
    assert_backing(&child, "../base.vmdk");
    // An absolute -b is recorded relative as well, so the pair can move.
    let child_abs = sub.join("abs.vmdk");
    vimg!("create -q -f vmdk -b", &base, &child_abs).ok();
    assert_eq!(parent_of(&child_abs).0, "../base.vmdk");

    qemu_io("vmdk", &child, &child_writes(2));
    qemu_io("vmdk", &child_abs, &child_writes(3));
    assert_reads_like_qemu(&child, d);
    assert_reads_like_qemu(&child_abs, d);
    let before = vimg_to_raw(&child, &d.join("before.raw"));
    let before_abs = vimg_to_raw(&child_abs, &d.join("before-abs.raw"));

    // Move the whole set to another folder.
    let elsewhere = tempdir();
    let moved = elsewhere.path().join("vm");
    fs::create_dir(&moved).unwrap();
    fs::rename(&base, moved.join("base.vmdk")).unwrap();
    fs::rename(&sub, moved.join("snapshots")).unwrap();
    for (name, want) in [("child.vmdk", &before), ("abs.vmdk", &before_abs)] {
        let image = moved.join("snapshots").join(name);
        let after = vimg_to_raw(&image, &d.join("after.raw"));
        assert_same_bytes(want, &after);
        assert_reads_like_qemu(&image, d);
        fs::remove_file(after).unwrap();
    }
}

#[test]
fn a_parent_written_after_the_delta_is_refused_naming_both_ids() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let child = d.join("child.vmdk");
    vimg!("create -q -f vmdk -b", &base, &child).ok();
    qemu_io("vmdk", &child, &child_writes(4));
    let recorded = parent_of(&child).1;
    assert_eq!(recorded, cid_of(&base));

    qemu_io("vmdk", &base, &["write -P 0x77 0 512"]);
    let now = cid_of(&base);
    assert_ne!(now, recorded, "qemu-io did not change the base's CID");
    let target = d.join("out.raw");
    for vimg in [
        vimg!("convert -O raw", &child, &target),
        vimg!("info", &child),
        vimg!("info --output json", &child),
    ] {
        let out = vimg.one_line_error(&child, &vimg.to_string());
        let err = out.stderr_text();
        for id in [recorded, now] {
            assert!(
                err.contains(&format!("{id:08x}")),
                "the error does not name content ID {id:08x}: {err}"
            );
        }
        assert!(out.stdout.is_empty());
    }
    assert!(!target.exists());
    // The base alone is still fine.
    vimg_to_raw(&base, &d.join("base.raw"));
}

#[test]
fn two_level_chain_reads_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    // mid is split into sparse extents; top is bigger than the chain below.
    let mid = d.join("mid.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b",
        &base,
        &mid
    )
    .ok();
    assert_eq!(
        desc_value(&descriptor_text(&mid), "createType").as_deref(),
        Some("twoGbMaxExtentSparse")
    );
    qemu_io("vmdk", &mid, &child_writes(5));
    let top = d.join("top.vmdk");
    let top_size = BASE_SIZE + 8 * MIB;
    vimg!("create -q -f vmdk -b mid.vmdk", &top, top_size).ok();
    assert_eq!(parent_of(&top), ("mid.vmdk".to_string(), cid_of(&mid)));
    assert_eq!(parent_of(&mid).1, cid_of(&base));
    qemu_io(
        "vmdk",
        &top,
        &[
            "write -P 0x91 4M 64k".to_string(),
            "write -P 0x92 10M 1".to_string(),
            "write -z 33M 1M".to_string(),
            format!("write -P 0x93 {} 4096", BASE_SIZE + 4 * MIB),
        ],
    );
    let chain = qemu_img!("info --backing-chain", &top).ok();
    assert_eq!(chain.matches("image:").count(), 3, "{chain}");
    assert_qemu_check(&top);
    assert_reads_like_qemu(&top, d);
    assert_reads_like_qemu(&mid, d);
    assert_eq!(field_u64(&vimg_info(None, &top), "virtual-size"), top_size);
    // Reads past the parent's end are zeros, the new tail data is there.
    let v = vimg_to_raw(&top, &d.join("top.raw"));
    let tail = read_at(&v, BASE_SIZE, (8 * MIB) as usize);
    let at = (4 * MIB) as usize;
    assert!(tail[..at].iter().all(|&b| b == 0));
    assert!(tail[at..at + 4096].iter().all(|&b| b == 0x93));
}

#[test]
fn zeroed_grains_in_a_delta_hide_the_parent_data() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let child = d.join("child.vmdk");
    vimg!("create -q -f vmdk -o zeroed_grain -b", &base, &child).ok();
    qemu_io(
        "vmdk",
        &child,
        &[
            "write -z 64k 128k",
            "write -z 1M 1000",
            "write -z 2M 64k",
            "write -z 33M 2M",
        ],
    );
    assert_qemu_check(&child);
    assert_reads_like_qemu(&child, d);
    let v = vimg_to_raw(&child, &d.join("v.raw"));
    assert!(read_at(&v, 64 * KIB, (128 * KIB) as usize)
        .iter()
        .all(|&b| b == 0));
    assert!(read_at(&v, 33 * MIB, (2 * MIB) as usize)
        .iter()
        .all(|&b| b == 0));
    assert!(read_at(&v, 1_000_000, 48_576).iter().all(|&b| b == 0x11));
}

/// A vmfsSparse descriptor over `parent` for a COWD file.
fn vmfs_sparse_descriptor(path: &Path, sectors: u64, parent: &str, parent_cid: u32, extent: &str) {
    let kind = ("vmfsSparse", "VMFSSPARSE", "8");
    crate::support::vmdk::delta_descriptor(path, kind, sectors, parent, parent_cid, extent);
}

#[test]
fn vmfs_sparse_cowd_delta_reads_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let sectors = BASE_SIZE / 512;
    // Grains in the first, a middle and the last grain table, next to
    // parent data and where the parent holds none, the last sector too.
    let grains: Vec<(u64, u8)> = vec![
        (0, 0xc0),
        (1, 0xc1),
        (7, 0xc2),
        (4095, 0xc3),
        (4096, 0xc4),
        (8192 + 100, 0xc5),
        (20480, 0xc6),
        (20481, 0xc7),
        (40000, 0xc8),
        (sectors - 1, 0xc9),
    ];
    let delta = d.join("x-delta.vmdk");
    build_cowd(&delta, sectors, &grains);
    let desc = d.join("x.vmdk");
    vmfs_sparse_descriptor(&desc, sectors, "base.vmdk", cid_of(&base), "x-delta.vmdk");

    // The oracle opens it as a delta over base.vmdk.
    let q = qemu_info(Some("vmdk"), &desc);
    assert_eq!(field_str(&q, "backing-filename"), "base.vmdk");
    assert_eq!(qemu_create_type(&desc), "vmfsSparse");
    let v = vimg_info(None, &desc);
    assert_eq!(field_u64(&v, "virtual-size"), BASE_SIZE);
    assert_eq!(v["format-specific"]["data"]["create-type"], "vmfsSparse");
    assert_eq!(field_str(&v, "backing-filename"), "base.vmdk");
    assert_reads_like_qemu(&desc, d);

    // And the bytes are what was put there: delta grains over the base.
    let base_raw = vimg_to_raw(&base, &d.join("base.raw"));
    let ours = vimg_to_raw(&desc, &d.join("x.raw"));
    let mut want = fs::read(&base_raw).unwrap();
    for &(sector, fill) in &grains {
        let at = (sector * 512) as usize;
        want[at..at + 512].fill(fill);
    }
    let got = fs::read(&ours).unwrap();
    assert!(
        got == want,
        "the vmfsSparse delta does not read as base + grains"
    );

    // The COWD file opened on its own (qemu-img cannot): a legacy sparse
    // disk without a parent, holding only the grains.
    let alone = vimg_to_raw(&delta, &d.join("alone.raw"));
    let mut want = vec![0u8; BASE_SIZE as usize];
    for &(sector, fill) in &grains {
        let at = (sector * 512) as usize;
        want[at..at + 512].fill(fill);
    }
    assert!(
        fs::read(&alone).unwrap() == want,
        "the bare COWD file misreads"
    );
}

#[test]
fn vmfs_sparse_delta_over_a_changed_parent_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let sectors = BASE_SIZE / 512;
    build_cowd(&d.join("x-delta.vmdk"), sectors, &[(5, 0xaa)]);
    let desc = d.join("x.vmdk");
    let wrong = cid_of(&base) ^ 0x0101_0101;
    vmfs_sparse_descriptor(&desc, sectors, "base.vmdk", wrong, "x-delta.vmdk");
    let out = vimg!("convert -O raw", &desc, &d.join("o.raw"))
        .one_line_error(&desc, "vmfsSparse over a parent with another CID");
    let err = out.stderr_text();
    assert!(err.contains(&format!("{wrong:08x}")), "{err}");
    assert!(err.contains(&format!("{:08x}", cid_of(&base))), "{err}");
}

#[test]
fn deltas_over_parents_of_every_subformat_read_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    build_raw(&src, BASE_SIZE, 0xde_0001);
    for sub in SUBFORMATS {
        let folder = d.join(sub);
        fs::create_dir(&folder).unwrap();
        let parent = folder.join("parent.vmdk");
        vimg!(
            "convert -q -O vmdk -o",
            format!("subformat={sub}"),
            &src,
            &parent
        )
        .ok();
        let child = folder.join("child.vmdk");
        vimg!("create -q -f vmdk -F vmdk -b", &parent, &child).ok();
        assert_eq!(
            parent_of(&child),
            ("parent.vmdk".to_string(), cid_of(&parent))
        );
        assert_identical("raw", &src, "vmdk", &child);
        qemu_io("vmdk", &child, &child_writes(6));
        assert_qemu_check(&child);
        assert_reads_like_qemu(&child, &folder);
    }
}

#[test]
fn library_writes_into_a_delta_keep_the_rest_of_the_parent_grain() {
    use vimg::image::{factory::open, Format};
    use vimg::io::Access;
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    for sub in ["monolithicSparse", "twoGbMaxExtentSparse"] {
        let child = d.join(format!("{sub}.vmdk"));
        vimg!(
            "create -q -f vmdk -o",
            format!("subformat={sub}"),
            "-b",
            &base,
            &child
        )
        .ok();
        let cid = cid_of(&child);
        // Partial grains over parent data, across a grain boundary, over
        // a part the parent lacks, and the very last byte.
        let writes: Vec<(u64, Vec<u8>)> = vec![
            (1000, vec![0xa1; 10]),
            (10 * MIB + 65_000, vec![0xa2; 2_000]),
            (20 * MIB + 1, vec![0xa3; 100]),
            (33 * MIB + 64 * KIB, vec![0xa4; 64 * 1024]),
            (BASE_SIZE - 1, vec![0xa5]),
        ];
        let mut disk = open(&child, Some(Format::Vmdk), Access::Write).unwrap();
        for (at, data) in &writes {
            disk.write_at(data, *at).unwrap();
        }
        disk.flush().unwrap();
        drop(disk);
        assert_ne!(cid_of(&child), cid, "{sub}: the CID did not change");
        assert_eq!(parent_of(&child), ("base.vmdk".to_string(), cid_of(&base)));
        assert_qemu_check(&child);
        let mut want = fs::read(qemu_to_raw(&base, &d.join("base.raw"))).unwrap();
        for (at, data) in &writes {
            want[*at as usize..*at as usize + data.len()].copy_from_slice(data);
        }
        let got = fs::read(qemu_to_raw(&child, &d.join("child.raw"))).unwrap();
        if let Some(i) = first_difference(&got, &want) {
            panic!(
                "{sub}: qemu reads byte {i} of the child as {:#04x}, not {:#04x}",
                got[i], want[i]
            );
        }
        assert_reads_like_qemu(&child, d);
    }
}

#[test]
fn a_written_text_descriptor_parent_is_detected_too() {
    // The parent is a twoGbMaxExtentSparse: qemu-io rewrites the CID in
    // its text descriptor.
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse",
        &base,
        "8M"
    )
    .ok();
    let child = d.join("child.vmdk");
    vimg!("create -q -f vmdk -b", &base, &child).ok();
    let recorded = parent_of(&child).1;
    vimg_to_raw(&child, &d.join("ok.raw"));
    qemu_io("vmdk", &base, &["write -P 0x01 0 4k"]);
    let now = cid_of(&base);
    assert_ne!(now, recorded);
    let out = vimg!("convert -O raw", &child, &d.join("x.raw"))
        .one_line_error(&child, "a child of a written twoGbMaxExtentSparse");
    let err = out.stderr_text();
    assert!(
        err.contains(&format!("{recorded:08x}")) && err.contains(&format!("{now:08x}")),
        "{err}"
    );
}

#[test]
fn delta_options_that_cannot_work_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    vimg!("create -q -f vmdk", &base, "8M").ok();
    let before = dir_names(d);
    for opts in [
        ["-o", "subformat=monolithicFlat"],
        ["-o", "subformat=twoGbMaxExtentFlat"],
        ["-o", "subformat=streamOptimized"],
        ["-F", "vpc"],
    ] {
        let child = d.join("child.vmdk");
        let create = vimg!("create -f vmdk")
            .args(opts)
            .arg("-b")
            .arg(&base)
            .arg(&child)
            .arg("8M");
        create.one_line_error(&child, &create.to_string());
        assert_eq!(dir_names(d), before);
    }
    // Without a size the parent is opened as -F says, and refused.
    let child = d.join("child.vmdk");
    vimg!("create -f vmdk -F vpc -b", &base, &child)
        .one_line_error(&base, "create -F vpc -b base.vmdk");
    assert_eq!(dir_names(d), before);
    // A missing parent names the parent.
    let child = d.join("orphan.vmdk");
    vimg!("create -f vmdk -b missing.vmdk", &child)
        .one_line_error(&d.join("missing.vmdk"), "create -b missing.vmdk");
    assert_eq!(dir_names(d), before);
}

#[test]
fn looping_chains_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let data = vec![0x5au8; 512 * 1024];
    fs::write(d.join("a-flat.bin"), &data).unwrap();
    fs::write(d.join("b-flat.bin"), &data).unwrap();
    // Sparse layers would be usual; flat ones keep the files short. Each
    // names the other (or itself) as its parent.
    for (name, parent, extent) in [
        ("a.vmdk", "b.vmdk", "a-flat.bin"),
        ("b.vmdk", "a.vmdk", "b-flat.bin"),
        ("self.vmdk", "self.vmdk", "a-flat.bin"),
    ] {
        let text = format!(
            "# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=11111111\ncreateType=\"monolithicFlat\"\n\
             parentFileNameHint=\"{parent}\"\n\nRW 1024 FLAT \"{extent}\" 0\n"
        );
        fs::write(d.join(name), text).unwrap();
    }
    for name in ["a.vmdk", "self.vmdk"] {
        let image = d.join(name);
        for vimg in [
            vimg!("info", &image),
            vimg!("convert -O raw", &image, &d.join("o.raw")),
        ] {
            let out = vimg.run();
            let err = out.stderr_text();
            assert_eq!(out.status.code(), Some(1), "{name}: {err}");
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(err.contains("loop"), "{name}: {err}");
            assert!(!err.contains("panicked"));
        }
    }
}

#[test]
fn deltas_made_by_qemu_img_read_like_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    make_base(&base);
    let sub = d.join("sub");
    fs::create_dir(&sub).unwrap();
    // Relative (beside and from a subfolder) and absolute backing names,
    // monolithicSparse and twoGbMaxExtentSparse children.
    for (child, backing, opts) in [
        (
            d.join("rel.vmdk"),
            "base.vmdk".to_string(),
            "subformat=monolithicSparse",
        ),
        (
            sub.join("up.vmdk"),
            "../base.vmdk".to_string(),
            "subformat=monolithicSparse",
        ),
        (
            d.join("abs.vmdk"),
            base.display().to_string(),
            "subformat=monolithicSparse",
        ),
        (
            d.join("split.vmdk"),
            "base.vmdk".to_string(),
            "subformat=twoGbMaxExtentSparse",
        ),
    ] {
        qemu_img!("create -f vmdk -F vmdk -b", &backing, "-o", opts, &child).ok();
        assert_eq!(parent_of(&child), (backing.clone(), cid_of(&base)));
        qemu_io("vmdk", &child, &child_writes(7));
        assert_backing(&child, &backing);
        assert_reads_like_qemu(&child, d);
    }
    // A vimg delta over qemu's delta.
    let top = d.join("top.vmdk");
    vimg!("create -q -f vmdk -b rel.vmdk", &top).ok();
    qemu_io("vmdk", &top, &["write -P 0x7f 4M 1"]);
    assert_reads_like_qemu(&top, d);
}

/// `info --backing-chain` lists every layer top first, with the fields
/// qemu-img gives each one (file names, sizes, backing names and formats).
#[test]
fn info_backing_chain_lists_the_layers_like_qemu_img() {
    let dir = tempdir();
    let d = dir.path();
    make_base(&d.join("base.vmdk"));
    std::fs::create_dir(d.join("sub")).unwrap();
    vimg!("create -q -f vmdk -b ../base.vmdk", &d.join("sub/mid.vmdk")).ok();
    vimg!("create -q -f vmdk -b mid.vmdk", &d.join("sub/top.vmdk")).ok();
    let top = d.join("sub/top.vmdk");
    let ours = vimg!("info --backing-chain --output json", &top).json();
    let qemu = qemu_img!("info --backing-chain --output=json", &top).json();
    let (ours, qemu) = (ours.as_array().unwrap(), qemu.as_array().unwrap());
    assert_eq!(ours.len(), 3);
    assert_eq!(ours.len(), qemu.len());
    for (a, b) in ours.iter().zip(qemu) {
        for key in [
            "virtual-size",
            "format",
            "backing-filename",
            "backing-filename-format",
        ] {
            assert_eq!(a.get(key), b.get(key), "{key} of {}", a["filename"]);
        }
        let canon = |v: &serde_json::Value| v.as_str().map(|f| std::fs::canonicalize(f).unwrap());
        for key in ["filename", "full-backing-filename"] {
            assert_eq!(canon(&a[key]), canon(&b[key]), "{key} of {}", a["filename"]);
        }
    }
    // Without the flag, only the top image.
    let one = vimg!("info --output json", &top).json();
    assert!(one.is_object());
    let human = vimg!("info --backing-chain", &top).ok();
    assert_eq!(human.matches("image: ").count(), 3, "{human}");
}
