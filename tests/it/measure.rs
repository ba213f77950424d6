//! `vimg measure`: for every format and subformat vimg writes, the space
//! it says a conversion needs is not below, and within 1% of, what the
//! conversion then writes (streamOptimized: an upper bound).

use std::path::Path;

use crate::support::*;

/// Bytes of every file of the image at `path` (its extents too).
fn image_bytes(path: &Path) -> u64 {
    let info = vimg_info(None, path);
    let files = info["format-specific"]["data"]["extents"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["filename"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut total = file_len(path);
    for f in files {
        if Path::new(&f) != path {
            total += file_len(Path::new(&f));
        }
    }
    total
}

#[test]
fn measure_is_what_convert_then_writes() {
    let dir = tempdir();
    let d = dir.path();
    let source = d.join("source.vmdk");
    qemu_img!("create -q -f vmdk", &source, 64 * MIB).ok();
    qemu_io(
        "vmdk",
        &source,
        &[
            "write -P 1 0 3M",
            "write -P 2 10M 64k",
            "write -P 3 33M 5M",
            "write -P 4 63M 1M",
        ],
    );
    for (fmt, opts) in [
        ("raw", None),
        ("vmdk", None),
        ("vmdk", Some("subformat=twoGbMaxExtentSparse")),
        ("vmdk", Some("subformat=monolithicFlat")),
        ("vmdk", Some("subformat=twoGbMaxExtentFlat")),
        ("vmdk", Some("subformat=streamOptimized")),
        ("vhd", None),
        ("vhd", Some("subformat=fixed")),
        ("vhd", Some("block_size=512K")),
    ] {
        let what = format!("{fmt} {}", opts.unwrap_or(""));
        let m = vimg!("measure --output json -O", fmt)
            .opt("-o", opts)
            .arg(&source)
            .json();
        let required = field_u64(&m, "required");
        let full = field_u64(&m, "fully-allocated");
        assert!(full >= required, "{what}: {m}");
        let out = d.join(format!(
            "out-{}.{fmt}",
            opts.unwrap_or("").replace(['=', ','], "-")
        ));
        vimg!("convert -q -O", fmt)
            .opt("-o", opts)
            .arg(&source)
            .arg(&out)
            .ok();
        let written = match fmt {
            "raw" => file_len(&out),
            _ => image_bytes(&out),
        };
        assert!(
            required >= written,
            "{what}: measured {required}, wrote {written}"
        );
        if !what.contains("streamOptimized") {
            assert!(
                required <= written + written / 100,
                "{what}: measured {required}, wrote {written}"
            );
        }
    }
    // qemu-img's human lines, and --size for an empty disk.
    let text = vimg!("measure -O vhd --size 1G").ok();
    assert!(text.starts_with("required size: "), "{text}");
    assert!(text.contains("\nfully allocated size: "), "{text}");
    let raw = vimg!("measure --output json -O raw --size 1G").json();
    assert_eq!(field_u64(&raw, "required"), GIB);
}
