//! The five VMDK subformats both ways: images qemu-img writes read through
//! vimg byte for byte, and images vimg writes (`convert -o subformat=X`,
//! `create`) are identical under `qemu-img compare`, pass `qemu-img check`,
//! carry the right `create-type`, read the same in libvmdk, and split at
//! 2047 MiB (4,192,256 sectors) per extent. Multi-GiB disks stay sparse,
//! with data just before and after the extent boundaries.

use std::path::Path;

use crate::support::vmdk::*;
use crate::support::*;

/// Bytes of two files must agree on each `(offset, len)` range (read
/// directly, not through any image reader).
fn assert_ranges_equal(a: &Path, b: &Path, ranges: &[(u64, u64)]) {
    for &(at, len) in ranges {
        let (x, y) = (read_at(a, at, len as usize), read_at(b, at, len as usize));
        assert_eq!(
            x.len(),
            y.len(),
            "length at {at} of {} vs {}",
            a.display(),
            b.display()
        );
        if let Some(i) = first_difference(&x, &y) {
            panic!(
                "{} and {} differ at byte {}: {:#04x} vs {:#04x}",
                a.display(),
                b.display(),
                at + i as u64,
                x[i],
                y[i]
            );
        }
    }
}

/// Pieces of data around 2047 MiB (vimg's and VMware's split), 2 GiB
/// (qemu-img's split), 4094 MiB and 4 GiB, and at both ends of the disk.
fn boundary_pieces(size: u64) -> Vec<(u64, u64)> {
    vec![
        (0, 70_000),
        (SPLIT - 65_536 - 1_000, 1_000),
        (SPLIT - 3, 6),
        (SPLIT + 65_536, 512),
        (2 * GIB - 5_000, 5_000),
        (2 * GIB, 3_000),
        (2 * SPLIT - 1, 2),
        (4 * GIB - 700, 1_400),
        (size - 66_000, 66_000),
    ]
}

/// A sparse raw disk of several GiB with data only around the boundaries.
const BIG: u64 = 4 * GIB + MIB + 3 * 512;

/// Ranges to read back: every piece with a margin of zeros around it.
fn around(pieces: &[(u64, u64)], size: u64) -> Vec<(u64, u64)> {
    pieces
        .iter()
        .map(|&(at, len)| {
            let start = at.saturating_sub(4096);
            (start, (at + len + 4096).min(size) - start)
        })
        .collect()
}

fn qemu_convert(raw: &Path, sub: &str, out: &Path) {
    qemu_img!(
        "convert -f raw -O vmdk -o",
        format!("subformat={sub}"),
        raw,
        out
    )
    .ok();
}

fn vimg_convert(raw: &Path, sub: &str, out: &Path) {
    vimg!(
        "convert -q -f raw -O vmdk -o",
        format!("subformat={sub}"),
        raw,
        out
    )
    .ok();
}

#[test]
fn qemu_written_small_images_convert_to_identical_raw() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("src.raw");
    let size = 7 * MIB + 5 * 512;
    build_raw(&raw, size, 0x51_0001);
    for sub in SUBFORMATS {
        let image = d.join(format!("q-{sub}.vmdk"));
        qemu_convert(&raw, sub, &image);
        assert_eq!(qemu_create_type(&image), sub);
        let info = vimg_info(None, &image);
        assert_eq!(field_u64(&info, "virtual-size"), size, "{sub}");
        assert_eq!(
            info["format-specific"]["data"]["create-type"], sub,
            "vimg info create-type of qemu's {sub}"
        );
        let out = vimg_to_raw(&image, &d.join(format!("q-{sub}.raw")));
        assert_same_bytes(&raw, &out);
    }
}

#[test]
fn qemu_written_multi_gib_images_convert_to_identical_raw() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("src.raw");
    let pieces = boundary_pieces(BIG);
    raw_with_pieces(&raw, BIG, &pieces, 0x51_0002);
    let ranges = around(&pieces, BIG);
    for sub in SUBFORMATS {
        let image = d.join(format!("q-{sub}.vmdk"));
        qemu_convert(&raw, sub, &image);
        if sub.starts_with("twoGb") {
            // qemu-img splits at 2 GiB: three extents for this disk, so
            // the reads cross extents at other places than vimg's own.
            let lines = extent_lines(&descriptor_text(&image));
            assert_eq!(lines.len(), 3, "{lines:?}");
            assert_eq!(lines[0].sectors, 2 * GIB / 512);
        }
        assert_eq!(
            field_u64(&vimg_info(None, &image), "virtual-size"),
            BIG,
            "{sub}"
        );
        let out = vimg_to_raw(&image, &d.join("out.raw"));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), BIG);
        assert_identical("raw", &raw, "raw", &out);
        assert_ranges_equal(&raw, &out, &ranges);
        std::fs::remove_file(&out).unwrap();
    }
}

/// Everything qemu-img and libvmdk say about a VMDK vimg wrote of `raw`.
fn assert_valid_vimg_vmdk(image: &Path, sub: &str, raw: &Path, size: u64, ranges: &[(u64, u64)]) {
    assert_identical("raw", raw, "vmdk", image);
    if is_sparse(sub) {
        assert_qemu_check(image);
    }
    assert_eq!(qemu_create_type(image), sub, "{}", image.display());
    let q = qemu_info(Some("vmdk"), image);
    assert_eq!(field_u64(&q, "virtual-size"), size, "{}", image.display());
    let v = vimg_info(None, image);
    assert_eq!(field_u64(&v, "virtual-size"), size);
    assert_eq!(v["format-specific"]["data"]["create-type"], sub);
    assert_eq!(
        desc_value(&descriptor_text(image), "createType").as_deref(),
        Some(sub)
    );
    assert_pyvmdk_reads(image, raw, size, ranges);
}

/// The extent lines vimg must write for `sectors` in subformat `sub`, and
/// that the files they name exist with the right lengths (flat) or
/// capacities (sparse).
fn assert_extents(image: &Path, sub: &str, sectors: u64) {
    let text = descriptor_text(image);
    let lines = extent_lines(&text);
    let stem = image.file_stem().unwrap().to_string_lossy().into_owned();
    let expected: Vec<(u64, String, String)> = match sub {
        "monolithicSparse" | "streamOptimized" => {
            vec![(sectors, "SPARSE".into(), format!("{stem}.vmdk"))]
        }
        "monolithicFlat" => vec![(sectors, "FLAT".into(), format!("{stem}-flat.vmdk"))],
        _ => {
            let (kind, tag) = if sub == "twoGbMaxExtentFlat" {
                ("FLAT", "f")
            } else {
                ("SPARSE", "s")
            };
            let count = sectors.div_ceil(SPLIT_SECTORS);
            (0..count)
                .map(|i| {
                    (
                        (sectors - i * SPLIT_SECTORS).min(SPLIT_SECTORS),
                        kind.to_string(),
                        format!("{stem}-{tag}{:03}.vmdk", i + 1),
                    )
                })
                .collect()
        }
    };
    let got: Vec<(u64, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l.sectors,
                l.kind.clone(),
                l.file.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(got, expected, "extent lines of {sub}:\n{text}");
    assert!(lines.iter().all(|l| l.access == "RW"), "{text}");
    let dir = image.parent().unwrap();
    for (sectors, kind, file) in &expected {
        let path = dir.join(file);
        if file == &format!("{stem}.vmdk") {
            continue;
        }
        if kind == "FLAT" {
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                sectors * 512,
                "length of {file}"
            );
        } else {
            let h = kdmv_header(&path);
            assert_eq!(h.capacity, *sectors, "capacity of {file}");
            assert_eq!(h.desc_offset, 0, "{file} is a bare extent");
        }
    }
}

#[test]
fn vimg_written_small_images_are_valid_for_qemu_and_libvmdk() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("src.raw");
    let size = 9 * MIB + 3 * 512;
    build_raw(&raw, size, 0x51_0003);
    for sub in SUBFORMATS {
        let image = d.join(format!("v-{sub}.vmdk"));
        vimg_convert(&raw, sub, &image);
        assert_valid_vimg_vmdk(&image, sub, &raw, size, &[]);
        assert_extents(&image, sub, size / 512);
        // And back through vimg, byte for byte.
        let back = vimg_to_raw(&image, &d.join(format!("v-{sub}.raw")));
        assert_same_bytes(&raw, &back);
    }
}

#[test]
fn vimg_written_multi_gib_images_split_at_2047_mib() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("src.raw");
    let pieces = boundary_pieces(BIG);
    raw_with_pieces(&raw, BIG, &pieces, 0x51_0004);
    let ranges = around(&pieces, BIG);
    for sub in SUBFORMATS {
        let image = d.join(format!("v-{sub}.vmdk"));
        vimg_convert(&raw, sub, &image);
        assert_valid_vimg_vmdk(&image, sub, &raw, BIG, &ranges);
        assert_extents(&image, sub, BIG / 512);
        if sub.starts_with("twoGb") {
            assert_eq!(extent_lines(&descriptor_text(&image)).len(), 3);
        }
        let back = vimg_to_raw(&image, &d.join("back.raw"));
        assert_identical("raw", &raw, "raw", &back);
        assert_ranges_equal(&raw, &back, &ranges);
        std::fs::remove_file(&back).unwrap();
        // Sparse on disk: the data, tables and headers, not gigabytes.
        let used: u64 = dir_names(d)
            .iter()
            .filter(|n| n.starts_with(&format!("v-{sub}")))
            .map(|n| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(d.join(n)).unwrap()))
            .sum::<u64>()
            * 512;
        assert!(used < 32 * MIB, "{sub} uses {used} bytes on disk");
    }
}

#[test]
fn vimg_create_writes_every_subformat_empty_and_valid() {
    let dir = tempdir();
    let d = dir.path();
    // Exactly two split extents, one sector past one, and a small disk.
    for (i, size) in [2 * SPLIT, SPLIT + 512, MIB + 512].into_iter().enumerate() {
        let zeros = zero_raw(&d.join(format!("zeros{i}.raw")), size);
        for sub in SUBFORMATS {
            let image = d.join(format!("c{i}-{sub}.vmdk"));
            let out = vimg!(
                "create -f vmdk -o",
                format!("subformat={sub}"),
                &image,
                size
            )
            .ok();
            assert!(out.contains("fmt=vmdk"), "{out}");
            let ranges = if size > 64 * MIB {
                vec![
                    (0, MIB),
                    (SPLIT - MIB, (2 * MIB).min(size - (SPLIT - MIB))),
                    (size - MIB, MIB),
                ]
            } else {
                vec![]
            };
            assert_valid_vimg_vmdk(&image, sub, &zeros, size, &ranges);
            assert_extents(&image, sub, size / 512);
        }
    }
}

/// Run `vimg` with its standard output a pipe that is closed after the
/// first 100 bytes (as `vimg ... | head -c 100` does).
fn run_into_closed_pipe(vimg: &Cmd) -> Run {
    use std::io::Read;
    let mut child = vimg
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    Run {
        cmdline: vimg.to_string(),
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

#[test]
fn output_into_a_closed_pipe_ends_without_a_panic() {
    // A 3 TiB twoGbMaxExtentFlat has 1537 extents: `vimg info` prints far
    // more than a pipe buffer, so it meets the closed pipe mid-way.
    let dir = tempdir();
    let d = dir.path();
    let image = d.join("big.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentFlat",
        &image,
        "3T"
    )
    .ok();
    assert_eq!(extent_lines(&descriptor_text(&image)).len(), 1537);
    let raw = d.join("r.raw");
    build_raw(&raw, 8 * MIB, 0x51_0005);
    for (convert, vimg) in [
        (true, vimg!("convert -c -O vmdk", &raw, "-")),
        (false, vimg!("info", &image)),
        (false, vimg!("info --output json", &image)),
    ] {
        let out = run_into_closed_pipe(&vimg);
        let err = out.stderr_text();
        assert!(
            !err.contains("panicked") && out.status.code() != Some(101),
            "`{vimg} | head -c 100` panicked ({}):\n{err}",
            out.status
        );
        // Quiet (as qemu-img) or one error line.
        assert!(err.lines().count() <= 1, "{err}");
        if convert {
            // The stream was cut short: a failure, said in one line.
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.starts_with("vimg: error: "), "{err}");
        }
    }
}
