//! Microsoft VHD (QEMU's `vpc`): fixed and dynamic disks.
//!
//! A fixed disk is its data followed by a 512-byte footer. A dynamic disk
//! has a footer copy at offset 0, a dynamic header, a block allocation table
//! and blocks of bitmap + data, with the footer last.

mod dyn_header;
mod dynamic;
mod footer;
mod geometry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use self::dyn_header::{DynamicHeader, HEADER_SIZE};
use self::dynamic::Dynamic;
use self::footer::{has_cookie, DiskType, Footer, FOOTER_SIZE, VHD_EPOCH};
use self::geometry::SizeSource;
use crate::error::{Error, Result};
use crate::image::{check_range, BlockDevice, ImageInfo, Mapping};
use crate::io::{align_down, align_up, Access, ImageFile, SECTOR};
use crate::options::Options;
use crate::raw::file_status;

pub use self::geometry::MAX_SIZE;

/// Default block size of dynamic disks, as Hyper-V and qemu-img use.
const DEFAULT_BLOCK_SIZE: u64 = 2 << 20;

/// True when the first bytes of a file are a VHD footer copy.
pub fn probe_head(head: &[u8]) -> bool {
    has_cookie(head)
}

/// True when the last 512 bytes of a file are a VHD footer.
pub fn probe_tail(tail: &[u8]) -> bool {
    has_cookie(tail)
}

/// An open VHD.
pub struct Vhd {
    file: ImageFile,
    name: Arc<Path>,
    footer: Footer,
    footer_bytes: [u8; FOOTER_SIZE],
    size: u64,
    size_source: SizeSource,
    dynamic: Option<Dynamic>,
}

/// Open a VHD.
pub fn open(path: &Path, access: Access) -> Result<Box<dyn BlockDevice>> {
    Ok(Box::new(Vhd::open(path, access)?))
}

/// The footer to trust: the one at the end when it is valid, else the copy
/// at offset 0 of a dynamic disk.
fn read_footer(file: &ImageFile, len: u64) -> Result<Footer> {
    let path = file.path();
    if len < FOOTER_SIZE as u64 {
        return Err(Error::corrupt(
            path,
            "VHD footer",
            0,
            format!("the file is only {len} bytes"),
        ));
    }
    let tail_at = len - FOOTER_SIZE as u64;
    let mut tail = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut tail, tail_at)?;
    let tail_err = match Footer::parse(&tail) {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    let mut head = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut head, 0)?;
    match Footer::parse(&head) {
        Ok(f) if f.disk_type != DiskType::Fixed => Ok(f),
        Err(head_err) if has_cookie(&head) && !has_cookie(&tail) => {
            Err(Error::corrupt(path, "VHD footer copy", 0, head_err))
        }
        _ => Err(Error::corrupt(path, "VHD footer", tail_at, tail_err)),
    }
}

impl Vhd {
    /// Open a VHD, checking its footer, header and table against the file.
    pub fn open(path: &Path, access: Access) -> Result<Vhd> {
        let file = ImageFile::open(path, access)?;
        let len = file.length()?;
        let footer = read_footer(&file, len)?;
        let (size, size_source) = geometry::disk_size(&footer);
        let dynamic = match footer.disk_type {
            DiskType::Fixed => {
                if size + FOOTER_SIZE as u64 > len {
                    return Err(Error::corrupt(
                        path,
                        "VHD footer",
                        len - FOOTER_SIZE as u64,
                        format!("a fixed disk of {size} bytes needs a file of {} bytes, this one has {len} (truncated?)", size + FOOTER_SIZE as u64),
                    ));
                }
                None
            }
            DiskType::Dynamic => Some(open_dynamic(&file, &footer, len, size)?),
            DiskType::Differencing => {
                return Err(Error::unsupported(
                    path,
                    "differencing VHD: reading through the parent is not supported yet",
                ))
            }
        };
        let footer_bytes = footer.encode();
        Ok(Vhd {
            name: Arc::from(path),
            file,
            footer,
            footer_bytes,
            size,
            size_source,
            dynamic,
        })
    }

    /// Whole-sector writes; partial sectors at either end are completed
    /// from what the disk reads there now.
    fn write_sectors(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let start = align_down(offset, SECTOR);
        let end = align_up(offset + buf.len() as u64, SECTOR);
        let dynamic = self.dynamic.as_mut().expect("only dynamic disks come here");
        if start == offset && end == offset + buf.len() as u64 {
            return dynamic.write(&self.file, &self.footer_bytes, buf, offset);
        }
        let mut whole = vec![0u8; (end - start) as usize];
        self.read_at(&mut whole, start)?;
        let at = (offset - start) as usize;
        whole[at..at + buf.len()].copy_from_slice(buf);
        let dynamic = self.dynamic.as_mut().unwrap();
        dynamic.write(&self.file, &self.footer_bytes, &whole, start)
    }
}

fn open_dynamic(file: &ImageFile, footer: &Footer, len: u64, size: u64) -> Result<Dynamic> {
    let at = footer.data_offset;
    if at
        .checked_add(HEADER_SIZE as u64)
        .is_none_or(|end| end > len)
    {
        return Err(Error::corrupt(
            file.path(),
            "VHD footer",
            0,
            format!("the dynamic header offset {at} is outside the {len}-byte file"),
        ));
    }
    let mut buf = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut buf, at)?;
    let header = DynamicHeader::parse(&buf)
        .map_err(|detail| Error::corrupt(file.path(), "VHD dynamic header", at, detail))?;
    Dynamic::open(file, header, at, size, false)
}

/// Create a VHD of `size` bytes (rounded up to a sector). Options:
/// `subformat=dynamic|fixed`, `force_size=on|off` (off: round up to a CHS
/// geometry as qemu-img does), `block_size=` (dynamic; 512K to 256M).
pub fn create(path: &Path, size: u64, opts: &mut Options) -> Result<Box<dyn BlockDevice>> {
    let fixed = match opts.take_str("subformat")?.as_deref() {
        None | Some("dynamic") => false,
        Some("fixed") => true,
        Some(other) => {
            return Err(Error::invalid(format!(
                "VHD subformat '{other}' is not one of: dynamic, fixed"
            )))
        }
    };
    let exact = opts.take_bool("force_size")?.unwrap_or(true);
    let block_size = opts.take_size("block_size")?.unwrap_or(DEFAULT_BLOCK_SIZE);
    opts.finish("vpc")?;
    if !block_size.is_power_of_two() || !(512 << 10..=256 << 20).contains(&block_size) {
        return Err(Error::invalid(format!(
            "VHD block size {block_size} must be a power of two from 512K to 256M"
        )));
    }
    let size = align_up(size, SECTOR);
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
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let footer = Footer {
        features: 2,
        version: 0x0001_0000,
        data_offset: if fixed { u64::MAX } else { SECTOR },
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(VHD_EPOCH) as u32)
            .unwrap_or(0),
        creator_app: *b"vimg",
        creator_version: (major << 16) | minor,
        creator_os: *b"Wi2k",
        original_size: size,
        current_size: size,
        geometry,
        disk_type: if fixed {
            DiskType::Fixed
        } else {
            DiskType::Dynamic
        },
        uuid: *uuid::Uuid::new_v4().as_bytes(),
        saved_state: false,
    };
    let file = ImageFile::create_new(path)?;
    let written = write_new(&file, &footer, size, block_size as u32);
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(Box::new(Vhd::open(path, Access::Write)?))
}

fn write_new(file: &ImageFile, footer: &Footer, size: u64, block_size: u32) -> Result<()> {
    let bytes = footer.encode();
    if footer.disk_type == DiskType::Fixed {
        file.set_len(size + FOOTER_SIZE as u64)?;
        return file.write_all_at(&bytes, size);
    }
    let (_, mut meta, footer_at) = Dynamic::initial_layout(size, block_size, None);
    meta[..FOOTER_SIZE].copy_from_slice(&bytes);
    file.write_all_at(&meta, 0)?;
    file.write_all_at(&bytes, footer_at)
}

impl BlockDevice for Vhd {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn cluster_size(&self) -> u64 {
        self.dynamic.as_ref().map_or(SECTOR, |d| d.block_size())
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), self.size, offset, buf.len())?;
        match &mut self.dynamic {
            None => self.file.read_exact_at(buf, offset),
            Some(d) => d.read(&self.file, buf, offset, &mut |b, _| {
                b.fill(0);
                Ok(())
            }),
        }
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), self.size, offset, buf.len())?;
        match &self.dynamic {
            None => self.file.write_all_at(buf, offset),
            Some(_) => self.write_sectors(buf, offset),
        }
    }

    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let len = len.min(self.size - offset);
        match &mut self.dynamic {
            Some(d) => d.status(&self.file, &self.name, offset, len),
            None => file_status(&self.file, &self.name, offset, len),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.dynamic {
            Some(d) => d.flush(&self.file),
            None => Ok(()),
        }
    }

    fn info(&mut self) -> Result<ImageInfo> {
        let f = &self.footer;
        let text = |b: &[u8; 4]| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let mut data = Map::new();
        data.insert("disk-type".into(), json!(f.disk_type.name()));
        data.insert("creator-app".into(), json!(text(&f.creator_app)));
        data.insert(
            "creator-version".into(),
            json!(format!(
                "{}.{}",
                f.creator_version >> 16,
                f.creator_version & 0xffff
            )),
        );
        data.insert("creator-os".into(), json!(text(&f.creator_os)));
        data.insert(
            "uuid".into(),
            json!(uuid::Uuid::from_bytes(f.uuid).to_string()),
        );
        data.insert("saved-state".into(), json!(f.saved_state));
        data.insert("current-size".into(), json!(f.current_size));
        data.insert(
            "geometry".into(),
            json!({
                "cylinders": f.geometry.cylinders,
                "heads": f.geometry.heads,
                "sectors": f.geometry.sectors,
            }),
        );
        data.insert("size-source".into(), json!(self.size_source.name()));
        if let Some(d) = &self.dynamic {
            data.insert("block-size".into(), Value::from(d.block_size()));
        }
        Ok(ImageInfo {
            format: "vpc",
            virtual_size: self.size,
            cluster_size: self.dynamic.as_ref().map(|d| d.block_size()),
            backing_file: None,
            specific: Some(("vpc", data)),
        })
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.file.path().to_path_buf()]
    }
}
