//! What a copy moves: a walk over a chain's allocation that yields the runs
//! worth copying, joined into large pieces aligned to [`CHUNK`], and
//! filtered by the layers they come from. `convert` copies what the whole
//! chain reads; `commit` copies what the top layer alone holds.

use std::ops::Range;

use crate::chain;
use crate::error::Result;
use crate::image::{Image, Source};
use crate::io::align_down;

/// Bytes read per step at most: large, and a multiple of every grain and
/// block size vimg writes, so steps line up with the target's allocation
/// units.
pub const CHUNK: u64 = 2 << 20;

/// Which layers of a chain the runs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers {
    /// Whatever the chain reads, from any depth.
    All,
    /// Only what the top `n` layers hold themselves (`Top(1)`: the image
    /// alone, without its parents).
    Top(u32),
}

/// A walk over `range` of an image, handing out the runs to copy.
#[derive(Clone, Debug)]
pub struct Plan {
    pos: u64,
    end: u64,
    layers: Layers,
    zeros: bool,
}

impl Plan {
    /// Copy the data in `range` that `layers` hold.
    pub fn new(range: Range<u64>, layers: Layers) -> Plan {
        Plan {
            pos: range.start,
            end: range.end,
            layers,
            zeros: false,
        }
    }

    /// Also copy what reads as zeros there: ranges the layers record as
    /// zero, and (with [`Layers::All`]) what nothing in the chain holds.
    /// For a target that is not already zero, or must be fully allocated.
    pub fn with_zeros(mut self, zeros: bool) -> Plan {
        self.zeros = zeros;
        self
    }

    /// Where the walk ends.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The next run to copy, never crossing a [`CHUNK`] boundary; `None`
    /// when the range is done.
    pub fn next_run(&mut self, src: &mut dyn Image) -> Result<Option<Range<u64>>> {
        while self.pos < self.end {
            let (first, depth) = self.status(src, self.pos, self.end - self.pos)?;
            if !self.wanted(&first.source, depth) {
                self.pos += first.len;
                continue;
            }
            let start = self.pos;
            let chunk_end = (align_down(start, CHUNK) + CHUNK).min(self.end);
            let mut end = (start + first.len).min(chunk_end);
            while end < chunk_end {
                let (m, depth) = self.status(src, end, chunk_end - end)?;
                if !self.wanted(&m.source, depth) {
                    break;
                }
                end += m.len;
            }
            self.pos = end.min(chunk_end);
            return Ok(Some(start..self.pos));
        }
        Ok(None)
    }

    fn status(
        &self,
        src: &mut dyn Image,
        offset: u64,
        len: u64,
    ) -> Result<(crate::image::Mapping, u32)> {
        let layers = match self.layers {
            Layers::All => u32::MAX,
            Layers::Top(n) => n,
        };
        chain::status_in(src, offset, len, layers)
    }

    /// True when a range of `source`, found at `depth`, is to be copied.
    fn wanted(&self, source: &Source, depth: u32) -> bool {
        if let Layers::Top(n) = self.layers {
            if depth >= n {
                return false;
            }
        }
        match source {
            Source::Data { .. } => true,
            Source::Zero { .. } => self.zeros,
            // Nothing below either: zeros, unless the walk stopped short
            // of the bottom of the chain.
            Source::Unallocated => self.zeros && self.layers == Layers::All,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Access;
    use crate::raw::Raw;

    #[test]
    fn runs_are_joined_up_to_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.raw");
        let mut data = vec![0u8; 9 << 20];
        data[100..5000].fill(1);
        data[(4 << 20) - 10..(6 << 20) + 10].fill(2);
        std::fs::write(&path, &data).unwrap();
        let mut src = Raw::open(&path, Access::Read).unwrap();
        let mut plan = Plan::new(0..data.len() as u64, Layers::All);
        let mut runs = Vec::new();
        while let Some(run) = plan.next_run(&mut src).unwrap() {
            assert!(run.start / CHUNK == (run.end - 1) / CHUNK, "{run:?}");
            runs.push(run);
        }
        // Every byte that is not zero is in a run.
        for (i, &b) in data.iter().enumerate() {
            if b != 0 {
                assert!(runs.iter().any(|r| r.contains(&(i as u64))), "byte {i}");
            }
        }
        let mut all = Plan::new(0..data.len() as u64, Layers::All).with_zeros(true);
        let mut covered = 0;
        while let Some(run) = all.next_run(&mut src).unwrap() {
            assert_eq!(run.start, covered);
            covered = run.end;
        }
        assert_eq!(covered, data.len() as u64);
    }
}
