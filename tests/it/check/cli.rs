//! `vimg check` on the command line: qemu-img's exit codes (0 clean, 1 the
//! check could not complete, 2 corruptions, 3 leaks only), its summary
//! lines and `ImageCheck` JSON keys, with every finding listed.

use std::path::Path;

use serde_json::Value;

use super::{grain_entry, set_both};
use crate::support::vhd::patch_footers;
use crate::support::vmdk::{cid_of, desc_value, descriptor_text};
use crate::support::*;

/// `vimg check --output json` and its exit code.
fn check_json(path: &Path) -> (i32, Value) {
    let run = vimg!("check --output json", path).run();
    let json = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {run:?}"));
    (run.code().expect("exited"), json)
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// The findings of a check's JSON, as (severity, layer, structure).
fn findings(v: &Value) -> Vec<(String, u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["layer"].as_u64().unwrap(),
                f["structure"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn clean_images_exit_0_with_the_keys_qemu_img_prints() {
    let dir = tempdir();
    let d = dir.path();
    let mut images = Vec::new();
    for sub in [
        "monolithicSparse",
        "streamOptimized",
        "twoGbMaxExtentSparse",
        "monolithicFlat",
    ] {
        let path = d.join(format!("q-{sub}.vmdk"));
        qemu_img!(
            "create -q -f vmdk -o",
            format!("subformat={sub}"),
            &path,
            8 * MIB
        )
        .ok();
        if sub != "streamOptimized" {
            qemu_io("vmdk", &path, &["write -P 0x11 0 1M", "write -P 9 5M 100k"]);
        }
        images.push(path);
    }
    for sub in ["dynamic", "fixed"] {
        let path = d.join(format!("v-{sub}.vhd"));
        vimg!(
            "create -q -f vhd -o",
            format!("subformat={sub}"),
            &path,
            8 * MIB
        )
        .ok();
        images.push(path);
    }
    let raw = d.join("disk.raw");
    build_raw(&raw, 4 * MIB, 7);
    images.push(raw);
    for path in &images {
        let human = vimg!("check", path).run();
        assert_eq!(human.code(), Some(0), "{human:?}");
        assert!(
            human
                .stdout_text()
                .starts_with("No errors were found on the image.\n"),
            "{human:?}"
        );
        assert_eq!(human.stderr_text(), "", "{human:?}");
        let (code, ours) = check_json(path);
        assert_eq!(code, 0, "{ours}");
        assert_eq!(ours["check-errors"], 0);
        assert_eq!(ours["findings"], Value::Array(vec![]));
        for absent in ["corruptions", "leaks", "corruptions-fixed", "leaks-fixed"] {
            assert!(ours.get(absent).is_none(), "{absent} in {ours}");
        }
        let fmt = field_str(&ours, "format").to_string();
        if fmt == "vmdk" {
            // qemu-img checks VMDK (raw and VHD it refuses, exit 63): its
            // keys are all there, with the same values.
            let theirs = qemu_img!("check --output json -f", &fmt, path).json();
            for key in keys(&theirs) {
                assert_eq!(ours[&key], theirs[&key], "{key}: {ours} vs {theirs}");
            }
        }
    }
}

#[test]
fn leaks_alone_exit_3_and_corruptions_exit_2_with_json_and_every_finding() {
    let dir = tempdir();
    let path = dir.path().join("d.vmdk");
    qemu_img!("create -q -f vmdk", &path, 8 * MIB).ok();
    qemu_io("vmdk", &path, &["write -P 0x11 0 256k"]);
    // Two grains' worth of bytes at the end that nothing references.
    let len = file_len(&path);
    append(&path, &[0x77; 128 * KIB as usize]);
    let human = vimg!("check", &path).run();
    assert_eq!(human.code(), Some(3), "{human:?}");
    assert!(human.stderr_text().starts_with("Leaked "), "{human:?}");
    assert!(
        human.stdout_text().contains(
            "2 leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n"
        ),
        "{human:?}"
    );
    let (code, json) = check_json(&path);
    assert_eq!(code, 3);
    assert_eq!(json["leaks"], 2);
    assert_eq!(
        findings(&json),
        [("leak".into(), 0, "unreferenced space".into())]
    );
    assert_eq!(json["findings"][0]["repair"], "leaks");
    assert_eq!(json["findings"][0]["offset"], len);

    // Now grain 1 also points past the end and grain 3 at grain 2.
    set_both(&path, 1, (len / 512 + 4096) as u32);
    let g2 = le32(&read_at(&path, grain_entry(&path, 2), 4), 0);
    set_both(&path, 3, g2);
    let human = vimg!("check", &path).run();
    assert_eq!(human.code(), Some(2), "{human:?}");
    let stderr = human.stderr_text();
    assert_eq!(stderr.matches("ERROR ").count(), 2, "{stderr}");
    assert!(
        human
            .stdout_text()
            .contains("2 errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n"),
        "{human:?}"
    );
    let (code, json) = check_json(&path);
    assert_eq!(code, 2);
    assert_eq!(json["corruptions"], 2, "{json}");
    let severities: Vec<String> = findings(&json).into_iter().map(|f| f.0).collect();
    assert_eq!(severities.iter().filter(|s| *s == "corruption").count(), 2);
    assert!(severities.contains(&"leak".to_string()), "{json}");
}

/// An 8 MiB image of `fmt` made by vimg (`base.FMT`) and an empty delta
/// over it (`delta.FMT`).
fn base_and_delta(d: &Path, fmt: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let base = d.join(format!("base.{fmt}"));
    let delta = d.join(format!("delta.{fmt}"));
    vimg!("create -q -f", fmt, &base, 8 * MIB).ok();
    vimg!("snapshot create -q", &base, &delta).ok();
    (base, delta)
}

/// `check` of `path` exits 2 with one finding, a broken link in the top
/// layer whose message says `says`.
fn assert_one_broken_link(path: &Path, says: &str) {
    let (code, json) = check_json(path);
    assert_eq!(code, 2, "{json}");
    assert_eq!(
        findings(&json),
        [("corruption".into(), 0, "backing chain".into())]
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
}

#[test]
fn a_check_that_cannot_complete_exits_1() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta) = base_and_delta(d, "vmdk");
    std::fs::remove_file(&base).unwrap();
    vimg!("check", &delta)
        .code(1)
        .assert_one_line_error(&delta, "parent missing");
    let junk = d.join("junk.vmdk");
    std::fs::write(&junk, vec![0x5a; 4096]).unwrap();
    vimg!("check -f vmdk", &junk)
        .code(1)
        .assert_one_line_error(&junk, "not a VMDK");
    vimg!("check -r all -U", &junk).code(1);
}

#[test]
fn broken_links_are_corruptions_named_with_their_layer() {
    let dir = tempdir();
    let d = dir.path();

    // A VMDK parent written after its delta was taken (qemu gives it a new
    // CID on its first write).
    let (base, delta) = base_and_delta(d, "vmdk");
    vimg!("check", &delta).ok();
    qemu_io("vmdk", &base, &["write -P 3 0 64k"]);
    assert_one_broken_link(&delta, "content ID");
    let human = vimg!("check", &delta).run();
    assert!(human.stderr_text().starts_with("ERROR "), "{human:?}");
    // --no-chain looks at the delta alone.
    vimg!("check --no-chain", &delta).ok();

    // A differencing VHD whose parent is another disk (another UUID).
    let (parent, child) = base_and_delta(d, "vhd");
    vimg!("check", &child).ok();
    patch_footers(&parent, |f| f[68] ^= 0xff);
    assert_one_broken_link(&child, "UUID");

    // A parent of another size, with the CID the delta recorded.
    let small = d.join("small.vmdk");
    let big = d.join("big.vmdk");
    let over = d.join("over.vmdk");
    vimg!("create -q -f vmdk", &big, 8 * MIB).ok();
    vimg!("snapshot create -q", &big, &over).ok();
    vimg!("create -q -f vmdk", &small, 4 * MIB).ok();
    set_cid(&small, cid_of(&big));
    std::fs::rename(&small, &big).unwrap();
    assert_one_broken_link(&over, "4194304 bytes");

    // A loop: a -> b -> a.
    let x = d.join("x.vmdk");
    let a = d.join("a.vmdk");
    let b = d.join("b.vmdk");
    vimg!("create -q -f vmdk", &x, 8 * MIB).ok();
    vimg!("snapshot create -q", &x, &a).ok();
    vimg!("snapshot create -q", &a, &b).ok();
    replace_in_descriptor(&a, "x.vmdk", "b.vmdk");
    set_parent_cid(&a, cid_of(&b));
    let (code, json) = check_json(&a);
    assert_eq!(code, 2, "{json}");
    let found = findings(&json);
    assert!(
        found.contains(&("corruption".into(), 1, "backing chain".into())),
        "{json}"
    );
    let loops = json["findings"][0]["message"].as_str().unwrap();
    assert!(loops.contains("loops"), "{json}");
}

#[test]
fn a_repair_of_an_image_qemu_serves_fails_on_the_lock_and_changes_nothing() {
    let dir = tempdir();
    let path = dir.path().join("vm.vmdk");
    qemu_img!("create -q -f vmdk", &path, 8 * MIB).ok();
    qemu_io("vmdk", &path, &["write -P 0x11 0 256k"]);
    append(&path, &[0x77; 64 * KIB as usize]);
    let before = std::fs::read(&path).unwrap();
    let nbd = nbd::serve("vmdk", &path);
    for level in ["leaks", "all"] {
        let run = vimg!("check -r", level, &path).code(1);
        run.assert_one_line_error(&path, "repair while served");
        assert!(run.stderr_text().contains("another process"), "{run:?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Reading it anyway is what -U is for: the leak is seen.
    vimg!("check -U", &path).code(3);
    drop(nbd);
}

/// Add `bytes` at the end of the file at `path`.
fn append(path: &Path, bytes: &[u8]) {
    patch(path, file_len(path), bytes);
}

/// Overwrite `old` in the descriptor embedded in the sparse VMDK at `path`
/// with `new`, of the same length.
fn replace_in_descriptor(path: &Path, old: &str, new: &str) {
    assert_eq!(old.len(), new.len());
    let bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap_or_else(|| panic!("{old} not in {}", path.display()));
    patch(path, at as u64, new.as_bytes());
}

fn set_cid(path: &Path, cid: u32) {
    let old = format!("CID={:08x}", cid_of(path));
    replace_in_descriptor(path, &old, &format!("CID={cid:08x}"));
}

fn set_parent_cid(path: &Path, cid: u32) {
    let text = descriptor_text(path);
    let old = format!("parentCID={}", desc_value(&text, "parentCID").unwrap());
    replace_in_descriptor(path, &old, &format!("parentCID={cid:08x}"));
}
