//! `vimg snapshot rebase` / `vimg rebase`: onto another parent with the
//! content kept, `-u` relinking a moved parent or a broken CID, `-b ""`
//! flattening; for VMDK and VHD, which qemu-img cannot rebase at all.

use std::path::{Path, PathBuf};

use crate::support::vmdk::{cid_of, desc_value, descriptor_text};
use crate::support::*;

const SIZE: u64 = 16 * MIB;

/// A VMDK base with data, a delta over it that qemu-io wrote, and another
/// base with other data; returns (base, delta, other, what delta reads).
fn vmdk_case(d: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let base = d.join("base.vmdk");
    let delta = d.join("delta.vmdk");
    let other = d.join("other.vmdk");
    vimg!("create -q -f vmdk", &base, SIZE).ok();
    qemu_io("vmdk", &base, &["write -P 1 0 3M", "write -P 6 9M 64k"]);
    vimg!("snapshot create -q", &base, &delta).ok();
    qemu_io("vmdk", &delta, &["write -P 2 1M 1M", "write -z 9M 4k"]);
    vimg!("create -q -f vmdk", &other, SIZE).ok();
    qemu_io("vmdk", &other, &["write -P 5 2M 4M", "write -P 7 12M 1M"]);
    let before = qemu_to_raw(&delta, &d.join("before.raw"));
    (base, delta, other, before)
}

/// The parent `delta` records and the link `snapshot list` finds valid.
fn assert_linked(delta: &Path, parent: &Path) {
    let layers = vimg!("snapshot list --output json", delta).json();
    let link = &layers[0]["parent"];
    assert_eq!(link["valid"], true, "{layers:#}");
    assert_eq!(
        std::fs::canonicalize(field_str(&layers[1], "filename")).unwrap(),
        std::fs::canonicalize(parent).unwrap()
    );
}

#[test]
fn a_safe_rebase_onto_another_base_keeps_every_byte() {
    let dir = tempdir();
    let (_, delta, other, before) = vmdk_case(dir.path());
    let out = vimg!("snapshot rebase -b", &other, &delta).ok();
    assert!(out.contains("copied in"), "{out}");
    assert_identical("raw", &before, "vmdk", &delta);
    assert_linked(&delta, &other);
    vimg!("check", &delta).ok();
    assert_qemu_check(&delta);
    let info = qemu_img!("info --output json", &delta).json();
    assert_eq!(field_str(&info, "backing-filename"), "other.vmdk");
    // VMware's rule: parentCID is the parent's CID.
    let text = descriptor_text(&delta);
    let parent_cid = u32::from_str_radix(&desc_value(&text, "parentCID").unwrap(), 16).unwrap();
    assert_eq!(parent_cid, cid_of(&other));
}

#[test]
fn rebase_u_relinks_a_moved_parent_and_a_broken_cid() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta, _, before) = vmdk_case(d);
    // The base moved to another folder: the delta no longer opens.
    std::fs::create_dir(d.join("moved")).unwrap();
    let moved = d.join("moved/base.vmdk");
    std::fs::rename(&base, &moved).unwrap();
    vimg!("info", &delta).code(1);
    let out = vimg!("rebase -u -b", &moved, &delta).ok();
    assert!(out.contains("only the link"), "{out}");
    assert_identical("raw", &before, "vmdk", &delta);
    assert_linked(&delta, &moved);
    assert_eq!(
        qemu_img!("info --output json", &delta).json()["backing-filename"],
        "moved/base.vmdk"
    );
    // The base written after the delta was taken: its CID moved on and
    // the link breaks; -u records the new CID (content as the user says).
    qemu_io("vmdk", &moved, &["write -P 1 15M 64k"]);
    vimg!("snapshot list", &delta).code(2);
    // Refused on reading, naming both CIDs and the command that relinks;
    // --ignore-parent-id reads through anyway (read-only recovery).
    let err = vimg!("info", &delta).one_line_error(&delta, "a broken CID");
    let text = err.stderr_text();
    let recorded = desc_value(&descriptor_text(&delta), "parentCID").unwrap();
    assert!(text.contains(&format!("{:08x}", cid_of(&moved))), "{text}");
    assert!(
        text.contains(&recorded) && text.contains("vimg rebase -u -b"),
        "{text}"
    );
    vimg!("map --ignore-parent-id", &delta).ok();
    // check: the broken link is corrupt; read through, still a warning.
    vimg!("check", &delta).code(2);
    let json = vimg!("check --ignore-parent-id --output json", &delta).json();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["severity"], "warning", "{json:#}");
    assert!(
        findings[0]["message"].as_str().unwrap().contains(&recorded),
        "{json:#}"
    );
    let out = d.join("recovered.raw");
    vimg!("convert -q --ignore-parent-id -O raw", &delta, &out).ok();
    let out = vimg!("rebase -u -b", &moved, &delta).ok();
    assert!(out.contains(&format!("{:08x}", cid_of(&moved))), "{out}");
    assert_linked(&delta, &moved);
    // What the recovery read is what the relinked chain reads (qemu too).
    let want = qemu_to_raw(&delta, &d.join("qemu.raw"));
    assert_same_bytes(&d.join("recovered.raw"), &want);
    vimg!("check", &delta).ok();
    assert_qemu_check(&delta);
}

#[test]
fn a_rebase_refuses_a_parent_of_another_size() {
    let dir = tempdir();
    let d = dir.path();
    let (_, delta, _, _) = vmdk_case(d);
    let small = d.join("small.vmdk");
    vimg!("create -q -f vmdk", &small, SIZE / 2).ok();
    let bytes = std::fs::read(&delta).unwrap();
    for args in ["rebase -u -b", "rebase -b"] {
        let err = vimg!().words(args).arg(&small).arg(&delta);
        let err = err.one_line_error(&delta, "another size");
        assert!(err.stderr_text().contains("bytes"), "{err:?}");
    }
    assert_eq!(std::fs::read(&delta).unwrap(), bytes);
}

#[test]
fn rebase_onto_nothing_flattens_the_delta() {
    let dir = tempdir();
    let (base, delta, _, before) = vmdk_case(dir.path());
    vimg!("rebase -q -b", "", &delta).ok();
    std::fs::remove_file(&base).unwrap();
    assert_identical("raw", &before, "vmdk", &delta);
    let info = qemu_img!("info --output json", &delta).json();
    assert!(info.get("backing-filename").is_none(), "{info:#}");
    vimg!("check", &delta).ok();
    assert_qemu_check(&delta);
}

#[test]
fn a_differencing_vhd_rebases_onto_another_disk_as_libvhdi_reads_it() {
    let dir = tempdir();
    let d = dir.path();
    let parent = d.join("parent.vhd");
    let child = d.join("child.vhd");
    let other = d.join("other.vhd");
    vimg!("create -q -f vhd", &parent, SIZE).ok();
    qemu_io("vpc", &parent, &["write -P 1 0 3M"]);
    vimg!("snapshot create -q", &parent, &child).ok();
    qemu_io("vpc", &child, &["write -P 2 5M 4k"]);
    vimg!("create -q -f vhd", &other, SIZE).ok();
    qemu_io("vpc", &other, &["write -P 5 2M 4M"]);
    let before = vimg_to_raw(&child, &d.join("before.raw"));
    vimg!("rebase -q -b", &other, &child).ok();
    assert_same_bytes(&vimg_to_raw(&child, &d.join("after.raw")), &before);
    assert_pyvhdi_reads(&child, &[&other], &before, &[]);
    assert_linked(&child, &other);
    vimg!("check", &child).ok();
    // Flattened, it is a dynamic disk of its own.
    vimg!("rebase -q -b", "", &child).ok();
    std::fs::remove_file(&other).unwrap();
    assert_pyvhdi_reads(&child, &[], &before, &[]);
    vimg!("check", &child).ok();
}

/// A rebase stopped at each of its writes leaves the delta reading as it
/// did (the data it copies in is the old chain's), no worse than leaks,
/// and running it again finishes it.
#[test]
fn a_rebase_killed_at_any_write_is_finished_by_a_rerun() {
    use crate::support::faults::{assert_no_worse_than_leaks, killed_at, writes_of};
    let dir = tempdir();
    let d = dir.path();
    let (_, delta, other, before) = vmdk_case(d);
    let pristine = d.join("pristine.vmdk");
    std::fs::copy(&delta, &pristine).unwrap();
    for args in ["rebase -q -b", "rebase -q -u -b"] {
        let rebase = vimg!().words(args).arg(&other).arg(&delta);
        let writes = writes_of(&rebase);
        assert!(!writes.is_empty(), "{args}");
        for n in 0..writes.len() {
            std::fs::copy(&pristine, &delta).unwrap();
            killed_at(&rebase, &writes, n);
            assert_no_worse_than_leaks(&delta, &format!("`{args}` killed at write {n}"));
            if !args.contains("-u") {
                // Through whichever parent it now names.
                assert_identical("raw", &before, "vmdk", &delta);
            }
            rebase.ok();
            assert_linked(&delta, &other);
            if !args.contains("-u") {
                assert_identical("raw", &before, "vmdk", &delta);
            }
        }
    }
}
