//! The streaming copy at the heart of `convert`: walk the source's
//! allocation, skip what reads as zero (the fresh target already does), read
//! large aligned runs, drop all-zero pieces, and write the rest.

use std::sync::mpsc;

use crate::chain;
use crate::error::Result;
use crate::image::{Image, Source};
use crate::io::{align_down, is_zero};

/// Bytes read per step: large, and a multiple of every grain and block size
/// vimg writes, so steps line up with the target's allocation units.
pub const CHUNK: u64 = 2 << 20;

/// How to copy.
#[derive(Clone, Copy, Debug)]
pub struct CopyOptions {
    /// Runs of zeros at least this long (aligned to it) are not written;
    /// 0 writes everything, holes included (a fully allocated target).
    pub sparse_size: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { sparse_size: 4096 }
    }
}

/// True when the source holds something to copy at a range of `kind`.
fn holds_data(kind: &Source, opts: &CopyOptions) -> bool {
    match kind {
        Source::Data { .. } => true,
        Source::Zero { .. } | Source::Unallocated => opts.sparse_size == 0,
    }
}

/// Buffers in flight between the reading and the writing thread.
const IN_FLIGHT: usize = 4;

/// A chunk read from the source, on its way to the target.
struct Piece {
    offset: u64,
    data: Vec<u8>,
    /// How far the copy has got once this piece is written.
    done: u64,
}

/// Copy the first `size` bytes of `src` into `dst`, which must read as
/// zeros. `progress` is told how far the copy has got.
///
/// A second thread walks and reads the source while this one writes the
/// target, so that reading and writing (page-cache copies, deflate) run on
/// two cores; buffers go round between them, so memory stays at
/// IN_FLIGHT chunks.
pub fn copy(
    src: &mut dyn Image,
    dst: &mut dyn Image,
    size: u64,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Piece>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        empty_tx.send(Vec::new()).expect("the pool has room");
    }
    // Everything moves into the scope: when the writer stops, early or not,
    // its ends of both channels close and a waiting reader wakes up.
    std::thread::scope(move |scope| {
        scope.spawn(move || {
            if let Err(e) = read_pieces(src, size, opts, &full_tx, &empty_rx) {
                let _ = full_tx.send(Err(e));
            }
        });
        for piece in full_rx {
            let piece = piece?;
            write_nonzero(dst, &piece.data, piece.offset, opts.sparse_size)?;
            progress(piece.done);
            // The reader may have stopped; then the buffer is not needed.
            let _ = empty_tx.send(piece.data);
        }
        progress(size);
        Ok(())
    })
}

/// Walk the source's allocation and send the runs that hold data, in
/// chunks, to the writer; buffers come back through `empty`.
fn read_pieces(
    src: &mut dyn Image,
    size: u64,
    opts: &CopyOptions,
    full: &mpsc::SyncSender<Result<Piece>>,
    empty: &mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    let mut offset = 0u64;
    while offset < size {
        let (first, _) = chain::status(src, offset, size - offset)?;
        if !holds_data(&first.source, opts) {
            offset += first.len;
            continue;
        }
        // Join what follows to copy, up to the end of this chunk.
        let chunk_end = (align_down(offset, CHUNK) + CHUNK).min(size);
        let mut end = (offset + first.len).min(chunk_end);
        while end < chunk_end {
            let (m, _) = chain::status(src, end, chunk_end - end)?;
            if !holds_data(&m.source, opts) {
                break;
            }
            end += m.len;
        }
        // No buffer back: the writer has stopped (and says why).
        let Ok(mut data) = empty.recv() else {
            return Ok(());
        };
        data.resize((end - offset) as usize, 0);
        src.read_at(&mut data, offset)?;
        let piece = Piece {
            offset,
            data,
            done: end,
        };
        if full.send(Ok(piece)).is_err() {
            return Ok(());
        }
        offset = end;
    }
    Ok(())
}

/// Write `data` to `dst` at `offset`, leaving out zero pieces of
/// `granule` bytes (aligned to the disk).
fn write_nonzero(dst: &mut dyn Image, data: &[u8], offset: u64, granule: u64) -> Result<()> {
    if granule == 0 {
        dst.write_at(data, offset)?;
        return Ok(());
    }
    let mut run_start: Option<usize> = None;
    let mut pos = 0usize;
    while pos < data.len() {
        let at = offset + pos as u64;
        // Any multiple of 512 (qemu-img takes -S 1536): no power-of-two mask.
        let next = ((at - at % granule + granule - offset) as usize).min(data.len());
        let zero = is_zero(&data[pos..next]);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                dst.write_at(&data[start..pos], offset + start as u64)?;
                run_start = None;
            }
            _ => {}
        }
        pos = next;
    }
    if let Some(start) = run_start {
        dst.write_at(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::image::{ImageInfo, Mapping};
    use crate::raw::Raw;
    use std::path::PathBuf;

    /// A target that takes `budget` writes, then fails every one.
    struct Failing {
        budget: usize,
        size: u64,
    }

    impl Image for Failing {
        fn virtual_size(&self) -> u64 {
            self.size
        }
        fn cluster_size(&self) -> u64 {
            512
        }
        fn read_at(&mut self, buf: &mut [u8], _: u64) -> Result<()> {
            buf.fill(0);
            Ok(())
        }
        fn write_at(&mut self, _: &[u8], _: u64) -> Result<()> {
            if self.budget == 0 {
                return Err(Error::invalid("disk full"));
            }
            self.budget -= 1;
            Ok(())
        }
        fn block_status(&mut self, _: u64, len: u64) -> Result<Mapping> {
            Ok(Mapping::new(len, Source::Unallocated))
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn info(&mut self) -> Result<ImageInfo> {
            unreachable!()
        }
        fn files(&self) -> Vec<PathBuf> {
            Vec::new()
        }
    }

    #[test]
    fn a_failing_target_stops_the_copy_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("src.raw");
        let size = 64u64 << 20;
        std::fs::write(&path, vec![0x5a; size as usize]).unwrap();
        let mut src = Raw::open(&path, crate::io::Access::Read).unwrap();
        for budget in [0, 1, 3, 10] {
            let mut dst = Failing { budget, size };
            let err = copy(
                &mut src,
                &mut dst,
                size,
                &CopyOptions::default(),
                &mut |_| {},
            );
            assert!(
                err.unwrap_err().to_string().contains("disk full"),
                "budget {budget}"
            );
        }
    }

    #[test]
    fn everything_but_zeros_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.raw"), dir.path().join("b.raw"));
        let mut data = vec![0u8; 9 << 20];
        data[100..5000].fill(1);
        data[(4 << 20) - 10..(4 << 20) + 10].fill(2);
        data[(9 << 20) - 1] = 3;
        std::fs::write(&a, &data).unwrap();
        let mut src = Raw::open(&a, crate::io::Access::Read).unwrap();
        let mut dst = Raw::create(&b, data.len() as u64).unwrap();
        let mut last = 0;
        copy(
            &mut src,
            &mut dst,
            data.len() as u64,
            &CopyOptions::default(),
            &mut |d| last = d,
        )
        .unwrap();
        assert_eq!(last, data.len() as u64);
        assert_eq!(std::fs::read(&b).unwrap(), data);
    }
}
