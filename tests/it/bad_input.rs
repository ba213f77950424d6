//! Damaged and foreign input: random bytes named .vmdk/.vhd, empty files,
//! truncated and bit-flipped vimg images, and header fields set to
//! impossible values. vimg must answer with exit code 1 and one line on
//! stderr naming the file, never a panic, and `convert` must leave nothing
//! behind (acceptance item 4).

use std::path::{Path, PathBuf};

use crate::support::vhd;
use crate::support::*;

/// Every way of reading `file`: info (human and JSON) and convert to each
/// format, with the format probed and forced to vmdk and to vpc.
fn readers(file: &Path, out_dir: &Path) -> Vec<(String, Cmd, Option<PathBuf>)> {
    let mut runs = Vec::new();
    for forced in [None, Some("vmdk"), Some("vpc")] {
        let f: Vec<&str> = forced.map(|f| vec!["-f", f]).unwrap_or_default();
        let tag = forced.unwrap_or("probe");
        let info = vimg!("info").args(&f).arg(file);
        runs.push((format!("info ({tag})"), info, None));
        let json = vimg!("info --output json").args(&f).arg(file);
        runs.push((format!("info --output json ({tag})"), json, None));
        for (target_fmt, ext) in [("raw", "raw"), ("vmdk", "vmdk"), ("vhd", "vhd")] {
            let target = out_dir.join(format!("converted.{ext}"));
            let conv = vimg!("convert").args(&f).arg("-O").arg(target_fmt);
            runs.push((
                format!("convert -O {target_fmt} ({tag})"),
                conv.arg(file).arg(&target),
                Some(target),
            ));
        }
    }
    runs
}

/// Run every reader on `file`; return what went wrong (empty when every
/// run failed properly and left the directory as it was).
fn refused_everywhere(file: &Path, only: &[&str]) -> Vec<String> {
    refused_naming(file, file, only)
}

/// As `refused_everywhere`, with errors that must name `named`.
fn refused_naming(file: &Path, named: &Path, only: &[&str]) -> Vec<String> {
    let dir = file.parent().unwrap();
    let before = dir_names(dir);
    let mut problems = Vec::new();
    for (what, vimg, target) in readers(file, dir) {
        if !only.is_empty() && !only.iter().any(|o| what.contains(o)) {
            continue;
        }
        let out = vimg.run();
        if let Err(e) = out.check_one_line_error(named) {
            problems.push(format!("`{vimg}`: {e}"));
        } else if !out.stdout.is_empty() {
            problems.push(format!(
                "`{vimg}` failed but printed on stdout: {}",
                out.stdout_text()
            ));
        }
        if let Some(t) = target {
            if t.exists() {
                problems.push(format!("`{vimg}` failed but left {}", t.display()));
                let _ = std::fs::remove_file(&t);
            }
        }
        let after = dir_names(dir);
        if after != before {
            problems.push(format!(
                "`{vimg}` left {after:?} in the directory (was {before:?})"
            ));
        }
    }
    problems
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Runs of vimg on `file` that must not crash: exit 0, or exit 1 with one
/// error line naming the file. Returns what went wrong, and whether the
/// probing `convert -O raw` refused the file.
fn never_crashes(file: &Path) -> (Vec<String>, bool) {
    let dir = file.parent().unwrap();
    let mut problems = Vec::new();
    let mut refused = false;
    for (what, vimg, target) in readers(file, dir) {
        // Fewer runs than refused_everywhere: JSON info and VMDK targets
        // take the same paths as human info and the other targets.
        if what.contains("json") || what.contains("-O vmdk") {
            continue;
        }
        let out = vimg.run();
        if out.code() != Some(0) {
            refused |= what == "convert -O raw (probe)";
            if let Err(e) = out.check_one_line_error(file) {
                problems.push(format!("`{vimg}`: {e}"));
            }
            if let Some(t) = &target {
                if t.exists() {
                    problems.push(format!("`{vimg}` failed but left {}", t.display()));
                }
            }
        } else if !out.stderr.is_empty() {
            problems.push(format!(
                "`{vimg}` succeeded but wrote to stderr: {}",
                out.stderr_text()
            ));
        }
        if let Some(t) = target {
            let _ = std::fs::remove_file(&t);
        }
        let leftovers: Vec<String> = dir_names(dir)
            .into_iter()
            .filter(|n| n.contains(".vimg-"))
            .collect();
        if !leftovers.is_empty() {
            problems.push(format!("`{vimg}` left {leftovers:?}"));
        }
    }
    (problems, refused)
}

#[test]
fn random_bytes_named_vmdk_or_vhd_are_refused() {
    let mut problems = Vec::new();
    let mut seed = 0;
    for name in ["garbage.vmdk", "garbage.vhd", "GARBAGE.VHD", "garbage.vpc"] {
        for size in [0u64, 1, 100, 511, 512, 513, 4096, 65536 + 7, MIB] {
            seed += 1;
            let dir = tempdir();
            let file = dir.path().join(name);
            std::fs::write(&file, Rng::new(seed).bytes(size as usize)).unwrap();
            for e in refused_everywhere(&file, &[]) {
                problems.push(format!("{name} ({size} random bytes): {e}"));
            }
        }
    }
    assert_no_problems(problems);
}

#[test]
fn zero_filled_files_named_vmdk_or_vhd_are_refused() {
    let mut problems = Vec::new();
    for name in ["zeros.vmdk", "zeros.vhd"] {
        for size in [0u64, 512, 2 * MIB] {
            let dir = tempdir();
            let file = dir.path().join(name);
            std::fs::File::create(&file).unwrap().set_len(size).unwrap();
            for e in refused_everywhere(&file, &[]) {
                problems.push(format!("{name} ({size} zero bytes): {e}"));
            }
        }
    }
    assert_no_problems(problems);
}

#[test]
fn raw_content_named_vmdk_is_read_with_f_raw() {
    // The refusal is about the name; -f raw reads the same bytes.
    let dir = tempdir();
    let file = dir.path().join("disk.vmdk");
    build_raw(&file, 3 * MIB, 42);
    let info = vimg_info(Some("raw"), &file);
    assert_eq!(field_str(&info, "format"), "raw");
    assert_eq!(field_u64(&info, "virtual-size"), 3 * MIB);
    let out = dir.path().join("out.vhd");
    vimg!("convert -f raw -O vhd", &file, &out).ok();
    assert_identical("raw", &file, "vhd", &out);
    let out = vimg!("info", &file).one_line_error(&file, "info of raw content named .vmdk");
    assert!(
        out.stderr_text().contains("-f raw"),
        "the error should say how to read it anyway"
    );
}

#[test]
fn garbage_behind_real_magic_is_refused() {
    // Past the probe: a KDMV header, a descriptor start, a VHD cookie at
    // either end, each followed or preceded by random bytes.
    let mut problems = Vec::new();
    for seed in 0..12u64 {
        let mut rng = Rng::new(1000 + seed);
        let size = [512usize, 1024, 4096, 70000][seed as usize % 4];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("kdmv.vmdk", {
                let mut b = rng.bytes(size);
                b[..4].copy_from_slice(b"KDMV");
                b
            }),
            ("kdmv-v1.vmdk", {
                // A plausible version and flags, random geometry.
                let mut b = rng.bytes(size);
                b[..4].copy_from_slice(b"KDMV");
                b[4..8].copy_from_slice(&1u32.to_le_bytes());
                b[8..12].copy_from_slice(&3u32.to_le_bytes());
                b[73..77].copy_from_slice(b"\n \r\n");
                b
            }),
            ("text.vmdk", {
                let mut b = b"# Disk DescriptorFile\nversion=1\n".to_vec();
                b.extend(rng.bytes(size));
                b
            }),
            ("head.vhd", {
                let mut b = rng.bytes(size);
                b[..8].copy_from_slice(b"conectix");
                b
            }),
            ("tail.vhd", {
                let mut b = rng.bytes(size);
                let n = b.len();
                b[n - 512..n - 504].copy_from_slice(b"conectix");
                b
            }),
        ];
        for (name, bytes) in cases {
            let dir = tempdir();
            let file = dir.path().join(name);
            std::fs::write(&file, &bytes).unwrap();
            for e in refused_everywhere(&file, &[]) {
                problems.push(format!("{name} (seed {seed}, {size} bytes): {e}"));
            }
        }
    }
    assert_no_problems(problems);
}

#[test]
fn bad_text_descriptors_are_refused() {
    let mut problems = Vec::new();
    let head = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n";
    let cases = [
        // An extent outside the descriptor's folder.
        (
            "escape.vmdk",
            "createType=\"monolithicFlat\"\nRW 2048 FLAT \"../outside.raw\" 0\n",
        ),
        (
            "absolute.vmdk",
            "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/passwd\" 0\n",
        ),
        // Sizes that overflow.
        (
            "huge.vmdk",
            "createType=\"monolithicFlat\"\nRW 99999999999999999999 FLAT \"x-flat.vmdk\" 0\n",
        ),
        (
            "overflow.vmdk",
            "createType=\"monolithicFlat\"\nRW 36028797018963968 ZERO\n",
        ),
        // An unknown extent type, no createType.
        (
            "unknown.vmdk",
            "createType=\"monolithicFlat\"\nRW 2048 FANCY \"x-flat.vmdk\" 0\n",
        ),
        ("nocreatetype.vmdk", "RW 2048 FLAT \"x-flat.vmdk\" 0\n"),
    ];
    for (name, body) in cases {
        let dir = tempdir();
        let file = dir.path().join(name);
        std::fs::write(&file, format!("{head}{body}")).unwrap();
        // A 1 MiB flat extent that some descriptors point at.
        std::fs::File::create(dir.path().join("x-flat.vmdk"))
            .unwrap()
            .set_len(MIB)
            .unwrap();
        for e in refused_everywhere(&file, &["probe", "(vmdk)"]) {
            problems.push(format!("{name}: {e}"));
        }
    }
    // An extent that is not there: the error names the missing file.
    let dir = tempdir();
    let file = dir.path().join("missing.vmdk");
    std::fs::write(
        &file,
        format!("{head}createType=\"monolithicFlat\"\nRW 2048 FLAT \"missing-flat.vmdk\" 0\n"),
    )
    .unwrap();
    let missing = dir.path().join("missing-flat.vmdk");
    for e in refused_naming(&file, &missing, &["probe", "(vmdk)"]) {
        problems.push(format!("missing.vmdk: {e}"));
    }
    // A descriptor without extents (qemu-img aborts on it): whatever vimg
    // makes of it, it does not crash.
    let dir = tempdir();
    let file = dir.path().join("no-extents.vmdk");
    std::fs::write(&file, format!("{head}createType=\"monolithicFlat\"\n")).unwrap();
    for e in never_crashes(&file).0 {
        problems.push(format!("no-extents.vmdk: {e}"));
    }
    assert_no_problems(problems);
}

/// A vimg image with data: `fmt` with `opts`, 10 MiB, qemu-io writes.
fn image_with_data(dir: &Path, name: &str, fmt: &str, opts: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    vimg!("create -q -f", fmt)
        .opt("-o", opts)
        .arg(&path)
        .arg("10M")
        .ok();
    qemu_io(
        fmt,
        &path,
        &[
            "write -P 0xab 1M 3M",
            "write -P 0x11 9M 1M",
            "write -P 0x22 65535 2",
        ],
    );
    path
}

/// Cut a copy of `image` to each of `lengths`; each must be refused by the
/// runs whose description contains one of `only`.
fn truncations(image: &Path, lengths: &[u64], only: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let len = std::fs::metadata(image).unwrap().len();
    for &cut in lengths {
        assert!(cut < len);
        let dir = tempdir();
        let file = dir
            .path()
            .join(image.file_name().unwrap().to_str().unwrap());
        std::fs::copy(image, &file).unwrap();
        truncate(&file, cut);
        for e in refused_everywhere(&file, only) {
            problems.push(format!("cut to {cut} of {len} bytes: {e}"));
        }
    }
    problems
}

fn vmdk_cuts(len: u64) -> Vec<u64> {
    // In the header, in the descriptor, at the end of the metadata (all
    // grains gone), in the middle of the data, the last sector gone.
    vec![100, 511, 1000, 4096, 65536, len / 2, len - 512, len - 1]
}

fn vhd_cuts(len: u64) -> Vec<u64> {
    // In the footer copy, in the dynamic header, after the BAT (all blocks
    // gone), in a block, the footer and the last data sector gone.
    vec![100, 511, 1000, 4096, len / 2, len - 1024, len - 513]
}

#[test]
fn truncated_vmdk_is_refused_by_convert() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "cut.vmdk", "vmdk", None);
    let len = std::fs::metadata(&image).unwrap().len();
    assert_no_problems(truncations(
        &image,
        &vmdk_cuts(len),
        &["convert -O raw (probe)", "convert -O vhd (vmdk)"],
    ));
}

#[test]
fn truncated_vmdk_is_refused_by_info() {
    // qemu-img info opens these; qemu-img check reports "cluster offset
    // for sector ... points after EOF" for all but the last-sector cuts.
    let dir = tempdir();
    let image = image_with_data(dir.path(), "cut.vmdk", "vmdk", None);
    let len = std::fs::metadata(&image).unwrap().len();
    assert_no_problems(truncations(&image, &vmdk_cuts(len), &["info"]));
}

#[test]
fn truncated_dynamic_vhd_is_refused_by_convert() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "cut.vhd", "vhd", None);
    let len = std::fs::metadata(&image).unwrap().len();
    assert_no_problems(truncations(
        &image,
        &vhd_cuts(len),
        &["convert -O raw (probe)", "convert -O vmdk (vpc)"],
    ));
}

#[test]
fn truncated_dynamic_vhd_is_refused_by_info() {
    // qemu-img refuses such images too ("The image has been truncated"),
    // but for the last cut, which its sector rounding hides.
    let dir = tempdir();
    let image = image_with_data(dir.path(), "cut.vhd", "vhd", None);
    let len = std::fs::metadata(&image).unwrap().len();
    assert_no_problems(truncations(&image, &vhd_cuts(len), &["info"]));
}

#[test]
fn truncated_fixed_vhd_is_refused() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "cut.vhd", "vhd", Some("subformat=fixed"));
    let len = std::fs::metadata(&image).unwrap().len();
    // (One byte short is the 511-byte footer of Virtual PC before 2004,
    // which readers must take: vhd::roundtrip reads it.)
    assert_no_problems(truncations(
        &image,
        &[0, 100, 511, 512, MIB, len / 2, len - 512, len - 2],
        &[],
    ));
}

/// Footer byte offsets to flip: cookie, features, version, data offset,
/// timestamp, creator, sizes, geometry, disk type, checksum, UUID, saved
/// state, reserved.
const FOOTER_FLIPS: [u64; 20] = [
    0, 7, 8, 12, 16, 23, 24, 28, 36, 40, 48, 55, 56, 59, 60, 63, 64, 67, 84, 300,
];

#[test]
fn fixed_vhd_with_a_flipped_footer_byte_is_refused() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "flip.vhd", "vhd", Some("subformat=fixed"));
    let len = std::fs::metadata(&image).unwrap().len();
    let mut problems = Vec::new();
    for off in FOOTER_FLIPS.iter().copied().chain([85, 511]) {
        let dir = tempdir();
        let file = dir.path().join("flip.vhd");
        std::fs::copy(&image, &file).unwrap();
        flip(&file, len - 512 + off);
        for e in refused_everywhere(&file, &[]) {
            problems.push(format!("footer byte {off} flipped: {e}"));
        }
    }
    assert_no_problems(problems);
}

#[test]
fn dynamic_vhd_with_both_footer_copies_flipped_is_refused() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "flip.vhd", "vhd", None);
    let len = std::fs::metadata(&image).unwrap().len();
    let mut problems = Vec::new();
    for off in FOOTER_FLIPS {
        let dir = tempdir();
        let file = dir.path().join("flip.vhd");
        std::fs::copy(&image, &file).unwrap();
        flip(&file, off);
        flip(&file, len - 512 + off);
        for e in refused_everywhere(&file, &[]) {
            problems.push(format!("footer byte {off} flipped in both copies: {e}"));
        }
    }
    assert_no_problems(problems);
}

#[test]
fn dynamic_vhd_with_one_damaged_footer_copy_never_reads_wrong_data() {
    // A dynamic VHD keeps a footer copy at offset 0 for exactly this case
    // (qemu reads the copy at 0 and ignores the trailing footer). Whichever
    // copy is damaged, vimg must either read the disk exactly, from the
    // good copy, or refuse it with one error line: never read wrong data.
    let dir = tempdir();
    let image = image_with_data(dir.path(), "flip.vhd", "vhd", None);
    let len = std::fs::metadata(&image).unwrap().len();
    let reference = dir.path().join("reference.raw");
    qemu_img!("convert -f vpc -O raw", &image, &reference).ok();
    for (copy, base) in [("trailing", len - 512), ("leading", 0)] {
        for off in FOOTER_FLIPS {
            let d = tempdir();
            let file = d.path().join("flip.vhd");
            std::fs::copy(&image, &file).unwrap();
            flip(&file, base + off);
            let out = d.path().join("out.raw");
            let run = vimg!("convert -O raw", &file, &out).run();
            if run.status.success() {
                assert_same_bytes(&reference, &out);
                let info = vimg_info(None, &file);
                assert_eq!(field_u64(&info, "virtual-size"), 10 * MIB);
                assert_eq!(info["format-specific"]["data"]["disk-type"], "dynamic");
            } else {
                run.assert_one_line_error(&file, &format!("{copy} footer byte {off}"));
                assert!(!out.exists());
            }
            assert_eq!(dir_names(d.path()).len(), 1 + out.exists() as usize);
        }
    }
}

/// Overwrite a big-endian field of a VHD structure at `base` (size `len`,
/// checksum at `sum_at`) and fix the checksum so the value is believed.
fn set_vhd_field(path: &Path, base: u64, len: usize, sum_at: usize, field: usize, value: &[u8]) {
    let mut buf = std::fs::read(path).unwrap()[base as usize..base as usize + len].to_vec();
    buf[field..field + value.len()].copy_from_slice(value);
    let sum = vhd::checksum(&buf, sum_at);
    buf[sum_at..sum_at + 4].copy_from_slice(&sum.to_be_bytes());
    patch(path, base, &buf);
}

#[test]
fn vhd_fields_with_impossible_values_never_crash() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "field.vhd", "vhd", None);
    let len = std::fs::metadata(&image).unwrap().len();
    let u64s = |v: u64| v.to_be_bytes().to_vec();
    let u32s = |v: u32| v.to_be_bytes().to_vec();
    // (structure, field offset, value)
    let mut cases: Vec<(&str, usize, Vec<u8>)> = Vec::new();
    for v in [0, 1, 511, len, len - 512, 1 << 40, u64::MAX - 511, u64::MAX] {
        cases.push(("footer", 16, u64s(v))); // data offset
    }
    for v in [0, 1, 513, 1 << 40, 1 << 62, u64::MAX] {
        cases.push(("footer", 48, u64s(v))); // current size
        cases.push(("footer", 40, u64s(v))); // original size
    }
    for v in [0u32, 1, 2, 4, 5, 0xffff_ffff] {
        cases.push(("footer", 60, u32s(v))); // disk type
    }
    cases.push(("footer", 56, vec![0, 0, 0, 0])); // geometry
    cases.push(("footer", 56, vec![0, 1, 1, 1]));
    cases.push(("footer", 28, b"vpc ".to_vec())); // sized by geometry
    for v in [0, 1, 512, 1535, len, u64::MAX] {
        cases.push(("header", 16, u64s(v))); // table offset
    }
    for v in [0u32, 1, 4, 0x4000_0000, 0xffff_ffff] {
        cases.push(("header", 28, u32s(v))); // max table entries
    }
    for v in [0u32, 1, 3, 512, 4096, 1 << 31, 0xffff_ffff] {
        cases.push(("header", 32, u32s(v))); // block size
    }
    for entry in 0..5usize {
        for v in [0u32, 1, 2, 3, (len / 512) as u32, 0xffff_fffe] {
            cases.push(("bat", entry * 4, u32s(v)));
        }
    }
    let mut problems = Vec::new();
    let mut refused = 0;
    for (what, field, value) in &cases {
        let d = tempdir();
        let file = d.path().join("field.vhd");
        std::fs::copy(&image, &file).unwrap();
        match *what {
            "footer" => {
                set_vhd_field(&file, 0, 512, 64, *field, value);
                set_vhd_field(&file, len - 512, 512, 64, *field, value);
            }
            "header" => set_vhd_field(&file, 512, 1024, 36, *field, value),
            _ => patch(&file, 1536 + *field as u64, value),
        }
        let (found, was_refused) = never_crashes(&file);
        for e in found {
            problems.push(format!("{what} field {field} = {value:02x?}: {e}"));
        }
        refused += was_refused as usize;
    }
    assert_no_problems(problems);
    // Most of these values are nonsense; many must be caught.
    assert!(
        refused * 2 >= cases.len(),
        "only {refused} of {} damaged VHDs were refused",
        cases.len()
    );
}

#[test]
fn vmdk_fields_with_impossible_values_never_crash() {
    let dir = tempdir();
    let image = image_with_data(dir.path(), "field.vmdk", "vmdk", None);
    let bytes = std::fs::read(&image).unwrap();
    let len = bytes.len() as u64;
    let gd = le64(&bytes, 56) * 512;
    let rgd = le64(&bytes, 48) * 512;
    let gt = le32(&bytes, gd as usize) as u64 * 512;
    let u64s = |v: u64| v.to_le_bytes().to_vec();
    let u32s = |v: u32| v.to_le_bytes().to_vec();
    // (byte offset in the file, value)
    let mut cases: Vec<(u64, Vec<u8>)> = Vec::new();
    for v in [0u32, 2, 3, 4, 0xffff_ffff] {
        cases.push((4, u32s(v))); // version
    }
    for v in [0u32, 1 << 16, 1 << 17, 0xffff_ffff] {
        cases.push((8, u32s(v))); // flags
    }
    for v in [0, 1, 1 << 32, 1 << 40, 1 << 62, u64::MAX] {
        cases.push((12, u64s(v))); // capacity
    }
    for v in [0, 1, 3, 8, 1 << 20, u64::MAX] {
        cases.push((20, u64s(v))); // grain size
    }
    for v in [0, 1 << 40, u64::MAX] {
        cases.push((28, u64s(v))); // descriptor offset
        cases.push((36, u64s(v))); // descriptor size
    }
    for v in [0u32, 1, 3, 513, 0xffff_ffff] {
        cases.push((44, u32s(v))); // grain table entries
    }
    for v in [0, 1, len / 512, 1 << 40, u64::MAX] {
        cases.push((48, u64s(v))); // redundant grain directory
        cases.push((56, u64s(v))); // grain directory
        cases.push((64, u64s(v))); // overhead
    }
    cases.push((73, b"\n \n\n".to_vec())); // newline test damaged
    cases.push((77, vec![1, 0])); // deflate, but not compressed
    cases.push((77, vec![0xff, 0xff]));
    for v in [0u32, 1, 21, (len / 512) as u32, 0xffff_ffff] {
        cases.push((gd, u32s(v))); // grain directory entry
        cases.push((rgd, u32s(v)));
        cases.push((gt + 16 * 4, u32s(v))); // grain table entry (1 MiB)
        cases.push((gt + 511 * 4, u32s(v)));
    }
    cases.push((512, vec![0xff; 16])); // descriptor: not text
    cases.push((
        512,
        b"# Disk DescriptorFile\nRW 1 FLAT \"/etc/passwd\" 0\n\0".to_vec(),
    ));
    let mut problems = Vec::new();
    let mut refused = 0;
    for (at, value) in &cases {
        let d = tempdir();
        let file = d.path().join("field.vmdk");
        std::fs::copy(&image, &file).unwrap();
        patch(&file, *at, value);
        let (found, was_refused) = never_crashes(&file);
        for e in found {
            problems.push(format!("byte {at} = {value:02x?}: {e}"));
        }
        refused += was_refused as usize;
    }
    assert_no_problems(problems);
    assert!(
        refused * 3 >= cases.len(),
        "only {refused} of {} damaged VMDKs were refused",
        cases.len()
    );
}

#[test]
fn a_vmdk_forced_as_vpc_and_a_vhd_forced_as_vmdk_are_refused() {
    let dir = tempdir();
    let mut problems = Vec::new();
    for (name, fmt, wrong) in [
        ("real.vmdk", "vmdk", "vpc"),
        ("real.vhd", "vhd", "vmdk"),
        ("real-fixed.vhd", "vhd", "vmdk"),
    ] {
        let opts = name.contains("fixed").then_some("subformat=fixed");
        let file = image_with_data(dir.path(), name, fmt, opts);
        for e in refused_everywhere(&file, &[&format!("({wrong})")]) {
            problems.push(format!("{name}: {e}"));
        }
    }
    assert_no_problems(problems);
}

#[test]
fn vmdk_grain_table_entry_past_the_end_is_refused() {
    // A grain whose place lies past the end of the file cannot be read;
    // reading it as zeros would silently lose the data that was there
    // (qemu-img check: "cluster offset ... points after EOF").
    let dir = tempdir();
    let image = image_with_data(dir.path(), "gte.vmdk", "vmdk", None);
    let bytes = std::fs::read(&image).unwrap();
    let len = bytes.len() as u64;
    let gd = le64(&bytes, 56) * 512;
    let gt = le32(&bytes, gd as usize) as u64;
    // Grain 16 holds the data qemu-io wrote at 1 MiB.
    let entry = gt * 512 + 16 * 4;
    assert_ne!(
        le32(&bytes, entry as usize),
        0,
        "grain 16 should be allocated"
    );
    let mut problems = Vec::new();
    for sector in [(len / 512) as u32, (len / 512) as u32 + 1000, 0xffff_fff0] {
        let d = tempdir();
        let file = d.path().join("gte.vmdk");
        std::fs::copy(&image, &file).unwrap();
        patch(&file, entry, &sector.to_le_bytes());
        for e in refused_everywhere(&file, &["convert -O raw (probe)", "convert -O vhd (vmdk)"]) {
            problems.push(format!("grain 16 at sector {sector}: {e}"));
        }
    }
    assert_no_problems(problems);
}

#[test]
fn vhd_bat_at_offset_zero_is_refused() {
    // A BAT at byte 0 would overlap the footer copy; read literally, its
    // entries ("cone", "ctix", ...) point far past the end of the file.
    // qemu-img refuses the image; vimg must too, not read the metadata as
    // disk data.
    let dir = tempdir();
    let image = image_with_data(dir.path(), "bat0.vhd", "vhd", None);
    set_vhd_field(&image, 512, 1024, 36, 16, &0u64.to_be_bytes());
    assert!(qemu_img!("info -f vpc", &image).run().status.code() == Some(1));
    assert_no_problems(refused_everywhere(
        &image,
        &[
            "info (probe)",
            "convert -O raw (probe)",
            "convert -O vmdk (vpc)",
        ],
    ));
}

#[test]
fn missing_files_and_directories_are_refused() {
    let dir = tempdir();
    let mut problems = Vec::new();
    let missing = dir.path().join("missing.vmdk");
    for e in refused_everywhere(&missing, &[]) {
        problems.push(format!("a missing file: {e}"));
    }
    let folder = dir.path().join("folder.vhd");
    std::fs::create_dir(&folder).unwrap();
    for e in refused_everywhere(&folder, &[]) {
        problems.push(format!("a directory: {e}"));
    }
    // Read as raw, a directory is no disk either.
    let out = vimg!("info -f raw", &folder).run();
    if let Err(e) = out.check_one_line_error(&folder) {
        problems.push(format!(
            "`vimg info -f raw` on a directory: {e}\nstdout: {}",
            out.stdout_text()
        ));
    }
    assert_no_problems(problems);
}

/// `check`, probed and with each format, in JSON, and repairing, on
/// `file`: each ends in time without a panic, with one of check's exit
/// codes (1 with one error line). Returns what went wrong.
fn check_survives(file: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for args in [
        "check",
        "check -f vmdk",
        "check -f vpc",
        "check --output json",
        "check -r all",
        "check",
    ] {
        let vimg = vimg!().words(args).arg(file);
        let out = vimg.run_within(std::time::Duration::from_secs(20));
        let stderr = out.stderr_text();
        match out.code() {
            Some(0 | 2 | 3) if !stderr.contains("panicked") => {}
            Some(1) => {
                if let Err(e) = out.check_one_line_error(file) {
                    problems.push(format!("`{vimg}`: {e}"));
                }
            }
            other => problems.push(format!("`{vimg}` exited {other:?}: {stderr}")),
        }
    }
    problems
}

#[test]
fn check_survives_random_bytes_and_truncated_images() {
    let dir = tempdir();
    let d = dir.path();
    let mut problems = Vec::new();
    for seed in 0..6u64 {
        for (name, size) in [("r.vmdk", 512 + seed * 700), ("r.vhd", 4096 * (seed + 1))] {
            let file = d.join(format!("{seed}-{name}"));
            std::fs::write(&file, Rng::new(seed).bytes(size as usize)).unwrap();
            problems.extend(check_survives(&file));
        }
    }
    for (name, fmt) in [("cut.vmdk", "vmdk"), ("cut.vhd", "vpc")] {
        let image = image_with_data(d, name, fmt, None);
        let len = file_len(&image);
        let cuts = match fmt {
            "vmdk" => vmdk_cuts(len),
            _ => vhd_cuts(len),
        };
        for cut in cuts {
            let file = d.join(format!("{cut}-{name}"));
            std::fs::copy(&image, &file).unwrap();
            truncate(&file, cut);
            problems.extend(check_survives(&file));
        }
    }
    assert_no_problems(problems);
}
