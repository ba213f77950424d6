//! Writing streamOptimized VMDKs in the canonical layout VMware documents:
//! header (version 3, compressed grains with markers, grain directory at the
//! end), embedded descriptor, then each non-zero grain deflated behind its
//! grain marker, each grain table behind a marker after its grains, the grain
//! directory, the footer (a header copy holding the real directory offset)
//! and the end-of-stream marker.
//!
//! The image is written strictly front to back, so it can go to a pipe.
//! Grains are compressed by a pool of workers (one a core) that lives as
//! long as the stream, while the caller goes on filling the next ones;
//! output order is kept and the grains in flight are bounded.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::create::{GRAIN_SECTORS, GTES};
use super::deflate::DeflatePool;
use super::descriptor::Descriptor;
use super::header::{
    SparseHeader, COMPRESS_DEFLATE, FLAG_COMPRESSED, FLAG_MARKERS, FLAG_NL_DETECT, GD_AT_END,
};
use super::marker::{self, MarkerType};
use crate::alloc::units;
use crate::error::{Error, Result};
use crate::image::Sink;
use crate::io::{align_up, is_zero, ImageFile, SECTOR};

/// Default deflate level: qemu-img's (zlib's) size, at libdeflate's speed.
pub const DEFAULT_LEVEL: i32 = 6;
const GRAIN: u64 = GRAIN_SECTORS * SECTOR;
/// Output gathered before it is written (grains, their markers, tables).
const OUT_BATCH: usize = 1 << 20;

/// Where the stream goes.
enum Out {
    File(ImageFile),
    Pipe(Box<dyn Write + Send>),
}

/// A streamOptimized VMDK being written.
pub struct StreamWriter {
    sink: Out,
    path: PathBuf,
    /// Bytes emitted so far.
    pos: u64,
    sectors: u64,
    header: SparseHeader,
    /// The grain being filled: (index, data).
    current: Option<(u64, Vec<u8>)>,
    /// The compressors.
    pool: DeflatePool,
    /// The indexes of the grains in the pool, in order.
    in_pool: std::collections::VecDeque<u64>,
    /// The last grain handed to the pool.
    last_sent: Option<u64>,
    /// Output not yet written, and where it goes.
    out: Vec<u8>,
    /// The grain table being filled: (index, entries).
    table: Option<(u64, Vec<u32>)>,
    /// Grain directory: sector of each grain table, 0 for none.
    directory: Vec<u32>,
    finished: bool,
}

impl StreamWriter {
    /// Start a stream into a new file.
    pub fn new_file(file: ImageFile, sectors: u64, desc: Descriptor, level: i32) -> Result<Self> {
        let path = file.path().to_path_buf();
        Self::start(Out::File(file), path, sectors, desc, level)
    }

    /// Start a stream into a pipe (`name` is used in messages).
    pub fn new_pipe(
        out: Box<dyn Write + Send>,
        name: &Path,
        sectors: u64,
        desc: Descriptor,
        level: i32,
    ) -> Result<Self> {
        Self::start(Out::Pipe(out), name.to_path_buf(), sectors, desc, level)
    }

    fn start(sink: Out, path: PathBuf, sectors: u64, desc: Descriptor, level: i32) -> Result<Self> {
        let text = desc.encode();
        let desc_sectors = (text.len() as u64).div_ceil(SECTOR).max(1);
        let overhead = align_up(1 + desc_sectors, GRAIN_SECTORS);
        let header = SparseHeader {
            version: 3,
            flags: FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS,
            capacity: sectors,
            grain_size: GRAIN_SECTORS,
            descriptor_offset: 1,
            descriptor_size: desc_sectors,
            num_gtes_per_gt: GTES as u32,
            rgd_offset: 0,
            gd_offset: GD_AT_END,
            overhead,
            unclean_shutdown: false,
            compress_algorithm: COMPRESS_DEFLATE,
        };
        let tables = sectors.div_ceil(GRAIN_SECTORS).div_ceil(GTES).max(1);
        let mut writer = StreamWriter {
            sink,
            path,
            pos: 0,
            sectors,
            header: header.clone(),
            current: None,
            pool: DeflatePool::new(level, threads()),
            in_pool: std::collections::VecDeque::new(),
            last_sent: None,
            out: Vec::with_capacity(OUT_BATCH + GRAIN as usize),
            table: None,
            directory: vec![0; tables as usize],
            finished: false,
        };
        let mut head = header.encode().to_vec();
        head.extend_from_slice(text.as_bytes());
        head.resize((overhead * SECTOR) as usize, 0);
        writer.emit(&head)?;
        Ok(writer)
    }

    /// Write `bytes` out after what is gathered.
    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.extend_from_slice(bytes);
        if self.out.len() >= OUT_BATCH {
            self.write_out()?;
        }
        Ok(())
    }

    /// Where the next byte emitted lands.
    fn at(&self) -> u64 {
        self.pos + self.out.len() as u64
    }

    /// Write what is gathered.
    fn write_out(&mut self) -> Result<()> {
        let bytes = std::mem::take(&mut self.out);
        match &mut self.sink {
            Out::File(f) => f.write_data_at(&bytes, self.pos)?,
            Out::Pipe(p) => p.write_all(&bytes).map_err(|e| self.pipe_error(e))?,
        }
        self.pos += bytes.len() as u64;
        self.out = bytes;
        self.out.clear();
        Ok(())
    }

    fn pipe_error(&self, source: std::io::Error) -> Error {
        // The stream's name is the one its descriptor records; what failed
        // is the pipe.
        Error::Io {
            path: PathBuf::from("standard output"),
            op: "write failed",
            offset: self.pos,
            source,
        }
    }

    /// Hand the filled grain (unless it is all zeros) to the compressors,
    /// and emit the grains that come back.
    fn retire_current(&mut self) -> Result<()> {
        if let Some((index, data)) = self.current.take() {
            if !is_zero(&data) {
                self.in_pool.push_back(index);
                self.last_sent = Some(index);
                let ready = self.pool.submit(data);
                self.emit_grains(ready)?;
            }
        }
        Ok(())
    }

    /// Emit compressed grains (the oldest in the pool first), with the
    /// grain tables they complete.
    fn emit_grains(&mut self, compressed: Vec<Vec<u8>>) -> Result<()> {
        for data in compressed {
            let index = self
                .in_pool
                .pop_front()
                .expect("one index for every grain in the pool");
            let table = index / GTES;
            if self.table.as_ref().is_some_and(|(t, _)| *t != table) {
                self.close_table()?;
            }
            let at = self.at();
            let sector = sector_of(at, &self.path)?;
            self.table
                .get_or_insert_with(|| (table, vec![0; GTES as usize]))
                .1[(index % GTES) as usize] = sector;
            let mut grain = Vec::with_capacity(data.len() + 12 + SECTOR as usize);
            marker::push_grain(&mut grain, index * GRAIN_SECTORS, &data);
            self.emit(&grain)?;
        }
        Ok(())
    }

    /// Emit the grain table being filled, behind its marker.
    fn close_table(&mut self) -> Result<()> {
        let Some((index, entries)) = self.table.take() else {
            return Ok(());
        };
        let bytes = GTES * 4;
        let mut out = marker::meta(bytes.div_ceil(SECTOR), MarkerType::GrainTable).to_vec();
        let at = self.at() + out.len() as u64;
        for e in &entries {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.resize(align_up(out.len() as u64, SECTOR) as usize, 0);
        self.directory[index as usize] = sector_of(at, &self.path)?;
        self.emit(&out)
    }

    /// Emit everything left, the directory, the footer and the end marker.
    fn finish(&mut self) -> Result<()> {
        self.retire_current()?;
        let rest = self.pool.drain();
        self.emit_grains(rest)?;
        self.close_table()?;
        let gd_bytes = self.directory.len() as u64 * 4;
        let gd_sectors = gd_bytes.div_ceil(SECTOR);
        let mut out = marker::meta(gd_sectors, MarkerType::GrainDirectory).to_vec();
        let gd_at = self.at() + out.len() as u64;
        for e in &self.directory {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out.resize(align_up(out.len() as u64, SECTOR) as usize, 0);
        let mut footer = self.header.clone();
        footer.gd_offset = gd_at / SECTOR;
        out.extend_from_slice(&marker::meta(1, MarkerType::Footer));
        out.extend_from_slice(&footer.encode());
        out.extend_from_slice(&marker::meta(0, MarkerType::EndOfStream));
        self.emit(&out)?;
        self.write_out()?;
        match &mut self.sink {
            Out::File(_) => {}
            Out::Pipe(p) => p.flush().map_err(|e| self.pipe_error(e))?,
        }
        self.finished = true;
        Ok(())
    }
}

fn sector_of(at: u64, path: &Path) -> Result<u32> {
    u32::try_from(at / SECTOR).map_err(|_| {
        Error::unsupported(
            path,
            "the stream has grown past the 2 TiB a sparse extent can address",
        )
    })
}

/// Compressors: one a core.
fn threads() -> usize {
    crate::io::workers()
}

impl Sink for StreamWriter {
    fn virtual_size(&self) -> u64 {
        self.sectors * SECTOR
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        crate::image::check_range(&self.path, self.virtual_size(), offset, buf.len())?;
        if self.finished {
            return Err(Error::unsupported(
                &self.path,
                "the stream is already finished",
            ));
        }
        for p in units(offset, buf.len(), GRAIN) {
            let index = p.index;
            if self.current.as_ref().map(|c| c.0) != Some(index) {
                let behind = self.current.as_ref().is_some_and(|c| index < c.0)
                    || self.last_sent.is_some_and(|p| index <= p)
                    || self.table.as_ref().is_some_and(|(t, _)| index / GTES < *t);
                if behind {
                    return Err(Error::unsupported(
                        &self.path,
                        format!(
                            "streamOptimized images are written front to back; byte {} comes too late",
                            offset + p.range.start as u64
                        ),
                    ));
                }
                self.retire_current()?;
                self.current = Some((index, self.pool.buffer(GRAIN as usize)));
            }
            let grain = &mut self.current.as_mut().unwrap().1;
            let within = p.within as usize;
            grain[within..within + p.len()].copy_from_slice(&buf[p.range]);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finish()
    }

    fn files(&self) -> Vec<PathBuf> {
        match &self.sink {
            Out::File(f) => vec![f.path().to_path_buf()],
            Out::Pipe(_) => Vec::new(),
        }
    }
}
