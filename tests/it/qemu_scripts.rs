//! Command lines as public scripts and documents run qemu-img on VMDK and
//! VHD images (each names where it comes from), run once with qemu-img and
//! once with vimg on the same files: the exit codes, the JSON both print
//! (the keys both have) and the images both make (`qemu-img compare`) must
//! agree. Where qemu-img cannot do the job for these formats, vimg must.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// What the two tools must do with a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The same exit code, JSON and images.
    Same,
    /// qemu-img fails on these formats; vimg succeeds.
    BeyondQemu,
}

struct Line {
    /// Where the line comes from.
    from: &'static str,
    /// The line, run by bash with `qemu-img` as the tool (replaced by
    /// vimg's path for vimg's run).
    line: &'static str,
    /// Files the line makes or changes, compared afterwards.
    outputs: &'static [&'static str],
    /// Compare the JSON the line prints.
    json: bool,
    expect: Expect,
}

const fn same(
    from: &'static str,
    line: &'static str,
    outputs: &'static [&'static str],
    json: bool,
) -> Line {
    Line {
        from,
        line,
        outputs,
        json,
        expect: Expect::Same,
    }
}

const fn beyond(from: &'static str, line: &'static str, outputs: &'static [&'static str]) -> Line {
    Line {
        from,
        line,
        outputs,
        json: false,
        expect: Expect::BeyondQemu,
    }
}

/// The command-line corpus, by verb.
const LINES: &[Line] = &[
    // create
    same("VMware ESXi import how-tos", "qemu-img create -f vmdk -o adapter_type=lsilogic,subformat=monolithicFlat flat.vmdk 64M", &["flat.vmdk"], false),
    same("libvirt/virt-install guides", "qemu-img create -f vmdk new.vmdk 10G", &["new.vmdk"], false),
    same("Hyper-V on Linux guides", "qemu-img create -f vpc -o subformat=fixed,force_size fixed.vhd 64M", &["fixed.vhd"], false),
    same("OpenStack nova create_cow_image (older releases: -o backing_file)", "qemu-img create -f vmdk -o backing_file=disk.vmdk,backing_fmt=vmdk cow.vmdk", &["cow.vmdk"], false),
    same("qemu-img(1): -o size instead of SIZE", "qemu-img create -f vpc -o size=64M,force_size=on sized.vhd", &["sized.vhd"], false),
    same("OpenStack devstack (delta over an image)", "qemu-img create -f vmdk -b disk.vmdk -F vmdk overlay.vmdk", &["overlay.vmdk"], false),
    // info
    same("Azure: prepare a generic Linux VHD", "qemu-img info -f raw --output json disk.raw", &[], true),
    same("OpenStack nova images.qemu_img_info", "qemu-img info disk.vmdk --force-share --output=json", &[], true),
    same("KubeVirt CDI qemu.go Info", "qemu-img info --output=json disk.vhd", &[], true),
    same("qemu docs: backing chain", "qemu-img info --backing-chain --output=json delta.vmdk", &[], true),
    same("short form", "qemu-img info -b -U delta.vmdk > /dev/null", &[], false),
    // convert
    same("Azure: prepare a generic Linux VHD", "qemu-img convert -f raw -o subformat=fixed,force_size -O vpc disk.raw azure.vhd", &["azure.vhd"], false),
    same("OpenStack nova images.convert_image", "qemu-img convert -t none -O raw -f vmdk disk.vmdk out.raw", &["out.raw"], false),
    same("OpenStack cinder image_utils (VHD upload)", "qemu-img convert -O vpc -o subformat=dynamic,force_size -t none -f raw disk.raw vol.vhd", &["vol.vhd"], false),
    same("KubeVirt CDI qemu.go ConvertToRawStream", "qemu-img convert -t writeback -p -O raw disk.vmdk disk.img", &["disk.img"], false),
    same("KubeVirt CDI convertPreallocationMethods (falloc)", "qemu-img convert -t writeback -p -O raw -o preallocation=falloc disk.vmdk falloc.img", &["falloc.img"], false),
    same("KubeVirt CDI convertPreallocationMethods (full)", "qemu-img convert -t writeback -p -O raw -o preallocation=full disk.vhd full.img", &["full.img"], false),
    same("KubeVirt CDI (preallocated)", "qemu-img convert -t writeback -p -O raw -S 0 disk.vhd prealloc.img", &["prealloc.img"], false),
    same("Packer / vSphere OVA builders", "qemu-img convert -O vmdk -o subformat=streamOptimized disk.raw stream.vmdk", &["stream.vmdk"], false),
    same("qemu-img(1): FILENAME [FILENAME2 [...]] joined in order", "qemu-img convert -f raw -O vmdk disk.raw disk.raw joined.vmdk", &["joined.vmdk"], false),
    same("OVA builders (adapter type)", "qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic,compat6 disk.raw ova.vmdk", &["ova.vmdk"], false),
    same("Proxmox qm importdisk", "qemu-img convert -p -n -f vmdk -O raw disk.vmdk existing.raw", &["existing.raw"], false),
    same("the issue's pipeline line", "qemu-img convert -p -W -m 16 -O vmdk disk.raw parallel.vmdk", &["parallel.vmdk"], false),
    same("qemu docs: -B", "qemu-img convert -O vmdk -B disk.vmdk -F vmdk changed.raw changed-delta.vmdk", &["changed-delta.vmdk"], false),
    same("rate-limited copies", "qemu-img convert -r 200M -T none -O vmdk disk.raw slow.vmdk", &["slow.vmdk"], false),
    same("copy offloading", "qemu-img convert -C -f raw -O raw disk.raw offload.raw", &["offload.raw"], false),
    // map
    same("libguestfs / nbdkit docs", "qemu-img map --output=json -f vmdk disk.vmdk", &[], true),
    same("qemu docs: map", "qemu-img map --output json --start-offset 16M --max-length 32M disk.vhd", &[], true),
    // check
    same("OpenStack glance format inspection", "qemu-img check -f vmdk disk.vmdk", &[], false),
    same("qemu docs: check, JSON", "qemu-img check --output=json disk.vmdk", &[], true),
    beyond("crash recovery guides (qemu-img repairs no VMDK)", "qemu-img check -r leaks -f vmdk disk.vmdk", &["disk.vmdk"]),
    beyond("VHD checks (qemu-img has none)", "qemu-img check --output=json disk.vhd", &[]),
    // compare
    same("qemu iotests", "qemu-img compare -f raw -F vmdk disk.raw disk.vmdk", &[], false),
    same("qemu iotests, differing", "qemu-img compare disk.raw changed.raw", &[], false),
    same("qemu docs: strict", "qemu-img compare -s disk.vmdk disk.vmdk", &[], false),
    // commit
    // (qemu-img leaves the delta's parentCID behind, so that it no longer
    // opens; vimg relinks it: only the bases are compared.)
    same("qemu docs: commit", "qemu-img commit -p -f vmdk delta.vmdk", &["disk.vmdk"], false),
    same("qemu docs: commit, keep the delta", "qemu-img commit -d -r 100M delta.vmdk", &["disk.vmdk"], false),
    // rebase
    // (qemu-img cannot change a VMDK's backing file at all.)
    beyond("qemu docs: unsafe rebase", "qemu-img rebase -u -f vmdk -b disk.vmdk -F vmdk delta.vmdk", &["delta.vmdk"]),
    beyond("qemu docs: safe rebase", "qemu-img rebase -p -f vmdk -b other.vmdk -F vmdk delta.vmdk", &["delta.vmdk"]),
    beyond("flattening a VMDK delta", "qemu-img rebase -f vmdk -b '' delta.vmdk", &["delta.vmdk"]),
    // resize
    same("Azure: round a raw disk to a whole MiB", "qemu-img resize -f raw disk.raw 65M", &["disk.raw"], false),
    same("KubeVirt CDI (preallocated resize)", "qemu-img resize -f raw --preallocation=falloc disk.raw 80M", &["disk.raw"], false),
    beyond("growing a VMware disk", "qemu-img resize -f vmdk other.vmdk +64M", &["other.vmdk"]),
    beyond("growing a Hyper-V disk", "qemu-img resize disk.vhd 128M", &["disk.vhd"]),
    // amend
    beyond("changing a VMDK's hardware version", "qemu-img amend -f vmdk -o hwversion=14 disk.vmdk", &["disk.vmdk"]),
    // measure
    same("OpenStack / oVirt size checks", "qemu-img measure --output=json -f raw -O raw disk.raw", &[], true),
    beyond("sizing a VMDK conversion", "qemu-img measure --output=json -O vmdk disk.raw", &[]),
    // snapshot
    same("qemu docs: list snapshots", "qemu-img snapshot -l disk.vmdk", &[], false),
    same("qemu docs: create a snapshot (none in VMDK)", "qemu-img snapshot -c snap1 disk.vmdk", &[], false),
];

/// Keys whose values depend on where and how a tool lays out its files.
const LAYOUT_KEYS: &[&str] = &[
    "actual-size",
    "format-specific",
    "children",
    "dirty-flag",
    "offset",
    "image-end-offset",
    "cluster-size",
    "full-backing-filename",
    "check-errors",
];

/// The files every line starts from: a 64 MiB raw disk with data, the
/// same as VMDK and VHD (made by qemu-img), a changed copy, another base,
/// and a delta over the VMDK with data of its own.
fn fixtures(d: &Path) {
    let raw = d.join("disk.raw");
    qemu_img!("create -q -f raw", &raw, "64M").ok();
    qemu_io("raw", &raw, &["write -P 1 0 16M", "write -P 2 32M 8M"]);
    qemu_img!("convert -O vmdk", &raw, d.join("disk.vmdk")).ok();
    qemu_img!("convert -O vpc -o force_size=on", &raw, d.join("disk.vhd")).ok();
    let changed = d.join("changed.raw");
    std::fs::copy(&raw, &changed).unwrap();
    qemu_io("raw", &changed, &["write -P 9 1M 64k", "write -z 33M 1M"]);
    qemu_img!("create -q -f vmdk", d.join("other.vmdk"), "64M").ok();
    qemu_img!("create -q -f raw", d.join("existing.raw"), "64M").ok();
    qemu_img!(
        "create -q -f vmdk -b disk.vmdk -F vmdk",
        d.join("delta.vmdk")
    )
    .ok();
    qemu_io("vmdk", &d.join("delta.vmdk"), &["write -P 5 8M 4M"]);
}

/// Map entries without host offsets, neighbours that read alike merged.
fn normal_map(v: &Value) -> Vec<(u64, u64, bool, bool)> {
    let mut out: Vec<(u64, u64, bool, bool)> = Vec::new();
    for e in v.as_array().expect("a map is a list") {
        let (start, len) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
        let (data, zero) = (e["data"].as_bool().unwrap(), e["zero"].as_bool().unwrap());
        match out.last_mut() {
            Some(l) if l.0 + l.1 == start && (l.2, l.3) == (data, zero) => l.1 += len,
            _ => out.push((start, len, data, zero)),
        }
    }
    out
}

/// The values both JSON documents have, but layout keys, compared.
fn assert_same_json(line: &str, theirs: &Value, ours: &Value) {
    match (theirs, ours) {
        (Value::Object(t), Value::Object(o)) => {
            for (k, tv) in t {
                if LAYOUT_KEYS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(ov) = o.get(k) {
                    assert_same_json(&format!("{line} [{k}]"), tv, ov);
                }
            }
        }
        (Value::Array(t), Value::Array(o)) => {
            assert_eq!(t.len(), o.len(), "{line}: {theirs} vs {ours}");
            for (tv, ov) in t.iter().zip(o) {
                assert_same_json(line, tv, ov);
            }
        }
        _ => assert_eq!(theirs, ours, "{line}"),
    }
}

#[test]
fn script_lines_run_alike_under_qemu_img_and_vimg() {
    let vimg = Path::new(VIMG);
    for (i, l) in LINES.iter().enumerate() {
        let root = tempdir();
        let (q, v) = (root.path().join("qemu"), root.path().join("vimg"));
        std::fs::create_dir(&q).unwrap();
        fixtures(&q);
        std::fs::create_dir(&v).unwrap();
        for e in std::fs::read_dir(&q).unwrap().flatten() {
            std::fs::copy(e.path(), v.join(e.file_name())).unwrap();
        }
        let ours_line = l.line.replacen("qemu-img", &vimg.display().to_string(), 1);
        let theirs = cmd!("bash", "-c").arg(l.line).current_dir(&q).run();
        let ours = cmd!("bash", "-c").arg(&ours_line).current_dir(&v).run();
        let what = format!("line {i} ({}): {}", l.from, l.line);
        match l.expect {
            Expect::Same => assert_eq!(
                theirs.code(),
                ours.code(),
                "{what}\nqemu-img: {theirs:?}\nvimg: {ours:?}"
            ),
            Expect::BeyondQemu => {
                assert_ne!(
                    theirs.code(),
                    Some(0),
                    "{what}: qemu-img did it: {theirs:?}"
                );
                assert_eq!(ours.code(), Some(0), "{what}: {ours:?}");
            }
        }
        if l.json {
            let parse = |r: &Run| -> Value {
                serde_json::from_str(&r.stdout_text())
                    .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {r:?}"))
            };
            let (t, o) = (parse(&theirs), parse(&ours));
            match l.line.contains(" map ") {
                true => assert_eq!(normal_map(&t), normal_map(&o), "{what}"),
                false => assert_same_json(&what, &t, &o),
            }
        }
        for out in l.outputs {
            let (t, o) = (q.join(out), v.join(out));
            assert_eq!(t.exists(), o.exists(), "{what}: {out}");
            if !o.exists() {
                continue;
            }
            match l.expect {
                // Both made it: they read the same (by vimg for VHDs:
                // qemu-img reads a fixed VHD's footer as disk data, and
                // the two footers differ in ID and time).
                Expect::Same => {
                    let run = match out.ends_with(".vhd") {
                        true => vimg!("compare").arg(&t).arg(&o).run(),
                        false => qemu_img!("compare").arg(&t).arg(&o).run(),
                    };
                    assert_eq!(run.code(), Some(0), "{what}: {out} differs: {run:?}");
                }
                // vimg's image is sound (qemu-img reads VMDKs back).
                Expect::BeyondQemu => {
                    vimg!("check", &o).ok();
                    if out.ends_with(".vmdk") {
                        assert_qemu_check(&o);
                    }
                }
            }
        }
    }
}
