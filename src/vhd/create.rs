//! Creating VHDs: options (`subformat`, `force_size`, `block_size`,
//! `azure`), the exact-size footer, and differencing disks over a parent.

use std::path::Path;
use std::time::SystemTime;

use super::dynamic::Dynamic;
use super::footer::{vhd_time, DiskType, Footer, FOOTER_SIZE};
use super::geometry::{self, MAX_SIZE};
use super::locator::ParentRecord;
use super::Vhd;
use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::image::{Backing, OpenOptions, Sink};
use crate::io::{align_up, Access, ImageFile, SECTOR};
use crate::options::{OptionDoc, Options, BACKING, PREALLOCATION, SIZE};

/// Default block size of dynamic disks, as Hyper-V and qemu-img use.
const DEFAULT_BLOCK_SIZE: u64 = 2 << 20;
const MIB: u64 = 1 << 20;

/// Create a VHD of `size` bytes (rounded up to a sector). Options:
/// `subformat=dynamic|fixed`, `force_size=on|off` (off: round up to a CHS
/// geometry as qemu-img does), `block_size=` (512K to 256M), `azure=on`
/// (fixed, size rounded up to a whole MiB). With `backing`, a differencing
/// disk over that VHD.
/// What a unit of data costs in a VHD made with `opts`: (unit, bytes).
/// A block and its sector bitmap in a dynamic disk (with the padding that
/// puts data on a 4 KiB boundary, at most); nothing in a fixed one.
pub fn data_cost(opts: &Options) -> Result<(u64, u64)> {
    let mut opts = opts.clone();
    let fixed = opts.take_str("subformat")?.as_deref() == Some("fixed")
        || opts.take_bool("azure")?.unwrap_or(false);
    let block = opts.take_size("block_size")?.unwrap_or(DEFAULT_BLOCK_SIZE);
    if fixed {
        return Ok((block, 0));
    }
    let bitmap = align_up((block / SECTOR).div_ceil(8), SECTOR);
    Ok((block, block + align_up(bitmap, 4096)))
}

/// The options `create` takes for a VHD (`-o help`).
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        key: "subformat",
        kind: "str",
        about: "dynamic (default) or fixed",
    },
    OptionDoc {
        key: "force_size",
        kind: "bool (on/off)",
        about: "The exact size asked for (default on), not the nearest size CHS geometry can express (off, as qemu-img's default)",
    },
    OptionDoc {
        key: "block_size",
        kind: "size",
        about: "Block size of a dynamic or differencing VHD, a power of two from 512K to 256M (default 2M)",
    },
    OptionDoc {
        key: "azure",
        kind: "bool (on/off)",
        about: "A fixed VHD of a whole number of MiB, as Azure takes",
    },
    SIZE,
    PREALLOCATION,
    BACKING[0],
    BACKING[1],
];

pub fn create(
    path: &Path,
    size: u64,
    opts: &mut Options,
    backing: Option<&Backing>,
) -> Result<Box<dyn Sink>> {
    let subformat = opts.take_str("subformat")?;
    let azure = opts.take_bool("azure")?.unwrap_or(false);
    let exact = opts.take_bool("force_size")?.unwrap_or(true);
    let block_size = opts.take_size("block_size")?;
    opts.finish("vpc")?;
    let fixed = match (subformat.as_deref(), azure) {
        (None, true) | (Some("fixed"), _) => true,
        (None | Some("dynamic"), false) => false,
        (Some("dynamic"), true) => {
            return Err(Error::invalid(
                "azure=on makes a fixed VHD (Azure takes no other), not a dynamic one",
            ))
        }
        (Some(other), _) => {
            return Err(Error::invalid(format!(
                "VHD subformat '{other}' is not one of: dynamic, fixed"
            )))
        }
    };
    if azure && !exact {
        return Err(Error::invalid(
            "azure=on needs the exact size; it cannot be combined with force_size=off",
        ));
    }
    if fixed && backing.is_some() {
        return Err(Error::invalid(
            "a fixed VHD cannot have a parent; differencing disks are dynamic",
        ));
    }
    if let Some(b) = block_size {
        if !b.is_power_of_two() || !(512 << 10..=256 << 20).contains(&b) {
            return Err(Error::invalid(format!(
                "VHD block size {b} must be a power of two from 512K to 256M"
            )));
        }
    }

    let parent = match backing {
        None => None,
        Some(b) => {
            let mut chain = Chain::new();
            chain.enter(&b.path)?;
            Some(Vhd::open_in(
                &b.path,
                &OpenOptions::new(Access::Read),
                &mut chain,
            )?)
        }
    };
    let mut size = align_up(size, SECTOR);
    if let Some(p) = &parent {
        if size != p.virtual_size() {
            return Err(Error::invalid(format!(
                "a differencing VHD has its parent's size ({} bytes), not {size}",
                p.virtual_size()
            )));
        }
    }
    if azure && !size.is_multiple_of(MIB) {
        let rounded = align_up(size, MIB);
        opts.note(format!(
            "rounded the size up from {size} to {rounded} bytes, a whole number of MiB, for Azure"
        ));
        size = rounded;
    } else if fixed && !size.is_multiple_of(MIB) {
        opts.note(format!(
            "warning: Azure accepts only fixed VHDs whose size is a whole number of MiB; this one is {size} bytes (-o azure=on rounds it up)"
        ));
    }
    let (size, geometry) = if exact {
        (size, geometry::geometry_for_exact(size))
    } else {
        geometry::round_to_geometry(size)
    };
    if size > MAX_SIZE {
        return Err(Error::invalid(format!(
            "a VHD holds at most 2040 GiB ({MAX_SIZE} bytes); {size} bytes asked for"
        )));
    }
    let block_size = block_size
        .or_else(|| parent.as_ref().and_then(|p| p.block_size()))
        .unwrap_or(DEFAULT_BLOCK_SIZE) as u32;

    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let footer = Footer {
        features: 2,
        version: 0x0001_0000,
        data_offset: if fixed { u64::MAX } else { SECTOR },
        timestamp: vhd_time(SystemTime::now()),
        creator_app: *b"vimg",
        creator_version: (major << 16) | minor,
        creator_os: *b"Wi2k",
        original_size: size,
        current_size: size,
        geometry,
        disk_type: match (fixed, &parent) {
            (true, _) => DiskType::Fixed,
            (false, None) => DiskType::Dynamic,
            (false, Some(_)) => DiskType::Differencing,
        },
        uuid: *uuid::Uuid::new_v4().as_bytes(),
        saved_state: false,
    };
    let record = match (&parent, backing) {
        (Some(p), Some(b)) => Some(ParentRecord::new(p.uuid(), &b.path, &b.name)?),
        _ => None,
    };

    let file = ImageFile::create_new(path)?;
    let written = write_new(&file, &footer, size, block_size, record.as_ref());
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    let mut vhd = Vhd::open_layer(path, &OpenOptions::new(Access::Write))?;
    if let Some(p) = parent {
        vhd.attach(p, None)?;
    }
    Ok(Box::new(vhd))
}

fn write_new(
    file: &ImageFile,
    footer: &Footer,
    size: u64,
    block_size: u32,
    parent: Option<&ParentRecord>,
) -> Result<()> {
    let bytes = footer.encode();
    if footer.disk_type == DiskType::Fixed {
        file.set_len(size + FOOTER_SIZE as u64)?;
        return file.write_all_at(&bytes, size);
    }
    let (mut meta, footer_at) = Dynamic::initial_layout(size, block_size, parent);
    meta[..FOOTER_SIZE].copy_from_slice(&bytes);
    file.write_all_at(&meta, 0)?;
    file.write_all_at(&bytes, footer_at)
}
