//! VMDK create options: `adapter_type`, `hwversion`, `compat6` and
//! `toolsversion` land in the descriptor's disk database (read from the
//! file itself and through `vimg info`), bad values are refused; and
//! `zeroed_grain` images that qemu-io writes zeros into (whole grains and
//! partial ones) read back right and pass `qemu-img check`.

use std::path::Path;

use crate::support::vmdk::*;
use crate::support::*;

/// Make `name` with `vimg create` or `vimg convert` (from `src`) and the
/// given `-o` options.
fn make(dir: &Path, name: &str, opts: &str, src: Option<&Path>) -> std::path::PathBuf {
    let image = dir.join(name);
    match src {
        None => vimg!("create -q -f vmdk -o", opts, &image, "300M").ok(),
        Some(src) => vimg!("convert -q -O vmdk -o", opts, src, &image).ok(),
    };
    image
}

/// The disk database of `image` holds `want` (key, value) and vimg info
/// reports adapter and hardware version.
fn assert_ddb(image: &Path, adapter: &str, hw: &str, tools: &str) {
    let text = descriptor_text(image);
    for (key, want) in [
        ("ddb.adapterType", adapter),
        ("ddb.virtualHWVersion", hw),
        ("ddb.toolsVersion", tools),
    ] {
        assert_eq!(
            desc_value(&text, key).as_deref(),
            Some(want),
            "{key} in {}:\n{text}",
            image.display()
        );
        // Written as VMware writes it: key = "value".
        assert!(
            text.contains(&format!("{key} = \"{want}\"")),
            "{key} spelling in:\n{text}"
        );
    }
    let heads = if adapter == "ide" { "16" } else { "255" };
    assert_eq!(
        desc_value(&text, "ddb.geometry.heads").as_deref(),
        Some(heads)
    );
    assert_eq!(
        desc_value(&text, "ddb.geometry.sectors").as_deref(),
        Some("63")
    );
    let info = vimg_info(None, image);
    let data = &info["format-specific"]["data"];
    assert_eq!(data["adapter-type"], adapter, "{info:#}");
    assert_eq!(data["hardware-version"], hw, "{info:#}");
    assert_eq!(
        data["geometry"]["heads"],
        heads.parse::<u64>().unwrap(),
        "{info:#}"
    );
    // qemu-img still opens it.
    let q = qemu_info(Some("vmdk"), image);
    assert_eq!(
        field_u64(&q, "virtual-size"),
        field_u64(&info, "virtual-size")
    );
}

#[test]
fn disk_database_options_land_in_the_descriptor() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    build_raw(&src, 3 * MIB, 0x0b_0001);
    let cases = [
        // (subformat, options, adapter, hwversion, toolsversion)
        ("monolithicSparse", "", "ide", "4", "2147483647"),
        (
            "monolithicSparse",
            "adapter_type=lsilogic,hwversion=7,toolsversion=10240",
            "lsilogic",
            "7",
            "10240",
        ),
        (
            "twoGbMaxExtentFlat",
            "adapter_type=buslogic,compat6",
            "buslogic",
            "6",
            "2147483647",
        ),
        (
            "monolithicFlat",
            "adapter_type=legacyESX,hwversion=21",
            "legacyESX",
            "21",
            "2147483647",
        ),
        (
            "twoGbMaxExtentSparse",
            "compat6,toolsversion=0",
            "ide",
            "6",
            "0",
        ),
        (
            "streamOptimized",
            "adapter_type=lsilogic,hwversion=13,toolsversion=12352",
            "lsilogic",
            "13",
            "12352",
        ),
    ];
    for (i, (sub, opts, adapter, hw, tools)) in cases.into_iter().enumerate() {
        let all = if opts.is_empty() {
            format!("subformat={sub}")
        } else {
            format!("subformat={sub},{opts}")
        };
        let created = make(d, &format!("c{i}.vmdk"), &all, None);
        assert_ddb(&created, adapter, hw, tools);
        let converted = make(d, &format!("v{i}.vmdk"), &all, Some(&src));
        assert_ddb(&converted, adapter, hw, tools);
        assert_identical("raw", &src, "vmdk", &converted);
        if is_sparse(sub) {
            assert_qemu_check(&created);
            assert_qemu_check(&converted);
        }
        // libvmdk takes the descriptor too.
        assert_pyvmdk_reads(&converted, &src, 3 * MIB, &[]);
    }
    // A stream written into a pipe carries them as well.
    let piped_dir = d.join("piped");
    std::fs::create_dir(&piped_dir).unwrap();
    let piped = piped_dir.join("src.vmdk");
    vimg!(
        "convert -c -O vmdk -o adapter_type=buslogic,hwversion=10,toolsversion=9",
        &src,
        "-"
    )
    .run_into_pipe(&piped);
    assert_ddb(&piped, "buslogic", "10", "9");
}

#[test]
fn bad_disk_database_options_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    build_raw(&src, MIB, 0x0b_0002);
    let before = dir_names(d);
    for opts in [
        "adapter_type=scsi",
        "adapter_type=IDE",
        "adapter_type=",
        "hwversion=abc",
        "hwversion=-1",
        "hwversion=7.5",
        "toolsversion=x",
        "toolsversion=-3",
        "compat6,hwversion=7",
        "compat6=maybe",
        "adapter_type",
        "zeroed_grain,subformat=monolithicFlat",
        "zeroed_grain,subformat=twoGbMaxExtentFlat",
        "subformat=monolithicsparse",
        "no_such_option=1",
    ] {
        let image = d.join("bad.vmdk");
        vimg!("create -f vmdk -o", opts, &image, "10M")
            .one_line_error(&image, &format!("create -o {opts}"));
        vimg!("convert -O vmdk -o", opts, &src, &image)
            .one_line_error(&image, &format!("convert -o {opts}"));
        assert_eq!(dir_names(d), before, "-o {opts} left files behind");
    }
}

/// qemu-io writes: data, then zeros over whole aligned grains (over data
/// and over nothing), partial grains, and ranges crossing grains and the
/// extent boundary at `split` (when the image has one).
fn zero_writes(size: u64, split: Option<u64>) -> Vec<String> {
    let mut cmds: Vec<String> = [
        "write -P 0xab 0 4M",
        "write -z 64k 128k",
        "write -z 1M 1000",
        "write -z 1600000 200000",
        "write -z 3M 2M",
        "write -z 10M 64k",
        "write -P 0x31 20M 64k",
        "write -z 20M 64k",
        "write -P 0x32 21M 128k",
        "write -z 1081344 1",
        "write -z 22085632 512",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    if let Some(at) = split {
        cmds.push(format!("write -P 0x44 {} 256k", at - 128 * KIB));
        cmds.push(format!("write -z {} 128k", at - 64 * KIB));
        cmds.push(format!("write -z {} 3000", at + 64 * KIB + 100));
    }
    cmds.push(format!("write -P 0x55 {} 64k", size - 64 * KIB));
    cmds.push(format!("write -z {} 64k", size - 64 * KIB));
    cmds
}

/// Apply `cmds` to `image` with qemu-io and to a raw reference, then check
/// the image with qemu-img and read it through vimg.
fn zeroed_roundtrip(dir: &Path, image: &Path, size: u64, cmds: &[String]) {
    qemu_io("vmdk", image, cmds);
    let reference = zero_raw(&dir.join("reference.raw"), size);
    qemu_io("raw", &reference, cmds);
    assert_qemu_check(image);
    assert_identical("raw", &reference, "vmdk", image);
    // The writes did produce zeroed-grain entries: qemu-img map shows
    // allocated ranges that read as zeros without data.
    let map = qemu_img!("map --output json -f vmdk", image).json();
    let zeroed = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["present"] == true && m["zero"] == true && m["data"] == false)
        .count();
    assert!(
        zeroed >= 3,
        "no zeroed grains in {}: {map:#}",
        image.display()
    );
    let out = vimg_to_raw(image, &dir.join("out.raw"));
    assert_identical("raw", &reference, "raw", &out);
    if size <= 64 * MIB {
        assert_same_bytes(&reference, &out);
    }
    // vimg carries the zeros on into a new image.
    let again = dir.join("again.vmdk");
    vimg!("convert -q -O vmdk --force", image, &again).ok();
    assert_identical("raw", &reference, "vmdk", &again);
    for f in [reference, out] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn zeroed_grain_written_by_qemu_io_reads_back() {
    let dir = tempdir();
    let d = dir.path();
    // vimg's monolithicSparse with zeroed_grain: header v2, flag bit 2.
    let size = 48 * MIB + 3 * 512;
    let mono = d.join("mono.vmdk");
    vimg!("create -q -f vmdk -o zeroed_grain", &mono, size).ok();
    let h = kdmv_header(&mono);
    assert_eq!(h.version, 2, "{h:?}");
    assert_ne!(h.flags & 4, 0, "zeroed-grain flag: {h:?}");
    zeroed_roundtrip(d, &mono, size, &zero_writes(size, None));

    // twoGbMaxExtentSparse with zeroed_grain, zeros across the 2047 MiB
    // extent boundary.
    let size = SPLIT + 8 * MIB;
    let split = d.join("split.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse,zeroed_grain",
        &split,
        size
    )
    .ok();
    for name in ["split-s001.vmdk", "split-s002.vmdk"] {
        let h = kdmv_header(&d.join(name));
        assert_ne!(h.flags & 4, 0, "{name}: {h:?}");
    }
    zeroed_roundtrip(d, &split, size, &zero_writes(size, Some(SPLIT)));

    // qemu-img's own zeroed_grain image.
    let size = 40 * MIB;
    let qemu = d.join("qemu.vmdk");
    qemu_img!("create -f vmdk -o zeroed_grain=on", &qemu, size).ok();
    zeroed_roundtrip(d, &qemu, size, &zero_writes(size, None));
}

#[test]
fn zero_writes_without_zeroed_grain_read_back() {
    // Without the zeroed-grain flag qemu writes real zeros (or leaves the
    // grain unallocated): vimg must read the same.
    let dir = tempdir();
    let d = dir.path();
    let size = 30 * MIB;
    let image = d.join("plain.vmdk");
    vimg!("create -q -f vmdk", &image, size).ok();
    let cmds = zero_writes(size, None);
    qemu_io("vmdk", &image, &cmds);
    let reference = zero_raw(&d.join("reference.raw"), size);
    qemu_io("raw", &reference, &cmds);
    assert_qemu_check(&image);
    let out = vimg_to_raw(&image, &d.join("out.raw"));
    assert_same_bytes(&reference, &out);
}
