//! `vimg amend`: the adapter type, hardware and tools versions of a VMDK
//! changed in its descriptor, and nothing else: no grain, no CID.

use crate::support::vhd::vimg_vpc_data;
use crate::support::vmdk::{cid_of, desc_value, descriptor_text, kdmv_header};
use crate::support::*;

#[test]
fn amend_changes_the_adapter_type_and_no_grain() {
    let dir = tempdir();
    let d = dir.path();
    let path = d.join("disk.vmdk");
    qemu_img!("create -q -f vmdk", &path, "1G").ok();
    qemu_io("vmdk", &path, &["write -P 3 0 1M", "write -P 4 700M 64k"]);
    let before = std::fs::read(&path).unwrap();
    let cid = cid_of(&path);
    let out = vimg!("amend -o adapter_type=lsilogic,hwversion=13", &path).ok();
    assert!(out.contains("ddb.adapterType: ide -> lsilogic"), "{out}");
    let text = descriptor_text(&path);
    assert_eq!(
        desc_value(&text, "ddb.adapterType").as_deref(),
        Some("lsilogic")
    );
    assert_eq!(
        desc_value(&text, "ddb.virtualHWVersion").as_deref(),
        Some("13")
    );
    assert_eq!(
        desc_value(&text, "ddb.geometry.heads").as_deref(),
        Some("255")
    );
    assert_eq!(cid_of(&path), cid);
    // Only the embedded descriptor's bytes changed.
    let h = kdmv_header(&path);
    let desc = (h.desc_offset * 512) as usize..((h.desc_offset + h.desc_size) * 512) as usize;
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), before.len());
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert!(
            a == b || desc.contains(&i),
            "byte {i} outside the descriptor changed"
        );
    }
    let info = vimg_info(None, &path);
    assert_eq!(info["format-specific"]["data"]["adapter-type"], "lsilogic");
    qemu_img!("check -q -f vmdk", &path).ok();
    cmd!("vmdkinfo", &path).ok();
    let copy = d.join("copy.vmdk");
    std::fs::write(&copy, &before).unwrap();
    assert_identical("vmdk", &copy, "vmdk", &path);
    // Nothing asked that is not there already: nothing written.
    let again = vimg!("amend -o adapter_type=lsilogic", &path).ok();
    assert_eq!(again.trim(), "Nothing to change.");
}

#[test]
fn amend_refuses_what_moves_data_and_what_it_does_not_know() {
    let dir = tempdir();
    let path = dir.path().join("disk.vmdk");
    vimg!("create -q -f vmdk", &path, "64M").ok();
    let before = std::fs::read(&path).unwrap();
    for (opts, says) in [
        ("subformat=streamOptimized", "vimg convert"),
        ("zeroed_grain=on", "vimg convert"),
        ("adapter_type=scsi", "not one of"),
        ("colour=blue", "no option 'colour'"),
    ] {
        let err = vimg!("amend -o", opts, &path).one_line_error(&path, opts);
        assert!(err.stderr_text().contains(says), "{opts}: {err:?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let vhd = dir.path().join("disk.vhd");
    vimg!("create -q -f vhd", &vhd, "64M").ok();
    vimg!("amend -o adapter_type=ide", &vhd).one_line_error(&vhd, "a VHD");
}

#[test]
fn a_vhd_s_creator_and_geometry_change_only_while_the_size_read_stays() {
    let dir = tempdir();
    let d = dir.path();
    // qemu's default: a geometry that addresses the size exactly.
    let path = d.join("q.vhd");
    qemu_img!("create -q -f vpc", &path, "100M").ok();
    qemu_io("vpc", &path, &["write -P 5 0 1M"]);
    let copy = d.join("copy.vhd");
    std::fs::copy(&path, &copy).unwrap();
    let out = vimg!("amend -o creator_app=win", &path).ok();
    assert!(out.contains("\"qemu\" -> \"win \""), "{out}");
    let data = vimg_vpc_data(&path);
    assert_eq!(data["creator-app"], "win");
    assert_identical("vpc", &copy, "vpc", &path);
    let (size, ..) = pyvhdi_describe(&path);
    assert_eq!(size, field_u64(&vimg_info(None, &copy), "virtual-size"));
    vimg!("check", &path).ok();
    // A qemu disk whose size field says a sector less than its geometry:
    // readers go by the geometry for a qemu disk, by the size field for
    // Windows'. Amending the creator would change the disk.
    let exact = d.join("exact.vhd");
    std::fs::copy(&copy, &exact).unwrap();
    let size = field_u64(&vimg_info(None, &exact), "virtual-size");
    crate::support::vhd::patch_footers(&exact, |f| {
        f[48..56].copy_from_slice(&(size - 512).to_be_bytes())
    });
    assert_eq!(field_u64(&vimg_info(None, &exact), "virtual-size"), size);
    let before = std::fs::read(&exact).unwrap();
    let err = vimg!("amend -o creator_app=win", &exact).one_line_error(&exact, "size change");
    assert!(
        err.stderr_text()
            .contains("never changes what the disk reads"),
        "{err:?}"
    );
    let err = vimg!("amend -o force_size=off", &exact).run();
    assert_eq!(err.code(), Some(1), "{err:?}");
    assert_eq!(std::fs::read(&exact).unwrap(), before);
}

/// An amendment stopped at each of its writes leaves the disk reading as
/// before, and running it again finishes it.
#[test]
fn an_amendment_killed_at_any_write_is_finished_by_a_rerun() {
    use crate::support::faults::{killed_at, writes_of};
    let dir = tempdir();
    let d = dir.path();
    for (fmt, ours, opts) in [
        ("vmdk", "vmdk", "adapter_type=buslogic,hwversion=11"),
        ("vpc", "vhd", "creator_app=win"),
    ] {
        let before = d.join(format!("before.{ours}"));
        qemu_img!("create -q -f", fmt, &before, "100M").ok();
        qemu_io(fmt, &before, &["write -P 5 0 1M"]);
        let traced = d.join(format!("traced.{ours}"));
        std::fs::copy(&before, &traced).unwrap();
        let writes = writes_of(&vimg!("amend -q -o", opts, &traced));
        assert!(!writes.is_empty(), "{opts}");
        for n in 0..writes.len() {
            let copy = d.join(format!("kill-{n}.{ours}"));
            std::fs::copy(&before, &copy).unwrap();
            killed_at(&vimg!("amend -q -o", opts, &copy), &writes, n);
            assert_identical(fmt, &before, fmt, &copy);
            vimg!("amend -q -o", opts, &copy).ok();
            vimg!("check", &copy).ok();
            let again = vimg!("amend -o", opts, &copy).ok();
            assert_eq!(
                again.trim(),
                "Nothing to change.",
                "{opts}, killed at write {n}"
            );
            std::fs::remove_file(&copy).unwrap();
        }
    }
}

/// A VMDK's geometry set as C/H/S in the descriptor (within the disk's
/// size), and a VHD's creator OS and version in both footers; the content
/// stays.
#[test]
fn amend_sets_a_vmdk_geometry_and_a_vhd_creator_os_and_version() {
    let dir = tempdir();
    let d = dir.path();
    let path = d.join("disk.vmdk");
    vimg!("create -q -f vmdk", &path, "1G").ok();
    qemu_io("vmdk", &path, &["write -P 3 0 1M"]);
    let cid = cid_of(&path);
    let out = vimg!("amend -o geometry=1040/32/63", &path).ok();
    assert!(out.contains("ddb.geometry.cylinders"), "{out}");
    let text = descriptor_text(&path);
    for (key, value) in [("cylinders", "1040"), ("heads", "32"), ("sectors", "63")] {
        let got = desc_value(&text, &format!("ddb.geometry.{key}"));
        assert_eq!(got.as_deref(), Some(value), "{key}");
    }
    assert_eq!(cid_of(&path), cid);
    qemu_img!("check -q -f vmdk", &path).ok();
    for bad in [
        "geometry=99999/16/63",
        "geometry=2000/255/63",
        "geometry=10/16",
    ] {
        vimg!("amend -o", bad, &path).one_line_error(&path, bad);
    }

    let vhd = d.join("disk.vhd");
    vimg!("create -q -f vhd", &vhd, "64M").ok();
    qemu_io("vpc", &vhd, &["write -P 5 0 1M"]);
    let before = vimg_to_raw(&vhd, &d.join("before.raw"));
    let out = vimg!("amend -o creator_os=Mac,creator_version=10.0", &vhd).ok();
    assert!(out.contains("creator OS") && out.contains("10.0"), "{out}");
    let data = vimg_vpc_data(&vhd);
    assert_eq!(data["creator-os"], "Mac");
    assert_eq!(data["creator-version"], "10.0");
    let tail = std::fs::read(&vhd).unwrap();
    assert_eq!(&tail[..512], &tail[tail.len() - 512..], "both footers");
    assert_identical("raw", &before, "vpc", &vhd);
    vimg!("check", &vhd).ok();
    vimg!("amend -o creator_os=Linux", &vhd).one_line_error(&vhd, "unknown OS");
}
