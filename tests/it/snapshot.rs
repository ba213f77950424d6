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

/// `vimg snapshot list`: the layers of `top`'s chain as JSON, and the exit
/// code.
fn list(top: &std::path::Path) -> (i32, Vec<serde_json::Value>) {
    let run = vimg!("snapshot list --output json", top).run();
    let json: serde_json::Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {run:?}"));
    (run.code().unwrap(), json.as_array().unwrap().clone())
}

#[test]
fn snapshot_list_names_every_layer_and_marks_every_link() {
    let dir = tempdir();
    let d = dir.path();
    // A three-level VMDK chain, each layer written by qemu-io.
    let base = d.join("base.vmdk");
    let s1 = d.join("s1.vmdk");
    let s2 = d.join("s2.vmdk");
    vimg!("create -q -f vmdk", &base, 16 * MIB).ok();
    qemu_io("vmdk", &base, &["write -P 1 0 1M"]);
    vimg!("snapshot create -q", &base, &s1).ok();
    qemu_io("vmdk", &s1, &["write -P 2 1M 1M"]);
    vimg!("snapshot create -q", &s1, &s2).ok();
    qemu_io("vmdk", &s2, &["write -P 3 3M 64k"]);
    let (code, layers) = list(&s2);
    assert_eq!(code, 0, "{layers:#?}");
    let names: Vec<_> = layers.iter().map(|l| field_str(l, "filename")).collect();
    assert_eq!(names, [&s2, &s1, &base].map(|p| p.to_str().unwrap()));
    let held: Vec<_> = layers.iter().map(|l| field_u64(l, "allocated")).collect();
    assert_eq!(held, [64 * KIB, MIB, MIB]);
    for (layer, below) in layers.iter().zip([Some(&s1), Some(&base), None]) {
        assert_eq!(field_u64(layer, "virtual-size"), 16 * MIB);
        match below {
            Some(parent) => {
                let link = &layer["parent"];
                assert_eq!(link["valid"], true, "{layer:#}");
                assert_eq!(link["id"], format!("{:08x}", cid_of(parent)));
                assert_eq!(link["recorded-id"], link["id"]);
            }
            None => assert!(layer["parent"].is_null(), "{layer:#}"),
        }
    }
    let human = vimg!("snapshot list", &s2).ok();
    assert_eq!(human.matches(": valid").count(), 2, "{human}");
    // map shows data at depths 0, 1 and 2; the chain reads as qemu reads
    // it; qemu-img and vmdkinfo recognise every link.
    let map = vimg!("map --output json", &s2).json();
    let mut depths: Vec<u64> = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["data"] == true)
        .map(|m| m["depth"].as_u64().unwrap())
        .collect();
    depths.sort();
    depths.dedup();
    assert_eq!(depths, [0, 1, 2], "{map:#}");
    assert_same_bytes(
        &vimg_to_raw(&s2, &d.join("v.raw")),
        &qemu_to_raw(&s2, &d.join("q.raw")),
    );
    let info = qemu_img!("info --backing-chain --output json", &s2).json();
    assert_eq!(info.as_array().unwrap().len(), 3);
    for (delta, parent) in [(&s2, &s1), (&s1, &base)] {
        let text = cmd!("vmdkinfo", delta).ok();
        let want = format!("Parent content identifier:\t0x{:08x}", cid_of(parent));
        assert!(text.contains(&want), "{text}");
    }

    // The base written after s1 was taken: that link breaks, and is shown.
    qemu_io("vmdk", &base, &["write -P 9 8M 64k"]);
    let (code, layers) = list(&s2);
    assert_eq!(code, 2);
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0]["parent"]["valid"], true);
    assert_eq!(layers[1]["parent"]["id-matches"], false);
    assert_eq!(layers[1]["parent"]["valid"], false);
    let human = vimg!("snapshot list", &s2).code(2);
    assert!(human.stdout_text().contains("BROKEN"), "{human:?}");

    // The base gone: the chain ends at s1, whose link is shown missing.
    std::fs::rename(&base, d.join("elsewhere.vmdk")).unwrap();
    let (code, layers) = list(&s2);
    assert_eq!(code, 2);
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["parent"]["found"], false);
    assert_eq!(layers[1]["parent"]["name"], "base.vmdk");
}

#[test]
fn snapshot_list_shows_a_differencing_vhd_and_a_parent_of_another_uuid() {
    let dir = tempdir();
    let d = dir.path();
    let parent = d.join("parent.vhd");
    let child = d.join("child.vhd");
    vimg!("create -q -f vhd", &parent, 8 * MIB).ok();
    vimg!("snapshot create -q", &parent, &child).ok();
    vimg!("convert -q -O vhd", &parent, d.join("x.vhd")).ok();
    let (code, layers) = list(&child);
    assert_eq!(code, 0, "{layers:#?}");
    assert_eq!(layers.len(), 2);
    let text = cmd!("vhdiinfo", &child).ok();
    assert!(text.contains("Disk type\t\t: Differential"), "{text}");
    assert!(text.contains("Parent filename\t\t: parent.vhd"), "{text}");
    assert_eq!(field_str(&layers[0], "format"), "vpc");
    let (_, _, uuid, _) = pyvhdi_describe(&parent);
    assert_eq!(layers[0]["parent"]["id"], uuid.as_str());
    assert_eq!(layers[1]["id"], uuid.as_str());
    // Another disk (another UUID) put in the parent's place.
    std::fs::rename(d.join("x.vhd"), &parent).unwrap();
    let (code, layers) = list(&child);
    assert_eq!(code, 2);
    assert_eq!(layers[0]["parent"]["found"], true);
    assert_eq!(layers[0]["parent"]["id-matches"], false);
}
