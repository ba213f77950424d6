//! VHD sizes: the 2040 GiB limit, `force_size=off` against qemu-img, the
//! Azure rules for fixed disks, which of the footer's two sizes a reader
//! trusts (creator application and geometry, compared with qemu-img), and
//! probing a fixed VHD or a dynamic VHD with a damaged trailing footer.

use std::path::Path;

use crate::support::vhd::*;
use crate::support::*;

const MAX: u64 = 2040 * GIB;

/// Run `vimg`; it must succeed. Returns (stdout, stderr).
fn succeeds(vimg: Cmd) -> (String, String) {
    let out = vimg.run();
    assert!(
        out.status.success(),
        "`{vimg}` failed: {}",
        out.stderr_text()
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

// ---------------------------------------------------------------- limits

#[test]
fn the_largest_vhd_is_2040_gib_dynamic_and_fixed_and_sparse() {
    let dir = tempdir();
    for (name, opts, qemu_fmt) in [
        ("dyn.vhd", "subformat=dynamic", None),
        ("fixed.vhd", "subformat=fixed", Some("vhd")),
    ] {
        let path = dir.path().join(name);
        succeeds(vimg!("create -q -f vhd -o", opts, &path, "2040G"));
        let q = qemu_info(qemu_fmt, &path);
        assert_eq!(field_str(&q, "format"), "vpc", "{q:#}");
        assert_eq!(field_u64(&q, "virtual-size"), MAX, "{name}: {q:#}");
        assert_eq!(field_u64(&vimg_info(None, &path), "virtual-size"), MAX);
        let f = footer_fields(&tail_footer(&path));
        assert_eq!(f.current_size, MAX);
        // 2040 GiB is not a CHS product: the maximum geometry.
        assert_eq!(f.chs, (65535, 16, 255));
        // Sparse: a few MiB of metadata at most (the BAT of a dynamic
        // disk is 4 MiB, all 0xff), never the data.
        let used = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap()) * 512;
        assert!(used <= 5 * MIB, "{name} occupies {used} bytes");
        if opts.ends_with("fixed") {
            assert_eq!(file_len(&path), MAX + 512);
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn more_than_2040_gib_is_refused_before_any_file_exists() {
    let dir = tempdir();
    for size in ["3T", &(MAX + 512).to_string(), "2041G", "16T"] {
        for opts in ["subformat=dynamic", "subformat=fixed", "force_size=off"] {
            let path = dir.path().join("big.vhd");
            let out = vimg!("create -f vhd -o", opts, &path, size)
                .one_line_error(&path, &format!("create {size} with {opts}"));
            let err = out.stderr_text();
            assert!(err.contains("2040 GiB"), "{err}");
            // No file, and no hidden work folder either.
            assert_eq!(dir_names(dir.path()), Vec::<String>::new(), "{size} {opts}");
        }
    }
    // convert refuses too, leaving nothing.
    let raw = dir.path().join("src.raw");
    zero_raw(&raw, 3 << 40);
    let path = dir.path().join("big.vhd");
    vimg!("convert -f raw -O vhd", &raw, &path)
        .one_line_error(&path, "convert a 3 TiB raw disk to VHD");
    assert_eq!(dir_names(dir.path()), ["src.raw"]);
}

#[test]
fn force_size_off_gives_qemu_imgs_size_and_geometry() {
    let dir = tempdir();
    for (i, size) in [
        MIB,
        3 * MIB + 512,
        100 * MIB + 3 * 512,
        1_000_000_000,
        4 * GIB,
        30 * GIB + 512,
        127 * GIB,
        200 * GIB,
        MAX,
    ]
    .into_iter()
    .enumerate()
    {
        for sub in ["dynamic", "fixed"] {
            if sub == "fixed" && size > 4 * GIB {
                continue; // qemu-img writes fixed disks out in full
            }
            let ours = dir.path().join(format!("v{i}{sub}.vhd"));
            let theirs = dir.path().join(format!("q{i}{sub}.vhd"));
            let o = format!("subformat={sub}");
            succeeds(vimg!(
                "create -q -f vhd -o",
                format!("{o},force_size=off"),
                &ours,
                size
            ));
            qemu_img!("create -q -f vpc -o", &o, &theirs, size).ok();
            let want = field_u64(&qemu_info(Some("vhd"), &theirs), "virtual-size");
            assert!(want >= size);
            let what = format!("force_size=off {sub} {size}");
            assert_eq!(
                field_u64(&qemu_info(Some("vhd"), &ours), "virtual-size"),
                want,
                "qemu-img's size of vimg's {what}"
            );
            assert_eq!(
                field_u64(&vimg_info(None, &ours), "virtual-size"),
                want,
                "{what}"
            );
            let (fo, ft) = (
                footer_fields(&tail_footer(&ours)),
                footer_fields(&tail_footer(&theirs)),
            );
            assert_eq!(fo.chs, ft.chs, "geometry of {what}");
            assert_eq!(fo.current_size, ft.current_size, "current size of {what}");
            std::fs::remove_file(&ours).unwrap();
            std::fs::remove_file(&theirs).unwrap();
        }
    }
}

// ---------------------------------------------------------------- Azure

#[test]
fn azure_fixed_1000m_is_1000_mib_plus_the_footer() {
    let dir = tempdir();
    let path = dir.path().join("azure.vhd");
    let (_, err) = succeeds(vimg!("create -f vhd -o subformat=fixed", &path, "1000M"));
    assert_eq!(err, "", "no warning for a whole number of MiB");
    assert_eq!(file_len(&path), 1000 * MIB + 512);
    let footer = tail_footer(&path);
    assert!(footer_valid(&footer), "footer checksum");
    let f = footer_fields(&footer);
    assert_eq!(f.disk_type, 2);
    assert_eq!(f.data_offset, u64::MAX, "a fixed disk has no header");
    assert_eq!((f.current_size, f.original_size), (1000 * MIB, 1000 * MIB));
    assert_eq!(&footer[8..12], &[0, 0, 0, 2], "features");
    assert_eq!(&footer[12..16], &[0, 1, 0, 0], "version 1.0");
    assert_eq!(
        field_u64(&qemu_info(Some("vhd"), &path), "virtual-size"),
        1000 * MIB
    );
    let (size, kind, id, _) = pyvhdi_describe(&path);
    assert_eq!((size, kind), (1000 * MIB, 2));
    assert_eq!(id, f.uuid);
    // azure=on leaves a whole-MiB size alone, silently.
    let path = dir.path().join("azure-on.vhd");
    let (_, err) = succeeds(vimg!("create -f vhd -o azure=on", &path, "1000M"));
    assert_eq!(err, "");
    assert_eq!(file_len(&path), 1000 * MIB + 512);
    assert_eq!(footer_fields(&tail_footer(&path)).disk_type, 2);
}

#[test]
fn a_fixed_vhd_that_is_not_whole_mib_warns_about_azure() {
    let dir = tempdir();
    let path = dir.path().join("odd.vhd");
    let (out, err) = succeeds(vimg!(
        "create -f vhd -o subformat=fixed",
        &path,
        "1000000000"
    ));
    assert!(out.contains("size=1000000000"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("vimg: "), "{err}");
    assert!(err.contains("warning") && err.contains("Azure"), "{err}");
    assert!(err.contains("1000000000"), "the size is not named: {err}");
    // The disk is made anyway, with the exact size.
    assert_eq!(file_len(&path), 1_000_000_000 + 512);
    assert_eq!(
        field_u64(&qemu_info(Some("vhd"), &path), "virtual-size"),
        1_000_000_000
    );
    // -q silences it; a dynamic disk never warns.
    let quiet = dir.path().join("quiet.vhd");
    let (out, err) = succeeds(vimg!(
        "create -q -f vhd -o subformat=fixed",
        &quiet,
        "1000000000"
    ));
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let dynamic = dir.path().join("dyn.vhd");
    let (_, err) = succeeds(vimg!("create -f vhd", &dynamic, "1000000000"));
    assert_eq!(err, "");
    // convert to a fixed VHD warns the same way.
    let raw = dir.path().join("src.raw");
    build_raw(&raw, 3 * MIB + 512, 77);
    let out = vimg!(
        "convert -O vhd -o subformat=fixed -f raw",
        &raw,
        &dir.path().join("c.vhd")
    )
    .run();
    assert!(out.status.success());
    let err = out.stderr_text();
    assert!(err.contains("warning") && err.contains("Azure"), "{err}");
}

#[test]
fn azure_on_rounds_up_to_a_whole_mib_and_says_so() {
    let dir = tempdir();
    let path = dir.path().join("az.vhd");
    let want = 1_000_000_000u64.div_ceil(MIB) * MIB;
    let (out, err) = succeeds(vimg!("create -f vhd -o azure=on", &path, "1000000000"));
    assert!(out.contains(&format!("size={want}")), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("rounded"), "{err}");
    assert!(
        err.contains("1000000000") && err.contains(&want.to_string()),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(file_len(&path), want + 512);
    let f = footer_fields(&tail_footer(&path));
    assert_eq!((f.disk_type, f.current_size), (2, want));
    assert_eq!(
        field_u64(&qemu_info(Some("vhd"), &path), "virtual-size"),
        want
    );
    assert_eq!(vimg_vpc_data(&path)["disk-type"], "fixed");

    // convert -o azure=on: a fixed, whole-MiB VHD holding the source.
    let raw = dir.path().join("src.raw");
    build_raw(&raw, 5 * MIB + 3 * 512, 78);
    let vhd = dir.path().join("conv.vhd");
    let out = vimg!("convert -f raw -O vhd -o azure=on", &raw, &vhd).run();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(out.stderr_text().contains("rounded"));
    assert_eq!(file_len(&vhd), 6 * MIB + 512);
    assert_identical("raw", &raw, "vhd", &vhd);
}

#[test]
fn azure_on_with_a_dynamic_subformat_or_rounding_is_refused() {
    let dir = tempdir();
    for opts in [
        "azure=on,subformat=dynamic",
        "subformat=dynamic,azure=on",
        "azure=on,force_size=off",
    ] {
        let path = dir.path().join("x.vhd");
        let out = vimg!("create -f vhd -o", opts, &path, "1000M").one_line_error(&path, opts);
        if opts.contains("dynamic") {
            let err = out.stderr_text();
            assert!(err.contains("azure") && err.contains("fixed"), "{err}");
        }
        assert_eq!(dir_names(dir.path()), Vec::<String>::new(), "{opts}");
    }
}

// ---------------------------------------------------------------- size rule

/// Creators whose disks are sized by the footer's current size.
const CURRENT: [&[u8; 4]; 8] = [
    b"win ", b"qem2", b"d2v ", b"tap\0", b"CTXS", b"wa\0\0", b"vbox", b"vimg",
];
/// Creators whose disks QEMU (and vimg) size by the geometry.
const GEOMETRY: [&[u8; 4]; 2] = [b"vpc ", b"qemu"];

/// A vimg-made VHD (dynamic or fixed) of a size that is not a CHS product,
/// patched to `creator` and to the geometry `chs`; returns what vimg and
/// qemu-img make of it.
fn patched(dir: &Path, sub: &str, creator: &[u8; 4], chs: (u16, u8, u8)) -> (u64, String, u64) {
    let name = format!(
        "{sub}-{}-{}.vhd",
        creator
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        chs.0
    );
    let path = dir.join(&name);
    succeeds(vimg!(
        "create -q -f vhd -o",
        format!("subformat={sub}"),
        &path,
        RULE_SIZE
    ));
    patch_footers(&path, |f| {
        f[28..32].copy_from_slice(creator);
        f[56..58].copy_from_slice(&chs.0.to_be_bytes());
        f[58] = chs.1;
        f[59] = chs.2;
    });
    assert!(footer_valid(&tail_footer(&path)));
    if sub == "dynamic" {
        assert!(footer_valid(&read_at(&path, 0, 512)));
    }
    let v = vimg_info(None, &path);
    let q = qemu_info(Some("vhd"), &path);
    (
        field_u64(&v, "virtual-size"),
        field_str(&v["format-specific"]["data"], "size-source").to_string(),
        field_u64(&q, "virtual-size"),
    )
}

/// 100 MiB + 3 sectors: the specification's geometry addresses less.
const RULE_SIZE: u64 = 100 * MIB + 3 * 512;

fn label(c: &[u8; 4]) -> String {
    String::from_utf8_lossy(c).replace('\0', "\\0")
}

#[test]
fn listed_creators_use_current_size_vpc_and_qemu_use_geometry_like_qemu_img() {
    let dir = tempdir();
    let chs = spec_chs(RULE_SIZE / 512);
    let by_chs = chs_bytes(chs);
    assert!(by_chs < RULE_SIZE, "the geometry must say less: {chs:?}");
    for sub in ["dynamic", "fixed"] {
        for c in CURRENT {
            let (vimg, source, qemu) = patched(dir.path(), sub, c, chs);
            let what = format!("{sub} disk by '{}' with geometry {chs:?}", label(c));
            assert_eq!(vimg, RULE_SIZE, "vimg's size of a {what}");
            assert_eq!(source, "current-size", "{what}");
            assert_eq!(vimg, qemu, "vimg and qemu-img disagree on a {what}");
        }
        for c in GEOMETRY {
            let (vimg, source, qemu) = patched(dir.path(), sub, c, chs);
            let what = format!("{sub} disk by '{}' with geometry {chs:?}", label(c));
            assert_eq!(vimg, by_chs, "vimg's size of a {what}");
            assert_eq!(source, "geometry", "{what}");
            assert_eq!(vimg, qemu, "vimg and qemu-img disagree on a {what}");
        }
        // The maximum geometry means "current size" whoever made the disk.
        for c in CURRENT.iter().chain(GEOMETRY.iter()) {
            let (vimg, source, qemu) = patched(dir.path(), sub, c, (65535, 16, 255));
            let what = format!("{sub} disk by '{}' with the maximum geometry", label(c));
            assert_eq!(vimg, RULE_SIZE, "{what}");
            assert_eq!(source, "current-size", "{what}");
            assert_eq!(vimg, qemu, "vimg and qemu-img disagree on a {what}");
        }
    }
}

/// qemu-img 10 sizes every disk by its current size except those made by
/// Virtual PC ("vpc ") and old QEMU ("qemu") (QEMU commit "vpc: Read
/// images exported from Azure correctly"): FreeBSD mkimg's "*img",
/// Disk2vhd's real "d2v\0" and unknown creators must get the same size
/// from vimg.
#[test]
fn other_creators_are_sized_as_qemu_img_sizes_them() {
    let dir = tempdir();
    let chs = spec_chs(RULE_SIZE / 512);
    let mut wrong = Vec::new();
    for sub in ["dynamic", "fixed"] {
        for c in [b"*img", b"d2v\0", b"xyz!", b"\0\0\0\0", b"VPC "] {
            let (vimg, source, qemu) = patched(dir.path(), sub, c, chs);
            assert!(
                (source == "current-size") == (vimg == RULE_SIZE),
                "size-source {source} does not match the size {vimg}"
            );
            if vimg != qemu {
                wrong.push(format!(
                    "{sub} '{}': vimg {vimg} ({source}), qemu-img {qemu}",
                    label(c)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "vimg and qemu-img disagree:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------- probing

#[test]
fn a_fixed_vhd_is_recognised_by_its_footer_without_f() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    build_raw(&raw, 7 * MIB + 512, 90);
    // Whatever the name says (or does not).
    for name in ["fixed.vhd", "fixed.img", "fixed"] {
        let vhd = dir.path().join(name);
        vimg!("convert -q -f raw -O vhd -o subformat=fixed", &raw, &vhd).ok();
        let v = vimg_info(None, &vhd);
        assert_eq!(field_str(&v, "format"), "vpc", "{name}: {v:#}");
        assert_eq!(field_u64(&v, "virtual-size"), 7 * MIB + 512, "{name}");
        assert_eq!(v["format-specific"]["data"]["disk-type"], "fixed");
        let human = vimg!("info", &vhd).ok();
        assert!(human.contains("file format: vpc\n"), "{human}");
        // Read without -f: the data, not the footer.
        let back = dir.path().join("back.raw");
        vimg!("convert -O raw", &vhd, &back).ok();
        assert_same_bytes(&raw, &back);
        std::fs::remove_file(&back).unwrap();
    }
}

#[test]
fn a_dynamic_vhd_with_a_damaged_trailing_footer_opens_from_the_copy() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    let size = 9 * MIB + 5 * 512;
    build_raw(&raw, size, 91);
    let orig = dir.path().join("orig.vhd");
    vimg!("convert -q -f raw -O vhd", &raw, &orig).ok();
    let len = file_len(&orig);
    let tail = len - 512;
    // (what, offset, bytes to write there; None: flip the byte)
    let damages: [(&str, u64, Option<Vec<u8>>); 4] = [
        ("one byte flipped", tail + 100, None),
        ("checksum flipped", tail + 66, None),
        ("cookie broken", tail, Some(b"CONECTIX".to_vec())),
        ("zeroed", tail, Some(vec![0u8; 512])),
    ];
    for (what, at, bytes) in damages {
        let vhd = dir.path().join("damaged.vhd");
        std::fs::copy(&orig, &vhd).unwrap();
        match bytes {
            None => flip(&vhd, at),
            Some(b) => patch(&vhd, at, &b),
        }
        assert!(!footer_valid(&tail_footer(&vhd)), "{what}");
        let v = vimg_info(None, &vhd);
        assert_eq!(field_str(&v, "format"), "vpc", "{what}");
        assert_eq!(field_u64(&v, "virtual-size"), size, "{what}");
        assert_eq!(
            v["format-specific"]["data"]["disk-type"], "dynamic",
            "{what}"
        );
        let back = dir.path().join("back.raw");
        vimg!("convert -O raw", &vhd, &back).ok();
        assert_same_bytes(&raw, &back);
        std::fs::remove_file(&back).unwrap();
        std::fs::remove_file(&vhd).unwrap();
    }
}

// ---------------------------------------------------------------- info

#[test]
fn info_shows_the_footer_fields_as_stored() {
    let dir = tempdir();
    for (name, opts, kind) in [
        ("d.vhd", "block_size=512K", "dynamic"),
        ("f.vhd", "subformat=fixed", "fixed"),
    ] {
        let path = dir.path().join(name);
        succeeds(vimg!("create -q -f vhd -o", opts, &path, "3M"));
        let footer = tail_footer(&path);
        let f = footer_fields(&footer);
        let v = vimg_info(None, &path);
        let d = &v["format-specific"]["data"];
        assert_eq!(v["format-specific"]["type"], "vpc", "{v:#}");
        assert_eq!(d["disk-type"], kind, "{v:#}");
        assert_eq!(d["creator-app"], "vimg");
        let version = be32(&footer, 32);
        assert_eq!(
            d["creator-version"],
            format!("{}.{}", version >> 16, version & 0xffff).as_str()
        );
        let pkg: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
        assert_eq!(
            d["creator-version"],
            format!("{}.{}", pkg[0], pkg[1]).as_str()
        );
        assert_eq!(
            d["creator-os"],
            String::from_utf8_lossy(&footer[36..40]).trim()
        );
        assert_eq!(d["uuid"], f.uuid.as_str());
        assert_eq!(d["saved-state"], footer[84] != 0);
        assert_eq!(field_u64(d, "current-size"), 3 * MIB);
        // 3 MiB = 6144 sectors, not a CHS product: the maximum geometry.
        assert_eq!(f.chs, (65535, 16, 255));
        assert_eq!(
            (
                field_u64(&d["geometry"], "cylinders"),
                field_u64(&d["geometry"], "heads"),
                field_u64(&d["geometry"], "sectors")
            ),
            (65535, 16, 255)
        );
        assert_eq!(d["size-source"], "current-size");
        if kind == "dynamic" {
            assert_eq!(field_u64(d, "block-size"), 512 * KIB);
            assert_eq!(field_u64(&v, "cluster-size"), 512 * KIB);
        } else {
            assert!(d.get("block-size").is_none(), "{v:#}");
        }
        assert!(d.get("parent-uuid").is_none(), "{v:#}");
        // The same in the human form.
        let human = vimg!("info", &path).ok();
        for line in [
            format!("disk type: {kind}"),
            "creator app: vimg".to_string(),
            format!("uuid: {}", f.uuid),
            "size source: current-size".to_string(),
        ] {
            assert!(human.contains(&line), "no '{line}' in:\n{human}");
        }
        // pyvhdi agrees on the identity.
        assert_eq!(pyvhdi_describe(&path).2, f.uuid);
    }
}

#[test]
fn block_sizes_from_512k_to_256m_powers_of_two() {
    let dir = tempdir();
    for (arg, bytes) in [
        ("512K", 512 * KIB),
        ("1M", MIB),
        ("64M", 64 * MIB),
        ("256M", 256 * MIB),
    ] {
        let path = dir.path().join(format!("b{arg}.vhd"));
        let size = GIB + 512;
        succeeds(vimg!(
            "create -q -f vhd -o",
            format!("block_size={arg}"),
            &path,
            size
        ));
        let q = qemu_info(None, &path);
        assert_eq!(field_u64(&q, "cluster-size"), bytes, "{arg}: {q:#}");
        assert_eq!(field_u64(&q, "virtual-size"), size, "{arg}");
        let h = dyn_header(&path);
        assert_eq!(h.block_size as u64, bytes);
        assert_eq!(
            h.max_entries as u64,
            size.div_ceil(bytes),
            "{arg}: BAT entries"
        );
        // qemu-io can write into the last, partial block, and vimg reads it.
        qemu_io("vhd", &path, &[format!("write -P 0x3c {} 512", size - 512)]);
        let raw = dir.path().join("out.raw");
        vimg!("convert -O raw", &path, &raw).ok();
        assert_eq!(read_at(&raw, size - 512, 512), vec![0x3c; 512], "{arg}");
        assert_identical("vhd", &path, "raw", &raw);
        std::fs::remove_file(&raw).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
    for bad in ["256K", "512M", "3M", "1000K", "0", "511K"] {
        let path = dir.path().join("bad.vhd");
        vimg!("create -f vhd -o", format!("block_size={bad}"), &path, "1G")
            .one_line_error(&path, &format!("block_size={bad}"));
        assert_eq!(dir_names(dir.path()), Vec::<String>::new(), "{bad}");
    }
}
