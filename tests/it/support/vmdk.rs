//! VMDK structures read straight from the files: hosted sparse (KDMV)
//! headers, descriptors (embedded or text) and their extent lines, and
//! hand-built VMDK3 (COWD) files. An implementation of the format
//! independent of vimg's (it is an oracle).

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::support::{le16, le32, le64, read_at};

/// The five subformats vimg and qemu-img write.
pub const SUBFORMATS: [&str; 5] = [
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
];

/// Subformats with grain tables (the ones `qemu-img check` checks).
pub fn is_sparse(subformat: &str) -> bool {
    matches!(
        subformat,
        "monolithicSparse" | "twoGbMaxExtentSparse" | "streamOptimized"
    )
}

/// VMware's (and vimg's) split size for twoGbMaxExtent*: 2047 MiB.
pub const SPLIT_SECTORS: u64 = 4_192_256;
pub const SPLIT: u64 = SPLIT_SECTORS * 512;

/// The fields of a hosted sparse (KDMV) header we look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kdmv {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain: u64,
    pub desc_offset: u64,
    pub desc_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub compress: u16,
}

/// Parse the KDMV header in `buf` (at least 512 bytes).
pub fn parse_kdmv(buf: &[u8]) -> Kdmv {
    assert_eq!(&buf[..4], b"KDMV", "no KDMV magic");
    Kdmv {
        version: le32(buf, 4),
        flags: le32(buf, 8),
        capacity: le64(buf, 12),
        grain: le64(buf, 20),
        desc_offset: le64(buf, 28),
        desc_size: le64(buf, 36),
        gtes_per_gt: le32(buf, 44),
        rgd_offset: le64(buf, 48),
        gd_offset: le64(buf, 56),
        overhead: le64(buf, 64),
        compress: le16(buf, 77),
    }
}

/// The header of a sparse extent file.
pub fn kdmv_header(path: &Path) -> Kdmv {
    parse_kdmv(&read_at(path, 0, 512))
}

/// The descriptor text of a VMDK: embedded in a KDMV extent, or the file.
pub fn descriptor_text(path: &Path) -> String {
    let head = read_at(path, 0, 512);
    let bytes = if head.starts_with(b"KDMV") {
        let h = parse_kdmv(&head);
        assert!(
            h.desc_offset != 0,
            "{} has no embedded descriptor",
            path.display()
        );
        read_at(path, h.desc_offset * 512, (h.desc_size * 512) as usize)
    } else {
        fs::read(path).unwrap()
    };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).expect("descriptor is UTF-8")
}

/// The value of `key=value` (or `key = "value"`) in descriptor text.
pub fn desc_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A descriptor's CID.
pub fn cid_of(path: &Path) -> u32 {
    let text = descriptor_text(path);
    let v = desc_value(&text, "CID").unwrap_or_else(|| panic!("no CID in {}", path.display()));
    u32::from_str_radix(&v, 16).unwrap()
}

/// An extent line: access, sectors, type, file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    pub access: String,
    pub sectors: u64,
    pub kind: String,
    pub file: Option<String>,
}

/// The extent lines of descriptor text.
pub fn extent_lines(text: &str) -> Vec<ExtentLine> {
    text.lines()
        .filter(|l| {
            let w = l.split_whitespace().next().unwrap_or("");
            matches!(w, "RW" | "RDONLY" | "NOACCESS")
        })
        .map(|l| {
            let mut words = l.split_whitespace();
            let access = words.next().unwrap().to_string();
            let sectors = words.next().unwrap().parse().unwrap();
            let kind = words.next().unwrap().to_string();
            let file = l.split('"').nth(1).map(str::to_string);
            ExtentLine {
                access,
                sectors,
                kind,
                file,
            }
        })
        .collect()
}

/// A VMDK3 (COWD) sparse file as ESX writes for vmfsSparse redo logs:
/// 2048-byte header, grain directory at sector 4, 4096-entry grain tables,
/// one-sector grains. `grains` are (sector, fill byte); only the grain
/// tables they need are allocated.
pub fn build_cowd(path: &Path, capacity: u64, grains: &[(u64, u8)]) {
    let gd_entries = capacity.div_ceil(4096);
    let gd_sectors = (gd_entries * 4).div_ceil(512);
    let mut gd = vec![0u32; (gd_sectors * 128) as usize];
    let mut tables: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut next = 4 + gd_sectors;
    // Tables first, then grains.
    for &(sector, _) in grains {
        let t = (sector / 4096) as usize;
        if gd[t] == 0 {
            gd[t] = next as u32;
            tables.push((t as u64, vec![0u32; 4096]));
            next += 32;
        }
    }
    let mut data: Vec<(u64, u8)> = Vec::new();
    for &(sector, fill) in grains {
        let t = sector / 4096;
        let table = &mut tables.iter_mut().find(|(i, _)| *i == t).unwrap().1;
        table[(sector % 4096) as usize] = next as u32;
        data.push((next, fill));
        next += 1;
    }
    let mut h = vec![0u8; 2048];
    h[..4].copy_from_slice(b"COWD");
    for (at, v) in [
        (4, 1u32),
        (8, 3),
        (12, capacity as u32),
        (16, 1),
        (20, 4),
        (24, gd_entries as u32),
        (28, next as u32),
    ] {
        h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let f = File::create(path).unwrap();
    f.write_all_at(&h, 0).unwrap();
    let gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    f.write_all_at(&gd_bytes, 4 * 512).unwrap();
    for (t, table) in &tables {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        f.write_all_at(&bytes, gd[*t as usize] as u64 * 512)
            .unwrap();
    }
    for (sector, fill) in data {
        f.write_all_at(&[fill; 512], sector * 512).unwrap();
    }
    f.set_len(next * 512).unwrap();
}

/// What a hand-built seSparse grain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeGrain {
    /// 4 KiB of this byte, stored at this grain number of the grains
    /// region (numbers past 4095 use the entry's split high bits).
    Data(u8, u64),
    /// A zero grain (entry type 2): zeros, not the parent's data.
    Zero,
    /// A SCSI-unmapped grain (entry type 1): also zeros.
    Unmapped,
}

/// Where a hand-built seSparse file put its structures (byte offsets).
#[derive(Clone, Debug)]
pub struct SeLayout {
    pub volatile: u64,
    pub gd: u64,
    pub tables: u64,
    pub grains: u64,
    /// Grain directory index → byte offset of its grain table.
    pub table_at: Vec<(u64, u64)>,
}

/// An ESXi seSparse extent as qemu's block/vmdk.c reads it: const header
/// (magic 0xcafebabe, version 0x200000001, 8-sector grains, 64-sector
/// grain tables) in sector 0, volatile header (0xcafecafe) in sector 1,
/// the grain directory from sector 2, grain tables (numbered in reverse of
/// first use, to show the numbers are followed), then the grains region.
/// `grains` are (grain index, what it holds); `capacity` is in sectors.
pub fn build_sesparse(path: &Path, capacity: u64, grains: &[(u64, SeGrain)]) -> SeLayout {
    const GT_ENTRIES: u64 = 4096;
    let gd_entries = (capacity * 512).div_ceil(GT_ENTRIES * 4096);
    let gd_sectors = (gd_entries * 8).div_ceil(512).max(1);
    let mut order: Vec<u64> = Vec::new();
    for &(g, _) in grains {
        let t = g / GT_ENTRIES;
        if !order.contains(&t) {
            order.push(t);
        }
    }
    let n_tables = order.len() as u64;
    let number = |t: u64| n_tables - 1 - order.iter().position(|&x| x == t).unwrap() as u64;
    let gt_sectors = n_tables.max(1) * 64;
    let gd_at = 2u64;
    let gt_at = gd_at + gd_sectors;
    let grains_at = gt_at + gt_sectors;
    let mut gd = vec![0u64; (gd_sectors * 64) as usize];
    let mut tables = vec![vec![0u64; GT_ENTRIES as usize]; n_tables as usize];
    for &t in &order {
        gd[t as usize] = 0x1000_0000_0000_0000 | number(t);
    }
    let mut end = grains_at * 512;
    let mut data = Vec::new();
    for &(g, what) in grains {
        let entry = match what {
            SeGrain::Data(fill, c) => {
                let at = (grains_at + c * 8) * 512;
                data.push((at, fill));
                end = end.max(at + 4096);
                0x3000_0000_0000_0000 | ((c & 0xfff) << 48) | (c >> 12)
            }
            SeGrain::Zero => 0x2000_0000_0000_0000,
            SeGrain::Unmapped => 0x1000_0000_0000_0000,
        };
        tables[number(g / GT_ENTRIES) as usize][(g % GT_ENTRIES) as usize] = entry;
    }
    let mut h = vec![0u8; 512];
    for (at, v) in [
        (0usize, 0xcafe_babe_u64),
        (8, 0x0000_0002_0000_0001),
        (16, capacity),
        (24, 8),
        (32, 64),
        (80, 1),
        (88, 1),
        (128, gd_at),
        (136, gd_sectors),
        (144, gt_at),
        (152, gt_sectors),
        (192, grains_at),
        (200, end / 512 - grains_at),
    ] {
        h[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    let mut v = vec![0u8; 512];
    v[..8].copy_from_slice(&0xcafe_cafe_u64.to_le_bytes());
    v[8..16].copy_from_slice(&n_tables.to_le_bytes());
    let f = File::create(path).unwrap();
    f.write_all_at(&h, 0).unwrap();
    f.write_all_at(&v, 512).unwrap();
    let le = |xs: &[u64]| -> Vec<u8> { xs.iter().flat_map(|e| e.to_le_bytes()).collect() };
    f.write_all_at(&le(&gd), gd_at * 512).unwrap();
    for (i, t) in tables.iter().enumerate() {
        f.write_all_at(&le(t), (gt_at + i as u64 * 64) * 512)
            .unwrap();
    }
    for (at, fill) in data {
        f.write_all_at(&[fill; 4096], at).unwrap();
    }
    f.set_len(end).unwrap();
    SeLayout {
        volatile: 512,
        gd: gd_at * 512,
        tables: gt_at * 512,
        grains: grains_at * 512,
        table_at: order
            .iter()
            .map(|&t| (t, (gt_at + number(t) * 64) * 512))
            .collect(),
    }
}

/// A seSparse delta's text descriptor over `parent` for extent `extent`.
pub fn sesparse_descriptor(path: &Path, sectors: u64, parent: &str, parent_cid: u32, extent: &str) {
    delta_descriptor(
        path,
        ("seSparse", "SESPARSE", "14"),
        sectors,
        parent,
        parent_cid,
        extent,
    );
}

/// The text descriptor of an ESXi delta (createType, extent type and
/// hardware version in `kind`) over `parent`, for extent `extent`.
pub fn delta_descriptor(
    path: &Path,
    kind: (&str, &str, &str),
    sectors: u64,
    parent: &str,
    parent_cid: u32,
    extent: &str,
) {
    let (create_type, extent_type, hw) = kind;
    let cid = if extent_type == "SESPARSE" {
        "5e5e5e5e"
    } else {
        "5a5a5a5a"
    };
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID={cid}\nparentCID={parent_cid:08x}\n\
         createType=\"{create_type}\"\nparentFileNameHint=\"{parent}\"\n\n# Extent description\n\
         RW {sectors} {extent_type} \"{extent}\"\n\n# The Disk Data Base\n#DDB\n\n\
         ddb.longContentID = \"0123456789abcdef01234567{cid}\"\n\
         ddb.virtualHWVersion = \"{hw}\"\n"
    );
    fs::write(path, text).unwrap();
}
