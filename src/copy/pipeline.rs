//! The streaming copy at the heart of `convert`: one thread walks the
//! source's [`Plan`] and reads large runs, the other drops all-zero pieces
//! and writes the rest, so that reading and writing (page-cache copies,
//! deflate) run on two cores.

use std::sync::mpsc;

use std::ops::Range;

use super::plan::Plan;
use super::throttle::{pace, Throttle};
use crate::error::Result;
use crate::image::{Image, Sink};
use crate::interrupt;
use crate::io::{is_zero, SECTOR};

/// How to copy.
#[derive(Clone, Copy, Debug)]
pub struct CopyOptions {
    /// Runs of zeros at least this long (aligned to it) are not written;
    /// 0 writes everything, holes included (a fully allocated target).
    pub sparse_size: u64,
    /// Move at most this many bytes a second (`-r`).
    pub rate: Option<u64>,
    /// Read errors do not end the copy: what cannot be read is written as
    /// zeros and reported (`--salvage`).
    pub salvage: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            sparse_size: 4096,
            rate: None,
            salvage: false,
        }
    }
}

/// A range of the source a salvaging copy could not read, and why (the
/// first error in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    pub range: Range<u64>,
    pub why: String,
}

/// Where a salvaging read retries, when a whole run fails: pieces of this
/// size, then the sectors of a piece that fails.
const SALVAGE_PIECE: usize = 64 << 10;

/// Stack of the reading thread (reserved, not touched unless used).
const READER_STACK: usize = 32 << 20;

/// Buffers in flight between the reading and the writing thread.
const IN_FLIGHT: usize = 4;

/// A chunk read from the source, on its way to the target.
struct Piece {
    offset: u64,
    data: Vec<u8>,
    /// How far the copy has got once this piece is written.
    done: u64,
}

/// Copy what `plan` hands out from `src` into `dst`, which must read as
/// zeros wherever the plan leaves out. `progress` is told how far the copy
/// has got. Returns what a salvaging copy could not read (written as
/// zeros).
///
/// Buffers go round between the two threads, so memory stays at
/// IN_FLIGHT chunks.
pub fn copy(
    src: &mut dyn Image,
    dst: &mut dyn Sink,
    plan: Plan,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<Lost>> {
    let end = plan.end();
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Piece>>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        empty_tx.send(Vec::new()).expect("the pool has room");
    }
    // Everything moves into the scope: when the writer stops, early or not,
    // its ends of both channels close and a waiting reader wakes up.
    std::thread::scope(move |scope| {
        // Reads recurse down the chain, a few frames per image: room for
        // the deepest chain vimg opens (the main thread has 8 MiB).
        let salvage = opts.salvage;
        let reader = std::thread::Builder::new()
            .stack_size(READER_STACK)
            .spawn_scoped(scope, move || {
                let mut lost = Vec::new();
                let lost_to = salvage.then_some(&mut lost);
                if let Err(e) = read_pieces(src, plan, &full_tx, &empty_rx, lost_to) {
                    let _ = full_tx.send(Err(e));
                }
                lost
            })
            .map_err(|e| {
                crate::error::Error::invalid(format!("cannot start the reading thread: {e}"))
            })?;
        let mut throttle = Throttle::new(opts.rate);
        for piece in full_rx {
            let piece = piece?;
            interrupt::check()?;
            write_nonzero(dst, &piece.data, piece.offset, opts.sparse_size)?;
            progress(piece.done);
            pace(&mut throttle, piece.data.len() as u64);
            // The reader may have stopped; then the buffer is not needed.
            let _ = empty_tx.send(piece.data);
        }
        progress(end);
        drop(empty_tx);
        Ok(reader.join().unwrap_or_default())
    })
}

/// Fill `buf` from `src` at `offset`; with `lost`, a read that fails is
/// retried in pieces and then sectors, and what still fails reads as
/// zeros and is recorded there.
fn read_salvaging(
    src: &mut dyn Image,
    buf: &mut [u8],
    offset: u64,
    lost: Option<&mut Vec<Lost>>,
) -> Result<()> {
    let Some(lost) = lost else {
        return src.read_at(buf, offset);
    };
    if src.read_at(buf, offset).is_ok() {
        return Ok(());
    }
    for (i, piece) in buf.chunks_mut(SALVAGE_PIECE).enumerate() {
        let at = offset + (i * SALVAGE_PIECE) as u64;
        if src.read_at(piece, at).is_ok() {
            continue;
        }
        for (j, sector) in piece.chunks_mut(SECTOR as usize).enumerate() {
            let s = at + j as u64 * SECTOR;
            if let Err(e) = src.read_at(sector, s) {
                sector.fill(0);
                let end = s + sector.len() as u64;
                let why = e.to_string();
                // Sectors lost for the same reason make one range.
                match lost.last_mut() {
                    Some(l) if l.range.end == s && l.why == why => l.range.end = end,
                    _ => lost.push(Lost { range: s..end, why }),
                }
            }
        }
    }
    Ok(())
}

/// Walk the plan and send the runs it hands out to the writer; buffers
/// come back through `empty`.
fn read_pieces(
    src: &mut dyn Image,
    mut plan: Plan,
    full: &mpsc::SyncSender<Result<Piece>>,
    empty: &mpsc::Receiver<Vec<u8>>,
    mut lost: Option<&mut Vec<Lost>>,
) -> Result<()> {
    while let Some(run) = plan.next_run(src)? {
        interrupt::check()?;
        // No buffer back: the writer has stopped (and says why).
        let Ok(mut data) = empty.recv() else {
            return Ok(());
        };
        data.resize((run.end - run.start) as usize, 0);
        read_salvaging(src, &mut data, run.start, lost.as_deref_mut())?;
        let piece = Piece {
            offset: run.start,
            data,
            done: run.end,
        };
        if full.send(Ok(piece)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Write `data` to `dst` at `offset`, leaving out zero pieces of
/// `granule` bytes (aligned to the disk).
fn write_nonzero(dst: &mut dyn Sink, data: &[u8], offset: u64, granule: u64) -> Result<()> {
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
    use crate::copy::Layers;
    use crate::error::Error;
    use crate::raw::Raw;
    use std::path::PathBuf;

    /// A target that takes `budget` writes, then fails every one.
    struct Failing {
        budget: usize,
        size: u64,
    }

    impl Sink for Failing {
        fn virtual_size(&self) -> u64 {
            self.size
        }

        fn write_at(&mut self, _: &[u8], _: u64) -> Result<()> {
            if self.budget == 0 {
                return Err(Error::invalid("disk full"));
            }
            self.budget -= 1;
            Ok(())
        }

        fn flush(&mut self) -> Result<()> {
            Ok(())
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
                Plan::new(0..size, Layers::All),
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
            Plan::new(0..data.len() as u64, Layers::All),
            &CopyOptions::default(),
            &mut |d| last = d,
        )
        .unwrap();
        assert_eq!(last, data.len() as u64);
        assert_eq!(std::fs::read(&b).unwrap(), data);
    }
}
