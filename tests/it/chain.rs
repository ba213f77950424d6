//! Chains through the library, judged by the peers: a chain opened with its
//! parent writable takes the top layer's data into the parent (what commit
//! builds on), a delta relinked to another parent or made standalone reads
//! as qemu-img and libvhdi expect, and locks keep vimg and QEMU apart.

use std::path::{Path, PathBuf};

use vimg::copy::{Layers, Plan};
use vimg::image::factory::{open, open_with};
use vimg::image::{NewParent, OpenOptions};
use vimg::io::Access;

use crate::support::*;

const SIZE: u64 = 16 * MIB;

/// Writes into a base: data at the start, in the middle, at the end.
fn base_writes() -> Vec<String> {
    vec![
        "write -P 0x11 0 3M".into(),
        "write -P 0x12 7M 100k".into(),
        format!("write -P 0x13 {} 1536", SIZE - 1536),
    ]
}

/// Writes into a delta: partial grains over the base's data, zeros over
/// it, data where it has none.
fn delta_writes() -> Vec<String> {
    vec![
        "write -P 0x21 1M 100k".into(),
        "write -P 0x22 1000 1".into(),
        "write -z 2M 128k".into(),
        "write -P 0x23 12M 1M".into(),
    ]
}

/// A qemu-img VMDK base filled by qemu-io, and a qemu-img delta over it
/// written by qemu-io.
fn qemu_vmdk_chain(dir: &Path, base: &str, delta: &str) -> (PathBuf, PathBuf) {
    let (b, d) = (dir.join(base), dir.join(delta));
    qemu_img!("create -q -f vmdk", &b, SIZE).ok();
    qemu_io("vmdk", &b, &base_writes());
    qemu_img!("create -q -f vmdk -F vmdk -b", base, &d).ok();
    qemu_io("vmdk", &d, &delta_writes());
    (b, d)
}

/// A vimg differencing VHD over a dynamic base qemu-io filled, with the
/// delta's data written through vimg (qemu-io would mark whole blocks), in
/// whole 4 KiB pieces: libvhdi misreads a bitmap byte that is neither all
/// clear nor all set (see vhd/differencing.rs).
fn vhd_chain(dir: &Path, base: &str, delta: &str) -> (PathBuf, PathBuf) {
    let (b, d) = (dir.join(base), dir.join(delta));
    vimg!("create -q -f vhd", &b, SIZE).ok();
    qemu_io("vhd", &b, &base_writes());
    vimg!("create -q -f vhd -b", &b, &d).ok();
    let mut top = open(&d, None, Access::Write).unwrap();
    for (byte, offset, len) in [
        (0x21, MIB, 100 * KIB),
        (0x22, 4 * KIB, 4 * KIB),
        (0x23, 12 * MIB, MIB),
    ] {
        top.write_at(&vec![byte; len as usize], offset).unwrap();
    }
    top.write_at(&vec![0; 128 * KIB as usize], 2 * MIB).unwrap();
    top.flush().unwrap();
    (b, d)
}

/// Copy what the top layer of `delta`'s chain holds into its parent,
/// through one handle on each file: the core of a commit.
fn commit_by_library(delta: &Path) {
    let opts = OpenOptions::new(Access::Write).with_parents(Some(Access::Write));
    let mut top = open_with(delta, None, opts).unwrap();
    let size = top.virtual_size();
    let mut plan = Plan::new(0..size, Layers::Top(1)).with_zeros(true);
    while let Some(run) = plan.next_run(top.as_mut()).unwrap() {
        let mut buf = vec![0u8; (run.end - run.start) as usize];
        top.read_at(&mut buf, run.start).unwrap();
        top.parent().unwrap().write_at(&buf, run.start).unwrap();
    }
    top.parent().unwrap().flush().unwrap();
}

#[test]
fn a_qemu_vmdk_chain_opened_with_its_parent_writable_commits_into_it() {
    let dir = tempdir();
    let (base, delta) = qemu_vmdk_chain(dir.path(), "base.vmdk", "delta.vmdk");
    let before = qemu_to_raw(&delta, &dir.path().join("before.raw"));
    commit_by_library(&delta);
    // The base alone now reads what the chain read, and is sound.
    assert_identical("vmdk", &base, "raw", &before);
    assert_qemu_check(&base);
}

#[test]
fn a_differencing_vhd_opened_with_its_parent_writable_commits_into_it() {
    let dir = tempdir();
    let (base, delta) = vhd_chain(dir.path(), "base.vhd", "delta.vhd");
    let before = vimg_to_raw(&delta, &dir.path().join("before.raw"));
    assert_pyvhdi_reads(&delta, &[&base], &before, &[]);
    commit_by_library(&delta);
    assert_identical("vhd", &base, "raw", &before);
    assert_pyvhdi_reads(&base, &[], &before, &[]);
}

/// `delta` relinked to `parent` (recorded as `name`) through the library.
fn relink(delta: &Path, parent: Option<(&Path, &str)>) {
    let opts = OpenOptions::new(Access::Write).with_parents(None);
    let mut top = open_with(delta, None, opts).unwrap();
    let parent = parent.map(|(path, name)| NewParent {
        image: open(path, None, Access::Read).unwrap(),
        name: name.to_string(),
    });
    top.set_backing(parent).unwrap();
    top.flush().unwrap();
}

/// The ranges the top layer holds itself (whole grains or sectors, data or
/// zeros), as a map in qemu-img's JSON (qemu-img's or vimg's) reports them
/// at depth 0.
fn held(map: &serde_json::Value) -> Vec<(u64, u64)> {
    map.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["depth"] == 0 && e["present"] == true)
        .map(|e| (field_u64(e, "start"), field_u64(e, "length")))
        .collect()
}

/// What a delta holding `held` must read over a parent whose content is
/// `parent_raw`: the parent's bytes, with the delta's own where it holds
/// them (as `before_raw`, the chain read before the relink, has them).
fn expected_over(parent_raw: &Path, before_raw: &Path, held: &[(u64, u64)], out: &Path) -> PathBuf {
    std::fs::copy(parent_raw, out).unwrap();
    for &(start, len) in held {
        patch(out, start, &read_at(before_raw, start, len as usize));
    }
    out.to_path_buf()
}

#[test]
fn a_vmdk_delta_relinked_to_another_parent_reads_over_it_in_qemu() {
    let dir = tempdir();
    let d = dir.path();
    let (_, delta) = qemu_vmdk_chain(d, "base.vmdk", "delta.vmdk");
    let before = qemu_to_raw(&delta, &d.join("before.raw"));
    let held = held(&qemu_img!("map --output json", &delta).json());
    let other = d.join("other.vmdk");
    qemu_img!("create -q -f vmdk", &other, SIZE).ok();
    qemu_io("vmdk", &other, &["write -P 0x77 0 8M"]);
    relink(&delta, Some((&other, "other.vmdk")));
    let info = qemu_info(Some("vmdk"), &delta);
    assert_eq!(
        field_str(&info, "backing-filename"),
        "other.vmdk",
        "{info:#}"
    );
    let other_raw = qemu_to_raw(&other, &d.join("other.raw"));
    let want = expected_over(&other_raw, &before, &held, &d.join("want.raw"));
    assert_identical("vmdk", &delta, "raw", &want);
    assert_qemu_check(&delta);
    // And standalone: the delta's own grains over zeros.
    relink(&delta, None);
    let info = qemu_info(Some("vmdk"), &delta);
    assert!(info.get("backing-filename").is_none(), "{info:#}");
    let zeros = zero_raw(&d.join("zeros.raw"), SIZE);
    let want = expected_over(&zeros, &before, &held, &d.join("alone.raw"));
    assert_identical("vmdk", &delta, "raw", &want);
    assert_qemu_check(&delta);
}

#[test]
fn a_differencing_vhd_relinked_to_another_parent_reads_over_it_in_libvhdi() {
    let dir = tempdir();
    let d = dir.path();
    let (_, delta) = vhd_chain(d, "base.vhd", "delta.vhd");
    let before = vimg_to_raw(&delta, &d.join("before.raw"));
    // No peer maps a differencing VHD's sectors; vimg's map does, and
    // libvhdi judges the reading.
    let held = held(&vimg!("map --output json", &delta).json());
    let other = d.join("other.vhd");
    vimg!("create -q -f vhd", &other, SIZE).ok();
    qemu_io("vhd", &other, &["write -P 0x77 0 8M"]);
    relink(&delta, Some((&other, "other.vhd")));
    let (_, kind, _, parent_id) = pyvhdi_describe(&delta);
    let (_, _, other_id, _) = pyvhdi_describe(&other);
    assert_eq!((kind, parent_id), (4, other_id));
    let other_raw = vimg_to_raw(&other, &d.join("other.raw"));
    let want = expected_over(&other_raw, &before, &held, &d.join("want.raw"));
    assert_pyvhdi_reads(&delta, &[&other], &want, &[]);
    assert_same_bytes(&vimg_to_raw(&delta, &d.join("vimg.raw")), &want);
    // Standalone: a dynamic disk, the delta's own sectors over zeros.
    relink(&delta, None);
    assert_eq!(pyvhdi_describe(&delta).1, 3);
    let zeros = zero_raw(&d.join("zeros.raw"), SIZE);
    let want = expected_over(&zeros, &before, &held, &d.join("alone.raw"));
    assert_pyvhdi_reads(&delta, &[], &want, &[]);
    assert_identical("vhd", &delta, "raw", &want);
}

#[test]
fn qemu_serving_an_image_keeps_vimg_readers_out_unless_shared() {
    let dir = tempdir();
    let image = dir.path().join("vm.vmdk");
    vimg!("create -q -f vmdk", &image, SIZE).ok();
    let nbd = nbd::serve("vmdk", &image);
    let err = vimg!("info", &image).one_line_error(&image, "info while served");
    assert!(
        err.stderr_text()
            .contains("another process may be writing it"),
        "{err:?}"
    );
    vimg!("info -U", &image).ok();
    assert!(open(&image, None, Access::Write).is_err());
    drop(nbd);
    vimg!("info", &image).ok();
}

#[test]
fn a_vimg_writer_keeps_qemu_out_and_its_own_readers_in() {
    let dir = tempdir();
    let (base, delta) = qemu_vmdk_chain(dir.path(), "base.vmdk", "delta.vmdk");
    let writer = open(&base, None, Access::Write).unwrap();
    let out = qemu_img!("info", &base).run();
    assert_ne!(out.code(), Some(0), "qemu-img read a locked image: {out:?}");
    assert!(out.stderr_text().contains("lock"), "{out:?}");
    // A reader of the chain in this process is not kept out by our lock.
    let mut chain = open(&delta, None, Access::Read).unwrap();
    let mut buf = [0u8; 512];
    chain.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf[0], 0x11);
    drop(chain);
    drop(writer);
    qemu_img!("info", &base).ok();
}

/// A chain of a thousand images opens and reads (the open-file limit is
/// raised for it); one more image ends with a clear one-line error, as
/// does a loop.
#[test]
fn a_chain_of_a_thousand_images_reads_and_one_more_is_refused() {
    let dir = tempdir();
    let d = dir.path();
    let name = |i: usize| format!("d{i:04}.vmdk");
    let base = d.join(name(0));
    vimg!("create -q -f vmdk", &base, MIB).ok();
    qemu_io("vmdk", &base, &["write -P 7 0 64k"]);
    // Every layer has the base's CID, so one delta, renamed, links to
    // the one before it.
    let cid = format!("{:08x}", crate::support::vmdk::cid_of(&base));
    let template = d.join("template.vmdk");
    vimg!("snapshot create -q", &base, &template).ok();
    let mut bytes = std::fs::read(&template).unwrap();
    let own = format!("CID={:08x}", crate::support::vmdk::cid_of(&template));
    let at = find_bytes(&bytes, own.as_bytes());
    bytes[at..at + own.len()].copy_from_slice(format!("CID={cid}").as_bytes());
    let hint = find_bytes(&bytes, name(0).as_bytes());
    for i in 1..=1000 {
        bytes[hint..hint + 10].copy_from_slice(name(i - 1).as_bytes());
        std::fs::write(d.join(name(i)), &bytes).unwrap();
    }
    // 1000 images: the top and 999 below it.
    let top = d.join(name(999));
    let chain = vimg!("info --backing-chain --output json", &top).json();
    assert_eq!(chain.as_array().unwrap().len(), 1000);
    let raw = vimg_to_raw(&top, &d.join("top.raw"));
    assert_eq!(read_at(&raw, 0, 4), [7; 4]);
    // 1001: refused, in one line.
    let over = d.join(name(1000));
    let err = vimg!("info", &over).one_line_error(&over, "1001 images");
    assert!(err.stderr_text().contains("deeper than 1000"), "{err:?}");
    // A loop: the base named after the top.
    let looped = d.join(name(0));
    bytes[hint..hint + 10].copy_from_slice(name(999).as_bytes());
    std::fs::write(&looped, &bytes).unwrap();
    let err = vimg!("info", &top).one_line_error(&top, "a loop");
    assert!(err.stderr_text().contains("loops"), "{err:?}");
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}
