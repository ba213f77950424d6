//! `vimg snapshot create`: a new, empty delta of the base's format (and,
//! for VMDK, its family: split over a split base), recording the base
//! relative to the delta and the base's identity, recognised as a chain by
//! qemu-img and libyal, and reading the base until written.

use crate::support::vmdk::{cid_of, desc_value, descriptor_text};
use crate::support::*;

#[test]
fn a_vmdk_snapshot_has_its_base_s_family_cid_and_content() {
    let dir = tempdir();
    let d = dir.path();
    for (sub, want) in [
        ("monolithicSparse", "monolithicSparse"),
        ("twoGbMaxExtentSparse", "twoGbMaxExtentSparse"),
        ("streamOptimized", "monolithicSparse"),
    ] {
        let base = d.join(format!("{sub}.vmdk"));
        qemu_img!(
            "create -q -f vmdk -o",
            format!("subformat={sub}"),
            &base,
            8 * MIB
        )
        .ok();
        if sub != "streamOptimized" {
            qemu_io("vmdk", &base, &["write -P 0x42 1M 1M"]);
        }
        std::fs::create_dir_all(d.join("snaps")).unwrap();
        let delta = d.join(format!("snaps/{sub}-000001.vmdk"));
        vimg!("snapshot create -q", &base, &delta).ok();
        let text = descriptor_text(&delta);
        assert_eq!(
            desc_value(&text, "createType").as_deref(),
            Some(want),
            "{sub}"
        );
        assert_eq!(
            desc_value(&text, "parentFileNameHint").as_deref(),
            Some(format!("../{sub}.vmdk").as_str()),
            "{sub}"
        );
        assert_eq!(
            u32::from_str_radix(&desc_value(&text, "parentCID").unwrap(), 16).unwrap(),
            cid_of(&base),
            "{sub}"
        );
        let info = qemu_img!("info --backing-chain --output json", &delta).json();
        assert_eq!(info.as_array().unwrap().len(), 2, "{sub}: {info:#}");
        assert_identical("vmdk", &delta, "vmdk", &base);
        // Written, the delta reads its data over the base's.
        qemu_io("vmdk", &delta, &["write -P 0x17 1536k 64k"]);
        let raw = qemu_to_raw(&delta, &d.join("q.raw"));
        assert_same_bytes(&vimg_to_raw(&delta, &d.join("v.raw")), &raw);
        for f in ["q.raw", "v.raw"] {
            std::fs::remove_file(d.join(f)).unwrap();
        }
    }
}

#[test]
fn a_vhd_snapshot_is_a_differencing_disk_libvhdi_reads_over_its_base() {
    let dir = tempdir();
    let d = dir.path();
    let base = d.join("base.vhd");
    vimg!("create -q -f vhd", &base, 8 * MIB).ok();
    qemu_io("vhd", &base, &["write -P 0x42 0 2M"]);
    let child = d.join("child.vhd");
    vimg!("snapshot create -q", &base, &child).ok();
    let (size, kind, _, parent) = pyvhdi_describe(&child);
    let (_, _, base_id, _) = pyvhdi_describe(&base);
    assert_eq!((size, kind, parent), (8 * MIB, 4, base_id));
    let raw = vimg_to_raw(&base, &d.join("base.raw"));
    assert_pyvhdi_reads(&child, &[&base], &raw, &[]);
    assert_same_bytes(&vimg_to_raw(&child, &d.join("child.raw")), &raw);
}

#[test]
fn a_snapshot_needs_an_image_base_and_a_free_name() {
    let dir = tempdir();
    let d = dir.path();
    let raw = d.join("disk.raw");
    build_raw(&raw, MIB, 3);
    let delta = d.join("delta.vmdk");
    vimg!("snapshot create", &raw, &delta).one_line_error(&raw, "raw base");
    let base = d.join("base.vmdk");
    vimg!("create -q -f vmdk", &base, MIB).ok();
    std::fs::write(&delta, b"keep").unwrap();
    vimg!("snapshot create", &base, &delta).one_line_error(&delta, "existing delta");
    assert_eq!(std::fs::read(&delta).unwrap(), b"keep");
    vimg!("snapshot create -q --force", &base, &delta).ok();
    assert_identical("vmdk", &delta, "vmdk", &base);
}
