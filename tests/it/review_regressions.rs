//! Findings of the pre-release code review, each kept fixed by a test: a
//! damaged VHD tail, overflowing sizes, hostile directory sizes, the VMDK
//! content ID, `-S` granules, split-sparse size limits, parent errors and
//! `--force` replacement.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use vimg::image::{factory::open, Format};
use vimg::io::Access;

use crate::support::vhd;
use crate::support::*;

const MIB: u64 = 1 << 20;

/// Write `data` at `offset` through the library.
fn lib_write(path: &Path, format: Format, data: &[u8], offset: u64) {
    let mut dev = open(path, Some(format), Access::Write).unwrap();
    dev.write_at(data, offset).unwrap();
    dev.flush().unwrap();
}

/// A dynamic VHD whose trailing footer is gone opens from the copy at
/// offset 0; allocating a block then must not clear the end of the last
/// block (which sits where the footer used to be).
#[test]
fn vhd_without_its_trailing_footer_keeps_its_last_bytes_on_allocation() {
    let dir = tempdir();
    let vhd = dir.path().join("d.vhd");
    vimg!("create -q -f vhd", &vhd, "6M").ok();
    qemu_io("vpc", &vhd, &["write -P 0x11 0 2M", "write -P 0x22 2M 2M"]);
    let len = std::fs::metadata(&vhd).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&vhd)
        .unwrap()
        .set_len(len - 512)
        .unwrap();
    lib_write(&vhd, Format::Vhd, &[0x33; 4096], 4 * MIB);
    let out = dir.path().join("out.raw");
    vimg!("convert -O raw", &vhd, &out).ok();
    let data = std::fs::read(&out).unwrap();
    assert!(data[..2 << 20].iter().all(|&b| b == 0x11));
    assert!(
        data[2 << 20..4 << 20].iter().all(|&b| b == 0x22),
        "block 1 lost bytes"
    );
    assert!(data[4 << 20..(4 << 20) + 4096].iter().all(|&b| b == 0x33));
    // The file ends in a footer again.
    let bytes = std::fs::read(&vhd).unwrap();
    assert_eq!(&bytes[bytes.len() - 512..][..8], b"conectix");
}

/// A fixed-VHD footer claiming a size near 2^64 is refused, not wrapped.
#[test]
fn fixed_vhd_with_an_absurd_size_is_refused() {
    let dir = tempdir();
    let vhd = dir.path().join("f.vhd");
    vimg!("create -q -f vhd -o subformat=fixed", &vhd, "1M").ok();
    let mut bytes = std::fs::read(&vhd).unwrap();
    let at = bytes.len() - 512;
    let footer = &mut bytes[at..];
    footer[48..56].copy_from_slice(&(u64::MAX - 511).to_be_bytes()); // current size
    footer[56..60].copy_from_slice(&[0xff, 0xff, 16, 255]); // maximum geometry
    let sum = vhd::checksum(footer, 64);
    footer[64..68].copy_from_slice(&sum.to_be_bytes());
    std::fs::write(&vhd, &bytes).unwrap();
    for vimg in [vimg!("info", &vhd), vimg!("map --output json", &vhd)] {
        let out = vimg.run();
        let err = out.stderr_text();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A tiny sparse file whose header asks for billions of grain tables is
/// refused at once, without allocating for them.
#[test]
fn vmdk_with_an_absurd_directory_is_refused_quickly() {
    let dir = tempdir();
    let vmdk = dir.path().join("h.vmdk");
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
    h[12..20].copy_from_slice(&(1u64 << 33).to_le_bytes()); // capacity
    h[20..28].copy_from_slice(&1u64.to_le_bytes()); // 1-sector grains
    h[44..48].copy_from_slice(&1u32.to_le_bytes()); // 1 entry per table
    h[56..64].copy_from_slice(&1u64.to_le_bytes()); // directory at sector 1
    h[73..77].copy_from_slice(b"\n \r\n");
    std::fs::write(&vmdk, &h).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&vmdk).unwrap();
    f.set_len(1 << 40).unwrap(); // sparse: costs nothing on disk
    drop(f);
    let started = Instant::now();
    let out = vimg!("info", &vmdk).run();
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("grain directory"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The descriptor's long content ID ends in the CID, also after the CID
/// changed with the first write.
#[test]
fn long_content_id_follows_the_cid() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, vec![0x5au8; 3 << 20]).unwrap();
    let vmdk = dir.path().join("d.vmdk");
    vimg!("convert -O vmdk -o subformat=monolithicFlat", &src, &vmdk).ok();
    let text = std::fs::read_to_string(&vmdk).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    let cid = value("CID");
    assert!(value("ddb.longContentID").ends_with(&cid), "{text}");
}

/// `-S` takes any multiple of 512, as qemu-img does.
#[test]
fn sparse_size_that_is_not_a_power_of_two_works() {
    let dir = tempdir();
    let src = dir.path().join("src.raw");
    let mut data = vec![0u8; 4 << 20];
    data[5000..9000].fill(7);
    data[3 << 20..(3 << 20) + 100].fill(9);
    std::fs::write(&src, &data).unwrap();
    for fmt in ["raw", "vmdk", "vhd"] {
        let out = dir.path().join(format!("o.{fmt}"));
        vimg!("convert -S 1536 -O", fmt, &src, &out).ok();
        assert_identical("raw", &src, fmt, &out);
    }
}

/// The 2 TiB limit is per sparse extent: a split sparse disk may be bigger.
#[test]
fn split_sparse_disks_may_exceed_two_tib() {
    let dir = tempdir();
    let vmdk = dir.path().join("big.vmdk");
    vimg!(
        "create -q -f vmdk -o subformat=twoGbMaxExtentSparse",
        &vmdk,
        "3T"
    )
    .ok();
    let info = vimg_info(None, &vmdk);
    assert_eq!(field_u64(&info, "virtual-size"), 3 << 40);
    vimg!("create -f vmdk", &dir.path().join("mono.vmdk"), "3T").code(1);
}

/// A missing parent's message says why it cannot be opened.
#[test]
fn a_missing_parent_error_gives_its_cause() {
    let dir = tempdir();
    let base = dir.path().join("base.vmdk");
    vimg!("create -q -f vmdk", &base, "1M").ok();
    let child = dir.path().join("child.vmdk");
    vimg!("create -q -f vmdk -b base.vmdk", &child).ok();
    std::fs::remove_file(&base).unwrap();
    let out = vimg!("info", &child).run();
    let err = out.stderr_text();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("base.vmdk") && err.contains("No such file"),
        "{err}"
    );
}

/// `--force` replaces the file a symbolic link names (keeping the link),
/// keeps the replaced file's mode, and refuses things that are not files.
#[test]
fn force_replaces_in_place_keeping_mode_and_links() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, vec![1u8; 1 << 20]).unwrap();
    let old = d.join("old.vmdk");
    std::fs::write(&old, b"old").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("old.vmdk", d.join("link.vmdk")).unwrap();
    vimg!("convert -q -O vmdk --force", &src, &d.join("link.vmdk")).ok();
    assert!(std::fs::symlink_metadata(d.join("link.vmdk"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::metadata(&old).unwrap().mode() & 0o777, 0o600);
    assert_identical("raw", &src, "vmdk", &old);
    std::fs::create_dir(d.join("dir.vmdk")).unwrap();
    vimg!("convert -O vmdk --force", &src, &d.join("dir.vmdk")).code(1);
    assert!(d.join("dir.vmdk").is_dir());
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "work folders left: {names:?}");
}

/// With `--force` onto a split image where one extent cannot be replaced,
/// the extents already swapped in are swapped back: the old image is whole
/// again (its files are the very same ones).
#[test]
fn a_failed_forced_replacement_puts_the_old_files_back() {
    let dir = tempdir();
    let d = dir.path();
    let src = d.join("src.raw");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(3 << 30).unwrap(); // two 2047 MiB extents' worth, sparse
    drop(f);
    let target = d.join("disk.vmdk");
    let flat = "subformat=twoGbMaxExtentFlat";
    vimg!("convert -q -O vmdk -o", flat, &src, &target).ok();
    let inode = |name: &str| std::fs::metadata(d.join(name)).unwrap().ino();
    let (f1, desc) = (inode("disk-f001.vmdk"), inode("disk.vmdk"));
    // The second extent's name is taken by a folder: its move must fail.
    std::fs::remove_file(d.join("disk-f002.vmdk")).unwrap();
    std::fs::create_dir(d.join("disk-f002.vmdk")).unwrap();
    let out = vimg!("convert -O vmdk -o", flat, "--force", &src, &target).run();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert_eq!(
        inode("disk-f001.vmdk"),
        f1,
        "the first extent was not put back"
    );
    assert_eq!(inode("disk.vmdk"), desc);
    assert!(d.join("disk-f002.vmdk").is_dir());
}
