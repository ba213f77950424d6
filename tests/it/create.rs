//! Images made by `vimg create` as qemu-img (and libvhdi) see them: the
//! right format, the exact virtual size, and for VMDK a clean
//! `qemu-img check`. VHD sizes are tried on both sides of CHS
//! representability (acceptance items 1 and 6).

use crate::support::*;

/// Sizes with odd corners: whole GiB, one sector past a GiB, sector
/// multiples that are not grain or block multiples, small disks.
const SIZES: [u64; 8] = [
    10 * GIB,
    GIB + 512,
    100 * MIB + 3 * 512,
    5 * MIB,
    512,
    64 * KIB + 512,
    2 * MIB - 512,
    37 * GIB + 7 * 512,
];

/// The chunk of `vimg info --output json` and `qemu-img info --output json`
/// that must agree for a vimg-made image.
fn check_info(fmt: &str, qemu_needs_fmt: bool, path: &std::path::Path, size: u64) {
    let q = qemu_info(qemu_needs_fmt.then_some(fmt), path);
    assert_eq!(
        field_str(&q, "format"),
        qemu_fmt(fmt),
        "{}: {q:#}",
        path.display()
    );
    assert_eq!(
        field_u64(&q, "virtual-size"),
        size,
        "qemu-img's virtual size of {}",
        path.display()
    );
    let v = vimg_info(None, path);
    assert_eq!(field_str(&v, "format"), qemu_fmt(fmt), "{v:#}");
    assert_eq!(
        field_u64(&v, "virtual-size"),
        size,
        "vimg's virtual size of {}",
        path.display()
    );
    // Same answer when the format is given.
    let vf = vimg_info(Some(fmt), path);
    assert_eq!(field_u64(&vf, "virtual-size"), size);
    if let Some(c) = q.get("cluster-size") {
        assert_eq!(
            Some(c),
            v.get("cluster-size"),
            "cluster-size of {}: qemu {q:#} vimg {v:#}",
            path.display()
        );
    }
}

#[test]
fn vmdk_passes_qemu_img_check_with_the_exact_size() {
    let dir = tempdir();
    for (i, &size) in SIZES.iter().enumerate() {
        let path = dir.path().join(format!("d{i}.vmdk"));
        let out = vimg!("create -f vmdk", &path, size).ok();
        assert_eq!(
            out.trim(),
            format!("Formatting '{}', fmt=vmdk size={size}", path.display())
        );
        let check = qemu_img!("check -f vmdk", &path).ok();
        assert!(check.contains("No errors were found"), "{check}");
        check_info("vmdk", false, &path, size);
        let q = qemu_info(None, &path);
        assert_eq!(field_u64(&q, "cluster-size"), 65536);
        assert_eq!(
            q["format-specific"]["data"]["create-type"], "monolithicSparse",
            "{q:#}"
        );
    }
}

#[test]
fn vmdk_size_suffixes_and_limits() {
    let dir = tempdir();
    // Suffixes as qemu-img reads them; a partial sector is rounded up.
    for (arg, size) in [
        ("10G", 10 * GIB),
        ("5M", 5 * MIB),
        ("1.5G", 3 * GIB / 2),
        ("1000", 1024),
        ("2T", 2 << 40),
    ] {
        let path = dir.path().join(format!("s{arg}.vmdk"));
        vimg!("create -q -f vmdk", &path, arg).ok();
        check_info("vmdk", false, &path, size);
    }
    // A sparse extent addresses 2 TiB at most: one sector more is refused.
    let path = dir.path().join("too-big.vmdk");
    vimg!("create -f vmdk", &path, ((2u64 << 40) + 512))
        .one_line_error(&path, "create a 2 TiB + 512 VMDK");
    assert!(!path.exists());
}

#[test]
fn dynamic_vhd_has_the_exact_size_in_qemu_img() {
    let dir = tempdir();
    for (i, &size) in SIZES.iter().enumerate() {
        let path = dir.path().join(format!("d{i}.vhd"));
        let out = vimg!("create -f vhd", &path, size).ok();
        assert_eq!(
            out.trim(),
            format!("Formatting '{}', fmt=vpc size={size}", path.display())
        );
        check_info("vhd", false, &path, size);
        let v = vimg_info(None, &path);
        assert_eq!(v["format-specific"]["data"]["disk-type"], "dynamic");
    }
}

#[test]
fn fixed_vhd_has_the_exact_size_in_qemu_img() {
    let dir = tempdir();
    for (i, &size) in SIZES.iter().enumerate() {
        let path = dir.path().join(format!("f{i}.vhd"));
        vimg!("create -q -f vhd -o subformat=fixed", &path, size).ok();
        // Data, then the 512-byte footer.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size + 512);
        // qemu-img cannot probe a fixed VHD: -f vpc.
        check_info("vhd", true, &path, size);
        let v = vimg_info(None, &path);
        assert_eq!(v["format-specific"]["data"]["disk-type"], "fixed");
    }
}

/// Sector counts that the VHD specification's CHS algorithm addresses
/// exactly, one for each of its sectors-per-track branches (17, 31, 63,
/// 255), and sizes that it does not.
const CHS_EXACT: [u64; 4] = [
    121 * 4 * 17 * 512,
    600 * 16 * 31 * 512,
    1000 * 16 * 63 * 512,
    40000 * 16 * 255 * 512,
];
const NOT_CHS: [u64; 6] = [
    10 * GIB,
    GIB + 512,
    512 * MIB,
    5 * MIB + 512,
    100 * MIB + 3 * 512,
    200 * GIB,
];

#[test]
fn vhd_sizes_are_exact_whether_or_not_chs_can_express_them() {
    let dir = tempdir();
    for (i, &size) in CHS_EXACT.iter().chain(NOT_CHS.iter()).enumerate() {
        for (sub, qemu_needs_fmt) in [("dynamic", false), ("fixed", true)] {
            let path = dir.path().join(format!("{sub}{i}.vhd"));
            vimg!(
                "create -q -f vpc -o",
                format!("subformat={sub}"),
                &path,
                size
            )
            .ok();
            check_info("vhd", qemu_needs_fmt, &path, size);
            assert_eq!(
                pyvhdi_describe(&path).0,
                size,
                "libvhdi's size of {sub} {size}"
            );
            let v = vimg_info(None, &path);
            let data = &v["format-specific"]["data"];
            assert_eq!(field_u64(data, "current-size"), size, "{v:#}");
            let g = &data["geometry"];
            let chs = field_u64(g, "cylinders") * field_u64(g, "heads") * field_u64(g, "sectors");
            if CHS_EXACT.contains(&size) {
                // qemu-img sizes a disk of an unknown creator by its
                // geometry: it must address the disk exactly.
                assert_eq!(chs * 512, size, "geometry of {size}: {g}");
            } else {
                assert_eq!(
                    (
                        field_u64(g, "cylinders"),
                        field_u64(g, "heads"),
                        field_u64(g, "sectors")
                    ),
                    (65535, 16, 255),
                    "geometry of {size}"
                );
            }
        }
    }
}

#[test]
fn vhd_force_size_off_rounds_like_qemu_img() {
    let dir = tempdir();
    for (i, size) in [
        1_000_000_000u64,
        8 * GIB,
        4 * MIB,
        100 * MIB + 3 * 512,
        4_212_736,
    ]
    .into_iter()
    .enumerate()
    {
        let ours = dir.path().join(format!("v{i}.vhd"));
        let theirs = dir.path().join(format!("q{i}.vhd"));
        vimg!("create -q -f vhd -o force_size=off", &ours, size).ok();
        qemu_img!("create -q -f vpc", &theirs, size).ok();
        let want = field_u64(&qemu_info(None, &theirs), "virtual-size");
        assert!(want >= size);
        assert_eq!(
            field_u64(&qemu_info(None, &ours), "virtual-size"),
            want,
            "qemu-img's size of a force_size=off {size}-byte vimg VHD"
        );
        assert_eq!(field_u64(&vimg_info(None, &ours), "virtual-size"), want);
        assert_eq!(field_u64(&vimg_info(None, &theirs), "virtual-size"), want);
    }
}

#[test]
fn vhd_size_limit_is_2040_gib() {
    let dir = tempdir();
    let max = 2040 * GIB;
    let path = dir.path().join("max.vhd");
    vimg!("create -q -f vhd", &path, "2040G").ok();
    check_info("vhd", false, &path, max);
    let path = dir.path().join("over.vhd");
    vimg!("create -f vhd", &path, (max + 512)).one_line_error(&path, "create a 2040 GiB + 512 VHD");
    assert!(!path.exists());
    assert_eq!(dir_names(dir.path()), ["max.vhd"]);
}

#[test]
fn human_info_names_format_and_exact_size() {
    let dir = tempdir();
    let size = GIB + 512;
    for (fmt, opts, name) in [
        ("vmdk", "", "h.vmdk"),
        ("vhd", "subformat=dynamic", "h.vhd"),
        ("vhd", "subformat=fixed", "hf.vhd"),
    ] {
        let path = dir.path().join(name);
        let opts = (!opts.is_empty()).then_some(opts);
        let create = vimg!("create -q -f", fmt).opt("-o", opts);
        // -q prints nothing.
        assert_eq!(create.arg(&path).arg(size).ok(), "");
        let ps = path.display().to_string();
        let human = vimg!("info", &path).ok();
        assert!(
            human.contains(&format!("file format: {}\n", qemu_fmt(fmt))),
            "{human}"
        );
        assert!(human.contains(&format!("({size} bytes)")), "{human}");
        assert!(human.starts_with(&format!("image: {ps}\n")), "{human}");
    }
}

#[test]
fn a_parent_of_another_format_is_named_before_anything_is_made() {
    let dir = tempdir();
    let d = dir.path();
    let vmdk = d.join("base.vmdk");
    let vhd = d.join("base.vhd");
    vimg!("create -q -f vmdk", &vmdk, "8M").ok();
    vimg!("create -q -f vhd", &vhd, "8M").ok();
    for (line, parent, says) in [
        ("create -f vmdk -b base.vmdk -F vhd", &vmdk, "-F says VHD"),
        ("create -f vhd -b base.vmdk", &vmdk, "it is VMDK"),
        ("create -f vmdk -b base.vhd", &vhd, "it is VHD"),
        ("create -f vhd -b base.vmdk -F vhd", &vmdk, "it is VMDK"),
    ] {
        let out = d.join("delta.img");
        let err = vimg!().words(line).arg(&out).run();
        assert_eq!(err.code(), Some(1), "{line}: {err:?}");
        let text = err.stderr_text();
        assert!(
            text.contains(&parent.display().to_string()),
            "{line}: {text}"
        );
        assert!(
            text.contains("needs a") && text.contains(says),
            "{line}: {text}"
        );
        assert!(!out.exists(), "{line}");
    }
}
