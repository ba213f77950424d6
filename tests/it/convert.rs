//! `vimg convert` among qemu-made VMDK, dynamic VHD and fixed VHD, raw
//! disks and vimg's own outputs, with qemu-img compare, qemu-img info,
//! libvmdk (pyvmdk) and libvhdi (pyvhdi) as the judges (acceptance item 3).

use std::path::{Path, PathBuf};

use crate::support::*;

/// An image to convert from: its vimg/qemu format name and path.
struct Image {
    label: &'static str,
    fmt: &'static str,
    path: PathBuf,
}

/// The raw source and qemu-img's VMDK, dynamic VHD and fixed VHD of it,
/// each checked identical to the raw disk by qemu-img itself.
fn sources(dir: &Path, raw: &Path) -> Vec<Image> {
    let mk = |label, fmt, name: &str, opts: Option<&str>| {
        let path = dir.join(name);
        qemu_img!("convert -f raw -O", qemu_fmt(fmt))
            .opt("-o", opts)
            .arg(raw)
            .arg(&path)
            .ok();
        assert_identical("raw", raw, fmt, &path);
        Image { label, fmt, path }
    };
    vec![
        Image {
            label: "raw",
            fmt: "raw",
            path: raw.to_path_buf(),
        },
        mk("qemu-vmdk", "vmdk", "qemu.vmdk", None),
        mk("qemu-vhd", "vhd", "qemu.vhd", Some("force_size=on")),
        mk(
            "qemu-fixed",
            "vhd",
            "qemu-fixed.vhd",
            Some("subformat=fixed,force_size=on"),
        ),
    ]
}

/// vimg's targets: label, format, extra options, file extension.
const TARGETS: [(&str, &str, Option<&str>, &str); 4] = [
    ("vmdk", "vmdk", None, "vmdk"),
    ("vhd", "vhd", None, "vhd"),
    ("raw", "raw", None, "raw"),
    ("fixed", "vhd", Some("subformat=fixed"), "vhd"),
];

/// True when qemu-img needs `-f` to open the file (fixed VHDs).
fn is_fixed_vhd(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "vhd")
        && path
            .file_stem()
            .is_some_and(|n| n.to_string_lossy().contains("fixed"))
}

/// vimg and qemu-img agree on the format, virtual size, actual size and
/// cluster size of `image`; returns the virtual size.
fn assert_same_info(fmt: &str, path: &Path) -> u64 {
    let qemu = qemu_info(is_fixed_vhd(path).then_some(fmt), path);
    let ours = vimg_info(None, path);
    let forced = vimg_info(Some(fmt), path);
    assert_eq!(
        field_str(&ours, "format"),
        qemu_fmt(fmt),
        "{}",
        path.display()
    );
    assert_eq!(
        field_str(&qemu, "format"),
        qemu_fmt(fmt),
        "{}",
        path.display()
    );
    let size = field_u64(&qemu, "virtual-size");
    assert_eq!(
        field_u64(&ours, "virtual-size"),
        size,
        "virtual-size of {}: vimg {ours:#}\nqemu-img {qemu:#}",
        path.display()
    );
    assert_eq!(field_u64(&forced, "virtual-size"), size);
    // The other numbers qemu-img prints mean the same in vimg's output.
    for key in ["actual-size", "cluster-size"] {
        assert_eq!(
            ours.get(key),
            qemu.get(key),
            "{key} of {}: vimg {ours:#}\nqemu-img {qemu:#}",
            path.display()
        );
    }
    size
}

/// Convert a random raw disk of `size` bytes (from `seed`) from each of
/// raw, qemu VMDK, qemu dynamic VHD and qemu fixed VHD into each of vmdk,
/// dynamic vhd, raw and fixed vhd with vimg, then convert every vimg VMDK
/// and VHD once more; every result must be the source disk.
fn matrix(size: u64, seed: u64) {
    let dir = tempdir();
    let dir = dir.path();
    let raw = dir.join("source.raw");
    build_raw(&raw, size, seed);
    let disk = sector_up(size);
    let mut made = Vec::new();
    for src in sources(dir, &raw) {
        for (label, fmt, opts, ext) in TARGETS {
            let out = dir.join(format!("{}-to-{label}.{ext}", src.label));
            // Probe images from their content; say raw is raw.
            let convert = vimg!("convert -q")
                .opt("-f", (src.fmt == "raw").then_some("raw"))
                .arg("-O")
                .arg(fmt)
                .opt("-o", opts);
            assert_eq!(
                convert.arg(&src.path).arg(&out).ok(),
                "",
                "convert -q prints nothing"
            );
            assert_identical("raw", &raw, fmt, &out);
            made.push((fmt, out));
        }
    }
    // vimg reading its own VMDKs and VHDs.
    for (i, (fmt, path)) in made.clone().iter().enumerate() {
        if *fmt == "raw" || i % 3 != 0 {
            continue;
        }
        for (label, tfmt, opts, ext) in TARGETS {
            let out = dir.join(format!("again{i}-to-{label}.{ext}"));
            vimg!("convert -O", tfmt)
                .opt("-o", opts)
                .arg(path)
                .arg(&out)
                .ok();
            assert_identical("raw", &raw, tfmt, &out);
            made.push((tfmt, out));
        }
    }

    // Sizes: every image vimg made or read, as vimg and qemu-img see it.
    for (fmt, path) in &made {
        if *fmt == "raw" {
            let len = std::fs::metadata(path).unwrap().len();
            assert!(
                len == size || len == disk,
                "{} is {len} bytes",
                path.display()
            );
            if len % 512 != 0 {
                // qemu-img rounds a raw file up to a sector; the separate
                // test raw_virtual_size_of_a_partial_sector_file covers it.
                continue;
            }
        }
        assert_eq!(assert_same_info(fmt, path), disk, "{}", path.display());
        if *fmt == "vmdk" {
            let check = qemu_img!("check -f vmdk", path).ok();
            assert!(check.contains("No errors were found"), "{check}");
        }
    }
    for src in sources_in(dir) {
        assert_eq!(assert_same_info(src.0, &src.1), disk);
    }
}

/// The qemu-made sources in `dir`.
fn sources_in(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("vmdk", dir.join("qemu.vmdk")),
        ("vhd", dir.join("qemu.vhd")),
        ("vhd", dir.join("qemu-fixed.vhd")),
    ]
}

#[test]
fn convert_matrix_50_mib_plus_3_sectors() {
    matrix(50 * MIB + 3 * 512, 0x5eed_0001);
}

#[test]
fn convert_matrix_odd_sector_count() {
    matrix(6 * MIB + 64 * KIB + 512, 0x5eed_0002);
}

#[test]
fn convert_matrix_size_not_a_sector_multiple() {
    // The VMDK and VHD targets are one partial sector longer; the data
    // part must match and the rest read as zeros.
    matrix(9 * MIB + 1000, 0x5eed_0003);
}

#[test]
fn raw_virtual_size_of_a_partial_sector_file() {
    // qemu-img reports a raw file of a partial sector's length rounded up
    // to a whole sector; vimg's info must report the same virtual size.
    let dir = tempdir();
    let raw = dir.path().join("odd.raw");
    build_raw(&raw, 3 * MIB + 1000, 7);
    let qemu = field_u64(&qemu_info(Some("raw"), &raw), "virtual-size");
    let ours = field_u64(&vimg_info(None, &raw), "virtual-size");
    assert_eq!(qemu, 3 * MIB + 1024);
    assert_eq!(
        ours, qemu,
        "vimg info virtual-size of a 3 MiB + 1000 raw file"
    );
}

#[test]
fn fully_allocated_convert_with_s0_is_identical() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    build_raw(&raw, 5 * MIB + 512, 99);
    for (fmt, name) in [
        ("vmdk", "full.vmdk"),
        ("vhd", "full.vhd"),
        ("raw", "full.raw"),
    ] {
        let out = dir.path().join(name);
        vimg!("convert -S 0 -f raw -O", fmt, &raw, &out).ok();
        assert_identical("raw", &raw, fmt, &out);
        // Everything allocated: qemu-img map shows one data run covering
        // the disk.
        let map = qemu_img!("map --output json -f", qemu_fmt(fmt), &out).json();
        let total: u64 = map
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["data"] == true)
            .map(|m| field_u64(m, "length"))
            .sum();
        assert_eq!(total, 5 * MIB + 512, "{name} is not fully allocated: {map}");
    }
}

#[test]
fn sparse_convert_leaves_zeros_unallocated() {
    // A disk of one data sector in 40 MiB of holes and written zeros:
    // vimg's sparse targets hold the data and not much more.
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    let f = std::fs::File::create(&raw).unwrap();
    f.set_len(40 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &vec![0u8; 8 * MIB as usize], 10 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[7u8; 512], 30 * MIB).unwrap();
    drop(f);
    for (fmt, name, most) in [("vmdk", "s.vmdk", 256 * KIB), ("vhd", "s.vhd", 3 * MIB)] {
        let out = dir.path().join(name);
        vimg!("convert -f raw -O", fmt, &raw, &out).ok();
        assert_identical("raw", &raw, fmt, &out);
        let len = std::fs::metadata(&out).unwrap().len();
        assert!(len <= most, "{name} is {len} bytes for one data sector");
    }
}

/// Read an image whole with libvmdk or libvhdi and compare it with a raw
/// file; prints `OK <media size>` or what differs.
const PY_READ: &str = r#"
import sys
kind, image, raw = sys.argv[1:4]
if kind == "vmdk":
    import pyvmdk
    h = pyvmdk.handle()
    h.open(image)
    h.open_extent_data_files()
else:
    import pyvhdi
    h = pyvhdi.file()
    h.open(image)
size = h.get_media_size()
data = h.read_buffer_at_offset(size, 0) if size else b""
src = open(raw, "rb").read()
if len(data) != size:
    print("SHORT", len(data))
elif data[:len(src)] != src:
    i = next(i for i in range(len(src)) if data[i] != src[i])
    print("DIFF at", i, data[i], src[i])
elif data[len(src):].strip(b"\0"):
    print("NONZERO tail")
else:
    print("OK", size)
"#;

fn libyal_reads(kind: &str, image: &Path, raw: &Path) -> String {
    python!(PY_READ, kind, image, raw).ok().trim().to_string()
}

#[test]
fn libvmdk_and_libvhdi_read_vimg_outputs() {
    let dir = tempdir();
    let dir = dir.path();
    for (i, (size, seed)) in [(4 * MIB + 3 * 512, 21u64), (3 * MIB + 1000, 22)]
        .into_iter()
        .enumerate()
    {
        let raw = dir.join(format!("src{i}.raw"));
        build_raw(&raw, size, seed);
        let want = format!("OK {}", sector_up(size));
        let vmdk = dir.join(format!("a{i}.vmdk"));
        let vhd = dir.join(format!("a{i}.vhd"));
        let fixed = dir.join(format!("a{i}-fixed.vhd"));
        vimg!("convert -f raw -O vmdk", &raw, &vmdk).ok();
        vimg!("convert -f raw -O vhd", &raw, &vhd).ok();
        vimg!("convert -f raw -O vhd -o subformat=fixed", &raw, &fixed).ok();
        // vimg to vimg across formats, and a small VHD block size.
        let vhd_from_vmdk = dir.join(format!("b{i}.vhd"));
        let vmdk_from_vhd = dir.join(format!("b{i}.vmdk"));
        let small_blocks = dir.join(format!("c{i}.vhd"));
        vimg!("convert -O vhd", &vmdk, &vhd_from_vmdk).ok();
        vimg!("convert -O vmdk", &fixed, &vmdk_from_vhd).ok();
        vimg!("convert -O vhd -o block_size=512K", &vmdk, &small_blocks).ok();
        for (kind, image) in [
            ("vmdk", &vmdk),
            ("vhd", &vhd),
            ("vhd", &fixed),
            ("vhd", &vhd_from_vmdk),
            ("vmdk", &vmdk_from_vhd),
            ("vhd", &small_blocks),
        ] {
            assert_eq!(
                libyal_reads(kind, image, &raw),
                want,
                "libyal reading {}",
                image.display()
            );
        }
    }
}

#[test]
fn sparse_size_variants_and_progress_keep_the_data() {
    let dir = tempdir();
    let raw = dir.path().join("src.raw");
    build_raw(&raw, 7 * MIB + 3 * 512, 77);
    for (i, sparse) in ["512", "4k", "64k", "1M", "2M"].into_iter().enumerate() {
        for (fmt, ext) in [("vmdk", "vmdk"), ("vhd", "vhd"), ("raw", "raw")] {
            let out = dir.path().join(format!("s{i}.{ext}"));
            let run = vimg!("convert -p -S", sparse, "-f raw -O", fmt, &raw, &out).run();
            assert!(run.status.success(), "-S {sparse} -O {fmt}: {run:?}");
            // No terminal: no progress bar, nothing printed at all.
            assert!(run.stdout.is_empty() && run.stderr.is_empty(), "{run:?}");
            assert_identical("raw", &raw, fmt, &out);
        }
    }
}

/// A sparse raw disk of `size` bytes with random pieces at `offsets`.
fn sparse_raw(path: &Path, size: u64, offsets: &[u64], seed: u64) {
    let mut rng = Rng::new(seed);
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for &at in offsets {
        let len = (200_000 + rng.below(100_000)).min(size - at);
        std::os::unix::fs::FileExt::write_all_at(&f, &rng.bytes(len as usize), at).unwrap();
    }
}

#[test]
fn qemu_vmdk_subformats_convert_identical() {
    // Multi-extent VMDKs: data right across the 2 GiB extent boundaries.
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("src.raw");
    let size = 4 * GIB + 512 * MIB + 3 * 512;
    sparse_raw(
        &raw,
        size,
        &[
            0,
            2 * GIB - 65536 - 1000,
            2 * GIB - 512,
            3 * GIB + 12345,
            4 * GIB - 100,
            size - 1000,
        ],
        5,
    );
    for sub in [
        "monolithicFlat",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
        "streamOptimized",
    ] {
        let src = d.join(format!("{sub}.vmdk"));
        qemu_img!(
            "convert -f raw -O vmdk -o",
            format!("subformat={sub}"),
            &raw,
            &src
        )
        .ok();
        assert_eq!(
            field_u64(&vimg_info(None, &src), "virtual-size"),
            field_u64(&qemu_info(None, &src), "virtual-size")
        );
        for (fmt, ext) in [("vhd", "vhd"), ("vmdk", "vmdk")] {
            let out = d.join(format!("{sub}-out.{ext}"));
            vimg!("convert -O", fmt, &src, &out).ok();
            assert_identical("raw", &raw, fmt, &out);
            assert_eq!(field_u64(&qemu_info(None, &out), "virtual-size"), size);
        }
    }
}

#[test]
fn large_sparse_disk_with_data_past_32_bit_offsets() {
    // Data at 1 GiB, across 4 GiB (where 32-bit byte offsets wrap), at 32
    // and 64 GiB, and at the very end of a 100 GiB disk.
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("big.raw");
    let size = 100 * GIB + 3 * 512;
    sparse_raw(
        &raw,
        size,
        &[
            GIB - 4096,
            4 * GIB - 70_000,
            32 * GIB + 1,
            64 * GIB - 1,
            size - 250_000,
        ],
        8,
    );
    for (fmt, opts, name) in [
        ("vmdk", None, "big.vmdk"),
        ("vhd", None, "big.vhd"),
        ("vhd", Some("subformat=fixed"), "big-fixed.vhd"),
    ] {
        let out = d.join(name);
        vimg!("convert -f raw -O", fmt)
            .opt("-o", opts)
            .arg(&raw)
            .arg(&out)
            .ok();
        assert_identical("raw", &raw, fmt, &out);
        assert_eq!(assert_same_info(fmt, &out), size);
        // Sparse: a few MiB of blocks, not 100 GiB.
        let used = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&out).unwrap()) * 512;
        assert!(used < 64 * MIB, "{name} uses {used} bytes");
    }
    let vmdk = d.join("big.vmdk");
    let check = qemu_img!("check -f vmdk", &vmdk).ok();
    assert!(check.contains("No errors were found"), "{check}");
    // And back to raw through vimg.
    let back = d.join("back.raw");
    vimg!("convert -O raw", &d.join("big.vhd"), &back).ok();
    assert_identical("raw", &raw, "raw", &back);
}
