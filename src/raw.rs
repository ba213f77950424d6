//! Raw images: the file is the disk. Holes read as zeros and are reported
//! as such (SEEK_DATA/SEEK_HOLE); new images are sparse.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::image::check::Report;
use crate::image::{check_range, file_status, Holes, Image, ImageInfo, Mapping, Sink};
use crate::io::{align_up, Access, ImageFile, SECTOR};

/// A raw image file or block device.
pub struct Raw {
    file: ImageFile,
    size: u64,
}

impl Raw {
    /// Open an existing raw file or device. Like qemu-img, a file whose
    /// length is not a whole number of sectors is a disk of the next whole
    /// sector, the rest reading as zeros.
    pub fn open(path: &Path, access: Access) -> Result<Raw> {
        let file = ImageFile::open(path, access)?;
        let size = align_up(file.length()?, SECTOR);
        Ok(Raw { file, size })
    }

    /// Create a sparse raw file of `size` bytes.
    pub fn create(path: &Path, size: u64) -> Result<Raw> {
        let file = ImageFile::create_new(path)?;
        file.set_len(size)?;
        Ok(Raw { file, size })
    }
}

impl Sink for Raw {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        check_range(self.file.path(), self.size, offset, buf.len())?;
        self.file.write_all_at(buf, offset)
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
    use crate::image::Source;

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
}
