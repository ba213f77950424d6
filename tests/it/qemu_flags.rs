//! qemu-img's flags, as scripts pass them: every flag qemu-img 10 lists
//! for a verb vimg shares is in vimg's help for it; the flags for what VMDK
//! and VHD do not have are refused in one line (exit 1); the ones that do
//! work (convert -n, -B, -C, -r, --salvage, -m, -W; info -b; commit -r;
//! resize --preallocation; snapshot -l) do it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use crate::support::*;

/// The verbs vimg shares with qemu-img.
const VERBS: &[&str] = &[
    "create", "info", "convert", "map", "check", "commit", "rebase", "compare", "resize", "amend",
    "measure", "snapshot",
];

/// Flags qemu-img's help names that qemu-img itself refuses (`check -u`
/// is in its usage line only: "invalid option -- 'u'").
const NOT_REALLY_QEMU: &[(&str, &str)] = &[("check", "-u")];

/// The flags (`-x`, `--long`) a help text names.
fn flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || "[]|,()=".contains(c))
        .filter(|w| {
            let b = w.as_bytes();
            (b.len() >= 2 && b[0] == b'-' && b[1].is_ascii_alphabetic())
                || (b.len() >= 3 && b.starts_with(b"--") && b[2].is_ascii_alphabetic())
        })
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !matches!(*w, "-h" | "--help"))
        .map(String::from)
        .collect()
}

#[test]
fn vimg_help_lists_every_flag_of_qemu_img_help() {
    let mut missing = Vec::new();
    for verb in VERBS {
        let qemu = qemu_img!().arg(*verb).arg("--help").run();
        let theirs = flags(&qemu.stdout_text());
        assert!(theirs.len() >= 4, "qemu-img {verb} --help: {theirs:?}");
        let ours = flags(&vimg!().arg(*verb).arg("--help").ok());
        for flag in theirs {
            if NOT_REALLY_QEMU.contains(&(*verb, flag.as_str())) {
                continue;
            }
            // Long flags as getopt_long takes them (and vimg, with clap's
            // inferred long flags): any unambiguous prefix (qemu-img amend
            // lists "--progres").
            let found = match flag.starts_with("--") {
                true => ours.iter().any(|o| o.starts_with(&flag)),
                false => ours.contains(&flag),
            };
            if !found {
                missing.push(format!("{verb} {flag}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in vimg's help: {missing:?}");
}

#[test]
fn qemu_img_long_spellings_are_taken() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("a.raw");
    std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap();
    vimg!("convert --source-format raw --target-format vmdk --target-options subformat=monolithicSparse --sparse-size 8k --progress", &raw, d.join("a.vmdk")).ok();
    vimg!(
        "convert --source-format=raw --target-format=vpc --target-cache=unsafe --source-cache=none",
        &raw,
        d.join("a.vhd")
    )
    .ok();
    vimg!(
        "compare --a-format vmdk --b-format vpc --strict --cache writeback",
        d.join("a.vmdk"),
        d.join("a.vhd")
    )
    .ok();
    vimg!("info -b -f vmdk", d.join("a.vmdk")).ok();
    vimg!("check -T none --format vmdk", d.join("a.vmdk")).ok();
    vimg!("measure -s 1G -O vmdk").ok();
    vimg!(
        "amend --progres -t none --force -o hwversion=14",
        d.join("a.vmdk")
    )
    .ok();
    vimg!(
        "create --format vmdk --options adapter_type=lsilogic",
        d.join("b.vmdk"),
        "1M"
    )
    .ok();
    vimg!(
        "create -q -f vmdk --backing a.vmdk --backing-format vmdk -u",
        d.join("c.vmdk")
    )
    .ok();
    vimg!("commit --drop -t writeback -r 100M", d.join("c.vmdk")).ok();
    vimg!(
        "rebase --backing-unsafe -t none -T none -U --backing a.vmdk --backing-format vmdk",
        d.join("c.vmdk")
    )
    .ok();
    vimg!("resize --preallocation off -f raw", &raw, "2M").ok();
}

#[test]
fn flags_for_what_vmdk_and_vhd_lack_are_refused_in_one_line() {
    let dir = tempdir();
    let d = dir.path();
    let img = d.join("a.vmdk");
    vimg!("create -q -f vmdk", &img, "1M").ok();
    let out = d.join("out.raw");
    for (line, flag) in [
        (vimg!("info --image-opts", &img), "--image-opts"),
        (vimg!("map --object secret,id=s0,data=x", &img), "--object"),
        (vimg!("check --image-opts", &img), "--image-opts"),
        (vimg!("convert -l snap1", &img, &out), "-l"),
        (vimg!("convert --bitmaps", &img, &out), "--bitmaps"),
        (
            vimg!("convert --skip-broken-bitmaps", &img, &out),
            "--skip-broken-bitmaps",
        ),
        (
            vimg!("convert --source-image-opts", &img, &out),
            "--source-image-opts",
        ),
        (
            vimg!("convert --target-image-opts", &img, &out),
            "--target-image-opts",
        ),
        (
            vimg!("convert --object secret,id=s0,data=x", &img, &out),
            "--object",
        ),
        (
            vimg!(
                "create --object secret,id=s0,data=x -f vmdk",
                d.join("n.vmdk"),
                "1M"
            ),
            "--object",
        ),
        (vimg!("measure -l snap1", &img), "-l"),
        (vimg!("snapshot -c snap1", &img), "-c"),
        (vimg!("snapshot -a snap1", &img), "-a"),
        (vimg!("snapshot -d snap1", &img), "-d"),
        (vimg!("rebase -c -b ''", &img), "-c"),
        (vimg!("compare --image-opts", &img, &img), "--image-opts"),
        (vimg!("resize --image-opts", &img, "2M"), "--image-opts"),
        (
            vimg!("amend --image-opts -o hwversion=14", &img),
            "--image-opts",
        ),
        (vimg!("commit --image-opts", &img), "--image-opts"),
    ] {
        let run = line.run();
        let err = run.stderr_text();
        // compare's code for "could not compare" is 2 (1 says "different").
        let code = match line.argv().first().and_then(|a| a.to_str()) {
            Some("compare") => 2,
            _ => 1,
        };
        assert_eq!(run.code(), Some(code), "`{line}`: {run:?}");
        assert_eq!(err.lines().count(), 1, "`{line}`: {err}");
        assert!(
            err.starts_with(&format!("vimg: error: {flag} is not supported: ")),
            "`{line}`: {err}"
        );
    }
    assert!(!out.exists());
    // qemu-img's own list of internal snapshots: empty, for these formats.
    assert_eq!(vimg!("snapshot -l", &img).ok(), "");
    assert_eq!(vimg!("snapshot", &img).ok(), "");
}

/// A 64 MiB disk with data, zeros and holes: `src.raw`.
fn source(d: &Path) -> std::path::PathBuf {
    let src = d.join("src.raw");
    qemu_img!("create -q -f raw", &src, "64M").ok();
    qemu_io(
        "raw",
        &src,
        &[
            "write -P 1 0 16M",
            "write -P 2 32M 8M",
            "write -P 3 60M 100k",
        ],
    );
    src
}

#[test]
fn convert_n_writes_into_existing_images_of_every_format() {
    let dir = tempdir();
    let d = dir.path();
    let src = source(d);
    for (fmt, create) in [
        ("vmdk", "create -q -f vmdk"),
        ("vpc", "create -q -f vpc -o force_size=on"),
        ("raw", "create -q -f raw"),
    ] {
        let target = d.join(format!("target.{fmt}"));
        qemu_img!().words(create).arg(&target).arg("64M").ok();
        // Old content everywhere, which must go where the source has zeros.
        qemu_io(fmt, &target, &["write -P 9 0 64M"]);
        let line = vimg!("convert -n -O").arg(fmt).arg(&src).arg(&target);
        line.ok();
        assert_identical("raw", &src, fmt, &target);
        if fmt != "raw" {
            vimg!("check", &target).ok();
        }
        // --target-is-zero: only the data is written.
        std::fs::remove_file(&target).unwrap();
        qemu_img!().words(create).arg(&target).arg("64M").ok();
        vimg!("convert -n --target-is-zero -O")
            .arg(fmt)
            .arg(&src)
            .arg(&target)
            .ok();
        assert_identical("raw", &src, fmt, &target);
    }
    // Without -O, an existing VMDK is not overwritten as raw bytes.
    let vmdk = d.join("target.vmdk");
    vimg!("convert -n", &src, &vmdk).one_line_error(&vmdk, "-n without -O into a VMDK");
    // Too small a target.
    let small = d.join("small.raw");
    qemu_img!("create -q -f raw", &small, "1M").ok();
    vimg!("convert -n", &src, &small).one_line_error(&small, "a target smaller than the source");
    // A target the source reads (itself, its parent, a hard link to it,
    // one of several sources) is refused, untouched: qemu-img's locks
    // refuse it too.
    let full = d.join("full.vmdk");
    vimg!("create -q -f vmdk", &full, "4M").ok();
    qemu_io("vmdk", &full, &["write -P 9 0 4M"]);
    let delta = d.join("over-full.vmdk");
    vimg!("create -q -f vmdk -b full.vmdk", &delta).ok();
    let hard = d.join("hard.vmdk");
    std::fs::hard_link(&full, &hard).unwrap();
    let before = sha256(&full);
    for (source, target) in [(&full, &full), (&delta, &full), (&full, &hard)] {
        vimg!("convert -n -O raw", source, target)
            .one_line_error(target, "-n over what the source reads");
    }
    vimg!("convert -n -O raw", &small, &full, &full)
        .one_line_error(&full, "-n over one of the sources");
    assert_eq!(sha256(&full), before);
    vimg!("check", &delta).ok();
    // --target-is-zero needs -n, as in qemu-img (a usage error: exit 1).
    vimg!("convert --target-is-zero", &src, d.join("x.raw")).code(1);
}

/// `convert -n` writes into an existing image in place, as qemu-img does:
/// stopped at any write, the image is no worse than leaking, each 64 KiB
/// piece reads as it did or as the source (never a mix, nor anything
/// else), and a rerun finishes the copy.
/// The keys of the options `-o help` lists (`  key=<kind>  - about`).
fn option_keys(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .collect()
}

#[test]
fn o_help_lists_every_option_qemu_img_lists_and_each_is_taken() {
    let dir = tempdir();
    let d = dir.path();
    for fmt in ["vmdk", "vpc", "raw"] {
        let ours = option_keys(&vimg!("create -f").arg(fmt).arg("-o").arg("help").ok());
        let qemu = qemu_img!("create -f").arg(fmt).arg("-o").arg("help").run();
        let theirs = option_keys(&qemu.stdout_text());
        assert!(theirs.contains("size"), "{qemu:?}");
        // qemu-img's raw takes preallocation, which vimg's create -f raw
        // does not (resize --preallocation does).
        let skipped = |k: &str| fmt == "raw" && k != "size";
        let missing: Vec<_> = theirs
            .iter()
            .filter(|k| !ours.contains(*k) && !skipped(k))
            .collect();
        assert!(missing.is_empty(), "{fmt}: -o help lacks {missing:?}");
        // Each listed key is one create knows (it may want others with it).
        for key in &ours {
            let value = match key.as_str() {
                "size" | "block_size" => "1M",
                "backing_file" => "none.img",
                "backing_fmt" | "subformat" => fmt,
                _ => "1",
            };
            let run = vimg!("create -q -f")
                .arg(fmt)
                .arg("-o")
                .arg(format!("{key}={value}"))
                .arg(d.join(format!("{key}.{fmt}")))
                .arg("1M")
                .run();
            assert!(
                !run.stderr_text().contains("has no option"),
                "{fmt} {key}: {run:?}"
            );
        }
        // qemu-img's `-o ?`, and convert's list (the target's).
        assert_eq!(
            option_keys(&vimg!("create -f").arg(fmt).arg("-o").arg("?").ok()),
            ours
        );
        let convert = option_keys(&vimg!("convert -O").arg(fmt).arg("-o").arg("help").ok());
        assert!(!convert.contains("size") && convert.iter().all(|k| ours.contains(k)));
    }
    // -o size, backing_file and backing_fmt as qemu-img takes them.
    let base = d.join("base.vmdk");
    vimg!("create -q -f vmdk -o size=8M", &base).ok();
    assert_eq!(qemu_info(None, &base)["virtual-size"], 8 << 20);
    let delta = d.join("delta.vmdk");
    vimg!(
        "create -q -f vmdk -o backing_file=base.vmdk,backing_fmt=vmdk",
        &delta
    )
    .ok();
    assert_eq!(qemu_info(None, &delta)["backing-filename"], "base.vmdk");
    let over = d.join("over.vmdk");
    vimg!("convert -O vmdk -o backing_file=base.vmdk", &base, &over).ok();
    assert_eq!(qemu_info(None, &over)["backing-filename"], "base.vmdk");
    assert_identical("vmdk", &base, "vmdk", &over);
    // amend's list: each key is one amend takes.
    for (fmt, image) in [("vmdk", "amend.vmdk"), ("vpc", "amend.vhd")] {
        let image = d.join(image);
        vimg!("create -q -f").arg(fmt).arg(&image).arg("8M").ok();
        let keys = option_keys(&vimg!("amend -o help", &image).ok());
        assert_eq!(option_keys(&vimg!("amend -o help -f").arg(fmt).ok()), keys);
        assert!(keys.len() >= 4, "{fmt}: {keys:?}");
        for key in keys {
            let value = match key.as_str() {
                "adapter_type" => "lsilogic",
                "geometry" => "16/16/63",
                "creator_app" => "win",
                "creator_os" => "Wi2k",
                "creator_version" => "10.0",
                "compat6" | "force_size" => "on",
                _ => "7",
            };
            let run = vimg!("amend -q -o")
                .arg(format!("{key}={value}"))
                .arg(&image)
                .run();
            assert!(
                !run.stderr_text().contains("has no option"),
                "{fmt} {key}: {run:?}"
            );
        }
        vimg!("check", &image).ok();
    }
    // The size once, as qemu-img insists.
    vimg!("create -f raw -o size=1M", d.join("twice.raw"), "1M")
        .one_line_error(&d.join("twice.raw"), "-o size and SIZE");
    // What qemu-img's convert takes and ignores: said, not refused.
    let run = vimg!(
        "convert -O raw -o size=1M -F vmdk",
        &base,
        d.join("ignored.raw")
    )
    .run();
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(
        run.stderr_text().contains("-o size has no effect"),
        "{run:?}"
    );
    assert!(
        run.stderr_text().contains("-F (backing_fmt) has no effect"),
        "{run:?}"
    );
    // snapshot create: its format's options, but what BASE settles.
    let keys = option_keys(&vimg!("snapshot create -o help", &base, d.join("s.vmdk")).ok());
    assert!(keys.contains("subformat") && !keys.contains("size") && !keys.contains("backing_file"));
    assert!(!d.join("s.vmdk").exists());
    let run = vimg!("snapshot create -o size=1M", &base, d.join("s.vmdk")).run();
    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr_text().contains("a delta has its parent's size"),
        "{run:?}"
    );
    // Without a FILE, only -o help.
    vimg!("create -f vmdk").code(1);
    vimg!("amend -o hwversion=7").code(1);
    vimg!("convert", &base).code(1);
}

/// Bytes a file takes on disk.
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn create_and_convert_take_preallocation_where_the_bytes_lie_in_files() {
    let dir = tempdir();
    let d = dir.path();
    let src = source(d);
    for mode in ["falloc", "full"] {
        let raw = d.join(format!("{mode}.raw"));
        vimg!("create -q -f raw -o")
            .arg(format!("preallocation={mode}"))
            .arg(&raw)
            .arg("16M")
            .ok();
        assert!(allocated(&raw) >= 16 << 20, "{mode}: {}", allocated(&raw));
        let fixed = d.join(format!("{mode}.vhd"));
        let opts = format!("subformat=fixed,preallocation={mode}");
        vimg!("convert -O vpc -o")
            .arg(&opts)
            .arg(&src)
            .arg(&fixed)
            .ok();
        assert!(allocated(&fixed) >= 64 << 20, "{mode}");
        vimg!("compare", &src, &fixed).ok();
        let flat = d.join(format!("{mode}.vmdk"));
        let opts = format!("subformat=monolithicFlat,preallocation={mode}");
        vimg!("convert -O vmdk -o")
            .arg(&opts)
            .arg(&src)
            .arg(&flat)
            .ok();
        assert!(allocated(&d.join(format!("{mode}-flat.vmdk"))) >= 64 << 20);
        assert_identical("raw", &src, "vmdk", &flat);
    }
    // A target larger than its source (Azure's whole MiB) is preallocated
    // whole.
    let small = d.join("small.raw");
    std::fs::write(&small, vec![1u8; 1000 << 10]).unwrap();
    let azure = d.join("azure.vhd");
    vimg!(
        "convert -O vpc -o azure=on,preallocation=full",
        &small,
        &azure
    )
    .ok();
    assert!(
        allocated(&azure) >= (1 << 20) + 512,
        "{}",
        allocated(&azure)
    );
    // A sparse layout allocates as it is written: refused, nothing made.
    let sparse = d.join("sparse.vmdk");
    vimg!("create -f vmdk -o preallocation=full", &sparse, "16M")
        .one_line_error(&sparse, "a sparse VMDK preallocated");
    vimg!(
        "convert -O vpc -o preallocation=falloc",
        &src,
        d.join("dyn.vhd")
    )
    .code(1);
    assert!(!sparse.exists() && !d.join("dyn.vhd").exists());
    // metadata and off are what vimg does anyway.
    vimg!(
        "create -q -f vmdk -o preallocation=metadata",
        &sparse,
        "16M"
    )
    .ok();
    vimg!(
        "create -f raw -o preallocation=bogus",
        d.join("b.raw"),
        "1M"
    )
    .code(1);
}

#[test]
fn convert_n_killed_at_any_write_leaves_each_piece_old_or_new() {
    use crate::support::faults::{assert_no_worse_than_leaks, killed_at, writes_of};
    const PIECE: usize = 64 << 10;
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    qemu_img!("create -q -f raw", &src, "8M").ok();
    // Data over old data, zeros over old data, data where nothing was.
    qemu_io("raw", &src, &["write -P 1 1M 1M", "write -P 2 5M 256k"]);
    let new = std::fs::read(&src).unwrap();
    for (fmt, ext) in [("vmdk", "vmdk"), ("vpc", "vhd")] {
        let before = d.join(format!("before.{ext}"));
        vimg!("create -q -f").arg(fmt).arg(&before).arg("8M").ok();
        qemu_io(fmt, &before, &["write -P 9 0 3M"]);
        let old_raw = d.join("old.raw");
        vimg!("convert --force -O raw", &before, &old_raw).ok();
        let old = std::fs::read(&old_raw).unwrap();
        let line = |target: &Path| vimg!("convert -n -O").arg(fmt).arg(&src).arg(target);
        let first = d.join(format!("first.{ext}"));
        std::fs::copy(&before, &first).unwrap();
        let writes = writes_of(&line(&first));
        assert!(writes.len() >= 3, "{writes:?}");
        for n in 0..writes.len() {
            let what = format!("{fmt}: killed at write {n} ({})", writes[n]);
            let copy = d.join(format!("kill-{n}.{ext}"));
            std::fs::copy(&before, &copy).unwrap();
            killed_at(&line(&copy), &writes, n);
            assert_no_worse_than_leaks(&copy, &what);
            let now_raw = d.join("now.raw");
            vimg!("convert --force -O raw", &copy, &now_raw).ok();
            let now = std::fs::read(&now_raw).unwrap();
            for (i, piece) in now.chunks(PIECE).enumerate() {
                let at = i * PIECE..(i + 1) * PIECE;
                assert!(
                    piece == &old[at.clone()] || piece == &new[at.clone()],
                    "{what}: piece {i} reads neither as before nor as the source"
                );
            }
            // The rerun finishes the copy (what the stop leaked stays
            // for check -r leaks).
            line(&copy).ok();
            assert_identical("raw", &src, fmt, &copy);
            assert_no_worse_than_leaks(&copy, &format!("{what}, then rerun"));
            std::fs::remove_file(&copy).unwrap();
        }
    }
}

#[test]
fn convert_n_writes_into_a_loop_device() {
    let is_root = cmd!("id", "-u").ok().trim() == "0";
    if !is_root || !cmd!("losetup", "--version").run().status.success() {
        eprintln!("not root, or no losetup: the loop device case is not run");
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let src = source(d);
    let backing = d.join("loop.img");
    std::fs::write(&backing, vec![0xeeu8; 64 << 20]).unwrap();
    let run = cmd!("losetup", "--find --show").arg(&backing).run();
    if !run.status.success() {
        eprintln!("losetup failed (no loop devices here): {run:?}");
        return;
    }
    let dev = run.stdout_text().trim().to_string();
    let result = vimg!("convert -n -O raw", &src, &dev).run();
    let _ = cmd!("losetup", "-d", &dev).run();
    assert_eq!(result.code(), Some(0), "{result:?}");
    assert_identical("raw", &src, "raw", &backing);
}

#[test]
fn convert_b_makes_a_delta_holding_only_what_differs() {
    let dir = tempdir();
    let d = dir.path();
    let base_raw = source(d);
    let src = d.join("changed.raw");
    std::fs::copy(&base_raw, &src).unwrap();
    qemu_io(
        "raw",
        &src,
        &[
            "write -P 9 1M 64k",
            "write -z 33M 1M",
            "write -P 7 50M 100k",
        ],
    );
    for fmt in ["vmdk", "vpc"] {
        let base = d.join(format!("base.{fmt}"));
        let full = d.join(format!("full.{fmt}"));
        let delta = d.join(format!("delta.{fmt}"));
        vimg!("convert -O").arg(fmt).arg(&base_raw).arg(&base).ok();
        vimg!("convert -O").arg(fmt).arg(&src).arg(&full).ok();
        vimg!("convert -O")
            .arg(fmt)
            .arg("-B")
            .arg(format!("base.{fmt}"))
            .arg("-F")
            .arg(fmt)
            .arg(&src)
            .arg(&delta)
            .ok();
        vimg!("compare", &src, &delta).ok();
        let (delta_len, full_len) = (file_len(&delta), file_len(&full));
        assert!(
            delta_len * 4 < full_len,
            "{fmt}: the delta is {delta_len} bytes, the full copy {full_len}"
        );
        let info = vimg_info(None, &delta);
        // VHD records it as Hyper-V does, Windows-style (".\\base.vpc").
        let name = field_str(&info, "backing-filename");
        assert!(name.ends_with(&format!("base.{fmt}")), "{name}");
        vimg!("check", &delta).ok();
        if fmt == "vmdk" {
            assert_identical("raw", &src, "vmdk", &delta);
            assert_qemu_check(&delta);
        } else {
            // qemu-img does not follow VHD parents; libvhdi does.
            let script = "import sys,pyvhdi,hashlib\nf=pyvhdi.file();f.open(sys.argv[1])\np=pyvhdi.file();p.open(sys.argv[2]);f.set_parent(p)\nprint(hashlib.sha256(f.read_buffer(f.get_media_size())).hexdigest())";
            let got = python!(script, &delta, &base).ok();
            assert_eq!(got.trim(), sha256(&src));
        }
    }
}

#[test]
fn convert_c_copies_in_the_kernel_between_plain_files() {
    let dir = tempdir();
    let d = dir.path();
    let src = source(d);
    for (fmt, opts) in [
        ("raw", ""),
        ("vpc", "-o subformat=fixed"),
        ("vmdk", "-o subformat=monolithicFlat"),
    ] {
        let out = d.join(format!("c.{fmt}"));
        let line = vimg!("convert -C -O").arg(fmt);
        let line = match opts.is_empty() {
            true => line,
            false => line.words(opts),
        };
        let line = line.arg(&src).arg(&out);
        let run = cmd!("strace", "-f -qq -e trace=copy_file_range -o")
            .arg(d.join("trace"))
            .arg(VIMG)
            .args(line.argv().iter().cloned())
            .run();
        assert_eq!(run.code(), Some(0), "{run:?}");
        let calls = std::fs::read_to_string(d.join("trace")).unwrap();
        assert!(
            calls
                .lines()
                .filter(|l| l.contains("copy_file_range("))
                .count()
                >= 1,
            "{fmt}: no copy_file_range: {calls}"
        );
        assert_identical("raw", &src, fmt, &out);
    }
    // A sparse target has no places of its own: copied as usual.
    let sparse = d.join("c-sparse.vmdk");
    vimg!("convert -C -O vmdk", &src, &sparse).ok();
    assert_identical("raw", &src, "vmdk", &sparse);
}

#[test]
fn convert_r_limits_the_rate() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("500m.raw");
    qemu_img!("create -q -f raw", &src, "500M").ok();
    qemu_io("raw", &src, &["write -P 5 0 500M"]);
    let start = Instant::now();
    vimg!("convert -r 50M -O vmdk", &src, d.join("out.vmdk")).ok();
    let took = start.elapsed().as_secs_f64();
    assert!(
        (9.5..14.0).contains(&took),
        "500 MiB at 50 MiB/s took {took:.1} s"
    );
}

#[test]
fn convert_salvage_reads_past_unreadable_grains() {
    let dir = tempdir();
    let d = dir.path();
    let img = d.join("cut.vmdk");
    vimg!("create -q -f vmdk", &img, "16M").ok();
    qemu_io("vmdk", &img, &["write -P 3 0 2M", "write -P 4 8M 1M"]);
    // The file cut short: grains 29 and on point past its end.
    truncate(&img, 2_000_000);
    let out = d.join("out.raw");
    vimg!("convert -O raw", &img, &out).one_line_error(&img, "a grain past the end");
    let run = vimg!("convert --salvage -O raw", &img, &out).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    assert!(err.contains("bytes 1900544..2097152"), "{err}");
    assert!(err.contains("bytes 8388608..9437184"), "{err}");
    assert!(err.contains("past the end"), "{err}");
    // What could be read is there; the rest reads as zeros.
    let data = std::fs::read(&out).unwrap();
    assert_eq!(data.len(), 16 << 20);
    assert!(data[..1900544].iter().all(|&b| b == 3));
    assert!(data[1900544..].iter().all(|&b| b == 0));
}

#[test]
fn convert_salvage_reads_past_unreadable_vhd_blocks() {
    let dir = tempdir();
    let d = dir.path();
    let img = d.join("cut.vhd");
    vimg!("create -q -f vhd", &img, "16M").ok();
    qemu_io("vpc", &img, &["write -P 3 0 3M", "write -P 4 8M 1M"]);
    // Cut inside block 1 (its data from byte 2100224): block 1 is cut
    // short, block 4 lies wholly past the end.
    truncate(&img, 3_000_000);
    let out = d.join("out.raw");
    vimg!("convert -O raw", &img, &out).one_line_error(&img, "past the end");
    let run = vimg!("convert --salvage -O raw", &img, &out).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    // The sectors of block 1 that lie in the file are read.
    assert!(err.contains("bytes 2996736..4194304"), "{err}");
    assert!(err.contains("bytes 8388608..10485760"), "{err}");
    assert!(err.contains("block 4 at byte"), "{err}");
    let data = std::fs::read(&out).unwrap();
    assert_eq!(data.len(), 16 << 20);
    assert!(data[..2996736].iter().all(|&b| b == 3));
    assert!(data[2996736..].iter().all(|&b| b == 0));
    // Blocks on one another: the later one is lost, the rest reads.
    let img = d.join("overlap.vhd");
    vimg!("create -q -f vhd", &img, "16M").ok();
    qemu_io("vpc", &img, &["write -P 5 0 4M"]);
    let bat = 1536;
    let mut file = std::fs::read(&img).unwrap();
    let first = file[bat..bat + 4].to_vec();
    file[bat + 4..bat + 8].copy_from_slice(&first);
    std::fs::write(&img, &file).unwrap();
    let out = d.join("out2.raw");
    vimg!("convert -O raw", &img, &out).one_line_error(&img, "overlap");
    let run = vimg!("convert --salvage -O raw", &img, &out).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(
        run.stderr_text().contains("bytes 2097152..4194304"),
        "{run:?}"
    );
    let data = std::fs::read(&out).unwrap();
    assert!(data[..2 << 20].iter().all(|&b| b == 5));
    assert!(data[2 << 20..].iter().all(|&b| b == 0));
    // A BAT of garbage: every block lost whole, at once; the first 100
    // ranges reported one by one.
    let garbage = d.join("garbage.vhd");
    vimg!("create -q -f vhd", &garbage, "512M").ok();
    let mut bytes = std::fs::read(&garbage).unwrap();
    for entry in bytes[1536..1536 + 256 * 4].chunks_mut(4) {
        entry.copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    }
    std::fs::write(&garbage, bytes).unwrap();
    let run = vimg!("convert --salvage -O raw", &garbage, d.join("garbage.raw")).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    assert_eq!(
        err.lines().filter(|l| l.contains(": bytes ")).count(),
        100,
        "{err}"
    );
    assert!(err.contains("... and 156 more ranges"), "{err}");
    assert!(err.contains("536870912 bytes in 256 ranges"), "{err}");
    // A differencing VHD cut short inside a block: of the sectors past the
    // end, those it holds itself are lost; the others read the parent.
    let base = d.join("base.vhd");
    vimg!("create -q -f vhd", &base, "8M").ok();
    qemu_io("vpc", &base, &["write -P 5 0 8M"]);
    let changed = d.join("changed.raw");
    vimg!("convert -O raw", &base, &changed).ok();
    qemu_io("raw", &changed, &["write -P 6 2M 64k", "write -P 7 3M 64k"]);
    let child = d.join("child.vhd");
    vimg!("convert -O vhd -B base.vhd", &changed, &child).ok();
    let map = vimg!("map --output json", &child).json();
    let at_2m = map
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["start"] == 2 << 20)
        .unwrap()["offset"]
        .as_u64()
        .unwrap();
    // Cut just past the data at 2M: the data at 3M lies past the end.
    truncate(&child, at_2m + (64 << 10) + 100);
    let out = d.join("child.raw");
    let run = vimg!("convert --salvage -O raw", &child, &out).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    assert!(
        err.contains("bytes 3145728..3211264 (65536 bytes)"),
        "{err}"
    );
    assert!(err.contains("65536 bytes in 1 ranges"), "{err}");
    let (got, want) = (
        std::fs::read(&out).unwrap(),
        std::fs::read(&changed).unwrap(),
    );
    let lost = (3 << 20)..(3 << 20) + (64 << 10);
    assert!(got[lost.clone()].iter().all(|&b| b == 0));
    assert_eq!(got[..lost.start], want[..lost.start]);
    assert_eq!(got[lost.end..], want[lost.end..]);
}

/// Three sources of three formats, one a delta over a base: `a.vmdk`
/// (8 MiB, through its parent), `b.vhd` (5 MiB) and `c.raw` (1000 bytes,
/// a sector and a half).
fn three_sources(d: &Path) -> [std::path::PathBuf; 3] {
    let base = d.join("base.vmdk");
    let a = d.join("a.vmdk");
    vimg!("create -q -f vmdk", &base, "8M").ok();
    qemu_io("vmdk", &base, &["write -P 1 1M 2M"]);
    vimg!("create -q -f vmdk -b base.vmdk", &a).ok();
    qemu_io("vmdk", &a, &["write -P 7 2M 64k", "write -z 7M 64k"]);
    let b = d.join("b.vhd");
    vimg!("create -q -f vhd", &b, "5M").ok();
    qemu_io("vpc", &b, &["write -P 2 0 1M", "write -P 9 4M 512k"]);
    let c = d.join("c.raw");
    std::fs::write(&c, (0..1000).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    [a, b, c]
}

#[test]
fn convert_concatenates_several_sources_as_qemu_img_does() {
    let dir = tempdir();
    let d = dir.path();
    let [a, b, c] = three_sources(d);
    let theirs = d.join("theirs.raw");
    qemu_img!("convert -O raw", &a, &b, &c, &theirs).ok();
    // Each source takes a whole number of sectors: 8 MiB + 5 MiB + 1024.
    assert_eq!(
        std::fs::metadata(&theirs).unwrap().len(),
        13 * (1 << 20) + 1024
    );
    for (fmt, name) in [("raw", "o.raw"), ("vmdk", "o.vmdk"), ("vpc", "o.vhd")] {
        let out = d.join(name);
        vimg!("convert -O")
            .arg(fmt)
            .arg(&a)
            .arg(&b)
            .arg(&c)
            .arg(&out)
            .ok();
        vimg!("compare", &theirs, &out).ok();
        if fmt == "vmdk" {
            assert_identical("raw", &theirs, "vmdk", &out);
            assert_qemu_check(&out);
        }
    }
    // Into an existing target, and as a delta over a backing file.
    let existing = d.join("existing.raw");
    std::fs::write(&existing, vec![0xeeu8; 14 << 20]).unwrap();
    vimg!("convert -n -O raw", &a, &b, &c, &existing).ok();
    let data = std::fs::read(&existing).unwrap();
    assert_eq!(
        data[..13 * (1 << 20) + 1024],
        std::fs::read(&theirs).unwrap()[..]
    );
    assert!(data[13 * (1 << 20) + 1024..].iter().all(|&x| x == 0xee));
    let over = d.join("over.vmdk");
    let backing = d.join("o.vmdk");
    vimg!("convert -O vmdk -B o.vmdk", &a, &b, &c, &over).ok();
    vimg!("compare", &theirs, &over).ok();
    assert!(std::fs::metadata(&over).unwrap().len() < std::fs::metadata(&backing).unwrap().len());
    // -f is every source's format: one of another format is named.
    vimg!("convert -f vmdk -O raw", &a, &b, d.join("x.raw")).one_line_error(&b, "-f vmdk on a VHD");
    // A salvaging copy names the source a lost range is in, and where.
    let b2 = d.join("b2.vhd");
    std::fs::copy(&b, &b2).unwrap();
    truncate(&b, 600_000);
    let run = vimg!("convert --salvage -O raw", &a, &b, &c, d.join("s.raw")).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    let b_name = b.display().to_string();
    // Block 0 is cut short: what of it lies in the file is read.
    assert!(
        err.contains(&format!("{b_name}: bytes 596992..2097152")),
        "{err}"
    );
    assert!(err.contains(&format!("{b_name}: bytes 4194304..")), "{err}");
    assert!(!err.contains(&format!("{}: bytes", a.display())), "{err}");
    assert!(
        err.contains(&format!("{b_name}: 2548736 bytes in 2 ranges")),
        "{err}"
    );
    // Lost ranges that meet across two sources keep each its own reason:
    // b's last block (past its end), then b2's first (on its header).
    let mut bytes = std::fs::read(&b2).unwrap();
    bytes[1536..1540].copy_from_slice(&1u32.to_be_bytes());
    std::fs::write(&b2, bytes).unwrap();
    let run = vimg!("convert --salvage -O raw", &b, &b2, d.join("s2.raw")).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let err = run.stderr_text();
    let b2_name = b2.display().to_string();
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("vimg: {b2_name}: bytes 0..")))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains(&format!("({b2_name}: ")) && line.contains("block 0"),
        "{line}"
    );
    assert!(err.contains(&format!("{b_name}, {b2_name}: ")), "{err}");
}

#[test]
fn convert_m_and_w_are_honoured_or_harmless() {
    let dir = tempdir();
    let d = dir.path();
    let src = source(d);
    let out = d.join("s.vmdk");
    vimg!(
        "convert -p -W -m 16 -O vmdk -o subformat=streamOptimized",
        &src,
        &out
    )
    .ok();
    assert_identical("raw", &src, "vmdk", &out);
    let one = d.join("one.vmdk");
    vimg!("convert -m 1 -c -O vmdk", &src, &one).ok();
    assert_identical("raw", &src, "vmdk", &one);
    vimg!("convert -m 0 -O vmdk", &src, d.join("zero.vmdk")).code(1);
}

#[test]
fn commit_r_and_info_b_work() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    let delta = d.join("delta.vmdk");
    vimg!("create -q -f vmdk", &base, "64M").ok();
    vimg!("create -q -f vmdk -b base.vmdk", &delta).ok();
    qemu_io("vmdk", &delta, &["write -P 6 0 20M"]);
    let chain = vimg!("info -b --output json", &delta).json();
    assert_eq!(chain.as_array().map(Vec::len), Some(2), "{chain}");
    let start = Instant::now();
    vimg!("commit -r 10M", &delta).ok();
    let took = start.elapsed().as_secs_f64();
    assert!(took >= 1.8, "20 MiB at 10 MiB/s took {took:.1} s");
    vimg!("compare", &delta, &base).ok();
}

#[test]
fn resize_preallocation_allocates_where_the_format_can() {
    let dir = tempdir();
    let d = dir.path();
    let blocks = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks() * 512
    };
    for mode in ["falloc", "full"] {
        let raw = d.join(format!("{mode}.raw"));
        vimg!("create -q -f raw", &raw, "1M").ok();
        vimg!("resize -q -f raw --preallocation")
            .arg(mode)
            .arg(&raw)
            .arg("33M")
            .ok();
        assert_eq!(file_len(&raw), 33 << 20);
        assert!(
            blocks(&raw) >= 32 << 20,
            "{mode}: {} bytes allocated",
            blocks(&raw)
        );
        let vhd = d.join(format!("{mode}.vhd"));
        vimg!("create -q -f vhd -o subformat=fixed", &vhd, "1M").ok();
        vimg!("resize -q --preallocation")
            .arg(mode)
            .arg(&vhd)
            .arg("33M")
            .ok();
        assert!(
            blocks(&vhd) >= 32 << 20,
            "{mode}: {} bytes allocated",
            blocks(&vhd)
        );
        assert_eq!(field_u64(&vimg_info(None, &vhd), "virtual-size"), 33 << 20);
        vimg!("check", &vhd).ok();
    }
    let sparse = d.join("sparse.vmdk");
    vimg!("create -q -f vmdk", &sparse, "1M").ok();
    vimg!("resize --preallocation full", &sparse, "2M").one_line_error(&sparse, "a sparse VMDK");
    assert_eq!(
        field_u64(&vimg_info(None, &sparse), "virtual-size"),
        1 << 20
    );
    vimg!("resize --preallocation metadata", &sparse, "2M").ok();
}
