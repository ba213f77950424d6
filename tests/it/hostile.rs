//! Images from strangers (issue 9's findings, each reproduced first): files
//! an image names are regular files reached without links out of where
//! they may be, FIFOs never hang a command, an image a running VM holds is
//! never replaced, and grain tables that alias one grain are refused on
//! every open.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::support::vmdk::cid_of;
use crate::support::*;

/// A monolithicFlat descriptor naming `extent` for 1 MiB.
fn flat_descriptor(path: &Path, extent: &str) {
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"{extent}\" 0\n"
    );
    std::fs::write(path, text).unwrap();
}

/// `vimg` ends within 10 s, with exit 1 and one error line naming `file`.
fn refused_in_time(vimg: Cmd, file: &Path, what: &str) -> Run {
    let out = vimg.run_within(Duration::from_secs(10));
    if let Err(e) = out.check_one_line_error(file) {
        panic!("{what}: {e}");
    }
    out
}

/// Finding 1: a FIFO named as the image, as an extent or as a parent made
/// `info`, `map` and `convert` block for ever.
#[test]
fn finding_1_fifos_are_refused_at_once() {
    let dir = tempdir();
    let d = dir.path();
    let fifo = d.join("pipe.vmdk");
    cmd!("mkfifo", &fifo).ok();
    let ext_fifo = d.join("ext.bin");
    cmd!("mkfifo", &ext_fifo).ok();
    let desc = d.join("d.vmdk");
    flat_descriptor(&desc, "ext.bin");
    // A delta whose parent hint names a FIFO.
    let delta = d.join("delta.vmdk");
    let base = d.join("base.vmdk");
    vimg!("create -q -f vmdk", &base, MIB).ok();
    vimg!("create -q -f vmdk -b", &base, &delta).ok();
    std::fs::remove_file(&base).unwrap();
    cmd!("mkfifo", &base).ok();
    let out = d.join("out.raw");
    for (image, what) in [(&fifo, "image"), (&desc, "extent"), (&delta, "parent")] {
        for vimg in [
            vimg!("info", image),
            vimg!("map", image),
            vimg!("convert -O raw", image, &out),
        ] {
            let run = refused_in_time(vimg, image, what);
            assert!(
                run.stderr_text().contains("not a regular file"),
                "{what}: {run:?}"
            );
        }
    }
}

/// Finding 3: an extent named by a link in the descriptor's folder that
/// leads out of it (to a file, through a linked folder, to a device) was
/// followed, and `convert` copied the host's file or disk.
#[test]
fn finding_3_extents_never_escape_their_folder_through_links() {
    let dir = tempdir();
    let outside = tempdir();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, vec![0x5e; MIB as usize]).unwrap();
    let d = dir.path();
    let out = d.join("out.raw");
    // A link to a file outside, a folder linked from outside, a device.
    symlink(&secret, d.join("link.bin")).unwrap();
    symlink(outside.path(), d.join("sub")).unwrap();
    symlink("/dev/zero", d.join("dev.bin")).unwrap();
    for (name, extent) in [
        ("a.vmdk", "link.bin"),
        ("b.vmdk", "sub/secret"),
        ("c.vmdk", "dev.bin"),
    ] {
        let desc = d.join(name);
        flat_descriptor(&desc, extent);
        for vimg in [vimg!("info", &desc), vimg!("convert -O raw", &desc, &out)] {
            let run = refused_in_time(vimg, &desc, extent);
            assert!(
                run.stderr_text().contains("leads out of"),
                "{extent}: {run:?}"
            );
        }
        assert!(!out.exists(), "{extent}: a raw copy was written");
    }
    // A link that stays in the folder is followed: the folder is where the
    // extents may be, however they are named there.
    std::fs::write(d.join("real.bin"), vec![0x42; MIB as usize]).unwrap();
    symlink("real.bin", d.join("inside.bin")).unwrap();
    let desc = d.join("ok.vmdk");
    flat_descriptor(&desc, "inside.bin");
    vimg!("convert -O raw", &desc, &out).ok();
    assert_eq!(read_at(&out, 0, 4), [0x42; 4]);
}

/// Finding 2: `--force` swapped away an image a running VM (qemu-nbd)
/// holds, and the VM's later writes went to a file nobody can reach.
#[test]
fn finding_2_force_never_replaces_an_image_a_vm_holds() {
    let dir = tempdir();
    let d = dir.path();
    let vm = d.join("vm.vmdk");
    let other = d.join("other.vmdk");
    vimg!("create -q -f vmdk", &vm, 64 * MIB).ok();
    vimg!("create -q -f vmdk", &other, 32 * MIB).ok();
    let before = std::fs::read(&vm).unwrap();
    let nbd = nbd::serve("vmdk", &vm);
    for vimg in [
        vimg!("convert --force -O vmdk", &other, &vm),
        vimg!("create --force -f vmdk", &vm, MIB),
        vimg!("create --force -f vhd", &vm, MIB),
    ] {
        let run = vimg.run();
        if let Err(e) = run.check_one_line_error(&vm) {
            panic!("replacing a served image: {e}");
        }
        assert!(
            run.stderr_text().contains("in use by another process"),
            "{run:?}"
        );
    }
    assert_eq!(std::fs::read(&vm).unwrap(), before);
    assert_eq!(dir_names(d), ["nbd.sock", "other.vmdk", "vm.vmdk"]);
    drop(nbd);
    // Once the VM is gone, --force replaces it.
    vimg!("convert -q --force -O vmdk", &other, &vm).ok();
    assert_eq!(field_u64(&vimg_info(None, &vm), "virtual-size"), 32 * MIB);
}

/// Finding 6: read-only opens took grain tables whose entries all name one
/// grain; a 300 KiB file then claimed a terabyte of data.
#[test]
fn finding_6_grains_named_twice_are_refused_on_every_open() {
    let dir = tempdir();
    let d = dir.path();
    for (name, stream) in [("plain.vmdk", false), ("stream.vmdk", true)] {
        let image = d.join(name);
        // 4 MiB, of which only the first grain holds data.
        let src = d.join("src.raw");
        std::fs::write(&src, vec![0x61; 64 * KIB as usize]).unwrap();
        truncate(&src, 4 * MIB);
        let sub = if stream {
            "subformat=streamOptimized"
        } else {
            "subformat=monolithicSparse"
        };
        qemu_img!("convert -q -f raw -O vmdk -o", sub, &src, &image).ok();
        vimg!("info", &image).ok();
        // The grain directory, or (all ones) the footer that says where.
        let mut header = read_at(&image, 0, 512);
        if le64(&header, 56) == u64::MAX {
            header = read_at(&image, file_len(&image) - 1024, 512);
        }
        let gd = le64(&header, 56) * 512;
        let gt = le32(&read_at(&image, gd, 4), 0) as u64 * 512;
        let first = read_at(&image, gt, 4);
        for grain in 1..64 {
            patch(&image, gt + grain * 4, &first);
        }
        let out = d.join("out.raw");
        for vimg in [
            vimg!("info", &image),
            vimg!("map", &image),
            vimg!("convert -O raw", &image, &out),
        ] {
            let run = refused_in_time(vimg, &image, name);
            assert!(run.stderr_text().contains("overlap"), "{name}: {run:?}");
        }
        assert!(!out.exists());
    }
}

/// Finding 4: a parent hint naming any file on the host made the error
/// quote that file's first line.
#[test]
fn finding_4_errors_never_quote_files_that_are_not_images() {
    let dir = tempdir();
    let outside = tempdir();
    let secret = outside.path().join("shadow");
    std::fs::write(&secret, "root:$6$secrethash:19000:0:99999:7:::\n").unwrap();
    let d = dir.path();
    let base = d.join("base.vmdk");
    let delta = d.join("delta.vmdk");
    vimg!("create -q -f vmdk", &base, MIB).ok();
    vimg!("create -q -f vmdk -b", &base, &delta).ok();
    // The hint rewritten to name the secret file (the same length, so the
    // embedded descriptor still fits).
    let text = std::fs::read(&delta).unwrap();
    let hint = secret.display().to_string();
    let at = text
        .windows(b"parentFileNameHint".len())
        .position(|w| w == b"parentFileNameHint")
        .unwrap();
    let line_end = at + text[at..].iter().position(|&b| b == b'\n').unwrap();
    let mut edited = text[..at].to_vec();
    edited.extend_from_slice(format!("parentFileNameHint=\"{hint}\"").as_bytes());
    edited.extend_from_slice(&text[line_end..]);
    edited.truncate(text.len());
    std::fs::write(&delta, &edited).unwrap();
    let out = d.join("out.raw");
    for vimg in [vimg!("info", &delta), vimg!("convert -O raw", &delta, &out)] {
        let run = refused_in_time(vimg, &delta, "secret parent");
        assert!(!run.stderr_text().contains("secrethash"), "{run:?}");
        assert!(run.stderr_text().contains("not a VMDK"), "{run:?}");
    }
    // Nor a text file given as a VMDK on the command line.
    let run = refused_in_time(vimg!("info -f vmdk", &secret), &secret, "-f vmdk");
    assert!(!run.stderr_text().contains("secrethash"), "{run:?}");
}

/// Finding 10: descriptor values and extent names went to the terminal
/// raw, escape sequences included.
#[test]
fn finding_10_control_characters_from_images_are_escaped() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("ok.bin"), vec![1u8; MIB as usize]).unwrap();
    let desc = d.join("d.vmdk");
    std::fs::write(
        &desc,
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"ok.bin\" 0\n\nddb.adapterType = \"ide\x1b]0;owned\x07\"\n",
    )
    .unwrap();
    let shown = vimg!("info", &desc).ok();
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown:?}"
    );
    assert!(shown.contains("\\u{1b}]0;owned"), "{shown}");
    // An extent name with an escape in an error.
    let bad = d.join("bad.vmdk");
    flat_descriptor(&bad, "gone\x1b[2J.bin");
    let run = refused_in_time(vimg!("info", &bad), &bad, "escape in a name");
    assert!(!run.stderr_text().contains('\x1b'), "{run:?}");
}

/// Finding 12: a stream that could not be written to standard output
/// named a file that does not exist.
#[test]
fn finding_12_stream_errors_name_standard_output() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    build_raw(&src, 8 * MIB, 12);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = vimg!("convert -c -O vmdk", &src, "-")
        .command()
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("standard output"), "{stderr}");
    assert!(!stderr.contains("src.vmdk"), "{stderr}");
}

/// Finding 7: a delta's hint was followed to any VMDK by absolute path or
/// `../`, and with parentCID=ffffffff no CID was checked: a 64 KiB upload
/// converted into another folder's disk.
#[test]
fn finding_7_parents_are_confined_and_must_match() {
    let dir = tempdir();
    let elsewhere = tempdir();
    let d = dir.path();
    let theirs = elsewhere.path().join("theirs.vmdk");
    vimg!("create -q -f vmdk", &theirs, MIB).ok();
    qemu_io("vmdk", &theirs, &["write -P 0x66 0 64k"]);
    // An upload whose hint names the other folder's disk by its path.
    let upload = d.join("upload.vmdk");
    vimg!("create -q -f vmdk -b", &theirs, &upload).ok();
    let out = d.join("out.raw");
    // Without a parent CID, nothing shows it is the parent.
    let text = std::fs::read(&upload).unwrap();
    let at = text
        .windows(b"parentCID=".len())
        .position(|w| w == b"parentCID=")
        .unwrap()
        + b"parentCID=".len();
    let mut no_cid = text.clone();
    no_cid[at..at + 8].copy_from_slice(b"ffffffff");
    let unchecked = d.join("unchecked.vmdk");
    std::fs::write(&unchecked, &no_cid).unwrap();
    let run = refused_in_time(vimg!("info", &unchecked), &unchecked, "parentCID=ffffffff");
    assert!(run.stderr_text().contains("parentCID=ffffffff"), "{run:?}");
    // --confine keeps it in its folder; --no-backing refuses it outright.
    for (flags, why) in [
        (vec!["--confine", "."], "where the image may name files"),
        (vec!["--no-backing"], "--no-backing"),
    ] {
        for vimg in [
            vimg!("info").args(&flags).arg(&upload),
            vimg!("map").args(&flags).arg(&upload),
            vimg!("convert -O raw").args(&flags).arg(&upload).arg(&out),
        ] {
            let run = refused_in_time(vimg.current_dir(d), &upload, why);
            assert!(run.stderr_text().contains(why), "{why}: {run:?}");
        }
        assert!(!out.exists());
    }
    // Inside the folder it may be, the parent is found, links and all.
    let ours = d.join("ours.vmdk");
    vimg!("create -q -f vmdk", &ours, MIB).ok();
    let inside = d.join("inside.vmdk");
    vimg!("create -q -f vmdk -b", &ours, &inside).ok();
    vimg!("info --confine", d, &inside).ok();
    // The same through a link that leads out is refused.
    std::fs::remove_file(&ours).unwrap();
    symlink(&theirs, &ours).unwrap();
    let run = refused_in_time(vimg!("info --confine", d, &inside), &inside, "link out");
    assert!(run.stderr_text().contains("leads out of"), "{run:?}");
    // A standalone image passes --no-backing; a differencing VHD does not.
    vimg!("info --no-backing", &theirs).ok();
    let base = d.join("base.vhd");
    let child = d.join("child.vhd");
    vimg!("create -q -f vhd", &base, MIB).ok();
    vimg!("create -q -f vhd -b", &base, &child).ok();
    refused_in_time(vimg!("info --no-backing", &child), &child, "differencing");
}

/// Finding 8: without -f, a raw guest disk whose first sector poses as a
/// VMDK delta is followed to the parent it names (as qemu-img does); `info`
/// says when a probed image names a parent.
#[test]
fn finding_8_info_says_when_a_probed_image_names_a_parent() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    let delta = d.join("delta.vmdk");
    vimg!("create -q -f vmdk", &base, MIB).ok();
    vimg!("create -q -f vmdk -b", &base, &delta).ok();
    let run = vimg!("info", &delta).run();
    assert_eq!(run.code(), Some(0));
    let note = run.stderr_text();
    assert!(
        note.contains("was probed") && note.contains("base.vmdk") && note.contains("give -f"),
        "{note}"
    );
    let given = vimg!("info -f vmdk", &delta).run();
    assert_eq!(given.code(), Some(0));
    assert!(given.stderr_text().is_empty(), "{given:?}");
    let standalone = vimg!("info", &base).run();
    assert!(standalone.stderr_text().is_empty(), "{standalone:?}");
}

/// A delta whose extent is its parent's own file (or any file an image
/// above names too): emptying the delta after a commit would empty the
/// parent. The chain is refused, by file identity, before anything is
/// written; `check` reports it.
#[test]
fn a_delta_whose_extent_is_its_parent_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vmdk");
    vimg!("create -q -f vmdk", &base, "64M").ok();
    qemu_io("vmdk", &base, &["write -P 7 0 4M"]);
    let delta = d.join("d.vmdk");
    let link = d.join("link.vmdk");
    std::fs::hard_link(&base, &link).unwrap();
    let before = sha256(&base);
    for extent in ["base.vmdk", "link.vmdk"] {
        std::fs::write(
            &delta,
            format!(
                "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID={:08x}\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 131072 SPARSE \"{extent}\"\n",
                cid_of(&base)
            ),
        )
        .unwrap();
        let err = vimg!("commit", &delta).run();
        assert_eq!(err.code(), Some(1), "{extent}: {err:?}");
        assert!(
            err.stderr_text()
                .contains("also a file of an image above it"),
            "{err:?}"
        );
        vimg!("convert -O raw", &delta, d.join("x.raw")).code(1);
        vimg!("check", &delta).code(2);
        assert_eq!(sha256(&base), before, "{extent}");
    }
}

/// Two extents of a split VMDK that are one file (a hard link): every
/// command refuses it, and `check` counts it as corruption, naming it.
#[test]
fn extents_that_are_one_file_are_corruption_to_check() {
    let dir = tempdir();
    let d = dir.path();
    let img = d.join("s.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse",
        &img,
        "5G"
    )
    .ok();
    let (s1, s2) = (d.join("s-s001.vmdk"), d.join("s-s002.vmdk"));
    std::fs::remove_file(&s2).unwrap();
    std::fs::hard_link(&s1, &s2).unwrap();
    vimg!("info", &img).one_line_error(&img, "extents that are one file");
    let run = vimg!("check --output json", &img).run();
    assert_eq!(run.code(), Some(2), "{run:?}");
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["corruptions"], 1, "{json:#}");
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("s-s002.vmdk"), "{json:#}");
    assert_eq!(
        json["findings"][0]["file"],
        img.display().to_string(),
        "{json:#}"
    );
}
