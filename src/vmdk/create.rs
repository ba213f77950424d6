//! Creating VMDKs: the options (`subformat`, `adapter_type`, `hwversion`,
//! `compat6`, `toolsversion`, `zeroed_grain`, `compression_level`), the
//! descriptor VMware writes, and the on-disk layout of each subformat.

use std::path::{Path, PathBuf};

use super::descriptor::{long_content_id, Descriptor, ExtentAccess, ExtentLine, NO_PARENT};
use super::header::{SparseHeader, FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN};
use super::stream::{StreamWriter, DEFAULT_LEVEL};
use super::{new_cid, Vmdk};
use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::image::{Backing, OpenOptions, Sink};
use crate::io::{align_up, Access, ImageFile, SECTOR};
use crate::options::{OptionDoc, Options, BACKING, PREALLOCATION, SIZE};

/// Grain size vimg writes, in sectors (64 KiB, as VMware and qemu-img).
pub const GRAIN_SECTORS: u64 = 128;
/// Grain table entries per table.
pub const GTES: u64 = 512;
/// Sectors reserved for an embedded descriptor.
const DESCRIPTOR_SECTORS: u64 = 20;
/// VMware's split size for twoGbMaxExtent* subformats: 2047 MiB.
pub const SPLIT_SECTORS: u64 = 4_192_256;

/// The subformats vimg writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subformat {
    MonolithicSparse,
    MonolithicFlat,
    TwoGbSparse,
    TwoGbFlat,
    StreamOptimized,
}

impl Subformat {
    fn parse(name: &str) -> Result<Subformat> {
        Ok(match name {
            "monolithicSparse" => Subformat::MonolithicSparse,
            "monolithicFlat" => Subformat::MonolithicFlat,
            "twoGbMaxExtentSparse" => Subformat::TwoGbSparse,
            "twoGbMaxExtentFlat" => Subformat::TwoGbFlat,
            "streamOptimized" => Subformat::StreamOptimized,
            other => {
                return Err(Error::invalid(format!(
                    "VMDK subformat '{other}' is not one of: monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized"
                )))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Subformat::MonolithicSparse => "monolithicSparse",
            Subformat::MonolithicFlat => "monolithicFlat",
            Subformat::TwoGbSparse => "twoGbMaxExtentSparse",
            Subformat::TwoGbFlat => "twoGbMaxExtentFlat",
            Subformat::StreamOptimized => "streamOptimized",
        }
    }

    fn sparse(self) -> bool {
        matches!(self, Subformat::MonolithicSparse | Subformat::TwoGbSparse)
    }
}

/// What the descriptor says about the virtual hardware; `None` fields are
/// inherited from a parent or defaulted.
pub(crate) struct DiskDb {
    pub adapter: Option<String>,
    pub hwversion: Option<String>,
    pub toolsversion: Option<String>,
}

impl DiskDb {
    /// The `adapter_type`, `hwversion` (or `compat6`) and `toolsversion`
    /// options, checked.
    pub fn from_options(opts: &mut Options) -> Result<DiskDb> {
        let adapter = opts.take_str("adapter_type")?;
        if let Some(a) = &adapter {
            if !["ide", "lsilogic", "buslogic", "legacyESX"].contains(&a.as_str()) {
                return Err(Error::invalid(format!(
                    "adapter_type '{a}' is not one of: ide, lsilogic, buslogic, legacyESX"
                )));
            }
        }
        let hwversion = opts.take_str("hwversion")?;
        let compat6 = opts.take_bool("compat6")?.unwrap_or(false);
        let hwversion = match (compat6, hwversion) {
            (true, Some(_)) => {
                return Err(Error::invalid(
                    "compat6 and hwversion cannot be given together",
                ))
            }
            (true, None) => Some("6".to_string()),
            (false, Some(v)) if v.parse::<u32>().is_ok() => Some(v),
            (false, Some(v)) => {
                return Err(Error::invalid(format!("hwversion '{v}' is not a number")))
            }
            (false, None) => None,
        };
        let toolsversion = opts.take_str("toolsversion")?;
        if let Some(v) = toolsversion.as_ref().filter(|v| v.parse::<u32>().is_err()) {
            return Err(Error::invalid(format!(
                "toolsversion '{v}' is not a number"
            )));
        }
        Ok(DiskDb {
            adapter,
            hwversion,
            toolsversion,
        })
    }

    /// The `ddb.*` entries for a disk of `sectors`, sorted as VMware writes
    /// them. Cylinders are capped as VMware caps them (16383 on IDE, else
    /// 65535).
    fn entries(&self, sectors: u64, cid: u32) -> Vec<(String, String)> {
        let adapter = self.adapter.clone().unwrap_or_else(|| "ide".into());
        let (cylinders, heads) = geometry(&adapter, sectors);
        // VMware's spelling: "60 00 c2 9b 69 2b 26 0e-23 ef 8e e9 e1 ce 37 ff".
        let id = uuid::Uuid::new_v4().into_bytes();
        let hex = |b: &[u8]| {
            b.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let uuid = format!("{}-{}", hex(&id[..8]), hex(&id[8..]));
        let long_id = long_content_id(cid);
        let mut ddb = vec![
            ("ddb.adapterType", adapter),
            ("ddb.geometry.cylinders", cylinders.to_string()),
            ("ddb.geometry.heads", heads.to_string()),
            ("ddb.geometry.sectors", "63".to_string()),
            ("ddb.longContentID", long_id),
            (
                "ddb.toolsVersion",
                self.toolsversion
                    .clone()
                    .unwrap_or_else(|| "2147483647".into()),
            ),
            ("ddb.uuid", uuid),
            (
                "ddb.virtualHWVersion",
                self.hwversion.clone().unwrap_or_else(|| "4".into()),
            ),
        ];
        ddb.sort();
        ddb.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// The geometry VMware gives a disk of `sectors` on `adapter`: (cylinders,
/// heads), 63 sectors a track; cylinders capped as VMware caps them
/// (16383 on IDE, else 65535).
pub(crate) fn geometry(adapter: &str, sectors: u64) -> (u64, u64) {
    let (heads, cap) = match adapter {
        "ide" => (16u64, 16383u64),
        _ => (255, 65535),
    };
    ((sectors / (heads * 63)).min(cap), heads)
}

/// The name of a file beside the descriptor: `disk.vmdk` → `disk-flat.vmdk`.
pub(super) fn extent_name(desc: &Path, suffix: &str) -> String {
    let name = desc
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".vmdk").unwrap_or(&name);
    format!("{stem}-{suffix}.vmdk")
}

/// Create a VMDK of `size` bytes (rounded up to a sector); with `backing`,
/// a delta (sparse subformats only) over that VMDK, split when its parent
/// is (as VMware makes them) unless a subformat is asked for.
pub fn create(
    path: &Path,
    size: u64,
    opts: &mut Options,
    backing: Option<&Backing>,
) -> Result<Box<dyn Sink>> {
    let parent = match backing {
        None => None,
        Some(b) => {
            let mut chain = Chain::new();
            chain.enter(&b.path)?;
            Some(Vmdk::open_in(
                &b.path,
                &OpenOptions::new(Access::Read),
                &mut chain,
            )?)
        }
    };
    let family = match parent.as_ref().map(|p| p.create_type()) {
        Some("twoGbMaxExtentSparse" | "twoGbMaxExtentFlat") => Subformat::TwoGbSparse,
        _ => Subformat::MonolithicSparse,
    };
    let subformat = subformat_option(opts, family)?;
    let mut db = DiskDb::from_options(opts)?;
    let zeroed_grain = opts.take_bool("zeroed_grain")?.unwrap_or(false);
    let level = level_option(opts, subformat == Subformat::StreamOptimized)?;
    opts.finish("vmdk")?;
    if zeroed_grain && !subformat.sparse() {
        return Err(Error::invalid(format!(
            "zeroed_grain needs a sparse subformat, not {}",
            subformat.name()
        )));
    }
    let sectors = size.div_ceil(SECTOR);
    // One sparse extent addresses at most 2 TiB; split ones hold 2047 MiB
    // each and flat ones are plain files.
    let single_sparse = matches!(
        subformat,
        Subformat::MonolithicSparse | Subformat::StreamOptimized
    );
    if single_sparse && sectors > 1 << 32 {
        return Err(Error::invalid(format!(
            "a {} VMDK addresses at most 2 TiB; {} bytes asked for (twoGbMaxExtentSparse has no such limit)",
            subformat.name(),
            sectors * SECTOR
        )));
    }
    if let Some(parent) = &parent {
        if !subformat.sparse() {
            return Err(Error::invalid(format!(
                "a {} VMDK cannot have a backing file (use monolithicSparse or twoGbMaxExtentSparse)",
                subformat.name()
            )));
        }
        db.adapter = db
            .adapter
            .or(parent.ddb("ddb.adapterType").map(str::to_string));
        db.hwversion = db
            .hwversion
            .or(parent.ddb("ddb.virtualHWVersion").map(str::to_string));
    }

    let cid = new_cid();
    let mut desc = Descriptor {
        version: 1,
        cid,
        parent_cid: NO_PARENT,
        create_type: subformat.name().into(),
        parent_hint: None,
        other: vec![("encoding".into(), "UTF-8".into())],
        extents: Vec::new(),
        ddb: db.entries(sectors, cid),
    };
    if let (Some(p), Some(b)) = (&parent, backing) {
        desc.parent_cid = p.cid();
        desc.parent_hint = Some(b.name.clone());
    }

    if subformat == Subformat::StreamOptimized {
        desc.extents = vec![extent_line(sectors, "SPARSE", path, None)];
        let file = ImageFile::create_new(path)?;
        return Ok(Box::new(StreamWriter::new_file(
            file, sectors, desc, level,
        )?));
    }

    let mut created: Vec<PathBuf> = Vec::new();
    let result = write_files(
        path,
        subformat,
        sectors,
        &mut desc,
        zeroed_grain,
        &mut created,
    );
    if let Err(e) = result {
        for f in created {
            let _ = std::fs::remove_file(f);
        }
        return Err(e);
    }
    let mut vmdk = Vmdk::open_layer(path, &OpenOptions::new(Access::Write))?;
    if let Some(parent) = parent {
        vmdk.attach(parent)?;
    }
    Ok(Box::new(vmdk))
}

/// What a unit of data costs in a VMDK made with `opts`: (unit, bytes).
/// A grain of 64 KiB in a sparse extent; nothing in a flat one (its file
/// has the disk's size already); for streamOptimized an upper bound: the
/// grain deflated no smaller than it is, its marker, the sector it is
/// padded to, and its share of a grain table with its marker.
pub fn data_cost(opts: &Options) -> Result<(u64, u64)> {
    let grain = GRAIN_SECTORS * SECTOR;
    let mut opts = opts.clone();
    Ok(
        match subformat_option(&mut opts, Subformat::MonolithicSparse)? {
            Subformat::MonolithicSparse | Subformat::TwoGbSparse => (grain, grain),
            Subformat::StreamOptimized => (grain, grain + 1024 + 512),
            _ => (grain, 0),
        },
    )
}

/// The options `create` takes for a VMDK (`-o help`).
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        key: "subformat",
        kind: "str",
        about: "monolithicSparse (default), monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat or streamOptimized",
    },
    OptionDoc {
        key: "adapter_type",
        kind: "str",
        about: "Virtual adapter type: ide (default), lsilogic, buslogic or legacyESX",
    },
    OptionDoc {
        key: "hwversion",
        kind: "str",
        about: "VMware virtual hardware version (default 4)",
    },
    OptionDoc {
        key: "compat6",
        kind: "bool (on/off)",
        about: "Hardware version 6 (the same as hwversion=6)",
    },
    OptionDoc {
        key: "toolsversion",
        kind: "str",
        about: "VMware Tools version recorded in the descriptor (a number)",
    },
    OptionDoc {
        key: "zeroed_grain",
        kind: "bool (on/off)",
        about: "Record zeros with zeroed-grain table entries instead of data",
    },
    OptionDoc {
        key: "compression_level",
        kind: "str",
        about: "Deflate level of a streamOptimized VMDK, 1 to 9 (default 6)",
    },
    OptionDoc {
        key: "compress",
        kind: "bool (on/off)",
        about: "Compressed data (streamOptimized), as convert -c",
    },
    SIZE,
    PREALLOCATION,
    BACKING[0],
    BACKING[1],
];

/// The subformat asked for, else `default`; `compress` (convert -c) asks
/// for the one compressed subformat, streamOptimized.
fn subformat_option(opts: &mut Options, default: Subformat) -> Result<Subformat> {
    let compress = opts.take_bool("compress")?.unwrap_or(false);
    match opts.take_str("subformat")? {
        None if compress => Ok(Subformat::StreamOptimized),
        None => Ok(default),
        Some(name) => {
            let sub = Subformat::parse(&name)?;
            if compress && sub != Subformat::StreamOptimized {
                return Err(Error::invalid(format!(
                    "{name} VMDKs hold no compressed data; compression needs subformat=streamOptimized"
                )));
            }
            Ok(sub)
        }
    }
}

/// A streamOptimized VMDK written front to back into `out`.
pub fn create_stream(
    name: &Path,
    size: u64,
    opts: &mut Options,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Box<dyn Sink>> {
    opts.set_default("subformat", "streamOptimized");
    if subformat_option(opts, Subformat::StreamOptimized)? != Subformat::StreamOptimized {
        return Err(Error::invalid(
            "only streamOptimized VMDKs can be written to a pipe",
        ));
    }
    let db = DiskDb::from_options(opts)?;
    let level = level_option(opts, true)?;
    opts.finish("vmdk")?;
    let sectors = size.div_ceil(SECTOR);
    let cid = new_cid();
    let desc = Descriptor {
        version: 1,
        cid,
        parent_cid: NO_PARENT,
        create_type: Subformat::StreamOptimized.name().into(),
        parent_hint: None,
        other: vec![("encoding".into(), "UTF-8".into())],
        extents: vec![extent_line(sectors, "SPARSE", name, None)],
        ddb: db.entries(sectors, cid),
    };
    Ok(Box::new(StreamWriter::new_pipe(
        out, name, sectors, desc, level,
    )?))
}

/// The `compression_level` option (1 to 9), for streamOptimized only.
fn level_option(opts: &mut Options, stream: bool) -> Result<i32> {
    match opts.take_str("compression_level")? {
        None => Ok(DEFAULT_LEVEL),
        Some(v) => match v.parse::<i32>() {
            Ok(l @ 1..=9) if stream => Ok(l),
            Ok(1..=9) => Err(Error::invalid(
                "compression_level needs subformat=streamOptimized",
            )),
            _ => Err(Error::invalid(format!(
                "compression_level '{v}' is not a number from 1 to 9"
            ))),
        },
    }
}

/// An extent line; `file` is the extent's own name (or the descriptor's).
fn extent_line(sectors: u64, kind: &str, desc: &Path, file: Option<String>) -> ExtentLine {
    let file = file.unwrap_or_else(|| {
        desc.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    ExtentLine {
        access: ExtentAccess::ReadWrite,
        sectors,
        kind: kind.into(),
        file: Some(file),
        offset: 0,
    }
}

/// Write the files of a non-stream subformat, recording each in `created`.
fn write_files(
    path: &Path,
    subformat: Subformat,
    sectors: u64,
    desc: &mut Descriptor,
    zeroed_grain: bool,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut new_file = |p: PathBuf| -> Result<ImageFile> {
        let f = ImageFile::create_new(&p)?;
        created.push(p);
        Ok(f)
    };
    if subformat == Subformat::MonolithicSparse {
        desc.extents = vec![extent_line(sectors, "SPARSE", path, None)];
        let file = new_file(path.to_path_buf())?;
        return write_sparse_extent(&file, sectors, Some(desc), zeroed_grain);
    }
    let (kind, split, tag) = match subformat {
        Subformat::MonolithicFlat => ("FLAT", sectors.max(1), "flat"),
        Subformat::TwoGbFlat => ("FLAT", SPLIT_SECTORS, "f"),
        _ => ("SPARSE", SPLIT_SECTORS, "s"),
    };
    let count = sectors.div_ceil(split).max(1);
    for i in 0..count {
        let part = (sectors - i * split).min(split);
        let name = if subformat == Subformat::MonolithicFlat {
            extent_name(path, tag)
        } else {
            extent_name(path, &format!("{tag}{:03}", i + 1))
        };
        let file = new_file(dir.join(&name))?;
        if kind == "FLAT" {
            file.set_len(part * SECTOR)?;
        } else {
            write_sparse_extent(&file, part, None, zeroed_grain)?;
        }
        desc.extents.push(extent_line(part, kind, path, Some(name)));
    }
    let text = desc.encode();
    new_file(path.to_path_buf())?.write_all_at(text.as_bytes(), 0)
}

/// Lay out an empty sparse extent of `sectors` as VMware does: header,
/// embedded descriptor (monolithic only), redundant grain directory and
/// tables, grain directory and tables, then grains from a grain-aligned
/// overhead on. Grain tables are left as holes (all zero).
pub(super) fn write_sparse_extent(
    file: &ImageFile,
    sectors: u64,
    desc: Option<&Descriptor>,
    zeroed_grain: bool,
) -> Result<()> {
    let gt_count = sectors.div_ceil(GRAIN_SECTORS).div_ceil(GTES).max(1);
    let gd_sectors = (gt_count * 4).div_ceil(SECTOR);
    let gt_sectors = GTES * 4 / SECTOR;
    let (desc_offset, desc_size) = match desc {
        Some(_) => (1, DESCRIPTOR_SECTORS),
        None => (0, 0),
    };
    let rgd_offset = 1 + desc_size;
    let gd_offset = rgd_offset + gd_sectors + gt_count * gt_sectors;
    let overhead = align_up(
        gd_offset + gd_sectors + gt_count * gt_sectors,
        GRAIN_SECTORS,
    );
    let header = SparseHeader {
        version: if zeroed_grain { 2 } else { 1 },
        flags: FLAG_NL_DETECT | FLAG_RGD | if zeroed_grain { FLAG_ZERO_GRAIN } else { 0 },
        capacity: sectors,
        grain_size: GRAIN_SECTORS,
        descriptor_offset: desc_offset,
        descriptor_size: desc_size,
        num_gtes_per_gt: GTES as u32,
        rgd_offset,
        gd_offset,
        overhead,
        unclean_shutdown: false,
        compress_algorithm: 0,
    };
    file.set_len(overhead * SECTOR)?;
    let mut head = header.encode().to_vec();
    if let Some(desc) = desc {
        let text = desc.encode();
        if text.len() as u64 > desc_size * SECTOR {
            return Err(Error::invalid(format!(
                "the descriptor is {} bytes, more than the {} reserved for it",
                text.len(),
                desc_size * SECTOR
            )));
        }
        head.extend_from_slice(text.as_bytes());
        head.resize(((1 + desc_size) * SECTOR) as usize, 0);
    }
    file.write_all_at(&head, 0)?;
    for (dir, tables) in [
        (rgd_offset, rgd_offset + gd_sectors),
        (gd_offset, gd_offset + gd_sectors),
    ] {
        let mut entries = vec![0u8; (gd_sectors * SECTOR) as usize];
        for i in 0..gt_count {
            let at = (i * 4) as usize;
            let sector = (tables + i * gt_sectors) as u32;
            entries[at..at + 4].copy_from_slice(&sector.to_le_bytes());
        }
        file.write_all_at(&entries, dir * SECTOR)?;
    }
    Ok(())
}
