//! Never losing a file: `create` and `convert` refuse an existing target
//! unless `--force`, replace it whole with `--force`, and a failure leaves
//! neither a target nor a hidden work folder behind (acceptance item 5).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

/// Fill `path` with `len` random bytes; returns them.
fn random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let bytes = Rng::new(seed).bytes(len);
    fs::write(path, &bytes).unwrap();
    bytes
}

/// The (format, -o options, file name) of every kind of target.
const KINDS: [(&str, Option<&str>, &str); 4] = [
    ("vmdk", None, "t.vmdk"),
    ("vhd", None, "t.vhd"),
    ("vhd", Some("subformat=fixed"), "tf.vhd"),
    ("raw", None, "t.raw"),
];

fn create(fmt: &str, opts: Option<&str>, path: &Path, size: &str) -> Cmd {
    vimg!("create -f", fmt).opt("-o", opts).arg(path).arg(size)
}

fn convert(fmt: &str, opts: Option<&str>, src: &Path, dst: &Path) -> Cmd {
    vimg!("convert -f raw -O", fmt)
        .opt("-o", opts)
        .arg(src)
        .arg(dst)
}

/// Assert that `vimg` fails on the existing `path` and leaves it, and the
/// directory, exactly as they were.
fn assert_refused_and_untouched(vimg: &Cmd, path: &Path, old: &[u8]) {
    let dir = path.parent().unwrap();
    let before = dir_names(dir);
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let out = vimg.one_line_error(path, &vimg.to_string());
    let stderr = out.stderr_text();
    assert!(
        stderr.contains("--force"),
        "the error should name --force: {stderr}"
    );
    assert!(
        fs::read(path).unwrap() == old,
        "`{vimg}` changed the existing {}",
        path.display()
    );
    assert_eq!(fs::metadata(path).unwrap().modified().unwrap(), mtime);
    assert_eq!(dir_names(dir), before, "`{vimg}`");
}

#[test]
fn create_refuses_an_existing_file_without_force() {
    let dir = tempdir();
    for (i, (fmt, opts, name)) in KINDS.into_iter().enumerate() {
        let path = dir.path().join(name);
        let old = random_file(&path, 100_000 + i, i as u64);
        assert_refused_and_untouched(&create(fmt, opts, &path, "10M"), &path, &old);
        // An empty file is a file too.
        fs::write(&path, b"").unwrap();
        assert_refused_and_untouched(&create(fmt, opts, &path, "10M"), &path, b"");
        fs::remove_file(&path).unwrap();
    }
    // An existing image of the same kind is not replaced either.
    let path = dir.path().join("img.vmdk");
    vimg!("create -q -f vmdk", &path, "1M").ok();
    let old = fs::read(&path).unwrap();
    assert_refused_and_untouched(&create("vmdk", None, &path, "1M"), &path, &old);
}

#[test]
fn convert_refuses_an_existing_target_without_force() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    build_raw(&src, 3 * MIB, 5);
    for (i, (fmt, opts, name)) in KINDS.into_iter().enumerate() {
        let path = dir.path().join(name);
        let old = random_file(&path, 50_000 + i, 10 + i as u64);
        assert_refused_and_untouched(&convert(fmt, opts, &src, &path), &path, &old);
        fs::remove_file(&path).unwrap();
    }
    // Source and target the same file: refused with or without --force
    // (--force would not help: the source reads it).
    let old = fs::read(&src).unwrap();
    for line in ["convert -f raw -O raw", "convert --force -f raw -O raw"] {
        let run = vimg!()
            .words(line)
            .arg(&src)
            .arg(&src)
            .one_line_error(&src, line);
        assert!(run.stderr_text().contains("the source reads it"), "{run:?}");
        assert_eq!(fs::read(&src).unwrap(), old);
    }
}

#[test]
fn a_dangling_symlink_counts_as_existing() {
    let dir = tempdir();
    let link = dir.path().join("link.vmdk");
    std::os::unix::fs::symlink(dir.path().join("nowhere.vmdk"), &link).unwrap();
    vimg!("create -f vmdk", &link, "1M").one_line_error(&link, "create onto a dangling symlink");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(dir_names(dir.path()), ["link.vmdk"]);
}

#[test]
fn create_with_force_replaces_the_file() {
    let dir = tempdir();
    for (i, (fmt, opts, name)) in KINDS.into_iter().enumerate() {
        let path = dir.path().join(name);
        // Larger than the new image: nothing of it may survive.
        random_file(&path, 6 * MIB as usize, 20 + i as u64);
        create(fmt, opts, &path, "5M").arg("--force").ok();
        let q = qemu_info(Some(fmt), &path);
        assert_eq!(field_u64(&q, "virtual-size"), 5 * MIB, "{name}: {q:#}");
        let v = vimg_info(None, &path);
        assert_eq!(field_str(&v, "format"), qemu_fmt(fmt));
        assert_eq!(field_u64(&v, "virtual-size"), 5 * MIB);
        // A new image reads as zeros.
        let zeros = dir.path().join("zeros.raw");
        fs::File::create(&zeros).unwrap().set_len(5 * MIB).unwrap();
        assert_identical(fmt, &path, "raw", &zeros);
        fs::remove_file(&zeros).unwrap();
        if fmt == "vmdk" {
            let check = qemu_img!("check -f vmdk", &path).ok();
            assert!(check.contains("No errors were found"), "{check}");
        }
    }
    assert_eq!(
        dir_names(dir.path()),
        ["t.raw", "t.vhd", "t.vmdk", "tf.vhd"]
    );
}

#[test]
fn convert_with_force_replaces_the_target() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    build_raw(&src, 3 * MIB + 512, 6);
    for (i, (fmt, opts, name)) in KINDS.into_iter().enumerate() {
        let path = dir.path().join(name);
        random_file(&path, 8 * MIB as usize, 30 + i as u64);
        convert(fmt, opts, &src, &path).arg("--force").ok();
        assert_identical("raw", &src, fmt, &path);
        assert_eq!(
            field_u64(&qemu_info(Some(fmt), &path), "virtual-size"),
            3 * MIB + 512
        );
        if fmt == "raw" {
            assert_eq!(fs::metadata(&path).unwrap().len(), 3 * MIB + 512);
        }
    }
    // The same file as source and target, with --force: the result is
    // the same disk.
    let copy = dir.path().join("same.vmdk");
    vimg!("convert -f raw -O vmdk", &src, &copy).ok();
    let out = vimg!("convert -O vmdk --force", &copy, &copy).run();
    if !out.status.success() {
        out.assert_one_line_error(&copy, "convert a file onto itself");
    }
    assert_identical("raw", &src, "vmdk", &copy);
    let names = dir_names(dir.path());
    assert!(
        names.iter().all(|n| !n.contains(".vimg-")),
        "left a work folder: {names:?}"
    );
}

/// Assert `vimg` fails with one error line and `dir` then holds exactly
/// `expected`.
fn assert_fails_leaving(vimg: &Cmd, named: &Path, dir: &Path, expected: &[&str]) {
    vimg.one_line_error(named, &vimg.to_string());
    assert_eq!(
        dir_names(dir),
        expected,
        "after `{vimg}` (work folders are .NAME.vimg-*.tmp)"
    );
}

#[test]
fn failed_convert_leaves_no_target_and_no_work_folder() {
    let dir = tempdir();
    let d = dir.path();
    let garbage = d.join("garbage.vmdk");
    random_file(&garbage, 200_000, 40);
    let good = d.join("good.raw");
    build_raw(&good, 2 * MIB, 41);
    for (fmt, opts, name) in KINDS {
        let target = d.join(name);
        // A source that is not an image.
        let convert = vimg!("convert -O", fmt)
            .opt("-o", opts)
            .arg(&garbage)
            .arg(&target);
        assert_fails_leaving(&convert, &garbage, d, &["garbage.vmdk", "good.raw"]);
        // The same source forced to each format.
        for forced in ["vmdk", "vpc"] {
            let convert = vimg!("convert -f", forced, "-O", fmt, &garbage, &target);
            assert_fails_leaving(&convert, &garbage, d, &["garbage.vmdk", "good.raw"]);
        }
        // A good source and an option the target format does not know.
        let convert = vimg!(
            "convert -f raw -O",
            fmt,
            "-o subformat=nonsense",
            &good,
            &target
        );
        let out = convert.run();
        assert_eq!(out.status.code(), Some(1), "{convert}");
        let stderr = out.stderr_text();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(dir_names(d), ["garbage.vmdk", "good.raw"], "{stderr}");
    }
    // An unknown target format, a bad -S.
    for bad in [
        vec!["-O", "qcow2"],
        vec!["-O", "vmdk", "-S", "1000"],
        vec!["-O", "vhd", "-o", "block_size=3M"],
        vec!["-O", "vmdk", "-o", "subformat=monolithicFlat,zeroed_grain"],
    ] {
        let convert = vimg!("convert -f raw")
            .args(bad)
            .arg(&good)
            .arg(d.join("out.img"));
        let out = convert.run();
        assert_eq!(out.status.code(), Some(1), "{convert}");
        assert_eq!(out.stderr_text().lines().count(), 1);
        assert_eq!(dir_names(d), ["garbage.vmdk", "good.raw"]);
    }
}

#[test]
fn convert_failing_half_way_leaves_nothing_and_keeps_the_old_target() {
    // A dynamic VHD cut in the middle of its second block: open succeeds,
    // the copy fails when it reaches the missing data.
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("cut.vhd");
    vimg!("create -q -f vhd", &src, "10M").ok();
    qemu_io("vhd", &src, &["write -P 0xab 0 6M", "write -P 0xcd 9M 1M"]);
    let len = fs::metadata(&src).unwrap().len();
    truncate(&src, len - 3 * MIB);
    for (fmt, opts, name) in KINDS {
        let target = d.join(name);
        let convert = vimg!("convert -O", fmt)
            .opt("-o", opts)
            .arg(&src)
            .arg(&target);
        assert_fails_leaving(&convert, &src, d, &["cut.vhd"]);

        // With --force onto an existing file: the failure keeps it.
        let old = random_file(&target, 123_457, 50);
        convert
            .arg("--force")
            .one_line_error(&src, "failed convert --force");
        assert!(fs::read(&target).unwrap() == old, "{name} was changed");
        fs::remove_file(&target).unwrap();
        assert_eq!(dir_names(d), ["cut.vhd"]);
    }
}

#[test]
fn too_big_images_are_refused_and_leave_nothing() {
    let dir = tempdir();
    let d = dir.path();
    for (fmt, opts, name, size) in [
        ("vhd", None, "big.vhd", "3T"),
        ("vhd", Some("subformat=fixed"), "big-fixed.vhd", "3T"),
        ("vpc", None, "big.vpc", "2041G"),
        ("vmdk", None, "big.vmdk", "3T"),
    ] {
        let path = d.join(name);
        assert_fails_leaving(&create(fmt, opts, &path, size), &path, d, &[]);
    }
    // A size that is no size is refused before anything is made.
    for size in ["10X", "1.5", "99999999E", "", "10GiB"] {
        let path = d.join("bad.vmdk");
        let out = create("vmdk", None, &path, size).run();
        assert_eq!(out.status.code(), Some(1), "size {size:?}");
        let stderr = out.stderr_text();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(dir_names(d).is_empty());
    }
}

#[test]
fn failed_create_with_bad_options_leaves_nothing() {
    let dir = tempdir();
    let d = dir.path();
    for (fmt, opts, name) in [
        ("vhd", "subformat=nonsense", "a.vhd"),
        ("vhd", "block_size=3M", "b.vhd"),
        ("vhd", "force_size=maybe", "c.vhd"),
        ("vmdk", "subformat=nonsense", "d.vmdk"),
        ("vmdk", "adapter_type=scsi", "e.vmdk"),
        ("vmdk", "compat6,hwversion=7", "f.vmdk"),
        ("raw", "subformat=fixed", "g.raw"),
        ("vmdk", "no_such_option=1", "h.vmdk"),
    ] {
        let path = d.join(name);
        let out = create(fmt, Some(opts), &path, "10M").run();
        assert_eq!(out.status.code(), Some(1), "{fmt} -o {opts}");
        let stderr = out.stderr_text();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            dir_names(d).is_empty(),
            "{fmt} -o {opts} left {:?}",
            dir_names(d)
        );
    }
}

#[test]
fn a_target_in_a_missing_directory_is_refused() {
    let dir = tempdir();
    let target = dir.path().join("no/such/dir/x.vmdk");
    let out = vimg!("create -f vmdk", &target, "1M").code(1);
    let stderr = out.stderr_text();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no/such/dir"), "{stderr}");
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn convert_into_a_format_too_small_for_the_source_leaves_nothing() {
    let dir = tempdir();
    let d = dir.path();
    // A 3 TiB sparse raw disk with a little data.
    let src = d.join("huge.raw");
    let f = fs::File::create(&src).unwrap();
    f.set_len(3 << 40).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"data", 1 << 40).unwrap();
    drop(f);
    for (fmt, opts, name) in [
        ("vhd", None, "t.vhd"),
        ("vhd", Some("subformat=fixed"), "tf.vhd"),
        ("vmdk", None, "t.vmdk"),
    ] {
        let target = d.join(name);
        let out = convert(fmt, opts, &src, &target).run();
        assert_eq!(out.status.code(), Some(1), "-O {fmt}: {out:?}");
        let stderr = out.stderr_text();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert_eq!(dir_names(d), ["huge.raw"], "-O {fmt}");
    }
}

/// Issue 9, finding 9: Ctrl-C, `timeout` or a cancelled job stopped a
/// convert where it stood and left its half-built image in a hidden folder
/// for ever. Now it stops between steps, removes the folder and exits as a
/// shell reports a signal (128 + the signal).
#[test]
fn finding_9_a_signal_stops_a_convert_and_leaves_nothing_behind() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    // Incompressible data: compression takes seconds.
    std::fs::write(&src, Rng::new(99).bytes(160 << 20)).unwrap();
    let out = d.join("out.vmdk");
    for (signal, code) in [("-INT", 130), ("-TERM", 143), ("-HUP", 129)] {
        let mut child = vimg!("convert -c -O vmdk", &src, &out)
            .command()
            .spawn()
            .unwrap();
        // Wait until the work folder is there, then a little more.
        let started = std::time::Instant::now();
        while !dir_names(d).iter().any(|n| n.contains(".vimg-")) {
            assert!(started.elapsed().as_secs() < 20, "no work folder appeared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        cmd!("kill", signal, child.id().to_string()).ok();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{signal}");
        assert_eq!(dir_names(d), ["src.raw"], "{signal}");
    }
}

/// The work folder of a run killed where no clean-up could run (SIGKILL)
/// is removed by the next run for the same target; one whose process still
/// runs, or that vimg does not recognise as its own, is kept.
#[test]
fn finding_9_a_later_run_removes_the_work_folders_of_dead_runs() {
    let dir = tempdir();
    let d = dir.path();
    let out = d.join("t.raw");
    // A dead process: a child that has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = d.join(".t.raw.vimg-0badf00d.tmp");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join(".vimg-owner"), format!("vimg {dead} 12345\n")).unwrap();
    std::fs::write(stale.join("t.raw"), vec![1u8; 4096]).unwrap();
    // This test's own process: alive (its start time from /proc).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let alive = d.join(".t.raw.vimg-0000beef.tmp");
    std::fs::create_dir(&alive).unwrap();
    std::fs::write(
        alive.join(".vimg-owner"),
        format!("vimg {} {start}\n", std::process::id()),
    )
    .unwrap();
    // Not vimg's: no owner file.
    let foreign = d.join(".t.raw.vimg-12345678.tmp");
    std::fs::create_dir(&foreign).unwrap();
    vimg!("create -q -f raw", &out, MIB).ok();
    assert_eq!(
        dir_names(d),
        [
            ".t.raw.vimg-0000beef.tmp",
            ".t.raw.vimg-12345678.tmp",
            "t.raw"
        ]
    );
}

/// The PIDs of running vimg processes whose command line names `path`.
fn vimg_processes_on(path: &Path) -> Vec<u32> {
    let needle = path.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| a.ends_with("/vimg")) && args.contains(&needle)
        })
        .collect()
}

/// Issue 9, finding 5: `--force` over an image of several files (split or
/// flat VMDK) swaps them one by one; a kill between two swaps left the old
/// descriptor over new extents, which opened without a word. Now a marker
/// makes every open refuse the half-replaced image, saying how to finish,
/// and running the command again finishes it. (strace holds the first swap
/// for 3 s, and the test kills vimg then.)
#[test]
fn finding_5_a_kill_between_the_swaps_of_a_multi_file_force_is_refused_then_finished() {
    let dir = tempdir();
    let d = dir.path();
    let (old_raw, new_raw) = (d.join("old.raw"), d.join("new.raw"));
    build_raw(&old_raw, 4 * MIB, 5);
    build_raw(&new_raw, 4 * MIB, 6);
    let target = d.join("t.vmdk");
    let flat = "subformat=monolithicFlat";
    vimg!("convert -q -f raw -O vmdk -o", flat, &old_raw, &target).ok();
    let mut traced = cmd!("strace", "-f -o /dev/null -e trace=renameat2")
        .arg("-e")
        .arg("inject=renameat2:delay_exit=3000000:when=1")
        .arg(VIMG)
        .words("convert -q --force -f raw -O vmdk -o")
        .arg(flat)
        .arg(&new_raw)
        .arg(&target)
        .command()
        .spawn()
        .unwrap();
    let marker = d.join(".t.vmdk.vimg-replacing");
    let started = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the replacement never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Inside the held swap: the flat extent is new, the descriptor old.
    std::thread::sleep(std::time::Duration::from_millis(500));
    for pid in vimg_processes_on(&target) {
        cmd!("kill", "-KILL", pid.to_string()).ok();
    }
    traced.wait().unwrap();
    assert!(marker.exists());
    for vimg in [
        vimg!("info", &target),
        vimg!("convert -O raw", &target, d.join("x.raw")),
    ] {
        let run = vimg.run();
        if let Err(e) = run.check_one_line_error(&target) {
            panic!("{e}");
        }
        assert!(run.stderr_text().contains("has not finished"), "{run:?}");
    }
    // The same command again finishes the job and tidies up.
    vimg!(
        "convert -q --force -f raw -O vmdk -o",
        flat,
        &new_raw,
        &target
    )
    .ok();
    assert_identical("vmdk", &target, "raw", &new_raw);
    assert_eq!(
        dir_names(d),
        ["new.raw", "old.raw", "t-flat.vmdk", "t.vmdk"]
    );
}

/// Two 3 MiB raw disks of different content (seeds `seed`, `seed + 1`):
/// the old image and the new one of a `--force` replacement.
fn old_and_new(d: &Path, seed: u64) -> (PathBuf, PathBuf) {
    let (old_raw, new_raw) = (d.join("old.raw"), d.join("new.raw"));
    build_raw(&old_raw, 3 * MIB, seed);
    build_raw(&new_raw, 3 * MIB, seed + 1);
    (old_raw, new_raw)
}

/// `convert --force` of the raw `source` into `target` as `fmt` with `opts`.
fn force_convert(fmt: &str, opts: &str, source: &Path, target: &Path) -> Cmd {
    vimg!(
        "convert -q --force -f raw -O",
        fmt,
        "-o",
        opts,
        source,
        target
    )
}

/// Whether two files hold the same bytes.
fn same(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// Issue 9: `convert --force` stopped (SIGKILL) at its Nth file-changing
/// syscall, for every N, leaves at the target the old image or the new
/// one, whole, or (a multi-file target between its swaps) one every open
/// refuses until the command is run again; never anything else.
#[test]
fn force_killed_at_every_write_leaves_the_old_image_or_the_new_one() {
    let dir = tempdir();
    let d = dir.path();
    let (old_raw, new_raw) = old_and_new(d, 7);
    let now = d.join("now.raw");
    for (fmt, opts) in [
        ("vmdk", "subformat=monolithicSparse"),
        ("vmdk", "subformat=monolithicFlat"),
        ("vhd", "subformat=dynamic"),
    ] {
        let target = d.join(format!("t.{fmt}"));
        let put_old = force_convert(fmt, opts, &old_raw, &target);
        let convert = force_convert(fmt, opts, &new_raw, &target);
        put_old.ok();
        let writes = faults::writes_of(&convert);
        assert!(writes.len() > 5, "{opts}: {writes:?}");
        let (mut old, mut new, mut half) = (0, 0, 0);
        for n in 0..writes.len() {
            put_old.ok();
            faults::killed_at(&convert, &writes, n);
            let run = vimg!("convert -q -O raw", &target, &now).run();
            match run.code() {
                Some(0) if same(&now, &old_raw) => old += 1,
                Some(0) if same(&now, &new_raw) => new += 1,
                Some(0) => panic!("{opts}, killed at write {n}: neither image"),
                _ => {
                    assert!(
                        run.stderr_text().contains("has not finished"),
                        "{opts}, killed at write {n} ({}): {run:?}",
                        writes[n]
                    );
                    half += 1;
                    // Running the command again finishes the job.
                    convert.ok();
                    assert_identical(fmt, &target, "raw", &new_raw);
                }
            }
            let _ = std::fs::remove_file(&now);
        }
        assert!(
            old > 0 && new > 0,
            "{opts}: old {old}, new {new}, half {half}"
        );
        // Only the two-file target can be caught between its swaps.
        assert_eq!(
            half > 0,
            opts.ends_with("Flat"),
            "{opts}: old {old}, new {new}, half {half}"
        );
    }
}

/// Issue 9: `convert --force` whose Nth write fails (disk full, I/O
/// error), for every N, ends with one error line or succeeds, and leaves
/// the old image or the new one (or one to finish by running it again).
#[test]
fn force_whose_nth_write_fails_ends_cleanly_with_the_old_image_or_the_new_one() {
    let dir = tempdir();
    let d = dir.path();
    let (old_raw, new_raw) = old_and_new(d, 9);
    let now = d.join("now.raw");
    for (fmt, opts) in [
        ("vmdk", "subformat=monolithicFlat"),
        ("vhd", "subformat=fixed"),
    ] {
        let target = d.join(format!("t.{fmt}"));
        let put_old = force_convert(fmt, opts, &old_raw, &target);
        let convert = force_convert(fmt, opts, &new_raw, &target);
        put_old.ok();
        let writes = faults::writes_of(&convert);
        for (n, errno) in (0..writes.len()).flat_map(|n| [(n, "ENOSPC"), (n, "EIO")]) {
            put_old.ok();
            let out = faults::failed_at(&convert, &writes, n, errno);
            let what = format!("{opts}, write {n} ({}) failing with {errno}", writes[n]);
            match out.code() {
                Some(0) => {}
                Some(1) => assert_eq!(out.stderr_text().lines().count(), 1, "{what}: {out:?}"),
                _ => panic!("{what}: {out:?}"),
            }
            let run = vimg!("convert -q -O raw", &target, &now).run();
            match run.code() {
                Some(0) => assert!(same(&now, &old_raw) || same(&now, &new_raw), "{what}"),
                _ => {
                    assert!(
                        run.stderr_text().contains("has not finished"),
                        "{what}: {run:?}"
                    );
                    convert.ok();
                    assert_identical(fmt, &target, "raw", &new_raw);
                }
            }
            let _ = std::fs::remove_file(&now);
        }
    }
}

/// No command makes an image a delta over itself or over a layer that
/// reads it (a loop that loses the image's data), however the file is
/// named: -b FILE with --force, -b its own child, convert -B, snapshot
/// create, rebase (with and without -u, through a hard link).
#[test]
fn an_image_is_never_made_its_own_parent() {
    let dir = tempdir();
    let d = dir.path();
    for (fmt, ext) in [("vmdk", "vmdk"), ("vpc", "vhd")] {
        let base = d.join(format!("base.{ext}"));
        let child = d.join(format!("child.{ext}"));
        let link = d.join(format!("link.{ext}"));
        vimg!("create -q -f").arg(fmt).arg(&base).arg("4M").ok();
        qemu_io(fmt, &base, &["write -P 3 0 1M"]);
        vimg!("create -q -f")
            .arg(fmt)
            .arg("-b")
            .arg(&base)
            .arg(&child)
            .ok();
        fs::hard_link(&child, &link).unwrap();
        let (old_base, old_child) = (fs::read(&base).unwrap(), fs::read(&child).unwrap());
        let lines = [
            (
                vimg!("create -q --force -f")
                    .arg(fmt)
                    .arg("-b")
                    .arg(&base)
                    .arg(&base),
                &base,
            ),
            (
                vimg!("create -q --force -f")
                    .arg(fmt)
                    .arg("-b")
                    .arg(&child)
                    .arg(&base),
                &base,
            ),
            (
                vimg!("convert -q --force -O")
                    .arg(fmt)
                    .arg("-B")
                    .arg(&base)
                    .arg(&child)
                    .arg(&base),
                &base,
            ),
            (vimg!("snapshot create --force", &child, &child), &child),
            (vimg!("rebase -b", &child, &child), &child),
            (vimg!("rebase -u -b", &link, &child), &child),
        ];
        for (line, named) in lines {
            line.one_line_error(named, "a delta over itself");
            assert_eq!(fs::read(&base).unwrap(), old_base, "{line}");
            assert_eq!(fs::read(&child).unwrap(), old_child, "{line}");
        }
        vimg!("check", &child).ok();
    }
}

/// --force replaces TARGET and its own extents, never another image's
/// file that happens to have an extent's name.
#[test]
fn force_replaces_only_the_files_of_the_image_it_replaces() {
    let dir = tempdir();
    let d = dir.path();
    let disk = d.join("disk.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=monolithicFlat",
        &disk,
        "16M"
    )
    .ok();
    qemu_io("vmdk", &disk, &["write -P 7 0 1M"]);
    // old.vmdk keeps using disk-flat.vmdk; disk.vmdk is now another image.
    let old = d.join("old.vmdk");
    fs::rename(&disk, &old).unwrap();
    vimg!("create -q -f vmdk", &disk, "16M").ok();
    let flat = d.join("disk-flat.vmdk");
    let before = fs::read(&flat).unwrap();
    let src = d.join("src.vmdk");
    vimg!("create -q -f vmdk", &src, "16M").ok();
    for line in [
        vimg!(
            "convert --force -O vmdk -o subformat=monolithicFlat",
            &src,
            &disk
        ),
        vimg!(
            "create --force -f vmdk -o subformat=monolithicFlat",
            &disk,
            "16M"
        ),
    ] {
        line.one_line_error(&flat, "another image's extent");
        assert_eq!(fs::read(&flat).unwrap(), before, "{line}");
        vimg!("check", &old).ok();
        vimg!("check", &disk).ok();
    }
    // Its own extents it replaces.
    let own = d.join("own.vmdk");
    vimg!("create -q -f vmdk -o subformat=monolithicFlat", &own, "4M").ok();
    vimg!(
        "create -q --force -f vmdk -o subformat=monolithicFlat",
        &own,
        "8M"
    )
    .ok();
    assert_eq!(qemu_info(None, &own)["virtual-size"], 8 << 20);
}

/// A reader holds the lock qemu-img's readers hold: while `convert` reads
/// an image, neither vimg nor QEMU writes it (the copy would mix old and
/// new data); other readers go on.
#[test]
fn an_image_being_read_is_not_written_meanwhile() {
    let dir = tempdir();
    let d = dir.path();
    let img = d.join("b.vmdk");
    vimg!("create -q -f vmdk", &img, "32M").ok();
    qemu_io("vmdk", &img, &["write -P 8 0 32M"]);
    let out = d.join("out.raw");
    let settle = std::time::Duration::from_millis(700);
    let mut convert = in_background(&vimg!("convert -r 16M -O raw", &img, &out), settle);
    let compact = vimg!("compact", &img).run();
    let qemu = qemu_io_write_vmdk(&img, 9, "64k");
    let info = vimg!("info", &img).run();
    let qemu_info = qemu_img!("info", &img).run();
    assert!(convert.wait().unwrap().success());
    assert_eq!(compact.code(), Some(1), "{compact:?}");
    assert!(compact.stderr_text().contains("in use"), "{compact:?}");
    assert!(qemu.stderr_text().contains("lock"), "{qemu:?}");
    assert_eq!(info.code(), Some(0), "{info:?}");
    assert_eq!(qemu_info.code(), Some(0), "{qemu_info:?}");
    assert_identical("vmdk", &img, "raw", &out);
}
