//! Creating VMDKs: the option set (`subformat`, `adapter_type`,
//! `hwversion`, `compat6`, `toolsversion`, `zeroed_grain`), the descriptor
//! VMware writes, and the monolithicSparse layout.

use std::path::Path;

use super::descriptor::{Descriptor, ExtentAccess, ExtentLine, NO_PARENT};
use super::header::{SparseHeader, FLAG_NL_DETECT, FLAG_RGD, FLAG_ZERO_GRAIN};
use super::{new_cid, Vmdk};
use crate::error::{Error, Result};
use crate::image::BlockDevice;
use crate::io::{align_up, Access, ImageFile, SECTOR};
use crate::options::Options;

/// Grain size vimg writes, in sectors (64 KiB, as VMware and qemu-img).
const GRAIN_SECTORS: u64 = 128;
/// Grain table entries per table.
const GTES: u64 = 512;
/// Sectors reserved for an embedded descriptor.
const DESCRIPTOR_SECTORS: u64 = 20;

/// What the descriptor says about the virtual hardware.
struct DiskDb {
    adapter: String,
    hwversion: String,
    toolsversion: String,
}

impl DiskDb {
    fn from_options(opts: &mut Options) -> Result<DiskDb> {
        let adapter = opts
            .take_str("adapter_type")?
            .unwrap_or_else(|| "ide".into());
        if !["ide", "lsilogic", "buslogic", "legacyESX"].contains(&adapter.as_str()) {
            return Err(Error::invalid(format!(
                "adapter_type '{adapter}' is not one of: ide, lsilogic, buslogic, legacyESX"
            )));
        }
        let hwversion = opts.take_str("hwversion")?;
        let compat6 = opts.take_bool("compat6")?.unwrap_or(false);
        let hwversion = match (compat6, hwversion) {
            (true, Some(_)) => {
                return Err(Error::invalid(
                    "compat6 and hwversion cannot be given together",
                ))
            }
            (true, None) => "6".to_string(),
            (false, Some(v)) if v.parse::<u32>().is_ok() => v,
            (false, Some(v)) => {
                return Err(Error::invalid(format!("hwversion '{v}' is not a number")))
            }
            (false, None) => "4".to_string(),
        };
        let toolsversion = opts
            .take_str("toolsversion")?
            .unwrap_or_else(|| "2147483647".into());
        if toolsversion.parse::<u32>().is_err() {
            return Err(Error::invalid(format!(
                "toolsversion '{toolsversion}' is not a number"
            )));
        }
        Ok(DiskDb {
            adapter,
            hwversion,
            toolsversion,
        })
    }

    /// The `ddb.*` entries for a disk of `sectors`, in VMware's order.
    /// Cylinders are capped as VMware caps them (16383 on IDE, else 65535).
    fn entries(&self, sectors: u64, cid: u32) -> Vec<(String, String)> {
        let (heads, cap) = if self.adapter == "ide" {
            (16u64, 16383u64)
        } else {
            (255, 65535)
        };
        let cylinders = (sectors / (heads * 63)).min(cap);
        let id = uuid::Uuid::new_v4().into_bytes();
        let uuid: Vec<String> = id.iter().map(|b| format!("{b:02x}")).collect();
        let long_id = uuid::Uuid::new_v4().simple().to_string();
        let long_id = format!("{}{cid:08x}", &long_id[..24]);
        let mut ddb = vec![
            ("ddb.adapterType", self.adapter.clone()),
            ("ddb.geometry.cylinders", cylinders.to_string()),
            ("ddb.geometry.heads", heads.to_string()),
            ("ddb.geometry.sectors", "63".to_string()),
            ("ddb.longContentID", long_id),
            ("ddb.toolsVersion", self.toolsversion.clone()),
            ("ddb.uuid", uuid.join(" ")),
            ("ddb.virtualHWVersion", self.hwversion.clone()),
        ];
        ddb.sort();
        ddb.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// Create a VMDK of `size` bytes (rounded up to a sector).
pub fn create(path: &Path, size: u64, opts: &mut Options) -> Result<Box<dyn BlockDevice>> {
    let subformat = opts
        .take_str("subformat")?
        .unwrap_or_else(|| "monolithicSparse".into());
    let db = DiskDb::from_options(opts)?;
    let zeroed_grain = opts.take_bool("zeroed_grain")?.unwrap_or(false);
    opts.finish("vmdk")?;
    let sectors = size.div_ceil(SECTOR);
    match subformat.as_str() {
        "monolithicSparse" => {}
        "monolithicFlat" | "twoGbMaxExtentSparse" | "twoGbMaxExtentFlat" | "streamOptimized" => {
            return Err(Error::invalid(format!(
                "writing the {subformat} subformat is not supported yet"
            )))
        }
        other => {
            return Err(Error::invalid(format!(
                "VMDK subformat '{other}' is not one of: monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized"
            )))
        }
    }
    if sectors > 1 << 32 {
        return Err(Error::invalid(format!(
            "a sparse VMDK extent addresses at most 2 TiB; {} bytes asked for",
            sectors * SECTOR
        )));
    }
    let cid = new_cid();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let desc = Descriptor {
        version: 1,
        cid,
        parent_cid: NO_PARENT,
        create_type: subformat,
        parent_hint: None,
        other: vec![("encoding".into(), "UTF-8".into())],
        extents: vec![ExtentLine {
            access: ExtentAccess::ReadWrite,
            sectors,
            kind: "SPARSE".into(),
            file: Some(name),
            offset: 0,
        }],
        ddb: db.entries(sectors, cid),
    };
    let file = ImageFile::create_new(path)?;
    let written = write_sparse_extent(&file, sectors, Some(&desc), zeroed_grain);
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(Box::new(Vmdk::open(path, Access::Write)?))
}

/// Lay out an empty sparse extent of `sectors` as VMware does: header,
/// embedded descriptor, redundant grain directory and tables, grain
/// directory and tables, then grains from a grain-aligned overhead on.
/// Grain tables are left as holes (all zero).
fn write_sparse_extent(
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
