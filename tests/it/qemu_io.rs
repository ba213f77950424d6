//! Data that qemu-io writes into vimg-made images reads back through vimg
//! exactly: `vimg convert -O raw` of the image equals both qemu's reading
//! of it and a raw disk that got the same writes (acceptance item 2).

use std::path::Path;

use crate::support::*;

/// Disk size: a sector multiple that is neither a grain (64 KiB) nor a
/// block (2 MiB) multiple, so the last grain and block are partial.
const SIZE: u64 = 120 * MIB + 3 * 512;

/// Writes at unaligned offsets, across grain and block boundaries, zero
/// writes over data and over nothing, the first and the last byte, then
/// random ones from `seed`.
fn writes(seed: u64) -> Vec<String> {
    let mut cmds: Vec<String> = [
        "write -P 0xab 1M 3M",
        "write -P 0x11 100M 64k",
        "write -z 1536K 1M",
        "write -P 0x22 65535 2",
        "write -P 0x33 2097151 1025",
        "write -P 0x44 0 1",
        "write -P 0x66 6291356 300",
        "write -z 104858600 10000",
        "write -z 50M 4M",
        "write -P 0x77 8388607 16777218",
        "write -z 9437183 65538",
        "write -P 0x88 131071 131074",
        "write -P 0x5a 20M 4M",
        "write -z -u 20M 3M",
        "write -z -u 21000000 70000",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    cmds.push(format!("write -P 0x55 {} 1", SIZE - 1));
    cmds.push(format!("write -P 0x99 {} 70000", SIZE - 70000));
    cmds.push(format!("write -z {} 777", SIZE - 1000));
    let mut rng = Rng::new(seed);
    for _ in 0..40 {
        let len = match rng.below(3) {
            0 => rng.range(1, 600),
            1 => rng.range(600, 70 * KIB),
            _ => rng.range(70 * KIB, 3 * MIB),
        };
        let at = rng.below(SIZE - len + 1);
        if rng.chance(20) {
            cmds.push(format!("write -z {at} {len}"));
        } else {
            cmds.push(format!("write -P {:#04x} {at} {len}", rng.nonzero_byte()));
        }
    }
    cmds
}

/// Create `name` with vimg (`fmt`, extra `-o` options), let qemu-io write
/// into it, and check what vimg reads back.
fn roundtrip(dir: &Path, fmt: &str, opts: Option<&str>, name: &str, seed: u64) {
    let image = dir.join(name);
    vimg!("create -q -f", fmt)
        .opt("-o", opts)
        .arg(&image)
        .arg(SIZE)
        .ok();
    let cmds = writes(seed);
    qemu_io(fmt, &image, &cmds);

    // The same writes on a raw disk: what the image must now hold.
    let reference = dir.join("reference.raw");
    zero_raw(&reference, SIZE);
    qemu_io("raw", &reference, &cmds);

    if fmt == "vmdk" {
        let check = qemu_img!("check -f vmdk", &image).ok();
        assert!(check.contains("No errors were found"), "{check}");
    }
    // qemu reads back what it wrote (guards the oracle itself).
    assert_identical("raw", &reference, fmt, &image);

    // vimg still sees the same disk.
    let info = vimg_info(None, &image);
    assert_eq!(field_u64(&info, "virtual-size"), SIZE);
    assert_eq!(field_str(&info, "format"), qemu_fmt(fmt));

    let out = dir.join("out.raw");
    vimg!("convert -q -O raw", &image, &out).ok();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), SIZE);
    assert_identical(fmt, &image, "raw", &out);
    assert_identical("raw", &reference, "raw", &out);
    // Byte for byte, not only as qemu-img compare sees it.
    assert_same_bytes(&reference, &out);

    // And into the other sparse format, read by qemu.
    for (target_fmt, target) in [("vmdk", "out.vmdk"), ("vhd", "out.vhd")] {
        let target = dir.join(target);
        vimg!("convert -O", target_fmt, &image, &target, "--force").ok();
        assert_identical("raw", &reference, target_fmt, &target);
    }
}

#[test]
fn qemu_io_writes_into_vimg_vmdk_read_back_identical() {
    let dir = tempdir();
    roundtrip(dir.path(), "vmdk", None, "disk.vmdk", 1);
}

#[test]
fn qemu_io_writes_into_vimg_dynamic_vhd_read_back_identical() {
    let dir = tempdir();
    roundtrip(dir.path(), "vhd", None, "disk.vhd", 2);
}

#[test]
fn qemu_io_writes_into_vimg_small_block_vhd_read_back_identical() {
    let dir = tempdir();
    roundtrip(dir.path(), "vhd", Some("block_size=512K"), "disk.vhd", 3);
}

#[test]
fn qemu_io_writes_into_vimg_fixed_vhd_read_back_identical() {
    let dir = tempdir();
    roundtrip(dir.path(), "vhd", Some("subformat=fixed"), "disk.vhd", 4);
}

#[test]
fn qemu_io_writes_into_vimg_vmdk_with_options_read_back_identical() {
    let dir = tempdir();
    roundtrip(
        dir.path(),
        "vmdk",
        Some("adapter_type=lsilogic,hwversion=7"),
        "disk.vmdk",
        5,
    );
}

#[test]
fn qemu_io_writes_into_vimg_zeroed_grain_vmdk_read_back_identical() {
    // With zeroed_grain, qemu marks whole zeroed grains in the grain table
    // instead of writing zeros: vimg must read those as zeros.
    let dir = tempdir();
    roundtrip(dir.path(), "vmdk", Some("zeroed_grain"), "disk.vmdk", 6);
}
