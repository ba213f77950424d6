//! Raw images: the file is the disk. Holes read as zeros and are reported
//! as such (SEEK_DATA/SEEK_HOLE); new images are sparse.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::check::Report;
use crate::image::{check_range, file_status, Holes, Image, ImageInfo, Mapping, Sink};
use crate::io::{align_up, Access, ImageFile, SECTOR};

/// A raw image file or block device.
pub struct Raw {
    file: ImageFile,
    size: u64,
    guard: Option<ProbeGuard>,
}

/// What keeps a raw disk whose format was probed from being written into
/// something probing would take for another format: the bytes probing
/// reads at the start (`head` of them) and in the last sector, and the test
/// they must still pass.
#[derive(Clone, Copy, Debug)]
pub struct ProbeGuard {
    pub head: u64,
    pub still_raw: fn(head: &[u8], tail: Option<&[u8]>) -> bool,
}

impl Raw {
    /// Open an existing raw file or device. Like qemu-img, a file whose
    /// length is not a whole number of sectors is a disk of the next whole
    /// sector, the rest reading as zeros.
    pub fn open(path: &Path, access: Access) -> Result<Raw> {
        let file = ImageFile::open(path, access)?;
        let size = align_up(file.length()?, SECTOR);
        Ok(Raw {
            file,
            size,
            guard: None,
        })
    }

    /// Refuse writes that would make the file probe as another format.
    pub fn guard_probe(&mut self, guard: ProbeGuard) {
        self.guard = Some(guard);
    }

    /// Fail when writing `buf` at `offset` would change what the file's
    /// head or last sector probes as.
    fn check_probe(&self, guard: &ProbeGuard, buf: &[u8], offset: u64) -> Result<()> {
        // The file as it would be: a write past its end extends it.
        let end = offset + buf.len() as u64;
        let len = self.file.length()?.max(end);
        let tail_at = len.saturating_sub(SECTOR);
        if offset >= guard.head.min(len) && (len < SECTOR || end <= tail_at) {
            return Ok(());
        }
        // The bytes probing would see after the write.
        let after = |at: u64, n: u64| -> Result<Vec<u8>> {
            let mut bytes = vec![0u8; n as usize];
            self.file.read_zero_filled(&mut bytes, at)?;
            let (from, to) = (offset.max(at), end.min(at + n));
            if from < to {
                bytes[(from - at) as usize..(to - at) as usize]
                    .copy_from_slice(&buf[(from - offset) as usize..(to - offset) as usize]);
            }
            Ok(bytes)
        };
        let head = after(0, guard.head.min(len))?;
        let tail = match len >= SECTOR {
            true => Some(after(tail_at, SECTOR)?),
            false => None,
        };
        if (guard.still_raw)(&head, tail.as_deref()) {
            return Ok(());
        }
        Err(Error::unsupported(
            self.file.path(),
            "this write would make the raw disk look like a VMDK or VHD to the next probe (which would then open the files it names); give -f raw to write it",
        ))
    }

    /// Create a sparse raw file of `size` bytes.
    pub fn create(path: &Path, size: u64) -> Result<Raw> {
        let file = ImageFile::create_new(path)?;
        file.set_len(size)?;
        Ok(Raw {
            file,
            size,
            guard: None,
        })
    }
}

impl Sink for Raw {
    fn as_image(&mut self) -> Option<&mut dyn Image> {
        Some(self)
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), self.size, offset, buf.len())?;
        if let Some(guard) = &self.guard {
            self.check_probe(guard, buf, offset)?;
        }
        self.file.write_data_at(buf, offset)
    }

    fn flush(&mut self) -> Result<()> {
        // Writes go straight to the file; nothing is held back.
        Ok(())
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.file.path().to_path_buf()]
    }
}

impl Image for Raw {
    fn cluster_size(&self) -> u64 {
        512
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), self.size, offset, buf.len())?;
        self.file.read_zero_filled(buf, offset)
    }

    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        file_status(
            &self.file,
            offset,
            len.min(self.size - offset),
            Holes::Zeros,
        )
    }

    fn resize(&mut self, size: u64) -> Result<Vec<String>> {
        self.file.check_writable()?;
        if let (Some(guard), true) = (&self.guard, size < self.size && size >= SECTOR) {
            // A smaller file ends in another sector: it must not probe as
            // an image either.
            let mut head = vec![0u8; guard.head.min(size) as usize];
            self.file.read_zero_filled(&mut head, 0)?;
            let mut tail = vec![0u8; SECTOR as usize];
            self.file.read_zero_filled(&mut tail, size - SECTOR)?;
            if !(guard.still_raw)(&head, Some(&tail)) {
                return Err(Error::unsupported(
                    self.file.path(),
                    "at that size the raw disk would look like a VMDK or VHD to the next probe; give -f raw to resize it",
                ));
            }
        }
        self.file.set_len(size)?;
        self.file.sync()?;
        self.size = size;
        Ok(Vec::new())
    }

    fn check(&mut self, _: &mut Report) -> Result<()> {
        // The file is the disk: no metadata, nothing to be inconsistent.
        Ok(())
    }

    fn info(&mut self) -> Result<ImageInfo> {
        Ok(ImageInfo {
            format: "raw",
            virtual_size: self.size,
            cluster_size: None,
            backing_file: None,
            specific: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Format, Source};

    #[test]
    fn sparse_file_maps_holes_as_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.raw");
        let mut raw = Raw::create(&path, 8 << 20).unwrap();
        raw.write_at(&[7u8; 4096], 4 << 20).unwrap();
        let m = raw.block_status(0, 8 << 20).unwrap();
        assert!(matches!(m.source, Source::Zero { .. }));
        assert_eq!(m.len, 4 << 20);
        let m = raw.block_status(4 << 20, 4 << 20).unwrap();
        assert!(matches!(m.source, Source::Data { .. }));
        assert!(m.len >= 4096);
        let mut buf = [0u8; 2];
        raw.read_at(&mut buf, (4 << 20) + 4095).unwrap();
        assert_eq!(buf, [7, 0]);
        assert!(raw.read_at(&mut buf, (8 << 20) - 1).is_err());
    }

    #[test]
    fn a_probed_raw_disk_is_not_written_into_an_image() {
        use crate::image::factory::open;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.img");
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        let descriptor =
            b"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"x\" 0\n";
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        // Probed: neither a descriptor at the start (however it is cut
        // into writes) nor a VHD cookie at the start is let in.
        let mut probed = open(&path, None, Access::Write).unwrap();
        assert!(probed.write_at(descriptor, 0).is_err());
        probed.write_at(&descriptor[..20], 0).unwrap();
        assert!(probed.write_at(&descriptor[20..], 20).is_err());
        assert!(probed.write_at(&footer[..8], 0).is_err());
        // Data elsewhere, and anything that keeps it raw, goes in.
        probed.write_at(b"createType", 5000).unwrap();
        probed.write_at(&[1; 512], 512).unwrap();
        drop(probed);
        assert_eq!(crate::image::factory::probe(&path).unwrap(), Format::Raw);
        // Given -f raw, the disk is the guest's to fill.
        let mut given = open(&path, Some(Format::Raw), Access::Write).unwrap();
        given.write_at(descriptor, 0).unwrap();
        assert_eq!(crate::image::factory::probe(&path).unwrap(), Format::Vmdk);
    }
}
