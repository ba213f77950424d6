//! `vimg resize`: every VMDK subformat vimg writes and fixed and dynamic
//! VHDs, made by vimg and by qemu-img, grown (in place, and past what the
//! grain directory or BAT had room for) and shrunk; qemu-img, libvmdk and
//! libvhdi see the new size exactly, the checks are clean, the old content
//! reads the same and the new part zeros. Shrinking asks twice before data
//! goes; deltas, disks with deltas and streamOptimized are refused; a
//! resize killed at any write leaves the old size or the new one.

use std::path::{Path, PathBuf};

use crate::support::faults::{assert_no_worse_than_leaks, killed_at, writes_of};
use crate::support::*;

/// The media size libvmdk or libvhdi reads.
fn libyal_size(fmt: &str, path: &Path) -> u64 {
    let script = match fmt {
        "vmdk" => "import sys, pyvmdk\nh = pyvmdk.handle()\nh.open(sys.argv[1])\nh.open_extent_data_files()\nprint(h.get_media_size())",
        _ => "import sys, pyvhdi\nf = pyvhdi.file()\nf.open(sys.argv[1])\nprint(f.get_media_size())",
    };
    python!(script, path).ok().trim().parse().unwrap()
}

/// Every reader takes `path` for a disk of `size` bytes, and it checks
/// clean.
fn assert_size(fmt: &str, path: &Path, size: u64, what: &str) {
    let info = qemu_info(Some(qemu_fmt(fmt)), path);
    assert_eq!(field_u64(&info, "virtual-size"), size, "{what}: qemu-img");
    assert_eq!(libyal_size(fmt, path), size, "{what}: libyal");
    assert_eq!(
        field_u64(&vimg_info(None, path), "virtual-size"),
        size,
        "{what}: vimg"
    );
    vimg!("check", path).ok();
    if fmt == "vmdk" {
        assert_qemu_check(path);
    }
}

/// qemu-img's raw copy of `image`.
fn to_raw(fmt: &str, image: &Path, out: &Path) -> PathBuf {
    qemu_img!("convert -f", fmt, "-O raw", image, out).ok();
    out.to_path_buf()
}

/// The cases: (format, subformat, who makes the image).
const CASES: [(&str, &str); 6] = [
    ("vmdk", "monolithicSparse"),
    ("vmdk", "twoGbMaxExtentSparse"),
    ("vmdk", "monolithicFlat"),
    ("vmdk", "twoGbMaxExtentFlat"),
    ("vpc", "dynamic"),
    ("vpc", "fixed"),
];

/// A 100 MiB image with data at its start and in its last MiB, made by
/// `maker` (vimg or qemu-img); returns it and a raw copy of its content.
fn made(d: &Path, fmt: &str, sub: &str, maker: &str) -> (PathBuf, PathBuf) {
    let ext = if fmt == "vpc" { "vhd" } else { fmt };
    let path = d.join(format!("{maker}-{sub}.{ext}"));
    let opts = match fmt {
        "vpc" => format!("subformat={sub},force_size=on"),
        _ => format!("subformat={sub}"),
    };
    match maker {
        "vimg" => vimg!("create -q -f", ext, "-o", &opts, &path, 100 * MIB).ok(),
        _ => qemu_img!("create -q -f", fmt, "-o", &opts, &path, 100 * MIB).ok(),
    };
    qemu_io(fmt, &path, &["write -P 0xab 0 1M", "write -P 0xcd 99M 1M"]);
    let raw = to_raw(fmt, &path, &d.join(format!("{maker}-{sub}.raw")));
    (path, raw)
}

#[test]
fn every_subformat_grows_and_shrinks_and_every_reader_agrees() {
    for (fmt, sub) in CASES {
        for maker in ["vimg", "qemu-img"] {
            let dir = tempdir();
            let what = format!("{sub} made by {maker}");
            let (path, raw) = made(dir.path(), fmt, sub, maker);
            // Within the tables' room, then past it (a directory or BAT
            // that moves, new extents), then back down.
            for size in [200 * MIB, 5 * GIB + 3 * 512] {
                let out = vimg!("resize", &path, size).ok();
                assert!(out.contains("Image resized"), "{what}: {out}");
                assert_size(fmt, &path, size, &format!("{what} at {size}"));
                assert_identical("raw", &raw, fmt, &path);
            }
            let (mid, back) = (150 * MIB, "-100M");
            vimg!("resize -q --shrink", &path, mid).ok();
            assert_size(fmt, &path, mid, &format!("{what} shrunk"));
            assert_identical("raw", &raw, fmt, &path);
            // Relative sizes, as qemu-img takes them.
            vimg!("resize -q", &path, "+50M").ok();
            vimg!("resize -q --shrink", &path).arg(back).ok();
            assert_size(fmt, &path, 100 * MIB, &format!("{what} back"));
            assert_identical("raw", &raw, fmt, &path);
        }
    }
}

#[test]
fn data_past_the_new_end_goes_only_when_the_user_says_so_twice() {
    let dir = tempdir();
    let d = dir.path();
    for (fmt, sub) in [("vmdk", "monolithicSparse"), ("vpc", "dynamic")] {
        let (path, _) = made(d, fmt, sub, "vimg");
        let run = vimg!("resize", &path, 50 * MIB)
            .one_line_error(&path, "--shrink")
            .stderr_text();
        assert!(run.contains("--shrink"), "{run}");
        let run = vimg!("resize --shrink", &path, 50 * MIB)
            .one_line_error(&path, "--discard-data")
            .stderr_text();
        assert!(
            run.contains("data is stored past the new end (the first at byte 103809024)")
                && run.contains("--discard-data"),
            "{run}"
        );
        assert_size(fmt, &path, 100 * MIB, "refused");
        vimg!("resize -q --shrink --discard-data", &path, 50 * MIB).ok();
        assert_size(fmt, &path, 50 * MIB, "shrunk");
        // What was dropped does not come back when the disk grows again.
        vimg!("resize -q", &path, 100 * MIB).ok();
        qemu_io(fmt, &path, &["read -P 0xab 0 1M", "read -P 0 50M 50M"]);
    }
}

#[test]
fn deltas_disks_with_deltas_and_stream_optimized_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    for ext in ["vmdk", "vhd"] {
        let base = d.join(format!("base.{ext}"));
        let delta = d.join(format!("delta.{ext}"));
        vimg!("create -q -f", ext, &base, 64 * MIB).ok();
        vimg!("snapshot create -q", &base, &delta).ok();
        let run = vimg!("resize", &delta, 128 * MIB)
            .one_line_error(&delta, "commit")
            .stderr_text();
        assert!(run.contains("delta") && run.contains("commit"), "{run}");
        let run = vimg!("resize", &base, 128 * MIB)
            .one_line_error(&base, "deltas lie beside it")
            .stderr_text();
        assert!(run.contains("deltas lie beside it"), "{run}");
        assert!(run.contains(&format!("delta.{ext}")), "{run}");
        assert_eq!(field_u64(&vimg_info(None, &base), "virtual-size"), 64 * MIB);
    }
    let stream = d.join("stream.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=streamOptimized",
        &stream,
        64 * MIB
    )
    .ok();
    let run = vimg!("resize", &stream, 128 * MIB)
        .one_line_error(&stream, "convert")
        .stderr_text();
    assert!(run.contains("convert"), "{run}");
}

/// A split sparse disk shrunk inside an extent: the kept part of that
/// extent is copied into a new one, which takes the old name; the extents
/// past the end go, and nothing else is left beside the disk.
#[test]
fn a_split_sparse_disk_shrinks_inside_an_extent_keeping_its_names() {
    let dir = tempdir();
    let (path, raw) = made(dir.path(), "vmdk", "twoGbMaxExtentSparse", "vimg");
    vimg!("resize -q", &path, 5 * GIB).ok();
    qemu_io("vmdk", &path, &["write -P 0xef 4G 1M"]);
    vimg!("resize -q --shrink --discard-data", &path, 3 * GIB).ok();
    assert_size("vmdk", &path, 3 * GIB, "inside the third extent");
    let mut names = dir_names(dir.path());
    names.retain(|n| n.ends_with(".vmdk"));
    assert_eq!(
        names,
        [
            "vimg-twoGbMaxExtentSparse-s001.vmdk",
            "vimg-twoGbMaxExtentSparse-s002.vmdk",
            "vimg-twoGbMaxExtentSparse-s003.vmdk",
            "vimg-twoGbMaxExtentSparse.vmdk"
        ]
    );
    assert!(dir_names(dir.path()).iter().all(|n| !n.starts_with('.')));
    assert_identical("raw", &raw, "vmdk", &path);
    vimg!("resize -q --shrink --discard-data", &path, 50 * MIB + 512).ok();
    assert_size("vmdk", &path, 50 * MIB + 512, "inside the first extent");
    qemu_io("vmdk", &path, &["read -P 0xab 0 1M", "read -P 0 1M 49M"]);
}

#[test]
fn a_fixed_vhd_resized_to_whole_mib_is_azure_ready_and_warned_otherwise() {
    let dir = tempdir();
    let path = dir.path().join("azure.vhd");
    vimg!("create -q -f vhd -o azure=on", &path, 64 * MIB).ok();
    let run = vimg!("resize", &path, 128 * MIB).run();
    assert_eq!(run.code(), Some(0));
    assert!(!run.stderr_text().contains("Azure"), "{run:?}");
    let run = vimg!("resize", &path, 128 * MIB + 512).run();
    assert!(run.stderr_text().contains("whole number of MiB"), "{run:?}");
    let (size, kind, _, _) = pyvhdi_describe(&path);
    assert_eq!((size, kind), (128 * MIB + 512, 2));
}

/// [`assert_no_worse_than_leaks`], and for a dynamic VHD stopped between
/// its two footers (the trailing one, which vimg, libvhdi and Hyper-V go
/// by, new; the copy at offset 0 old) that copy, which `check -r leaks`
/// and a rerun rewrite.
fn no_worse_than_leaks(path: &Path, what: &str) {
    let json = vimg!("check --output json", path).run();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    let copy =
        |f: &serde_json::Value| f["structure"] == "VHD footer copy" && f["repair"] == "leaks";
    let copy_behind =
        findings.iter().any(copy) && findings.iter().all(|f| f["severity"] == "leak" || copy(f));
    if !copy_behind {
        assert_no_worse_than_leaks(path, what);
    }
}

/// Grow past the tables' room (a grain directory or BAT that moves, new
/// extents, a footer that moves) and shrink, each killed at every write:
/// the disk has its old size or its new one, reads its old content, checks
/// no worse than leaks, and the same command run again finishes.
#[test]
fn a_resize_killed_at_any_write_leaves_the_old_size_or_the_new_one() {
    for (fmt, sub) in CASES {
        for (from, to, shrink) in [(100 * MIB, 5 * GIB, false), (200 * MIB, 150 * MIB, true)] {
            let dir = tempdir();
            let d = dir.path();
            let (path, _) = made(d, fmt, sub, "vimg");
            if shrink {
                // Grown first (a split sparse disk then has a second
                // extent, which the shrink cuts inside), with data past
                // the new end.
                vimg!("resize -q", &path, from).ok();
                qemu_io(fmt, &path, &["write -P 0xef 160M 1M"]);
            }
            let raw = to_raw(fmt, &path, &d.join("content.raw"));
            // What the disk reads at its new size.
            let after = d.join("after.raw");
            std::fs::copy(&raw, &after).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&after)
                .unwrap()
                .set_len(from.min(to))
                .unwrap();
            let pristine = d.join("pristine");
            std::fs::create_dir(&pristine).unwrap();
            let files: Vec<String> = dir_names(d)
                .into_iter()
                .filter(|n| n.contains(sub))
                .collect();
            for f in &files {
                std::fs::copy(d.join(f), pristine.join(f)).unwrap();
            }
            let restore = || {
                for name in dir_names(d).into_iter().filter(|n| n.contains(sub)) {
                    std::fs::remove_file(d.join(name)).unwrap();
                }
                for f in &files {
                    std::fs::copy(pristine.join(f), d.join(f)).unwrap();
                }
            };
            let cmd = || match shrink {
                true => vimg!("resize -q --shrink --discard-data", &path, to),
                false => vimg!("resize -q", &path, to),
            };
            let writes = writes_of(&cmd());
            assert!(!writes.is_empty());
            for n in 0..writes.len() {
                restore();
                killed_at(&cmd(), &writes, n);
                let what = format!("{sub} {from} -> {to} killed at write {n} ({})", writes[n]);
                let size = field_u64(&vimg_info(None, &path), "virtual-size");
                assert!(size == from || size == to, "{what}: {size}");
                no_worse_than_leaks(&path, &what);
                // qemu-img goes by a dynamic VHD's footer copy at offset
                // 0, which follows the trailing one: between the two it
                // still reads the old disk.
                let seen = field_u64(&qemu_info(Some(fmt), &path), "virtual-size");
                assert!(seen == from || seen == to, "{what}: qemu-img sees {seen}");
                let expected = if seen == from { &raw } else { &after };
                assert_identical("raw", expected, fmt, &path);
                cmd().ok();
                assert_size(fmt, &path, to, &format!("{what}, then run again"));
                assert_identical("raw", &after, fmt, &path);
            }
        }
    }
}

#[test]
fn a_raw_disk_is_extended_or_cut_as_qemu_img_does() {
    let dir = tempdir();
    let path = dir.path().join("disk.raw");
    std::fs::write(&path, vec![7u8; MIB as usize]).unwrap();
    vimg!("resize -q -f raw", &path, "+1M").ok();
    assert_eq!(file_len(&path), 2 * MIB);
    qemu_img!("resize -q -f raw", &dir.path().join("disk.raw"), "3M").ok();
    vimg!("resize -q --shrink -f raw", &path, "2M").ok();
    let run = vimg!("resize --shrink -f raw", &path, "512K").one_line_error(&path, "data");
    assert!(run.stderr_text().contains("--discard-data"), "{run:?}");
    vimg!("resize -q --shrink --discard-data", &path, "512K").ok();
    assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 512 * KIB as usize]);
}

/// The table offset a dynamic VHD's header gives.
fn bat_offset(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u64::from_be_bytes(bytes[512 + 16..512 + 24].try_into().unwrap())
}

/// A BAT that must grow stays where it is when copying the blocks in its
/// way writes less than moving it (small blocks, a large table), and moves
/// to the end otherwise; either way killed at each write it leaves the old
/// size or the new one, reading its data, and libvhdi reads the result.
#[test]
fn a_bat_that_must_grow_relocates_the_blocks_in_its_way_or_moves() {
    let dir = tempdir();
    let d = dir.path();
    let path = d.join("small-blocks.vhd");
    vimg!("create -q -f vhd -o block_size=512K", &path, 70 * GIB).ok();
    let data = ["write -P 0xab 0 1M", "write -P 0xcd 69G 1M"];
    qemu_io("vpc", &path, &data);
    let reads = [
        "read -P 0xab 0 1M",
        "read -P 0 1M 1M",
        "read -P 0xcd 69G 1M",
    ];
    let pristine = d.join("pristine.vhd");
    std::fs::copy(&path, &pristine).unwrap();
    for (to, stays) in [(100 * GIB, true), (300 * GIB, false)] {
        std::fs::copy(&pristine, &path).unwrap();
        let table = bat_offset(&path);
        let cmd = || vimg!("resize -q", &path, to);
        let writes = writes_of(&cmd());
        assert_eq!(bat_offset(&path) == table, stays, "to {to}");
        assert_size("vpc", &path, to, "grown");
        qemu_io("vpc", &path, &reads);
        qemu_io(
            "vpc",
            &path,
            &["read -P 0 70G 1G", &format!("read -P 0 {} 1G", to - GIB)],
        );
        // What libvhdi must read: a sparse file with the same data.
        let grown = d.join("grown.raw");
        let f = std::fs::File::create(&grown).unwrap();
        f.set_len(to).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&vec![0xab; MIB as usize], 0).unwrap();
        f.write_all_at(&vec![0xcd; MIB as usize], 69 * GIB).unwrap();
        let ranges = [(0, 2 * MIB), (69 * GIB - MIB, 2 * MIB), (to - MIB, MIB)];
        assert_pyvhdi_reads(&path, &[], &grown, &ranges);
        for n in 0..writes.len() {
            std::fs::copy(&pristine, &path).unwrap();
            killed_at(&cmd(), &writes, n);
            let what = format!("to {to}, killed at write {n} ({})", writes[n]);
            let size = field_u64(&vimg_info(None, &path), "virtual-size");
            assert!(size == 70 * GIB || size == to, "{what}: {size}");
            no_worse_than_leaks(&path, &what);
            qemu_io("vpc", &path, &reads);
            cmd().ok();
            assert_size("vpc", &path, to, &what);
            qemu_io("vpc", &path, &reads);
        }
    }
}

/// What `vimg ARGS` prints on a terminal (`script`), standard error and
/// output together.
fn on_terminal(args: &str) -> String {
    let out = cmd!("script", "-qec")
        .arg(format!("{VIMG} {args}"))
        .arg("/dev/null")
        .run();
    out.stdout_text()
}

/// `-p` draws a bar on a terminal (convert, check, commit; resize while it
/// reads what a shrink would drop, compact while it reads the grains), and
/// nothing when standard error is not a terminal.
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let dir = tempdir();
    let path = dir.path().join("disk.vmdk");
    vimg!("create -q -f vmdk", &path, 4 * GIB).ok();
    // Zeros past 1 GiB: the shrink reads them (with a bar) and goes on.
    qemu_io(
        "vmdk",
        &path,
        &["write -P 1 3G 1M", "write -P 0 3G 1M", "write -P 1 0 1M"],
    );
    let p = path.display();
    // A chain of its own (a disk with a delta beside it is not resized).
    let base = dir.path().join("chain");
    std::fs::create_dir(&base).unwrap();
    let (base, delta) = (base.join("base.vmdk"), base.join("delta.vmdk"));
    vimg!("create -q -f vmdk", &base, 256 * MIB).ok();
    vimg!("snapshot create -q", &base, &delta).ok();
    qemu_io("vmdk", &delta, &["write -P 2 0 64M"]);
    let (d, out) = (delta.display(), dir.path().join("out.vhd"));
    let o = out.display();
    for args in [
        format!("convert -p -O vhd {d} {o}"),
        format!("check -p {d}"),
        format!("commit -p {d}"),
        format!("resize -p --shrink {p} 1G"),
        format!("compact -p {p}"),
    ] {
        let _ = std::fs::remove_file(&out);
        let shown = on_terminal(&args);
        assert!(
            shown.contains("iB/") && shown.contains('%') && !shown.contains("vimg: error"),
            "{args}: {shown}"
        );
        let _ = std::fs::remove_file(&out);
        let run = vimg!().words(&args).run();
        assert_eq!(run.code(), Some(0), "{args}: {run:?}");
        assert!(!run.stderr_text().contains('%'), "{args}: {run:?}");
    }
}
