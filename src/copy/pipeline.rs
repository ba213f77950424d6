//! The streaming copy at the heart of `convert`: one thread walks the
//! source's [`Plan`] and reads large runs, the other drops all-zero pieces
//! and writes the rest, so that reading and writing (page-cache copies,
//! deflate) run on two cores.

use std::sync::mpsc;

use std::ops::Range;

use super::plan::Plan;
use super::throttle::{pace, Throttle};
use crate::error::{Error, Result};
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
/// zeros and is recorded there. A failure that names the range it loses
/// ([`Error::Unreadable`]: a whole grain or block) loses that range at
/// once, and the reading goes on past it.
fn read_salvaging(
    src: &mut dyn Image,
    buf: &mut [u8],
    offset: u64,
    lost: Option<&mut Vec<Lost>>,
) -> Result<()> {
    let Some(lost) = lost else {
        return src.read_at(buf, offset);
    };
    salvage(src, buf, offset, lost, SALVAGE_PIECE);
    Ok(())
}

/// Read what can be read of `buf` at `offset`, in steps of `step` bytes
/// (then sectors) where a read fails without saying how far.
fn salvage(src: &mut dyn Image, buf: &mut [u8], offset: u64, lost: &mut Vec<Lost>, step: usize) {
    let mut pos = 0;
    while pos < buf.len() {
        let at = offset + pos as u64;
        let end = offset + buf.len() as u64;
        match src.read_at(&mut buf[pos..], at) {
            Ok(()) => return,
            Err(Error::Unreadable { detail, from, to }) if from < end && to > at => {
                // What lies before the range, then the range, lost whole.
                let (from, to) = (from.max(at), to.min(end));
                let head = (from - offset) as usize;
                salvage(src, &mut buf[pos..head], at, lost, step);
                buf[head..(to - offset) as usize].fill(0);
                record(lost, from..to, detail);
                pos = (to - offset) as usize;
            }
            Err(e) if buf.len() - pos <= SECTOR as usize => {
                buf[pos..].fill(0);
                record(lost, at..end, e.to_string());
                return;
            }
            Err(_) => {
                // Pieces of `step`, then sectors, each on its own.
                let smaller = if step > SECTOR as usize {
                    SECTOR as usize
                } else {
                    step
                };
                let step_here = if buf.len() - pos > step {
                    step
                } else {
                    smaller
                };
                for (i, piece) in buf[pos..].chunks_mut(step_here).enumerate() {
                    let piece_at = at + (i * step_here) as u64;
                    salvage(src, piece, piece_at, lost, smaller);
                }
                return;
            }
        }
    }
}

/// Record `range` as lost for `why`, joined to the last range when they
/// meet and were lost for the same reason.
fn record(lost: &mut Vec<Lost>, range: Range<u64>, why: String) {
    match lost.last_mut() {
        Some(l) if l.range.end == range.start && l.why == why => l.range.end = range.end,
        _ => lost.push(Lost { range, why }),
    }
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
    use crate::copy::{Layers, CHUNK};
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

    /// A disk of `size` bytes of 7s but for `bad` ranges: each fails its
    /// reads, naming the range (`named`) or not; reads are counted.
    struct Damaged {
        size: u64,
        bad: Vec<(Range<u64>, bool)>,
        reads: usize,
    }

    impl Sink for Damaged {
        fn virtual_size(&self) -> u64 {
            self.size
        }
        fn write_at(&mut self, _: &[u8], _: u64) -> Result<()> {
            Err(Error::invalid("read only"))
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn files(&self) -> Vec<PathBuf> {
            Vec::new()
        }
    }

    impl Image for Damaged {
        fn cluster_size(&self) -> u64 {
            SECTOR
        }
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
            self.reads += 1;
            let end = offset + buf.len() as u64;
            for (range, named) in &self.bad {
                if range.start < end && range.end > offset {
                    let why = format!("bad {range:?}");
                    return Err(match named {
                        true => Error::unreadable(why, range.clone()),
                        false => Error::invalid(why),
                    });
                }
            }
            buf.fill(7);
            Ok(())
        }
        fn block_status(&mut self, _: u64, len: u64) -> Result<crate::image::Mapping> {
            let data = crate::image::Source::Data {
                host: None,
                compressed: false,
            };
            Ok(crate::image::Mapping::new(len, data))
        }
        fn info(&mut self) -> Result<crate::image::ImageInfo> {
            Err(Error::invalid("no info"))
        }
    }

    #[test]
    fn salvage_loses_a_named_range_at_once_and_finds_others_by_sector() {
        let mut src = Damaged {
            size: 8 << 20,
            bad: vec![
                // Two named ranges that meet, one across a 2 MiB chunk.
                ((1 << 20)..(3 << 20), true),
                ((3 << 20)..(3 << 20) + 4096, true),
                // One that says nothing of its extent: found by sectors.
                ((6 << 20) + 1024..(6 << 20) + 1536, false),
            ],
            reads: 0,
        };
        let mut buf = vec![0u8; 8 << 20];
        let mut lost = Vec::new();
        for (i, chunk) in buf.chunks_mut(CHUNK as usize).enumerate() {
            let at = i as u64 * CHUNK;
            read_salvaging(&mut src, chunk, at, Some(&mut lost)).unwrap();
        }
        let ranges: Vec<_> = lost.iter().map(|l| l.range.clone()).collect();
        assert_eq!(
            ranges,
            [
                // Across the chunk boundary: one range, one reason.
                (1 << 20)..(3 << 20),
                (3 << 20)..(3 << 20) + 4096,
                (6 << 20) + 1024..(6 << 20) + 1536,
            ]
        );
        for l in &lost {
            let r = l.range.start as usize..l.range.end as usize;
            assert!(buf[r].iter().all(|&b| b == 0));
        }
        let kept = buf.iter().filter(|&&b| b == 7).count();
        assert_eq!(kept, (8 << 20) - (2 << 20) - 4096 - 512);
        // Named ranges cost a read or two each; the unnamed one its 64 KiB
        // piece in sectors (128) and the pieces around it.
        assert!(src.reads < 200, "{} reads", src.reads);
    }
}
