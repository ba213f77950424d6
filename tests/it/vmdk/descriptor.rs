//! Descriptor handling: hand-written descriptors mixing FLAT, ZERO, RDONLY,
//! NOACCESS and SPARSE extents read as the whole disk (qemu-img leaves the
//! non-RW and ZERO extents out and reports a smaller disk), writes into
//! read-only and ZERO parts are refused, extent paths leaving the folder are
//! refused, both header spellings are read, unknown disk database keys
//! survive a write (through the library: there is no write command), and
//! grain directory entries of 0 read as zeros and are filled on write. One
//! test reads VMware's descriptors from the third-party corpus, and is
//! ignored unless asked for (see `support::corpus`).

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vimg::image::{factory::open, Format, Image};
use vimg::io::Access;

use crate::support::corpus;
use crate::support::vmdk::*;
use crate::support::*;

/// Random bytes in a new file.
fn random_file(path: &Path, len: u64, seed: u64) -> Vec<u8> {
    let data = Rng::new(seed).bytes(len as usize);
    fs::write(path, &data).unwrap();
    data
}

fn write_descriptor(path: &Path, header: &str, create_type: &str, extents: &[&str]) {
    let mut text = format!(
        "{header}\nversion=1\nCID=1a2b3c4d\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n"
    );
    for e in extents {
        text += e;
        text += "\n";
    }
    text += "\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"7\"\n";
    fs::write(path, text).unwrap();
}

/// Open with the library for writing.
fn open_rw(path: &Path) -> Box<dyn Image> {
    open(path, Some(Format::Vmdk), Access::Write)
        .unwrap_or_else(|e| panic!("cannot open {} for writing: {e}", path.display()))
}

/// A hand-written descriptor over FLAT (with a space in its name), ZERO,
/// RDONLY FLAT, NOACCESS FLAT, SPARSE and FLAT-at-an-offset extents.
struct Mixed {
    desc: PathBuf,
    /// What the whole disk must read as.
    want: Vec<u8>,
    ro: Vec<u8>,
    na: Vec<u8>,
}

/// Where the parts of the mixed disk start (bytes).
const ZERO_AT: u64 = MIB;
const RDONLY_AT: u64 = MIB + 512 * KIB;
const NOACCESS_AT: u64 = 2 * MIB;
const SPARSE_AT: u64 = 2 * MIB + 256 * KIB;
const OFFSET_AT: u64 = 4 * MIB + 256 * KIB;

fn make_mixed(d: &Path) -> Mixed {
    // The pieces: a flat file with a space in its name, a flat file read
    // from an offset, read-only and no-access flat files, and a bare
    // sparse extent that qemu-io filled in part.
    let flat = random_file(&d.join("flat part.bin"), MIB, 1);
    let off = random_file(&d.join("offset.bin"), 64 * KIB + 256 * KIB, 2);
    let ro = random_file(&d.join("ro.bin"), 512 * KIB, 3);
    let na = random_file(&d.join("na.bin"), 256 * KIB, 4);
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse",
        &d.join("sp.vmdk"),
        "2M"
    )
    .ok();
    qemu_io(
        "vmdk",
        &d.join("sp.vmdk"),
        &["write -P 0x5e 100k 300k", "write -P 0x5f 2047k 1k"],
    );
    let sparse_raw = qemu_to_raw(&d.join("sp.vmdk"), &d.join("sp.raw"));
    let sparse = fs::read(&sparse_raw).unwrap();
    fs::rename(d.join("sp-s001.vmdk"), d.join("sparse part.vmdk")).unwrap();
    fs::remove_file(d.join("sp.vmdk")).unwrap();

    let desc = d.join("mixed.vmdk");
    let extents = [
        "RW 2048 FLAT \"flat part.bin\" 0",
        "RW 1024 ZERO",
        "RDONLY 1024 FLAT \"ro.bin\" 0",
        "NOACCESS 512 FLAT \"na.bin\" 0",
        "RW 4096 SPARSE \"sparse part.vmdk\"",
        "RW 512 FLAT \"offset.bin\" 128",
    ];
    write_descriptor(
        &desc,
        "# Disk DescriptorFile",
        "twoGbMaxExtentSparse",
        &extents,
    );
    let mut want = flat;
    want.extend(vec![0u8; 512 * 1024]);
    want.extend(&ro);
    want.extend(&na);
    want.extend(&sparse);
    want.extend(&off[64 * 1024..]);
    assert_eq!(want.len() as u64, OFFSET_AT + 256 * KIB);
    Mixed { desc, want, ro, na }
}

/// vimg reads the mixed disk as `want`.
fn assert_reads_as(desc: &Path, want: &[u8], scratch: &Path) {
    let out = vimg_to_raw(desc, &scratch.join("out.raw"));
    let got = fs::read(&out).unwrap();
    assert_eq!(got.len(), want.len());
    if let Some(i) = first_difference(&got, want) {
        panic!(
            "the mixed disk differs at byte {i}: {:#04x} vs {:#04x}",
            got[i], want[i]
        );
    }
}

#[test]
fn mixed_extent_descriptor_reads_as_the_whole_disk() {
    let dir = tempdir();
    let d = dir.path();
    let Mixed {
        desc,
        mut want,
        ro,
        na,
    } = make_mixed(d);
    let total: u64 = [2048u64, 1024, 1024, 512, 4096, 512].iter().sum::<u64>() * 512;
    assert_eq!(want.len() as u64, total);

    let info = vimg_info(None, &desc);
    assert_eq!(field_u64(&info, "virtual-size"), total, "{info:#}");
    let listed = info["format-specific"]["data"]["extents"]
        .as_array()
        .unwrap();
    assert_eq!(listed.len(), 6, "{info:#}");
    let sizes: Vec<u64> = listed
        .iter()
        .map(|e| field_u64(e, "virtual-size"))
        .collect();
    assert_eq!(
        sizes,
        [MIB, 512 * KIB, 512 * KIB, 256 * KIB, 2 * MIB, 256 * KIB]
    );
    // qemu-img leaves out ZERO, RDONLY and NOACCESS extents: a smaller disk.
    let q = qemu_info(Some("vmdk"), &desc);
    assert_eq!(
        field_u64(&q, "virtual-size"),
        (2048 + 4096 + 512) * 512,
        "qemu-img's view of the mixed descriptor: {q:#}"
    );
    assert_reads_as(&desc, &want, d);
    // vimg carries the whole disk into a VMDK qemu reads.
    let copy = d.join("copy.vmdk");
    vimg!("convert -q -O vmdk", &desc, &copy).ok();
    assert_identical("raw", &d.join("out.raw"), "vmdk", &copy);

    // Writes: into the RW flat, sparse and offset parts they land; inside
    // the ZERO, RDONLY and NOACCESS parts they are refused.
    let mut disk = open_rw(&desc);
    assert_eq!(disk.virtual_size(), total);
    for (at, len, fill) in [
        (5000, 1000, 0xee),
        (SPARSE_AT + 8192, 4096, 0xdd),
        (SPARSE_AT + 2 * MIB - 100, 100, 0xdc),
        (OFFSET_AT + 1, 3, 0xdb),
    ] {
        disk.write_at(&vec![fill; len], at).unwrap();
        want[at as usize..at as usize + len].fill(fill);
    }
    for (what, at, len) in [
        ("ZERO", ZERO_AT + 4096, 512usize),
        ("RDONLY", RDONLY_AT + 100, 10),
        ("NOACCESS", NOACCESS_AT + 1, 1),
        ("RDONLY (whole)", RDONLY_AT, 512 * 1024),
    ] {
        let r = disk.write_at(&vec![0x99; len], at);
        assert!(r.is_err(), "a write into the {what} part was accepted");
    }
    disk.flush().unwrap();
    drop(disk);
    assert_eq!(fs::read(d.join("ro.bin")).unwrap(), ro, "ro.bin changed");
    assert_eq!(fs::read(d.join("na.bin")).unwrap(), na, "na.bin changed");
    assert_reads_as(&desc, &want, d);
    // The offset extent's file kept its first 64 KiB.
    assert_eq!(
        fs::read(d.join("offset.bin")).unwrap()[..64 * 1024],
        Rng::new(2).bytes(64 * 1024)[..]
    );
}

#[test]
fn a_refused_write_across_extents_changes_nothing() {
    // A write that starts in a writable extent and runs into a ZERO or
    // read-only one is refused; none of it may reach the disk.
    let dir = tempdir();
    let d = dir.path();
    let Mixed { desc, want, ro, .. } = make_mixed(d);
    let mut disk = open_rw(&desc);
    for (what, at, len) in [
        ("RW FLAT into ZERO", ZERO_AT - 512, 1024usize),
        ("ZERO into RDONLY", RDONLY_AT - 512, 1024),
        ("RDONLY into NOACCESS", NOACCESS_AT - 512, 1024),
        ("NOACCESS into SPARSE", SPARSE_AT - 512, 1024),
    ] {
        let r = disk.write_at(&vec![0x99; len], at);
        assert!(r.is_err(), "the write {what} was accepted");
    }
    disk.flush().unwrap();
    drop(disk);
    assert_eq!(fs::read(d.join("ro.bin")).unwrap(), ro, "ro.bin changed");
    assert_reads_as(&desc, &want, d);
}

#[test]
fn extent_paths_leaving_the_folder_are_refused() {
    let dir = tempdir();
    let d = dir.path();
    let inner = d.join("vm");
    fs::create_dir(&inner).unwrap();
    fs::create_dir(inner.join("sub")).unwrap();
    random_file(&d.join("outside.bin"), MIB, 5);
    let abs = d.join("outside.bin").display().to_string();
    for (i, name) in [
        "../outside.bin".to_string(),
        abs.clone(),
        "sub/../../outside.bin".to_string(),
        "./../outside.bin".to_string(),
        "sub/../sub/x.bin".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let desc = inner.join(format!("bad{i}.vmdk"));
        let line = format!("RW 2048 FLAT \"{name}\" 0");
        write_descriptor(&desc, "# Disk DescriptorFile", "monolithicFlat", &[&line]);
        for vimg in [
            vimg!("info", &desc),
            vimg!("convert -O raw", &desc, &d.join("o.raw")),
        ] {
            let out = vimg.one_line_error(&desc, &format!("extent \"{name}\": {vimg}"));
            assert!(out.stdout.is_empty());
        }
        assert!(!d.join("o.raw").exists());
        assert!(open(&desc, None, Access::Read).is_err());
    }
    // A subfolder without `..` is inside the folder, and fine.
    let data = random_file(&inner.join("sub/x.bin"), MIB, 6);
    let desc = inner.join("good.vmdk");
    write_descriptor(
        &desc,
        "# Disk DescriptorFile",
        "monolithicFlat",
        &["RW 2048 FLAT \"sub/x.bin\" 0"],
    );
    let out = vimg_to_raw(&desc, &d.join("good.raw"));
    assert_eq!(fs::read(out).unwrap(), data);
}

#[test]
fn both_descriptor_header_spellings_and_crlf_are_read() {
    let dir = tempdir();
    let d = dir.path();
    let data = random_file(&d.join("data-flat.vmdk"), 2 * MIB, 7);
    for (i, header) in ["# Disk DescriptorFile", "# Disk Descriptor File"]
        .iter()
        .enumerate()
    {
        let desc = d.join(format!("h{i}.vmdk"));
        write_descriptor(
            &desc,
            header,
            "monolithicFlat",
            &["RW 4096 FLAT \"data-flat.vmdk\" 0"],
        );
        // Probed from the content, and with -f.
        assert_eq!(field_str(&vimg_info(None, &desc), "format"), "vmdk");
        assert_eq!(
            field_u64(&vimg_info(Some("vmdk"), &desc), "virtual-size"),
            2 * MIB
        );
        let out = vimg_to_raw(&desc, &d.join(format!("h{i}.raw")));
        assert_eq!(fs::read(&out).unwrap(), data, "{header}");
        assert_identical("vmdk", &desc, "raw", &out);
    }
    // Windows line ends, as VMware on Windows writes them.
    let desc = d.join("crlf.vmdk");
    write_descriptor(
        &desc,
        "# Disk DescriptorFile",
        "monolithicFlat",
        &["RW 4096 FLAT \"data-flat.vmdk\" 0"],
    );
    let text = fs::read_to_string(&desc).unwrap().replace('\n', "\r\n");
    fs::write(&desc, text).unwrap();
    let out = vimg_to_raw(&desc, &d.join("crlf.raw"));
    assert_eq!(fs::read(&out).unwrap(), data);
}

/// Add lines to a descriptor: the text file, or the embedded one (in its
/// NUL padding).
fn append_to_descriptor(image: &Path, lines: &str) {
    let head = read_at(image, 0, 512);
    if head.starts_with(b"KDMV") {
        let h = parse_kdmv(&head);
        let text = descriptor_text(image);
        let mut new = text.clone();
        if !new.ends_with('\n') {
            new.push('\n');
        }
        new += lines;
        assert!((new.len() as u64) < h.desc_size * 512);
        let f = fs::OpenOptions::new().write(true).open(image).unwrap();
        f.write_all_at(new.as_bytes(), h.desc_offset * 512).unwrap();
    } else {
        let mut text = fs::read_to_string(image).unwrap();
        text += lines;
        fs::write(image, text).unwrap();
    }
}

#[test]
fn unknown_disk_database_keys_survive_a_write() {
    let dir = tempdir();
    let d = dir.path();
    for sub in [
        "twoGbMaxExtentFlat",
        "monolithicSparse",
        "twoGbMaxExtentSparse",
    ] {
        let image = d.join(format!("{sub}.vmdk"));
        let size = 20 * MIB;
        vimg!(
            "create -q -f vmdk -o",
            format!("subformat={sub}"),
            &image,
            size
        )
        .ok();
        append_to_descriptor(&image, "ddb.foo = \"bar\"\nddb.toolsInstallType = \"4\"\n");
        // qemu-io writes into it (qemu rewrites the CID in place).
        let cmds = vec![
            "write -P 0x61 1M 100k".to_string(),
            "write -P 0x62 19M 64k".into(),
        ];
        qemu_io("vmdk", &image, &cmds);
        let info = vimg_info(None, &image);
        assert_eq!(field_u64(&info, "virtual-size"), size);
        let text = descriptor_text(&image);
        assert_eq!(
            desc_value(&text, "ddb.foo").as_deref(),
            Some("bar"),
            "{text}"
        );
        let cid_before = cid_of(&image);

        // A write through the library: new CID, the unknown keys kept.
        let mut disk = open_rw(&image);
        disk.write_at(&[0x63; 3000], 7 * MIB + 11).unwrap();
        disk.flush().unwrap();
        drop(disk);
        let text = descriptor_text(&image);
        assert_eq!(
            desc_value(&text, "ddb.foo").as_deref(),
            Some("bar"),
            "{sub}:\n{text}"
        );
        assert_eq!(
            desc_value(&text, "ddb.toolsInstallType").as_deref(),
            Some("4"),
            "{text}"
        );
        assert_eq!(
            desc_value(&text, "ddb.adapterType").as_deref(),
            Some("ide"),
            "{text}"
        );
        assert_eq!(
            desc_value(&text, "createType").as_deref(),
            Some(sub),
            "{text}"
        );
        assert_ne!(
            cid_of(&image),
            cid_before,
            "{sub}: the CID did not change:\n{text}"
        );
        // The extents are intact and hold qemu-io's and the library's data.
        let reference = zero_raw(&d.join("reference.raw"), size);
        qemu_io("raw", &reference, &cmds);
        let f = fs::OpenOptions::new().write(true).open(&reference).unwrap();
        f.write_all_at(&[0x63; 3000], 7 * MIB + 11).unwrap();
        drop(f);
        assert_identical("raw", &reference, "vmdk", &image);
        if sub != "twoGbMaxExtentFlat" {
            assert_qemu_check(&image);
        }
        let out = vimg_to_raw(&image, &d.join("out.raw"));
        assert_same_bytes(&reference, &out);
        assert_eq!(field_u64(&vimg_info(None, &image), "virtual-size"), size);
        // No write, no new CID.
        let cid = cid_of(&image);
        let mut disk = open_rw(&image);
        let mut buf = vec![0u8; 4096];
        disk.read_at(&mut buf, 7 * MIB).unwrap();
        disk.flush().unwrap();
        drop(disk);
        assert_eq!(
            cid_of(&image),
            cid,
            "{sub}: a read-only session changed the CID"
        );
    }
}

/// Zero grain directory entry `index` (and its redundant copy) of a
/// monolithicSparse extent.
fn clear_gd_entry(image: &Path, index: u64) {
    let h = kdmv_header(image);
    let f = fs::OpenOptions::new().write(true).open(image).unwrap();
    for dir in [h.gd_offset, h.rgd_offset] {
        if dir != 0 {
            f.write_all_at(&[0u8; 4], dir * 512 + index * 4).unwrap();
        }
    }
}

fn gd_entry(image: &Path, dir: u64, index: u64) -> u32 {
    le32(&read_at(image, dir * 512 + index * 4, 4), 0)
}

#[test]
fn grain_directory_entries_of_zero_read_as_zeros_and_fill_on_write() {
    let dir = tempdir();
    let d = dir.path();
    let size = 100 * MIB;
    for maker in ["vimg", "qemu-img"] {
        let image = d.join(format!("{maker}.vmdk"));
        if maker == "vimg" {
            vimg!("create -q -f vmdk", &image, size).ok();
        } else {
            qemu_img!("create -f vmdk", &image, size).ok();
        }
        // Data under grain tables 0 and 2 (32 MiB each); table 1 is empty
        // and then cut loose from the directory.
        let cmds = vec![
            "write -P 0x71 1M 1M".to_string(),
            "write -P 0x72 70M 200k".into(),
        ];
        qemu_io("vmdk", &image, &cmds);
        clear_gd_entry(&image, 1);
        let h = kdmv_header(&image);
        assert_eq!(gd_entry(&image, h.gd_offset, 1), 0);
        assert_qemu_check(&image);
        let reference = zero_raw(&d.join("reference.raw"), size);
        qemu_io("raw", &reference, &cmds);
        assert_identical("raw", &reference, "vmdk", &image);
        let out = vimg_to_raw(&image, &d.join("out.raw"));
        assert_same_bytes(&reference, &out);

        // A write there through the library gives it a table again.
        let mut disk = open_rw(&image);
        disk.write_at(&[0x73; 5000], 40 * MIB + 300).unwrap();
        disk.write_at(&[0x74; 65536], 63 * MIB + 64 * KIB).unwrap();
        disk.flush().unwrap();
        drop(disk);
        for dir in [h.gd_offset, h.rgd_offset] {
            let e = gd_entry(&image, dir, 1);
            assert_ne!(
                e, 0,
                "{maker}: directory at sector {dir} still has no table 1"
            );
            assert!((e as u64 + 4) * 512 <= fs::metadata(&image).unwrap().len());
        }
        assert_qemu_check(&image);
        let f = fs::OpenOptions::new().write(true).open(&reference).unwrap();
        f.write_all_at(&[0x73; 5000], 40 * MIB + 300).unwrap();
        f.write_all_at(&[0x74; 65536], 63 * MIB + 64 * KIB).unwrap();
        drop(f);
        assert_identical("raw", &reference, "vmdk", &image);
        let out = vimg_to_raw(&image, &d.join("out.raw"));
        assert_same_bytes(&reference, &out);
        assert_pyvmdk_reads(&image, &reference, size, &[]);
        fs::remove_file(&reference).unwrap();
    }
}

#[test]
fn stream_with_empty_grain_tables_reads_as_zeros_there() {
    // Both stream writers leave directory entries 0 for tables without
    // grains; qemu-img's stream layout keeps every table.
    let dir = tempdir();
    let d = dir.path();
    let size = 160 * MIB;
    let src = d.join("src.raw");
    raw_with_pieces(
        &src,
        size,
        &[(MIB, 100_000), (100 * MIB - 1, 2), (size - 4096, 4096)],
        9,
    );
    let ours = d.join("vimg.vmdk");
    vimg!("convert -q -c -O vmdk", &src, &ours).ok();
    let vs = d.join("vmdkstream.vmdk");
    python!(
        "import sys, VMDKstream\nVMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])",
        &src,
        &vs
    )
    .ok();
    for image in [&ours, &vs] {
        // The footer's directory has empty entries.
        let len = fs::metadata(image).unwrap().len();
        let footer = parse_kdmv(&read_at(image, len - 1024, 512));
        let entries: Vec<u32> = (0..5)
            .map(|i| gd_entry(image, footer.gd_offset, i))
            .collect();
        assert!(
            entries[0] != 0 && entries[1] == 0 && entries[2] == 0,
            "{entries:?}"
        );
        assert!(entries[3] != 0 && entries[4] != 0, "{entries:?}");
        let out = vimg_to_raw(image, &d.join("out.raw"));
        assert_same_bytes(&src, &out);
        // The library refuses writes into a compressed stream, clearly.
        let err = match open(image, None, Access::Write) {
            Ok(mut disk) => disk.write_at(&[1u8; 512], 40 * MIB).err(),
            Err(e) => Some(e),
        };
        assert!(
            err.is_some(),
            "a write into a streamOptimized image was accepted"
        );
    }
}

/// `key = value` lines of a descriptor other than the CID ones, sorted
/// (vimg writes the header keys in its own order).
fn kept_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!l.trim_start().starts_with('#') && k != "CID" && k != "ddb.longContentID")
                .then(|| (k.to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
#[ignore = "reads the third-party corpus: set VIMG_CORPUS (default ../shared/corpus)"]
fn vmware_and_qemu_descriptors_keep_every_entry_across_a_write() {
    let dir = tempdir();
    let d = dir.path();
    for f in [
        "monolithicSparse.vmdk",
        "twoGbMaxExtentSparse.vmdk",
        "twoGbMaxExtentSparse-s001.vmdk",
    ] {
        fs::copy(corpus::file(&format!("vmdk-rs/{f}")), d.join(f)).unwrap();
        let mut perms = fs::metadata(d.join(f)).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(d.join(f), perms).unwrap();
    }
    let qemu = d.join("qemu.vmdk");
    qemu_img!("create -f vmdk", &qemu, "10M").ok();
    for name in [
        "monolithicSparse.vmdk",
        "twoGbMaxExtentSparse.vmdk",
        "qemu.vmdk",
    ] {
        let image = d.join(name);
        let before_text = descriptor_text(&image);
        let before = kept_lines(&before_text);
        assert!(
            before.iter().any(|(k, _)| k.starts_with("ddb.")),
            "{before_text}"
        );
        let extents = extent_lines(&before_text);
        let reference = qemu_to_raw(&image, &d.join("reference.raw"));
        let cid = cid_of(&image);

        let mut disk = open_rw(&image);
        disk.write_at(&[0x42; 70_000], 3 * MIB - 5).unwrap();
        disk.flush().unwrap();
        drop(disk);

        let after_text = descriptor_text(&image);
        assert_eq!(
            kept_lines(&after_text),
            before,
            "{name}: before:\n{before_text}\nafter:\n{after_text}"
        );
        assert_eq!(extent_lines(&after_text), extents, "{name}");
        assert_ne!(cid_of(&image), cid, "{name}: the CID did not change");
        assert_qemu_check(&image);
        let f = fs::OpenOptions::new().write(true).open(&reference).unwrap();
        f.write_all_at(&[0x42; 70_000], 3 * MIB - 5).unwrap();
        drop(f);
        assert_identical("raw", &reference, "vmdk", &image);
        assert_pyvmdk_reads(&image, &reference, 10 * MIB, &[]);
    }
}
