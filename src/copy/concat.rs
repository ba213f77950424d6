//! Several sources read as one disk, one after the other: what `convert`
//! copies when it is given more than one source (qemu-img concatenates
//! them, each taking a whole number of sectors).
//!
//! Each source is a whole chain; [`Concat`] has no parent of its own, and
//! its `block_status` answers for each source's chain to its bottom (a
//! range nothing in a chain holds is `Unallocated`, and reads as zeros).

use std::path::PathBuf;

use crate::chain;
use crate::error::{Error, Result};
use crate::image::{Image, ImageInfo, Mapping, Sink, Source};
use crate::io::{align_up, SECTOR};

/// One source and where it starts in the whole.
struct Part {
    image: Box<dyn Image>,
    start: u64,
    /// The source's own size; up to the next sector boundary past it reads
    /// as zeros.
    size: u64,
    /// What it takes of the whole: its size rounded up to a sector.
    len: u64,
}

/// Several images read back to back as one, read only.
pub struct Concat {
    parts: Vec<Part>,
    size: u64,
    files: Vec<PathBuf>,
}

impl Concat {
    /// The images in `images`, in that order, as one disk.
    pub fn new(images: Vec<Box<dyn Image>>) -> Concat {
        let mut start = 0;
        let mut files = Vec::new();
        let parts = images
            .into_iter()
            .map(|mut image| {
                files.extend(chain::files(image.as_mut()));
                let size = image.virtual_size();
                let len = align_up(size, SECTOR);
                let part = Part {
                    image,
                    start,
                    size,
                    len,
                };
                start += len;
                part
            })
            .collect();
        Concat {
            parts,
            size: start,
            files,
        }
    }

    /// Where each source starts in the whole, in order.
    pub fn starts(&self) -> Vec<u64> {
        self.parts.iter().map(|p| p.start).collect()
    }

    /// The part that holds byte `offset` (which is below the size).
    fn part_at(&mut self, offset: u64) -> &mut Part {
        let i = self.parts.partition_point(|p| p.start + p.len <= offset);
        &mut self.parts[i]
    }

    fn read_only(&self) -> Error {
        Error::unsupported(
            &self.files().into_iter().next().unwrap_or_default(),
            "several sources read as one cannot be written",
        )
    }
}

impl Sink for Concat {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn write_at(&mut self, _buf: &[u8], _offset: u64) -> Result<()> {
        Err(self.read_only())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// The files of every source's whole chain (a concatenation has no
    /// parent of its own to reach them by).
    fn files(&self) -> Vec<PathBuf> {
        self.files.clone()
    }

    fn as_image(&mut self) -> Option<&mut dyn Image> {
        Some(self)
    }
}

impl Image for Concat {
    fn cluster_size(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.image.cluster_size())
            .max()
            .unwrap_or(SECTOR)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a read of {} bytes at {offset} is past the end of the {}-byte disk",
                    buf.len(),
                    self.size
                ))
            })?;
        let mut at = offset;
        while at < end {
            let part = self.part_at(at);
            let local = at - part.start;
            let n = (part.start + part.len).min(end) - at;
            let piece = &mut buf[(at - offset) as usize..][..n as usize];
            // The sector's tail past a source's own size reads as zeros.
            let stored = part.size.saturating_sub(local).min(n) as usize;
            part.image
                .read_at(&mut piece[..stored], local)
                .map_err(|e| e.clipped(0..part.size).shifted(part.start))?;
            piece[stored..].fill(0);
            at += n;
        }
        Ok(())
    }

    fn block_status(&mut self, offset: u64, len: u64) -> Result<Mapping> {
        let part = self.part_at(offset);
        let local = offset - part.start;
        let len = len.min(part.len - local);
        if local >= part.size {
            let zero = Source::Zero {
                host: None,
                data: false,
            };
            return Ok(Mapping::new(len, zero));
        }
        let (m, _) = chain::status(part.image.as_mut(), local, len.min(part.size - local))?;
        Ok(m)
    }

    fn info(&mut self) -> Result<ImageInfo> {
        let first = self.parts.first_mut().map(|p| p.image.info()).transpose()?;
        Ok(ImageInfo {
            format: first.map_or("raw", |i| i.format),
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
    use crate::io::Access;
    use crate::raw::Raw;

    #[test]
    fn sources_follow_one_another_each_a_whole_number_of_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let mut images: Vec<Box<dyn Image>> = Vec::new();
        let mut expect = Vec::new();
        for (i, len) in [1000usize, 4096, 3].into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.raw"));
            let data = vec![i as u8 + 1; len];
            std::fs::write(&path, &data).unwrap();
            expect.extend_from_slice(&data);
            expect.resize(align_up(expect.len() as u64, SECTOR) as usize, 0);
            images.push(Box::new(Raw::open(&path, Access::Read).unwrap()));
        }
        let mut all = Concat::new(images);
        assert_eq!(all.virtual_size(), 1024 + 4096 + 512);
        assert_eq!(all.starts(), [0, 1024, 5120]);
        let mut buf = vec![0xee; expect.len()];
        all.read_at(&mut buf, 0).unwrap();
        assert_eq!(buf, expect);
        // A read across two sources.
        let mut buf = vec![0; 600];
        all.read_at(&mut buf, 900).unwrap();
        assert_eq!(buf, expect[900..1500]);
        // Status never crosses from one source into the next.
        let m = all.block_status(0, 1 << 20).unwrap();
        assert!(m.len <= 1024, "{m:?}");
        assert!(all.read_at(&mut [0; 2], all.virtual_size() - 1).is_err());
        assert!(all.write_at(&[0; 512], 0).is_err());
    }
}
