//! streamOptimized VMDKs: images made by VMDKstream (the Red Hat converter)
//! read back as their source; vimg's streams written into a real pipe are
//! valid (qemu-img, libvmdk, and VMware's canonical layout walked marker by
//! marker); `-c` compresses, `compression_level` 1 and 9 both work, and
//! `-c` with a target that cannot be compressed is an error.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::support::vmdk::*;
use crate::support::*;

/// Convert `src` into a streamOptimized VMDK with VMDKstream.
fn vmdkstream(src: &Path, out: &Path) {
    python!(
        "import sys, VMDKstream\nVMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])",
        src,
        out
    )
    .ok();
}

/// What walking a stream from the first grain to the end-of-stream marker
/// found.
#[derive(Debug)]
struct Layout {
    header: Kdmv,
    /// Grain number → sector of its grain marker.
    grains: HashMap<u64, u64>,
    /// Sectors where grain tables start (after their markers).
    tables: Vec<u64>,
    /// The grain directory's entries (padding included).
    directory: Vec<u32>,
}

/// Walk a streamOptimized VMDK in VMware's canonical layout, asserting
/// every structural rule on the way: header v3, flags 0x30001, directory
/// offset all ones in the header; from the overhead on only grain markers
/// (ascending LBAs, grain aligned), grain table markers, then one grain
/// directory marker, the footer marker and footer in the second-to-last
/// sector, and the end-of-stream marker as the last sector; every table
/// and directory entry points at what the walk found.
fn walk_stream(path: &Path) -> Layout {
    let data = std::fs::read(path).unwrap();
    let len = data.len() as u64;
    let name = path.display();
    assert_eq!(len % 512, 0, "{name}: {len} bytes is not whole sectors");
    let header = parse_kdmv(&data[..512]);
    assert_eq!(header.version, 3, "{name}: header version");
    assert_eq!(header.flags, 0x30001, "{name}: header flags");
    assert_eq!(
        header.gd_offset,
        u64::MAX,
        "{name}: GD offset in the header"
    );
    assert_eq!(header.compress, 1, "{name}: deflate");
    assert_eq!(header.rgd_offset, 0, "{name}: no redundant directory");
    assert_eq!(header.grain, 128, "{name}: 64 KiB grains");
    assert_eq!(header.gtes_per_gt, 512);
    let desc = descriptor_text(path);
    assert_eq!(
        desc_value(&desc, "createType").as_deref(),
        Some("streamOptimized")
    );

    let sector = |at: u64| &data[at as usize..at as usize + 512];
    let mut pos = header.overhead * 512;
    let mut grains = HashMap::new();
    let mut tables = Vec::new();
    let mut directory: Option<(u64, Vec<u32>)> = None;
    let mut footer: Option<Kdmv> = None;
    let mut last_lba: Option<u64> = None;
    loop {
        assert!(pos + 512 <= len, "{name}: ran off the end at byte {pos}");
        let m = sector(pos);
        let (value, size) = (le64(m, 0), le32(m, 8));
        if size != 0 {
            assert!(directory.is_none(), "{name}: grain after the directory");
            assert_eq!(
                value % 128,
                0,
                "{name}: grain LBA {value} not grain aligned"
            );
            assert!(
                value < header.capacity,
                "{name}: grain LBA {value} past the disk"
            );
            assert!(
                last_lba.is_none_or(|l| value > l),
                "{name}: grain LBAs not ascending ({last_lba:?} then {value})"
            );
            last_lba = Some(value);
            grains.insert(value / 128, pos / 512);
            pos += (12 + size as u64).div_ceil(512) * 512;
            continue;
        }
        let kind = le32(m, 12);
        assert!(
            m[16..].iter().all(|&b| b == 0),
            "{name}: marker at {pos} has non-zero padding"
        );
        match kind {
            0 => {
                assert_eq!(pos, len - 512, "{name}: end-of-stream marker is not last");
                assert!(m.iter().all(|&b| b == 0), "{name}: end-of-stream marker");
                break;
            }
            1 => {
                assert!(directory.is_none(), "{name}: table after the directory");
                assert_eq!(value, 4, "{name}: a grain table is 4 sectors");
                tables.push(pos / 512 + 1);
                pos += 512 * (1 + value);
            }
            2 => {
                assert!(directory.is_none(), "{name}: two directories");
                let at = (pos + 512) as usize;
                let entries = (0..value as usize * 128)
                    .map(|i| le32(&data, at + 4 * i))
                    .collect();
                directory = Some((pos / 512 + 1, entries));
                pos += 512 * (1 + value);
            }
            3 => {
                assert_eq!(value, 1, "{name}: footer marker size");
                assert_eq!(
                    pos,
                    len - 1536,
                    "{name}: footer not in the second-to-last sector"
                );
                footer = Some(parse_kdmv(sector(pos + 512)));
                pos += 1024;
            }
            other => panic!("{name}: unknown marker type {other} at byte {pos}"),
        }
    }
    let (gd_sector, directory) = directory.unwrap_or_else(|| panic!("{name}: no directory"));
    let footer = footer.unwrap_or_else(|| panic!("{name}: no footer"));
    assert_eq!(footer.gd_offset, gd_sector, "{name}: footer's GD offset");
    assert_eq!(footer.version, 3);
    assert_eq!(footer.flags, 0x30001);
    assert_eq!(footer.capacity, header.capacity);
    let needed = header.capacity.div_ceil(128).div_ceil(512) as usize;
    assert!(directory.len() >= needed, "{name}: short directory");
    assert!(directory[needed..].iter().all(|&e| e == 0));
    // Every directory entry is a table the walk found; every table entry a
    // grain marker for that very grain; tables without grains left out.
    let mut pointed = 0;
    for (t, &entry) in directory.iter().enumerate().take(needed) {
        if entry == 0 {
            continue;
        }
        assert!(
            tables.contains(&(entry as u64)),
            "{name}: GD[{t}] = {entry}"
        );
        let at = entry as usize * 512;
        let mut used = 0;
        for g in 0..512 {
            let gte = le32(&data, at + 4 * g) as u64;
            if gte == 0 {
                continue;
            }
            let grain = t as u64 * 512 + g as u64;
            assert_eq!(
                grains.get(&grain),
                Some(&gte),
                "{name}: GT[{t}][{g}] = {gte} is not grain {grain}'s marker"
            );
            used += 1;
        }
        assert!(used > 0, "{name}: grain table {t} holds no grains");
        pointed += used;
    }
    assert_eq!(pointed, grains.len(), "{name}: grains no table points at");
    assert_eq!(tables.len(), directory.iter().filter(|&&e| e != 0).count());
    assert_eq!(footer.desc_offset, header.desc_offset);
    assert_eq!(footer.overhead, header.overhead);
    Layout {
        header,
        grains,
        tables,
        directory,
    }
}

/// Text-like data that deflate shrinks several times over.
fn compressible(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&[u8]; 8] = [
        b"grain ",
        b"table ",
        b"sector ",
        b"stream ",
        b"marker ",
        b"footer\n",
        b"vmdk ",
        b"disk ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(8) as usize]);
    }
    out.truncate(len);
    out
}

/// A raw disk of `size` bytes with random data at the start, one piece in
/// the middle and at the end, and a region of more than 32 MiB (a whole
/// grain table's reach) holding nothing.
fn gappy_raw(path: &Path, size: u64, seed: u64) {
    raw_with_pieces(
        path,
        size,
        &[
            (0, 3 * MIB + 1000),
            (5 * MIB - 1, 2),
            (size / 2 + 12345, 200_000),
            (size - 70_000, 70_000),
        ],
        seed,
    );
}

#[test]
fn vmdkstream_image_of_whole_grains_reads_as_its_source() {
    let dir = tempdir();
    let d = dir.path();
    // A multiple of 64 KiB (VMDKstream's last grain is whole), with a
    // stretch of more than 32 MiB of zeros: that grain table is left out
    // and its directory entry is 0.
    let src = d.join("src.raw");
    gappy_raw(&src, 100 * MIB, 0x57_0001);
    let image = d.join("stream.vmdk");
    vmdkstream(&src, &image);
    // The oracles agree on what VMDKstream wrote.
    assert_identical("raw", &src, "vmdk", &image);
    let layout = walk_stream(&image);
    assert!(layout.directory.contains(&0), "{:?}", layout.directory);
    // VMDKstream's descriptor uses the spaced header spelling.
    assert!(descriptor_text(&image).starts_with("# Disk Descriptor File"));

    let info = vimg_info(None, &image);
    assert_eq!(field_u64(&info, "virtual-size"), 100 * MIB);
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        "streamOptimized"
    );
    let out = vimg_to_raw(&image, &d.join("out.raw"));
    assert_same_bytes(&src, &out);
    // And vimg writes it on as another stream, and as a sparse VMDK.
    let again = d.join("again.vmdk");
    vimg!("convert -O vmdk -c", &image, &again).ok();
    assert_identical("raw", &src, "vmdk", &again);
    walk_stream(&again);
}

#[test]
fn vmdkstream_image_with_a_short_last_grain_reads_as_its_source() {
    // VMDKstream compresses the short last grain as it is; qemu-img fails
    // to read past it, so vimg is compared with the source directly.
    let dir = tempdir();
    let d = dir.path();
    for (i, size) in [3 * MIB + 1000, 64 * KIB + 512, 4 * MIB + 40 * KIB]
        .into_iter()
        .enumerate()
    {
        let src = d.join(format!("src{i}.raw"));
        build_raw(&src, size, 0x57_0002 + i as u64);
        let image = d.join(format!("short{i}.vmdk"));
        vmdkstream(&src, &image);
        walk_stream(&image);
        let info = vimg_info(None, &image);
        assert_eq!(field_u64(&info, "virtual-size"), sector_up(size));
        let out = vimg_to_raw(&image, &d.join(format!("out{i}.raw")));
        assert_eq!(std::fs::metadata(&out).unwrap().len(), sector_up(size));
        assert_prefix_then_zeros(&out, &src);
    }
}

#[test]
fn stream_walker_rejects_qemu_img_layout_that_vimg_still_reads() {
    // The layout walker is itself checked: VMDKstream's output passes it
    // (above); qemu-img's stream has the directory in the header and no
    // markers, and must NOT pass it, or the walker proves nothing.
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    gappy_raw(&src, 40 * MIB, 0x57_0003);
    let image = d.join("qemu.vmdk");
    qemu_img!(
        "convert -f raw -O vmdk -o subformat=streamOptimized",
        &src,
        &image
    )
    .ok();
    let walked = std::panic::catch_unwind(|| walk_stream(&image));
    assert!(walked.is_err(), "qemu-img's layout passed the walker");
    // vimg reads that layout too.
    let out = vimg_to_raw(&image, &d.join("out.raw"));
    assert_same_bytes(&src, &out);
}

/// Checks on a stream vimg wrote into a pipe from `src`.
fn assert_valid_piped_stream(image: &Path, src: &Path, size: u64, full_read: bool) -> Layout {
    assert_identical("raw", src, "vmdk", image);
    assert_qemu_check(image);
    assert_eq!(qemu_create_type(image), "streamOptimized");
    let layout = walk_stream(image);
    assert_eq!(layout.header.capacity * 512, size);
    // The extent is named after the source: src.raw → src.vmdk.
    let stem = src.file_stem().unwrap().to_string_lossy();
    let lines = extent_lines(&descriptor_text(image));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].file.as_deref(), Some(&*format!("{stem}.vmdk")));
    assert_eq!(lines[0].sectors * 512, size);
    let ranges = if full_read {
        vec![]
    } else {
        vec![(0, 6 * MIB), (size / 2, MIB), (size - MIB, MIB)]
    };
    assert_pyvmdk_reads(image, src, size, &ranges);
    let out = vimg_to_raw(image, &image.with_extension("raw"));
    assert_identical("raw", src, "raw", &out);
    layout
}

#[test]
fn stream_written_to_a_pipe_is_a_valid_image() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    let size = 70 * MIB + 3 * 512;
    gappy_raw(&src, size, 0x57_0004);
    for (name, args) in [
        (
            "plain",
            vec!["-O", "vmdk", "-o", "subformat=streamOptimized"],
        ),
        ("c", vec!["-c", "-O", "vmdk"]),
        (
            "c-level9",
            vec!["-O", "vmdk", "-c", "-o", "compression_level=9"],
        ),
    ] {
        // Saved under the name the stream gives its extent (libvmdk opens
        // extents by that name).
        std::fs::create_dir(d.join(name)).unwrap();
        let out = d.join(name).join("src.vmdk");
        let stderr = vimg!("convert")
            .args(&args)
            .arg(&src)
            .arg("-")
            .run_into_pipe(&out);
        assert!(stderr.is_empty(), "{name}: {stderr}");
        let layout = assert_valid_piped_stream(&out, &src, size, true);
        assert!(
            layout.directory.contains(&0),
            "{name}: {:?}",
            layout.directory
        );
    }
}

#[test]
fn multi_gib_sparse_stream_written_to_a_pipe_is_a_valid_image() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("big.raw");
    let size = 3 * GIB + 64 * KIB + 512;
    raw_with_pieces(
        &src,
        size,
        &[
            (0, 100_000),
            (SPLIT - 1, 2),
            (2 * GIB - 512, 1024),
            (size - 1000, 1000),
        ],
        0x57_0005,
    );
    let out = d.join("piped").join("big.vmdk");
    std::fs::create_dir(d.join("piped")).unwrap();
    vimg!("convert -c -O vmdk", &src, "-").run_into_pipe(&out);
    let layout = assert_valid_piped_stream(&out, &src, size, false);
    // Four data regions: a handful of grains and tables, nearly all of the
    // 97 directory entries empty.
    assert!(layout.grains.len() <= 8, "{} grains", layout.grains.len());
    assert!(layout.tables.len() <= 4, "{} tables", layout.tables.len());
    assert!(std::fs::metadata(&out).unwrap().len() < 2 * MIB);
}

#[test]
fn compress_makes_the_stream_smaller_than_the_allocated_data() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("text.raw");
    let size = 24 * MIB;
    let f = File::create(&src).unwrap();
    f.set_len(size).unwrap();
    let mut rng = Rng::new(0x57_0006);
    for at in [0, 5 * MIB + 7, 17 * MIB] {
        f.write_all_at(&compressible(&mut rng, (3 * MIB / 2) as usize), at)
            .unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let allocated = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&src).unwrap()) * 512;
    assert!(allocated >= 9 * MIB / 2, "source allocates {allocated}");

    let c = d.join("c.vmdk");
    vimg!("convert -c -O vmdk", &src, &c).ok();
    assert_identical("raw", &src, "vmdk", &c);
    assert_qemu_check(&c);
    assert_eq!(qemu_create_type(&c), "streamOptimized");
    walk_stream(&c);
    let c_len = std::fs::metadata(&c).unwrap().len();
    assert!(
        c_len * 2 < allocated,
        "-c output {c_len} bytes for {allocated} bytes of text"
    );

    let mut lens = Vec::new();
    for level in [1, 9] {
        let out = d.join(format!("l{level}.vmdk"));
        vimg!(
            "convert -O vmdk -o",
            format!("subformat=streamOptimized,compression_level={level}"),
            &src,
            &out
        )
        .ok();
        assert_identical("raw", &src, "vmdk", &out);
        assert_qemu_check(&out);
        walk_stream(&out);
        assert_pyvmdk_reads(&out, &src, size, &[]);
        lens.push(std::fs::metadata(&out).unwrap().len());
    }
    assert!(lens[0] < allocated && lens[1] < allocated, "{lens:?}");
    assert!(
        lens[1] <= lens[0],
        "level 9 ({}) is bigger than level 1 ({})",
        lens[1],
        lens[0]
    );
    // -c with compression_level, into a file.
    let c9 = d.join("c9.vmdk");
    vimg!("convert -c -O vmdk -o compression_level=9", &src, &c9).ok();
    assert_identical("raw", &src, "vmdk", &c9);
}

#[test]
fn compress_with_targets_that_cannot_be_compressed_is_an_error() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    build_raw(&src, 2 * MIB, 0x57_0007);
    let before = dir_names(d);
    for (target, args) in [
        ("x.vhd", vec!["-O", "vhd"]),
        ("x.raw", vec!["-O", "raw"]),
        ("y.raw", vec![]),
        (
            "x.vmdk",
            vec!["-O", "vmdk", "-o", "subformat=monolithicFlat"],
        ),
        (
            "y.vmdk",
            vec!["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        ),
        (
            "z.vmdk",
            vec!["-O", "vmdk", "-o", "subformat=twoGbMaxExtentFlat"],
        ),
    ] {
        let out_path = d.join(target);
        let convert = vimg!("convert -c").args(&args).arg(&src).arg(&out_path);
        convert.one_line_error(&out_path, &convert.to_string());
        assert_eq!(dir_names(d), before, "{convert} left files");
    }
    // compression_level: only 1..9, only for streamOptimized.
    for opts in [
        "subformat=streamOptimized,compression_level=0",
        "subformat=streamOptimized,compression_level=10",
        "subformat=streamOptimized,compression_level=fast",
        "compression_level=5",
        "subformat=monolithicFlat,compression_level=5",
    ] {
        let out_path = d.join("lvl.vmdk");
        vimg!("convert -O vmdk -o", opts, &src, &out_path)
            .one_line_error(&out_path, &format!("-o {opts}"));
        assert_eq!(dir_names(d), before, "-o {opts} left files");
    }
    // A pipe takes only a stream.
    for fmt in ["vhd", "raw"] {
        let out = vimg!("convert -c -O", fmt, &src, "-").run();
        assert_eq!(out.status.code(), Some(1), "-c -O {fmt} -: {out:?}");
        assert!(out.stdout.is_empty(), "-c -O {fmt} - wrote to stdout");
        let err = out.stderr_text();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("vimg: error: ") && !err.contains("panicked"));
    }
}

#[test]
fn stream_of_many_mixed_grains_written_to_a_pipe_is_a_valid_image() {
    // Hundreds of grains, data and zeros interleaved, so the compression
    // batches (64 grains) end at arbitrary places.
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("mixed.raw");
    let size = 23 * MIB + 5 * 512;
    build_raw(&src, size, 0x57_0008);
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("mixed.vmdk");
    vimg!("convert -f raw -O vmdk -c", &src, "-").run_into_pipe(&out);
    let layout = assert_valid_piped_stream(&out, &src, size, true);
    assert!(layout.grains.len() > 128, "{} grains", layout.grains.len());
    // -S 0: zero grains are stored too, and still read as zeros.
    let all = out_dir.join("all.vmdk");
    vimg!("convert -q -S 0 -c -O vmdk", &src, &all).ok();
    assert_identical("raw", &src, "vmdk", &all);
    let every = walk_stream(&all);
    assert!(every.grains.len() >= layout.grains.len());
}

#[test]
fn stream_of_an_empty_disk_is_a_valid_image() {
    let dir = tempdir();
    let d = dir.path();
    let src = zero_raw(&d.join("empty.raw"), 5 * MIB + 512);
    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("empty.vmdk");
    vimg!("convert -f raw -c -O vmdk", &src, "-").run_into_pipe(&out);
    let layout = assert_valid_piped_stream(&out, &src, 5 * MIB + 512, true);
    assert!(layout.grains.is_empty() && layout.tables.is_empty());
    assert!(layout.directory.iter().all(|&e| e == 0));
    // And vimg create makes the same kind of empty stream.
    let created = d.join("created.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=streamOptimized",
        &created,
        "5M"
    )
    .ok();
    let layout = walk_stream(&created);
    assert!(layout.grains.is_empty());
    assert_qemu_check(&created);
}
