//! `vimg snapshot commit` / `vimg commit`: the parent reads what the delta
//! read, the delta left empty over it is a valid chain for vimg, qemu
//! (where qemu's own commit leaves one it cannot read) and libvhdi, other
//! deltas of the parent are protected, and a commit killed at any write is
//! named by `check` and finished by running it again.

use std::path::{Path, PathBuf};

use crate::support::faults::{killed_at, writes_of};
use crate::support::vmdk::cid_of;
use crate::support::*;

const SIZE: u64 = 16 * MIB;

/// A VMDK base with data and a delta over it that qemu-io wrote (data
/// over the base's, beside it, and zeros over it); returns (base, delta,
/// what the delta reads).
fn vmdk_chain(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let base = d.join("base.vmdk");
    let delta = d.join("base-000001.vmdk");
    vimg!("create -q -f vmdk", &base, SIZE).ok();
    qemu_io("vmdk", &base, &["write -P 1 0 3M", "write -P 4 12M 1M"]);
    vimg!("snapshot create -q", &base, &delta).ok();
    qemu_io(
        "vmdk",
        &delta,
        &["write -P 2 1M 3M", "write -P 3 8M 100k", "write -z 12M 64k"],
    );
    let before = qemu_to_raw(&delta, &d.join("before.raw"));
    (base, delta, before)
}

/// A dynamic VHD with data and a differencing disk over it (written by
/// qemu-io, which takes it for a dynamic disk and marks whole blocks);
/// returns (parent, child, what the child reads, as vimg reads it).
fn vhd_chain(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let parent = d.join("parent.vhd");
    let child = d.join("child.vhd");
    vimg!("create -q -f vhd", &parent, SIZE).ok();
    qemu_io("vpc", &parent, &["write -P 1 0 3M"]);
    vimg!("snapshot create -q", &parent, &child).ok();
    qemu_io("vpc", &child, &["write -P 2 1M 3M", "write -P 3 10M 4k"]);
    let before = vimg_to_raw(&child, &d.join("before.raw"));
    (parent, child, before)
}

/// The delta left behind is a valid, empty chain over a parent that reads
/// `before`: vimg and qemu say so for VMDK.
fn assert_committed_vmdk(base: &Path, delta: &Path, before: &Path, emptied: bool) {
    assert_identical("raw", before, "vmdk", base);
    assert_identical("raw", before, "vmdk", delta);
    vimg!("check", delta).ok();
    vimg!("check", base).ok();
    assert_qemu_check(delta);
    // qemu reads every range of the delta (its own commit leaves a stale
    // parentCID, and reads that reach the parent then fail).
    qemu_io("vmdk", delta, &[format!("read 0 {SIZE}")]);
    let link = &vimg!("snapshot list --output json", delta).json()[0]["parent"];
    assert_eq!(link["valid"], true, "{link:#}");
    assert_eq!(link["id"], format!("{:08x}", cid_of(base)));
    let held = field_u64(
        &vimg!("snapshot list --output json", delta).json()[0],
        "allocated",
    );
    match emptied {
        true => assert_eq!(held, 0),
        false => assert!(held > 0),
    }
}

#[test]
fn a_vmdk_delta_commits_into_its_parent_and_stays_a_valid_empty_chain() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta, before) = vmdk_chain(d);
    let big = file_len(&delta);
    let out = vimg!("snapshot commit", &delta).ok();
    assert!(out.starts_with("Image committed"), "{out}");
    assert_committed_vmdk(&base, &delta, &before, true);
    assert!(
        file_len(&delta) < big / 10,
        "{} bytes left",
        file_len(&delta)
    );
    // qemu-img's own info sees the chain.
    let info = qemu_img!("info --backing-chain --output json", &delta).json();
    assert_eq!(info.as_array().unwrap().len(), 2);
}

#[test]
fn commit_d_keeps_the_delta_s_data_and_relinks_it() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta, before) = vmdk_chain(d);
    vimg!("commit -q -d", &delta).ok();
    assert_committed_vmdk(&base, &delta, &before, false);
}

#[test]
fn a_differencing_vhd_commits_into_its_parent_as_libvhdi_reads_it() {
    let dir = tempdir();
    let d = dir.path();
    let (parent, child, before) = vhd_chain(d);
    // -p draws nothing when stderr is no terminal.
    let run = vimg!("commit -q -p", &child).run();
    assert_eq!((run.code(), run.stderr_text()), (Some(0), String::new()));
    assert_same_bytes(&vimg_to_raw(&parent, &d.join("p.raw")), &before);
    assert_same_bytes(&vimg_to_raw(&child, &d.join("c.raw")), &before);
    assert_pyvhdi_reads(&parent, &[], &before, &[]);
    assert_pyvhdi_reads(&child, &[&parent], &before, &[]);
    vimg!("check", &child).ok();
    let layers = vimg!("snapshot list --output json", &child).json();
    assert_eq!(layers[0]["parent"]["valid"], true);
    assert_eq!(field_u64(&layers[0], "allocated"), 0);
    qemu_img!("info -f vpc", &child).ok();
}

#[test]
fn a_commit_refuses_to_change_what_a_sibling_reads_unless_forced() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta, before) = vmdk_chain(d);
    let sibling = d.join("other.vmdk");
    vimg!("snapshot create -q", &base, &sibling).ok();
    let base_bytes = std::fs::read(&base).unwrap();
    let err = vimg!("commit", &delta).one_line_error(&delta, "a sibling");
    assert!(err.stderr_text().contains("other.vmdk"), "{err:?}");
    assert_eq!(std::fs::read(&base).unwrap(), base_bytes);
    vimg!("commit -q --force", &delta).ok();
    assert_committed_vmdk(&base, &delta, &before, true);
    // The sibling's link no longer holds, and says so.
    vimg!("snapshot list", &sibling).code(2);
}

/// `commit` killed at each of its writes: `check` names the stopped commit
/// while its journal is there, and the same command run again finishes it,
/// with the content right and the chain valid (leaks at most, in the
/// parent, which `check -r leaks` gives back).
fn every_kill_is_finished_by_a_rerun(make: fn(&Path) -> (PathBuf, PathBuf, PathBuf), fmt: &str) {
    let dir = tempdir();
    let d = dir.path();
    let (parent, delta, before) = make(&d.join("traced"));
    let _ = (&parent, &delta);
    let writes = writes_of(&vimg!("commit -q", &delta));
    assert!(writes.len() > 4, "{writes:?}");
    let mut refused = 0;
    for n in 0..writes.len() {
        let here = d.join(format!("kill-{n}"));
        std::fs::create_dir(&here).unwrap();
        let (parent, delta, _) = make(&here);
        killed_at(&vimg!("commit -q", &delta), &writes, n);
        let check = vimg!("check --output json", &delta).run();
        let named = check.stdout_text().contains("\"snapshot commit\"");
        let journal = here.join(format!(
            ".{}.vimg-commit",
            delta.file_name().unwrap().to_str().unwrap()
        ));
        if journal.exists() && file_len(&journal) > 0 {
            assert!(named, "killed at write {n} ({}): {check:?}", writes[n]);
            assert_eq!(check.code(), Some(2));
            // A delta that no longer opens says why, and how to finish.
            let info = vimg!("info", &delta).run();
            if info.code() != Some(0) {
                refused += 1;
                assert!(
                    info.stderr_text().contains("`vimg commit "),
                    "killed at write {n}: {info:?}"
                );
            }
        }
        vimg!("commit -q", &delta).ok();
        assert!(!journal.exists());
        // Nothing worse than leaks: space the parent's data took before
        // the kill, which the rerun wrote elsewhere. -r leaks gives it back.
        let check = vimg!("check", &delta).run();
        assert!(
            matches!(check.code(), Some(0 | 3)),
            "killed at write {n}: {check:?}"
        );
        if check.code() == Some(3) {
            vimg!("check -q -r leaks", &parent).ok();
            vimg!("check", &delta).ok();
        }
        let got = vimg_to_raw(&delta, &here.join("after.raw"));
        assert_same_bytes(&got, &before);
        let got = vimg_to_raw(&parent, &here.join("parent.raw"));
        assert_same_bytes(&got, &before);
        if fmt == "vmdk" {
            assert_qemu_check(&delta);
        }
        std::fs::remove_dir_all(&here).unwrap();
    }
    // A VMDK delta's parentCID stops matching at the parent's first write.
    if fmt == "vmdk" {
        assert!(refused > 0, "no stop left a delta that does not open");
    }
}

fn in_folder(
    make: fn(&Path) -> (PathBuf, PathBuf, PathBuf),
    d: &Path,
) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(d).unwrap();
    make(d)
}

fn vmdk_in(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    in_folder(vmdk_chain, d)
}

fn vhd_in(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    in_folder(vhd_chain, d)
}

#[test]
fn a_vmdk_commit_killed_at_any_write_is_named_and_finished_by_a_rerun() {
    every_kill_is_finished_by_a_rerun(vmdk_in, "vmdk");
}

#[test]
fn a_vhd_commit_killed_at_any_write_is_named_and_finished_by_a_rerun() {
    every_kill_is_finished_by_a_rerun(vhd_in, "vhd");
}

#[test]
fn commit_b_writes_two_levels_down_and_relinks_the_delta_to_the_base() {
    let dir = tempdir();
    let d = dir.path();
    let (base, s1, _) = vmdk_chain(d);
    let s2 = d.join("base-000002.vmdk");
    vimg!("snapshot create -q", &s1, &s2).ok();
    qemu_io("vmdk", &s2, &["write -P 9 2M 64k", "write -P 8 15M 1M"]);
    let before = qemu_to_raw(&s2, &d.join("top.raw"));
    // BASE must be in the chain.
    let stranger = d.join("stranger.vmdk");
    vimg!("create -q -f vmdk", &stranger, SIZE).ok();
    let err = vimg!("commit -b", &stranger, &s2).one_line_error(&s2, "not in the chain");
    assert!(
        err.stderr_text().contains("not in its backing chain"),
        "{err:?}"
    );
    let out = vimg!("commit -b", &base, &s2).ok();
    assert!(out.contains("base-000001.vmdk was between them"), "{out}");
    assert_committed_vmdk(&base, &s2, &before, true);
    let layers = vimg!("snapshot list --output json", &s2).json();
    assert_eq!(layers.as_array().unwrap().len(), 2, "{layers:#}");
    // The layer between is now invalid, and shown so.
    vimg!("snapshot list", &s1).code(2);
}

/// Commits into every kind of parent a delta can have: split and flat
/// VMDKs (made by qemu-img), and a differencing VHD (itself over a
/// dynamic one). A raw file cannot be the parent of a VMDK or VHD delta.
#[test]
fn commits_into_split_flat_and_differencing_parents() {
    let dir = tempdir();
    let d = dir.path();
    for sub in [
        "twoGbMaxExtentSparse",
        "monolithicFlat",
        "twoGbMaxExtentFlat",
    ] {
        let base = d.join(format!("{sub}.vmdk"));
        let delta = d.join(format!("{sub}-000001.vmdk"));
        qemu_img!(
            "create -q -f vmdk -o",
            format!("subformat={sub}"),
            &base,
            SIZE
        )
        .ok();
        qemu_io("vmdk", &base, &["write -P 1 0 3M"]);
        vimg!(
            "snapshot create -q -o subformat=monolithicSparse",
            &base,
            &delta
        )
        .ok();
        qemu_io("vmdk", &delta, &["write -P 2 1M 3M", "write -z 2M 64k"]);
        let before = qemu_to_raw(&delta, &d.join(format!("{sub}.raw")));
        vimg!("commit -q", &delta).ok();
        assert_committed_vmdk(&base, &delta, &before, true);
    }
    // child -> middle (differencing) -> bottom (dynamic): commit the child
    // into the middle.
    let bottom = d.join("bottom.vhd");
    let middle = d.join("middle.vhd");
    let child = d.join("child.vhd");
    vimg!("create -q -f vhd", &bottom, SIZE).ok();
    qemu_io("vpc", &bottom, &["write -P 1 0 3M"]);
    vimg!("snapshot create -q", &bottom, &middle).ok();
    qemu_io("vpc", &middle, &["write -P 5 6M 64k"]);
    vimg!("snapshot create -q", &middle, &child).ok();
    qemu_io("vpc", &child, &["write -P 2 1M 3M"]);
    let before = vimg_to_raw(&child, &d.join("child.raw"));
    vimg!("commit -q", &child).ok();
    assert_same_bytes(&vimg_to_raw(&middle, &d.join("m.raw")), &before);
    assert_pyvhdi_reads(&middle, &[&bottom], &before, &[]);
    assert_pyvhdi_reads(&child, &[&middle, &bottom], &before, &[]);
    vimg!("check", &child).ok();
    let layers = vimg!("snapshot list --output json", &child).json();
    assert_eq!(layers.as_array().unwrap().len(), 3);
    assert!(layers.as_array().unwrap()[..2]
        .iter()
        .all(|l| l["parent"]["valid"] == true));
}

/// What a commit cannot finish is refused before its journal: a base that
/// cannot take data (a streamOptimized VMDK); and a stopped commit is
/// finished into the base its journal names, not another.
#[test]
fn commit_refuses_what_it_cannot_finish_before_it_starts() {
    let dir = tempdir();
    let d = dir.path();
    let (base, delta, _) = vmdk_chain(d);
    let journal = d.join(format!(
        ".{}.vimg-commit",
        delta.file_name().unwrap().to_str().unwrap()
    ));
    // Into a stream layout: refused, no journal, nothing changed.
    let stream = d.join("stream.vmdk");
    vimg!(
        "convert -q -O vmdk -o subformat=streamOptimized",
        &base,
        &stream
    )
    .ok();
    let over_stream = d.join("over-stream.vmdk");
    vimg!("snapshot create -q", &stream, &over_stream).ok();
    qemu_io("vmdk", &over_stream, &["write -P 2 0 64k"]);
    let before = sha256(&stream);
    let err = vimg!("commit", &over_stream).one_line_error(&stream, "a commit into a stream");
    assert!(!err.stderr_text().contains("stopped part way"), "{err:?}");
    assert_eq!(sha256(&stream), before);
    let stream_journal = d.join(".over-stream.vmdk.vimg-commit");
    assert!(!stream_journal.exists());
    vimg!("check", &over_stream).ok();
    // A journal naming base.vmdk: -b another layer is refused, the
    // journal kept; the commit it names is then finished.
    let top = d.join("top.vmdk");
    vimg!("snapshot create -q", &delta, &top).ok();
    qemu_io("vmdk", &top, &["write -P 5 5M 64k"]);
    let want = qemu_to_raw(&top, &d.join("want.raw"));
    let top_journal = d.join(".top.vmdk.vimg-commit");
    std::fs::write(&top_journal, "vimg snapshot commit in progress: run it again to finish\nparent=base.vmdk\nrecorded-id=0\n").unwrap();
    let err =
        vimg!("commit -b", &delta, &top).one_line_error(&top, "another base than the journal's");
    assert!(err.stderr_text().contains("stopped part way"), "{err:?}");
    assert!(top_journal.exists());
    vimg!("commit -q -b", &base, &top).ok();
    assert!(!top_journal.exists() && !journal.exists());
    assert_same_bytes(&vimg_to_raw(&top, &d.join("after.raw")), &want);
}

/// Other deltas of the parent are found by file identity: one that names
/// the parent through a hard link stops the commit (a VHD keeps its UUID
/// through a commit, so nothing else would show it now reads otherwise).
#[test]
fn a_sibling_naming_the_parent_through_a_hard_link_stops_the_commit() {
    let dir = tempdir();
    let d = dir.path();
    let (parent, child, _) = vhd_chain(d);
    let link = d.join("link.vhd");
    std::fs::hard_link(&parent, &link).unwrap();
    let other = d.join("other.vhd");
    vimg!("snapshot create -q", &link, &other).ok();
    let before = sha256(&parent);
    for cmd in [vimg!("commit", &child), vimg!("commit -b", &link, &child)] {
        let err = cmd.one_line_error(&child, "a sibling through a hard link");
        assert!(err.stderr_text().contains("other.vhd"), "{err:?}");
        assert_eq!(sha256(&parent), before);
    }
    vimg!("resize", &parent, "128M").code(1);
}

/// The delta is held under the write lock for the whole commit: nothing
/// else (vimg amend, qemu-io) writes it while its data is copied.
#[test]
fn the_delta_is_locked_while_it_is_committed() {
    let dir = tempdir();
    let d = dir.path();
    let (_, delta, _) = vmdk_chain(d);
    qemu_io("vmdk", &delta, &["write -P 8 0 16M"]);
    let settle = std::time::Duration::from_millis(700);
    let mut commit = in_background(&vimg!("commit -q -r 8M", &delta), settle);
    let amend = vimg!("amend -o toolsversion=7", &delta).run();
    let qemu = qemu_io_write_vmdk(&delta, 9, "64k");
    let status = commit.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(amend.code(), Some(1), "{amend:?}");
    assert!(amend.stderr_text().contains("in use"), "{amend:?}");
    // qemu-io says it cannot lock, and exits 1.
    assert!(!qemu.status.success(), "{qemu:?}");
    assert!(qemu.stderr_text().contains("lock"), "{qemu:?}");
    vimg!("check", &delta).ok();
}
