//! Raw disks of odd sizes (neither whole 2 MiB blocks nor CHS products)
//! converted to dynamic and fixed VHDs, and to dynamic VHDs with 512 KiB
//! and 16 MiB blocks: qemu-img must find them identical to the source
//! (`-f vpc`) and of exactly the source's size, libvhdi (pyvhdi) must read
//! the same size and bytes, and vimg must read the source back.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::support::vhd::*;
use crate::support::*;

/// 1,000,000,000 bytes, mostly holes: data at the start, at the end (last
/// byte included), around many 512 KiB / 2 MiB / 16 MiB block edges and at
/// random places. Returns where data was written.
fn sparse_billion(path: &Path, seed: u64) -> Vec<(u64, u64)> {
    let size = 1_000_000_000u64;
    let mut rng = Rng::new(seed);
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut pieces = Vec::new();
    let mut put = |at: u64, len: u64, rng: &mut Rng| {
        let len = len.min(size - at);
        f.write_all_at(&rng.bytes(len as usize), at).unwrap();
        pieces.push((at, len));
    };
    put(0, 70_000, &mut rng);
    for edge in [512 * KIB, 2 * MIB, 16 * MIB, 64 * MIB, 500 * MIB] {
        put(edge - 3, 7, &mut rng);
    }
    for _ in 0..12 {
        let at = rng.below(size);
        let len = rng.range(1, 200 * KIB);
        put(at, len, &mut rng);
    }
    // The last, partial 2 MiB block: data in it and the very last byte.
    put(size - 300_000, 1000, &mut rng);
    put(size - 1, 1, &mut rng);
    assert_eq!(file_len(path), size);
    pieces
}

/// Convert `raw` to a VHD with `opts` and check it from every side.
/// libvhdi compares the whole disk unless `py_ranges` limits it.
fn check_conversion(
    dir: &Path,
    raw: &Path,
    name: &str,
    opts: &str,
    block: Option<u64>,
    py_ranges: Option<&[(u64, u64)]>,
) {
    let size = sector_up(file_len(raw));
    let vhd = dir.join(name);
    let fixed = opts.contains("subformat=fixed");
    vimg!("convert -f raw -O vhd -o", opts, raw, &vhd).ok();
    let what = format!("{name} ({opts}) from a {size}-byte raw disk");

    // qemu-img: the same content, exactly the source's size.
    assert_identical("raw", raw, "vhd", &vhd);
    let q = qemu_info(Some("vhd"), &vhd);
    assert_eq!(
        field_u64(&q, "virtual-size"),
        size,
        "qemu-img size of {what}"
    );
    if let Some(b) = block {
        assert_eq!(field_u64(&q, "cluster-size"), b, "qemu-img block of {what}");
    }

    // The footer: exact size, fixed or dynamic, a geometry every reader
    // agrees on (exact CHS or the maximum).
    let footer = tail_footer(&vhd);
    assert!(footer_valid(&footer), "{what}: trailing footer");
    let ff = footer_fields(&footer);
    assert_eq!(&ff.creator_app, b"vimg", "{what}");
    assert_eq!(ff.current_size, size, "{what}: current size");
    assert_eq!(ff.original_size, size, "{what}: original size");
    assert_eq!(ff.disk_type, if fixed { 2 } else { 3 }, "{what}: disk type");
    assert!(
        ff.chs == (65535, 16, 255) || chs_bytes(ff.chs) == size,
        "{what}: geometry {:?} neither exact nor the maximum",
        ff.chs
    );
    if fixed {
        assert_eq!(file_len(&vhd), size + 512, "{what}: fixed file length");
    } else {
        let h = dyn_header(&vhd);
        assert_eq!(h.block_size as u64, block.unwrap_or(2 * MIB), "{what}");
        assert_eq!(
            h.max_entries as u64,
            size.div_ceil(h.block_size as u64),
            "{what}: BAT entries"
        );
        assert!(footer_valid(&read_at(&vhd, 0, 512)), "{what}: footer copy");
    }

    // vimg's own view.
    let v = vimg_info(None, &vhd);
    assert_eq!(field_u64(&v, "virtual-size"), size, "{v:#}");
    let data = &v["format-specific"]["data"];
    assert_eq!(
        data["disk-type"],
        if fixed { "fixed" } else { "dynamic" },
        "{v:#}"
    );
    assert_eq!(data["size-source"], "current-size", "{v:#}");
    if let Some(b) = block {
        assert_eq!(field_u64(data, "block-size"), b, "{v:#}");
    }

    // libvhdi: same size, same bytes.
    match py_ranges {
        None => assert_pyvhdi_reads(&vhd, &[], raw, &[]),
        Some(r) => assert_pyvhdi_reads(&vhd, &[], raw, r),
    }

    // vimg reads the source back: same length, same bytes (qemu-img
    // compares two raw files by their data and holes).
    let back = dir.join(format!("{name}.back.raw"));
    vimg!("convert -O raw", &vhd, &back).ok();
    assert_eq!(file_len(&back), size, "{what}: raw read back");
    assert_identical("raw", raw, "raw", &back);
    std::fs::remove_file(&back).unwrap();
    std::fs::remove_file(&vhd).unwrap();
}

#[test]
fn fifty_mib_and_three_sectors_dynamic_fixed_and_block_sizes() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    let size = 50 * MIB + 3 * 512;
    build_raw(&raw, size, 0x5eed_0001);
    assert_ne!(chs_bytes(spec_chs(size / 512)), size, "not a CHS product");
    for (name, opts, block) in [
        ("dyn.vhd", "subformat=dynamic", None),
        ("fixed.vhd", "subformat=fixed", None),
        ("b512k.vhd", "block_size=512K", Some(512 * KIB)),
        ("b16m.vhd", "block_size=16M", Some(16 * MIB)),
    ] {
        check_conversion(dir.path(), &raw, name, opts, block, None);
    }
}

#[test]
fn one_billion_bytes_sparse_dynamic_fixed_and_block_sizes() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    let pieces = sparse_billion(&raw, 0x5eed_0002);
    assert_ne!(chs_bytes(spec_chs(1_000_000_000 / 512)), 1_000_000_000);
    // libvhdi is slow on big disks (~50 s for this one with 16 MiB blocks):
    // it checks every piece of data with 64 KiB of margin on either side,
    // the first and last 4 MiB, every 16 MiB block's edges and a 64 KiB
    // sample in every 32 MiB; qemu-img and vimg compare the whole disk.
    let mut ranges: Vec<(u64, u64)> = pieces
        .iter()
        .map(|&(at, len)| (at.saturating_sub(64 * KIB), len + 128 * KIB))
        .collect();
    ranges.push((0, 4 * MIB));
    ranges.push((1_000_000_000 - 4 * MIB, 4 * MIB));
    ranges.extend((1..60).map(|b| (b * 16 * MIB - 4 * KIB, 8 * KIB)));
    ranges.extend((0..29).map(|i| (i * 32 * MIB + 5 * MIB + 512, 64 * KIB)));
    for (name, opts, block) in [
        ("dyn.vhd", "subformat=dynamic", None),
        ("fixed.vhd", "subformat=fixed", None),
        ("b512k.vhd", "block_size=512K", Some(512 * KIB)),
        ("b16m.vhd", "block_size=16M", Some(16 * MIB)),
    ] {
        check_conversion(dir.path(), &raw, name, opts, block, Some(&ranges[..]));
    }
}

#[test]
fn small_odd_sizes_dynamic_and_fixed() {
    // Less than one block, one sector past a block, one sector past 16 MiB
    // (the last 16 MiB block holds a single sector).
    let dir = tempdir();
    for (i, size) in [7 * 512, 2 * MIB + 512, 16 * MIB + 512, 3 * MIB + 5 * 512]
        .into_iter()
        .enumerate()
    {
        let raw = dir.path().join(format!("src{i}.raw"));
        build_raw(&raw, size, 0x5eed_0100 + i as u64);
        for (name, opts, block) in [
            ("d.vhd", "subformat=dynamic", None),
            ("f.vhd", "subformat=fixed", None),
            ("k.vhd", "block_size=512K", Some(512 * KIB)),
            ("m.vhd", "block_size=16M", Some(16 * MIB)),
        ] {
            check_conversion(dir.path(), &raw, &format!("{i}{name}"), opts, block, None);
        }
    }
}

#[test]
fn a_raw_size_that_is_not_whole_sectors_rounds_up_like_qemu_img() {
    let dir = tempdir();
    let raw = dir.path().join("odd.raw");
    let len = 5 * MIB + 1000;
    build_raw(&raw, len, 0x5eed_0200);
    // qemu-img's own conversion is the reference for the rounding.
    let theirs = dir.path().join("qemu.vhd");
    qemu_img!("convert -f raw -O vpc -o force_size=on", &raw, &theirs).ok();
    let want = field_u64(&qemu_info(Some("vhd"), &theirs), "virtual-size");
    assert_eq!(want, sector_up(len));
    let ours = dir.path().join("vimg.vhd");
    vimg!("convert -O vhd", &raw, &ours).ok();
    assert_eq!(
        field_u64(&qemu_info(Some("vhd"), &ours), "virtual-size"),
        want
    );
    assert_identical("raw", &raw, "vhd", &ours);
    assert_identical("vhd", &theirs, "vhd", &ours);
}

/// Virtual PC before 2004 wrote a 511-byte footer (the specification has
/// readers take one in the last 511 bytes): such a fixed disk is probed and
/// read as qemu-img reads it with -f vpc; a dynamic one with such a tail
/// takes writes.
#[test]
fn older_virtual_pc_511_byte_footers_are_read() {
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("data.raw");
    build_raw(&data, 3 * MIB, 511);
    for (sub, name) in [("fixed", "fixed.vhd"), ("dynamic", "dynamic.vhd")] {
        let new = d.join(format!("new-{name}"));
        vimg!(
            "convert -q -f raw -O vhd -o",
            format!("subformat={sub}"),
            &data,
            &new
        )
        .ok();
        // The same disk with the footer's last (reserved, zero) byte cut.
        let old = d.join(name);
        let bytes = std::fs::read(&new).unwrap();
        assert_eq!(bytes.last(), Some(&0));
        std::fs::write(&old, &bytes[..bytes.len() - 1]).unwrap();
        let info = vimg_info(None, &old);
        assert_eq!(field_str(&info, "format"), "vpc", "{sub}");
        assert_eq!(field_u64(&info, "virtual-size"), 3 * MIB, "{sub}");
        assert_same_bytes(&vimg_to_raw(&old, &d.join("v.raw")), &data);
        assert_identical("vhd", &old, "raw", &data);
        if sub == "dynamic" {
            qemu_io("raw", &data, &["write -P 0x7e 2M 64k"]);
            let mut image =
                vimg::image::factory::open(&old, None, vimg::io::Access::Write).unwrap();
            image.write_at(&[0x7e; 65536], 2 * MIB).unwrap();
            image.flush().unwrap();
            drop(image);
            assert_same_bytes(&vimg_to_raw(&old, &d.join("w.raw")), &data);
            assert_identical("vhd", &old, "raw", &data);
        }
    }
}
